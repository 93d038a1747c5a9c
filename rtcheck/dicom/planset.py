"""A linked plan set -> the model: plan, structure set and course dose (its rules: rtcheck.dicom.summation).

Which files form a set is decided by the one linker, :mod:`rtcheck.dicom.references`
(UID references); here the set's files are read, what it lacks is raised as an
error, its doses are combined and the links are confirmed by the Frame of Reference.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset

from rtcheck.dicom.beams import parse_beams
from rtcheck.dicom.dose import DoseGrid
from rtcheck.dicom.facts import PlanSetFacts
from rtcheck.dicom.identity import ImageSlice, group_series, identity_of
from rtcheck.dicom.image_slices import slice_positions
from rtcheck.dicom.io import DicomObject, Inventory, file_meta_notes, read_dataset, scan
from rtcheck.dicom.plan import Plan, parse_plan
from rtcheck.dicom.references import (
    InputObject, Lacking, LinkedSet, Linking, ObjectReferences, describe, describe_input, drawn_images, gaps, link,
)
from rtcheck.dicom.sop import RTObjectKind
from rtcheck.dicom.structures import StructureSet, parse_structure_set
from rtcheck.dicom.summation import DoseComparison, course_dose
from rtcheck.errors import LinkError, MissingObjectError, SelectionError


@dataclass
class PlanSet:
    """What one check needs: the plan (None for a DVH-only set), its structure set and total dose;
    ``facts`` what the integrity checks read besides (identities, beams, images)."""

    plan: Plan | None
    structure_set: StructureSet
    dose: DoseGrid
    notes: list[str] = field(default_factory=list)
    # Doses given besides the one used (e.g. BEAM doses besides the PLAN dose), compared with it.
    dose_comparisons: list[DoseComparison] = field(default_factory=list)
    # The CT's slice positions (z, mm) in the structure set's frame, when the CT is among the inputs.
    slice_positions_mm: np.ndarray | None = None
    # What the integrity checks read besides (identities, beams, images).
    facts: PlanSetFacts = field(default_factory=PlanSetFacts)


def _check_frames(plan: Plan | None, structure_set: StructureSet, dose: DoseGrid) -> list[str]:
    notes = []
    if plan is not None and plan.frame_of_reference_uid and plan.frame_of_reference_uid != dose.frame_of_reference_uid:
        raise LinkError(
            dose.paths[0],
            f"Frame of Reference {dose.frame_of_reference_uid} differs from the plan's ({plan.path}: {plan.frame_of_reference_uid})",
        )
    if structure_set.frame_of_reference_uids and dose.frame_of_reference_uid not in structure_set.frame_of_reference_uids:
        raise LinkError(
            structure_set.path,
            f"Frame of Reference {', '.join(sorted(structure_set.frame_of_reference_uids))} differs from the dose's "
            f"({dose.paths[0]}: {dose.frame_of_reference_uid})",
        )
    for roi in structure_set.rois:
        if roi.frame_of_reference_uid and roi.frame_of_reference_uid != dose.frame_of_reference_uid and roi.is_volume:
            roi.unusable_reason = f"ROI is in Frame of Reference {roi.frame_of_reference_uid}, not the dose's"
            notes.append(f"ROI {roi.name!r} is in another Frame of Reference and is not evaluated")
    return notes


def _name_targets(plan: Plan, structure_set: StructureSet) -> None:
    rois = {roi.number: roi for roi in structure_set.rois}
    for target in plan.targets:
        if target.roi_number is None:
            continue
        roi = rois.get(target.roi_number)
        if roi is None:
            plan.notes.append(f"dose reference {target.dose_reference_number} references ROI {target.roi_number}, absent from the structure set")
        else:
            target.name = roi.name


@dataclass
class LoadedInputs:
    """The inputs read (headers and contours; doses are loaded per plan set), linked into plan sets once,
    with each linked plan parsed."""

    inventory: Inventory
    linking: Linking
    plans: dict[str, Plan] = field(default_factory=dict)  # by SOP Instance UID
    roots: tuple[str, ...] = ()  # the files and folders given, named by errors about the inputs as a whole
    images: list[ImageSlice] = field(default_factory=list)  # every image described among the inputs

    @property
    def skipped(self) -> list[str]:
        return self.inventory.skipped

    def dataset(self, obj: ObjectReferences) -> Dataset:
        return next(o.dataset for o in self.inventory.objects if o.path == obj.path)


def _parsed(inventory: Inventory, linking: Linking) -> LoadedInputs:
    inputs = LoadedInputs(inventory, linking)
    for linked in linking.sets:
        plan = linked.plan
        inputs.plans[plan.sop_instance_uid] = parse_plan(inputs.dataset(plan), plan.path, plan.kind)
    return inputs


def load_inputs(paths: list[str | Path]) -> LoadedInputs:
    """Scan files and folders, link the RT objects and images found into plan sets and parse every linked RT Plan."""
    inventory = scan(paths)
    images = [i for i in (describe_input(ds, path) for path, ds in inventory.image_headers) if isinstance(i, ImageSlice)]
    inventory.image_headers.clear()  # described: their headers are not needed any more
    described: list[InputObject] = [d for d in (describe(o.dataset, o.path) for o in inventory.objects) if d is not None]
    inputs = _parsed(inventory, link([*described, *images]))
    inputs.roots = tuple(str(p) for p in paths)
    inputs.images = images
    inventory.skipped.extend(f"{series}: referenced by no RT Structure Set among the inputs; not used"
                             for series in inputs.linking.unreferenced_series())
    return inputs


def load_linked(linked: LinkedSet, *more: LinkedSet) -> LoadedInputs:
    """Read the files of a set linked already (by batch discovery or the listener's catalogue), or of several
    (the plans of one course; a file they share read once), without linking again; a file that cannot be read
    raises as ``rtcheck check`` does.  The sets' images were described when they were linked: they are not read."""
    objects = {o.path: o for s in (linked, *more) for o in s.objects}
    inventory = Inventory([DicomObject(o.kind, o.path, read_dataset(o.path, stop_before_pixels=True)) for o in objects.values()])
    return _parsed(inventory, Linking(sets=[linked, *more]))


def _inputs_named(inputs: LoadedInputs) -> str | None:
    """The inputs given, for an error about them as a whole (every error names its files)."""
    return ", ".join(inputs.roots) or None


def _skipped_hint(inputs: LoadedInputs) -> str:
    if not inputs.skipped:
        return ""
    more = f" and {len(inputs.skipped) - 1} more" if len(inputs.skipped) > 1 else ""
    return f" (skipped: {inputs.skipped[0]}{more})"


def select_sets(inputs: LoadedInputs, selector: str | None) -> list[LinkedSet]:
    """The sets of all plans, or of those whose SOP Instance UID or label equals ``selector``."""
    sets = inputs.linking.sets
    if not sets:
        raise MissingObjectError(_inputs_named(inputs), "no RT Plan among the inputs" + _skipped_hint(inputs))
    if selector is None:
        return sets
    chosen = [s for s in sets if selector in (s.plan.sop_instance_uid, s.plan.plan_label)]
    if not chosen:
        known = ", ".join(f"{s.plan.plan_label or '(no label)'} ({s.plan.sop_instance_uid})" for s in sets)
        raise SelectionError(f"--plan {selector!r} matches no plan; plans found: {known}")
    return chosen


def _same_patient_and_frame(plan: ObjectReferences, structure_set: ObjectReferences) -> bool:
    return structure_set.patient_id == plan.patient_id and structure_set.frame_of_reference_uid == plan.frame_of_reference_uid


def _other_structure_sets_hint(linked: LinkedSet, inputs: LoadedInputs) -> str:
    others = [s for s in inputs.linking.unreferenced_structure_sets if _same_patient_and_frame(linked.plan, s)]
    if not others:
        return ""
    listing = ", ".join(str(s.path) for s in others)
    return (f"; RT Structure Set {listing} of the same patient and Frame of Reference is among the inputs but is not the one referenced: "
            f"pass --structure-set {others[0].path} to check the plan with it")


def with_structure_set(linked: LinkedSet, inputs: LoadedInputs, path: str | Path) -> LinkedSet:
    """``linked`` checked with the RT Structure Set in ``path`` instead of the one its plan references (``--structure-set``):
    it must be of the plan's patient and Frame of Reference; a note in the result says so."""
    path = Path(path)
    known = next((o for o in inputs.inventory.objects if o.path.resolve() == path.resolve()), None)
    if known is None:
        known = DicomObject(RTObjectKind.STRUCTURE_SET, path, read_dataset(path, stop_before_pixels=True))
        inputs.inventory.objects.append(known)
    given = describe(known.dataset, path)
    if given is None or given.kind is not RTObjectKind.STRUCTURE_SET:
        raise SelectionError(f"--structure-set {path}: not an RT Structure Set")
    plan = linked.plan
    if not _same_patient_and_frame(plan, given):
        raise SelectionError(
            f"--structure-set {path}: patient {given.patient_id!r} / Frame of Reference {given.frame_of_reference_uid} differ from "
            f"{plan.plan_description}'s ({plan.patient_id!r} / {plan.frame_of_reference_uid})"
        )
    referenced = ", ".join(plan.structure_set_uids) or "none"
    note = (f"{path}: RT Structure Set {given.sop_instance_uid} used as asked (--structure-set) in place of the one the plan references "
            f"({referenced}); same patient and Frame of Reference")
    images = drawn_images(given, inputs.images)
    others = tuple(i for i in linked.other_images if i not in images)
    return replace(linked, structure_set=given, plan=replace(plan, structure_set_uids=(given.sop_instance_uid,)), notes=(*linked.notes, note),
                   images=images, other_images=others)


def build_plan_set(linked: LinkedSet, inputs: LoadedInputs) -> PlanSet:
    """The model of one linked set: what it lacks raised as an error (references.gaps), the dose loaded and
    the Frame of Reference checked."""
    plan = inputs.plans[linked.plan.sop_instance_uid]
    for gap in gaps(linked):
        hint = ""
        if gap.lacking is Lacking.STRUCTURE_SET:
            hint = _other_structure_sets_hint(linked, inputs)
        if gap.lacking is Lacking.DOSE:
            dangling = [f"{d.path} references {', '.join(d.plan_uids) or 'no plan'}" for d in inputs.linking.orphan_doses]
            hint = (f" (RT Doses whose plan is absent: {'; '.join(dangling)})" if dangling else "") + _skipped_hint(inputs)
        gap.raise_error(hint)
    assert linked.structure_set is not None  # gaps() says when it is absent
    structure_set = parse_structure_set(inputs.dataset(linked.structure_set), linked.structure_set.path)
    course = course_dose(plan, list(linked.doses), linked.plan)
    read_notes = [n for o in (linked.plan, linked.structure_set) for n in file_meta_notes(inputs.dataset(o), o.path)]
    notes = read_notes + course.notes + _check_frames(plan, structure_set, course.grid)
    _name_targets(plan, structure_set)
    plan_ds = inputs.dataset(linked.plan)
    structure_set_identity = identity_of(inputs.dataset(linked.structure_set), linked.structure_set.path, RTObjectKind.STRUCTURE_SET.value)
    drawn_on = group_series(list(linked.images))
    positions, slice_note = slice_positions(drawn_on, structure_set_identity, course.grid.frame_of_reference_uid)
    facts = PlanSetFacts(
        plan=identity_of(plan_ds, plan.path, plan.kind.value),
        structure_set=structure_set_identity,
        doses=[f.identity for f in course.grid.files if f.identity is not None],
        beams=parse_beams(plan_ds, plan.kind),
        images=drawn_on + group_series(list(linked.other_images)),
    )
    return PlanSet(plan=plan, structure_set=structure_set, dose=course.grid, notes=notes + ([slice_note] if slice_note else []),
                   dose_comparisons=course.comparisons, slice_positions_mm=positions, facts=facts)


def build_dvh_set(inputs: LoadedInputs, plan_selector: str | None = None) -> PlanSet:
    """The set for DVH statistics: through a plan when there is one, else one structure set and its dose(s)."""
    if inputs.linking.sets:
        sets = select_sets(inputs, plan_selector)
        if len(sets) > 1:
            known = ", ".join(f"{s.plan.plan_label or '(no label)'} ({s.plan.sop_instance_uid})" for s in sets)
            raise SelectionError(f"several plans found ({known}); choose one with --plan")
        return build_plan_set(sets[0], inputs)
    structure_sets = inputs.inventory.of_kind(RTObjectKind.STRUCTURE_SET)
    doses = [d for d in (describe(o.dataset, o.path) for o in inputs.inventory.of_kind(RTObjectKind.DOSE)) if d is not None]
    if len(structure_sets) != 1:
        if not structure_sets:
            raise MissingObjectError(_inputs_named(inputs), "no RT Structure Set among the inputs" + _skipped_hint(inputs))
        listing = ", ".join(str(s.path) for s in structure_sets)
        raise SelectionError(f"several RT Structure Sets and no RT Plan to choose between them ({listing}); pass one")
    if not doses:
        raise MissingObjectError(_inputs_named(inputs), "no RT Dose among the inputs" + _skipped_hint(inputs))
    chosen = structure_sets[0]
    structure_set = parse_structure_set(chosen.dataset, chosen.path)
    course = course_dose(None, doses)
    notes = course.notes + _check_frames(None, structure_set, course.grid)
    drawn_on = group_series(list(drawn_images(describe(chosen.dataset, chosen.path), inputs.images)))
    identity = identity_of(chosen.dataset, chosen.path, RTObjectKind.STRUCTURE_SET.value)
    positions, slice_note = slice_positions(drawn_on, identity, course.grid.frame_of_reference_uid)
    return PlanSet(plan=None, structure_set=structure_set, dose=course.grid, notes=notes + ([slice_note] if slice_note else []),
                   dose_comparisons=course.comparisons, slice_positions_mm=positions)
