"""Thousands of contours on a plane cost in proportion to their number (issue 12: 3 000 took 13 s, 10 000
did not finish in 120 s).  The budget in time is measured by benchmarks/contours_per_plane.py; here the
work is counted, not timed: each contour is tested for nesting only against the larger contours near it."""

import math

import numpy as np
import pytest

from rtcheck.api import dvh_statistics
from rtcheck.dvh import engine
from tests.dicom_factory import Case, RoiShape

HOLES_PER_SIDE = 55  # 3 025 holes in one outer contour, on each of 3 planes
# A pitch out of step with the sampling lattice, so that partial volumes average out over the holes.
PITCH_MM, HOLE_RADIUS_MM, OUTER_RADIUS_MM, POINTS = 5.17, 1.5, 200.0, 12


def _polygon_area(radius, points):
    return points / 2 * radius**2 * math.sin(2 * math.pi / points)


def test_a_plane_of_thousands_of_holes_is_read_with_linear_work(tmp_path, monkeypatch):
    span = (HOLES_PER_SIDE - 1) * PITCH_MM / 2
    holes = tuple(
        ((float(x), float(y)), HOLE_RADIUS_MM)
        for x in np.linspace(-span, span, HOLES_PER_SIDE)
        for y in np.linspace(-span, span, HOLES_PER_SIDE)
    )
    sieve = RoiShape("Sieve", radius_mm=OUTER_RADIUS_MM, z_range_mm=(-2.0, 2.0), points=POINTS, also=holes)
    Case(
        [sieve], dose=lambda x, y, z: np.full_like(x, 20.0), prescriptions=[],
        grid_spacing_mm=(5.0, 5.0, 2.0), grid_min_mm=(-210.0, -210.0, -6.0), grid_max_mm=(210.0, 210.0, 6.0),
    ).write(tmp_path)
    tests = []
    real = engine._points_in_polygon

    def counted(points, polygon):
        tests.append(len(polygon))
        return real(points, polygon)

    monkeypatch.setattr(engine, "_points_in_polygon", counted)
    layers = []
    real_layers = engine._region_layers

    def layered(polygons, layer_of, count, *args):
        layers.append(count)
        return real_layers(polygons, layer_of, count, *args)

    monkeypatch.setattr(engine, "_region_layers", layered)
    [row], _ = dvh_statistics([tmp_path])
    contours = 3 * (len(holes) + 1)
    # Each hole is tested against the outer contour only: one test per hole, not one per pair of contours.
    assert len(tests) == 3 * len(holes)
    # The plane is filled as two layers (the outer contour, the holes), not one array per contour.
    assert sum(layers) == 3 * 2
    area_mm2 = _polygon_area(OUTER_RADIUS_MM, POINTS) - len(holes) * _polygon_area(HOLE_RADIUS_MM, POINTS)
    assert row.volume_cc == pytest.approx(area_mm2 * 6.0 / 1000, rel=0.02)
    assert contours > 9000
