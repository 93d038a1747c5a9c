"""Clinically common plans a trial's central review would call deviations (issue 13), built with pydicom.

One small thoracic anatomy (cylinders along z, mm): BODY, PTV around a GTV, two lungs, heart,
spinal cord; each case changes the dose or the contours the way a physicist found rtcheck
passing a plan it should not, and asserts the verdict a careful reviewer gives.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from cli_helpers import rtcheck
from dicom_factory import Case, RoiShape
from rtcheck.api import check_paths
from rtcheck.results import CheckResult, Status

PROTOCOL = "escc-induction-icrt-ccrt"
RX_GY = 50.4

BODY = RoiShape("BODY", radius_mm=(90.0, 70.0), z_range_mm=(-70.0, 70.0), interpreted_type="EXTERNAL")
PTV = RoiShape("PTV", radius_mm=15.0, z_range_mm=(-30.0, 30.0), interpreted_type="PTV")
GTV = RoiShape("GTV", radius_mm=7.0, z_range_mm=(-16.0, 16.0), interpreted_type="GTV")
LUNGS = RoiShape("Lungs", centre_xy_mm=(-45.0, 0.0), radius_mm=20.0, z_range_mm=(-60.0, 60.0), also=(((45.0, 0.0), 20.0),))
# The heart's apex tapers (its superior end lies in the field, as in a mid-thoracic plan).
HEART = RoiShape("Heart", centre_xy_mm=(0.0, -45.0), radius_mm=14.0, z_range_mm=(-60.0, 0.0),
                 profile=lambda z: float(np.sqrt(max(0.0, 1.0 - ((z + 30.0) / 32.0) ** 2))))
CORD = RoiShape("SpinalCord", centre_xy_mm=(0.0, 45.0), radius_mm=5.0, z_range_mm=(-70.0, 70.0))
ANATOMY = [BODY, PTV, GTV, LUNGS, HEART, CORD]


def _sigmoid(u: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-u))


def plateau(x, y, z, radius_mm: float = 15.0, half_length_mm: float = 30.0, centre=(0.0, 0.0)) -> np.ndarray:
    """1 inside a cylinder (radius + ~6 mm margin), falling off over ~3 mm outside."""
    r = np.hypot(x - centre[0], y - centre[1])
    return _sigmoid((radius_mm + 6.0 - r) / 1.2) * _sigmoid((half_length_mm + 6.0 - np.abs(z)) / 1.2)


def base_dose(x, y, z) -> np.ndarray:
    """A compliant 50.4 Gy plan: PTV plateau at 101 %, a low bath elsewhere (cord ~5 Gy)."""
    bath = 7.0 * np.exp(-np.hypot(x, y) / 40.0) * _sigmoid((45.0 - np.abs(z)) / 5.0)
    inside = plateau(x, y, z)
    return RX_GY * 1.01 * inside + bath * (1.0 - inside)


def case(rois=None, dose=base_dose, **kwargs) -> Case:
    grid = dict(grid_spacing_mm=(4.0, 4.0, 4.0), grid_min_mm=(-96.0, -76.0, -76.0), grid_max_mm=(96.0, 76.0, 76.0))
    grid.update(kwargs)
    return Case(list(ANATOMY if rois is None else rois), dose=dose, plane_mm=4.0, **grid)


def check(tmp_path: Path, c: Case, arm: str = "cr-pr", **options) -> CheckResult:
    folder = tmp_path / "plan"
    c.write(folder)
    [result] = check_paths([folder], PROTOCOL, arm, **options)
    return result


def by_id(result: CheckResult) -> dict:
    return {c.id: c for c in result.checks}


def test_the_base_case_is_per_protocol(tmp_path):
    result = check(tmp_path, case())
    failing = {c.id: (c.status.value, c.value, c.message) for c in result.counted if c.status is not Status.PER_PROTOCOL}
    assert result.verdict is Status.PER_PROTOCOL, failing


def test_a_contoured_organ_over_its_limit_counts_and_every_report_agrees(tmp_path):
    """Why 1: cord PRV D0.03cc 54.9 Gy and Stomach-PTV V50Gy 29.5 cc were per protocol because the
    protocol marked them optional; contoured, they count (graded-if-contoured)."""
    prv = RoiShape("SpinalCord_PRV05", centre_xy_mm=(0.0, 25.0), radius_mm=5.0, z_range_mm=(-70.0, 70.0))
    stomach = RoiShape("Stomach", centre_xy_mm=(40.0, -40.0), radius_mm=18.0, z_range_mm=(-64.0, -20.0),
                       profile=lambda z: float(np.sqrt(max(0.0, 1.0 - ((z + 42.0) / 24.0) ** 2))))  # closed ends

    def dose(x, y, z):
        # 54-55 Gy reaches the PRV's edge; a 52 Gy tongue covers the stomach outside the PTV.
        tongue = 52.0 * plateau(x, y, z + 42.0, radius_mm=18.0, half_length_mm=22.0, centre=(40.0, -40.0))
        return np.maximum.reduce([base_dose(x, y, z), 54.9 * plateau(x, y, z, 0.0, 30.0, (0.0, 24.0)), tongue])

    folder = tmp_path / "plan"
    case([*ANATOMY, prv, stomach], dose=dose).write(folder)
    out = tmp_path / "out.xml"
    result = rtcheck("check", folder, "--protocol", PROTOCOL, "--arm", "cr-pr", "--format", "json", "--junit", out)
    document = json.loads(result.stdout)
    checks = {c["id"]: c for c in document["checks"]}
    assert checks["cord-prv-max"]["value"] > 50 and checks["cord-prv-max"]["status"] == "deviation_unacceptable"
    assert checks["stomach-ptv-v50"]["value"] > 25 and checks["stomach-ptv-v50"]["status"] == "deviation_unacceptable"
    assert checks["cord-prv-max"]["counts"] and checks["cord-prv-max"]["constraint_kind"] == "graded-if-contoured"
    assert document["verdict"] == "deviation_unacceptable" and result.exit_code == 1
    # The JUnit file fails exactly the checks behind the verdict; the table says which did not count.
    suite = ET.parse(out).getroot().find("testsuite")
    failed = {case.get("name").split()[0] for case in suite.findall("testcase") if case.find("failure") is not None}
    assert failed == {c["id"] for c in document["checks"] if c["counts"] and c["status"] == "deviation_unacceptable"}
    table = rtcheck("check", folder, "--protocol", PROTOCOL, "--arm", "cr-pr").stdout
    assert "Verdict: DEVIATION" in table
    assert any(line.startswith("NOT EVALUATED (not contoured)") and "liver-mean" in line for line in table.splitlines())


def test_an_informational_check_never_makes_the_verdict(tmp_path):
    """The SIB ring's D2% is informational: shown, never counted, even as a deviation."""
    from rtcheck.protocol import find_protocol

    protocol = find_protocol(PROTOCOL)
    ring = next(c for c in protocol.arm("sd-pd").constraints if c.id == "ptv-minus-pgtv-d2")
    assert ring.kind == "informational"


