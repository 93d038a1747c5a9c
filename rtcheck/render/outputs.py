"""The output formats of a check, by name: ``cli``, ``batch`` and the listener choose them from :data:`FORMATS`.

A new format is a renderer module plus one line in :data:`FORMATS`.  A
:class:`Rendering` renders each format of one set of results at most once (the
PDF lays out the HTML already rendered, so ``--html --pdf`` draws the DVH plots
once).  Files are written by :func:`rtcheck.files.write_output`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType

from rtcheck.render.html import render_html
from rtcheck.render.json import render_checks
from rtcheck.render.junit import render_junit
from rtcheck.render.pdf import pdf_of_html
from rtcheck.render.terminal import Painter, render_checks_text
from rtcheck.results import CheckResult

__all__ = ["FORMATS", "OutputFormat", "RenderOptions", "Rendering"]


@dataclass(frozen=True)
class RenderOptions:
    """Choices that change a report's content: ``anonymize`` and ``generated_at`` (HTML/PDF), ``paint`` (terminal)."""

    anonymize: bool = False
    generated_at: datetime | None = None  # the report date shown; None: the time of rendering (UTC)
    paint: Painter | None = None


class Rendering:
    """The outputs of one set of results, each format rendered when first asked for and then kept."""

    def __init__(self, results: Sequence[CheckResult], options: RenderOptions = RenderOptions()) -> None:
        self.results = list(results)
        self.options = options
        self._done: dict[str, str | bytes] = {}

    def __getitem__(self, name: str) -> str | bytes:
        """The output in format ``name`` (a key of :data:`FORMATS`): text, or bytes for a binary format."""
        if name not in self._done:
            self._done[name] = FORMATS[name].render(self)
        return self._done[name]

    def text(self, name: str) -> str:
        """The output of a text format."""
        output = self[name]
        if not isinstance(output, str):
            raise TypeError(f"format {name!r} is binary")
        return output


@dataclass(frozen=True)
class OutputFormat:
    """A format: its name, the suffix of its files, and its renderer (reads the results, computes nothing)."""

    name: str
    suffix: str
    render: Callable[[Rendering], str | bytes]
    description: str


FORMATS: Mapping[str, OutputFormat] = MappingProxyType({f.name: f for f in (
    OutputFormat("table", ".txt", lambda r: render_checks_text(r.results, r.options.paint), "plain-text tables for a terminal"),
    OutputFormat("json", ".json", lambda r: render_checks(r.results), "rtcheck.check/1 document"),
    OutputFormat("junit", ".xml", lambda r: render_junit(r.results), "JUnit XML: one testcase per check"),
    OutputFormat("html", ".html", lambda r: render_html(r.results, anonymize=r.options.anonymize,
                                                        generated_at=r.options.generated_at), "self-contained HTML report"),
    OutputFormat("pdf", ".pdf", lambda r: pdf_of_html(r.text("html")), "the HTML report as PDF (extra 'pdf')"),
)})
