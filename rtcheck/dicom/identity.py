"""Who and what each object of a plan set is about: patient, study, frame of reference, dates, approval;
and the image series (CT, MR, PET) among the inputs.

Element meanings (PS3.3): Patient Module C.7.1.1 (PatientID, PatientName,
PatientBirthDate); General Study C.7.2.1 (StudyInstanceUID); Frame of Reference
C.7.4.1; RT General Plan C.8.8.9 (RTPlanDate/Time: "Date/Time the treatment plan
was last modified"); Structure Set C.8.8.5 (StructureSetDate/Time: "Date/Time at
which the content of the Structure Set was last modified"); General Image /
Content dates of the RT Dose (ContentDate/Time: "The date/time the content
creation started"); Approval Module C.8.8.16 (ApprovalStatus).  Dates are kept
as written (DA YYYYMMDD, TM HHMMSS.FFFFFF), "" when absent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pydicom.dataset import Dataset

__all__ = ["IMAGE_SOP_CLASSES", "ImageSeries", "ImageSlice", "ObjectIdentity", "group_series", "identity_of", "image_slice"]

# The image storage classes a structure set is drawn on (PS3.4 B.5): CT, MR, PET, Enhanced CT/MR.
IMAGE_SOP_CLASSES = {
    "1.2.840.10008.5.1.4.1.1.2": "CT",
    "1.2.840.10008.5.1.4.1.1.2.1": "CT",
    "1.2.840.10008.5.1.4.1.1.4": "MR",
    "1.2.840.10008.5.1.4.1.1.4.1": "MR",
    "1.2.840.10008.5.1.4.1.1.128": "PT",
}

# The date and time elements that say when an object's content was made, by object role, in order of
# preference: an RT Dose without ContentDate (Type 2C in its image modules) falls back to when the
# instance was created (SOP Common Module).
_WHEN = {
    "RT Plan": (("RTPlanDate", "RTPlanTime"),),
    "RT Ion Plan": (("RTPlanDate", "RTPlanTime"),),
    "RT Structure Set": (("StructureSetDate", "StructureSetTime"),),
    "RT Dose": (("ContentDate", "ContentTime"), ("InstanceCreationDate", "InstanceCreationTime")),
    "image": (("ContentDate", "ContentTime"),),
}


def _text(ds: Dataset, keyword: str) -> str:
    return str(ds.get(keyword, "") or "").strip()


@dataclass(frozen=True)
class ObjectIdentity:
    """One object's identity elements as written (see the module's docstring).

    ``role`` is the object's kind ("RT Plan", "RT Structure Set", "RT Dose", "image");
    ``frames`` every Frame of Reference UID it names (a structure set's referenced frames);
    ``referenced_series`` the image series a structure set's contours were drawn on
    (RTReferencedSeriesSequence) with the number of images it lists for each;
    ``when`` the content date and time (DA, TM), empty when absent.
    """

    role: str
    path: Path
    patient_id: str
    patient_name: str
    birth_date: str
    study_uid: str
    series_uid: str
    frames: tuple[str, ...]
    when_date: str = ""
    when_time: str = ""
    when_element: str = ""  # the element the date was read from, e.g. RTPlanDate
    study_date: str = ""
    approval_status: str = ""
    referenced_series: tuple[tuple[str, int], ...] = ()
    manufacturer: str = ""
    software: str = ""

    @property
    def when(self) -> str:
        """Date and time as one sortable text (YYYYMMDDHHMMSS...), "" when the date is absent."""
        return self.when_date + self.when_time.split(".")[0] if self.when_date else ""


def identity_of(ds: Dataset, path: Path, role: str) -> ObjectIdentity:
    """The identity elements of data set ``ds`` (read from ``path``), an object of ``role``."""
    frames = [_text(ds, "FrameOfReferenceUID")]
    referenced: list[tuple[str, int]] = []
    for ref in ds.get("ReferencedFrameOfReferenceSequence") or []:
        frames.append(_text(ref, "FrameOfReferenceUID"))
        for study in ref.get("RTReferencedStudySequence") or []:
            for series in study.get("RTReferencedSeriesSequence") or []:
                uid = _text(series, "SeriesInstanceUID")
                if uid:
                    referenced.append((uid, len(series.get("ContourImageSequence") or [])))
    date_key, time_key = next(
        (pair for pair in _WHEN.get(role, (("ContentDate", "ContentTime"),)) if _text(ds, pair[0])), ("", "")
    )
    software = ds.get("SoftwareVersions", "")
    return ObjectIdentity(
        role=role,
        path=path,
        patient_id=_text(ds, "PatientID"),
        patient_name=_text(ds, "PatientName"),
        birth_date=_text(ds, "PatientBirthDate"),
        study_uid=_text(ds, "StudyInstanceUID"),
        series_uid=_text(ds, "SeriesInstanceUID"),
        frames=tuple(dict.fromkeys(f for f in frames if f)),
        when_date=_text(ds, date_key) if date_key else "",
        when_time=_text(ds, time_key) if time_key else "",
        when_element=date_key,
        study_date=_text(ds, "StudyDate"),
        approval_status=_text(ds, "ApprovalStatus").upper(),
        referenced_series=tuple(referenced),
        manufacturer=_text(ds, "Manufacturer"),
        software=" / ".join(str(v) for v in software) if not isinstance(software, str) else software,
    )


@dataclass(frozen=True)
class ImageSlice:
    """One image of the inputs: its identity, SOP Instance UID, and where its plane lies (z, mm; None when
    ImagePositionPatient is absent) with its SliceThickness (mm, None when absent) and ImageOrientationPatient
    (the row and column direction cosines, six numbers; None when absent or not six numbers)."""

    identity: ObjectIdentity
    sop_instance_uid: str
    modality: str
    z_mm: float | None
    thickness_mm: float | None
    orientation: tuple[float, ...] | None = None

    @property
    def series_uid(self) -> str:
        return self.identity.series_uid

    @property
    def frame_of_reference_uid(self) -> str:
        return self.identity.frames[0] if self.identity.frames else ""

    @property
    def patient_id(self) -> str:
        return self.identity.patient_id

    @property
    def path(self) -> Path:
        return self.identity.path


def image_slice(ds: Dataset, path: Path) -> ImageSlice | None:
    """The ImageSlice of an image data set (CT, MR, PET), None for another SOP class."""
    modality = IMAGE_SOP_CLASSES.get(str(ds.get("SOPClassUID", "")))
    if modality is None:
        return None
    position = ds.get("ImagePositionPatient")
    try:
        z = float(position[2]) if position is not None and len(position) == 3 else None
    except (TypeError, ValueError):
        z = None
    try:
        thickness = float(ds.SliceThickness) if ds.get("SliceThickness") not in (None, "") else None
    except (TypeError, ValueError):
        thickness = None
    cosines = ds.get("ImageOrientationPatient")
    try:
        orientation = tuple(float(v) for v in cosines) if cosines is not None and len(cosines) == 6 else None
    except (TypeError, ValueError):
        orientation = None
    return ImageSlice(identity_of(ds, path, "image"), _text(ds, "SOPInstanceUID"), modality, z, thickness, orientation)


@dataclass
class ImageSeries:
    """The images of one series among the inputs, in ascending z (mm)."""

    series_uid: str
    modality: str
    slices: list[ImageSlice] = field(default_factory=list)

    @property
    def identity(self) -> ObjectIdentity:
        return self.slices[0].identity

    def z_extent_mm(self) -> tuple[float, float] | None:
        """The z range (mm) the images cover: outermost planes plus half a slice (their SliceThickness, else
        the spacing to their neighbour) each way; None without positions."""
        z = sorted(s.z_mm for s in self.slices if s.z_mm is not None)
        if not z:
            return None
        spacing = min((b - a for a, b in zip(z, z[1:]) if b - a > 1e-3), default=0.0)
        thickness = next((s.thickness_mm for s in self.slices if s.thickness_mm), None) or spacing
        return z[0] - thickness / 2, z[-1] + thickness / 2


def group_series(slices: list[ImageSlice]) -> list[ImageSeries]:
    """Images grouped by SeriesInstanceUID, in the order the series were met."""
    series: dict[str, ImageSeries] = {}
    for image in slices:
        entry = series.setdefault(image.identity.series_uid, ImageSeries(image.identity.series_uid, image.modality))
        entry.slices.append(image)
    for entry in series.values():
        entry.slices.sort(key=lambda s: (s.z_mm is None, s.z_mm or 0.0))
    return list(series.values())
