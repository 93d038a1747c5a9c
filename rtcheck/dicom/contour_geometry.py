"""Geometry of an ROI's planar contours for the integrity checks: surface points, inside tests, distances
between surfaces, missing planes, self-intersecting polygons and the centroid.

Patient coordinates (mm).  An ROI is its axial polygons on its planes (``Roi.planes``); its surface is
taken as the polygons' edges on every plane plus the area of its outermost planes (the end caps of each
part), so that a margin along z is measured like one within a plane.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rtcheck.dicom.structures import Roi

__all__ = [
    "PlaneGap",
    "centroid_mm",
    "inside",
    "missing_planes",
    "nearest_distances_mm",
    "self_intersections",
    "surface_points",
]

# Planes farther apart than this many typical spacings leave planes missing (the DVH engine's rule for
# separate parts uses the same factor: rtcheck.dvh.engine._GAP_FACTOR).
GAP_FACTOR = 1.5
# Inner and outer points compared at once in nearest_distances_mm: bounds the scratch array to ~40 MB.
_PAIRS_PER_CHUNK = 5_000_000
# Surface points per ROI: the sampling step grows beyond 1 mm to stay within this.
_MAX_SURFACE_POINTS = 40_000


def _even_odd(points_xy: np.ndarray, polygons: list[np.ndarray]) -> np.ndarray:
    """Which (N, 2) points lie inside the polygons of one plane (even-odd over all of them: holes excluded)."""
    crossings = np.zeros(len(points_xy), dtype=np.int64)
    x, y = points_xy[:, 0:1], points_xy[:, 1:2]
    for polygon in polygons:
        xa, ya = polygon[:, 0], polygon[:, 1]
        xb, yb = np.roll(xa, -1), np.roll(ya, -1)
        spans = (ya > y) != (yb > y)
        with np.errstate(divide="ignore", invalid="ignore"):
            x_cross = xa + (y - ya) * (xb - xa) / (yb - ya)
        crossings += np.count_nonzero(spans & (x < x_cross), axis=1)
    return crossings % 2 == 1


def _densified(polygon: np.ndarray, step_mm: float) -> np.ndarray:
    """The polygon's boundary sampled at most ``step_mm`` apart (its vertices included)."""
    following = np.roll(polygon, -1, axis=0)
    lengths = np.linalg.norm(following - polygon, axis=1)
    parts = [polygon[i] + np.outer(np.arange(max(1, int(np.ceil(length / step_mm)))) / max(1, int(np.ceil(length / step_mm))), following[i] - polygon[i])
             for i, length in enumerate(lengths)]
    return np.concatenate(parts) if parts else polygon


def _plane_parts(z: np.ndarray, spacing_mm: float) -> list[tuple[int, int]]:
    """(first, last) plane index of each part: planes closer than GAP_FACTOR spacings are one part."""
    if z.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(z) > GAP_FACTOR * spacing_mm)
    starts = [0, *(breaks + 1)]
    ends = [*breaks, z.size - 1]
    return list(zip(starts, ends))


def typical_spacing_mm(roi: Roi) -> float | None:
    """The median spacing between the ROI's adjacent planes (mm), None with fewer than two planes."""
    z = roi.plane_positions_mm()
    gaps = np.diff(z)
    gaps = gaps[gaps > 1e-3]
    return float(np.median(gaps)) if gaps.size else None


def surface_points(roi: Roi, step_mm: float = 1.0, spacing_mm: float | None = None) -> np.ndarray:
    """(N, 3) points on the ROI's surface: each polygon's boundary every ``step_mm`` (coarser for very
    large ROIs) and a ``step_mm`` lattice filling the polygons of each part's first and last plane."""
    z, polygons = roi.planes()
    if z.size == 0:
        return np.zeros((0, 3))
    spacing = spacing_mm or typical_spacing_mm(roi) or 1.0
    perimeter = sum(float(np.sum(np.linalg.norm(np.roll(p, -1, axis=0) - p, axis=1))) for plane in polygons for p in plane)
    step = max(step_mm, perimeter / _MAX_SURFACE_POINTS * 2)
    found = []
    for k, plane in enumerate(polygons):
        for polygon in plane:
            ring = _densified(polygon, step)
            found.append(np.column_stack([ring, np.full(len(ring), z[k])]))
    for first, last in _plane_parts(z, spacing):
        for k in {first, last}:
            xy = np.concatenate(polygons[k])
            low, high = xy.min(axis=0), xy.max(axis=0)
            xs = np.arange(low[0], high[0] + step, step)
            ys = np.arange(low[1], high[1] + step, step)
            lattice = np.column_stack([g.ravel() for g in np.meshgrid(xs, ys)])
            kept = lattice[_even_odd(lattice, polygons[k])]
            found.append(np.column_stack([kept, np.full(len(kept), z[k])]))
    return np.concatenate(found)


