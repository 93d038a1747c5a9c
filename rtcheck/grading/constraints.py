"""Grading a DVH constraint of a structure, and where it lies on the structure's DVH (for plots)."""

from __future__ import annotations

from rtcheck.dvh import DoseVolumeHistogram
from rtcheck.errors import MetricUndefinedError
from rtcheck.grading.outcome import CheckSpec
from rtcheck.metrics.evaluate import MetricContext, evaluate_metric
from rtcheck.metrics.grammar import MetricKind
from rtcheck.protocol.matching import StructureMatch
from rtcheck.protocol.model import Arm, Constraint
from rtcheck.results import CheckKind, CheckOutcome, DvhMarker, MarkerAxis, Status

__all__ = ["constraint_outcome", "constraint_spec", "dvh_marker"]


def dvh_marker(constraint: Constraint, dvh: DoseVolumeHistogram, value: float, rx_gy: float | None) -> DvhMarker | None:
    """Where a graded DVH constraint lies on its structure's cumulative DVH (Gy, % of volume), for plots."""
    metric = constraint.metric
    if dvh.volume_cc <= 0:
        return None

    def gy(x: float, unit: str | None) -> float | None:
        return x if unit == "Gy" else x / 100.0 if unit == "cGy" else (x / 100.0 * rx_gy if rx_gy else None)

    def pct(x: float, unit: str | None) -> float:
        return x if unit == "%" else x / dvh.volume_cc * 100.0

    limits = {"per_protocol": constraint.per_protocol, "variation_acceptable": constraint.variation_acceptable}

    def dose_marks() -> dict[str, float] | None:
        marks = {k: gy(t.value, metric.output_unit) for k, t in limits.items() if t is not None}
        return None if None in marks.values() else {k: v for k, v in marks.items() if v is not None}

    kind = metric.kind
    if kind in (MetricKind.MEAN, MetricKind.MAX, MetricKind.MIN):
        dose, marks = gy(value, metric.output_unit), dose_marks()
        if dose is None or marks is None:
            return None
        return DvhMarker(constraint.structure, dose, None, MarkerAxis.DOSE, marks)
    assert metric.argument is not None
    # The cold-side metrics (DC, CV) count from the other end of the cumulative curve.
    cold = kind in (MetricKind.DOSE_COMPLEMENT, MetricKind.VOLUME_COMPLEMENT)
    if kind in (MetricKind.DOSE_AT_VOLUME, MetricKind.DOSE_COMPLEMENT):
        volume = pct(metric.argument, metric.argument_unit)
        dose, marks = gy(value, metric.output_unit), dose_marks()
        if dose is None or marks is None:
            return None
        return DvhMarker(constraint.structure, dose, 100.0 - volume if cold else volume, MarkerAxis.DOSE, marks)
    dose = gy(metric.argument, metric.argument_unit)
    if dose is None:
        return None

    def flip(v: float) -> float:
        return 100.0 - v if cold else v

    volume_marks = {k: flip(pct(t.value, metric.output_unit)) for k, t in limits.items() if t is not None}
    return DvhMarker(constraint.structure, dose, flip(pct(value, metric.output_unit)), MarkerAxis.VOLUME, volume_marks)


def constraint_spec(constraint: Constraint, match: StructureMatch) -> CheckSpec:
    """What the outcome of ``constraint`` states before it is graded."""
    return CheckSpec(
        id=constraint.id,
        kind=CheckKind.DVH,
        structure=constraint.structure,
        roi_name=match.label,
        metric=constraint.metric.text,
        unit=constraint.metric.output_unit,
        per_protocol=str(constraint.per_protocol),
        variation_acceptable=str(constraint.variation_acceptable) if constraint.variation_acceptable else None,
        constraint_kind=constraint.kind,
        source=constraint.source,
    )


def constraint_outcome(
    constraint: Constraint, arm: Arm, match: StructureMatch, context: MetricContext, dvh_error: str | None,
    site_doses: dict[str, float] | None = None,
) -> CheckOutcome:
    """Grade ``constraint`` on the DVH of its structure in ``context`` (none there: not evaluated with
    ``dvh_error``).  ``site_doses``: the plan's total dose [Gy] of each target whose dose the site sets
    (no protocol dose), which a % of that target's prescription refers to."""
    spec = constraint_spec(constraint, match)
    if not match.found:
        return spec.not_contoured(f"structure missing: {match.reason}", unresolved=match.unresolved)
    dvh = context.dvhs.get(constraint.structure)
    if dvh is None:
        return spec.not_evaluated(dvh_error or "no DVH")
    outside_pct = dvh.fraction_outside * 100.0
    if outside_pct > constraint.max_outside_dose_grid_pct:
        return spec.not_evaluated(f"{outside_pct:.1f} % of {match.label!r} lies outside the dose grid")
    rx = arm.reference_prescription(constraint) if constraint.metric.needs_prescription else None
    rx_gy = rx.total_dose_gy if rx else None
    if rx is not None and rx_gy is None:
        # The site sets this target's dose: a % is of the plan's own prescription for it.
        rx_gy = (site_doses or {}).get(rx.target)
        if rx_gy is None:
            return spec.not_evaluated(
                f"{constraint.metric.text} is in % of {rx.target}'s prescription, which the site sets, and the plan states no dose for it"
            )
    try:
        value = evaluate_metric(constraint.metric, constraint.structure, context, rx_gy)
    except MetricUndefinedError as exc:
        return spec.not_evaluated(f"metric undefined: {exc}")
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
    return spec.graded(value, status, message, dvh_marker(constraint, dvh, value, rx_gy))
