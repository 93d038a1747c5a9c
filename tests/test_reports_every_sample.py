"""Every shipped sample plan gets its HTML, PDF and JUnit reports from one `rtcheck check`, each agreeing
with the JSON document of the same check and with the verdict sample_plans/README.md promises."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET

import pytest

from cli_helpers import rtcheck
from test_junit import validate
from test_sample_plans import PROTOCOL, SAMPLES, arm_of, promised_verdicts

pytest.importorskip("weasyprint", reason="WeasyPrint (extra 'pdf') is not installed")
from test_pdf_report import _pdf_objects  # noqa: E402

from rtcheck.render.style import STATUS_WORDS  # noqa: E402
from rtcheck.results import Status  # noqa: E402


@pytest.mark.parametrize("folder, verdict", sorted(promised_verdicts().items()))
def test_html_pdf_and_junit_of_every_sample_plan(folder, verdict, tmp_path):
    html, pdf, junit = tmp_path / "report.html", tmp_path / "report.pdf", tmp_path / "report.xml"
    result = rtcheck("check", SAMPLES / folder, "--protocol", PROTOCOL, "--arm", arm_of(folder), "--format", "json",
                     "--html", html, "--pdf", pdf, "--junit", junit)
    assert result.exit_code == (0 if verdict in ("per_protocol", "variation_acceptable") else 1), result.stderr
    document = json.loads(result.stdout)
    assert document["verdict"] == verdict
    word = STATUS_WORDS[Status(verdict)]

    page = html.read_text(encoding="utf-8")
    assert re.search(rf"Verdict:[^<]*{word}", page)
    for check in document["checks"]:
        assert check["id"] in page

    data = pdf.read_bytes()
    assert data.startswith(b"%PDF-")
    pages = len(re.findall(rb"/Type\s*/Page\b", _pdf_objects(data)))
    assert pages >= 2  # header and tables, then the DVH plots

    validate(junit)
    [suite] = ET.parse(junit).getroot().findall("testsuite")
    assert int(suite.get("tests")) == len(document["checks"])
    # Failures and errors are the checks that make the verdict; the others are skipped.
    assert int(suite.get("failures")) == sum(c["status"] == "deviation_unacceptable" and c["counts"] for c in document["checks"])
    assert int(suite.get("errors")) == sum(c["status"] == "not_evaluated" and c["counts"] for c in document["checks"])
    assert int(suite.get("skipped")) == sum(not c["counts"] for c in document["checks"])