def inside(roi: Roi, points_mm: np.ndarray, spacing_mm: float | None = None) -> np.ndarray:
    """Which (N, 3) points lie inside the ROI: in the polygons of its nearest plane, for points within half
    a plane spacing of a plane of the ROI (points farther from every plane are outside)."""
    z, polygons = roi.planes()
    result = np.zeros(len(points_mm), dtype=bool)
    if z.size == 0 or len(points_mm) == 0:
        return result
    half = (spacing_mm or typical_spacing_mm(roi) or 1.0) / 2 + 1e-6
    nearest = np.clip(np.searchsorted(z, points_mm[:, 2]), 0, z.size - 1)
    below = np.clip(nearest - 1, 0, z.size - 1)
    nearest = np.where(np.abs(z[below] - points_mm[:, 2]) < np.abs(z[nearest] - points_mm[:, 2]), below, nearest)
    close = np.abs(z[nearest] - points_mm[:, 2]) <= half
    for k in np.unique(nearest[close]):
        chosen = close & (nearest == k)
        result[chosen] = _even_odd(points_mm[chosen, :2], polygons[k])
    return result


def nearest_distances_mm(points_mm: np.ndarray, others_mm: np.ndarray) -> np.ndarray:
    """For each of (N, 3) points, the distance (mm) to the nearest of (M, 3) others (inf when M is 0)."""
    if len(others_mm) == 0:
        return np.full(len(points_mm), np.inf)
    out = np.empty(len(points_mm))
    chunk = max(1, _PAIRS_PER_CHUNK // len(others_mm))
    for start in range(0, len(points_mm), chunk):
        block = points_mm[start : start + chunk]
        squared = ((block[:, None, :] - others_mm[None, :, :]) ** 2).sum(axis=2)
        out[start : start + chunk] = np.sqrt(squared.min(axis=1))
    return out


@dataclass(frozen=True)
class PlaneGap:
    """Planes missing between two contoured planes of one part of an ROI: ``below_mm`` and ``above_mm``
    are the z (mm) of the planes either side, ``missing`` how many typical spacings are left empty."""

    below_mm: float
    above_mm: float
    missing: int


def missing_planes(roi: Roi, spacing_mm: float | None = None) -> list[PlaneGap]:
    """Gaps between adjacent contour planes wider than GAP_FACTOR typical spacings (``spacing_mm``, default
    the ROI's median spacing), i.e. planes left without a contour inside the ROI's extent."""
    z = roi.plane_positions_mm()
    spacing = spacing_mm or typical_spacing_mm(roi)
    if spacing is None or z.size < 2:
        return []
    gaps = []
    for below, above in zip(z[:-1], z[1:]):
        width = float(above - below)
        if width > GAP_FACTOR * spacing:
            gaps.append(PlaneGap(float(below), float(above), int(round(width / spacing)) - 1))
    return gaps


def _crossings(polygon: np.ndarray) -> int:
    """How many pairs of non-adjacent edges of a closed polygon cross (proper crossings only: edges that
    merely touch or overlap along a line are not counted, so exported rounding gives no false alarm)."""
    a = polygon
    b = np.roll(polygon, -1, axis=0)
    n = len(a)
    if n < 4:
        return 0

    def orient(p: np.ndarray, q: np.ndarray, r: np.ndarray) -> np.ndarray:
        return (q[..., 0] - p[..., 0]) * (r[..., 1] - p[..., 1]) - (q[..., 1] - p[..., 1]) * (r[..., 0] - p[..., 0])

    count = 0
    low, high = np.minimum(a, b), np.maximum(a, b)
    for i in range(n - 2):
        j = np.arange(i + 2, n if i > 0 else n - 1)  # edge n-1 is adjacent to edge 0
        if j.size == 0:
            continue
        boxes = np.all(low[j] <= high[i], axis=1) & np.all(high[j] >= low[i], axis=1)
        j = j[boxes]
        if j.size == 0:
            continue
        d1, d2 = orient(a[i], b[i], a[j]), orient(a[i], b[i], b[j])
        d3, d4 = orient(a[j], b[j], a[i]), orient(a[j], b[j], b[i])
        count += int(np.count_nonzero((d1 * d2 < 0) & (d3 * d4 < 0)))
    return count


def self_intersections(roi: Roi) -> list[tuple[float, int]]:
    """(z mm, crossings) of each plane holding a polygon whose edges cross each other."""
    z, polygons = roi.planes()
    found = []
    for k, plane in enumerate(polygons):
        crossings = sum(_crossings(p) for p in plane)
        if crossings:
            found.append((float(z[k]), crossings))
    return found


def centroid_mm(roi: Roi) -> np.ndarray | None:
    """The area-weighted centroid (x, y, z mm) of the ROI's polygons (each polygon counted with its own area,
    holes included: close enough to tell the side of the body an organ lies on); None without area."""
    total = 0.0
    moment = np.zeros(3)
    z, polygons = roi.planes()
    for k, plane in enumerate(polygons):
        for p in plane:
            x, y = p[:, 0], p[:, 1]
            xn, yn = np.roll(x, -1), np.roll(y, -1)
            cross = x * yn - xn * y
            area = cross.sum() / 2
            if abs(area) < 1e-9:
                continue
            cx = ((x + xn) * cross).sum() / (6 * area)
            cy = ((y + yn) * cross).sum() / (6 * area)
            weight = abs(area)
            moment += weight * np.array([cx, cy, z[k]])
            total += weight
    return moment / total if total > 0 else None
