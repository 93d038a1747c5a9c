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


def _single_level_case(boost_centre=(0.0, 0.0, 0.0), boost_radius=12.0, body=True):
    """A 50.4 Gy / 28 fx plan to PTV whose dose has a ~59.9 Gy sphere (``boost_radius`` mm) at ``boost_centre``."""
    import numpy as np

    from dicom_factory import Case, RoiShape

    def dose(x, y, z):
        base = np.where(np.hypot(x, y) <= 25.0, 50.4, 20.0)
        cx, cy, cz = boost_centre
        inside = (x - cx) ** 2 + (y - cy) ** 2 + (z - cz) ** 2 <= boost_radius**2
        return np.where(inside, 59.9, base)

    rois = [RoiShape("PTV", radius_mm=20.0, z_range_mm=(-20.0, 20.0), interpreted_type="PTV")]
    if body:
        rois.append(RoiShape("BODY", radius_mm=25.0, z_range_mm=(-28.0, 28.0), interpreted_type="EXTERNAL"))
    return Case(rois, dose=dose, prescriptions=[("PTV", 50.4)], fractions=28)


def test_auto_refuses_a_single_level_plan_whose_dose_has_a_boost(tmp_path):
    _single_level_case().write(tmp_path)
    result = rtcheck("check", tmp_path, "--protocol", PROTOCOL, "--arm", "auto")
    assert result.exit_code == 2
    line = result.stderr.strip()
    assert "\n" not in line
    assert "match arm cr-pr" in line and "at or above 56.92 Gy inside BODY" in line
    assert "arm sd-pd's PGTV 59.92 Gy (less 5 %)" in line
    volume = float(line.split("contiguous ")[1].split(" cc")[0])
    assert 6.0 < volume < 8.5  # a sphere of 12 mm radius: 7.2 cc, on a 2 mm grid
    # The explicit arm is not affected (the hot-spot checks grade that dose).
    explicit = rtcheck("check", tmp_path, "--protocol", PROTOCOL, "--arm", "cr-pr")
    assert explicit.exit_code in (0, 1)


def test_auto_reads_the_whole_grid_without_an_outline(tmp_path):
    _single_level_case(body=False).write(tmp_path)
    result = rtcheck("check", tmp_path, "--protocol", PROTOCOL, "--arm", "auto")
    assert result.exit_code == 2 and "in the dose grid (no EXTERNAL ROI)" in result.stderr


@pytest.mark.parametrize("kwargs", [
    {"boost_radius": 0.0},  # no boost
    {"boost_radius": 5.0},  # 0.5 cc: a hot spot, not a boost volume
    {"boost_centre": (34.0, 0.0, 0.0), "boost_radius": 7.0},  # outside BODY (see below)
], ids=["no-boost", "small-hot-spot", "outside-body"])
def test_auto_keeps_the_arm_when_the_dose_does_not_contradict_it(tmp_path, kwargs):
    _single_level_case(**kwargs).write(tmp_path)
    result = rtcheck("check", tmp_path, "--protocol", PROTOCOL, "--arm", "auto", "--format", "json")
    assert result.exit_code in (0, 1), result.stderr
    assert json.loads(result.stdout)["protocol"]["arm"] == "cr-pr"


def test_a_boost_outside_the_outline_counts_without_it(tmp_path):
    """The region of the outside-body case above is more than 1 cc: refused when the grid is read whole."""
    _single_level_case(boost_centre=(34.0, 0.0, 0.0), boost_radius=7.0, body=False).write(tmp_path)
    result = rtcheck("check", tmp_path, "--protocol", PROTOCOL, "--arm", "auto")
    assert result.exit_code == 2 and "in the dose grid" in result.stderr
