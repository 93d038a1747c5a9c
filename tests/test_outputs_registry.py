"""The output formats by name (rtcheck.render.outputs): every one renders, the command line offers only them."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from datetime import datetime, timezone

import click
import pytest

from conftest import ROOT
from rtcheck.api import check_paths
from rtcheck.cli import check, dvh
from rtcheck.errors import MissingDependencyError
from rtcheck.render import outputs
from rtcheck.render.dvh import DVH_FORMATS
from rtcheck.render.outputs import FORMATS, RenderOptions, Rendering
from rtcheck.render.style import STATUS_STYLES

SAMPLES = ROOT / "sample_plans"


@pytest.fixture(scope="module")
def results():
    # Two plans, one per arm, with checks of several statuses between them.
    return [
        *check_paths([SAMPLES / "cr-pr-lung-v20-high"], "escc-induction-icrt-ccrt", "cr-pr"),
        *check_paths([SAMPLES / "sd-pd-compliant"], "escc-induction-icrt-ccrt", "sd-pd"),
    ]


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_every_registered_format_renders_every_plan_and_its_verdict(results, name):
    rendering = Rendering(results, RenderOptions(generated_at=datetime(2024, 1, 2, tzinfo=timezone.utc)))
    try:
        output = rendering[name]
    except MissingDependencyError as exc:
        pytest.skip(str(exc))
    assert output and FORMATS[name].suffix.startswith(".")
    if name == "json":
        documents = json.loads(output)
        assert [d["verdict"] for d in documents] == [r.verdict.value for r in results]
    elif name == "junit":
        suites = ET.fromstring(output).findall("testsuite")
        assert [len(s.findall("testcase")) for s in suites] == [len(r.checks) for r in results]
    if name == "pdf":  # its text is read in test_pdf_report.py
        assert isinstance(output, bytes) and output.startswith(b"%PDF-") and output.rstrip().endswith(b"%%EOF")
        return
    assert isinstance(output, str)
    for result in results:
        assert result.plan_sop_instance_uid in output
        if name in ("table", "html"):
            assert STATUS_STYLES[result.verdict].word in output


def test_the_pdf_lays_out_the_html_already_rendered(results, monkeypatch):
    calls = []
    original = outputs.render_html

    def counted(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(outputs, "render_html", counted)
    rendering = Rendering(results[:1])
    html = rendering["html"]
    try:
        rendering["pdf"]
    except MissingDependencyError as exc:
        pytest.skip(str(exc))
    assert rendering["html"] is html and len(calls) == 1


def test_suffixes_are_distinct_and_the_command_line_offers_registered_formats_only():
    assert len({f.suffix for f in FORMATS.values()}) == len(FORMATS)
    formats = next(p for p in check.params if p.name == "output_format")
    assert isinstance(formats.type, click.Choice) and set(formats.type.choices) <= set(FORMATS)
    dvh_formats = next(p for p in dvh.params if p.name == "output_format")
    assert isinstance(dvh_formats.type, click.Choice) and list(dvh_formats.type.choices) == list(DVH_FORMATS)
