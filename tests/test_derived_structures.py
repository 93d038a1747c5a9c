"""Structures a protocol derives from others (unions, differences), on the engine's masks."""

import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from dicom_factory import Case, RoiShape
from rtcheck.api import check_paths
from rtcheck.dicom.planset import build_dvh_set, load_inputs
from rtcheck.dvh import Combination, compute_dvh
from rtcheck.errors import ProtocolError
from rtcheck.protocol import load_protocol_file
from rtcheck.results import Status

ROOT = Path(__file__).resolve().parents[1]
SEED = ROOT / "protocols" / "escc-induction-icrt-ccrt.yaml"


def disc_area(radius: float, points: int = 128) -> float:
    return points / 2 * radius**2 * math.sin(2 * math.pi / points)


def lateral_dose(x, y, z):
    """50.4 Gy near the axis, falling to ~5 Gy laterally (Gy), over the contoured length |z| <= 30 mm only
    (no dose beyond the organs' ends, so they are complete by rtcheck's completeness rule)."""
    return (5.0 + 45.4 * np.exp(-((x / 25.0) ** 2))) * (np.abs(z) <= 30.0)


def esophagus_case(lungs: list[RoiShape]) -> Case:
    rois = [
        RoiShape("PTV", radius_mm=12, z_range_mm=(-20, 20), points=128, interpreted_type="PTV"),
        *lungs,
        RoiShape("Heart", centre_xy_mm=(0, -40), radius_mm=10, z_range_mm=(-20, 0)),
        RoiShape("SpinalCord", centre_xy_mm=(0, 45), radius_mm=4, z_range_mm=(-30, 30)),
    ]
    return Case(rois, dose=lateral_dose, grid_min_mm=(-80, -60, -36), grid_max_mm=(80, 60, 36))


LEFT = RoiShape("Lung_L", centre_xy_mm=(45, 0), radius_mm=20, z_range_mm=(-30, 30), points=128)
RIGHT = RoiShape("Lung_R", centre_xy_mm=(-45, 0), radius_mm=20, z_range_mm=(-30, 30), points=128)


def test_lungs_are_the_union_of_left_and_right_when_no_lungs_roi_exists(tmp_path):
    esophagus_case([LEFT, RIGHT]).write(tmp_path / "split")
    both = RoiShape("Lungs", centre_xy_mm=(45, 0), radius_mm=20, z_range_mm=(-30, 30), points=128, also=(((-45, 0), 20),))
    esophagus_case([both]).write(tmp_path / "whole")
    [split] = check_paths([tmp_path / "split"], "escc-induction-icrt-ccrt", "cr-pr")
    [whole] = check_paths([tmp_path / "whole"], "escc-induction-icrt-ccrt", "cr-pr")
    split_checks = {c.id: c for c in split.checks}
    whole_checks = {c.id: c for c in whole.checks}
    for check_id in ("lungs-v20", "lungs-v5", "lungs-mean"):
        assert split_checks[check_id].status is not Status.NOT_EVALUATED
        assert split_checks[check_id].roi_name == "Lung_L | Lung_R"
        assert "derived" in split_checks[check_id].message
        assert split_checks[check_id].value == pytest.approx(whole_checks[check_id].value, abs=0.05)
    lungs = next(s for s in split.structures if s.structure == "Lungs")
    assert lungs.roi_number is None
    assert lungs.volume_cc == pytest.approx(2 * disc_area(20) * 62 / 1000, rel=0.01)


def test_a_lungs_roi_wins_over_the_derivation(tmp_path):
    lungs = RoiShape("Lungs", centre_xy_mm=(45, 0), radius_mm=20, z_range_mm=(-30, 30))
    esophagus_case([lungs, RIGHT]).write(tmp_path)
    [result] = check_paths([tmp_path], "escc-induction-icrt-ccrt", "cr-pr")
    assert next(c for c in result.checks if c.id == "lungs-v20").roi_name == "Lungs"


def test_a_derivation_with_a_missing_operand_is_not_evaluated(tmp_path):
    esophagus_case([LEFT]).write(tmp_path)
    [result] = check_paths([tmp_path], "escc-induction-icrt-ccrt", "cr-pr")
    check = next(c for c in result.checks if c.id == "lungs-v20")
    assert check.status is Status.NOT_EVALUATED
    assert "Lung_R" in check.message and "cannot be derived" in check.message


