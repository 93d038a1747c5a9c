"""Several RT Plans of one patient and Frame of Reference checked as one course (``rtcheck check --sum``).

A sequential boost is often exported as two plans (phase 1 + phase 2), each with its dose.  The course:

- dose: one RT Dose of DoseSummationType MULTI_PLAN referencing every plan when the inputs hold one
  (PS3.3: "dose calculated for 2 or more RT Plans"); else each plan's course dose
  (:mod:`rtcheck.dicom.summation`) resampled onto the first plan's grid with the one sampler and added
  (:func:`rtcheck.dicom.dose.resampled_sum`: only where every grid gives the dose);
- structure set: the one all the plans reference (plans on different structure sets are refused);
- prescriptions: each plan's, per phase; prescriptions of several plans to the same ROI make one course
  prescription (total doses and fractions added, both sources kept); fraction groups of every plan, numbered
  in plan order (phase 1's first).
"""

from __future__ import annotations

import dataclasses

from rtcheck.dicom.dose import resampled_sum
from rtcheck.dicom.facts import PlanSetFacts
from rtcheck.dicom.plan import FractionGroup, PartKind, Plan, PlanPart, TargetPrescription, course_targets
from rtcheck.dicom.planset import LoadedInputs, PlanSet, build_plan_set
from rtcheck.dicom.references import LinkedSet
from rtcheck.dicom.sop import DoseSummation
from rtcheck.dicom.summation import course_dose
from rtcheck.errors import LinkError, SelectionError

__all__ = ["build_plan_sum"]


def _course_plan(plans: list[Plan]) -> tuple[Plan, list[str]]:
    notes: list[str] = []
    groups: list[FractionGroup] = []
    phase_targets: list[TargetPrescription] = []
    parts: list[PlanPart] = []
    for phase, plan in enumerate(plans, start=1):
        renumber: dict[int, int] = {}
        for group in plan.fraction_groups:
            renumber[group.number] = len(groups) + 1
            groups.append(dataclasses.replace(group, number=len(groups) + 1))
            if group.number != renumber[group.number]:
                notes.append(f"phase {phase} ({plan.label}): fraction group {group.number} is the course's fraction group {renumber[group.number]}")
        mine = [
            dataclasses.replace(
                target, fraction_groups=[renumber[g] for g in target.fraction_groups if g in renumber],
                sources={k: f"phase {phase} ({plan.label}): {v}" for k, v in target.sources.items()},
            )
            for target in plan.targets
        ]
        phase_targets += mine
        counts = " + ".join(f"item {g.number}" for g in plan.fraction_groups)
        parts.append(PlanPart(
            PartKind.PLAN, phase, f"plan {plan.label or '(no label)'}", plan.fractions,
            f"phase {phase} ({plan.label}): RT Plan FractionGroupSequence {counts} NumberOfFractionsPlanned", mine,
        ))
    # The same ROI prescribed in several phases: one course prescription (rtcheck.dicom.plan.course_targets).
    targets, merge_notes = course_targets(phase_targets)
    notes += merge_notes
    first = plans[0]
    course = dataclasses.replace(
        first,
        label=" + ".join(p.label or "(no label)" for p in plans),
        sop_instance_uid=" + ".join(p.sop_instance_uid for p in plans),
        fraction_groups=groups,
        targets=targets,
        sum_parts=parts,
        beam_numbers=[],
        notes=[f"phase {i} ({p.label}): {n}" for i, p in enumerate(plans, start=1) for n in p.notes],
        prescription_gap="; ".join(f"phase {i} ({p.label}): {p.prescription_gap}" for i, p in enumerate(plans, start=1) if p.prescription_gap)
        if not targets else "",
    )
    return course, notes


def build_plan_sum(sets: list[LinkedSet], inputs: LoadedInputs) -> PlanSet:
    """The course of the plans of ``sets`` (two or more, in phase order) as one plan set."""
    if len(sets) < 2:
        raise SelectionError(f"--sum needs two or more RT Plans; the inputs hold {len(sets)}")
    first = sets[0].plan
    for linked in sets[1:]:
        other = linked.plan
        if (other.patient_id, other.frame_of_reference_uid) != (first.patient_id, first.frame_of_reference_uid):
            raise LinkError(other.path, f"--sum: {other.plan_description} is of patient {other.patient_id!r} / Frame of Reference "
                            f"{other.frame_of_reference_uid}, {first.plan_description} of {first.patient_id!r} / {first.frame_of_reference_uid}")
        if other.structure_set_uids != first.structure_set_uids:
            raise LinkError(other.path, f"--sum: {other.plan_description} references another RT Structure Set than {first.plan_description}; "
                            "plans of one course are checked on one structure set")
    uids = {s.plan.sop_instance_uid for s in sets}
    multi = {d.sop_instance_uid: d for s in sets for d in s.doses
             if DoseSummation.of(d.summation_type) is DoseSummation.MULTI_PLAN and uids <= set(d.plan_uids)}
    phases = [build_plan_set(dataclasses.replace(s, doses=tuple(d for d in s.doses if d.sop_instance_uid not in multi) or s.doses), inputs)
              for s in sets]
    plans = [p.plan for p in phases if p.plan is not None]
    plan, notes = _course_plan(plans)
    if multi:
        course = course_dose(plan, [next(iter(multi.values()))])
        dose, dose_notes = course.grid, ["--sum: the MULTI_PLAN dose of every plan is the course dose"]
    else:
        dose, dose_notes = resampled_sum([p.dose for p in phases])
        dose_notes = [f"--sum: the course dose is the sum of the {len(phases)} plans' doses", *dose_notes]
    phase_notes = [f"--sum: phase {i} is {p.plan.label if p.plan else '?'} ({s.plan.path})" for i, (p, s) in enumerate(zip(phases, sets), start=1)]
    phase_notes += [f"phase {i} ({p.plan.label if p.plan else '?'}): {n}" for i, p in enumerate(phases, start=1) for n in p.notes]
    return PlanSet(
        plan=plan, structure_set=phases[0].structure_set, dose=dose, notes=[*phase_notes, *dose_notes, *notes],
        dose_comparisons=[c for p in phases for c in p.dose_comparisons],
        slice_positions_mm=phases[0].slice_positions_mm,  # the phases share one structure set (checked above)
        facts=PlanSetFacts.of_phases([p.facts for p in phases]),
    )
