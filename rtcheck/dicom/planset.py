"""A linked plan set -> the model: plan, structure set and total dose (summed or scaled by PS3.3).

Which files form a set is decided by the one linker, :mod:`rtcheck.dicom.references`
(UID references); here the set's files are read, what it lacks is raised as an
error, its doses are combined and the links are confirmed by the Frame of Reference.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from pydicom.dataset import Dataset

from rtcheck.dicom.beams import parse_beams
from rtcheck.dicom.dose import DoseGrid, load_dose, sum_doses
from rtcheck.dicom.facts import PlanSetFacts
from rtcheck.dicom.identity import group_series, identity_of
from rtcheck.dicom.io import DicomObject, Inventory, read_dataset, scan
from rtcheck.dicom.plan import Plan, parse_plan
from rtcheck.dicom.references import Lacking, LinkedSet, Linking, ObjectReferences, describe, gaps, link
from rtcheck.dicom.sop import RTObjectKind
from rtcheck.dicom.structures import StructureSet, parse_structure_set
from rtcheck.errors import InputError, LinkError, MissingObjectError, SelectionError


@dataclass
class PlanSet:
    """What one check needs: the plan (None for a DVH-only set), its structure set and total dose;
    ``facts`` what the integrity checks read besides (identities, beams, images)."""

    plan: Plan | None
    structure_set: StructureSet
    dose: DoseGrid
    notes: list[str] = field(default_factory=list)
    facts: PlanSetFacts = field(default_factory=PlanSetFacts)


def _plan_description(plan: Plan) -> str:
    return f"plan {plan.label or '(no label)'} ({plan.sop_instance_uid})"


def _total_dose(plan: Plan | None, doses: list[ObjectReferences]) -> tuple[DoseGrid, list[str]]:
    """Load and combine the dose objects of one plan into its total dose (BEAM coverage: references.gaps)."""
    notes: list[str] = []
    by_type = Counter(d.summation_type for d in doses)
    kinds = set(by_type)
    if len(kinds) > 1:
        listing = ", ".join(f"{d.path} ({d.summation_type or '?'})" for d in doses)
        raise LinkError(doses[0].path, f"RT Doses of different summation types for one plan: {listing}; pass the files to use")
    summation = kinds.pop()
    if summation in ("PLAN", "MULTI_PLAN") or summation == "":
        if len(doses) > 1:
            listing = ", ".join(str(d.path) for d in doses)
            raise LinkError(doses[0].path, f"several whole-plan RT Doses for one plan ({listing}); pass the one to use")
        grid = load_dose(doses[0].path)
        if summation == "MULTI_PLAN":
            notes.append(f"{doses[0].path}: DoseSummationType MULTI_PLAN (a sum over several plans)")
        return grid, notes
    if summation == "BEAM":
        total = sum_doses([load_dose(d.path) for d in doses])
        notes.append(f"summed {len(doses)} BEAM doses")
        return total, notes
    if summation == "FRACTION":
        if len(doses) > 1:
            listing = ", ".join(str(d.path) for d in doses)
            raise LinkError(doses[0].path, f"several FRACTION RT Doses for one plan ({listing}); pass the one to use")
        if plan is None:
            raise MissingObjectError(doses[0].path, "FRACTION dose needs its RT Plan to be scaled to the whole course")
        group_number = doses[0].fraction_group
        group = plan.fraction_group(group_number) if group_number is not None else (plan.fraction_groups[0] if len(plan.fraction_groups) == 1 else None)
        if group is None or not group.fractions_planned:
            raise LinkError(doses[0].path, f"FRACTION dose: cannot tell which fraction group of {_plan_description(plan)} it belongs to")
        grid = load_dose(doses[0].path)
        grid.dose_gy *= group.fractions_planned
        grid.summation_type = f"FRACTION x {group.fractions_planned}"
        grid.fraction_scale = group.fractions_planned
        notes.append(f"FRACTION dose scaled by {group.fractions_planned} fractions (fraction group {group.number})")
        return grid, notes
    raise InputError(doses[0].path, f"DoseSummationType {summation} is not supported (PLAN, BEAM or FRACTION)")


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
    # Whether the inputs were scanned (images included) rather than read as a set linked already.
    scanned: bool = False

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
    """Scan files and folders, link the RT objects found into plan sets and parse every linked RT Plan."""
    inventory = scan(paths)
    described = [describe(o.dataset, o.path) for o in inventory.objects]
    inputs = _parsed(inventory, link(d for d in described if d is not None))
    inputs.scanned = True
    return inputs


def load_linked(linked: LinkedSet) -> LoadedInputs:
    """Read the files of a set linked already (by batch discovery or the listener's catalogue), without
    linking again; a file that cannot be read raises as ``rtcheck check`` does."""
    inventory = Inventory([DicomObject(o.kind, o.path, read_dataset(o.path, stop_before_pixels=True)) for o in linked.objects])
    return _parsed(inventory, Linking(sets=[linked]))


def _skipped_hint(inputs: LoadedInputs) -> str:
    if not inputs.skipped:
        return ""
    more = f" and {len(inputs.skipped) - 1} more" if len(inputs.skipped) > 1 else ""
    return f" (skipped: {inputs.skipped[0]}{more})"


def select_sets(inputs: LoadedInputs, selector: str | None) -> list[LinkedSet]:
    """The sets of all plans, or of those whose SOP Instance UID or label equals ``selector``."""
    sets = inputs.linking.sets
    if not sets:
        raise MissingObjectError(None, "no RT Plan among the inputs" + _skipped_hint(inputs))
    if selector is None:
        return sets
    chosen = [s for s in sets if selector in (s.plan.sop_instance_uid, s.plan.plan_label)]
    if not chosen:
        known = ", ".join(f"{s.plan.plan_label or '(no label)'} ({s.plan.sop_instance_uid})" for s in sets)
        raise SelectionError(f"--plan {selector!r} matches no plan; plans found: {known}")
    return chosen


def build_plan_set(linked: LinkedSet, inputs: LoadedInputs) -> PlanSet:
    """The model of one linked set: what it lacks raised as an error (references.gaps), the dose loaded and
    the Frame of Reference checked."""
    plan = inputs.plans[linked.plan.sop_instance_uid]
    for gap in gaps(linked):
        hint = ""
        if gap.lacking is Lacking.DOSE:
            dangling = [f"{d.path} references {', '.join(d.plan_uids) or 'no plan'}" for d in inputs.linking.orphan_doses]
            hint = (f" (RT Doses whose plan is absent: {'; '.join(dangling)})" if dangling else "") + _skipped_hint(inputs)
        gap.raise_error(hint)
    assert linked.structure_set is not None  # gaps() says when it is absent
    structure_set = parse_structure_set(inputs.dataset(linked.structure_set), linked.structure_set.path)
    dose, notes = _total_dose(plan, list(linked.doses))
    notes += _check_frames(plan, structure_set, dose)
    _name_targets(plan, structure_set)
    plan_ds = inputs.dataset(linked.plan)
    facts = PlanSetFacts(
        plan=identity_of(plan_ds, plan.path, plan.kind.value),
        structure_set=identity_of(inputs.dataset(linked.structure_set), linked.structure_set.path, RTObjectKind.STRUCTURE_SET.value),
        doses=[f.identity for f in dose.files if f.identity is not None],
        beams=parse_beams(plan_ds, plan.kind),
        images=group_series(inputs.inventory.images),
        images_scanned=inputs.scanned,
    )
    return PlanSet(plan=plan, structure_set=structure_set, dose=dose, notes=notes, facts=facts)


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
            raise MissingObjectError(None, "no RT Structure Set among the inputs" + _skipped_hint(inputs))
        listing = ", ".join(str(s.path) for s in structure_sets)
        raise SelectionError(f"several RT Structure Sets and no RT Plan to choose between them ({listing}); pass one")
    if not doses:
        raise MissingObjectError(None, "no RT Dose among the inputs" + _skipped_hint(inputs))
    structure_set = parse_structure_set(structure_sets[0].dataset, structure_sets[0].path)
    dose, notes = _total_dose(None, doses)
    notes += _check_frames(None, structure_set, dose)
    return PlanSet(plan=None, structure_set=structure_set, dose=dose, notes=notes)
