"""THE linker: which RT objects form one plan set, by UID references, and what a set still lacks.

``rtcheck check`` (:mod:`rtcheck.dicom.planset`), ``rtcheck batch``
(:mod:`rtcheck.batch.discovery`) and ``rtcheck listen``
(:mod:`rtcheck.net.catalog`) all link through this module:

- :func:`read_references` reads only the header elements linking needs;
  :func:`describe` takes them from a data set already read;
- :class:`ObjectReferences` is what one object references;
- :func:`link` groups objects into plan sets (:class:`LinkedSet`);
- :func:`gaps` is the one completeness rule: what a set lacks, including the
  BEAM-dose coverage rule.

Objects are told apart by SOP Class UID and linked by UID (PS3.3); file and
folder names play no part.  The references followed:

- RT Plan -> RT Structure Set: Referenced Structure Set Sequence (300C,0060) of
  the RT General Plan Module (C.8.8.9): "The RT Structure Set on which the RT
  Plan is based. Only a single Item shall be included in this Sequence."  A plan
  that lists several anyway is linked to the one present among the inputs when
  exactly one is; with none present the set lacks it, with several present the
  set is refused (``LinkedSet.error``, one line naming the plan file): rtcheck
  never picks one silently.
- RT Dose -> RT Plan: Referenced RT Plan Sequence (300C,0002) of the RT Dose
  Module (C.8.8.3), with its Referenced Fraction Group Sequence (300C,0020) and,
  for DoseSummationType BEAM, the Referenced Beam Sequence (300C,0004) naming
  the beams the dose is of.
- RT Structure Set -> images (CT, MR, PET): Referenced Frame of Reference
  Sequence (3006,0010) > RT Referenced Study Sequence (3006,0012) > RT Referenced
  Series Sequence (3006,0014) of the Structure Set Module (C.8.8.5), "the series of
  images within the study used in defining the Structure Set".  Images are
  described by their header only (:class:`rtcheck.dicom.identity.ImageSlice`:
  series, Frame of Reference, position, orientation); a set carries the images of
  the series its structure set references that are among the inputs.
"""

from __future__ import annotations

import enum
import hashlib
import os
import warnings
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, NoReturn

from pydicom.dataset import Dataset

from rtcheck.dicom.identity import IMAGE_SOP_CLASSES, ImageSlice, image_slice
from rtcheck.dicom.io import read_header
from rtcheck.dicom.sop import DOSE_FREE_DELIVERY_TYPES, PLAN_KINDS, SOP_CLASS_KINDS, DoseScope, DoseSummation, RTObjectKind
from rtcheck.errors import DamagedFileError, InputError, LinkError, MissingObjectError, TruncatedFileError

__all__ = [
    "LINK_TAGS",
    "Gap",
    "Lacking",
    "CourseGroup",
    "IMAGE_TAGS",
    "InputObject",
    "LinkedSet",
    "Linking",
    "ObjectReferences",
    "describe",
    "describe_input",
    "drawn_images",
    "gaps",
    "group_courses",
    "link",
    "beam_dose_gap",
    "plans_concerned",
    "read_references",
]

# The header elements linking and completeness need (beam numbers: the BEAM-dose coverage rule).
LINK_TAGS = (
    "SOPClassUID",
    "SOPInstanceUID",
    "PatientID",
    "FrameOfReferenceUID",
    "RTPlanLabel",
    "RTPlanDate",
    "RTPlanTime",
    "ReferencedStructureSetSequence",
    "FractionGroupSequence",
    "BeamSequence",
    "IonBeamSequence",
    "ReferencedRTPlanSequence",
    "DoseSummationType",
    "ReferencedFrameOfReferenceSequence",
)

# The header elements an image is described by (rtcheck.dicom.identity.image_slice): identity, series, position.
IMAGE_TAGS = (
    "SOPClassUID",
    "SOPInstanceUID",
    "Modality",
    "PatientID",
    "PatientName",
    "PatientBirthDate",
    "StudyInstanceUID",
    "StudyDate",
    "SeriesInstanceUID",
    "FrameOfReferenceUID",
    "ContentDate",
    "ContentTime",
    "Manufacturer",
    "SoftwareVersions",
    "ImagePositionPatient",
    "ImageOrientationPatient",
    "SliceThickness",
)


