"""Contour-and-dose sampling DVH engine.

Method (conventions physicists need to know):

* Each contour plane stands for the half of the gap to each neighbouring
  plane (nearest plane), except next to a closing contour: a point, a line or
  a region under 5 % of its neighbour's area.  There the surface is taken as
  tangent to the closing plane, and the neighbour's region shrinks towards
  the closing contour with a square-root (elliptic) profile, as a sphere's
  cap or a lying cylinder's side does.
* The first and last contours extend half a plane spacing beyond themselves
  (end caps); a gap wider than 1.5 plane spacings separates parts of a
  structure, each part keeping half a spacing of cap.
* Within a plane, separate contours are united, even where they overlap; a
  contour lying inside another is a hole, and one inside a hole an island.
* The volume is sampled on a lattice aligned with the dose voxels'
  boundaries, finer than the dose grid (down to 0.2 mm for small structures;
  large ones within about two million samples), so boundary voxels count in
  proportion to the part inside (partial volume).
* The dose at each sample is interpolated trilinearly between voxel centres;
  within half a voxel beyond the outermost centres the edge value is used;
  samples farther out are outside the dose grid.
* Each sample's volume is spread over the dose range the local gradient
  gives its cell (0.001 Gy bins), so the DVH has no staircase from sampling.
* Minimum and maximum dose are taken over the samples and the contour
  vertices, including the end caps' half plane beyond the end contours.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from rtcheck.dicom.dose import DoseGrid
from rtcheck.dicom.structures import Roi
from rtcheck.dvh.histogram import DoseVolumeHistogram

_MAX_BINS = 200_000
# A plane whose region is below this fraction of its neighbour's closes the structure.
_CLOSING_AREA_RATIO = 0.05
# Adjacent planes farther apart than this many typical spacings are separate parts.
_GAP_FACTOR = 1.5


@dataclass(frozen=True)
class EngineOptions:
    """Sampling controls: finest sample spacing (mm), samples per structure, histogram bin (Gy)."""

    finest_spacing_mm: float = 0.2
    sample_budget: int = 2_000_000
    bin_width_gy: float = 0.001


@dataclass(frozen=True)
class Combination:
    """A structure derived from others: ``union``, ``intersection`` or ``subtract``
    (the first operand minus all the others), evaluated on the engine's masks."""

    name: str
    operation: str
    operands: tuple["Roi | Combination", ...]

    def rois(self) -> list[Roi]:
        found: list[Roi] = []
        for operand in self.operands:
            found.extend(operand.rois() if isinstance(operand, Combination) else [operand])
        return found


def _even_odd_mask(polygons: list[np.ndarray], x0: float, hx: float, ncols: int, y0: float, hy: float, nrows: int) -> np.ndarray:
    """Samples at (x0 + c*hx, y0 + r*hy) inside the polygons by the even-odd rule, as a (nrows, ncols) bool array."""
    width = ncols + 1
    toggles = np.zeros(nrows * width, dtype=np.int64)
    for poly in polygons:
        xa, ya = poly[:, 0], poly[:, 1]
        xb, yb = np.roll(xa, -1), np.roll(ya, -1)
        # Half-open rows [min y, max y): a vertex shared by two edges is crossed once.
        first = np.clip(np.ceil((np.minimum(ya, yb) - y0) / hy), 0, nrows).astype(np.int64)
        stop = np.clip(np.ceil((np.maximum(ya, yb) - y0) / hy), 0, nrows).astype(np.int64)
        counts = stop - first
        total = int(counts.sum())
        if total == 0:
            continue
        edge = np.repeat(np.arange(counts.size), counts)
        starts = np.cumsum(counts) - counts
        rows = first[edge] + (np.arange(total) - starts[edge])
        y = y0 + rows * hy
        t = (y - ya[edge]) / (yb[edge] - ya[edge])
        x_cross = xa[edge] + t * (xb[edge] - xa[edge])
        cols = np.clip(np.ceil((x_cross - x0) / hx), 0, ncols).astype(np.int64)
        toggles += np.bincount(rows * width + cols, minlength=nrows * width)
    parity = np.cumsum(toggles.reshape(nrows, width), axis=1)[:, :ncols] & 1
    return parity.astype(bool)


