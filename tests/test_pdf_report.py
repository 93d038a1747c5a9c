"""The PDF report (rtcheck check --pdf): the HTML report laid out by WeasyPrint (extra `pdf`)."""

from __future__ import annotations

import re
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from cli_helpers import rtcheck
from rtcheck.api import check_paths
from rtcheck.render.style import STATUS_WORDS

weasyprint = pytest.importorskip("weasyprint", reason="WeasyPrint (extra 'pdf') is not installed")
from weasyprint.formatting_structure import boxes  # noqa: E402

from rtcheck.render.pdf import render_pdf, render_pdf_document  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "sample_plans"
PROTOCOL = "escc-induction-icrt-ccrt"


def _page_text(page) -> str:
    """The text WeasyPrint laid out on one page."""
    return " ".join(" ".join(box.text for box in page._page_box.descendants() if isinstance(box, boxes.TextBox)).split())


def _pdf_objects(pdf: bytes) -> bytes:
    """The PDF's objects as text: its plain bytes plus every Flate stream decompressed (object streams included)."""
    parts = [pdf]
    for match in re.finditer(rb"stream\r?\n", pdf):
        start = match.end()
        try:
            parts.append(zlib.decompressobj().decompress(pdf[start:start + 2_000_000]))
        except zlib.error:
            continue
    return b"\n".join(parts)


def test_pdf_of_two_plans(tmp_path):
    """Two plans: each starts on a new page with its own verdict; every check id and status is in the text;
    the PDF bytes say as many pages as the laid-out document has."""
    results = [*check_paths([SAMPLES / "sd-pd-pgtv-undercovered"], PROTOCOL, "sd-pd"), *check_paths([SAMPLES / "cr-pr-no-cord"], PROTOCOL, "cr-pr")]
    document = render_pdf_document(results)
    pages = [_page_text(p) for p in document.pages]
    assert len(pages) >= 2
    starts = [i for i, text in enumerate(pages) if text.startswith("Protocol compliance: plan")]
    assert len(starts) == 2 and starts[0] == 0
    for start, end, result in zip(starts, [*starts[1:], len(pages)], results):
        text = " ".join(pages[start:end])
        assert "Verdict: " in text and STATUS_WORDS[result.verdict] in pages[start]
        assert result.plan_sop_instance_uid in text and result.protocol_sha256 in text
        # Table cells may wrap a long id over two lines ("lungs- v20"): compare without spaces.
        squeezed = text.replace(" ", "")
        for check in result.checks:
            assert check.id.replace(" ", "") in squeezed, check.id
        assert "Not evaluated" in text and "DVH" in text
    assert "SpinalCord" in " ".join(pages[starts[1]:]) and "no ROI named SpinalCord" in " ".join(pages[starts[1]:])

    pdf = document.write_pdf()
    assert pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF")
    objects = _pdf_objects(pdf)
    counts = [int(n) for n in re.findall(rb"/Type\s*/Pages\b[^>]*?/Count\s+(\d+)", objects)]
    counts += [int(n) for n in re.findall(rb"/Count\s+(\d+)[^>]*?/Type\s*/Pages\b", objects)]
    assert counts and max(counts) == len(pages)
    assert len(re.findall(rb"/Type\s*/Page\b", objects)) == len(pages)


def test_cli_writes_the_pdf_and_anonymizes_it(tmp_path):
    out = tmp_path / "report.pdf"
    result = rtcheck("check", SAMPLES / "cr-pr-compliant", "--protocol", PROTOCOL, "--arm", "cr-pr", "--pdf", out, "--anonymize")
    assert result.exit_code == 0, result.stderr
    pdf = out.read_bytes()
    assert pdf.startswith(b"%PDF-")
    [checked] = check_paths([SAMPLES / "cr-pr-compliant"], PROTOCOL, "cr-pr")
    # The same report laid out again: the patient is withheld, the plan is there.
    document = render_pdf_document([checked], anonymize=True)
    text = " ".join(_page_text(p) for p in document.pages)
    assert "withheld (anonymized)" in text and checked.plan_sop_instance_uid in text
    assert checked.patient_id not in text and "SAMPLE_CRPR" not in text and "2026-01-01" not in text
    assert len(re.findall(rb"/Type\s*/Page\b", _pdf_objects(pdf))) == len(document.pages)
    # render_pdf gives the bytes directly.
    assert render_pdf([checked]).startswith(b"%PDF-")


def test_without_weasyprint_the_error_says_what_to_install(tmp_path):
    """With WeasyPrint unimportable, --pdf is a one-line error naming the extra (exit 2), and no file is written."""
    out = tmp_path / "report.pdf"
    probe = (
        "import sys\n"
        "sys.modules['weasyprint'] = None  # import weasyprint now raises ImportError\n"
        "from rtcheck.cli import main\n"
        "main(sys.argv[1:], prog_name='rtcheck')\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", probe, "check", str(SAMPLES / "cr-pr-compliant"), "--protocol", PROTOCOL, "--arm", "cr-pr", "--pdf", str(out)],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )
    assert run.returncode == 2, run.stderr
    assert run.stderr.startswith("rtcheck: error: ") and "pip install 'rtcheck[pdf]'" in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1 and "Traceback" not in run.stderr
    assert not out.exists()
