"""Physical organ limits written for another fractionation: graded in EQD2 (called by rtcheck.grading.check).

A physical limit ``D`` [Gy] written for ``d_ref`` Gy per fraction (``written_for``) means the LQ effect
of ``D`` in ``d_ref`` Gy fractions: ``EQD2 = D * (d_ref + α/β) / (2 Gy + α/β)``.  When the plan's dose per
fraction (its highest-dose target's prescription: dose / fractions) differs from ``d_ref`` by more than
the tolerance, the constraint is graded on the structure's voxel-wise EQD2 DVH (rtcheck.grading.biology,
each voxel's dose / the plan's fractions) against that EQD2 limit; a VxGy metric's dose level is
converted the same way, its volume threshold kept.  α/β is the structure's (rtcheck.radiobiology.alpha_beta).
Within the tolerance the physical limit is graded as written.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from rtcheck.dicom.plan import Plan
from rtcheck.metrics.grammar import Biology, MetricKind, parse_metric
from rtcheck.protocol.model import Constraint, Threshold, WrittenFor
from rtcheck.radiobiology.lq import eqd2_from_dose_per_fraction_gy

__all__ = ["FractionationDecision", "eqd2_constraint", "fractionation_decision", "limit_eqd2_gy"]


def limit_eqd2_gy(dose_gy: float, written_for_dose_per_fraction_gy: float, alpha_beta_gy: float) -> float:
    """EQD2 [Gy] of a physical dose [Gy] given in fractions of ``written_for_dose_per_fraction_gy`` [Gy]."""
    return float(eqd2_from_dose_per_fraction_gy(dose_gy, written_for_dose_per_fraction_gy, alpha_beta_gy))


@dataclass(frozen=True)
class FractionationDecision:
    """Whether a constraint written for ``written_for`` is graded in EQD2 on this plan.

    ``plan_dose_per_fraction_gy``: None when the plan states none (``error`` says why; not evaluated).
    """

    written_for: WrittenFor
    plan_dose_per_fraction_gy: float | None
    error: str | None = None

    @property
    def in_eqd2(self) -> bool:
        d = self.plan_dose_per_fraction_gy
        return d is not None and abs(d - self.written_for.dose_per_fraction_gy) > self.written_for.tolerance_gy + 1e-9

    def reason(self, alpha_beta_gy: float, alpha_beta_note: str) -> str:
        tolerance = f"± {self.written_for.tolerance_gy:g} Gy" + (" (rtcheck default)" if self.written_for.tolerance_is_default else "")
        return (
            f"graded in EQD2 (α/β = {alpha_beta_gy:g} Gy, {alpha_beta_note}) because the plan gives "
            f"{self.plan_dose_per_fraction_gy:.3g} Gy/fx, the limit is written for {self.written_for.dose_per_fraction_gy:g} Gy/fx "
            f"{tolerance} ({self.written_for.source})"
        )


def fractionation_decision(written_for: WrittenFor, plan: Plan) -> FractionationDecision:
    """The plan's dose per fraction [Gy]: that of its highest-dose target (TargetPrescriptionDose or beam dose / fractions)."""
    known = [t for t in plan.targets if t.dose_per_fraction_gy and t.total_dose_gy]
    if not known:
        return FractionationDecision(
            written_for, None,
            f"the plan states no dose per fraction, so whether this limit (written for {written_for.dose_per_fraction_gy:g} Gy/fx) "
            "holds as a physical dose is unknown",
        )
    top = max(known, key=lambda t: t.total_dose_gy or 0.0)
    return FractionationDecision(written_for, top.dose_per_fraction_gy)


def _converted(threshold: Threshold | None, d_ref: float, alpha_beta_gy: float) -> Threshold | None:
    if threshold is None:
        return None
    return dataclasses.replace(threshold, value=limit_eqd2_gy(threshold.value, d_ref, alpha_beta_gy))


def eqd2_constraint(constraint: Constraint, alpha_beta_gy: float) -> Constraint | str:
    """``constraint`` as an EQD2 constraint (limit or dose level converted), or why it cannot be (a dose not in Gy)."""
    assert constraint.written_for is not None
    d_ref = constraint.written_for.dose_per_fraction_gy
    metric = constraint.metric
    biology = Biology("EQD2", alpha_beta_gy)
    if metric.kind in (MetricKind.VOLUME_AT_DOSE, MetricKind.VOLUME_COMPLEMENT):
        if metric.argument_unit != "Gy" or metric.argument is None:
            return f"{metric.text}: rtcheck converts a dose level to EQD2 only in Gy (not cGy or % of prescription)"
        level = limit_eqd2_gy(metric.argument, d_ref, alpha_beta_gy)
        prefix = "CV" if metric.kind is MetricKind.VOLUME_COMPLEMENT else "V"
        physical = dataclasses.replace(parse_metric(f"{prefix}{level:.4g}Gy[{metric.output_unit}]"), argument=level)
        return dataclasses.replace(constraint, metric=physical.with_biology(biology), written_for=None)
    if metric.output_unit != "Gy":
        return f"{metric.text}: rtcheck converts a dose limit to EQD2 only in Gy (not cGy or % of prescription)"
    return dataclasses.replace(
        constraint,
        metric=metric.with_biology(biology),
        per_protocol=dataclasses.replace(constraint.per_protocol, value=limit_eqd2_gy(constraint.per_protocol.value, d_ref, alpha_beta_gy)),
        variation_acceptable=_converted(constraint.variation_acceptable, d_ref, alpha_beta_gy),
        written_for=None,
    )
