"""--arm auto: the arm whose prescriptions match the plan's, or an error listing why none or which several."""

import json
from pathlib import Path

import pytest
import yaml

from cli_helpers import rtcheck

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "sample_plans"
PROTOCOL = "escc-induction-icrt-ccrt"


@pytest.mark.parametrize("folder, arm", [
    ("cr-pr-compliant", "cr-pr"),
    ("cr-pr-lung-v20-high", "cr-pr"),
    ("cr-pr-no-cord", "cr-pr"),
    ("sd-pd-compliant", "sd-pd"),
    ("sd-pd-pgtv-undercovered", "sd-pd"),
])
def test_auto_picks_the_arm_of_the_prescriptions(folder, arm):
    auto = rtcheck("check", SAMPLES / folder, "--protocol", PROTOCOL, "--arm", "auto", "--format", "json")
    explicit = rtcheck("check", SAMPLES / folder, "--protocol", PROTOCOL, "--arm", arm, "--format", "json")
    chosen, reference = json.loads(auto.stdout), json.loads(explicit.stdout)
    assert chosen["protocol"]["arm"] == arm
    assert chosen["verdict"] == reference["verdict"] and auto.exit_code == explicit.exit_code
    assert [c["value"] for c in chosen["checks"]] == [c["value"] for c in reference["checks"]]
    assert any("chosen automatically" in note for note in chosen["notes"])


def test_no_matching_arm_is_an_error_saying_why_for_each_arm():
    result = rtcheck("check", SAMPLES / "cr-pr-wrong-fractions", "--protocol", PROTOCOL, "--arm", "auto")
    assert result.exit_code == 2
    line = result.stderr.strip()
    assert "\n" not in line
    assert "cr-pr: PTV: 25 fractions, not 28" in line
    assert "sd-pd: no plan prescription for PGTV" in line


def test_several_matching_arms_are_an_error_listing_them(tmp_path):
    data = yaml.safe_load((ROOT / "protocols" / f"{PROTOCOL}.yaml").read_text(encoding="utf-8"))
    data["arms"]["cr-pr-copy"] = data["arms"]["cr-pr"]
    protocol = tmp_path / "twins.yaml"
    protocol.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    result = rtcheck("check", SAMPLES / "cr-pr-compliant", "--protocol", protocol, "--arm", "auto")
    assert result.exit_code == 2
    assert "matches several arms" in result.stderr and "cr-pr, cr-pr-copy" in result.stderr
