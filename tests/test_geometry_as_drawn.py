"""Each ROI's planes stand for the thickness its own planes give them (issue 12, "Geometry misread").

Built with pydicom (tests/dicom_factory.py) and read through ``rtcheck.dvh_statistics``, as ``rtcheck dvh`` does.
"""

import math

import numpy as np
import pytest

from rtcheck.api import dvh_statistics
from rtcheck.dvh.engine import PlaneGeometry
from tests.dicom_factory import Case, RoiShape

GRID = dict(grid_spacing_mm=(2.0, 2.0, 2.0), grid_min_mm=(-60.0, -60.0, -50.0), grid_max_mm=(60.0, 60.0, 50.0))


def _dose(x, y, z):
    # A hot spot at the origin on a gradient: min, mean and max depend on which planes stand for what.
    return 40.0 * np.exp(-(x**2 + y**2 + z**2) / 800.0) + 0.1 * (z + 50.0)


def _statistics(tmp_path, shapes, name="case"):
    folder = tmp_path / name
    folder.mkdir()
    Case(shapes, dose=_dose, plane_mm=3.0, prescriptions=[], **GRID).write(folder)
    rows, _ = dvh_statistics([folder])
    return {row.name: row for row in rows}


def _numbers(row):
    return (row.volume_cc, row.min_gy, row.mean_gy, row.max_gy)


BODY = RoiShape("BODY", radius_mm=50.0, z_range_mm=(-42.0, 42.0))
CORD = RoiShape("SpinalCord", centre_xy_mm=(0.0, 25.0), radius_mm=5.0, z_range_mm=(-36.0, 36.0))
PTV = RoiShape("PTV", radius_mm=15.0, z_range_mm=(-12.0, 12.0))


def test_a_helper_roi_on_half_millimetre_planes_changes_no_other_roi(tmp_path):
    """Before: the helper's 0.5 mm planes became the structure set's spacing, dividing BODY's volume by ~6."""
    without = _statistics(tmp_path, [BODY, CORD, PTV], "without")
    helper = RoiShape("zHelper", centre_xy_mm=(20.0, -20.0), radius_mm=4.0, planes_mm=tuple(np.arange(-10.0, 10.01, 0.5)))
    with_helper = _statistics(tmp_path, [BODY, CORD, PTV, helper], "with")
    for name in ("BODY", "SpinalCord", "PTV"):
        assert _numbers(with_helper[name]) == _numbers(without[name]), name
    # And the numbers are those of the drawing: 29 planes 3 mm apart, 87 mm of a 64-gon of radius 50 mm.
    area = 64 / 2 * 50.0**2 * math.sin(2 * math.pi / 64)
    assert without["BODY"].volume_cc == pytest.approx(area * 87.0 / 1000, rel=2e-3)
    # The helper itself: 41 planes 0.5 mm apart, 20.5 mm thick.
    helper_area = 64 / 2 * 4.0**2 * math.sin(2 * math.pi / 64)
    assert with_helper["zHelper"].volume_cc == pytest.approx(helper_area * 20.5 / 1000, rel=2e-2)


def _variable_planes(low, high):
    """5 mm planes outside [-10, 10] mm, 1 mm through it (the target), as many CT protocols slice."""
    return tuple(sorted({*np.arange(low, -10.0, 5.0), *np.arange(-10.0, 10.01, 1.0), *np.arange(high, 10.0, -5.0)}))


def test_variable_plane_spacing_gives_the_volumes_of_uniform_spacing(tmp_path):
    """Before: the 1 mm planes set the spacing and every 5 mm gap became a separation, halving volumes.

    The same cylinders drawn on 5 mm planes throughout (the ends, 2.5 mm beyond the last planes, agree).
    """
    shapes_variable = [
        RoiShape("BODY", radius_mm=50.0, planes_mm=_variable_planes(-40.0, 40.0)),
        RoiShape("SpinalCord", centre_xy_mm=(0.0, 25.0), radius_mm=5.0, planes_mm=_variable_planes(-35.0, 35.0)),
        RoiShape("PTV", radius_mm=15.0, planes_mm=tuple(np.arange(-8.0, 8.01, 1.0))),
    ]
    shapes_uniform = [
        RoiShape("BODY", radius_mm=50.0, planes_mm=tuple(np.arange(-40.0, 40.01, 5.0))),
        RoiShape("SpinalCord", centre_xy_mm=(0.0, 25.0), radius_mm=5.0, planes_mm=tuple(np.arange(-35.0, 35.01, 5.0))),
        RoiShape("PTV", radius_mm=15.0, planes_mm=tuple(np.arange(-8.0, 8.01, 1.0))),
    ]
    variable = _statistics(tmp_path, shapes_variable, "variable")
    uniform = _statistics(tmp_path, shapes_uniform, "uniform")
    for name in ("BODY", "SpinalCord", "PTV"):
        assert variable[name].volume_cc == pytest.approx(uniform[name].volume_cc, rel=0.01), name
        assert variable[name].mean_gy == pytest.approx(uniform[name].mean_gy, rel=0.01), name


def test_a_skipped_stretch_still_separates_parts(tmp_path):
    """Two nodes 30 mm apart on 3 mm planes are two parts, not a column joining them."""
    nodes = RoiShape("Nodes", radius_mm=8.0, planes_mm=(-30.0, -27.0, -24.0, -21.0, 9.0, 12.0, 15.0, 18.0))
    rows = _statistics(tmp_path, [nodes])
    area = 64 / 2 * 8.0**2 * math.sin(2 * math.pi / 64)
    assert rows["Nodes"].volume_cc == pytest.approx(area * 24.0 / 1000, rel=1e-2)


def test_a_lone_plane_between_separations_keeps_its_neighbours_spacing():
    z = np.array([0.0, 3.0, 6.0, 36.0, 66.0, 69.0, 72.0])
    joined, below, above = PlaneGeometry(None, 2.5).thicknesses(z)
    assert joined.tolist() == [True, True, False, False, True, True]
    assert (below[3], above[3]) == (1.5, 1.5)
    assert (below[0], above[-1]) == (1.5, 1.5)


def test_the_ct_slices_decide_where_variable_spacing_skips_a_slice():
    slices = np.array([*np.arange(-20.0, 0.0, 5.0), *np.arange(0.0, 10.01, 1.0), *np.arange(15.0, 30.01, 5.0)])
    # On every slice from -5 to 15: joined throughout, though the gaps are 5 and 1 mm.
    z = np.array([-5.0, 0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 15.0])
    joined, below, above = PlaneGeometry(slices, 2.0).thicknesses(z)
    assert joined.all()
    assert below[0] == 2.5 and above[-1] == 2.5
    # Skipping the slice at 3 mm separates, though the gap (2 mm) is finer than the 5 mm elsewhere.
    z_skip = np.array([-5.0, 0.0, 1.0, 2.0, 4.0, 5.0])
    joined, below, above = PlaneGeometry(slices, 2.0).thicknesses(z_skip)
    assert joined.tolist() == [True, True, True, False, True]
    assert above[3] == 0.5 and below[4] == 0.5
