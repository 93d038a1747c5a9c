"""Linking the objects of an export into plan sets: plan -> structure set, doses -> plan.

Links follow UID references (RT Dose -> RT Plan, RT Plan -> RT Structure Set)
and are confirmed by the Frame of Reference; file and folder names play no part.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from rtcheck.dicom.dose import DoseGrid, load_dose, sum_doses
from rtcheck.dicom.io import DicomObject, Inventory, scan
from rtcheck.dicom.plan import Plan, parse_plan
from rtcheck.dicom.sop import PLAN_KINDS, RTObjectKind
from rtcheck.dicom.structures import StructureSet, parse_structure_set
from rtcheck.errors import InputError, LinkError, MissingObjectError, SelectionError


@dataclass
class PlanSet:
    """What one check needs: the plan (None for a DVH-only set), its structure set and total dose."""

    plan: Plan | None
    structure_set: StructureSet
    dose: DoseGrid
    notes: list[str] = field(default_factory=list)


def _referenced_plan_uids(dose: DicomObject) -> list[str]:
    return [str(r.get("ReferencedSOPInstanceUID", "")) for r in dose.dataset.get("ReferencedRTPlanSequence", [])]


def _referenced_fraction_group(dose: DicomObject) -> int | None:
    for ref in dose.dataset.get("ReferencedRTPlanSequence", []):
        for group in ref.get("ReferencedFractionGroupSequence", []):
            if "ReferencedFractionGroupNumber" in group:
                return int(group.ReferencedFractionGroupNumber)
    return None


def _referenced_beams(dose: DicomObject) -> list[int]:
    beams = []
    for ref in dose.dataset.get("ReferencedRTPlanSequence", []):
        for group in ref.get("ReferencedFractionGroupSequence", []):
            for beam in group.get("ReferencedBeamSequence", []):
                if "ReferencedBeamNumber" in beam:
                    beams.append(int(beam.ReferencedBeamNumber))
    return beams


def _plan_description(plan: Plan) -> str:
    return f"plan {plan.label or '(no label)'} ({plan.sop_instance_uid})"


def _total_dose(plan: Plan | None, doses: list[DicomObject]) -> tuple[DoseGrid, list[str]]:
    """Load and combine the dose objects of one plan into its total dose."""
    notes: list[str] = []
    by_type = Counter(str(d.dataset.get("DoseSummationType", "")).upper() for d in doses)
    kinds = set(by_type)
    if len(kinds) > 1:
        listing = ", ".join(f"{d.path} ({d.dataset.get('DoseSummationType', '?')})" for d in doses)
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
        grids = [load_dose(d.path) for d in doses]
        if plan is not None and plan.beam_numbers:
            covered = {b for d in doses for b in _referenced_beams(d)}
            missing = sorted(set(plan.beam_numbers) - covered) if covered else []
            if covered and missing:
                raise MissingObjectError(
                    doses[0].path, f"BEAM doses cover beams {sorted(covered)} of {_plan_description(plan)}; beams {missing} have no dose"
                )
            if not covered and len(doses) != len(plan.beam_numbers):
                raise MissingObjectError(
                    doses[0].path, f"{len(doses)} BEAM doses for {_plan_description(plan)} which has {len(plan.beam_numbers)} beams"
                )
        total = sum_doses(grids)
        notes.append(f"summed {len(grids)} BEAM doses")
        return total, notes
    if summation == "FRACTION":
        if len(doses) > 1:
            listing = ", ".join(str(d.path) for d in doses)
            raise LinkError(doses[0].path, f"several FRACTION RT Doses for one plan ({listing}); pass the one to use")
        if plan is None:
            raise MissingObjectError(doses[0].path, "FRACTION dose needs its RT Plan to be scaled to the whole course")
        group_number = _referenced_fraction_group(doses[0])
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
    """The scanned inputs with the plans parsed (doses and contours are loaded per plan set)."""

    inventory: Inventory
    plans: list[Plan]

    @property
    def skipped(self) -> list[str]:
        return self.inventory.skipped


def load_inputs(paths: list[str | Path]) -> LoadedInputs:
    """Scan files and folders and parse every RT Plan found."""
    inventory = scan(paths)
    plans = [parse_plan(o.dataset, o.path, o.kind) for o in inventory.of_kind(*PLAN_KINDS)]
    return LoadedInputs(inventory, plans)


def _skipped_hint(inputs: LoadedInputs) -> str:
    if not inputs.skipped:
        return ""
    more = f" and {len(inputs.skipped) - 1} more" if len(inputs.skipped) > 1 else ""
    return f" (skipped: {inputs.skipped[0]}{more})"


def select_plans(inputs: LoadedInputs, selector: str | None) -> list[Plan]:
    """All plans, or those whose SOP Instance UID or label equals ``selector``."""
    if not inputs.plans:
        raise MissingObjectError(None, "no RT Plan among the inputs" + _skipped_hint(inputs))
    if selector is None:
        return inputs.plans
    chosen = [p for p in inputs.plans if selector in (p.sop_instance_uid, p.label)]
    if not chosen:
        known = ", ".join(f"{p.label or '(no label)'} ({p.sop_instance_uid})" for p in inputs.plans)
        raise SelectionError(f"--plan {selector!r} matches no plan; plans found: {known}")
    return chosen


def _structure_set_of(plan: Plan, inputs: LoadedInputs) -> StructureSet:
    if not plan.structure_set_uid:
        raise LinkError(plan.path, "RT Plan has no ReferencedStructureSetSequence")
    for obj in inputs.inventory.of_kind(RTObjectKind.STRUCTURE_SET):
        if obj.sop_instance_uid == plan.structure_set_uid:
            return parse_structure_set(obj.dataset, obj.path)
    raise MissingObjectError(
        plan.path, f"plan references RT Structure Set {plan.structure_set_uid}, which is not among the inputs"
    )


def build_plan_set(plan: Plan, inputs: LoadedInputs) -> PlanSet:
    """Link one plan to its structure set and dose(s), load the dose and check the Frame of Reference."""
    structure_set = _structure_set_of(plan, inputs)
    doses = [d for d in inputs.inventory.of_kind(RTObjectKind.DOSE) if plan.sop_instance_uid in _referenced_plan_uids(d)]
    if not doses:
        dangling = [
            f"{d.path} references {', '.join(_referenced_plan_uids(d)) or 'no plan'}"
            for d in inputs.inventory.of_kind(RTObjectKind.DOSE)
            if not any(u == p.sop_instance_uid for p in inputs.plans for u in _referenced_plan_uids(d))
        ]
        hint = f" (RT Doses whose plan is absent: {'; '.join(dangling)})" if dangling else ""
        raise MissingObjectError(plan.path, f"no RT Dose references {_plan_description(plan)}{hint}{_skipped_hint(inputs)}")
    dose, notes = _total_dose(plan, doses)
    notes += _check_frames(plan, structure_set, dose)
    _name_targets(plan, structure_set)
    return PlanSet(plan=plan, structure_set=structure_set, dose=dose, notes=notes)


def build_dvh_set(inputs: LoadedInputs, plan_selector: str | None = None) -> PlanSet:
    """The set for DVH statistics: through a plan when there is one, else one structure set and its dose(s)."""
    if inputs.plans:
        plans = select_plans(inputs, plan_selector)
        if len(plans) > 1:
            known = ", ".join(f"{p.label or '(no label)'} ({p.sop_instance_uid})" for p in plans)
            raise SelectionError(f"several plans found ({known}); choose one with --plan")
        return build_plan_set(plans[0], inputs)
    structure_sets = inputs.inventory.of_kind(RTObjectKind.STRUCTURE_SET)
    doses = inputs.inventory.of_kind(RTObjectKind.DOSE)
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
