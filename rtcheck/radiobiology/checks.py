"""Grading EQD2/BED constraints, single-course and cumulative (called by rtcheck.evaluation).

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

from typing import Callable

from rtcheck.dicom.dose import DoseGrid
from rtcheck.dicom.planset import PlanSet
from rtcheck.dvh import DoseVolumeHistogram, EngineOptions, compute_dvh, shape_key
from rtcheck.errors import MetricUndefinedError
from rtcheck.metrics.evaluate import metric_value
from rtcheck.radiobiology.alpha_beta import structure_alpha_beta_gy
from rtcheck.radiobiology.dose import biological_grid
from rtcheck.radiobiology.reirradiation import PriorCourse, PriorDose, cumulative_grid, prepare_prior, prior_only_grid
from rtcheck.results import CheckOutcome, Status

# A structure is inside the prior grid when its coverage DVH's minimum is 1 (to float precision).
_COVERED = 1.0 - 1e-6


class BiologicalEvaluation:
    """Converted grids and their DVHs for one plan set, made on demand and kept."""

    def __init__(self, plan_set: PlanSet, prior: PriorCourse | None, plane_spacing_mm: float | None, engine: EngineOptions,
                 structures: dict) -> None:
        self.plan_set = plan_set
        self.structures = structures  # the protocol's StructureSpecs, by name
        self.spacing = plane_spacing_mm
        self.engine = engine
        self.prior: PriorDose | None = prepare_prior(prior, plan_set.dose) if prior is not None else None
        self._grids: dict[tuple, DoseGrid] = {}
        self._dvhs: dict[tuple, DoseVolumeHistogram] = {}

    @property
    def notes(self) -> list[str]:
        if self.prior is None:
            return []
        return [f"re-irradiation: {self.prior.course.describe()} ({self.prior.course.dose_path})", *self.prior.notes]

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

    def _grid(self, key: tuple, make: Callable[[], DoseGrid]) -> DoseGrid:
        if key not in self._grids:
            self._grids[key] = make()
        return self._grids[key]

    def _dvh(self, shape, grid_key: tuple, grid: Callable[[], DoseGrid]) -> DoseVolumeHistogram:
        key = (shape_key(shape), *grid_key)
        if key not in self._dvhs:
            self._dvhs[key] = compute_dvh(shape, self._grid(grid_key, grid), plane_spacing_mm=self.spacing, options=self.engine)
        return self._dvhs[key]

    def outcome(self, constraint, arm, match, physical_dvh: DoseVolumeHistogram | None, dvh_error: str | None, grade) -> CheckOutcome:
        """The outcome of biological ``constraint``; ``grade`` is rtcheck.evaluation's grading of a DVH."""
        metric = constraint.metric
        model = metric.biology.model
        alpha_beta = metric.biology.alpha_beta_gy
        if alpha_beta is None:  # a Constraint built in Python, not by the loader: the same default it would give
            alpha_beta, _ = structure_alpha_beta_gy(self.structures[constraint.structure])
        n, why_not = self._fractions()
        ab_text = f"α/β = {alpha_beta:g} Gy" + (f" ({constraint.alpha_beta_note})" if constraint.alpha_beta_note else "")
        if constraint.cumulative:
            prior = self.prior
            course = prior.course.describe() if prior else "prior course"
            biology = f"cumulative {model} ({course} + current course in {n if n else '?'} fx), {ab_text}"
        else:
            biology = f"{model} of the current course ({n if n else '?'} fx, each voxel's dose / {n if n else '?'} per fraction), {ab_text}"

        def finish(out: CheckOutcome, physical: float | None = None) -> CheckOutcome:
            out.biology = biology
            out.physical_value = physical
            out.marker = None  # a marker would sit on the physical DVH curve: misleading for EQD2/BED
            return out

        if not match.found or physical_dvh is None:
            return finish(grade(constraint, arm, match, None, dvh_error))
        physical = None
        if physical_dvh.volume_cc > 0:
            try:
                physical = metric_value(metric.physical(), physical_dvh, None)
            except MetricUndefinedError:
                physical = None
        if n is None:
            return finish(grade(constraint, arm, match, None, why_not), physical)
        shape = match.shape
        dose = self.plan_set.dose
        current_key = (model, alpha_beta, "current")
        current = self._dvh(shape, current_key, lambda: biological_grid(dose, n, model, alpha_beta))
        outside_pct = physical_dvh.fraction_outside * 100.0
        if not constraint.cumulative:
            return finish(grade(constraint, arm, match, current, None), physical)

        prior = self.prior
        if prior is None:
            return finish(
                grade(constraint, arm, match, None,
                      f"cumulative {model} needs the prior course's dose: give --prior-dose RD.dcm --prior-fractions N "
                      "(CheckOptions.prior); without it the constraint is not evaluated"),
                physical,
            )
        # The coverage DVH is needed only when the prior grid misses part of the current one (rarely).
        if outside_pct <= constraint.max_outside_dose_grid_pct and not prior.covered.all():
            coverage = self._dvh(shape, ("coverage",), lambda: prior.coverage)
            if coverage.volume_cc > 0 and coverage.min_gy < _COVERED:
                return finish(
                    grade(constraint, arm, match, None,
                          f"{match.label!r} reaches beyond the prior dose grid ({prior.course.dose_path}): the prior dose "
                          f"there is unknown (not assumed 0), so cumulative {model} is not evaluated"),
                    physical,
                )
        credit_pct, credit_text = self._credit(constraint, model)
        biology += f"; {credit_text}"
        cumulative = self._dvh(
            shape, (model, alpha_beta, "cumulative", credit_pct),
            lambda: cumulative_grid(dose, n, prior, model, alpha_beta, credit_pct),
        )
        out = grade(constraint, arm, match, cumulative, None)
        if out.status is not Status.NOT_EVALUATED:
            before = self._dvh(shape, (model, alpha_beta, "prior"), lambda: prior_only_grid(dose, prior, model, alpha_beta))
            try:
                now_value = metric_value(metric, current, None)
                prior_value = metric_value(metric, before, None)
                # The metric of a sum is not the sum of the metrics (hot spots need not coincide): both shown.
                biology += (
                    f"; each course alone: current {now_value:.2f} Gy {model}, prior {prior_value:.2f} Gy {model}"
                    + (f" before the {credit_pct:g} % credit" if credit_pct else "")
                )
            except MetricUndefinedError:
                pass
        return finish(out, physical)

    def _credit(self, constraint, model: str) -> tuple[float, str]:
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


def annotate(result, evaluation: BiologicalEvaluation, arm) -> None:
    """Add the re-irradiation notes and the prior dose file to a CheckResult."""
    result.notes += evaluation.notes
    if evaluation.prior is not None:
        result.input_files.append(str(evaluation.prior.course.dose_path))
        if not any(c.cumulative for c in arm.constraints):
            result.notes.append(f"the prior dose was read, but arm {arm.id} has no cumulative constraint: it changes no check")
