"""Grading a plan set against one arm of a protocol.

Data flows one way: PlanSet (DICOM model) + Protocol -> DVHs -> CheckResult.
"""

from __future__ import annotations

from dataclasses import dataclass

from rtcheck.dicom.plan import TargetPrescription
from rtcheck.dicom.planset import PlanSet
from rtcheck.dvh import Combination, DoseVolumeHistogram, EngineOptions, compute_dvh
from rtcheck.errors import ArmSelectionError, MetricUndefinedError
from rtcheck.metrics.evaluate import metric_value
from rtcheck.protocol.matching import StructureMatch, normalise_name, resolve_structure
from rtcheck.protocol.model import Arm, Constraint, Protocol
from rtcheck.results import CheckOutcome, CheckResult, Status, StructureSummary, TargetSummary


@dataclass(frozen=True)
class CheckOptions:
    """``structure_map``: protocol structure -> exact ROI name, overriding alias matching."""

    structure_map: tuple[tuple[str, str], ...] = ()
    engine: EngineOptions = EngineOptions()


def _grade(value: float, expected: float, per_protocol_pct: float, variation_pct: float | None) -> Status:
    deviation_pct = abs(value - expected) / expected * 100.0
    # Exports round doses (e.g. 59.92 stored as 59.9200000001): compare at 1e-6 %.
    if deviation_pct <= per_protocol_pct + 1e-6:
        return Status.PER_PROTOCOL
    if variation_pct is not None and deviation_pct <= variation_pct + 1e-6:
        return Status.VARIATION_ACCEPTABLE
    return Status.DEVIATION_UNACCEPTABLE


def _pair_prescriptions(arm: Arm, plan_targets: list[TargetPrescription], matches: dict[str, StructureMatch], protocol: Protocol) -> dict[str, tuple[TargetPrescription, str]]:
    """Protocol target -> (plan prescription, how they were paired)."""
    paired: dict[str, tuple[TargetPrescription, str]] = {}
    free = list(plan_targets)
    for rx in arm.prescriptions:
        match = matches.get(rx.target)
        spec = protocol.structures[rx.target]
        aliases = {normalise_name(a) for a in (spec.name, spec.tg263, *spec.aliases)}
        for target in free:
            if match is not None and match.roi is not None and target.roi_number == match.roi.number:
                how = f"plan dose reference {target.dose_reference_number} references ROI {match.roi.name!r}"
            elif normalise_name(target.description or "") in aliases or normalise_name(target.name) in aliases:
                how = f"plan dose reference named {target.name!r}"
            else:
                continue
            paired[rx.target] = (target, how)
            free.remove(target)
            break
    unpaired = [rx for rx in arm.prescriptions if rx.target not in paired]
    if unpaired and len(unpaired) == len(free):
        # Same number left on both sides: pair by dose level, highest with highest, and say so.
        by_dose = sorted(free, key=lambda t: t.total_dose_gy or 0.0, reverse=True)
        for rx, target in zip(sorted(unpaired, key=lambda r: r.total_dose_gy, reverse=True), by_dose):
            how = "the plan's only prescription" if len(arm.prescriptions) == 1 and len(plan_targets) == 1 else "paired by dose level (no ROI or name link)"
            paired[rx.target] = (target, f"{how}: {target.name!r}")
    return paired


