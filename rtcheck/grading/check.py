"""Grading a plan set against one arm of a protocol: the one place a CheckResult is built.

Data flows one way: PlanSet (DICOM model) + Protocol -> DVHs -> metrics -> CheckResult.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from rtcheck.dicom.planset import PlanSet
from rtcheck.dvh import Combination, DoseVolumeHistogram, shape_key
from rtcheck.grading.biology import BiologicalEvaluation
from rtcheck.grading.completeness import incomplete_contour
from rtcheck.grading.constraints import constraint_outcome
from rtcheck.grading.dvh_cache import DvhCache, unusable_reason
from rtcheck.grading.fractionation import eqd2_constraint, fractionation_decision
from rtcheck.grading.integrity import integrity_checks
from rtcheck.grading.options import CheckOptions, CheckSelection
from rtcheck.grading.phases import phase_checks
from rtcheck.grading.prescriptions import pair_prescriptions, prescription_checks, unlisted_checks
from rtcheck.grading.reirradiation import interval_checks
from rtcheck.grading.site_prescription import site_dose_notes
from rtcheck.grading.tps import compare_check_with_tps
from rtcheck.metrics.evaluate import MetricContext
from rtcheck.protocol.matching import resolve_structure
from rtcheck.protocol.model import Protocol, Role
from rtcheck.protocol.overlay import overlay_notes
from rtcheck.radiobiology.alpha_beta import structure_alpha_beta_gy
from rtcheck.results import CheckOutcome, CheckResult, Status, StructureSummary, TargetSummary

__all__ = ["check_plan_set"]

_TARGET_TYPES = {"PTV", "CTV", "GTV"}


def check_plan_set(
    plan_set: PlanSet, protocol: Protocol, arm_id: str, options: CheckOptions = CheckOptions(), *, input_notes: Sequence[str] = ()
) -> CheckResult:
    """Grade ``plan_set`` against arm ``arm_id`` of ``protocol`` (NoRadiotherapyError if the arm gives none).

    ``input_notes`` (files skipped while reading, the arm chosen automatically) come first in the result's notes.
    """
    arm = protocol.radiotherapy_arm(arm_id)
    plan = plan_set.plan
    if plan is None:
        raise ValueError("a protocol check needs an RT Plan")
    overrides = dict(options.structure_map)
    graded_dvh = options.checks is not CheckSelection.INTEGRITY
    used = [rx.target for rx in arm.prescriptions] + [c.structure for c in arm.constraints] if graded_dvh else []
    matches = {name: resolve_structure(name, protocol.structures, plan_set.structure_set, overrides) for name in dict.fromkeys(used)}

    paired = pair_prescriptions(arm.prescriptions, plan.targets, matches, protocol) if graded_dvh else {}
    phase_notes: list[str] = []
    checks: list[CheckOutcome] = []
    if graded_dvh and arm.phases:
        # An arm with phases: the plan's fraction groups (or plans of a sum) paired with them (rtcheck.grading.phases).
        checks, phase_notes = phase_checks(arm, plan, matches, protocol)
    elif graded_dvh:
        checks = prescription_checks(arm.prescriptions, paired, matches, plan_gap=plan.prescription_gap)
        checks += unlisted_checks(arm, plan, paired)
    site_doses = {
        name: target.total_dose_gy for name, (target, _) in paired.items()
        if target.total_dose_gy and (rx := arm.prescription_for(name)) is not None and rx.total_dose_gy is None
    }
    cache = DvhCache(plan_set.dose, options.engine, slice_positions_mm=plan_set.slice_positions_mm)
    # The physical DVH of each constrained structure, by the protocol's name (several names may share a shape).
    dvhs: dict[str, DoseVolumeHistogram] = {}
    dvh_errors: dict[str, str] = {}
    summaries: list[StructureSummary] = []
    dvhs_by_roi: dict[int, DoseVolumeHistogram] = {}
    summarised: set[object] = set()
    levels = [rx.total_dose_gy for rx in arm.prescriptions if rx.total_dose_gy] + list(site_doses.values())
    top_rx_gy = max(levels) if levels else None
    for name in dict.fromkeys(c.structure for c in arm.constraints if graded_dvh):
        shape = matches[name].shape
        if shape is None:
            continue
        error = unusable_reason(shape)
        if error is None and top_rx_gy and protocol.structures[name].role is Role.OAR:
            # An organ cut short where the dose is still high: its DVH is not the organ's.
            error = next(
                (why for roi in (shape.rois() if isinstance(shape, Combination) else [shape])
                 # RTROIInterpretedType (PS3.3 C.8.8.8): a target operand of a derived organ (Stomach - PTV) is no organ.
                 if roi.interpreted_type.upper() not in _TARGET_TYPES
                 and (why := incomplete_contour(roi, plan_set.dose, top_rx_gy)) is not None),
                None,
            )
        if error is not None:
            dvh_errors[name] = error
            continue
        dvh = dvhs[name] = cache.dvh(shape)
        roi_number = shape.number if not isinstance(shape, Combination) else None
        if roi_number is not None:
            dvhs_by_roi[roi_number] = dvh
        if shape_key(shape) not in summarised:
            summarised.add(shape_key(shape))
            summaries.append(
                StructureSummary(
                    name, matches[name].label or "", roi_number,
                    dvh.total_volume_cc, dvh.fraction_outside * 100.0, dvh.min_gy, dvh.mean_gy, dvh.max_gy,
                )
            )
    physical = MetricContext(dvhs, grid=plan_set.dose)
    biological = None
    if options.prior is not None or any(c.metric.biology is not None or c.written_for is not None for c in arm.constraints):
        biological = BiologicalEvaluation(plan_set, options.prior, cache, protocol.structures)
    for constraint in arm.constraints if graded_dvh else ():
        match = matches[constraint.structure]
        if constraint.metric.biology is not None and biological is not None:
            # EQD2/BED: graded on a converted dose grid (rtcheck.grading.biology).
            checks.append(biological.outcome(constraint, arm, match, dvhs.get(constraint.structure), dvh_errors.get(constraint.structure)))
            continue
        if constraint.written_for is not None and biological is not None:
            decision = fractionation_decision(constraint.written_for, plan)
            if decision.error is not None:
                checks.append(constraint_outcome(constraint, arm, match, MetricContext(), decision.error))
                continue
            if decision.in_eqd2:
                # A physical limit written for another fractionation: graded in EQD2 (rtcheck.grading.fractionation).
                alpha_beta, note = structure_alpha_beta_gy(protocol.structures[constraint.structure])
                converted = eqd2_constraint(constraint, alpha_beta)
                if isinstance(converted, str):
                    checks.append(constraint_outcome(constraint, arm, match, MetricContext(), converted))
                    continue
                converted = dataclasses.replace(converted, alpha_beta_note=note)
                out = biological.outcome(converted, arm, match, dvhs.get(constraint.structure), dvh_errors.get(constraint.structure))
                reason = decision.reason(alpha_beta, note)
                if out.status is Status.NOT_EVALUATED:
                    reason = f"it would be {reason}"
                checks.append(dataclasses.replace(out, message=f"{out.message}; {reason}" if out.message else reason))
                continue
        checks.append(constraint_outcome(constraint, arm, match, physical, dvh_errors.get(constraint.structure), site_doses))
    if graded_dvh:
        checks += interval_checks(arm, options.prior)

    selection_notes = []
    if options.checks is not CheckSelection.DVH:
        checks += integrity_checks(plan_set, protocol, arm, cache, matches, overrides)
    else:
        selection_notes.append("checks dvh: the plan's integrity (objects, dose calculation, beams, contours) was not checked")
    if not graded_dvh:
        selection_notes.append("checks integrity: the prescriptions and DVH constraints were not checked")
    tps_comparison, tps_notes = compare_check_with_tps(plan, plan_set.dose, summaries, dvhs_by_roi)
    notes = [*input_notes, *selection_notes, *plan_set.notes, *plan.notes, *phase_notes, *site_dose_notes(arm.prescriptions), *overlay_notes(protocol)]
    input_files = [str(plan.path), str(plan_set.structure_set.path), *(str(p) for p in plan_set.dose.paths)]
    if biological is not None:
        notes += biological.notes + biological.arm_notes(arm)
        input_files += biological.input_files()
    return CheckResult(
        protocol_id=protocol.id,
        protocol_title=protocol.title,
        protocol_sha256=protocol.sha256,
        arm=arm.id,
        arm_title=arm.title,
        plan_label=plan.label,
        plan_sop_instance_uid=plan.sop_instance_uid,
        plan_fractions=plan.fractions,
        patient_id=plan.patient_id,
        targets=[TargetSummary(t.name, t.total_dose_gy, t.fractions, t.dose_per_fraction_gy, dict(t.sources)) for t in plan.targets],
        checks=checks,
        structures=summaries,
        notes=notes + tps_notes,
        input_files=input_files,
        dvhs_by_roi=dvhs_by_roi,
        tps_comparison=tps_comparison,
        patient_name=plan.patient_name,
        structure_set_uid=plan_set.structure_set.sop_instance_uid,
        dose_uids=[f.sop_instance_uid for f in plan_set.dose.files],
        plan_date=plan.plan_date,
        study_date=plan.study_date,
        dvhs_by_structure=dvhs,
        dose_comparisons=list(plan_set.dose_comparisons),
    )
