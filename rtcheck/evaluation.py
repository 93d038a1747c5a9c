"""Grading a plan set against one arm of a protocol.

Data flows one way: PlanSet (DICOM model) + Protocol -> DVHs -> CheckResult.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from rtcheck.dicom.plan import TargetPrescription
from rtcheck.dicom.planset import PlanSet
from rtcheck.dvh import Combination, DoseVolumeHistogram, EngineOptions, compute_dvh, shape_key
from rtcheck.errors import ArmSelectionError, MetricUndefinedError
from rtcheck.metrics.evaluate import metric_value
from rtcheck.protocol.matching import StructureMatch, normalise_name, resolve_structure
from rtcheck.protocol.model import Arm, Constraint, Protocol
from rtcheck.metrics.grammar import MetricKind
from rtcheck.results import CheckOutcome, CheckResult, DvhMarker, Status, StructureSummary, TargetSummary
from rtcheck.protocol.overlay import overlay_notes
from rtcheck.site_prescription import site_dose_notes, window_matches, window_outcome

if TYPE_CHECKING:
    from rtcheck.radiobiology.reirradiation import PriorCourse


@dataclass(frozen=True)
class CheckOptions:
    """``structure_map``: protocol structure -> exact ROI name, overriding alias matching."""

    structure_map: tuple[tuple[str, str], ...] = ()
    engine: EngineOptions = EngineOptions()
    # Re-irradiation: the prior course (rtcheck.radiobiology.reirradiation.PriorCourse) for cumulative constraints.
    prior: "PriorCourse | None" = None


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
        for rx, target in zip(sorted(unpaired, key=lambda r: r.total_dose_gy or 0.0, reverse=True), by_dose):
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
        if rx.window is not None:
            outcomes.append(window_outcome(rx, target, how, roi_name))
            continue
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
            site = "the site's prescription; " if rx.dose_set_by == "site" else ""
            outcomes.append(CheckOutcome(value=float(value), status=status, message=f"{site}{how}; from {origin}", **base))
    return outcomes


def _dvh_marker(constraint: Constraint, dvh: DoseVolumeHistogram, value: float, rx_gy: float | None) -> DvhMarker | None:
    """Where a graded DVH constraint lies on its structure's cumulative DVH (Gy, % of volume), for plots."""
    metric = constraint.metric
    if dvh.volume_cc <= 0:
        return None

    def gy(x: float, unit: str | None) -> float | None:
        return x if unit == "Gy" else x / 100.0 if unit == "cGy" else (x / 100.0 * rx_gy if rx_gy else None)

    def pct(x: float, unit: str | None) -> float:
        return x if unit == "%" else x / dvh.volume_cc * 100.0

    limits = {"per_protocol": constraint.per_protocol, "variation_acceptable": constraint.variation_acceptable}
    kind = metric.kind
    if kind in (MetricKind.MEAN, MetricKind.MAX, MetricKind.MIN):
        dose = gy(value, metric.output_unit)
        marks = {k: gy(t.value, metric.output_unit) for k, t in limits.items() if t is not None}
        if dose is None or None in marks.values():
            return None
        return DvhMarker(constraint.structure, dose, None, "dose", marks)  # type: ignore[arg-type]
    assert metric.argument is not None
    # The cold-side metrics (DC, CV) count from the other end of the cumulative curve.
    cold = kind in (MetricKind.DOSE_COMPLEMENT, MetricKind.VOLUME_COMPLEMENT)
    if kind in (MetricKind.DOSE_AT_VOLUME, MetricKind.DOSE_COMPLEMENT):
        volume = pct(metric.argument, metric.argument_unit)
        dose = gy(value, metric.output_unit)
        marks = {k: gy(t.value, metric.output_unit) for k, t in limits.items() if t is not None}
        if dose is None or None in marks.values():
            return None
        return DvhMarker(constraint.structure, dose, 100.0 - volume if cold else volume, "dose", marks)  # type: ignore[arg-type]
    dose = gy(metric.argument, metric.argument_unit)
    if dose is None:
        return None
    flip = (lambda v: 100.0 - v) if cold else (lambda v: v)
    marks = {k: flip(pct(t.value, metric.output_unit)) for k, t in limits.items() if t is not None}
    return DvhMarker(constraint.structure, dose, flip(pct(value, metric.output_unit)), "volume", marks)


def _constraint_outcome(
    constraint: Constraint, arm: Arm, match: StructureMatch, dvh: DoseVolumeHistogram | None, dvh_error: str | None,
    site_doses: dict[str, float] | None = None,
) -> CheckOutcome:
    """``site_doses``: the plan's total dose [Gy] of each target whose dose the site sets (no protocol dose)."""
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
    rx_gy = rx.total_dose_gy if rx else None
    if rx is not None and rx_gy is None:
        # The site sets this target's dose: a % is of the plan's own prescription for it.
        rx_gy = (site_doses or {}).get(rx.target)
        if rx_gy is None:
            return not_evaluated(f"{constraint.metric.text} is in % of {rx.target}'s prescription, which the site sets, and the plan states no dose for it")
    try:
        value = metric_value(constraint.metric, dvh, rx_gy)
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
        message += f"; % of {rx.target} prescription {rx_gy:g} Gy"
        if rx.total_dose_gy is None:
            message += " (the plan's: the dose is set by the site)"
    marker = _dvh_marker(constraint, dvh, value, rx_gy)
    return CheckOutcome(value=value, status=status, message=message, marker=marker, **base)