def _prescription_checks(arm: Arm, plan_set: PlanSet, matches: dict[str, StructureMatch], protocol: Protocol) -> list[CheckOutcome]:
    plan = plan_set.plan
    assert plan is not None
    paired = _pair_prescriptions(arm, plan.targets, matches, protocol)
    outcomes: list[CheckOutcome] = []
    for rx in arm.prescriptions:
        target, how = paired.get(rx.target, (None, ""))
        roi_name = matches[rx.target].label if rx.target in matches else None
        band = f"± {rx.per_protocol_pct:g} %"
        variation = f"± {rx.variation_acceptable_pct:g} %" if rx.variation_acceptable_pct is not None else None
        items = [
            ("total-dose", "total dose", rx.total_dose_gy, "Gy", "total_dose_gy"),
            ("fractions", "fractions", rx.fractions, "fx", "fractions"),
            ("dose-per-fraction", "dose per fraction", rx.dose_per_fraction_gy, "Gy", "dose_per_fraction_gy"),
        ]
        for suffix, label, expected, unit, field_name in items:
            check_id = f"rx-{rx.target.lower()}-{suffix}"
            if unit == "fx":
                per_protocol, var_text = f"= {expected}", None
            else:
                per_protocol, var_text = f"{expected:g} Gy {band}", (f"{expected:g} Gy {variation}" if variation else None)
            base = dict(id=check_id, kind="prescription", structure=rx.target, roi_name=roi_name, metric=label, unit=unit, per_protocol=per_protocol, variation_acceptable=var_text, required=True, source=rx.source)
            value = getattr(target, field_name) if target is not None else None
            if target is None:
                outcomes.append(CheckOutcome(value=None, status=Status.NOT_EVALUATED, message=f"the plan has no prescription for {rx.target}", **base))
                continue
            if value is None:
                outcomes.append(CheckOutcome(value=None, status=Status.NOT_EVALUATED, message=f"the plan does not state the {label} of {target.name!r}", **base))
                continue
            if unit == "fx":
                status = Status.PER_PROTOCOL if value == expected else Status.DEVIATION_UNACCEPTABLE
            else:
                status = _grade(value, expected, rx.per_protocol_pct, rx.variation_acceptable_pct)
            origin = target.sources.get(field_name, "")
            outcomes.append(CheckOutcome(value=float(value), status=status, message=f"{how}; from {origin}", **base))
    return outcomes


def _constraint_outcome(constraint: Constraint, arm: Arm, match: StructureMatch, dvh: DoseVolumeHistogram | None, dvh_error: str | None) -> CheckOutcome:
    per_protocol = str(constraint.per_protocol)
    variation = str(constraint.variation_acceptable) if constraint.variation_acceptable else None
    base = dict(
        id=constraint.id,
        kind="dvh",
        structure=constraint.structure,
        roi_name=match.label,
        metric=constraint.metric.text,
        unit=constraint.metric.output_unit,
        per_protocol=per_protocol,
        variation_acceptable=variation,
        required=constraint.required,
        source=constraint.source,
    )

    def not_evaluated(reason: str) -> CheckOutcome:
        return CheckOutcome(value=None, status=Status.NOT_EVALUATED, message=reason, **base)

    if not match.found:
        return not_evaluated(f"structure missing: {match.reason}")
    if dvh is None:
        return not_evaluated(dvh_error or "no DVH")
    outside_pct = dvh.fraction_outside * 100.0
    if outside_pct > constraint.max_outside_dose_grid_pct:
        return not_evaluated(f"{outside_pct:.1f} % of {match.label!r} lies outside the dose grid")
    rx = arm.reference_prescription(constraint) if constraint.metric.needs_prescription else None
    try:
        value = metric_value(constraint.metric, dvh, rx.total_dose_gy if rx else None)
    except MetricUndefinedError as exc:
        return not_evaluated(f"metric undefined: {exc}")
    if constraint.per_protocol.satisfied_by(value):
        status = Status.PER_PROTOCOL
    elif constraint.variation_acceptable is not None and constraint.variation_acceptable.satisfied_by(value):
        status = Status.VARIATION_ACCEPTABLE
    else:
        status = Status.DEVIATION_UNACCEPTABLE
    message = match.reason
    if rx is not None:
        message += f"; % of {rx.target} prescription {rx.total_dose_gy:g} Gy"
    return CheckOutcome(value=value, status=status, message=message, **base)


def _arm_mismatch(arm: Arm, plan_set: PlanSet, protocol: Protocol, options: CheckOptions) -> str | None:
    """Why the plan's prescriptions do not fit ``arm`` (None when they do)."""
    plan = plan_set.plan
    assert plan is not None
    if not arm.prescriptions:
        return "the arm has no radiotherapy"
    overrides = dict(options.structure_map)
    matches = {rx.target: resolve_structure(rx.target, protocol.structures, plan_set.structure_set, overrides) for rx in arm.prescriptions}
    paired = _pair_prescriptions(arm, plan.targets, matches, protocol)
    missing = [rx.target for rx in arm.prescriptions if rx.target not in paired]
    if missing:
        return f"no plan prescription for {', '.join(missing)}"
    if len(plan.targets) > len(arm.prescriptions):
        return f"the plan has {len(plan.targets)} prescriptions, the arm {len(arm.prescriptions)}"
    for rx in arm.prescriptions:
        target = paired[rx.target][0]
        if target.fractions != rx.fractions:
            return f"{rx.target}: {target.fractions} fractions, not {rx.fractions}"
        band = rx.variation_acceptable_pct if rx.variation_acceptable_pct is not None else rx.per_protocol_pct
        if target.total_dose_gy is None or _grade(target.total_dose_gy, rx.total_dose_gy, band, None) is not Status.PER_PROTOCOL:
            return f"{rx.target}: {target.total_dose_gy} Gy, not {rx.total_dose_gy:g} Gy within {band:g} %"
    return None


