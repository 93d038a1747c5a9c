"""RT Structure Set -> ROIs made of axial planar contours (patient coordinates, mm)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset

from rtcheck.dicom.io import contour_coordinates
from rtcheck.errors import InputError

# Contour points of one axial plane may differ in z by rounding in the exporting system.
PLANAR_TOLERANCE_MM = 0.05


@dataclass
class Contour:
    """One closed polygon on an axial plane: ``z_mm`` and its vertices ``xy_mm`` (N x 2)."""

    z_mm: float
    xy_mm: np.ndarray


@dataclass
class Roi:
    """A region of interest of a structure set.

    ``contours`` holds only the usable CLOSED_PLANAR axial contours;
    ``unusable_reason`` says why the ROI has no volume (POINT/OPEN_PLANAR only,
    empty, non-axial) and is None for a usable volume.
    """

    number: int
    name: str
    interpreted_type: str
    frame_of_reference_uid: str
    contours: list[Contour] = field(default_factory=list)
    geometric_types: set[str] = field(default_factory=set)
    notes: list[str] = field(default_factory=list)
    unusable_reason: str | None = None
    # (Coding Scheme Designator, Code Value) of the RT ROI Identification Code Sequence, when written.
    identification_code: tuple[str, str] | None = None

    @property
    def is_volume(self) -> bool:
        return self.unusable_reason is None

    def plane_positions_mm(self) -> np.ndarray:
        """Sorted distinct z of the contour planes (mm)."""
        return self._geometry().positions_mm

    def planes(self) -> tuple[np.ndarray, list[list[np.ndarray]]]:
        """The contours by plane: ascending z (mm, to 0.001 mm) and each plane's (N x 2) polygons (mm)."""
        geometry = self._geometry()
        return geometry.z_mm, geometry.polygons

    def bounds_mm(self) -> tuple[np.ndarray, np.ndarray]:
        """Lowest and highest (x, y, z) of the contour points (mm)."""
        geometry = self._geometry()
        return geometry.low_mm, geometry.high_mm

    def _geometry(self) -> "_RoiGeometry":
        # Made once per ROI (every DVH of it, on any dose, reads the same), again only if contours were added.
        cached: _RoiGeometry | None = getattr(self, "_cached_geometry", None)
        if cached is None or cached.contour_count != len(self.contours):
            cached = _RoiGeometry.of(self.contours)
            self._cached_geometry = cached
        return cached


@dataclass(frozen=True)
class _RoiGeometry:
    """An ROI's contours arranged for the DVH engine (see ``Roi.planes`` and ``Roi.bounds_mm``)."""

    contour_count: int
    positions_mm: np.ndarray
    z_mm: np.ndarray
    polygons: list[list[np.ndarray]]
    low_mm: np.ndarray
    high_mm: np.ndarray

    @classmethod
    def of(cls, contours: list[Contour]) -> "_RoiGeometry":
        by_plane: dict[float, list[np.ndarray]] = {}
        for contour in contours:
            by_plane.setdefault(round(contour.z_mm, 3), []).append(contour.xy_mm)
        z = np.array(sorted(by_plane))
        z_values = [c.z_mm for c in contours]
        if contours:
            xy = np.concatenate([c.xy_mm for c in contours])
            low, high = np.append(xy.min(axis=0), min(z_values)), np.append(xy.max(axis=0), max(z_values))
        else:
            low = high = np.full(3, np.nan)
        return cls(len(contours), np.unique(np.round(z_values, 3)), z, [by_plane[float(v)] for v in z], low, high)


@dataclass
class StructureSet:
    path: Path
    sop_instance_uid: str
    label: str
    frame_of_reference_uids: set[str]
    rois: list[Roi]
    patient_id: str = ""
    patient_name: str = ""

    def roi_by_name(self, name: str) -> Roi | None:
        for roi in self.rois:
            if roi.name == name:
                return roi
        return None


# PS3.3 C.8.8.6.1, Contour Geometric Type (3006,0042): POINT, OPEN_PLANAR, OPEN_NONPLANAR, CLOSED_PLANAR
# (and CLOSEDPLANAR_XOR, combined by XOR with the ROI's other contours, which rtcheck does not evaluate).
_NON_VOLUME_TYPES = {"POINT", "OPEN_PLANAR", "OPEN_NONPLANAR"}
# Patient coordinates beyond 10 m are damage, not anatomy: rtcheck's default, so that a damaged value
# cannot ask the DVH engine for a lattice of astronomic size.
MAX_COORDINATE_MM = 1e4


class UnusableContour(ValueError):
    """A ContourSequence item that cannot be used; its ROI is not evaluated (the message says why)."""


