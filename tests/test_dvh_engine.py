"""DVH engine against closed-form expectations on DICOM written with pydicom."""

import math

import numpy as np
import pytest

from dicom_factory import Case, RoiShape
from rtcheck.dicom.planset import build_dvh_set, load_inputs
from rtcheck.dvh import compute_dvh
from rtcheck.errors import MetricUndefinedError
from rtcheck.metrics import metric_value, parse_metric


def polygon_area(radius: float, points: int = 64) -> float:
    return points / 2 * radius**2 * math.sin(2 * math.pi / points)


def dvh_of(tmp_path, case: Case, roi_name: str):
    case.write(tmp_path)
    plan_set = build_dvh_set(load_inputs([tmp_path]))
    roi = plan_set.structure_set.roi_by_name(roi_name)
    return compute_dvh(roi, plan_set.dose)


def test_uniform_dose_volume_includes_end_caps(tmp_path):
    case = Case([RoiShape("PTV", radius_mm=10, z_range_mm=(-20, 20))], dose=lambda x, y, z: np.full_like(x, 10.0))
    dvh = dvh_of(tmp_path, case, "PTV")
    # 21 planes 2 mm apart, each a 2 mm slab: the ends reach 1 mm beyond the outer contours.
    expected_cc = polygon_area(10) * 42 / 1000
    assert dvh.volume_cc == pytest.approx(expected_cc, rel=0.01)
    assert dvh.outside_volume_cc == 0
    assert dvh.min_gy == pytest.approx(10, abs=1e-3)
    assert dvh.max_gy == pytest.approx(10, abs=1e-3)
    assert metric_value(parse_metric("D99%[Gy]"), dvh) == pytest.approx(10, abs=1e-3)
    assert metric_value(parse_metric("V10Gy[%]"), dvh) == pytest.approx(100, abs=0.01)
    assert metric_value(parse_metric("V10.01Gy[%]"), dvh) == 0


def test_lateral_gradient_statistics(tmp_path):
    # 0.5 Gy/mm across x, 20 Gy on the axis: symmetric, so mean = median = 20 Gy.
    case = Case([RoiShape("PTV", radius_mm=10, z_range_mm=(-10, 10))], dose=lambda x, y, z: 20 + 0.5 * x)
    dvh = dvh_of(tmp_path, case, "PTV")
    assert dvh.mean_gy == pytest.approx(20, abs=0.02)
    assert metric_value(parse_metric("D50%[Gy]"), dvh) == pytest.approx(20, abs=0.05)
    assert metric_value(parse_metric("V20Gy[%]"), dvh) == pytest.approx(50, abs=0.5)
    assert dvh.max_gy == pytest.approx(25, abs=0.3)
    assert dvh.min_gy == pytest.approx(15, abs=0.3)
    # Circular segment: the fraction of a disc beyond x = r cos(t) is (t - sin t cos t) / pi.
    t = 1.0
    fraction = (t - math.sin(t) * math.cos(t)) / math.pi
    d = 20 + 0.5 * 10 * math.cos(t)
    assert metric_value(parse_metric(f"V{d:.4f}Gy[%]"), dvh) == pytest.approx(fraction * 100, abs=0.6)


def test_axial_gradient_between_dose_planes(tmp_path):
    # 0.25 Gy/mm along z; contours -20..20 mm with 2 mm end caps -> uniform z on [-21, 21].
    case = Case([RoiShape("PTV", radius_mm=10, z_range_mm=(-20, 20))], dose=lambda x, y, z: 30 + 0.25 * z,
                grid_spacing_mm=(2.0, 2.0, 3.0), grid_min_mm=(-40, -40, -33), grid_max_mm=(40, 40, 33))
    dvh = dvh_of(tmp_path, case, "PTV")
    assert dvh.min_gy == pytest.approx(30 - 0.25 * 21, abs=0.15)
    assert dvh.max_gy == pytest.approx(30 + 0.25 * 21, abs=0.15)
    assert metric_value(parse_metric("D95%[Gy]"), dvh) == pytest.approx(30 + 0.25 * (21 - 0.95 * 42), abs=0.1)
    assert dvh.mean_gy == pytest.approx(30, abs=0.02)