def _arm_mismatch(arm: Arm, plan_set: PlanSet, protocol: Protocol, options: CheckOptions) -> str | None:
    """Why the plan's prescriptions do not fit ``arm`` (None when they do)."""
    plan = plan_set.plan
    assert plan is not None
    if not arm.radiotherapy or not arm.prescriptions:
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
        if rx.window is not None:
            reason = window_matches(rx, target)
            if reason:
                return reason
            continue
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
    protocol.ensure_checkable("auto")  # NoRadiotherapyError for a protocol without radiotherapy
    reasons = {arm_id: _arm_mismatch(arm, plan_set, protocol, options) for arm_id, arm in protocol.arms.items()}
    candidates = [arm_id for arm_id, reason in reasons.items() if reason is None]
    label = plan_set.plan.label if plan_set.plan else ""
    if len(candidates) == 1:
        return candidates[0], f"arm {candidates[0]} chosen automatically: the only arm whose prescriptions match the plan's"
    if candidates:
        raise ArmSelectionError(f"--arm auto: plan {label} matches several arms of {protocol.id} ({', '.join(candidates)}); choose one with --arm")
    listing = "; ".join(f"{arm_id}: {reason}" for arm_id, reason in reasons.items())
    raise ArmSelectionError(f"--arm auto: plan {label} matches no arm of {protocol.id} ({listing}); choose one with --arm")


def check_plan_set(plan_set: PlanSet, protocol: Protocol, arm_id: str, options: CheckOptions = CheckOptions()) -> CheckResult:
    """Grade ``plan_set`` against arm ``arm_id`` of ``protocol`` (NoRadiotherapyError if the arm gives none)."""
    arm = protocol.radiotherapy_arm(arm_id)
    plan = plan_set.plan
    if plan is None:
        raise ValueError("a protocol check needs an RT Plan")
    overrides = dict(options.structure_map)
    used = [rx.target for rx in arm.prescriptions] + [c.structure for c in arm.constraints]
    matches = {name: resolve_structure(name, protocol.structures, plan_set.structure_set, overrides) for name in dict.fromkeys(used)}

    checks = _prescription_checks(arm, plan_set, matches, protocol)
    paired = _pair_prescriptions(arm, plan.targets, matches, protocol)
    site_doses = {
        name: target.total_dose_gy for name, (target, _) in paired.items()
        if target.total_dose_gy and arm.prescription_for(name).total_dose_gy is None
    }
    spacing = plan_set.structure_set.typical_plane_spacing_mm()
    # DVHs are keyed by what they are computed on (an ROI number or a derivation's label).
    dvhs: dict[object, DoseVolumeHistogram] = {}
    dvh_errors: dict[object, str] = {}
    summaries: list[StructureSummary] = []
    for name in dict.fromkeys(c.structure for c in arm.constraints):
        shape = matches[name].shape
        if shape is None:
            continue
        key = shape_key(shape)
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
    biological = None
    if options.prior is not None or any(c.metric.biology is not None for c in arm.constraints):
        from rtcheck.radiobiology.checks import BiologicalEvaluation

        biological = BiologicalEvaluation(plan_set, options.prior, spacing, options.engine, protocol.structures)
    for constraint in arm.constraints:
        match = matches[constraint.structure]
        key = shape_key(match.shape) if match.shape is not None else None
        if constraint.metric.biology is not None and biological is not None:
            # EQD2/BED: graded on a converted dose grid (rtcheck.radiobiology.checks).
            checks.append(biological.outcome(constraint, arm, match, dvhs.get(key), dvh_errors.get(key), _constraint_outcome))
            continue
        checks.append(_constraint_outcome(constraint, arm, match, dvhs.get(key), dvh_errors.get(key), site_doses))

    result = CheckResult(
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
        notes=plan_set.notes + plan.notes + site_dose_notes(arm.prescriptions) + overlay_notes(protocol),
        input_files=[str(plan.path), str(plan_set.structure_set.path), *(str(p) for p in plan_set.dose.paths)],
        dvhs_by_roi={key: dvh for key, dvh in dvhs.items() if isinstance(key, int)},
        patient_name=plan.patient_name,
        structure_set_uid=plan_set.structure_set.sop_instance_uid,
        dvhs_by_structure={
            name: dvhs[shape_key(matches[name].shape)]
            for name in dict.fromkeys(c.structure for c in arm.constraints)
            if matches[name].shape is not None and shape_key(matches[name].shape) in dvhs
        },
    )
    if biological is not None:
        from rtcheck.radiobiology.checks import annotate

        annotate(result, biological, arm)
    return result