@dataclass(frozen=True)
class ObjectReferences:
    """One RT object as linking sees it: its kind (by SOP Class UID), UID, file and the UIDs it references.

    Plans fill ``structure_set_uids`` (every item of ReferencedStructureSetSequence,
    in order), ``beam_numbers`` (BeamSequence, IonBeamSequence for an RT Ion
    Plan), ``fraction_groups`` (the number of items of FractionGroupSequence) and ``dose_free_beams`` (those whose Treatment Delivery Type is SETUP or
    OPEN_PORTFILM: setup and imaging exposures, which planning systems give no dose); doses fill ``plan_uids``, ``summation_type`` (DoseSummationType,
    upper case, "" when absent), ``fraction_group`` and ``referenced_beams``.
    """

    path: Path
    kind: RTObjectKind
    sop_instance_uid: str
    patient_id: str = ""
    frame_of_reference_uid: str = ""
    plan_label: str = ""
    structure_set_uids: tuple[str, ...] = ()
    beam_numbers: tuple[int, ...] = ()
    dose_free_beams: tuple[int, ...] = ()
    fraction_groups: int = 0
    plan_uids: tuple[str, ...] = ()
    summation_type: str = ""
    fraction_group: int | None = None
    referenced_beams: tuple[int, ...] = ()
    plan_date: str = ""  # RTPlanDate (DA) and RTPlanTime (TM) as written: the order of a course's plans
    plan_time: str = ""
    # A structure set's RTReferencedSeriesSequence: the image series its contours are drawn on.
    image_series_uids: tuple[str, ...] = ()

    @property
    def structure_set_uid(self) -> str:
        """The RT Structure Set a plan references when it lists exactly one, else "" (see :func:`link`)."""
        return self.structure_set_uids[0] if len(self.structure_set_uids) == 1 else ""

    @property
    def treatment_beams(self) -> tuple[int, ...]:
        """The plan's beams that deliver treatment dose (setup and imaging beams left out)."""
        return tuple(b for b in self.beam_numbers if b not in self.dose_free_beams)

    @property
    def plan_description(self) -> str:
        return f"plan {self.plan_label or '(no label)'} ({self.sop_instance_uid})"


def _ints(values: Iterable[Any]) -> tuple[int, ...]:
    """The values that are whole numbers (IS), others passed over."""
    found = []
    for value in values:
        try:
            found.append(int(value))
        except (TypeError, ValueError):
            continue
    return tuple(found)


def _uids(items: Iterable[Dataset]) -> tuple[str, ...]:
    return tuple(uid for uid in (str(item.get("ReferencedSOPInstanceUID", "") or "") for item in items) if uid)


def describe(ds: Dataset, path: str | Path) -> ObjectReferences | None:
    """The references of a data set already read (a header, a full read or a received C-STORE); None for
    objects rtcheck does not check (CT...)."""
    kind = SOP_CLASS_KINDS.get(str(ds.get("SOPClassUID", "")))
    if kind is None:
        return None
    frame = str(ds.get("FrameOfReferenceUID", "") or "")
    referenced_frames = ds.get("ReferencedFrameOfReferenceSequence") or [] if kind is RTObjectKind.STRUCTURE_SET else []
    if not frame:
        # An RT Structure Set names its frames in ReferencedFrameOfReferenceSequence (PS3.3 C.8.8.5): the first one.
        frames = [str(f.get("FrameOfReferenceUID", "") or "") for f in referenced_frames]
        frame = next((f for f in frames if f), "")
    series = (str(s.get("SeriesInstanceUID", "") or "") for f in referenced_frames
              for study in f.get("RTReferencedStudySequence") or [] for s in study.get("RTReferencedSeriesSequence") or [])
    described = ObjectReferences(
        path=Path(path),
        kind=kind,
        sop_instance_uid=str(ds.get("SOPInstanceUID", "") or ""),
        patient_id=str(ds.get("PatientID", "") or ""),
        frame_of_reference_uid=frame,
        image_series_uids=tuple(dict.fromkeys(uid for uid in series if uid)),
    )
    if kind in PLAN_KINDS:
        beams = ds.get("IonBeamSequence" if kind is RTObjectKind.ION_PLAN else "BeamSequence") or []
        return replace(
            described,
            plan_label=str(ds.get("RTPlanLabel", "") or ""),
            plan_date=str(ds.get("RTPlanDate", "") or ""),
            plan_time=str(ds.get("RTPlanTime", "") or ""),
            structure_set_uids=_uids(ds.get("ReferencedStructureSetSequence") or []),
            fraction_groups=len(ds.get("FractionGroupSequence") or []),
            beam_numbers=_ints(b.get("BeamNumber") for b in beams),
            dose_free_beams=_ints(
                b.get("BeamNumber") for b in beams if str(b.get("TreatmentDeliveryType", "") or "").upper() in DOSE_FREE_DELIVERY_TYPES
            ),
        )
    if kind is RTObjectKind.DOSE:
        plans = ds.get("ReferencedRTPlanSequence") or []
        groups = [g for ref in plans for g in ref.get("ReferencedFractionGroupSequence") or []]
        group_numbers = _ints(g.get("ReferencedFractionGroupNumber") for g in groups)
        return replace(
            described,
            plan_uids=_uids(plans),
            summation_type=str(ds.get("DoseSummationType", "") or "").upper(),
            fraction_group=group_numbers[0] if group_numbers else None,
            referenced_beams=_ints(b.get("ReferencedBeamNumber") for g in groups for b in g.get("ReferencedBeamSequence") or []),
        )
    return described


