"""One status table for every renderer (rtcheck.render.style) and the dvh command's output (rtcheck.render.dvh)."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET

import click
import pytest

from cli_helpers import rtcheck
from conftest import ROOT
from rtcheck.api import check_paths, dvh_statistics
from rtcheck.render.dvh import DVH_FORMATS, DvhReport, render_dvh
from rtcheck.render.html import render_html
from rtcheck.render.junit import render_junit
from rtcheck.render.style import STATUS_STYLES, JunitElement
from rtcheck.render.terminal import render_checks_text
from rtcheck.results import Status

SAMPLES = ROOT / "sample_plans"


@pytest.fixture(scope="module")
def results():
    # Two plans, one per arm, with checks of several statuses between them.
    return [
        *check_paths([SAMPLES / "cr-pr-lung-v20-high"], "escc-induction-icrt-ccrt", "cr-pr"),
        *check_paths([SAMPLES / "sd-pd-compliant"], "escc-induction-icrt-ccrt", "sd-pd"),
    ]


def test_one_status_table_for_every_renderer(results):
    assert set(STATUS_STYLES) == set(Status)
    for field in ("word", "phrase", "symbol", "colour", "terminal_colour", "css_class"):
        values = [getattr(style, field) for style in STATUS_STYLES.values()]
        assert len(set(values)) == len(values), field
    drawn = [s.marker for s in STATUS_STYLES.values() if s.marker]
    assert len(set(drawn)) == len(drawn)
    # HTML: every status colour is a CSS variable, every row of a check carries its status's class, symbol and word.
    report = render_html(results)
    for style in STATUS_STYLES.values():
        assert f"--{style.css_class}: {style.colour};" in report
    for check_outcome in results[0].checks:
        style = STATUS_STYLES[check_outcome.status]
        assert re.search(rf'<tr class="{style.css_class}"><td class="status"><span class="symbol">{re.escape(style.symbol)}</span> {style.word}',
                         report)
    # JUnit: the element of each check is the table's.
    suite = ET.fromstring(render_junit(results[:1])).find("testsuite")
    for case, check_outcome in zip(suite.findall("testcase"), results[0].checks):
        element = STATUS_STYLES[check_outcome.status].junit
        expected = ["skipped"] if not check_outcome.counts else [element.value] if element else []
        assert [child.tag for child in case if child.tag != "system-out"] == expected
    assert {s.junit for s in STATUS_STYLES.values()} == {None, JunitElement.FAILURE, JunitElement.ERROR}


def test_the_terminal_paints_status_words_in_the_tables_colours(results):
    from rtcheck.cli import _paint

    painted = render_checks_text(results[:1], _paint)
    for status in {c.status for c in results[0].checks}:
        style = STATUS_STYLES[status]
        assert click.style(style.word, fg=style.terminal_colour, bold=style.terminal_bold) in painted
    assert click.unstyle(painted) == render_checks_text(results[:1])


@pytest.mark.parametrize("output_format", sorted(DVH_FORMATS))
def test_the_dvh_command_prints_what_render_dvh_renders(output_format):
    metrics = ["D95%[Gy]", "V20Gy[%]"]
    rows, _ = dvh_statistics([SAMPLES / "cr-pr-compliant"], metrics=metrics)
    text = render_dvh(DvhReport(rows, metrics), output_format)
    result = rtcheck("dvh", SAMPLES / "cr-pr-compliant", *(a for m in metrics for a in ("--metric", m)), "--format", output_format)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == text and text.endswith("\n")
    names = [r.name for r in rows]
    if output_format == "json":
        assert [s["name"] for s in json.loads(text)["structures"]] == names
    else:
        body = text.splitlines()[1 if output_format == "csv" else 2:][: len(names)]
        assert [re.split(r"[,\s]", line)[0] for line in body] == names