def test_a_plan_delivering_15_percent_above_its_prescription_deviates(tmp_path):
    """Why 2: stated 50.4 Gy, delivered PTV D50 ~58 Gy (the whole PTV above 110 %)."""
    result = check(tmp_path, case(dose=lambda x, y, z: base_dose(x, y, z) * 1.145))
    checks = by_id(result)
    assert checks["rx-ptv-total-dose"].status is Status.PER_PROTOCOL  # the stated prescription is right
    assert checks["ptv-d50-high"].value > 110 and checks["ptv-d50-high"].status is Status.DEVIATION_UNACCEPTABLE
    assert checks["ptv-mean-high"].status is Status.DEVIATION_UNACCEPTABLE
    assert result.verdict is Status.DEVIATION_UNACCEPTABLE


def test_a_small_130_percent_hot_spot_inside_the_ptv_deviates(tmp_path):
    """Why 3: 0.3 cc at 130 % inside the PTV leaves D2% fine; the near-point maximum D0.03cc is graded."""
    def dose(x, y, z):
        spot = np.sqrt((x - 6.0) ** 2 + y**2 + z**2) < 4.2  # ~0.3 cc
        return np.where(spot, RX_GY * 1.30, base_dose(x, y, z))

    checks = by_id(result := check(tmp_path, case(dose=dose)))
    assert checks["ptv-d2"].status is Status.PER_PROTOCOL and not checks["ptv-d2"].counts
    assert checks["ptv-max"].value > 120 and checks["ptv-max"].status is Status.DEVIATION_UNACCEPTABLE
    assert result.verdict is Status.DEVIATION_UNACCEPTABLE


def test_a_119_percent_hot_spot_in_normal_tissue_outside_the_ptv_deviates(tmp_path):
    """Why 3: 119 % over several cc of tissue outside the PTV (Body minus PTV, RTOG 0117)."""
    def dose(x, y, z):
        outside = np.hypot(x + 30.0, y - 20.0) < 8.0
        return np.where(outside & (np.abs(z) < 15), RX_GY * 1.19, base_dose(x, y, z))

    checks = by_id(result := check(tmp_path, case(dose=dose)))
    assert checks["normal-tissue-max"].value > 115
    assert checks["normal-tissue-max"].status is Status.DEVIATION_UNACCEPTABLE
    assert checks["normal-tissue-max"].roi_name == "BODY - PTV"
    assert result.verdict is Status.DEVIATION_UNACCEPTABLE