# What linking takes: an RT object's references or an image's description.
InputObject = ObjectReferences | ImageSlice


def describe_input(ds: Dataset, path: str | Path) -> InputObject | None:
    """An RT object's references (:func:`describe`) or an image's description (CT, MR, PET: header only);
    None for other objects."""
    if str(ds.get("SOPClassUID", "")) in IMAGE_SOP_CLASSES:
        return image_slice(ds, Path(path))
    return describe(ds, path)


def read_references(path: str | Path) -> InputObject | None:
    """Read only the elements of :data:`LINK_TAGS` (and of :data:`IMAGE_TAGS`) and describe them
    (:func:`describe_input`); None for DICOM objects rtcheck does not use (DICOMDIR..., damaged images included).

    Raises ``InputError`` (``NotDicomError``) for a file that is not DICOM and
    ``DamagedFileError`` for an RT object (by its SOP Class UID or file meta) that
    cannot be read to the elements needed: it may be the plan or dose of a set,
    so it must never be passed over silently.
    """
    path = Path(path)
    try:
        ds = read_header(path, _HEADER_TAGS)
    except TruncatedFileError as exc:
        if exc.sop_class_uid and exc.sop_class_uid not in SOP_CLASS_KINDS:
            return None  # a damaged CT or other object rtcheck does not check
        raise
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        meta_class = str(ds.file_meta.get("MediaStorageSOPClassUID", "")) if hasattr(ds, "file_meta") else ""
        class_uid = str(ds.get("SOPClassUID", ""))
        if not class_uid and (not meta_class or meta_class in SOP_CLASS_KINDS or _ends_in_file_meta(ds, path)):
            raise DamagedFileError(path, "DICOM file without a SOP Class UID (truncated?)")
        described = describe_input(ds, path)
    if isinstance(described, ImageSlice):
        return described if described.sop_instance_uid else None
    if described is not None and not described.sop_instance_uid:
        raise DamagedFileError(path, f"{described.kind.value} without a SOP Instance UID (truncated?)")
    return described


_HEADER_TAGS = tuple(dict.fromkeys((*LINK_TAGS, *IMAGE_TAGS)))


def _ends_in_file_meta(ds: Dataset, path: Path) -> bool:
    """The file stops before the end of the file meta group its group length announces."""
    length = ds.file_meta.get("FileMetaInformationGroupLength") if hasattr(ds, "file_meta") else None
    return length is not None and os.path.getsize(path) <= 132 + 12 + int(length)


# ---------------------------------------------------------------------------------------------- grouping


@dataclass(frozen=True)
class LinkedSet:
    """One plan and the objects linked to it: its RT Structure Set (None when not among the inputs) and
    every RT Dose referencing it, in input order.

    ``notes`` say which of several identical copies of an object was used and
    which structure set was chosen among several references; ``error`` (one
    line) says why the set cannot be checked as linked: copies of one UID that
    differ, or several referenced structure sets present.
    """

    plan: ObjectReferences
    structure_set: ObjectReferences | None
    doses: tuple[ObjectReferences, ...]
    notes: tuple[str, ...] = ()
    error: str = ""
    # The images of the series the structure set references (RTReferencedSeriesSequence) among the inputs.
    images: tuple[ImageSlice, ...] = ()
    # Images of the plan's patient whose series no structure set among the inputs references: perhaps a wrong image set.
    other_images: tuple[ImageSlice, ...] = ()

    @property
    def objects(self) -> list[ObjectReferences]:
        return [self.plan, *([self.structure_set] if self.structure_set is not None else []), *self.doses]

    @property
    def paths(self) -> list[Path]:
        """The plan's file, then its structure set's and doses' (the RT objects; images: ``image_paths``)."""
        return [o.path for o in self.objects]

    @property
    def image_paths(self) -> list[Path]:
        """The files of the set's images (referenced and other), in the order linked."""
        return [image.path for image in (*self.images, *self.other_images)]


