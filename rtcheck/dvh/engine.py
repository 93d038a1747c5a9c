"""Contour-and-dose sampling DVH engine.

Method (conventions physicists need to know):

* Between two contour planes, the part inside both planes fills the gap; a
  part inside one plane only fills the gap with an occupancy falling linearly
  from 1 at its plane to 0 at the other, so it keeps half the gap in volume
  (as with the nearest-plane rule) while the area changes linearly across
  the gap.  The exception is a gap next to a closing contour: a point, a line
  or a region under 5 % of its neighbour's area.  There the neighbour's region
  shrinks towards the closing contour; how fast its area falls with the
  distance is read from the areas of the next two planes (a sphere's cap, a
  lying cylinder's side and a cone's apex differ), or taken as a smooth cap's
  when there are not two.
* Geometry as drawn: each gap between two of a structure's planes is its own
  (no spacing of the structure set is applied to it; another ROI never changes
  this one's numbers).  A gap joins its planes unless it is a separation
  between parts of the structure: with the CT's slice positions given, a gap
  that skips a CT slice; otherwise a gap wider than 1.5 times the local
  spacing, the larger of the spacings on either side of it (on each side the
  smaller of its two nearest gaps), so that a change of spacing (1 mm through
  the target, 5 mm elsewhere) joins while a skipped stretch separates.  The
  first and last planes of a part extend beyond themselves by half the
  spacing next to them (the CT slice's distance, else the joined gap's, else
  the local spacing; a structure of one plane takes the dose grid's slice
  spacing, rtcheck's default since the structure gives no spacing).
* Within a plane, separate contours are united, even where they overlap; a
  contour lying inside another is a hole, and one inside a hole an island.
* The volume is sampled on a lattice aligned with the dose voxels'
  boundaries, finer than the dose grid (down to 0.2 mm for small structures;
  others within about two million samples), so boundary voxels count in
  proportion to the part inside (partial volume).  A structure whose bounding
  box exceeds 15 litres (a body) is sampled with about 500 000 samples, at
  whole multiples of the dose voxel.
* The dose at each sample is interpolated trilinearly between voxel centres
  with ``rtcheck.dicom.dose``'s sampler and its edge rule: within half a voxel
  beyond the outermost centres the edge value is used; samples farther out
  are outside the dose grid.
* Each sample's volume is spread over the dose range the local gradient
  gives its cell (0.001 Gy bins), so the DVH has no staircase from sampling.
* Minimum and maximum dose are taken over the samples and the contour
  vertices, including the end caps' half plane beyond the end contours.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from rtcheck.dicom.dose import DoseGrid, PlaneInterpolation, axis_extent_mm, axis_interpolation, dose_at_points
from rtcheck.dicom.structures import Roi
from rtcheck.dvh.histogram import DoseVolumeHistogram

_MAX_BINS = 200_000
# Sub-slabs across a gap between planes whose regions differ notably in area.
_GAP_STEPS_CHANGING = 4
# Lattice samples evaluated at once: bounds the working memory to some tens of MB.
_CHUNK_SAMPLES = 200_000
# Narrowest dose spread of a sample, in bins: keeps a sample of a single dose a finite density.
_MIN_SPREAD_BINS = 1e-3
# Lattice cells (times contours) rasterised in one pass: bounds the scratch arrays to a few MB.
_RASTER_CELLS = 500_000
# A plane whose region is below this fraction of its neighbour's closes the structure.
_CLOSING_AREA_RATIO = 0.05
# Adjacent planes farther apart than this many local spacings are separate parts.
_GAP_FACTOR = 1.5
# A contour plane within this of a CT slice position lies on that slice (positions rounded by the exporter).
_SLICE_TOLERANCE_MM = 0.05


@dataclass(frozen=True)
class EngineOptions:
    """Sampling controls: finest sample spacing (mm), samples per structure (fewer for
    structures whose bounding box exceeds ``large_box_mm3``), histogram bin (Gy)."""

    finest_spacing_mm: float = 0.2
    sample_budget: int = 2_000_000
    large_box_mm3: float = 15e6
    large_sample_budget: int = 500_000
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


def shape_key(shape: "Roi | Combination") -> object:
    """A hashable key of an ROI (its number) or a derived structure (its name), for caching DVHs."""
    return ("derived", shape.name) if isinstance(shape, Combination) else shape.number


def _following_vertex(sizes: np.ndarray) -> np.ndarray:
    """For polygons of ``sizes`` vertices stored one after another: the index of each
    vertex's successor, the last vertex of a polygon closing back to its first."""
    ends = np.cumsum(sizes)
    following = np.arange(1, int(ends[-1]) + 1) if sizes.size else np.zeros(0, np.int64)
    closing = sizes > 0
    following[ends[closing] - 1] = (ends - sizes)[closing]
    return following


