"""Finding the plan sets in folders of exports, by UID references rather than by folder.

A plan set is an RT Plan, the RT Structure Set it references
(``ReferencedStructureSetSequence``), every RT Dose that references it
(``ReferencedRTPlanSequence``) and the images of the series the structure set
references (``RTReferencedSeriesSequence``), wherever under the roots those files lie.  Only
the few header elements linking needs are read (a full read of a structure
set's contours costs far more and is left to the check itself); the grouping is
the one linker's, :func:`rtcheck.dicom.references.link`, and each set found is
checked as linked (:func:`rtcheck.api.check_linked_set`), not linked again.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from rtcheck.dicom.references import InputObject, LinkedSet, Linking, group_courses, link, read_references
from rtcheck.dicom.walk import walk_inputs
from rtcheck.errors import DamagedFileError, InputError, UnreadableError


@dataclass(frozen=True)
class PlanSetFiles:
    """The files of one plan set, or (``error`` set) files that cannot form a checkable set.

    ``files`` lists the plan first, then its structure set and doses; ``key``
    identifies the set in a batch (the plan's SOP Instance UID, else a path);
    ``linked`` is the set as the linker made it (None for doses without their
    plan and damaged files).
    """

    key: str
    patient_id: str
    plan_label: str
    plan_uid: str
    files: tuple[str, ...]
    error: str = ""
    notes: tuple[str, ...] = ()
    linked: LinkedSet | None = None
    # ``batch --sum``: the plans of one course (two or more, in phase order), checked as one; ``linked`` is None.
    course: tuple[LinkedSet, ...] = ()

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


def _plan_set_files(linked: LinkedSet) -> PlanSetFiles:
    plan = linked.plan
    return PlanSetFiles(
        key=plan.sop_instance_uid,
        patient_id=plan.patient_id,
        plan_label=plan.plan_label,
        plan_uid=plan.sop_instance_uid,
        files=tuple(str(p) for p in linked.paths),
        error=linked.error,
        notes=linked.notes,
        linked=linked,
    )


def _orphan_sets(linking: Linking) -> list[PlanSetFiles]:
    """Doses whose plan is absent: a plan that was exported incompletely, so a set that cannot be checked."""
    sets = []
    for plan_uid, doses in linking.orphans_by_plan().items():
        paths = ", ".join(str(d.path) for d in doses)
        error = (
            f"{paths}: RT Dose references RT Plan {plan_uid}, which is not among the inputs"
            if plan_uid
            else f"{paths}: RT Dose references no RT Plan; a protocol check needs one"
        )
        sets.append(
            PlanSetFiles(
                key=plan_uid or str(doses[0].path),
                patient_id=doses[0].patient_id,
                plan_label="",
                plan_uid=plan_uid,
                files=tuple(str(d.path) for d in doses),
                error=error,
            )
        )
    return sets


def _course_sets(linking: Linking, phases: frozenset[int], arm: str) -> list[PlanSetFiles]:
    """``batch --sum``: the plans grouped into courses (:func:`rtcheck.dicom.references.group_courses`): a plan alone
    is checked alone; a group of as many plans as the arm has phases (``phases``: the phase counts of the arm, or of
    any arm with ``--arm auto``) is one course; a group of another size is an error row: which plans form the
    course is ambiguous."""
    sets = []
    for group in group_courses(linking.sets):
        if group.error or len(group.sets) == 1:
            alone = _plan_set_files(group.sets[0])
            sets.append(dataclasses.replace(alone, error=group.error) if group.error else alone)
            continue
        plans = [s.plan for s in group.sets]
        first = plans[0]
        files = tuple(dict.fromkeys(str(p) for s in group.sets for p in s.paths))
        error = group.ambiguity(phases, arm)
        sets.append(PlanSetFiles(
            key=" + ".join(p.sop_instance_uid for p in plans),
            patient_id=first.patient_id,
            plan_label=" + ".join(p.plan_label or "(no label)" for p in plans),
            plan_uid=" + ".join(p.sop_instance_uid for p in plans),
            files=files,
            error=error,
            notes=(f"--sum: {len(plans)} RT Plans of {group.where} checked as one course, in this phase order "
                   f"(RTPlanDate, RTPlanTime, label): {group.description}", *(n for s in group.sets for n in s.notes)),
            course=() if error else group.sets,
        ))
    return sets


def _unusable(path: Path, error: str) -> PlanSetFiles:
    return PlanSetFiles(key=str(path), patient_id="", plan_label="", plan_uid="", files=(str(path),), error=error)


def sort_key(plan_set: PlanSetFiles) -> tuple[str, str, str, str]:
    return (plan_set.patient_id, plan_set.plan_label, plan_set.plan_uid, plan_set.plan_file)


def discover(roots: list[str | Path], *, course_phases: frozenset[int] = frozenset(), arm: str = "") -> Discovery:
    """Walk ``roots`` (folders, recursively, or files) and group the RT objects found into plan sets.

    ``course_phases`` (``batch --sum``): the numbers of phases of arm ``arm``; the plans of one patient, Frame of
    Reference and structure set are then grouped into courses (see :func:`_course_sets`).
    Files are opened read-only and only their headers are read (the one walk,
    :func:`rtcheck.dicom.walk.walk_inputs`).  A root that does not exist raises
    ``InputError``; a folder or file the system refuses to read, or a damaged RT
    file, becomes a set with an ``error``: a plan may lie in it.
    """
    walk = walk_inputs(list(roots))
    discovery = Discovery(skipped=list(walk.notes))
    objects: list[InputObject] = []
    damaged = [_unusable(path, f"{path}: {reason}") for path, reason in walk.unreadable]
    for walked in walk.files:
        path = walked.path
        discovery.files_read += 1
        try:
            described = read_references(path)
        except (DamagedFileError, UnreadableError) as exc:
            # It may be the plan or dose of a set: never skip it silently.
            damaged.append(_unusable(path, str(exc)))
            continue
        except InputError as exc:
            discovery.skipped.append(f"{path}: skipped, {exc.reason}")
            continue
        if described is not None:
            objects.append(described)
    linking = link(objects)
    planned = _course_sets(linking, course_phases, arm) if course_phases else [_plan_set_files(linked) for linked in linking.sets]
    sets = planned + _orphan_sets(linking)
    discovery.unassigned = [
        f"{s.path}: RT Structure Set {s.sop_instance_uid} is referenced by no RT Plan among the inputs; not checked"
        for s in linking.unreferenced_structure_sets
    ] + [f"{series}: referenced by no RT Structure Set among the inputs; not used" for series in linking.unreferenced_series()]
    discovery.sets = sorted(sets + damaged, key=sort_key)
    return discovery