def _points_in_polygon(points: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """Even-odd ray casting: which (N, 2) points lie inside the polygon."""
    x, y = points[:, 0:1], points[:, 1:2]
    xa, ya = polygon[:, 0], polygon[:, 1]
    xb, yb = np.roll(xa, -1), np.roll(ya, -1)
    crosses = (ya > y) != (yb > y)
    with np.errstate(divide="ignore", invalid="ignore"):
        x_cross = xa + (y - ya) * (xb - xa) / (yb - ya)
    return np.count_nonzero(crosses & (x < x_cross), axis=1) % 2 == 1


def _nesting_depths(polygons: list[np.ndarray]) -> np.ndarray:
    """How many other contours each contour lies inside (most of its vertices inside a larger one)."""
    areas = [_polygon_area_mm2([p]) for p in polygons]
    depth = np.zeros(len(polygons), dtype=int)
    for i, inner in enumerate(polygons):
        for j, outer in enumerate(polygons):
            if i != j and areas[i] < areas[j] and np.mean(_points_in_polygon(inner, outer)) > 0.5:
                depth[i] += 1
    return depth


def _polygon_area_mm2(polygons: list[np.ndarray]) -> float:
    area = 0.0
    for p in polygons:
        x, y = p[:, 0], p[:, 1]
        area += abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))) / 2
    return area


