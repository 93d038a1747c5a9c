"""DVH engine against closed-form truth on shapes the Nelms set lacks.

Spheres, cylinders and cones of 0.5 to 300 cc, contoured every 1-3 mm, in
linear dose gradients along x, y and z, on dose grids offset from the shapes
by fractions of a voxel.  Files are real DICOM written with pydicom.

Truth conventions (the engine's, see README "How the DVH is computed"): a
cylinder or a cone's base extends half a plane spacing beyond its end contour;
a sphere is its geometric volume.

Tolerances: volumes within 2 % (4 % for the 0.5 cc sphere at 2-3 mm planes,
where only 3-5 contours describe it: three slabs of 3 mm already hold 2.9 %
more than the sphere, and its D95 within 5 % of the dose range
instead of 2 %: the cold cap is then placed to about half a millimetre); the mean of a linear dose, which is
the dose at the centroid, within 0.5 % of the dose range across the
structure; minimum and maximum within 2 % of that range; D95/D5 of a
cylinder along a z gradient (uniform in dose) within 1 %.  These are tighter
than the 3 % criterion of Nelms et al. and leave room only for the sampling
the engine documents.
"""

import math

import pytest

from dicom_factory import Case, RoiShape
from rtcheck.dicom.planset import build_dvh_set, load_inputs
from rtcheck.dvh import compute_dvh
from rtcheck.metrics import metric_value, parse_metric

GRADIENT_GY_PER_MM = 0.5
CENTRE_GY = 60.0
AXES = {"x": 0, "y": 1, "z": 2}


def linear_dose(axis: str, centre=(0.0, 0.0, 0.0)):
    k = AXES[axis]

    def dose(x, y, z):
        return CENTRE_GY + GRADIENT_GY_PER_MM * ((x, y, z)[k] - centre[k])

    return dose


def grid_for(half_extent_mm, offset_fraction=(0.3, 0.7, 0.5), spacing=(2.5, 2.5, 3.0)):
    """A grid covering +-half_extent_mm (one value, or one per axis), offset from the shapes."""
    extents = half_extent_mm if isinstance(half_extent_mm, tuple) else (half_extent_mm,) * 3
    lo = tuple(-e - 2 * s + f * s for e, s, f in zip(extents, spacing, offset_fraction))
    hi = tuple(e + 2 * s + f * s for e, s, f in zip(extents, spacing, offset_fraction))
    return dict(grid_spacing_mm=spacing, grid_min_mm=lo, grid_max_mm=hi)


def dvh_of(tmp_path, shape: RoiShape, plane_mm: float, dose, half_extent_mm: float, **grid):
    case = Case([shape], dose=dose, plane_mm=plane_mm, prescriptions=[], **(grid or grid_for(half_extent_mm)))
    case.write(tmp_path)
    plan_set = build_dvh_set(load_inputs([tmp_path]))
    roi = plan_set.structure_set.roi_by_name(shape.name)
    return compute_dvh(roi, plan_set.dose)


def polygon_area(radius: float, points: int) -> float:
    return points / 2 * radius**2 * math.sin(2 * math.pi / points)


def sphere_planes(radius: float, plane_mm: float) -> tuple[float, float]:
    # Planes on multiples of the spacing strictly inside the sphere (no pole on a plane).
    k = math.floor((radius - 1e-6) / plane_mm)
    return -k * plane_mm, k * plane_mm


@pytest.mark.parametrize("volume_cc", [0.5, 7.2, 300.0])
@pytest.mark.parametrize("plane_mm", [1.0, 2.0, 3.0])
@pytest.mark.parametrize("axis", ["x", "y", "z"])
def test_sphere(tmp_path, volume_cc, plane_mm, axis):
    radius = (3 * volume_cc * 1000 / (4 * math.pi)) ** (1 / 3)
    shape = RoiShape("Sphere", radius_mm=radius, z_range_mm=sphere_planes(radius, plane_mm), points=128,
                     profile=lambda z: math.sqrt(max(0.0, 1 - (z / radius) ** 2)))
    dvh = dvh_of(tmp_path, shape, plane_mm, linear_dose(axis), radius)
    # Three contours 3 mm apart on a 4.9 mm sphere: the slabs alone hold 2.9 % more than the sphere.
    volume_tolerance = 0.04 if volume_cc < 1 and plane_mm >= 2 else 0.02
    assert dvh.volume_cc == pytest.approx(volume_cc, rel=volume_tolerance)
    spread = 2 * radius * GRADIENT_GY_PER_MM
    assert dvh.mean_gy == pytest.approx(CENTRE_GY, abs=0.005 * spread)
    # Half the volume lies on each side of the centre plane.
    assert metric_value(parse_metric("D50%[Gy]"), dvh) == pytest.approx(CENTRE_GY, abs=0.01 * spread)
    # A cap of height h holds pi h^2 (3R - h) / 3: D95 sits where the cap is 5 % of the sphere.
    h = _cap_height(radius, 0.95)
    d95 = CENTRE_GY - GRADIENT_GY_PER_MM * (radius - h)
    few_contours = volume_cc < 1 and plane_mm >= 2  # 3-5 contours: the cold cap is placed to ~0.5 mm
    assert metric_value(parse_metric("D95%[Gy]"), dvh) == pytest.approx(d95, abs=(0.05 if few_contours else 0.02) * spread)


