"""Cohort test of a protocol: `rtcheck batch` writes per criterion the share of plans per status and
the distribution of values (criteria.csv, criteria.json, and criteria.html with a plot)."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

from cli_helpers import rtcheck

SAMPLES = Path(__file__).resolve().parent.parent / "sample_plans"


def test_batch_writes_per_criterion_rates_and_values(tmp_path):
    roots = tmp_path / "plans"
    for folder in ("cr-pr-compliant", "cr-pr-lung-v20-high", "cr-pr-no-cord"):
        shutil.copytree(SAMPLES / folder, roots / folder)
    out = tmp_path / "out"
    result = rtcheck("batch", roots, "--protocol", "escc-induction-icrt-ccrt", "--arm", "cr-pr", "--out", out, "--jobs", "1")
    assert result.exit_code in (0, 1), result.output

    document = json.loads((out / "criteria.json").read_text(encoding="utf-8"))
    assert document["schema"] == "rtcheck.batch-criteria/1" and document["arm"] == "cr-pr"
    criteria = {c["id"]: c for c in document["criteria"]}
    # Each plan's own report is the ground truth for every criterion's counts and values.
    reports = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(out.rglob("*.json")) if p.name != "criteria.json" and p.name != "summary.json"]
    assert len(reports) == 3
    for criterion_id, stats in criteria.items():
        checks = [c for r in reports for c in r["checks"] if c["id"] == criterion_id]
        assert stats["plans"] == len(checks)
        for status, count in stats["counts"].items():
            assert count == sum(c["status"] == status for c in checks)
            assert stats["share_pct"][status] == round(100.0 * count / len(checks), 4)
        values = sorted(c["value"] for c in checks if c["value"] is not None and c["status"] != "not_evaluated")
        assert stats["all_values"] == [round(v, 4) for v in values]
        if values:
            assert stats["values"]["min"] == round(values[0], 4) and stats["values"]["max"] == round(values[-1], 4)
    # The lung-V20 sample is the one plan over the limit; the cord-less one is not evaluated on the cord.
    assert criteria["lungs-v20"]["counts"]["deviation_unacceptable"] == 1
    assert criteria["cord-max"]["counts"]["not_evaluated"] == 1 and len(criteria["cord-max"]["all_values"]) == 2

    rows = list(csv.DictReader((out / "criteria.csv").open(encoding="utf-8")))
    lungs = next(r for r in rows if r["id"] == "lungs-v20")
    assert lungs["deviation_unacceptable_pct"] == f"{100 / 3:.1f}" and lungs["plans"] == "3"

    page = (out / "criteria.html").read_text(encoding="utf-8")
    assert "<svg" in page and "lungs-v20 (V20Gy[%])" in page
    assert "deviation unacceptable: 1 of 3 plans" in page