@dataclass
class Linking:
    """What :func:`link` made of some objects.

    ``sets``: one per plan UID, in the order the plans came; ``orphan_doses``:
    every copy of the RT Doses that reference no plan among the objects;
    ``unreferenced_structure_sets``: every copy of the structure sets no plan
    references; ``unreferenced_images``: the images whose series no structure set
    among the objects references.
    """

    sets: list[LinkedSet] = field(default_factory=list)
    orphan_doses: list[ObjectReferences] = field(default_factory=list)
    unreferenced_structure_sets: list[ObjectReferences] = field(default_factory=list)
    unreferenced_images: list[ImageSlice] = field(default_factory=list)

    def unreferenced_series(self) -> list[str]:
        """One line per image series no structure set references: "<modality> series <uid> (<n> images, patient <id>)"."""
        by_series: dict[str, list[ImageSlice]] = defaultdict(list)
        for image in self.unreferenced_images:
            by_series[image.series_uid].append(image)
        return [f"{images[0].modality} series {uid or '(no SeriesInstanceUID)'} ({len(images)} images, patient {images[0].patient_id!r}, "
                f"e.g. {images[0].path})" for uid, images in by_series.items()]

    def set_of(self, plan_uid: str) -> LinkedSet | None:
        return next((s for s in self.sets if s.plan.sop_instance_uid == plan_uid), None)

    def orphans_by_plan(self) -> dict[str, list[ObjectReferences]]:
        """The orphan doses by the (absent) plan they reference first ("" for none): one incomplete set each."""
        by_plan: dict[str, list[ObjectReferences]] = defaultdict(list)
        for dose in self.orphan_doses:
            by_plan[dose.plan_uids[0] if dose.plan_uids else ""].append(dose)
        return dict(by_plan)