def _cap_height(radius: float, hottest_fraction: float) -> float:
    """Height of the cold cap holding (1 - hottest_fraction) of a sphere, by bisection."""
    target = (1 - hottest_fraction) * 4 / 3 * math.pi * radius**3
    lo, hi = 0.0, 2 * radius
    for _ in range(60):
        h = (lo + hi) / 2
        if math.pi * h * h * (3 * radius - h) / 3 < target:
            lo = h
        else:
            hi = h
    return (lo + hi) / 2


@pytest.mark.parametrize("radius_mm, length_mm", [(3.0, 18.0), (10.0, 30.0), (25.0, 150.0)])
@pytest.mark.parametrize("plane_mm", [1.0, 3.0])
@pytest.mark.parametrize("axis", ["x", "y", "z"])
def test_cylinder(tmp_path, radius_mm, length_mm, plane_mm, axis):
    half = length_mm / 2
    shape = RoiShape("Cylinder", radius_mm=radius_mm, z_range_mm=(-half, half), points=128)
    dvh = dvh_of(tmp_path, shape, plane_mm, linear_dose(axis), (radius_mm, radius_mm, half + plane_mm))
    length = length_mm + plane_mm  # end caps: half a spacing beyond each end contour
    assert dvh.volume_cc == pytest.approx(polygon_area(radius_mm, 128) * length / 1000, rel=0.02)
    extent = radius_mm if axis != "z" else length / 2
    spread = 2 * extent * GRADIENT_GY_PER_MM
    assert dvh.mean_gy == pytest.approx(CENTRE_GY, abs=0.005 * spread)
    assert dvh.min_gy == pytest.approx(CENTRE_GY - spread / 2, abs=0.02 * spread)
    assert dvh.max_gy == pytest.approx(CENTRE_GY + spread / 2, abs=0.02 * spread)
    if axis == "z":
        # Uniform along z: the dose distribution is uniform between min and max.
        assert metric_value(parse_metric("D95%[Gy]"), dvh) == pytest.approx(CENTRE_GY - 0.45 * spread, abs=0.01 * spread)
        assert metric_value(parse_metric("D5%[Gy]"), dvh) == pytest.approx(CENTRE_GY + 0.45 * spread, abs=0.01 * spread)


@pytest.mark.parametrize("plane_mm", [1.0, 2.0])
@pytest.mark.parametrize("axis", ["x", "z"])
def test_cone(tmp_path, plane_mm, axis):
    # Apex at z = -12, base (radius 12) at z = +12, contoured from the first plane above the apex.
    radius, height = 12.0, 24.0
    shape = RoiShape("Cone", radius_mm=radius, z_range_mm=(-12 + plane_mm, 12), points=128,
                     profile=lambda z: (z + 12) / height)
    dvh = dvh_of(tmp_path, shape, plane_mm, linear_dose(axis), 14.0)
    cone_mm3 = math.pi * radius**2 * height / 3
    cap_mm3 = polygon_area(radius, 128) * plane_mm / 2  # the base's end cap
    assert dvh.volume_cc == pytest.approx((cone_mm3 + cap_mm3) / 1000, rel=0.02)
    if axis == "z":
        # Centroid of cone (3/4 of the height from the apex) and cap combined.
        centroid = (cone_mm3 * (-12 + 0.75 * height) + cap_mm3 * (12 + plane_mm / 4)) / (cone_mm3 + cap_mm3)
        expected_mean = CENTRE_GY + GRADIENT_GY_PER_MM * centroid
        assert dvh.max_gy == pytest.approx(CENTRE_GY + GRADIENT_GY_PER_MM * (12 + plane_mm / 2), abs=0.02)
    else:
        expected_mean = CENTRE_GY
    assert dvh.mean_gy == pytest.approx(expected_mean, abs=0.005 * 24 * GRADIENT_GY_PER_MM)


def test_overlapping_contours_on_a_plane_are_united(tmp_path):
    # Two discs of radius 8 mm, centres 8 mm apart, on every plane: one region, not an XOR.
    radius, distance = 8.0, 8.0
    shape = RoiShape("Pair", centre_xy_mm=(-4.0, 0.0), radius_mm=radius, z_range_mm=(-10, 10), points=256,
                     also=(((4.0, 0.0), radius),))
    dvh = dvh_of(tmp_path, shape, 2.0, linear_dose("z"), 16.0)
    lens = 2 * radius**2 * math.acos(distance / (2 * radius)) - distance / 2 * math.sqrt(4 * radius**2 - distance**2)
    union_mm2 = 2 * math.pi * radius**2 - lens
    assert dvh.volume_cc == pytest.approx(union_mm2 * 22 / 1000, rel=0.01)
