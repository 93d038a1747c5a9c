"""Whether an organ's contours cover it where the dose matters, along the cranio-caudal (z) axis.

An organ whose contours stop where the dose is still high (a cord or lungs contoured
above the PTV only) gives a DVH of the part that was drawn: its maximum, mean or
volume percentages are not the organ's.  Such a structure is not evaluated, with the
extents in the message.

Rule (an rtcheck default, no protocol states one): at an end plane that is cut rather
than tapering (its area at least :data:`CUT_AREA_FRACTION` of the organ's largest plane;
a heart's apex or a lung's dome tapers and may end inside the field), the dose one
contour spacing beyond it, sampled at the end plane's contour vertices and centroid,
must stay below :data:`INCOMPLETE_DOSE_FRACTION` of the reference prescription.  Outside the dose
grid the dose is unknown (NaN) and the end is accepted: the organ then lies beyond the
calculated dose.
"""

from __future__ import annotations

import numpy as np

from rtcheck.dicom.dose import DoseGrid, dose_at_points
from rtcheck.dicom.structures import Roi

__all__ = ["CUT_AREA_FRACTION", "INCOMPLETE_DOSE_FRACTION", "incomplete_contour"]

# 5 % of the prescription: the threshold; low enough that an organ cut where the
# dose bath still matters is caught, high enough that scatter far from the field is not.
INCOMPLETE_DOSE_FRACTION = 0.05
# An end plane with at least half the organ's largest cross-section is a cut, not a natural end.
CUT_AREA_FRACTION = 0.5


def _area_mm2(polygons: list[np.ndarray]) -> float:
    return float(sum(abs(0.5 * np.sum(p[:, 0] * np.roll(p[:, 1], -1) - np.roll(p[:, 0], -1) * p[:, 1])) for p in polygons))


def incomplete_contour(roi: Roi, dose: DoseGrid, rx_gy: float) -> str | None:
    """Why ``roi`` looks cut short along z (its contours stop where the dose is still at or above
    5 % of ``rx_gy`` [Gy]), or None.  "Beyond" is one of the ROI's own plane spacings (median), or
    one dose slice for an ROI on a single plane."""
    z_planes, polygons = roi.planes()
    if len(z_planes) == 0:
        return None
    if len(z_planes) > 1:
        step = float(np.median(np.diff(np.asarray(z_planes, dtype=float))))
    else:
        step = float(abs(dose.z_mm[1] - dose.z_mm[0])) if len(dose.z_mm) > 1 else 0.0
    if step <= 0:
        return None
    limit = INCOMPLETE_DOSE_FRACTION * rx_gy
    largest = max(_area_mm2(plane) for plane in polygons)
    open_ends = []
    for index, beyond, side in ((0, -step, "inferior"), (len(z_planes) - 1, step, "superior")):
        if _area_mm2(polygons[index]) < CUT_AREA_FRACTION * largest:
            continue  # a tapering end: where the organ ends, not where the contouring stopped
        xy = np.vstack([*polygons[index], *(p.mean(axis=0, keepdims=True) for p in polygons[index])])
        points = np.column_stack([xy, np.full(len(xy), float(z_planes[index]) + beyond)])
        sampled = dose_at_points(dose, points)
        if np.all(np.isnan(sampled)):
            continue
        highest = float(np.nanmax(sampled))
        if highest >= limit:
            open_ends.append(f"{side} end z = {float(z_planes[index]):.1f} mm with {highest:.1f} Gy {step:g} mm beyond it")
    if not open_ends:
        return None
    return (
        f"ROI {roi.name!r} contoured from z = {float(z_planes[0]):.1f} to {float(z_planes[-1]):.1f} mm stops where the dose is "
        f"still >= {INCOMPLETE_DOSE_FRACTION * 100:g} % of {rx_gy:g} Gy ({'; '.join(open_ends)}): the organ looks incompletely "
        "contoured, so its DVH is not the organ's (rtcheck's completeness rule)"
    )
