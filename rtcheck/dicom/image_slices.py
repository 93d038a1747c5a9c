"""The slice positions of the image series a structure set was drawn on, validated before the DVH engine uses
them to tell the thickness each contour plane stands for (:class:`rtcheck.dvh.engine.PlaneGeometry`).

A contour plane lies on an image (PS3.3 C.8.8.6: Contour Image Sequence) and stands for that image's
slice: up to half-way to the neighbouring images.  Positions are read from Image Position (Patient)
(0020,0032), "the x, y, and z coordinates of the upper left hand corner of the image, in mm" (C.7.6.2.1.1),
of images whose Image Orientation (Patient) (0020,0037) is axial, so that the image plane is z = that z.
Positions that are not all usable (another Frame of Reference, a tilted or absent orientation, a position
that is absent or not finite, two images at one z, fewer images than the structure set lists) are not used:
each ROI's planes then stand for the thickness of its own neighbouring planes, and a note says why.
"""

from __future__ import annotations

import numpy as np

from rtcheck.dicom.identity import ImageSeries, ObjectIdentity

__all__ = ["slice_positions"]

# rtcheck's default: the image normal (row x column cosines) within 0.08 degrees of the z axis (|n_z| >= 1 - 1e-6):
# cosines written with six decimals pass; a gantry-tilted series (degrees of tilt) does not, its planes not
# being planes of constant z.
_AXIAL_MIN_NZ = 1.0 - 1e-6
# Direction cosines are unit vectors (C.7.6.2.1.1); written with about six decimals.
_UNIT_TOLERANCE = 1e-3
# Two images closer than this (mm) in z are taken as at one position.
_DISTINCT_MM = 1e-3


def _axial(orientation: tuple[float, ...] | None) -> bool:
    if orientation is None or not all(np.isfinite(orientation)):
        return False
    row, column = np.array(orientation[:3]), np.array(orientation[3:])
    if abs(np.linalg.norm(row) - 1) > _UNIT_TOLERANCE or abs(np.linalg.norm(column) - 1) > _UNIT_TOLERANCE:
        return False
    normal = np.cross(row, column)
    return bool(abs(normal[2]) >= _AXIAL_MIN_NZ * np.linalg.norm(normal))


def _problem(series: ImageSeries, listed: int, frame_uid: str) -> str:
    """Why the positions of ``series`` cannot be used; "" when they can."""
    slices = series.slices
    if listed and len(slices) < listed:
        return f"{len(slices)} of the {listed} images the structure set lists (ContourImageSequence) are among the inputs"
    if len(slices) < 2:
        return "fewer than two images are among the inputs"
    for image in slices:
        name = image.path
        if image.frame_of_reference_uid != frame_uid:
            return f"{name} is in Frame of Reference {image.frame_of_reference_uid or '(none)'}, the contours and dose in {frame_uid}"
        if image.z_mm is None or not np.isfinite(image.z_mm):
            return f"{name} has no usable ImagePositionPatient (0020,0032)"
        if not _axial(image.orientation):
            shown = "absent" if image.orientation is None else "[" + ", ".join(f"{v:g}" for v in image.orientation) + "]"
            return f"{name}: ImageOrientationPatient (0020,0037) {shown} is not axial"
    z = np.array([image.z_mm for image in slices], dtype=float)  # ascending: ImageSeries keeps its slices in z order
    close = np.flatnonzero(np.diff(z) < _DISTINCT_MM)
    if close.size:
        i = int(close[0])
        return f"{slices[i].path} and {slices[i + 1].path} both lie at z {z[i]:.3f} mm"
    return ""


def slice_positions(drawn_on: list[ImageSeries], structure_set: ObjectIdentity, frame_uid: str) -> tuple[np.ndarray | None, str]:
    """The z positions (mm, ascending) of the images the structure set ``structure_set`` was drawn on, among the
    inputs (``drawn_on``: the series it references that are present), in Frame of Reference ``frame_uid`` (the
    dose's), and a note saying whether they are used and why; (None, "") when no such image is among the inputs."""
    if not drawn_on:
        return None, ""
    fallback = "each ROI's planes stand for the thickness of its own neighbouring planes"
    if len(drawn_on) > 1:
        listing = ", ".join(f"{s.modality} {s.series_uid}" for s in drawn_on)
        return None, f"slice positions not used: the structure set references {len(drawn_on)} image series among the inputs ({listing}); {fallback}"
    series = drawn_on[0]
    listed = dict(structure_set.referenced_series).get(series.series_uid, 0)
    problem = _problem(series, listed, frame_uid)
    what = f"{series.modality} series {series.series_uid}"
    if problem:
        return None, f"slice positions of {what} not used: {problem}; {fallback}"
    z = np.array([image.z_mm for image in series.slices], dtype=float)
    return z, (f"slice positions of {what} ({z.size} images, z {z[0]:.1f} to {z[-1]:.1f} mm) give the thickness each contour "
               "plane stands for, in every ROI whose planes lie on them (a gap that skips an image separates parts)")
