"""Contour-and-dose sampling DVH engine.

Method (conventions physicists need to know):

* Each axial contour plane stands for a slab reaching half-way to its
  neighbouring planes; the first and last planes reach half a plane spacing
  beyond themselves (end caps).  A gap wider than 1.5 plane spacings is a
  break between separate parts, not a slab.
* Within a plane, all closed contours are combined by the even-odd rule, so a
  contour inside another is a hole.
* The slab is sampled on a lattice aligned with the dose voxels' boundaries,
  finer than the dose grid (down to 0.2 mm for small structures, coarser for
  large ones within a budget of about two million samples per structure), so boundary voxels count in proportion to the
  part inside the contour (partial volume).
* The dose at each sample is trilinearly interpolated between dose voxel
  centres; within half a voxel beyond the outermost centres the edge value is
  used; samples farther out are counted as outside the dose grid.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from rtcheck.dicom.dose import DoseGrid
from rtcheck.dicom.structures import Roi
from rtcheck.dvh.histogram import DoseVolumeHistogram


_MAX_BINS = 200_000


@dataclass(frozen=True)
class EngineOptions:
    """Sampling controls: finest sample spacing (mm), samples per structure, histogram bin (Gy)."""

    finest_spacing_mm: float = 0.2
    sample_budget: int = 2_000_000
    bin_width_gy: float = 0.001


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


def _axis_interpolation(positions: np.ndarray, centres: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per position: inside-grid flag, lower/upper centre index and weight of the upper one (linear, edge-clamped)."""
    n = centres.size
    if n == 1:
        half = 0.5  # a single-voxel axis: no extent known beyond the centre; keep 1 mm around it
        inside = np.abs(positions - centres[0]) <= half
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