def test_small_structure_never_reports_zero_near_minimum(tmp_path):
    # A 1.5 mm radius, 3-plane structure in a steep gradient: D99 must sit near its minimum, not at 0.
    case = Case([RoiShape("Nodule", radius_mm=1.5, z_range_mm=(-2, 2), points=24)], dose=lambda x, y, z: 40 + 1.0 * x)
    dvh = dvh_of(tmp_path, case, "Nodule")
    assert dvh.volume_cc == pytest.approx(polygon_area(1.5, 24) * 6 / 1000, rel=0.05)
    d99 = metric_value(parse_metric("D99%[Gy]"), dvh)
    assert dvh.min_gy <= d99 < dvh.min_gy + 0.5
    assert d99 > 38
    with pytest.raises(MetricUndefinedError):
        metric_value(parse_metric("D2cc[Gy]"), dvh)


def test_structure_partly_outside_the_dose_grid(tmp_path):
    # Grid centres reach x = 40 mm, so the grid covers x <= 41 mm; the disc reaches 48 mm.
    case = Case([RoiShape("Lungs", centre_xy_mm=(38, 0), radius_mm=10, z_range_mm=(-10, 10))], dose=lambda x, y, z: np.full_like(x, 5.0))
    dvh = dvh_of(tmp_path, case, "Lungs")
    t = math.acos(3 / 10)  # chord at x = 41 mm, 3 mm from the centre
    outside = (t - math.sin(t) * math.cos(t)) / math.pi
    assert dvh.fraction_outside == pytest.approx(outside, abs=0.01)
    assert dvh.total_volume_cc == pytest.approx(polygon_area(10) * 22 / 1000, rel=0.01)


def test_hole_inside_contour_is_excluded(tmp_path):
    case = Case([RoiShape("Ring", radius_mm=12, holes_radius_mm=6, z_range_mm=(-10, 10))], dose=lambda x, y, z: np.full_like(x, 3.0))
    dvh = dvh_of(tmp_path, case, "Ring")
    assert dvh.volume_cc == pytest.approx((polygon_area(12) - polygon_area(6)) * 22 / 1000, rel=0.01)


def test_flipped_dose_orientation_gives_the_same_dvh(tmp_path):
    def dose(x, y, z):
        return 40 + 0.3 * x - 0.2 * y + 0.1 * z

    shapes = [RoiShape("PTV", centre_xy_mm=(5, -3), radius_mm=8, z_range_mm=(-10, 10))]
    reference = dvh_of(tmp_path / "a", Case(shapes, dose=dose), "PTV")

    flipped = Case(shapes, dose=dose)
    ds = flipped.rt_dose
    frames, rows, cols = int(ds.NumberOfFrames), int(ds.Rows), int(ds.Columns)
    pixels = np.frombuffer(ds.PixelData, dtype="<u4").reshape(frames, rows, cols)
    # Rows run towards -x and columns towards -y, starting from the far corner.
    ds.PixelData = np.ascontiguousarray(pixels[:, ::-1, ::-1]).tobytes()
    x, y, _ = flipped.axes()
    ds.ImageOrientationPatient = [-1, 0, 0, 0, -1, 0]
    ds.ImagePositionPatient = [float(x[-1]), float(y[-1]), float(ds.ImagePositionPatient[2])]
    other = dvh_of(tmp_path / "b", flipped, "PTV")
    assert other.volume_cc == pytest.approx(reference.volume_cc, rel=1e-9)
    assert other.mean_gy == pytest.approx(reference.mean_gy, abs=1e-6)
    assert other.max_gy == pytest.approx(reference.max_gy, abs=1e-6)