def _axis_interpolation(positions: np.ndarray, centres: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per position: inside-grid flag, lower/upper centre index and weight of the upper one (linear, edge-clamped)."""
    n = centres.size
    positions = np.asarray(positions, dtype=float)
    if n == 1:
        inside = np.abs(positions - centres[0]) <= 0.5  # one voxel of unknown extent: 1 mm around it
        zeros = np.zeros(positions.size, dtype=np.int64)
        return inside, zeros, zeros, np.zeros(positions.size)
    low_edge = centres[0] - (centres[1] - centres[0]) / 2
    high_edge = centres[-1] + (centres[-1] - centres[-2]) / 2
    inside = (positions >= low_edge) & (positions <= high_edge)
    clamped = np.clip(positions, centres[0], centres[-1])
    upper = np.clip(np.searchsorted(centres, clamped, side="right"), 1, n - 1)
    lower = upper - 1
    weight = (clamped - centres[lower]) / (centres[upper] - centres[lower])
    return inside, lower, upper, weight


def dose_at_points(dose: DoseGrid, points_mm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Trilinear dose (Gy) at (N, 3) patient points, and which points lie inside the grid."""
    if points_mm.size == 0:
        return np.zeros(0), np.zeros(0, dtype=bool)
    xi, x0, x1, xw = _axis_interpolation(points_mm[:, 0], dose.x_mm)
    yi, y0, y1, yw = _axis_interpolation(points_mm[:, 1], dose.y_mm)
    zi, z0, z1, zw = _axis_interpolation(points_mm[:, 2], dose.z_mm)
    d = dose.dose_gy
    value = np.zeros(points_mm.shape[0])
    for zk, zf in ((z0, 1 - zw), (z1, zw)):
        for yk, yf in ((y0, 1 - yw), (y1, yw)):
            for xk, xf in ((x0, 1 - xw), (x1, xw)):
                value += d[zk, yk, xk] * zf * yf * xf
    return value, xi & yi & zi


@dataclass
class _Lattice:
    """In-plane sample lattice aligned with the dose voxel boundaries (mm)."""

    xs: np.ndarray
    ys: np.ndarray
    hx: float
    hy: float

    @classmethod
    def covering(cls, dose: DoseGrid, xmin: float, xmax: float, ymin: float, ymax: float, spacing: float) -> "_Lattice":
        dx = float(dose.x_mm[1] - dose.x_mm[0]) if dose.x_mm.size > 1 else 1.0
        dy = float(dose.y_mm[1] - dose.y_mm[0]) if dose.y_mm.size > 1 else 1.0
        hx, hy = dx / max(1, math.ceil(dx / spacing)), dy / max(1, math.ceil(dy / spacing))
        x_origin = float(dose.x_mm[0]) - dx / 2 + hx / 2
        y_origin = float(dose.y_mm[0]) - dy / 2 + hy / 2
        # Two samples of margin so the nearest-sample search sees the outside all around.
        c0 = math.floor((xmin - x_origin) / hx) - 2
        r0 = math.floor((ymin - y_origin) / hy) - 2
        ncols = math.ceil((xmax - x_origin) / hx) - c0 + 3
        nrows = math.ceil((ymax - y_origin) / hy) - r0 + 3
        return cls(x_origin + (c0 + np.arange(ncols)) * hx, y_origin + (r0 + np.arange(nrows)) * hy, hx, hy)

    @property
    def shape(self) -> tuple[int, int]:
        return self.ys.size, self.xs.size

    def rasterise(self, polygons: list[np.ndarray]) -> np.ndarray:
        """The region of one plane's contours: separate ones united, nested ones holes and islands."""
        def fill(polygon: np.ndarray) -> np.ndarray:
            return _even_odd_mask([polygon], self.xs[0], self.hx, self.xs.size, self.ys[0], self.hy, self.ys.size)

        if len(polygons) == 1:
            return fill(polygons[0])
        depth = _nesting_depths(polygons)
        mask = np.zeros(self.shape, bool)
        for k in np.argsort(depth, kind="stable"):
            if depth[k] % 2:
                mask &= ~fill(polygons[k])
            else:
                mask |= fill(polygons[k])
        return mask


class _ContourStack:
    """One ROI's planes on a lattice: each plane's mask, and the mask at any z (mm)."""

    def __init__(self, roi: Roi, lattice: _Lattice, typical_spacing_mm: float) -> None:
        by_plane: dict[float, list[np.ndarray]] = {}
        for contour in roi.contours:
            by_plane.setdefault(round(contour.z_mm, 3), []).append(contour.xy_mm)
        self.z = np.array(sorted(by_plane))
        self.polygons = [by_plane[float(z)] for z in self.z]
        self.lattice = lattice
        self.typical = typical_spacing_mm
        self.areas = np.array([_polygon_area_mm2(p) for p in self.polygons])
        self._masks: dict[int, np.ndarray] = {}
        self._features: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        gaps = np.diff(self.z)
        self.joined = gaps <= _GAP_FACTOR * typical_spacing_mm  # plane i joined to i + 1

    def extent(self) -> tuple[float, float]:
        return float(self.z[0] - self.cap_below(0)), float(self.z[-1] + self.cap_above(self.z.size - 1))

    def cap_below(self, i: int) -> float:
        """Half-thickness below plane i when nothing is interpolated below it (0 when joined)."""
        if i > 0 and self.joined[i - 1]:
            return 0.0
        if i + 1 < self.z.size and self.joined[i]:
            return float(self.z[i + 1] - self.z[i]) / 2
        return self.typical / 2

    def cap_above(self, i: int) -> float:
        if i + 1 < self.z.size and self.joined[i]:
            return 0.0
        if i > 0 and self.joined[i - 1]:
            return float(self.z[i] - self.z[i - 1]) / 2
        return self.typical / 2

    def mask(self, i: int) -> np.ndarray:
        if i not in self._masks:
            self._masks[i] = self.lattice.rasterise(self.polygons[i])
        return self._masks[i]

    def _closing(self, small: int, large: int) -> bool:
        return self.areas[small] < _CLOSING_AREA_RATIO * self.areas[large]

    def mask_at(self, z: float) -> np.ndarray:
        """The region at height z: an end cap, an interpolation between two planes, or empty."""
        n = self.z.size
        i = int(np.searchsorted(self.z, z, side="right")) - 1
        if i >= 0 and z == self.z[i]:
            return self.mask(i)
        if i < 0:
            return self.mask(0) if z >= self.z[0] - self.cap_below(0) else np.zeros(self.lattice.shape, bool)
        if i == n - 1 or not self.joined[i]:
            if z <= self.z[i] + self.cap_above(i):
                return self.mask(i)
            if i + 1 < n and z >= self.z[i + 1] - self.cap_below(i + 1):
                return self.mask(i + 1)
            return np.zeros(self.lattice.shape, bool)
        t = (z - self.z[i]) / (self.z[i + 1] - self.z[i])
        if self._closing(i, i + 1):
            return self._closing_mask(i, i + 1, math.sqrt(t))
        if self._closing(i + 1, i):
            return self._closing_mask(i + 1, i, math.sqrt(1 - t))
        # Each plane stands for the half of the gap next to it: exact in volume for a
        # structure narrowing to a tip between planes, where blending shapes loses the tip.
        return self.mask(i) if t < 0.5 else self.mask(i + 1)

    def _closing_mask(self, small: int, large: int, scale: float) -> np.ndarray:
        """The large plane's region shrunk by ``scale`` towards the nearest point of the small one.

        A point p is inside when q + (p - q) / scale lies in the large region, q being
        p's nearest sample of the small contour: a pole closes a sphere as a cap, a
        line closes a lying cylinder with its length kept.
        """
        small_mask = self.mask(small)
        if scale <= 0:
            return small_mask
        nearest_rows, nearest_cols = self._feature_indices(small)
        rows, cols = np.indices(self.lattice.shape)
        mapped_rows = np.rint(nearest_rows + (rows - nearest_rows) / scale).astype(np.int64)
        mapped_cols = np.rint(nearest_cols + (cols - nearest_cols) / scale).astype(np.int64)
        nrows, ncols = self.lattice.shape
        valid = (mapped_rows >= 0) & (mapped_rows < nrows) & (mapped_cols >= 0) & (mapped_cols < ncols)
        inside = np.zeros(self.lattice.shape, bool)
        inside[valid] = self.mask(large)[mapped_rows[valid], mapped_cols[valid]]
        return inside | small_mask

    def _feature_indices(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """For every lattice sample, the (row, column) of the nearest sample of plane i's contour."""
        if i not in self._features:
            from scipy import ndimage

            seeds = self.mask(i).copy()
            # A point or line holds no sample: seed the lattice cells its vertices fall in.
            vertices = np.concatenate(self.polygons[i])
            cols = np.clip(np.rint((vertices[:, 0] - self.lattice.xs[0]) / self.lattice.hx).astype(np.int64), 0, seeds.shape[1] - 1)
            rows = np.clip(np.rint((vertices[:, 1] - self.lattice.ys[0]) / self.lattice.hy).astype(np.int64), 0, seeds.shape[0] - 1)
            seeds[rows, cols] = True
            _, indices = ndimage.distance_transform_edt(~seeds, sampling=(self.lattice.hy, self.lattice.hx), return_indices=True)
            self._features[i] = (indices[0], indices[1])
        return self._features[i]

    def sub_slabs(self, spacing: float) -> list[tuple[float, float]]:
        """(z centre, thickness) of the sub-slabs that tile this ROI's extent, none crossing a plane."""
        slabs: list[tuple[float, float]] = []

        def tile(low: float, high: float, even: bool = False) -> None:
            if high - low <= 1e-9:
                return
            count = max(1, math.ceil((high - low) / spacing - 1e-9))
            if even:
                count += count % 2  # no sub-slab centred on the half-way line between two planes
            step = (high - low) / count
            slabs.extend((low + (k + 0.5) * step, step) for k in range(count))

        for i, z in enumerate(self.z):
            tile(z - self.cap_below(i), z)
            joined = i + 1 < self.z.size and bool(self.joined[i])
            tile(z, float(self.z[i + 1] if joined else z + self.cap_above(i)), even=joined)
        return slabs

    def vertex_points(self) -> np.ndarray:
        """Contour vertices at their planes and, for end planes, at the end of their caps (N, 3)."""
        points = []
        for i, z in enumerate(self.z):
            xy = np.concatenate(self.polygons[i])
            heights = {float(z)}
            below, above = self.cap_below(i), self.cap_above(i)
            if below:
                heights.add(float(z - below))
            if above:
                heights.add(float(z + above))
            for h in heights:
                points.append(np.column_stack([xy, np.full(len(xy), h)]))
        return np.concatenate(points) if points else np.zeros((0, 3))


class _Region:
    """A Roi or a Combination on a lattice: the mask at any z, and the sub-slabs to sample."""

    def __init__(self, shape, lattice: _Lattice, typical: float, spacing: float) -> None:
        self.shape = shape
        if isinstance(shape, Combination):
            self.parts = [_Region(op, lattice, typical, spacing) for op in shape.operands]
            self.stack = None
        else:
            self.parts = []
            self.stack = _ContourStack(shape, lattice, typical)
        self.lattice = lattice
        self.spacing = spacing

    def extent(self) -> tuple[float, float]:
        if self.stack is not None:
            return self.stack.extent()
        extents = [p.extent() for p in self.parts]
        if self.shape.operation == "subtract":
            return extents[0]
        return min(e[0] for e in extents), max(e[1] for e in extents)

    def mask_at(self, z: float) -> np.ndarray:
        if self.stack is not None:
            return self.stack.mask_at(z)
        masks = [p.mask_at(z) for p in self.parts]
        if self.shape.operation == "union":
            return np.logical_or.reduce(masks)
        if self.shape.operation == "intersection":
            return np.logical_and.reduce(masks)
        return masks[0] & ~np.logical_or.reduce(masks[1:]) if len(masks) > 1 else masks[0]

    def sub_slabs(self) -> list[tuple[float, float]]:
        if self.stack is not None:
            return self.stack.sub_slabs(self.spacing)
        low, high = self.extent()
        count = max(1, math.ceil((high - low) / self.spacing))
        step = (high - low) / count
        return [(low + (k + 0.5) * step, step) for k in range(count)]

    def vertex_points(self) -> np.ndarray | None:
        return self.stack.vertex_points() if self.stack is not None else None


def _accumulate(steps: np.ndarray, corrections: np.ndarray, low: np.ndarray, high: np.ndarray, volume: np.ndarray, bin_width: float) -> None:
    """Add each sample's ``volume`` (cc), spread uniformly over [low, high] Gy, to a histogram kept
    as step changes (whole bins) plus corrections (the partial bins at both ends)."""
    last = steps.size - 2
    lo_bin = np.minimum((low / bin_width).astype(np.int64), last)
    hi_bin = np.minimum((high / bin_width).astype(np.int64), last)
    point = hi_bin == lo_bin
    if point.any():
        corrections += np.bincount(lo_bin[point], weights=volume[point], minlength=steps.size)
    spread = ~point
    if spread.any():
        lo, hi, lb, hb = low[spread], high[spread], lo_bin[spread], hi_bin[spread]
        density = volume[spread] / (hi - lo)  # cc per Gy
        per_bin = density * bin_width
        # Bins lb..hb-1 get a full share, then the ends are corrected for partial overlap.
        steps += np.bincount(lb, weights=per_bin, minlength=steps.size)
        steps -= np.bincount(hb, weights=per_bin, minlength=steps.size)
        corrections -= np.bincount(lb, weights=density * (lo - lb * bin_width), minlength=steps.size)
        corrections += np.bincount(hb, weights=density * (hi - hb * bin_width), minlength=steps.size)


def _all_contour_points(shape) -> np.ndarray:
    rois = shape.rois() if isinstance(shape, Combination) else [shape]
    points = [np.column_stack([c.xy_mm, np.full(len(c.xy_mm), c.z_mm)]) for roi in rois for c in roi.contours]
    return np.concatenate(points)


def compute_dvh(
    shape: "Roi | Combination",
    dose: DoseGrid,
    *,
    plane_spacing_mm: float | None = None,
    options: EngineOptions = EngineOptions(),
) -> DoseVolumeHistogram:
    """Cumulative DVH (Gy, cc) of one ROI, or of a structure derived from ROIs, in a dose grid.

    ``plane_spacing_mm`` is the structure set's usual contour spacing, used for
    end caps and to tell gaps from spacing; it defaults to the median spacing
    of the shape's planes, then to the dose grid's slice spacing.
    """
    rois = shape.rois() if isinstance(shape, Combination) else [shape]
    for roi in rois:
        if not roi.is_volume:
            raise ValueError(f"ROI {roi.name!r} has no volume: {roi.unusable_reason}")
    points = _all_contour_points(shape)
    if plane_spacing_mm is None:
        gaps = np.concatenate([np.diff(roi.plane_positions_mm()) for roi in rois])
        gaps = gaps[gaps > 1e-3]
        plane_spacing_mm = float(np.median(gaps)) if gaps.size else (float(np.median(np.diff(dose.z_mm))) if dose.z_mm.size > 1 else 3.0)

    xmin, ymin, zmin = points.min(axis=0)
    xmax, ymax, zmax = points.max(axis=0)
    box_mm3 = max((xmax - xmin) * (ymax - ymin) * (zmax - zmin + plane_spacing_mm), 1e-9)
    spacing = max(options.finest_spacing_mm, (box_mm3 / options.sample_budget) ** (1 / 3))
    lattice = _Lattice.covering(dose, xmin, xmax, ymin, ymax, spacing)
    region = _Region(shape, lattice, plane_spacing_mm, spacing)

    x_in, x_lo, x_hi, x_w = _axis_interpolation(lattice.xs, dose.x_mm)
    y_in, y_lo, y_hi, y_w = _axis_interpolation(lattice.ys, dose.y_mm)
    col_a, col_b = int(x_lo.min()), int(x_hi.max()) + 1
    row_a, row_b = int(y_lo.min()), int(y_hi.max()) + 1
    ry_lo, ry_hi, wy = y_lo - row_a, y_hi - row_a, y_w[:, None]
    cx_lo, cx_hi = x_lo - col_a, x_hi - col_a
    in_plane_grid = y_in[:, None] & x_in[None, :]

    def on_lattice(plane: np.ndarray) -> np.ndarray:
        along_y = plane[ry_lo] * (1 - wy) + plane[ry_hi] * wy
        return along_y[:, cx_lo] * (1 - x_w) + along_y[:, cx_hi] * x_w

    samples: list[np.ndarray] = []
    spreads: list[np.ndarray] = []
    volumes: list[np.ndarray] = []
    inside_cc = outside_cc = dose_sum = 0.0
    sample_area_mm2 = lattice.hx * lattice.hy
    slabs = region.sub_slabs()
    z_in, z_lo, z_hi, z_w = _axis_interpolation(np.array([z for z, _ in slabs]), dose.z_mm)
    for k, (z, thickness) in enumerate(slabs):
        mask = region.mask_at(z)
        count = int(np.count_nonzero(mask))
        if count == 0:
            continue
        sample_cc = sample_area_mm2 * thickness / 1000.0
        covered = mask & in_plane_grid if z_in[k] else np.zeros_like(mask)
        n_covered = int(np.count_nonzero(covered))
        outside_cc += (count - n_covered) * sample_cc
        if n_covered == 0:
            continue
        lower = dose.dose_gy[z_lo[k], row_a:row_b, col_a:col_b]
        upper = dose.dose_gy[z_hi[k], row_a:row_b, col_a:col_b]
        values = on_lattice(lower * (1 - z_w[k]) + upper * z_w[k]) if z_w[k] else on_lattice(lower)
        # Each sample stands for a cell: spread its volume over the dose range the local
        # gradient gives the cell, so the DVH has no staircase from sampling.
        width = np.zeros_like(values)
        if values.shape[1] > 1:
            width += np.abs(np.gradient(values, axis=1))
        if values.shape[0] > 1:
            width += np.abs(np.gradient(values, axis=0))
        if z_hi[k] != z_lo[k]:
            gz = on_lattice(upper - lower) / (dose.z_mm[z_hi[k]] - dose.z_mm[z_lo[k]])
            width += np.abs(gz) * thickness
        samples.append(values[covered])
        spreads.append(width[covered])
        volumes.append(np.full(n_covered, sample_cc))
        inside_cc += n_covered * sample_cc
        dose_sum += float(samples[-1].sum()) * sample_cc

    grid_max = dose.max_gy
    bin_width = max(options.bin_width_gy, grid_max / _MAX_BINS)
    nbins = int(math.ceil(grid_max / bin_width)) + 2
    differential = np.zeros(nbins)
    if inside_cc == 0:
        dmin = dmax = mean = 0.0
    else:
        values = np.concatenate(samples)
        dmin, dmax = float(values.min()), float(values.max())
        vertices = region.vertex_points()
        if vertices is not None and vertices.size:
            vertex_dose, vertex_inside = dose_at_points(dose, vertices)
            if vertex_inside.any():
                dmin = min(dmin, float(vertex_dose[vertex_inside].min()))
                dmax = max(dmax, float(vertex_dose[vertex_inside].max()))
        spread = np.concatenate(spreads)
        low = np.clip(values - spread / 2, dmin, dmax)
        high = np.clip(values + spread / 2, dmin, dmax)
        steps = np.zeros(nbins + 1)
        corrections = np.zeros(nbins + 1)
        _accumulate(steps, corrections, low, high, np.concatenate(volumes), bin_width)
        differential = (np.cumsum(steps) + corrections)[:nbins]
        mean = dose_sum / inside_cc
    return DoseVolumeHistogram(
        name=shape.name,
        roi_number=shape.number if isinstance(shape, Roi) else None,
        bin_width_gy=bin_width,
        differential_cc=differential,
        volume_cc=inside_cc,
        min_gy=dmin,
        max_gy=dmax,
        mean_gy=mean,
        outside_volume_cc=outside_cc,
    )


def compute_dvhs(
    shapes: Sequence["Roi | Combination"],
    dose: DoseGrid,
    *,
    plane_spacing_mm: float | None = None,
    options: EngineOptions = EngineOptions(),
    workers: int | None = None,
) -> list[DoseVolumeHistogram]:
    """DVHs of several shapes, computed in parallel threads (numpy releases the GIL in the heavy parts)."""
    workers = workers or min(len(shapes), os.cpu_count() or 1)
    if workers <= 1 or len(shapes) <= 1:
        return [compute_dvh(s, dose, plane_spacing_mm=plane_spacing_mm, options=options) for s in shapes]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda s: compute_dvh(s, dose, plane_spacing_mm=plane_spacing_mm, options=options), shapes))
