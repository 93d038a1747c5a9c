"""Contiguous dose regions at or above a level: what ``--arm auto`` reads to see whether the delivered
dose contradicts the stated prescriptions (a boost-level region in a single-level plan).

The rule is vendor-neutral: it reads only the dose grid (voxel centres, voxel volumes from the
spacings) and, when the structure set has one, the patient's outline (an ROI of RT ROI
Interpreted Type EXTERNAL, else one named BODY or EXTERNAL), so dose outside the patient (air,
couch, a grid padded by the planning system) is not counted; without an outline the whole grid is
read.  Regions are face-connected voxels (6-connectivity: voxels touching at an edge or corner only
are separate regions, the conservative reading).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from rtcheck.dicom.dose import LONE_VOXEL_HALF_WIDTH_MM, DoseGrid
from rtcheck.dicom.structures import Roi, StructureSet
from rtcheck.dvh.engine import _Lattice

__all__ = ["DoseRegion", "largest_region_at_or_above", "outline_roi"]

_OUTLINE_NAMES = {"BODY", "EXTERNAL"}


@dataclass(frozen=True)
class DoseRegion:
    """The largest contiguous region at or above ``level_gy``: its volume (cc) and where it was looked for."""

    volume_cc: float
    level_gy: float
    within: str  # "inside BODY (EXTERNAL)" or "in the dose grid (no EXTERNAL ROI)"


def outline_roi(structure_set: StructureSet) -> Roi | None:
    """The patient's outline: the one usable ROI of type EXTERNAL, else the one named BODY or EXTERNAL."""
    by_type = [r for r in structure_set.rois if r.interpreted_type.upper() == "EXTERNAL" and r.is_volume]
    if len(by_type) == 1:
        return by_type[0]
    if by_type:
        return None  # several outlines: none is the patient's, read the whole grid
    by_name = [r for r in structure_set.rois if r.name.strip().upper() in _OUTLINE_NAMES and r.is_volume]
    return by_name[0] if len(by_name) == 1 else None


def _widths(axis: np.ndarray) -> np.ndarray:
    """Each voxel's extent along an axis (mm): half way to each neighbour, a lone voxel 1 mm."""
    if axis.size == 1:
        return np.array([2 * LONE_VOXEL_HALF_WIDTH_MM])
    gaps = np.diff(axis)
    return np.concatenate([[gaps[0]], (gaps[:-1] + gaps[1:]) / 2, [gaps[-1]]])


def _roi_mask(roi: Roi, dose: DoseGrid) -> np.ndarray:
    """Which dose voxel centres lie inside ``roi``, as a (z, y, x) bool array: each dose plane takes the
    nearest contour plane within half the ROI's plane spacing (0.5 mm for a lone plane), else none."""
    mask = np.zeros(dose.dose_gy.shape, bool)
    z_planes, polygons = roi.planes()
    if not len(z_planes):
        return mask
    hx = float(dose.x_mm[1] - dose.x_mm[0]) if dose.x_mm.size > 1 else 1.0
    hy = float(dose.y_mm[1] - dose.y_mm[0]) if dose.y_mm.size > 1 else 1.0
    planes = _Lattice(dose.x_mm, dose.y_mm, hx, hy).rasterise(polygons)
    reach = float(np.median(np.diff(z_planes))) / 2 if len(z_planes) > 1 else LONE_VOXEL_HALF_WIDTH_MM
    nearest = np.clip(np.searchsorted(z_planes, dose.z_mm), 1, max(len(z_planes) - 1, 1))
    for k, z in enumerate(dose.z_mm):
        options = [i for i in (nearest[k] - 1, nearest[k]) if 0 <= i < len(z_planes)]
        best = min(options, key=lambda i: abs(z_planes[i] - z))
        if abs(z_planes[best] - z) <= reach + 1e-6:
            mask[k] = planes[best]
    return mask


def largest_region_at_or_above(dose: DoseGrid, structure_set: StructureSet, level_gy: float) -> DoseRegion:
    """The largest face-connected region of dose voxels at or above ``level_gy`` (inside the outline when
    the structure set has one), its volume the sum of its voxels' volumes."""
    hot = dose.dose_gy >= level_gy
    roi = outline_roi(structure_set)
    within = f"inside {roi.name} (outline)" if roi is not None else "in the dose grid (no EXTERNAL ROI)"
    if not hot.any():
        return DoseRegion(0.0, level_gy, within)
    if roi is not None:
        hot &= _roi_mask(roi, dose)
    labels, count = ndimage.label(hot)
    if count == 0:
        return DoseRegion(0.0, level_gy, within)
    wx, wy, wz = _widths(dose.x_mm), _widths(dose.y_mm), _widths(dose.z_mm)
    voxel_cc = (wz[:, None, None] * wy[None, :, None] * wx[None, None, :]) / 1000.0
    volumes = np.bincount(labels.ravel(), weights=np.broadcast_to(voxel_cc, labels.shape).ravel(), minlength=count + 1)[1:]
    return DoseRegion(float(volumes.max()), level_gy, within)
