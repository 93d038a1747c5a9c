"""Grading EQD2/BED constraints, single-course and cumulative (called by rtcheck.grading.check).

A biological constraint is graded on the DVH of its structure computed by the
unchanged DVH engine on a converted dose grid (``rtcheck.radiobiology.dose``):
the current course's EQD2/BED, or for a ``cumulative`` constraint the sum of
the current and prior courses' EQD2/BED (``rtcheck.radiobiology.reirradiation``).
Thresholds are in EQD2 Gy / BED Gy.  Each outcome also carries the same metric
on the current course's physical dose (``physical_value``) and a ``biology``
text saying what was computed.

Not evaluated, with the reason: a plan without a known number of fractions or
with several fraction groups (a voxel's dose per fraction is then undefined);
a cumulative constraint without the prior dose; a structure reaching beyond the
prior dose grid (the prior dose there is unknown, never taken as 0).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Hashable

from rtcheck.dicom.dose import DoseGrid
from rtcheck.dicom.planset import PlanSet
from rtcheck.dicom.structures import Roi
from rtcheck.dvh import Combination, DoseVolumeHistogram
from rtcheck.errors import MetricUndefinedError
from rtcheck.grading.constraints import constraint_outcome
from rtcheck.grading.dvh_cache import DvhCache
from rtcheck.metrics.evaluate import MetricContext, evaluate_metric
from rtcheck.protocol.matching import StructureMatch
from rtcheck.protocol.model import Arm, Constraint, StructureSpec
from rtcheck.radiobiology.alpha_beta import structure_alpha_beta_gy
from rtcheck.radiobiology.dose import biological_grid
from rtcheck.radiobiology.reirradiation import PriorCourse, PriorDose, cumulative_grid, prepare_prior, prior_only_grid
from rtcheck.results import CheckOutcome, Status

__all__ = ["BiologicalEvaluation", "biological_grid_key"]

# A structure is inside the prior grid when its coverage DVH's minimum is 1 (to float precision).
_COVERED = 1.0 - 1e-6


def biological_grid_key(model: str, alpha_beta_gy: float, fractions: int) -> Hashable:
    """The DvhCache key of the course's dose converted to ``model`` (EQD2/BED) voxel by voxel."""
    return ("biological", model, alpha_beta_gy, fractions)