def _digest(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


def _one_of(copies: list[ObjectReferences], notes: list[str], errors: list[str]) -> ObjectReferences:
    """One object for a UID met in several files: the first when all are byte-identical (noted), else an error."""
    first = copies[0]
    if len(copies) > 1:
        paths = ", ".join(str(c.path) for c in copies)
        if len({_digest(c.path) for c in copies}) > 1:
            errors.append(f"{first.kind.value} {first.sop_instance_uid} is in several files that differ ({paths}); keep one")
        else:
            notes.append(f"{first.kind.value} {first.sop_instance_uid} is in {len(copies)} identical files ({paths}); {first.path} was used")
    return first


def _structure_set_of(
    plan: ObjectReferences,
    by_uid: dict[tuple[RTObjectKind, str], list[ObjectReferences]],
    notes: list[str],
    errors: list[str],
) -> ObjectReferences | None:
    """The structure set of a plan: the one referenced that is present; with several references, exactly one
    must be present (PS3.3 allows one item; see the module's docstring)."""
    referenced = list(dict.fromkeys(plan.structure_set_uids))
    present = [uid for uid in referenced if (RTObjectKind.STRUCTURE_SET, uid) in by_uid]
    if len(present) > 1:
        errors.append(
            f"{plan.path}: RT Plan references {len(referenced)} RT Structure Sets and {len(present)} of them are among the "
            f"inputs ({', '.join(present)}); PS3.3 allows one: pass only the one to check"
        )
        return None
    if not present:
        return None
    if len(referenced) > 1:
        notes.append(
            f"{plan.path}: RT Plan references {len(referenced)} RT Structure Sets ({', '.join(referenced)}); "
            f"{present[0]}, the one among the inputs, was used"
        )
    return _one_of(by_uid[(RTObjectKind.STRUCTURE_SET, present[0])], notes, errors)


def _images_by_series(images: Iterable[ImageSlice]) -> dict[str, list[ImageSlice]]:
    """Images by SeriesInstanceUID, each SOP Instance UID once (its first file), in the order met."""
    seen: set[str] = set()
    by_series: dict[str, list[ImageSlice]] = defaultdict(list)
    for image in images:
        if image.sop_instance_uid in seen:
            continue
        seen.add(image.sop_instance_uid)
        by_series[image.series_uid].append(image)
    return by_series


def drawn_images(structure_set: ObjectReferences | None, images: Iterable[ImageSlice]) -> tuple[ImageSlice, ...]:
    """The images of the series ``structure_set`` references (RTReferencedSeriesSequence), series by series in
    the order it lists them, each SOP Instance UID once."""
    if structure_set is None:
        return ()
    series = _images_by_series(images)
    return tuple(image for uid in structure_set.image_series_uids for image in series.get(uid, []))


def link(objects: Iterable[InputObject]) -> Linking:
    """Group objects into plan sets by UID references: each plan with its structure set, the doses that
    reference it (a dose of several plans, MULTI_PLAN, belongs to each) and the images of the series its
    structure set references (``images``), with the images of the plan's patient that no structure set
    references (``other_images``).

    An RT object met in several files (same kind and UID) is used once: the first
    copy when the copies are byte-identical (a note), else the set gets an
    ``error``.  Nothing is read but those copies' bytes.  An image met in several
    files is used once (its first file).
    """
    by_uid: dict[tuple[RTObjectKind, str], list[ObjectReferences]] = defaultdict(list)
    images: list[ImageSlice] = []
    for obj in objects:
        if isinstance(obj, ImageSlice):
            images.append(obj)
        else:
            by_uid[(obj.kind, obj.sop_instance_uid)].append(obj)
    series = _images_by_series(images)
    claimed = {uid for (kind, _), copies in by_uid.items() if kind is RTObjectKind.STRUCTURE_SET
               for uid in copies[0].image_series_uids}
    unclaimed = [image for uid, members in series.items() if uid not in claimed for image in members]
    doses_of: dict[str, list[list[ObjectReferences]]] = defaultdict(list)  # plan UID -> the doses referencing it
    for (kind, _), copies in by_uid.items():
        if kind is RTObjectKind.DOSE:
            for plan_uid in dict.fromkeys(copies[0].plan_uids):
                doses_of[plan_uid].append(copies)
    linking = Linking()
    referenced_structure_sets: set[str] = set()
    linked_doses: set[str] = set()
    for (kind, plan_uid), copies in by_uid.items():
        if kind not in PLAN_KINDS:
            continue
        notes: list[str] = []
        errors: list[str] = []
        plan = _one_of(copies, notes, errors)
        referenced_structure_sets.update(plan.structure_set_uids)
        structure_set = _structure_set_of(plan, by_uid, notes, errors)
        doses = []
        for dose_copies in doses_of.get(plan_uid, []):
            linked_doses.add(dose_copies[0].sop_instance_uid)
            doses.append(_one_of(dose_copies, notes, errors))
        linking.sets.append(LinkedSet(
            plan, structure_set, tuple(doses), tuple(notes), "; ".join(errors),
            images=drawn_images(structure_set, images),
            other_images=tuple(image for image in unclaimed if image.patient_id == plan.patient_id),
        ))
    for (kind, uid), copies in by_uid.items():
        if kind is RTObjectKind.DOSE and uid not in linked_doses:
            linking.orphan_doses.extend(copies)
        elif kind is RTObjectKind.STRUCTURE_SET and uid not in referenced_structure_sets:
            linking.unreferenced_structure_sets.extend(copies)
    linking.unreferenced_images = unclaimed
    return linking


@dataclass(frozen=True)
class CourseGroup:
    """The RT Plans that may form one course (the phases of an arm, e.g. a plan and its sequential boost): those of
    one patient, Frame of Reference and RT Structure Set, in delivery order (RTPlanDate, RTPlanTime, then label
    and SOP Instance UID).  ``error`` (one line) says why a plan cannot be grouped with others."""

    sets: tuple[LinkedSet, ...]
    error: str = ""

    @property
    def description(self) -> str:
        return ", ".join(s.plan.plan_description for s in self.sets)

    @property
    def where(self) -> str:
        """The keys the group's plans share, e.g. "patient 'A', Frame of Reference 1.2..., RT Structure Set 1.2..."."""
        first = self.sets[0].plan
        return (f"patient {first.patient_id!r}, Frame of Reference {first.frame_of_reference_uid}, "
                f"RT Structure Set {first.structure_set_uid}")

    def ambiguity(self, phases: frozenset[int], arm: str) -> str:
        """Why the group's plans cannot be one course of arm ``arm``, whose courses have ``phases`` phases (with
        ``--arm auto``, those of every arm with phases): "" when its number of plans is one of them."""
        if len(self.sets) in phases:
            return ""
        wanted = " or ".join(str(n) for n in sorted(phases))
        return (f"--sum: {len(self.sets)} RT Plans of {self.where} ({self.description}), but arm {arm} has {wanted} phases: "
                "which of them form the course is ambiguous; check the course's plans with rtcheck check --sum")


def _course_order(linked: LinkedSet) -> tuple[str, str, str, str]:
    plan = linked.plan
    return (plan.plan_date, plan.plan_time, plan.plan_label, plan.sop_instance_uid)


def group_courses(sets: Iterable[LinkedSet]) -> list[CourseGroup]:
    """Group the plan sets ``sets`` into courses: one group per patient ID + Frame of Reference UID + referenced
    RT Structure Set UID (the keys a plan sum needs to be one course, :mod:`rtcheck.dicom.plansum`).  A set that
    does not link (``error``), or whose plan lacks one of the keys, is a group of its own, with the set's error
    or the key it lacks as ``error``.  Groups are in the order their first plan came."""
    groups: dict[tuple[str, str, str], list[LinkedSet]] = {}
    order: list[CourseGroup | tuple[str, str, str]] = []
    for linked in sets:
        plan = linked.plan
        lacking = [what for what, value in (("a Patient ID", plan.patient_id), ("a Frame of Reference UID", plan.frame_of_reference_uid),
                                             ("exactly one RT Structure Set", plan.structure_set_uid)) if not value]
        if linked.error or lacking:
            reason = linked.error or f"{plan.path}: {plan.plan_description} lacks {' and '.join(lacking)}: it cannot be grouped into a course"
            order.append(CourseGroup((linked,), reason))
            continue
        key = (plan.patient_id, plan.frame_of_reference_uid, plan.structure_set_uid)
        if key not in groups:
            groups[key] = []
            order.append(key)
        groups[key].append(linked)
    return [item if isinstance(item, CourseGroup) else CourseGroup(tuple(sorted(groups[item], key=_course_order))) for item in order]


def plans_concerned(instance: InputObject, objects: Iterable[InputObject]) -> list[str]:
    """The UIDs of the plans whose set ``instance`` belongs to (the plans among ``objects`` for a structure set,
    whether present or not for a dose; for an image, the plans whose structure set references its series, else,
    when no structure set among ``objects`` does, the plans of its patient: see :func:`link`)."""
    rt_objects = [o for o in objects if isinstance(o, ObjectReferences)]
    plans = [o for o in rt_objects if o.kind in PLAN_KINDS]
    if isinstance(instance, ImageSlice):
        drawing = {o.sop_instance_uid for o in rt_objects
                   if o.kind is RTObjectKind.STRUCTURE_SET and instance.series_uid in o.image_series_uids}
        if drawing:
            return [p.sop_instance_uid for p in plans if drawing & set(p.structure_set_uids)]
        return [p.sop_instance_uid for p in plans if p.patient_id == instance.patient_id]
    if instance.kind in PLAN_KINDS:
        return [instance.sop_instance_uid]
    if instance.kind is RTObjectKind.DOSE:
        return list(instance.plan_uids)
    return [p.sop_instance_uid for p in plans if instance.sop_instance_uid in p.structure_set_uids]


# ---------------------------------------------------------------------------------------------- completeness


class Lacking(str, enum.Enum):
    """What a linked set can lack."""

    LINK = "link"  # the set as linked cannot be checked (LinkedSet.error)
    STRUCTURE_SET_REFERENCE = "structure set reference"  # the plan references no structure set
    STRUCTURE_SET = "structure set"  # the referenced structure set is not among the inputs
    DOSE = "dose"  # no RT Dose references the plan
    BEAM_DOSES = "beam doses"  # BEAM doses do not cover every beam of the plan
    DOUBLED_BEAM_DOSE = "doubled beam dose"  # two BEAM doses are of one beam: summing them would count it twice


@dataclass(frozen=True)
class Gap:
    """One thing a linked set lacks.

    ``awaited`` names what may still arrive (the listener waits for it); ""
    when no further file can fill the gap, so that the check reports it at once.
    ``reason`` is the check's one-line error about ``path``, raised as ``error``.
    """

    lacking: Lacking
    path: Path
    reason: str
    awaited: str = ""
    error: type[InputError] = MissingObjectError

    def raise_error(self, more: str = "") -> NoReturn:
        raise self.error(self.path, self.reason + more)


def _is_beam_dose(dose: ObjectReferences) -> bool:
    summation = DoseSummation.of(dose.summation_type)
    return summation is not None and summation.scope is DoseScope.BEAMS


def beam_dose_gap(plan: ObjectReferences, doses: Iterable[ObjectReferences]) -> Gap | None:
    """The BEAM-dose coverage rule: beam doses (BEAM, BEAM_SESSION) of a plan must cover every treatment beam
    of the plan (setup and imaging beams carry no dose), told by their Referenced Beam Sequence, else (no beam
    referenced) by their number."""
    doses, beams = list(doses), plan.treatment_beams
    if not doses or not beams:
        return None
    covered = sorted({b for d in doses for b in d.referenced_beams})
    description = plan.plan_description
    if covered:
        absent = sorted(set(beams) - set(covered))
        if not absent:
            return None
        return Gap(
            Lacking.BEAM_DOSES, doses[0].path, f"BEAM doses cover beams {covered} of {description}; treatment beams {absent} have no dose",
            awaited=f"BEAM doses of beams {', '.join(map(str, absent))}",
        )
    if len(doses) == len(beams):
        return None
    # Fewer doses than beams: the others may still come; more: no further file can make them fit.
    awaited = f"BEAM doses ({len(doses)} of {len(beams)} beams)" if len(doses) < len(beams) else ""
    return Gap(Lacking.BEAM_DOSES, doses[0].path, f"{len(doses)} BEAM doses for {description} which has {len(beams)} treatment beams", awaited)


def _beam_dose_gap(linked: LinkedSet) -> Gap | None:
    """The coverage rule when beam doses are all the plan's doses (a whole-plan or fraction-group dose makes
    the course by itself: see rtcheck.dicom.summation)."""
    if not linked.doses or not all(_is_beam_dose(d) for d in linked.doses):
        return None
    return beam_dose_gap(linked.plan, linked.doses)


def _doubled_beam_gap(linked: LinkedSet) -> Gap | None:
    """Two BEAM doses of one beam (by their Referenced Beam Sequence): summed, that beam would count twice,
    and which of them is right cannot be told; no further file can mend it."""
    seen: dict[int, ObjectReferences] = {}
    for dose in linked.doses:
        if dose.summation_type != "BEAM":
            continue
        for beam in dict.fromkeys(dose.referenced_beams):
            if beam in seen:
                return Gap(
                    Lacking.DOUBLED_BEAM_DOSE, dose.path,
                    f"RT Dose {dose.sop_instance_uid} and {seen[beam].path} are both BEAM doses of beam {beam} of "
                    f"{linked.plan.plan_description}; pass only one", error=LinkError,
                )
            seen[beam] = dose
    return None


def gaps(linked: LinkedSet) -> list[Gap]:
    """What ``linked`` lacks to be checked, in the order a check reports it: the first gap is its error."""
    plan = linked.plan
    found: list[Gap] = []
    if linked.error:
        found.append(Gap(Lacking.LINK, plan.path, linked.error, error=LinkError))
    if not plan.structure_set_uids:
        found.append(Gap(Lacking.STRUCTURE_SET_REFERENCE, plan.path, "RT Plan has no ReferencedStructureSetSequence", error=LinkError))
    elif linked.structure_set is None and not linked.error:
        referenced = list(dict.fromkeys(plan.structure_set_uids))
        if len(referenced) == 1:
            reason = f"plan references RT Structure Set {referenced[0]}, which is not among the inputs"
        else:
            reason = f"plan references RT Structure Sets {', '.join(referenced)}, none of which is among the inputs"
        found.append(Gap(Lacking.STRUCTURE_SET, plan.path, reason, awaited=f"RT Structure Set {' or '.join(referenced)}"))
    if not linked.doses:
        found.append(Gap(Lacking.DOSE, plan.path, f"no RT Dose references {plan.plan_description}", awaited="an RT Dose referencing the plan"))
    beam_gap = _beam_dose_gap(linked)
    if beam_gap is not None:
        found.append(beam_gap)
    doubled = _doubled_beam_gap(linked)
    if doubled is not None:
        found.append(doubled)
    return found