def test_a_cold_gtv_deviates_although_ptv_d95_and_d99_pass(tmp_path):
    """Why 4: a GTV at 60 % minimum (D98 ~77 %) inside a PTV whose D95/D99 are met."""
    def dose(x, y, z):
        cold = np.exp(-((x - 4.0) ** 2 + y**2 + (z - 12.0) ** 2) / 8.0)  # a ~3 mm cold core in the GTV
        return base_dose(x, y, z) * (1.0 - 0.5 * cold)

    checks = by_id(result := check(tmp_path, case(dose=dose)))
    assert checks["ptv-d95"].status is Status.PER_PROTOCOL and checks["ptv-d99"].status is Status.PER_PROTOCOL
    assert checks["gtv-near-min"].value < 85 and checks["gtv-near-min"].status is Status.DEVIATION_UNACCEPTABLE
    assert result.verdict is Status.DEVIATION_UNACCEPTABLE


PGTV = RoiShape("PGTV", radius_mm=8.0, z_range_mm=(-20.0, 20.0), interpreted_type="PTV")
PGTVND = RoiShape("PGTVnd", centre_xy_mm=(-6.0, 6.0), radius_mm=3.5, z_range_mm=(20.0, 28.0), interpreted_type="PTV")
BOOST_GY = 59.92


def sib_dose(x, y, z, spill_mm: float = 0.0, nodal_factor: float = 0.0) -> np.ndarray:
    """PTV at 50.4 Gy, PGTV (radius 8 mm, |z| < 20) at 59.92 Gy, grown by ``spill_mm``; a nodal boost at ``nodal_factor``."""
    boost = BOOST_GY * 1.01 * _sigmoid((8.0 + 3.0 + spill_mm - np.hypot(x, y)) / 0.7) * _sigmoid((23.0 + spill_mm - np.abs(z)) / 0.7)
    nodal = BOOST_GY * 1.01 * nodal_factor * _sigmoid((6.0 - np.hypot(x + 6.0, y - 6.0)) / 0.7) * _sigmoid((7.0 - np.abs(z - 24.0)) / 0.7)
    return np.maximum.reduce([base_dose(x, y, z), boost, nodal])


def sib_case(dose, rois=None) -> Case:
    c = case([*ANATOMY, PGTV] if rois is None else rois, dose=dose)
    return replace(c, prescriptions=[("PGTV", BOOST_GY), ("PTV", RX_GY)])


def test_a_nodal_boost_at_81_percent_deviates(tmp_path):
    """Why 5: a second boost volume (PGTVnd) at 81 % of 59.92 Gy was never mentioned."""
    c = sib_case(lambda x, y, z: sib_dose(x, y, z, nodal_factor=0.81), rois=[*ANATOMY, PGTV, PGTVND])
    checks = by_id(result := check(tmp_path, c, arm="sd-pd"))
    assert checks["pgtv-d95"].status is Status.PER_PROTOCOL
    assert checks["pgtvnd-d95"].counts and checks["pgtvnd-d95"].value < 85
    assert checks["pgtvnd-d95"].status is Status.DEVIATION_UNACCEPTABLE
    assert result.verdict is Status.DEVIATION_UNACCEPTABLE


def test_a_boost_spilling_over_the_elective_ptv_deviates(tmp_path):
    """Why 5: the boost's 95 % isodose over most of the elective PTV (ring check was optional)."""
    compliant = check(tmp_path / "a", sib_case(sib_dose), arm="sd-pd")
    assert compliant.verdict is Status.PER_PROTOCOL, {c.id: c.value for c in compliant.counted if c.status is not Status.PER_PROTOCOL}
    spilled = check(tmp_path / "b", sib_case(lambda x, y, z: sib_dose(x, y, z, spill_mm=6.0)), arm="sd-pd")
    checks = by_id(spilled)
    assert checks["boost-spill"].value > 50 and checks["boost-spill"].status is Status.DEVIATION_UNACCEPTABLE
    assert checks["elective-d50-high"].status is Status.DEVIATION_UNACCEPTABLE
    assert spilled.verdict is Status.DEVIATION_UNACCEPTABLE


def test_lungs_contoured_above_the_ptv_only_are_not_evaluated_with_their_extents(tmp_path):
    """Why 6: organs contoured only outside the field were graded as complete."""
    short_lungs = replace(LUNGS, z_range_mm=(36.0, 60.0))
    result = check(tmp_path, case([BODY, PTV, GTV, short_lungs, HEART, CORD]))
    lungs = by_id(result)["lungs-v20"]
    assert lungs.status is Status.NOT_EVALUATED and lungs.counts
    assert "contoured from z = 36.0 to 60.0 mm" in lungs.message and "inferior end" in lungs.message
    assert result.verdict is Status.NOT_EVALUATED
    # The complete organs of the same plan are graded.
    assert by_id(result)["heart-v40"].status is Status.PER_PROTOCOL
