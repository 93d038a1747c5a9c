"""The check report as PDF: the HTML report (:mod:`rtcheck.render.html`) laid out by WeasyPrint.

WeasyPrint is the optional extra ``pdf`` and is imported only here, when a PDF is asked for.
"""

from __future__ import annotations

from datetime import datetime

from rtcheck.errors import MissingDependencyError
from rtcheck.render.html import render_html
from rtcheck.results import CheckResult


def _weasyprint():
    try:
        import weasyprint  # type: ignore[import-untyped]  # ships no type information
    except ImportError as exc:  # absent, or its system libraries (pango) are
        raise MissingDependencyError(
            f"a PDF report needs WeasyPrint, which cannot be imported ({exc}); install it with: pip install 'rtcheck[pdf]'"
        ) from None
    return weasyprint


def render_pdf_document(results: list[CheckResult], *, anonymize: bool = False, generated_at: datetime | None = None):
    """The laid-out ``weasyprint.Document`` of the report (its ``pages`` are the PDF's pages)."""
    return layout_html(render_html(results, anonymize=anonymize, generated_at=generated_at))


def layout_html(html: str):
    """The ``weasyprint.Document`` of an HTML report already rendered (so --html and --pdf draw the plots once)."""
    weasyprint = _weasyprint()
    # base_url None and a fetcher that refuses everything: the report has no external resource to load.
    return weasyprint.HTML(string=html, base_url=None, url_fetcher=_refuse).render()


def render_pdf(results: list[CheckResult], *, anonymize: bool = False, generated_at: datetime | None = None) -> bytes:
    """The report of ``results`` as PDF bytes (same content as :func:`rtcheck.render.html.render_html`)."""
    return pdf_of_html(render_html(results, anonymize=anonymize, generated_at=generated_at))


def pdf_of_html(html: str) -> bytes:
    """The PDF bytes of an HTML report already rendered."""
    data: bytes = layout_html(html).write_pdf()
    return data


def _refuse(url: str, *args, **kwargs):
    raise ValueError(f"the report does not load external resources ({url})")