def test_ptv_minus_pgtv_in_the_sib_arm(tmp_path):
    rois = [
        RoiShape("PTV", radius_mm=15, z_range_mm=(-20, 20), points=128, interpreted_type="PTV"),
        RoiShape("PGTV", radius_mm=8, z_range_mm=(-10, 10), points=128, interpreted_type="PTV"),
        RoiShape("Lungs", centre_xy_mm=(45, 0), radius_mm=15, z_range_mm=(-20, 20)),
        RoiShape("SpinalCord", centre_xy_mm=(0, 40), radius_mm=4, z_range_mm=(-20, 20)),
    ]
    case = Case(rois, dose=lambda x, y, z: np.where(np.hypot(x, y) < 9, 59.92, 50.4) * np.exp(-((np.hypot(x, y) / 60) ** 4)),
                prescriptions=[("PGTV", 59.92), ("PTV", 50.4)], grid_min_mm=(-70, -60, -30), grid_max_mm=(70, 60, 30))
    case.write(tmp_path)
    [result] = check_paths([tmp_path], "escc-induction-icrt-ccrt", "sd-pd")
    ring = next(s for s in result.structures if s.structure == "PTV-PGTV")
    # Cylinders with end caps: PTV 42 mm long, PGTV 22 mm.
    expected = (disc_area(15) * 42 - disc_area(8) * 22) / 1000
    assert ring.volume_cc == pytest.approx(expected, rel=0.01)
    check = next(c for c in result.checks if c.id == "ptv-minus-pgtv-d2")
    assert check.roi_name == "PTV - PGTV" and not check.counts
    # The ring holds the high-dose rim just outside the PGTV: its hot spot is measured against 50.4 Gy.
    assert check.value > 100


def test_engine_union_intersection_and_difference(tmp_path):
    shapes = [
        RoiShape("A", centre_xy_mm=(-4, 0), radius_mm=8, z_range_mm=(-10, 10), points=256),
        RoiShape("B", centre_xy_mm=(4, 0), radius_mm=8, z_range_mm=(-10, 10), points=256),
    ]
    Case(shapes, dose=lambda x, y, z: np.full_like(x, 10.0), prescriptions=[]).write(tmp_path)
    plan_set = build_dvh_set(load_inputs([tmp_path]))
    a, b = (plan_set.structure_set.roi_by_name(n) for n in "AB")
    lens = 2 * 64 * math.acos(0.5) - 4 * math.sqrt(256 - 64)  # two radius-8 discs 8 mm apart
    disc = math.pi * 64
    expected = {"union": 2 * disc - lens, "intersection": lens, "subtract": disc - lens}
    for operation, area in expected.items():
        dvh = compute_dvh(Combination(operation, operation, (a, b)), plan_set.dose)
        assert dvh.volume_cc == pytest.approx(area * 22 / 1000, rel=0.01), operation
        assert dvh.mean_gy == pytest.approx(10.0, abs=1e-3)


def _broken(tmp_path, mutate) -> Path:
    data = yaml.safe_load(SEED.read_text(encoding="utf-8"))
    mutate(data["structures"])
    path = tmp_path / "derived.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "mutate, words",
    [
        (lambda s: s["Lungs"].update(derived={"union": ["Lung_L", "Lung_X"]}), "structures.Lungs.derived.union: unknown structure 'Lung_X'"),
        (lambda s: s["Lungs"].update(derived={"merge": ["Lung_L", "Lung_R"]}), "structures.Lungs.derived: expected one of union"),
        (lambda s: s["Lungs"].update(derived={"union": ["Lung_L"]}), "at least two structures"),
        (lambda s: s["Lung_L"].update(derived={"union": ["Lungs", "Lung_R"]}), "derivation cycle"),
        (lambda s: s["Heart"].update(aliases=[]), "non-empty unless the structure is derived"),
    ],
)
def test_malformed_derivations_are_refused(tmp_path, mutate, words):
    with pytest.raises(ProtocolError, match="derived.yaml") as info:
        load_protocol_file(_broken(tmp_path, mutate))
    assert words in str(info.value)
