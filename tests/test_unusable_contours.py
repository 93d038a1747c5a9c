"""Contour items that cannot be used, and ROI numbers given twice, are never graded (issue 12).

Before: such items were dropped and the organ graded on what was left (a hot spot on those planes vanished
from the cord maximum: a 51.75 Gy cord read as 32.13 Gy, per_protocol); duplicate ROI numbers let one ROI
take another's contours.
"""

import warnings

import numpy as np
import pytest
from pydicom.dataset import Dataset

from rtcheck.api import check_paths
from rtcheck.errors import InputError
from rtcheck.results import Status
from tests.cli_helpers import rtcheck
from tests.dicom_factory import Case, RoiShape

CORD_Y_MM = 25.0


def _dose(x, y, z):
    # Target 50.4 Gy; the cord at 30 Gy except a hot spot of 52 Gy on its planes z in [-2, 2] mm.
    target = 50.4 * (x**2 + y**2 <= 15.0**2)
    # Over the cord's contoured length only (|z| <= 20 mm), so it is complete by the contour completeness rule.
    cord = np.where((np.abs(y - CORD_Y_MM) <= 8.0) & (np.abs(z) <= 2.5), 52.0, 30.0) * (np.abs(y - CORD_Y_MM) <= 8.0) * (np.abs(z) <= 20.0)
    return np.maximum(target, cord)


def _case():
    return Case(
        [RoiShape("PTV", radius_mm=15.0, z_range_mm=(-20.0, 20.0), interpreted_type="PTV"),
         RoiShape("SpinalCord", centre_xy_mm=(0.0, CORD_Y_MM), radius_mm=4.0, z_range_mm=(-20.0, 20.0))],
        dose=_dose,
    )


def _cord_items(case):
    number = case.roi_number("SpinalCord")
    [rc] = [rc for rc in case.structure_set.ROIContourSequence if rc.ReferencedROINumber == number]
    return rc.ContourSequence


def _hot_item(case):
    """The cord's contour item on plane z = 0 mm (the hottest)."""
    return next(item for item in _cord_items(case) if abs(float(item.ContourData[2])) < 1e-6)


def _cord_check(tmp_path, case):
    case.write(tmp_path)
    [result] = check_paths([tmp_path], "escc-induction-icrt-ccrt", "cr-pr")
    return next(c for c in result.checks if c.id == "cord-max"), result


def test_an_intact_cord_shows_its_hot_spot(tmp_path):
    check, _ = _cord_check(tmp_path, _case())
    assert check.value == pytest.approx(52.0, abs=0.5) and check.status is Status.DEVIATION_UNACCEPTABLE


def _empty(item):
    item.ContourData = []
    del item.NumberOfContourPoints


def _not_a_multiple_of_three(item):
    item.ContourData = list(item.ContourData)[:-1]
    del item.NumberOfContourPoints


def _no_geometric_type(item):
    del item.ContourGeometricType


def _unknown_geometric_type(item):
    item.ContourGeometricType = "CLOSEDPLANAR_XOR"


def _point_count_disagrees(item):
    item.NumberOfContourPoints = int(item.NumberOfContourPoints) + 5


def _not_finite(item):
    values = list(item.ContourData)
    values[3] = "NaN"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom warns that NaN is no Decimal String: the damage wanted
        item.ContourData = values


def _two_points(item):
    item.ContourData = list(item.ContourData)[:6]
    item.NumberOfContourPoints = 2


@pytest.mark.parametrize(
    "damage, reason",
    [
        (_empty, "empty ContourData"),
        (_not_a_multiple_of_three, "not a multiple of 3"),
        (_no_geometric_type, "no ContourGeometricType"),
        (_unknown_geometric_type, "'CLOSEDPLANAR_XOR', which rtcheck does not evaluate"),
        (_point_count_disagrees, "NumberOfContourPoints"),
        (_not_finite, "not finite"),
        (_two_points, "CLOSED_PLANAR contour of 2 point(s)"),
    ],
)
def test_an_unusable_contour_item_on_the_hottest_plane_leaves_the_cord_not_evaluated(tmp_path, damage, reason):
    case = _case()
    damage(_hot_item(case))
    check, result = _cord_check(tmp_path, case)
    assert check.value is None and check.status is Status.NOT_EVALUATED
    assert reason in check.message and "ContourSequence item" in check.message
    assert result.verdict is not Status.PER_PROTOCOL


def test_duplicate_roi_numbers_are_refused_naming_the_file(tmp_path):
    case = _case()
    case.structure_set.StructureSetROISequence[1].ROINumber = case.structure_set.StructureSetROISequence[0].ROINumber
    paths = case.write(tmp_path)
    with pytest.raises(InputError, match="ROI number 1 twice") as caught:
        check_paths([tmp_path], "escc-induction-icrt-ccrt", "cr-pr")
    assert caught.value.path == str(paths["structure_set"])
    result = rtcheck("check", tmp_path, "--protocol", "escc-induction-icrt-ccrt", "--arm", "cr-pr")
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1 and str(paths["structure_set"]) in result.stderr


def test_two_contour_sequences_for_one_roi_are_refused(tmp_path):
    case = _case()
    extra = Dataset()
    extra.ReferencedROINumber = case.roi_number("SpinalCord")
    extra.ContourSequence = [_hot_item(case)]
    case.structure_set.ROIContourSequence.append(extra)
    case.write(tmp_path)
    with pytest.raises(InputError, match=r"ROIContourSequence \(3006,0039\) has two items for ROI number 2"):
        check_paths([tmp_path], "escc-induction-icrt-ccrt", "cr-pr")