def _region_layers(
    polygons: list[np.ndarray], layer_of: np.ndarray, layers: int, x0: float, hx: float, ncols: int, y0: float, hy: float, nrows: int
) -> np.ndarray:
    """Samples at (x0 + c*hx, y0 + r*hy) inside any polygon of each layer, as a (layers, nrows, ncols) bool
    array; polygon k belongs to layer ``layer_of[k]``.  All polygons in one pass: each polygon's winding
    number, its orientation made counter-clockwise, is summed per layer, so polygons of one layer are
    united, even where they overlap (cost linear in the edges and cells)."""
    width = ncols + 1
    sizes = np.array([len(p) for p in polygons])
    vertices = np.concatenate(polygons)
    following = _following_vertex(sizes)
    polygon = np.repeat(np.arange(len(polygons)), sizes)
    xa, ya = vertices[:, 0], vertices[:, 1]
    xb, yb = xa[following], ya[following]
    cross = xa * yb - ya * xb
    orientation = np.sign(np.bincount(polygon, weights=cross, minlength=len(polygons)))
    # Half-open rows [min y, max y): a vertex shared by two edges is crossed once.
    first = np.clip(np.ceil((np.minimum(ya, yb) - y0) / hy), 0, nrows).astype(np.int64)
    stop = np.clip(np.ceil((np.maximum(ya, yb) - y0) / hy), 0, nrows).astype(np.int64)
    counts = stop - first
    total = int(counts.sum())
    if total == 0:
        return np.zeros((layers, nrows, ncols), bool)
    edge = np.repeat(np.arange(counts.size), counts)
    starts = np.cumsum(counts) - counts
    rows = first[edge] + (np.arange(total) - starts[edge])
    y = y0 + rows * hy
    t = (y - ya[edge]) / (yb[edge] - ya[edge])
    x_cross = xa[edge] + t * (xb[edge] - xa[edge])
    cols = np.clip(np.ceil((x_cross - x0) / hx), 0, ncols).astype(np.int64)
    # An upward edge of a counter-clockwise polygon leaves it (left to right), a downward one enters it.
    weight = np.where(yb[edge] > ya[edge], 1.0, -1.0) * orientation[polygon[edge]]
    layer = layer_of[polygon[edge]]
    winding = np.bincount((layer * nrows + rows) * width + cols, weights=weight, minlength=layers * nrows * width)
    inside = np.cumsum(winding.reshape(layers, nrows, width), axis=2)[:, :, :ncols]
    return np.abs(inside) > 0.5


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
    """How many other contours each contour lies inside (most of its vertices inside a larger one).

    Only larger contours whose bounding box meets a contour's are tested, found through a grid of cells
    of about a contour's size: the cost grows with the contours and their true neighbours, not with the
    square of the contours on a plane."""
    count = len(polygons)
    depth = np.zeros(count, dtype=int)
    if count < 2:
        return depth
    areas = _polygon_areas_mm2(polygons)
    low = np.array([p.min(axis=0) for p in polygons])
    high = np.array([p.max(axis=0) for p in polygons])
    origin = low.min(axis=0)
    extent = float((high.max(axis=0) - origin).max())
    cell = max(float(np.median((high - low).max(axis=1))), extent / 256, 1e-6)
    first_cell = np.floor((low - origin) / cell).astype(np.int64)
    last_cell = np.floor((high - origin) / cell).astype(np.int64)
    members: dict[tuple[int, int], list[int]] = {}
    for k in range(count):
        for cx in range(first_cell[k, 0], last_cell[k, 0] + 1):
            for cy in range(first_cell[k, 1], last_cell[k, 1] + 1):
                members.setdefault((cx, cy), []).append(k)
    for i, inner in enumerate(polygons):
        near: set[int] = set()
        for cx in range(first_cell[i, 0], last_cell[i, 0] + 1):
            for cy in range(first_cell[i, 1], last_cell[i, 1] + 1):
                near.update(members.get((cx, cy), ()))
        candidates = np.fromiter(near, dtype=np.int64, count=len(near))
        # Larger, and with a bounding box that meets this one's.
        keep = (areas[candidates] > areas[i]) & np.all(high[candidates] >= low[i], axis=1) & np.all(low[candidates] <= high[i], axis=1)
        for j in candidates[keep]:
            if np.mean(_points_in_polygon(inner, polygons[j])) > 0.5:
                depth[i] += 1
    return depth


def _polygon_areas_mm2(polygons: list[np.ndarray]) -> np.ndarray:
    """Each polygon's area (mm^2), all in one pass (shoelace formula, each closing back to its first vertex)."""
    sizes = np.array([len(p) for p in polygons])
    vertices = np.concatenate(polygons)
    following = _following_vertex(sizes)
    x, y = vertices[:, 0], vertices[:, 1]
    cross = x * y[following] - y * x[following]
    return np.abs(np.bincount(np.repeat(np.arange(len(polygons)), sizes), weights=cross, minlength=len(polygons))) / 2