def _slabs(planes: np.ndarray, typical_mm: float) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper z bound (mm) of the slab each contour plane stands for."""
    def half(gap: float | None) -> float:
        if gap is None or gap > 1.5 * typical_mm:
            return typical_mm / 2
        return gap / 2

    lows, highs = [], []
    for i, z in enumerate(planes):
        below = planes[i] - planes[i - 1] if i > 0 else None
        above = planes[i + 1] - planes[i] if i + 1 < planes.size else None
        lows.append(z - half(below if below is not None else above))
        highs.append(z + half(above if above is not None else below))
    return np.array(lows), np.array(highs)


def compute_dvh(
    roi: Roi,
    dose: DoseGrid,
    *,
    plane_spacing_mm: float | None = None,
    options: EngineOptions = EngineOptions(),
) -> DoseVolumeHistogram:
    """Cumulative DVH (Gy, cc) of one ROI in a dose grid.

    ``plane_spacing_mm`` is the structure set's usual contour spacing, used
    for the thickness of isolated planes; it defaults to this ROI's median
    spacing, then to the dose grid's slice spacing.
    """
    if not roi.is_volume:
        raise ValueError(f"ROI {roi.name!r} has no volume: {roi.unusable_reason}")
    by_plane: dict[float, list[np.ndarray]] = {}
    for contour in roi.contours:
        by_plane.setdefault(round(contour.z_mm, 3), []).append(contour.xy_mm)
    planes = np.array(sorted(by_plane))
    if plane_spacing_mm is None:
        gaps = np.diff(planes)
        plane_spacing_mm = float(np.median(gaps)) if gaps.size else (float(np.median(np.diff(dose.z_mm))) if dose.z_mm.size > 1 else 3.0)
    lows, highs = _slabs(planes, plane_spacing_mm)

    points = np.concatenate([c.xy_mm for c in roi.contours])
    xmin, ymin = points.min(axis=0)
    xmax, ymax = points.max(axis=0)
    dx = float(dose.x_mm[1] - dose.x_mm[0]) if dose.x_mm.size > 1 else 1.0
    dy = float(dose.y_mm[1] - dose.y_mm[0]) if dose.y_mm.size > 1 else 1.0
    box_mm3 = max((xmax - xmin) * (ymax - ymin) * float(np.sum(highs - lows)), 1e-9)
    spacing = max(options.finest_spacing_mm, (box_mm3 / options.sample_budget) ** (1 / 3))
    kx, ky = max(1, math.ceil(dx / spacing)), max(1, math.ceil(dy / spacing))
    hx, hy = dx / kx, dy / ky

    # Lattice aligned with voxel boundaries, extended to cover the contours.
    x_origin = float(dose.x_mm[0]) - dx / 2 + hx / 2
    y_origin = float(dose.y_mm[0]) - dy / 2 + hy / 2
    c_first = math.floor((xmin - x_origin) / hx)
    r_first = math.floor((ymin - y_origin) / hy)
    ncols = math.ceil((xmax - x_origin) / hx) - c_first + 1
    nrows = math.ceil((ymax - y_origin) / hy) - r_first + 1
    xs = x_origin + (c_first + np.arange(ncols)) * hx
    ys = y_origin + (r_first + np.arange(nrows)) * hy

    x_in, x_lo, x_hi, x_w = _axis_interpolation(xs, dose.x_mm)
    y_in, y_lo, y_hi, y_w = _axis_interpolation(ys, dose.y_mm)
    # Only the dose rows/columns the lattice touches are interpolated.
    col_a, col_b = int(x_lo.min()), int(x_hi.max()) + 1
    row_a, row_b = int(y_lo.min()), int(y_hi.max()) + 1

    grid_min, grid_max = float(dose.dose_gy.min()), dose.max_gy
    # Bins of bin_width_gy, widened if needed so that a corrupt or brachytherapy-like
    # maximum cannot ask for more than _MAX_BINS bins.
    bin_width = max(options.bin_width_gy, grid_max / _MAX_BINS)
    nbins = int(math.ceil(grid_max / bin_width)) + 2
    steps = np.zeros(nbins + 1)
    corrections = np.zeros(nbins + 1)
    lows_gy: list[np.ndarray] = []
    highs_gy: list[np.ndarray] = []
    volumes_cc: list[np.ndarray] = []
    inside_cc = outside_cc = 0.0
    dose_sum = 0.0
    dmin, dmax = math.inf, -math.inf
    in_plane_grid = y_in[:, None] & x_in[None, :]
    ry_lo, ry_hi, wy = y_lo - row_a, y_hi - row_a, y_w[:, None]
    cx_lo, cx_hi = x_lo - col_a, x_hi - col_a

    def on_lattice(plane: np.ndarray) -> np.ndarray:
        along_y = plane[ry_lo] * (1 - wy) + plane[ry_hi] * wy
        return along_y[:, cx_lo] * (1 - x_w) + along_y[:, cx_hi] * x_w

    for z, low, high in zip(planes, lows, highs):
        mask = _even_odd_mask(by_plane[float(z)], xs[0], hx, ncols, ys[0], hy, nrows)
        count = int(mask.sum())
        if count == 0:
            continue
        nz = max(1, math.ceil((high - low) / spacing))
        hz = (high - low) / nz
        sample_cc = hx * hy * hz / 1000.0
        covered = mask & in_plane_grid
        n_covered = int(covered.sum())
        sub_z = low + (np.arange(nz) + 0.5) * hz
        z_in, z_lo, z_hi, z_w = _axis_interpolation(sub_z, dose.z_mm)
        for k in range(nz):
            if not z_in[k] or n_covered == 0:
                outside_cc += count * sample_cc
                continue
            outside_cc += (count - n_covered) * sample_cc
            lower = dose.dose_gy[z_lo[k], row_a:row_b, col_a:col_b]
            upper = dose.dose_gy[z_hi[k], row_a:row_b, col_a:col_b]
            values = on_lattice(lower * (1 - z_w[k]) + upper * z_w[k])
            # Each sample stands for a cell: spread its volume over the dose range the
            # local gradient gives the cell, so the DVH has no staircase from sampling.
            width = np.zeros_like(values)
            if ncols > 1:
                width += np.abs(np.gradient(values, axis=1))
            if nrows > 1:
                width += np.abs(np.gradient(values, axis=0))
            if z_hi[k] != z_lo[k]:
                gz = on_lattice(upper - lower) / (dose.z_mm[z_hi[k]] - dose.z_mm[z_lo[k]])
                width += np.abs(gz) * hz
            sampled, spread = values[covered], width[covered]
            low_gy = np.clip(sampled - spread / 2, grid_min, grid_max)
            high_gy = np.clip(sampled + spread / 2, grid_min, grid_max)
            lows_gy.append(low_gy)
            highs_gy.append(high_gy)
            volumes_cc.append(np.full(low_gy.size, sample_cc))
            inside_cc += sampled.size * sample_cc
            dose_sum += float(sampled.sum()) * sample_cc
            dmin = min(dmin, float(low_gy.min()))
            dmax = max(dmax, float(high_gy.max()))

    if lows_gy:
        _accumulate(steps, corrections, np.concatenate(lows_gy), np.concatenate(highs_gy), np.concatenate(volumes_cc), bin_width)
    differential = (np.cumsum(steps) + corrections)[:nbins]
    if inside_cc == 0:
        dmin = dmax = mean = 0.0
    else:
        mean = dose_sum / inside_cc
    return DoseVolumeHistogram(
        name=roi.name,
        roi_number=roi.number,
        bin_width_gy=bin_width,
        differential_cc=differential,
        volume_cc=inside_cc,
        min_gy=dmin,
        max_gy=dmax,
        mean_gy=mean,
        outside_volume_cc=outside_cc,
    )