def choose_arm(plan_set: PlanSet, protocol: Protocol, options: CheckOptions = CheckOptions()) -> tuple[str, str]:
    """The arm whose prescriptions match the plan's (``--arm auto``), and a note saying why.

    Match: every prescription of the arm paired with one of the plan (and no plan
    prescription left over), the same number of fractions, the total dose within
    the arm's variation-acceptable tolerance.  None or several: ArmSelectionError.
    """
    reasons = {arm_id: _arm_mismatch(arm, plan_set, protocol, options) for arm_id, arm in protocol.arms.items()}
    candidates = [arm_id for arm_id, reason in reasons.items() if reason is None]
    label = plan_set.plan.label if plan_set.plan else ""
    if len(candidates) == 1:
        return candidates[0], f"arm {candidates[0]} chosen automatically: the only arm whose prescriptions match the plan's"
    if candidates:
        raise ArmSelectionError(f"--arm auto: plan {label} matches several arms of {protocol.id} ({', '.join(candidates)}); choose one with --arm")
    listing = "; ".join(f"{arm_id}: {reason}" for arm_id, reason in reasons.items())
    raise ArmSelectionError(f"--arm auto: plan {label} matches no arm of {protocol.id} ({listing}); choose one with --arm")


def _shape_key(shape) -> object:
    return ("derived", shape.name) if isinstance(shape, Combination) else shape.number


def check_plan_set(plan_set: PlanSet, protocol: Protocol, arm_id: str, options: CheckOptions = CheckOptions()) -> CheckResult:
    """Grade ``plan_set`` against arm ``arm_id`` of ``protocol``."""
    arm = protocol.arm(arm_id)
    plan = plan_set.plan
    if plan is None:
        raise ValueError("a protocol check needs an RT Plan")
    overrides = dict(options.structure_map)
    used = [rx.target for rx in arm.prescriptions] + [c.structure for c in arm.constraints]
    matches = {name: resolve_structure(name, protocol.structures, plan_set.structure_set, overrides) for name in dict.fromkeys(used)}

    checks = _prescription_checks(arm, plan_set, matches, protocol)
    spacing = plan_set.structure_set.typical_plane_spacing_mm()
    # DVHs are keyed by what they are computed on (an ROI number or a derivation's label).
    dvhs: dict[object, DoseVolumeHistogram] = {}
    dvh_errors: dict[object, str] = {}
    summaries: list[StructureSummary] = []
    for name in dict.fromkeys(c.structure for c in arm.constraints):
        shape = matches[name].shape
        if shape is None:
            continue
        key = _shape_key(shape)
        if key in dvhs or key in dvh_errors:
            continue
        unusable = [roi for roi in (shape.rois() if isinstance(shape, Combination) else [shape]) if not roi.is_volume]
        if unusable:
            dvh_errors[key] = "; ".join(f"ROI {roi.name!r} has no volume: {roi.unusable_reason}" for roi in unusable)
            continue
        dvh = compute_dvh(shape, plan_set.dose, plane_spacing_mm=spacing, options=options.engine)
        dvhs[key] = dvh
        summaries.append(
            StructureSummary(
                name, matches[name].label or "", shape.number if not isinstance(shape, Combination) else None,
                dvh.total_volume_cc, dvh.fraction_outside * 100.0, dvh.min_gy, dvh.mean_gy, dvh.max_gy,
            )
        )
    for constraint in arm.constraints:
        match = matches[constraint.structure]
        key = _shape_key(match.shape) if match.shape is not None else None
        checks.append(_constraint_outcome(constraint, arm, match, dvhs.get(key), dvh_errors.get(key)))

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
        notes=plan_set.notes + plan.notes,
        input_files=[str(plan.path), str(plan_set.structure_set.path), *(str(p) for p in plan_set.dose.paths)],
        dvhs_by_roi={key: dvh for key, dvh in dvhs.items() if isinstance(key, int)},
    )