def _plane_areas_mm2(planes: list[list[np.ndarray]]) -> np.ndarray:
    """Per plane, the sum of its polygons' areas (mm^2), all planes in one pass."""
    polygons = [polygon for plane in planes for polygon in plane]
    if not polygons:
        return np.zeros(len(planes))
    areas = _polygon_areas_mm2(polygons)
    plane = np.repeat(np.arange(len(planes)), [len(plane) for plane in planes])
    return np.bincount(plane, weights=areas, minlength=len(planes))


def _lattice_step(voxel_mm: float, spacing_mm: float) -> float:
    """A whole subdivision of the voxel no finer than ``spacing_mm`` (so the sample budget
    holds), or for very large structures a whole multiple of it (the nearest to spacing)."""
    if spacing_mm >= 1.5 * voxel_mm:
        return voxel_mm * round(spacing_mm / voxel_mm)
    return voxel_mm / max(1, math.floor(voxel_mm / spacing_mm))


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
        hx, hy = _lattice_step(dx, spacing), _lattice_step(dy, spacing)
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

    def rasterise(self, planes: list[list[np.ndarray]]) -> np.ndarray:
        """Each plane's region, as a (planes, rows, columns) bool array: a plane's separate
        contours united, nested ones holes and islands (a sample takes the parity of the
        deepest contour around it: even inside, odd a hole).  Each plane's contours of one
        nesting depth form one layer; layers are filled in batches of about
        ``_RASTER_CELLS`` lattice cells (one numpy pass each)."""
        nrows, ncols = self.shape
        masks = np.zeros((len(planes), nrows, ncols), bool)
        depths = [_nesting_depths(plane) for plane in planes]
        levels = [np.unique(depth) for depth in depths]
        per_batch = max(1, _RASTER_CELLS // (nrows * (ncols + 1)))
        start = 0
        while start < len(planes):
            stop, layers = start, 0
            while stop < len(planes) and (stop == start or layers + levels[stop].size <= per_batch):
                layers += levels[stop].size
                stop += 1
            batch = [polygon for plane in planes[start:stop] for polygon in plane]
            offsets = np.cumsum([0] + [levels[i].size for i in range(start, stop)])
            layer_of = np.concatenate(
                [offsets[k] + np.searchsorted(levels[i], depths[i]) for k, i in enumerate(range(start, stop))]
            )
            filled = _region_layers(batch, layer_of, layers, self.xs[0], self.hx, ncols, self.ys[0], self.hy, nrows)
            for k, i in enumerate(range(start, stop)):
                for level_index, level in enumerate(levels[i]):
                    region = filled[offsets[k] + level_index]
                    if level % 2:
                        masks[i] &= ~region
                    else:
                        masks[i] |= region
            start = stop
        return masks


def _local_spacings(gaps: np.ndarray) -> np.ndarray:
    """For each gap between adjacent planes, the spacing around it (mm): the larger of the spacings on its
    two sides, a side's being the smaller of its two nearest gaps; NaN for a gap with no neighbour."""
    count = gaps.size
    padded = np.concatenate([[np.inf, np.inf], gaps, [np.inf, np.inf]])
    index = np.arange(count) + 2
    below = np.minimum(padded[index - 1], padded[index - 2])
    above = np.minimum(padded[index + 1], padded[index + 2])
    sides = np.where(np.isinf(below), above, np.where(np.isinf(above), below, np.maximum(below, above)))
    return np.where(np.isinf(sides), np.nan, sides)


@dataclass(frozen=True)
class PlaneGeometry:
    """What tells the thickness each contour plane stands for: the CT's slice positions (mm, ascending),
    when given, and the spacing of a structure with no gap of its own (mm; see the module's docstring)."""

    slice_positions_mm: np.ndarray | None = None
    lone_spacing_mm: float = 3.0

    def _slices_fit(self, z: np.ndarray) -> bool:
        slices = self.slice_positions_mm
        if slices is None or slices.size < 2:
            return False
        nearest = np.clip(np.searchsorted(slices, z), 1, slices.size - 1)
        distance = np.minimum(np.abs(slices[nearest - 1] - z), np.abs(slices[nearest] - z))
        return bool(np.all(distance <= _SLICE_TOLERANCE_MM))

    def thicknesses(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For a structure's ascending plane positions ``z`` (mm): whether plane i joins plane i + 1, and the
        cap (mm) below and above each plane, 0 where the plane is joined on that side."""
        n = z.size
        gaps = np.diff(z)
        if self._slices_fit(z):
            slices = self.slice_positions_mm
            assert slices is not None
            # A gap that skips a CT slice separates parts; a part ends half a slice gap beyond its plane.
            inner = np.searchsorted(slices, z[1:] - _SLICE_TOLERANCE_MM) - np.searchsorted(slices, z[:-1] + _SLICE_TOLERANCE_MM, side="right")
            joined = inner == 0
            at = np.searchsorted(slices, z - _SLICE_TOLERANCE_MM)
            below_slice = np.where(at > 0, z - slices[np.maximum(at - 1, 0)], np.nan)
            after = np.searchsorted(slices, z + _SLICE_TOLERANCE_MM, side="right")
            above_slice = np.where(after < slices.size, slices[np.minimum(after, slices.size - 1)] - z, np.nan)
            below_own = np.where(np.isnan(below_slice), above_slice, below_slice) / 2
            above_own = np.where(np.isnan(above_slice), below_slice, above_slice) / 2
        else:
            local = _local_spacings(gaps)
            local = np.where(np.isnan(local), self.lone_spacing_mm, local)
            joined = gaps <= _GAP_FACTOR * local
            # An isolated plane takes half the local spacing of its gaps (the finer of the two).
            spacing = np.full(n, self.lone_spacing_mm)
            if n > 1:
                spacing = np.minimum(np.append(local, np.inf), np.insert(local, 0, np.inf))
            below_own = above_own = spacing / 2
        joined_below = np.insert(joined, 0, False)
        joined_above = np.append(joined, False)
        half_gap_above = np.append(gaps, np.nan) / 2
        half_gap_below = np.insert(gaps, 0, np.nan) / 2
        # The end plane of a part joined on one side mirrors that gap, unless the CT says otherwise.
        if self._slices_fit(z):
            below = np.where(joined_below, 0.0, below_own)
            above = np.where(joined_above, 0.0, above_own)
        else:
            below = np.where(joined_below, 0.0, np.where(joined_above, half_gap_above, below_own))
            above = np.where(joined_above, 0.0, np.where(joined_below, half_gap_below, above_own))
        return joined, below, above


class _ContourStack:
    """One ROI's planes on a lattice: each plane's mask, and the mask at any z (mm)."""

    def __init__(self, roi: Roi, lattice: _Lattice, geometry: "PlaneGeometry") -> None:
        self.z, self.polygons = roi.planes()
        self.lattice = lattice
        self.areas = _plane_areas_mm2(self.polygons)
        self._masks: np.ndarray | None = None  # every plane's region, made on first use
        self._features: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._exponents: dict[tuple[int, int], float] = {}
        self._gaps: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self.joined, self._below, self._above = geometry.thicknesses(self.z)

    def extent(self) -> tuple[float, float]:
        return float(self.z[0] - self.cap_below(0)), float(self.z[-1] + self.cap_above(self.z.size - 1))

    def cap_below(self, i: int) -> float:
        """Half-thickness below plane i when nothing is interpolated below it (0 when joined)."""
        return float(self._below[i])

    def cap_above(self, i: int) -> float:
        return float(self._above[i])

    def mask(self, i: int) -> np.ndarray:
        if self._masks is None:
            self._masks = self.lattice.rasterise(self.polygons)
        return self._masks[i]

    def _closing(self, small: int, large: int) -> bool:
        return self.areas[small] < _CLOSING_AREA_RATIO * self.areas[large]

    def occupancy(self, z: float, key: tuple) -> tuple[np.ndarray, float]:
        """The samples of a sub-slab (see ``sub_slabs``) and the share (0-1) of each that is
        occupied.  Across a gap, a sample inside the lower plane only is occupied (1 - t),
        inside the upper only t, t being the fraction of the gap: each keeps half the gap
        as in the nearest-plane rule, while the area changes linearly."""
        kind = key[0]
        if kind == "plane":
            return self.mask(key[1]), 1.0
        if kind == "both":
            return self._gap_parts(key[1])[0], 1.0
        if kind == "lower":
            return self._gap_parts(key[1])[1], 1.0 - key[2]
        if kind == "upper":
            return self._gap_parts(key[1])[2], key[2]
        return self.mask_at(z), 1.0

    def _gap_parts(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Between planes i and i + 1: the samples inside both, inside the lower only, inside the upper only."""
        if i not in self._gaps:
            lower, upper = self.mask(i), self.mask(i + 1)
            self._gaps[i] = (lower & upper, lower & ~upper, upper & ~lower)
        return self._gaps[i]

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
            return self._closing_mask(i, i + 1, t ** self._closing_exponent(i, i + 1))
        if self._closing(i + 1, i):
            return self._closing_mask(i + 1, i, (1 - t) ** self._closing_exponent(i + 1, i))
        # Each plane stands for the half of the gap next to it: exact in volume for a
        # structure narrowing to a tip between planes, where blending shapes loses the tip.
        return self.mask(i) if t < 0.5 else self.mask(i + 1)

    def _closing_exponent(self, small: int, large: int) -> float:
        """How the shrinking scale follows the distance from the closing plane: scale = t ** e.

        The area next to a closing contour grows like distance ** p: p = 1 for a
        smooth cap, 1/2 for a lying cylinder's side, 2 for a cone's apex.  p is
        read from the areas of the next two planes when there are two (clipped to
        [1/2, 2]), else taken as that of a smooth surface.  Shrinking the region
        by a scale s changes its area like s ** D (D = 2 towards a point, 1 towards
        a line), measured here; so e = p / D.
        """
        key = (small, large)
        if key not in self._exponents:
            step = large - small
            beyond = large + step
            large_area = float(np.count_nonzero(self.mask(large)))
            half_area = float(np.count_nonzero(self._closing_mask(small, large, 0.5)))
            dimension = math.log2(large_area / half_area) if 0 < half_area < large_area else 2.0
            dimension = min(max(dimension, 1.0), 2.0)
            growth = dimension / 2  # smooth surface: area ~ distance ** (D / 2)
            if 0 <= beyond < self.z.size and self.joined[min(large, beyond)] and self.areas[large] > 0:
                near = abs(self.z[large] - self.z[small])
                far = abs(self.z[beyond] - self.z[small])
                ratio = self.areas[beyond] / self.areas[large]
                if ratio > 1 and far > near:
                    growth = min(max(math.log(ratio) / math.log(far / near), 0.5), 2.0)
            self._exponents[key] = growth / dimension
        return self._exponents[key]

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

    def sub_slabs(self, shape_step: float, dose_step: float, breaks: tuple[float, ...] = ()) -> list[tuple[float, float, tuple]]:
        """(z centre, thickness, what to sample) of the sub-slabs that tile this ROI's extent.

        Caps are constant (``("plane", i)``).  In a gap between planes, the part inside both
        planes is one slab across the gap (``("both", i)``; only the dose varies along z), and
        the parts inside one plane only are sampled in a few steps, each step as two sub-slabs
        (``("lower", i, t)`` and ``("upper", i, t)``, the part inside that plane only).  Next
        to a closing contour the gap is tiled finely (``("z",)``: the region at that height)."""
        slabs: list[tuple[float, float, tuple]] = []

        def tile(low: float, high: float, step: float, key) -> None:
            if high - low <= 1e-9:
                return
            # Never straddle a break (the dose grid's end): in or out is decided per sub-slab.
            for cut in breaks:
                if low + 1e-9 < cut < high - 1e-9:
                    tile(low, cut, step, key)
                    tile(cut, high, step, key)
                    return
            count = max(1, math.ceil((high - low) / step - 1e-9))
            width = (high - low) / count
            for k in range(count):
                centre = low + (k + 0.5) * width
                slabs.append((centre, width, key(centre) if callable(key) else key))

        n = self.z.size
        for i, z in enumerate(self.z):
            z = float(z)
            tile(z - self.cap_below(i), z, dose_step, ("plane", i))
            if i + 1 < n and self.joined[i]:
                upper = float(self.z[i + 1])
                gap = upper - z
                if self._closing_pair(i):
                    tile(z, upper, shape_step, ("z",))
                else:
                    tile(z, upper, dose_step, ("both", i))
                    steps = _GAP_STEPS_CHANGING if self._changing(i) else 2
                    tile(z, upper, min(dose_step, gap / steps), lambda c, i=i, z=z, gap=gap: ("lower", i, (c - z) / gap))
                    tile(z, upper, min(dose_step, gap / steps), lambda c, i=i, z=z, gap=gap: ("upper", i, (c - z) / gap))
            else:
                tile(z, z + self.cap_above(i), dose_step, ("plane", i))
        return slabs

    def _changing(self, i: int) -> bool:
        """Whether the region's area changes notably between planes i and i + 1."""
        small, large = sorted((self.areas[i], self.areas[i + 1]))
        return small < 0.8 * large

    def _closing_pair(self, i: int) -> bool:
        """Whether the gap between planes i and i + 1 ends at a closing contour."""
        return self._closing(i, i + 1) or self._closing(i + 1, i)

    def vertex_points(self) -> np.ndarray:
        """Contour vertices at their planes and, for end planes, at the end of their caps (N, 3)."""
        if not self.z.size:
            return np.zeros((0, 3))
        xy = [np.concatenate(polygons) for polygons in self.polygons]
        points = [np.column_stack([np.concatenate(xy), np.repeat(self.z, [len(v) for v in xy])])]
        for i, z in enumerate(self.z):
            for height in (z - self.cap_below(i), z + self.cap_above(i)):
                if height != z:
                    points.append(np.column_stack([xy[i], np.full(len(xy[i]), height)]))
        return np.concatenate(points)


class _Region:
    """A Roi or a Combination on a lattice: the mask at any z, and the sub-slabs to sample."""

    def __init__(self, shape, lattice: _Lattice, geometry: PlaneGeometry, spacing: float) -> None:
        self.shape = shape
        if isinstance(shape, Combination):
            self.parts = [_Region(op, lattice, geometry, spacing) for op in shape.operands]
            self.stack = None
        else:
            self.parts = []
            self.stack = _ContourStack(shape, lattice, geometry)
        self.lattice = lattice
        self.spacing = spacing

    def extent(self) -> tuple[float, float]:
        if self.stack is not None:
            return self.stack.extent()
        extents = [p.extent() for p in self.parts]
        if self.shape.operation == "subtract":
            return extents[0]
        return min(e[0] for e in extents), max(e[1] for e in extents)

    def occupancy(self, z: float, key: tuple) -> tuple[np.ndarray, float]:
        if self.stack is not None:
            return self.stack.occupancy(z, key)
        return self.mask_at(z), 1.0  # derived shapes combine their operands' regions

    def mask_at(self, z: float) -> np.ndarray:
        if self.stack is not None:
            return self.stack.mask_at(z)
        masks = [p.mask_at(z) for p in self.parts]
        if self.shape.operation == "union":
            return np.logical_or.reduce(masks)
        if self.shape.operation == "intersection":
            return np.logical_and.reduce(masks)
        return masks[0] & ~np.logical_or.reduce(masks[1:]) if len(masks) > 1 else masks[0]

    def sub_slabs(self, dose_step: float, breaks: tuple[float, ...] = ()) -> list[tuple[float, float, tuple]]:
        if self.stack is not None:
            return self.stack.sub_slabs(self.spacing, dose_step, breaks)
        low, high = self.extent()
        count = max(1, math.ceil((high - low) / self.spacing))
        step = (high - low) / count
        return [(low + (k + 0.5) * step, step, ("z",)) for k in range(count)]

    def vertex_points(self) -> np.ndarray | None:
        return self.stack.vertex_points() if self.stack is not None else None


def _ratio(step_mm, span_mm) -> np.ndarray:
    """step / span where the interpolation spans a voxel, 0 where it is clamped at the grid's edge."""
    span = np.asarray(span_mm, dtype=float)
    return np.divide(step_mm, span, out=np.zeros(np.broadcast(step_mm, span).shape), where=span > 0)


class _SpreadHistogram:
    """A differential DVH (cc per bin of ``bin_width`` Gy) filled with samples whose volume is
    spread uniformly over a dose interval.

    It is kept as second differences: a uniform spread is a ramp up at its low end and one
    down at its high end in the cumulative volume, and a ramp starting at a fraction f of bin
    j adds (1 - f) at j and f at j + 1 to the differences (the exact share of each bin, not a
    nearest-bin rounding); their running sum is the volume per bin.
    """

    def __init__(self, nbins: int, bin_width: float) -> None:
        self.bin_width = bin_width
        self._second = np.zeros(nbins + 2)

    def add(self, low: np.ndarray, high: np.ndarray, volume: np.ndarray) -> None:
        """Spread each sample's ``volume`` (cc) uniformly over [``low``, ``high``] Gy."""
        start = np.divide(low, self.bin_width, dtype=np.float64)
        width = np.divide(high, self.bin_width, dtype=np.float64)
        width -= start
        # A sample of a single dose (no gradient) keeps a sliver of a bin (1e-6 of a Gy at 1 mGy bins).
        np.maximum(width, _MIN_SPREAD_BINS, out=width)
        stop = start + width
        density = np.divide(volume, width, out=width)  # cc per bin
        # Whole bin and fraction of each end; the fraction's share spills into the next bin.
        start_bin = start.astype(np.intp)
        stop_bin = stop.astype(np.intp)
        start_next = np.subtract(start, start_bin, out=start)
        stop_next = np.subtract(stop, stop_bin, out=stop)
        start_next *= density
        stop_next *= density
        second, following = self._second, self._second[1:]
        # ufunc.at adds in place (repeated bins accumulate) without a histogram-sized temporary.
        np.add.at(second, start_bin, density - start_next)
        np.add.at(following, start_bin, start_next)
        np.subtract.at(second, stop_bin, density - stop_next)
        np.subtract.at(following, stop_bin, stop_next)

    def differential(self, nbins: int) -> np.ndarray:
        """Volume (cc) per bin, the first ``nbins`` bins."""
        return np.cumsum(self._second)[:nbins]


class _PlaneSampler:
    """The dose on the lattice at the dose planes, as float32 (planes, cells) rows, cells row-major:
    the bilinear value (Gy), and half its change across one lattice cell along x and along y
    (the in-plane gradient times half the cell's size).  Made for a range of planes at a time,
    reusing the planes the previous range shares with it."""

    def __init__(self, dose: DoseGrid, lattice: _Lattice) -> None:
        self._plane = PlaneInterpolation(dose.x_mm, dose.y_mm, lattice.xs, lattice.ys)
        x, y = self._plane.x, self._plane.y
        self.in_plane = self._plane.inside.reshape(-1)
        self.all_in_plane = bool(self.in_plane.all())
        self.cells = self.in_plane.size
        # Half the cell size in units of the voxel-centre spacing the interpolation spans (0 at a
        # clamped edge).  Halving is exact in floating point.
        self._x_half = (_ratio(lattice.hx, dose.x_mm[x.upper] - dose.x_mm[x.lower]) / 2).astype(np.float32)
        self._y_half = (_ratio(lattice.hy, dose.y_mm[y.upper] - dose.y_mm[y.lower]) / 2).astype(np.float32)[:, None]
        # Single precision is ample (1e-5 Gy at 60 Gy against 0.001 Gy bins) and halves memory traffic.
        self._dose = dose.single_precision()
        self._first = 0
        self._made = np.zeros((3, 0, self.cells), np.float32)

    def between(self, first: int, last: int) -> np.ndarray:
        """(3, last - first + 1, cells): value, half x change and half y change at planes first..last."""
        count = last - first + 1
        made_last = self._first + self._made.shape[1] - 1
        if first == self._first and count == self._made.shape[1]:
            return self._made
        out = np.empty((3, count, self.cells), np.float32)
        if self._first <= first <= made_last:
            kept = min(made_last, last) - first + 1
            out[:, :kept] = self._made[:, first - self._first : first - self._first + kept]
        else:
            kept = 0
        if kept < count:
            out[:, kept:] = self._make(first + kept, last)
        self._first, self._made = first, out
        return out

    def _make(self, first: int, last: int) -> np.ndarray:
        out = self._plane.values_and_changes(self._dose[first : last + 1])
        out[1] *= self._x_half
        out[2] *= self._y_half
        return out.reshape(3, last - first + 1, self.cells)


def _contour_bounds(rois: list[Roi]) -> tuple[np.ndarray, np.ndarray]:
    """Lowest and highest (x, y, z) of the contour points (mm)."""
    bounds = [roi.bounds_mm() for roi in rois]
    return np.min([low for low, _ in bounds], axis=0), np.max([high for _, high in bounds], axis=0)


def compute_dvh(
    shape: "Roi | Combination",
    dose: DoseGrid,
    *,
    slice_positions_mm: np.ndarray | None = None,
    options: EngineOptions = EngineOptions(),
) -> DoseVolumeHistogram:
    """Cumulative DVH (Gy, cc) of one ROI, or of a structure derived from ROIs, in a dose grid.

    Each ROI's planes stand for the thickness their own neighbouring planes give
    them, or, with ``slice_positions_mm`` (the CT's slice z positions, mm), the
    CT's slices (see the module's docstring); no other ROI plays a part.
    """
    rois = shape.rois() if isinstance(shape, Combination) else [shape]
    for roi in rois:
        if not roi.is_volume:
            raise ValueError(f"ROI {roi.name!r} has no volume: {roi.unusable_reason}")
    low, high = _contour_bounds(rois)
    # A structure of one plane has no spacing of its own: the dose grid's slice spacing stands in.
    lone = float(np.median(np.diff(dose.z_mm))) if dose.z_mm.size > 1 else 3.0
    slices = None if slice_positions_mm is None else np.unique(np.asarray(slice_positions_mm, dtype=float))
    geometry = PlaneGeometry(slices, lone)
    own_gaps = np.concatenate([np.diff(roi.plane_positions_mm()) for roi in rois])
    plane_spacing_mm = float(np.median(own_gaps)) if own_gaps.size else lone

    xmin, ymin, zmin = low
    xmax, ymax, zmax = high
    box_mm3 = max((xmax - xmin) * (ymax - ymin) * (zmax - zmin + plane_spacing_mm), 1e-9)
    # A body (a box of over 15 litres) gets fewer, coarser samples: its DVH rests on its
    # bulk.  Lungs keep the fine budget: coarser sampling moved a lung V20Gy by 0.4 %.
    budget = options.large_sample_budget if box_mm3 > options.large_box_mm3 else options.sample_budget
    spacing = max(options.finest_spacing_mm, (box_mm3 / budget) ** (1 / 3))
    lattice = _Lattice.covering(dose, xmin, xmax, ymin, ymax, spacing)
    region = _Region(shape, lattice, geometry, spacing)

    planes = _PlaneSampler(dose, lattice)
    cells = planes.cells

    dz = float(np.median(np.diff(dose.z_mm))) if dose.z_mm.size > 1 else plane_spacing_mm
    grid_ends = axis_extent_mm(dose.z_mm)
    slabs = region.sub_slabs(dose_step=max(spacing, dz), breaks=grid_ends)
    # In z order, so that a chunk of slabs needs only a few consecutive dose planes.
    slabs = [slabs[j] for j in np.argsort([z for z, _, _ in slabs], kind="stable")]
    slab_z = np.array([z for z, _, _ in slabs])
    thickness = np.array([t for _, t, _ in slabs])
    slab_cc = thickness * lattice.hx * lattice.hy / 1000.0
    along_z = axis_interpolation(dose.z_mm, slab_z)
    z_in, z_lo, z_hi, z_w = along_z.inside, along_z.lower, along_z.upper, along_z.weight
    z_span = dose.z_mm[z_hi] - dose.z_mm[z_lo]
    z_w32 = z_w.astype(np.float32)
    z_half_cell = (_ratio(thickness, z_span) / 2).astype(np.float32)

    grid_max = dose.max_gy
    bin_width = max(options.bin_width_gy, grid_max / _MAX_BINS)
    nbins = int(math.ceil(grid_max / bin_width)) + 2
    histogram = _SpreadHistogram(nbins, bin_width)
    inside_cc = outside_cc = dose_sum = 0.0
    dmin, dmax = math.inf, -math.inf
    per_chunk = max(1, _CHUNK_SAMPLES // cells)
    # Slabs are masked a chunk at a time; the dose is then read only at covered samples.
    for first in range(0, len(slabs), per_chunk):
        chunk = np.arange(first, min(first + per_chunk, len(slabs)))
        occupancy = [region.occupancy(slabs[j][0], slabs[j][2]) for j in chunk]
        masks = np.stack([mask for mask, _ in occupancy]).reshape(chunk.size, cells)
        sample_cc = slab_cc[chunk] * np.array([share for _, share in occupancy])
        counts = np.count_nonzero(masks, axis=1)
        covered = counts
        in_grid = z_in[chunk]
        if not (planes.all_in_plane and in_grid.all()):
            masks &= planes.in_plane[None, :] & in_grid[:, None]
            covered = np.count_nonzero(masks, axis=1)
            outside_cc += float(np.dot(counts - covered, sample_cc))
        flat_index = np.flatnonzero(masks)
        if flat_index.size == 0:
            continue
        # The value and in-plane changes at both dose planes around each sample.
        k0, k1 = int(z_lo[chunk].min()), int(z_hi[chunk].max())
        values, x_half_change, y_half_change = (a.reshape(-1) for a in planes.between(k0, k1))
        # A sample's index in the chunk (slab j, cell c) is j * cells + c; at its lower dose plane
        # in the planes' rows it is (z_lo[j] - k0) * cells + c.  Covered samples come slab by
        # slab, so per-slab values reach them by repetition.
        lower_index = flat_index + np.repeat((z_lo[chunk] - k0 - np.arange(chunk.size)) * cells, covered)
        plane_step = (z_hi[chunk] - z_lo[chunk]) * cells
        upper_index = lower_index + (cells if (plane_step == cells).all() else np.repeat(plane_step, covered))
        tz = np.repeat(z_w32[chunk], covered)
        lower, upper = np.take(values, lower_index), np.take(values, upper_index)
        across = np.subtract(upper, lower, out=upper)
        sampled = across * tz
        sampled += lower
        # Each sample stands for a cell: its volume is spread over the dose range the local
        # gradient gives the cell, so the DVH has no staircase from sampling.
        half_spread = np.abs(across, out=lower)
        half_spread *= np.repeat(z_half_cell[chunk], covered)
        for half_change in (x_half_change, y_half_change):
            below, above = np.take(half_change, lower_index), np.take(half_change, upper_index)
            above -= below
            above *= tz
            above += below
            half_spread += np.abs(above, out=above)
        volume = np.repeat(sample_cc, covered)
        # Spreads are clipped to the grid's range (trilinear doses never leave it); the
        # histogram's tails beyond the structure's own min and max are folded in below.
        low = np.maximum(sampled - half_spread, 0.0)
        high = np.minimum(sampled + half_spread, grid_max)
        histogram.add(low, high, volume)
        inside_cc += float(volume.sum())
        dose_sum += float(np.sum(sampled * volume))
        dmin = min(dmin, float(sampled.min()))
        dmax = max(dmax, float(sampled.max()))

    if inside_cc == 0:
        dmin = dmax = mean = 0.0
        differential = np.zeros(nbins)
    else:
        vertices = region.vertex_points()
        if vertices is not None and vertices.size:
            vertex_dose = dose_at_points(dose, vertices)
            vertex_inside = ~np.isnan(vertex_dose)
            if vertex_inside.any():
                dmin = min(dmin, float(vertex_dose[vertex_inside].min()))
                dmax = max(dmax, float(vertex_dose[vertex_inside].max()))
        differential = histogram.differential(nbins)
        first, last = int(dmin / bin_width), min(int(dmax / bin_width), nbins - 1)
        differential[first] += differential[:first].sum()
        differential[last] += differential[last + 1 :].sum()
        differential[:first] = 0.0
        differential[last + 1 :] = 0.0
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
    slice_positions_mm: np.ndarray | None = None,
    options: EngineOptions = EngineOptions(),
) -> list[DoseVolumeHistogram]:
    """DVHs of several shapes, in the same order.

    One core on purpose: the sampling is bound by memory bandwidth, and on the
    2-core machines measured (benchmarks/README.md) two worker processes each
    ran 2.7x slower than one, so spreading structures over cores lost time.
    """
    return [compute_dvh(s, dose, slice_positions_mm=slice_positions_mm, options=options) for s in shapes]
