"""What the listener has stored, and when a plan's set is complete.

A plan set is complete when the RT Plan, the RT Structure Set its
``ReferencedStructureSetSequence`` names and at least one RT Dose referencing
the plan are stored; when the doses are per beam (DoseSummationType ``BEAM``),
they must cover every beam of the plan (by ``ReferencedBeamSequence``, else by
count).  Objects are told apart by SOP Class UID and linked by UID, as
``rtcheck check`` does; file and folder names play no part.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

from pydicom.dataset import Dataset

from rtcheck.dicom.sop import PLAN_KINDS, SOP_CLASS_KINDS, RTObjectKind


@dataclass(frozen=True)
class StoredInstance:
    """The links of one stored instance (read from its header) and its file."""

    sop_instance_uid: str
    sop_class_uid: str
    path: Path
    kind: RTObjectKind | None  # None: stored but not checked (CT...)
    structure_set_uid: str = ""  # plans: the referenced RT Structure Set
    beam_numbers: tuple[int, ...] = ()  # plans
    plan_uids: tuple[str, ...] = ()  # doses: the referenced RT Plans
    summation_type: str = ""  # doses
    beams: tuple[int, ...] = ()  # doses: the referenced beams


def _ints(values) -> tuple[int, ...]:
    found = []
    for value in values:
        try:
            found.append(int(value))
        except (TypeError, ValueError):
            continue
    return tuple(found)


def describe_instance(ds: Dataset, path: Path) -> StoredInstance:
    """Read the links of a received or stored data set (header attributes only)."""
    sop_class = str(ds.get("SOPClassUID", ""))
    kind = SOP_CLASS_KINDS.get(sop_class)
    uid = str(ds.get("SOPInstanceUID", ""))
    if kind in PLAN_KINDS:
        refs = ds.get("ReferencedStructureSetSequence") or []
        beams = ds.get("BeamSequence") or ds.get("IonBeamSequence") or []
        return StoredInstance(
            uid, sop_class, path, kind,
            structure_set_uid=str(refs[0].get("ReferencedSOPInstanceUID", "")) if refs else "",
            beam_numbers=_ints(b.get("BeamNumber") for b in beams),
        )
    if kind is RTObjectKind.DOSE:
        plans, beams = [], []
        for ref in ds.get("ReferencedRTPlanSequence") or []:
            plans.append(str(ref.get("ReferencedSOPInstanceUID", "")))
            for group in ref.get("ReferencedFractionGroupSequence") or []:
                beams.extend(b.get("ReferencedBeamNumber") for b in group.get("ReferencedBeamSequence") or [])
        return StoredInstance(
            uid, sop_class, path, kind,
            plan_uids=tuple(plans), summation_type=str(ds.get("DoseSummationType", "")).upper(), beams=_ints(beams),
        )
    return StoredInstance(uid, sop_class, path, kind)


@dataclass
class PlanFiles:
    """The files of one plan's set, or why it is not complete yet (``missing``)."""

    plan: StoredInstance
    structure_set: StoredInstance | None = None
    doses: list[StoredInstance] = field(default_factory=list)
    missing: str = ""

    @property
    def paths(self) -> list[Path]:
        found = [self.plan.path] + ([self.structure_set.path] if self.structure_set else [])
        return found + [d.path for d in self.doses]


class Catalog:
    """The stored RT objects by SOP Instance UID (thread-safe; the newest store of a UID wins)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_uid: dict[str, StoredInstance] = {}

    def add(self, instance: StoredInstance) -> list[str]:
        """Record an instance; returns the UIDs of the plans whose set it belongs to."""
        if instance.kind is None:
            return []
        with self._lock:
            self._by_uid[instance.sop_instance_uid] = instance
            if instance.kind in PLAN_KINDS:
                return [instance.sop_instance_uid]
            if instance.kind is RTObjectKind.DOSE:
                return [u for u in instance.plan_uids if u]
            return [
                i.sop_instance_uid for i in self._by_uid.values()
                if i.kind in PLAN_KINDS and i.structure_set_uid == instance.sop_instance_uid
            ]

    def plans(self) -> list[StoredInstance]:
        with self._lock:
            return [i for i in self._by_uid.values() if i.kind in PLAN_KINDS]

    def plan_files(self, plan_uid: str) -> PlanFiles | None:
        """The set of a stored plan (None if the plan itself is not stored), ``missing`` saying what it lacks."""
        with self._lock:
            plan = self._by_uid.get(plan_uid)
            if plan is None or plan.kind not in PLAN_KINDS:
                return None
            files = PlanFiles(plan)
            structure_set = self._by_uid.get(plan.structure_set_uid) if plan.structure_set_uid else None
            if structure_set is not None and structure_set.kind is RTObjectKind.STRUCTURE_SET:
                files.structure_set = structure_set
            files.doses = sorted(
                (i for i in self._by_uid.values() if i.kind is RTObjectKind.DOSE and plan_uid in i.plan_uids),
                key=lambda i: i.sop_instance_uid,
            )
        files.missing = _missing(files)
        return files


def _missing(files: PlanFiles) -> str:
    plan = files.plan
    missing = []
    if not plan.structure_set_uid:
        # The check will refuse it with a clear message; there is nothing to wait for.
        pass
    elif files.structure_set is None:
        missing.append(f"RT Structure Set {plan.structure_set_uid}")
    if not files.doses:
        missing.append("an RT Dose referencing the plan")
    elif all(d.summation_type == "BEAM" for d in files.doses) and plan.beam_numbers:
        covered = {b for d in files.doses for b in d.beams}
        if covered:
            absent = sorted(set(plan.beam_numbers) - covered)
            if absent:
                missing.append(f"BEAM doses of beams {', '.join(map(str, absent))}")
        elif len(files.doses) < len(plan.beam_numbers):
            missing.append(f"BEAM doses ({len(files.doses)} of {len(plan.beam_numbers)} beams)")
    return "; ".join(missing)