class BiologicalEvaluation:
    """The biological constraints of one plan set, graded on converted grids kept in the check's DvhCache."""

    def __init__(self, plan_set: PlanSet, prior: PriorCourse | None, cache: DvhCache, structures: dict[str, StructureSpec]) -> None:
        self.plan_set = plan_set
        self.structures = structures  # the protocol's StructureSpecs, by name
        self.cache = cache
        self.prior: PriorDose | None = prepare_prior(prior, plan_set.dose) if prior is not None else None

    @property
    def notes(self) -> list[str]:
        """The re-irradiation notes of a check with a prior course."""
        if self.prior is None:
            return []
        return [f"re-irradiation: {self.prior.course.describe()} ({self.prior.course.dose_path})", *self.prior.notes]

    def input_files(self) -> list[str]:
        """The prior course's RT Dose, when one was read."""
        return [str(self.prior.course.dose_path)] if self.prior is not None else []

    def arm_notes(self, arm: Arm) -> list[str]:
        """A note when the prior dose was read but no constraint of ``arm`` uses it."""
        if self.prior is not None and not any(c.cumulative or c.prior_course for c in arm.constraints):
            return [f"the prior dose was read, but arm {arm.id} has no cumulative constraint: it changes no check"]
        return []

    def _fractions(self) -> tuple[int | None, str]:
        plan = self.plan_set.plan
        if plan is None or not plan.fractions or plan.fractions < 1:
            return None, "the plan states no valid number of fractions, so a voxel's dose per fraction is unknown"
        if len(plan.fraction_groups) > 1:
            return None, (
                f"the plan has {len(plan.fraction_groups)} fraction groups: a voxel's dose per fraction is undefined "
                "for a sum of differently fractionated groups"
            )
        return plan.fractions, ""

    def _on(self, shape: Roi | Combination, structure: str, grid_key: Hashable, make: Callable[[], DoseGrid]) -> MetricContext:
        """The context of ``structure``'s DVH on the converted grid ``grid_key``."""
        dvh = self.cache.dvh(shape, grid_key, make)
        return MetricContext({structure: dvh}, grid=self.cache.grid(grid_key))

    def outcome(
        self, constraint: Constraint, arm: Arm, match: StructureMatch, physical_dvh: DoseVolumeHistogram | None, dvh_error: str | None
    ) -> CheckOutcome:
        """The outcome of biological ``constraint``, with the physical DVH of its structure (None: ``dvh_error``)."""
        metric = constraint.metric
        assert metric.biology is not None
        model = metric.biology.model
        alpha_beta = metric.biology.alpha_beta_gy
        if alpha_beta is None:  # a Constraint built in Python, not by the loader: the same default it would give
            alpha_beta, _ = structure_alpha_beta_gy(self.structures[constraint.structure])
        n, why_not = self._fractions()
        ab_text = f"α/β = {alpha_beta:g} Gy" + (f" ({constraint.alpha_beta_note})" if constraint.alpha_beta_note else "")
        course = self.prior.course.describe() if self.prior else "prior course"
        if constraint.prior_course:
            biology = f"{model} of the prior course alone ({course}), {ab_text}"
        elif constraint.cumulative:
            biology = f"cumulative {model} ({course} + current course in {n if n else '?'} fx), {ab_text}"
        else:
            biology = f"{model} of the current course ({n if n else '?'} fx, each voxel's dose / {n if n else '?'} per fraction), {ab_text}"
        structure = constraint.structure

        def graded(context: MetricContext | None, error: str | None) -> CheckOutcome:
            return constraint_outcome(constraint, arm, match, context or MetricContext(), error)

        def finish(out: CheckOutcome, physical: float | None = None) -> CheckOutcome:
            # No marker: it would sit on the physical DVH curve, misleading for EQD2/BED.
            return dataclasses.replace(out, biology=biology, physical_value=physical, marker=None)

        if not match.found or physical_dvh is None or match.shape is None:
            return finish(graded(None, dvh_error))
        physical = None
        if physical_dvh.volume_cc > 0:
            try:
                physical = evaluate_metric(metric.physical(), structure, MetricContext({structure: physical_dvh}, grid=self.plan_set.dose))
            except MetricUndefinedError:
                physical = None
        if n is None and not constraint.prior_course:
            return finish(graded(None, why_not), physical)
        shape = match.shape
        dose = self.plan_set.dose
        if constraint.prior_course:
            # No physical value beside it: the current course's would be misread as the prior's.
            return finish(self._prior_course_outcome(constraint, match, physical_dvh, model, alpha_beta, graded))
        assert n is not None
        fractions = n
        current = self._on(shape, structure, biological_grid_key(model, alpha_beta, fractions),
                           lambda: biological_grid(dose, fractions, model, alpha_beta))
        if not constraint.cumulative:
            return finish(graded(current, None), physical)

        prior = self.prior
        why_not_prior = self._prior_missing(constraint, match, physical_dvh, f"cumulative {model}")
        if prior is None or why_not_prior:
            return finish(graded(None, why_not_prior), physical)
        credit_pct, credit_text = self._credit(constraint, model)
        biology += f"; {credit_text}"
        cumulative = self._on(
            shape, structure, ("cumulative", model, alpha_beta, fractions, credit_pct),
            lambda: cumulative_grid(dose, fractions, prior, model, alpha_beta, credit_pct),
        )
        out = graded(cumulative, None)
        if out.status is not Status.NOT_EVALUATED:
            before = self._on(shape, structure, ("prior", model, alpha_beta), lambda: prior_only_grid(dose, prior, model, alpha_beta))
            try:
                now_value = evaluate_metric(metric, structure, current)
                prior_value = evaluate_metric(metric, structure, before)
                # The metric of a sum is not the sum of the metrics (hot spots need not coincide): both shown.
                biology += (
                    f"; each course alone: current {now_value:.2f} Gy {model}, prior {prior_value:.2f} Gy {model}"
                    + (f" before the {credit_pct:g} % credit" if credit_pct else "")
                )
            except MetricUndefinedError:
                pass
        return finish(out, physical)

    def _prior_missing(self, constraint: Constraint, match: StructureMatch, physical_dvh: DoseVolumeHistogram, what: str) -> str:
        """Why ``what`` cannot use the prior course's dose on ``match``'s structure ("" when it can)."""
        prior = self.prior
        if prior is None:
            return (f"{what} needs the prior course's dose: give --prior-dose RD.dcm --prior-fractions N "
                    "(CheckOptions.prior); without it the constraint is not evaluated")
        # The coverage DVH is needed only when the prior grid misses part of the current one (rarely).
        if physical_dvh.fraction_outside * 100.0 <= constraint.max_outside_dose_grid_pct and not prior.covered.all():
            assert match.shape is not None
            coverage = self.cache.dvh(match.shape, ("prior coverage",), lambda: prior.coverage)
            if coverage.volume_cc > 0 and coverage.min_gy < _COVERED:
                return (f"{match.label!r} reaches beyond the prior dose grid ({prior.course.dose_path}): the prior dose "
                        f"there is unknown (not assumed 0), so {what} is not evaluated")
        return ""

    def _prior_course_outcome(
        self, constraint: Constraint, match: StructureMatch, physical_dvh: DoseVolumeHistogram, model: str, alpha_beta: float,
        graded: Callable[[MetricContext | None, str | None], CheckOutcome],
    ) -> CheckOutcome:
        """``constraint`` graded on the prior course's EQD2/BED alone (each course's limit of re-irradiation)."""
        assert match.shape is not None
        why_not = self._prior_missing(constraint, match, physical_dvh, f"the prior course's {model}")
        prior = self.prior
        if prior is None or why_not:
            return graded(None, why_not)
        dose = self.plan_set.dose
        return graded(self._on(match.shape, constraint.structure, ("prior", model, alpha_beta),
                               lambda: prior_only_grid(dose, prior, model, alpha_beta)), None)

    def _credit(self, constraint: Constraint, model: str) -> tuple[float, str]:
        """(credit % of the prior course's EQD2/BED, text for reports)."""
        credit = constraint.recovery_credit
        interval = self.prior.course.interval_months if self.prior else None
        if credit is None:
            return 0.0, "no recovery credit (the protocol states none for this constraint)"
        if interval is None:
            return 0.0, f"recovery credit ({credit.describe()}; {credit.source}) not applied: the interval between courses was not given (--prior-interval-months)"
        pct = credit.credit_pct(interval)
        if pct <= 0:
            return 0.0, f"no recovery credit after {interval:g} months (protocol: {credit.describe()}; {credit.source})"
        return pct, f"recovery credit applied: {pct:g} % of the prior course's {model} forgiven after {interval:g} months (protocol: {credit.describe()}; {credit.source})"
