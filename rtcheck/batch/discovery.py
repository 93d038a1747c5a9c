"""Finding the plan sets in folders of exports, by UID references rather than by folder.

A plan set is an RT Plan, the RT Structure Set it references
(``ReferencedStructureSetSequence``) and every RT Dose that references it
(``ReferencedRTPlanSequence``), wherever under the roots those files lie.  Only
the few header elements the grouping needs are read here (a full read of a
structure set's contours costs far more and is left to the check itself).
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from rtcheck.dicom.io import _check_complete
from rtcheck.dicom.sop import PLAN_KINDS, SOP_CLASS_KINDS, RTObjectKind
from rtcheck.errors import InputError, TruncatedFileError

_HEADER_TAGS = [
    "SOPClassUID",
    "SOPInstanceUID",
    "PatientID",
    "RTPlanLabel",
    "ReferencedStructureSetSequence",
    "ReferencedRTPlanSequence",
]


@dataclass(frozen=True)
class Header:
    """What grouping needs of one RT object: its kind, UID, patient and the UIDs it references."""

    path: str
    kind: RTObjectKind
    sop_instance_uid: str
    patient_id: str
    plan_label: str
    references: tuple[str, ...]  # a plan: structure set UIDs; a dose: plan UIDs


@dataclass(frozen=True)
class PlanSetFiles:
    """The files of one plan set, or (``error`` set) files that cannot form a checkable set.

    ``files`` lists the plan first, then its structure set and doses; ``key``
    identifies the set in a batch (the plan's SOP Instance UID, else a path).
    """

    key: str
    patient_id: str
    plan_label: str
    plan_uid: str
    files: tuple[str, ...]
    error: str = ""
    notes: tuple[str, ...] = ()

    @property
    def plan_file(self) -> str:
        """The RT Plan's file; in a set without a plan (``error``), the first file concerned."""
        return self.files[0] if self.files else ""


@dataclass
class Discovery:
    """What a walk of the roots found.

    ``sets`` are sorted by patient ID, plan label and plan UID; ``unassigned``
    says which RT objects belong to no plan without preventing a check (a
    structure set no plan references); ``skipped`` lists files that are not
    DICOM.  Doses whose plan is absent and damaged RT files are sets with an
    ``error``: they stand for a plan that cannot be checked.
    """

    sets: list[PlanSetFiles] = field(default_factory=list)
    unassigned: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    files_read: int = 0


class _Damaged(InputError):
    """A file that looks like DICOM but cannot be read to the elements grouping needs."""


def _iter_files(roots: list[Path]) -> list[Path]:
    seen: set[Path] = set()
    found: list[Path] = []
    for root in roots:
        if root.is_file():
            candidates = [root]
        else:
            candidates = []
            for dirpath, dirnames, filenames in os.walk(root):
                dirnames.sort()
                candidates.extend(Path(dirpath) / name for name in sorted(filenames))
        for path in candidates:
            resolved = path.resolve()
            if resolved not in seen:
                seen.add(resolved)
                found.append(path)
    return found


def _read(path: Path) -> Dataset:
    """The grouping elements of a DICOM file; InputError if it is not DICOM, _Damaged if it breaks off."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # oddities are reported by the check itself, on one line
        try:
            with open(path, "rb") as fp:
                try:
                    return pydicom.dcmread(fp, stop_before_pixels=True, specific_tags=_HEADER_TAGS)
                except InvalidDicomError:
                    fp.seek(0)
                    ds = pydicom.dcmread(fp, force=True, stop_before_pixels=True, specific_tags=_HEADER_TAGS)
            if "SOPClassUID" not in ds:
                raise InputError(path, "not a DICOM file")
            return ds
        except InputError:
            raise
        except OSError as exc:
            raise InputError(path, f"cannot be read ({exc.strerror or exc})") from None
        except EOFError as exc:
            raise _Damaged(path, f"truncated DICOM file ({exc})") from None
        except Exception as exc:  # pydicom raises many types on garbage bytes
            if _has_dicom_prefix(path):
                raise _Damaged(path, f"damaged DICOM file ({type(exc).__name__}: {exc})") from None
            raise InputError(path, f"not a readable DICOM file ({type(exc).__name__})") from None


def read_header(path: Path) -> Header | None:
    """The grouping header of an RT object; None for other DICOM (CT...).

    Raises ``InputError`` for a file that is not DICOM and ``_Damaged`` for an
    RT object (by its file meta) that ends inside the elements read.
    """
    ds = _read(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        meta_class = str(ds.file_meta.get("MediaStorageSOPClassUID", "")) if hasattr(ds, "file_meta") else ""
        try:
            # A file cut inside an element leaves a short value (a wrong UID) and no error from pydicom.
            _check_complete(ds, path)
        except TruncatedFileError as exc:
            class_uid = exc.sop_class_uid or meta_class
            if class_uid and class_uid not in SOP_CLASS_KINDS:
                return None  # a damaged CT or other object rtcheck does not use
            raise _Damaged(path, exc.reason) from None
        class_uid = str(ds.get("SOPClassUID", ""))
        uid = str(ds.get("SOPInstanceUID", ""))
    kind = SOP_CLASS_KINDS.get(class_uid)
    if kind is None:
        if not class_uid and (not meta_class or meta_class in SOP_CLASS_KINDS or _ends_in_file_meta(ds, path)):
            raise _Damaged(path, "DICOM file without a SOP Class UID (truncated?)")
        return None  # CT, DICOMDIR and other objects rtcheck does not use
    if not uid:
        raise _Damaged(path, f"{kind.value} without a SOP Instance UID (truncated?)")
    plan_refs = ds.get("ReferencedStructureSetSequence", []) if kind in PLAN_KINDS else []
    dose_refs = ds.get("ReferencedRTPlanSequence", []) if kind is RTObjectKind.DOSE else []
    references = [str(item.get("ReferencedSOPInstanceUID", "")) for item in [*plan_refs, *dose_refs]]
    return Header(
        path=str(path),
        kind=kind,
        sop_instance_uid=uid,
        patient_id=str(ds.get("PatientID", "")),
        plan_label=str(ds.get("RTPlanLabel", "")),
        references=tuple(r for r in references if r),
    )


def _ends_in_file_meta(ds: Dataset, path: Path) -> bool:
    """The file stops before the end of the file meta group its group length announces."""
    length = ds.file_meta.get("FileMetaInformationGroupLength") if hasattr(ds, "file_meta") else None
    return length is not None and os.path.getsize(path) <= 132 + 12 + int(length)


def _has_dicom_prefix(path: Path) -> bool:
    with open(path, "rb") as handle:
        return handle.read(132)[128:] == b"DICM"


def _digest(path: str) -> str:
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


def _one_of(copies: list[Header], notes: list[str], errors: list[str]) -> Header:
    """One header for a UID met in several files: the first when all are byte-identical (noted), else an error."""
    first = copies[0]
    if len(copies) > 1:
        paths = ", ".join(h.path for h in copies)
        if len({_digest(h.path) for h in copies}) > 1:
            errors.append(f"{first.kind.value} {first.sop_instance_uid} is in several files that differ ({paths}); keep one")
        else:
            notes.append(f"{first.kind.value} {first.sop_instance_uid} is in {len(copies)} identical files ({paths}); {first.path} was used")
    return first


def group(headers: list[Header]) -> tuple[list[PlanSetFiles], list[str]]:
    """Plan sets from headers (by UID references), and notes on the structure sets no plan references."""
    by_uid: dict[tuple[RTObjectKind, str], list[Header]] = defaultdict(list)
    for header in headers:
        by_uid[(header.kind, header.sop_instance_uid)].append(header)
    plans = [copies for (kind, _), copies in by_uid.items() if kind in PLAN_KINDS]
    doses = [copies for (kind, _), copies in by_uid.items() if kind is RTObjectKind.DOSE]
    doses_of: dict[str, list[list[Header]]] = defaultdict(list)  # plan UID -> the doses referencing it
    for dose_copies in doses:
        for plan_uid in dict.fromkeys(dose_copies[0].references):
            doses_of[plan_uid].append(dose_copies)
    used_structure_sets: set[str] = set()
    used_doses: set[str] = set()
    sets: list[PlanSetFiles] = []

    for copies in plans:
        notes: list[str] = []
        errors: list[str] = []
        plan = _one_of(copies, notes, errors)
        files = [plan.path]
        for uid in plan.references:
            used_structure_sets.add(uid)
            found = by_uid.get((RTObjectKind.STRUCTURE_SET, uid))
            if found:  # absent: the check says the structure set is missing
                files.append(_one_of(found, notes, errors).path)
        for dose_copies in doses_of.get(plan.sop_instance_uid, []):
            used_doses.add(dose_copies[0].sop_instance_uid)
            files.append(_one_of(dose_copies, notes, errors).path)
        sets.append(
            PlanSetFiles(
                key=plan.sop_instance_uid,
                patient_id=plan.patient_id,
                plan_label=plan.plan_label,
                plan_uid=plan.sop_instance_uid,
                files=tuple(files),
                error="; ".join(errors),
                notes=tuple(notes),
            )
        )

    # Doses whose plan is absent: a plan that was exported incompletely, so a set that cannot be checked.
    orphans: dict[str, list[Header]] = defaultdict(list)
    for dose_copies in doses:
        if dose_copies[0].sop_instance_uid not in used_doses:
            for header in dose_copies:
                orphans[header.references[0] if header.references else ""].append(header)
    for plan_uid, orphan_doses in orphans.items():
        paths = ", ".join(h.path for h in orphan_doses)
        error = (
            f"{paths}: RT Dose references RT Plan {plan_uid}, which is not among the inputs"
            if plan_uid
            else f"{paths}: RT Dose references no RT Plan; a protocol check needs one"
        )
        sets.append(
            PlanSetFiles(
                key=plan_uid or orphan_doses[0].path,
                patient_id=orphan_doses[0].patient_id,
                plan_label="",
                plan_uid=plan_uid,
                files=tuple(h.path for h in orphan_doses),
                error=error,
            )
        )
    unassigned = [
        f"{h.path}: RT Structure Set {h.sop_instance_uid} is referenced by no RT Plan among the inputs; not checked"
        for (kind, uid), copies in by_uid.items()
        if kind is RTObjectKind.STRUCTURE_SET and uid not in used_structure_sets
        for h in copies
    ]
    return sets, unassigned


def sort_key(plan_set: PlanSetFiles) -> tuple[str, str, str, str]:
    return (plan_set.patient_id, plan_set.plan_label, plan_set.plan_uid, plan_set.plan_file)


def discover(roots: list[str | Path]) -> Discovery:
    """Walk ``roots`` (folders, recursively, or files) and group the RT objects found into plan sets.

    Files are opened read-only and only their headers are read.  A root that
    does not exist raises ``InputError``.
    """
    paths = [Path(r) for r in roots]
    for root in paths:
        if not root.exists():
            raise InputError(root, "no such file or directory")
    discovery = Discovery()
    headers: list[Header] = []
    damaged: list[PlanSetFiles] = []
    for path in _iter_files(paths):
        discovery.files_read += 1
        try:
            header = read_header(path)
        except _Damaged as exc:
            # It may be the plan or dose of a set: never skip it silently.
            damaged.append(PlanSetFiles(key=str(path), patient_id="", plan_label="", plan_uid="", files=(str(path),), error=str(exc)))
            continue
        except InputError as exc:
            discovery.skipped.append(f"{path}: skipped, {exc.reason}")
            continue
        if header is not None:
            headers.append(header)
    sets, discovery.unassigned = group(headers)
    discovery.sets = sorted(sets + damaged, key=sort_key)
    return discovery