def _parse_contour(item: Dataset, geometric_type: str, index: int) -> Contour | None:
    """The axial polygon of a CLOSED_PLANAR item, None for an item of a non-volume type (POINT...).

    UnusableContour for an item that cannot be used: dropping it would grade the ROI on what is left.
    """
    where = f"ContourSequence item {index} (3006,0040)"
    if not geometric_type:
        raise UnusableContour(f"{where} has no ContourGeometricType (3006,0042)")
    if geometric_type != "CLOSED_PLANAR" and geometric_type not in _NON_VOLUME_TYPES:
        raise UnusableContour(f"{where} has ContourGeometricType {geometric_type!r}, which rtcheck does not evaluate")
    try:
        data = contour_coordinates(item)
    except ValueError:
        raise UnusableContour(f"{where} has a ContourData (3006,0050) value that is not a number") from None
    if data is None or len(data) == 0:
        raise UnusableContour(f"{where} has an empty ContourData (3006,0050)")
    if len(data) % 3:
        raise UnusableContour(f"{where} has {len(data)} ContourData (3006,0050) values, not a multiple of 3")
    if not np.all(np.isfinite(data)):
        raise UnusableContour(f"{where} has a ContourData (3006,0050) value that is not finite")
    if np.max(np.abs(data)) > MAX_COORDINATE_MM:
        raise UnusableContour(f"{where} has a ContourData (3006,0050) coordinate beyond {MAX_COORDINATE_MM:g} mm")
    points = data.reshape(-1, 3)
    announced = item.get("NumberOfContourPoints")
    if announced is not None and announced != "":
        try:
            count = int(announced)
        except (TypeError, ValueError):
            count = -1
        if count != len(points):
            raise UnusableContour(f"{where} announces {announced} points (NumberOfContourPoints, 3006,0046) but holds {len(points)}")
    if geometric_type in _NON_VOLUME_TYPES:
        return None
    if len(points) < 3:
        raise UnusableContour(f"{where} is a CLOSED_PLANAR contour of {len(points)} point(s)")
    z = points[:, 2]
    if np.ptp(z) > PLANAR_TOLERANCE_MM:
        raise UnusableContour(f"{where} is not axial (z spans {np.ptp(z):.2f} mm)")
    return Contour(float(np.mean(z)), points[:, :2].copy())


def _by_roi_number(ds: Dataset, path: Path, sequence: str, tag: str) -> dict[int, Dataset]:
    """The items of ``sequence`` by their ReferencedROINumber; InputError when a number is given twice
    (the ROI's contours or type would be those of whichever item came last)."""
    found: dict[int, Dataset] = {}
    for item in ds.get(sequence) or []:
        if "ReferencedROINumber" not in item:
            continue
        try:
            number = int(item.ReferencedROINumber)
        except (TypeError, ValueError):
            raise InputError(path, f"{sequence} {tag} has an item whose ReferencedROINumber is not a number") from None
        if number in found:
            raise InputError(path, f"{sequence} {tag} has two items for ROI number {number}")
        found[number] = item
    return found


def parse_structure_set(ds: Dataset, path: Path) -> StructureSet:
    """Build the StructureSet of an RT Structure Set data set (read-only)."""
    if "StructureSetROISequence" not in ds:
        raise InputError(path, "RT Structure Set has no StructureSetROISequence")
    frames = {str(f.FrameOfReferenceUID) for f in (ds.get("ReferencedFrameOfReferenceSequence") or []) if "FrameOfReferenceUID" in f}
    observations = _by_roi_number(ds, path, "RTROIObservationsSequence", "(3006,0080)")
    interpreted = {number: str(obs.get("RTROIInterpretedType", "") or "") for number, obs in observations.items()}
    codes: dict[int, tuple[str, str]] = {}
    for number, obs in observations.items():
        # PS3.3 C.8.8.8: RT ROI Identification Code Sequence (3006,0086), Type 3, "Sequence containing
        # Code used to identify ROI. If this Sequence is included, only a single Item shall be included".
        items = obs.get("RTROIIdentificationCodeSequence") or []
        if len(items) == 1 and items[0].get("CodeValue") and items[0].get("CodingSchemeDesignator"):
            codes[number] = (str(items[0].CodingSchemeDesignator).strip(), str(items[0].CodeValue).strip())
    contour_items = _by_roi_number(ds, path, "ROIContourSequence", "(3006,0039)")

    rois: list[Roi] = []
    names_by_number: dict[int, str] = {}
    for item in ds.StructureSetROISequence or []:
        try:
            number = int(item.ROINumber)
        except (AttributeError, TypeError, ValueError):
            raise InputError(path, "StructureSetROISequence (3006,0020) item without a valid ROINumber") from None
        name = str(item.get("ROIName", "") or f"ROI {number}")
        if number in names_by_number:
            # Which contours are the cord's and which the heart's cannot be told: refuse rather than guess.
            raise InputError(
                path, f"StructureSetROISequence (3006,0020) gives ROI number {number} twice ({names_by_number[number]!r} and {name!r})"
            )
        names_by_number[number] = name
        roi = Roi(
            number=number,
            name=name,
            interpreted_type=interpreted.get(number, ""),
            frame_of_reference_uid=str(item.get("ReferencedFrameOfReferenceUID", "") or ""),
            identification_code=codes.get(number),
        )
        rc = contour_items.get(number)
        geometric: set[str] = set()
        try:
            for index, contour_item in enumerate((rc.get("ContourSequence") or []) if rc is not None else [], start=1):
                geometric_type = str(contour_item.get("ContourGeometricType", "") or "").strip().upper()
                geometric.add(geometric_type)
                contour = _parse_contour(contour_item, geometric_type, index)
                if contour is not None:
                    roi.contours.append(contour)
        except UnusableContour as exc:
            roi.unusable_reason = str(exc)
            roi.contours = []
        roi.geometric_types = geometric
        if roi.unusable_reason is None and not roi.contours:
            if not geometric:
                roi.unusable_reason = "ROI has no contours"
            else:
                roi.unusable_reason = f"ROI has no closed planar contours ({', '.join(sorted(geometric))})"
        rois.append(roi)

    return StructureSet(
        path=path,
        sop_instance_uid=str(ds.get("SOPInstanceUID", "")),
        label=str(ds.get("StructureSetLabel", "") or ""),
        frame_of_reference_uids=frames | {r.frame_of_reference_uid for r in rois if r.frame_of_reference_uid},
        rois=rois,
        patient_id=str(ds.get("PatientID", "") or ""),
        patient_name=str(ds.get("PatientName", "") or ""),
    )
