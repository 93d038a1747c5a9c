"""The shipped sample plans give exactly the verdicts sample_plans/README.md promises."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from rtcheck.api import check_paths
from rtcheck.results import Status

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "sample_plans"
PROTOCOL = "escc-induction-icrt-ccrt"


def promised_verdicts() -> dict[str, str]:
    """Folder -> verdict, read from the 'Sets and expected verdicts' table of the README."""
    rows = re.findall(r"^\|\s*`([a-z0-9-]+)`\s*\|[^\n]*\|\s*`([a-z_]+)`\s*\|\s*$", (SAMPLES / "README.md").read_text(encoding="utf-8"), re.M)
    return dict(rows)


def arm_of(folder: str) -> str:
    return "sd-pd" if folder.startswith("sd-pd") else "cr-pr"


def test_readme_lists_every_sample_folder():
    folders = {p.name for p in SAMPLES.iterdir() if p.is_dir()}
    assert promised_verdicts().keys() == folders
    assert len(folders) >= 6


@pytest.mark.parametrize("folder, verdict", sorted(promised_verdicts().items()))
def test_sample_verdict(folder, verdict):
    [result] = check_paths([SAMPLES / folder], PROTOCOL, arm_of(folder))
    assert result.verdict.value == verdict


def _checks(folder):
    [result] = check_paths([SAMPLES / folder], PROTOCOL, arm_of(folder))
    return result, {c.id: c for c in result.checks}


def test_compliant_cr_pr_values_are_plausible():
    result, checks = _checks("cr-pr-compliant")
    assert [(t.name, t.dose_gy, t.fractions) for t in result.targets] == [("PTV", 50.4, 28)]
    assert checks["rx-ptv-dose-per-fraction"].value == pytest.approx(1.8)
    assert 95 < checks["ptv-d95"].value < 101
    assert 5 < checks["lungs-v20"].value < 25
    assert 20 < checks["cord-max"].value < 45
    # Targets prescribed by ROI reference are paired through it.
    assert "references ROI 'PTV'" in checks["rx-ptv-total-dose"].message


def test_sib_targets_are_graded_against_their_own_prescription():
    result, checks = _checks("sd-pd-compliant")
    assert {(t.name, t.dose_gy) for t in result.targets} == {("PTV", 50.4), ("PGTV", 59.92)}
    assert checks["rx-pgtv-dose-per-fraction"].value == pytest.approx(2.14)
    assert checks["rx-pgtv-dose-per-fraction"].status is Status.PER_PROTOCOL
    assert "59.92 Gy" in checks["pgtv-d95"].message
    assert "50.4 Gy" in checks["ptv-d95"].message


def test_each_deviating_set_fails_for_its_own_reason():
    _, checks = _checks("cr-pr-wrong-fractions")
    assert checks["rx-ptv-fractions"].value == 25 and checks["rx-ptv-fractions"].status is Status.DEVIATION_UNACCEPTABLE
    assert checks["rx-ptv-total-dose"].status is Status.PER_PROTOCOL  # 50 Gy is within 1 % of 50.4 Gy
    _, checks = _checks("cr-pr-lung-v20-high")
    assert checks["lungs-v20"].value > 35 and checks["lungs-v20"].status is Status.DEVIATION_UNACCEPTABLE
    _, checks = _checks("sd-pd-pgtv-undercovered")
    assert checks["pgtv-d95"].value < 95 and checks["pgtv-d95"].status is Status.DEVIATION_UNACCEPTABLE
    assert checks["ptv-d95"].status is Status.PER_PROTOCOL
    _, checks = _checks("cr-pr-no-cord")
    assert checks["cord-max"].status is Status.NOT_EVALUATED and checks["cord-max"].value is None
    assert "structure missing" in checks["cord-max"].message


@pytest.mark.parametrize("folder, verdict", sorted(promised_verdicts().items()))
def test_cli_json_and_exit_code(folder, verdict):
    proc = subprocess.run(
        [sys.executable, "-m", "rtcheck.cli", "check", str(SAMPLES / folder), "--protocol", PROTOCOL, "--arm", arm_of(folder), "--format", "json"],
        capture_output=True, text=True, timeout=120,
    )
    document = json.loads(proc.stdout)
    assert document["schema"] == "rtcheck.check/1"
    assert document["verdict"] == verdict
    assert proc.returncode == (0 if verdict in ("per_protocol", "variation_acceptable") else 1)
    assert set(document) >= {"schema", "rtcheck_version", "protocol", "plan", "checks", "verdict"}
    assert set(document["protocol"]) >= {"id", "title", "arm", "sha256"}
    assert set(document["plan"]) >= {"label", "sop_instance_uid", "fractions", "targets"}
    for check in document["checks"]:
        assert set(check) >= {"id", "kind", "structure", "roi_name", "metric", "value", "unit", "per_protocol", "variation_acceptable", "status", "message"}
        assert check["status"] in {"per_protocol", "variation_acceptable", "deviation_unacceptable", "not_evaluated"}
        if check["kind"] != "integrity":  # integrity checks that compare words, not numbers, have no value
            assert (check["value"] is None) == (check["status"] == "not_evaluated")
        elif check["status"] == "not_evaluated":
            assert check["value"] is None
