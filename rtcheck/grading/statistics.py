"""EQD2/BED metrics for ``rtcheck dvh`` (no protocol): per ROI, the alpha/beta of the metric or the ROI's default."""

from __future__ import annotations

from rtcheck.dicom.plan import Plan
from rtcheck.dicom.structures import Roi
from rtcheck.errors import SelectionError
from rtcheck.grading.biology import biological_grid_key
from rtcheck.grading.dvh_cache import PHYSICAL, DvhCache
from rtcheck.metrics.evaluate import MetricContext, evaluate_metric
from rtcheck.metrics.grammar import Metric
from rtcheck.radiobiology.alpha_beta import roi_alpha_beta_gy
from rtcheck.radiobiology.dose import biological_grid

__all__ = ["BiologicalDvhs", "course_fractions"]


def course_fractions(plan: Plan | None, given: int | None, metrics: list[Metric]) -> int | None:
    """The fractions EQD2/BED metrics use: ``given`` (--fractions), else the plan's single fraction group's."""
    if not any(m.biology is not None for m in metrics):
        return given
    if given is not None:
        return given
    needing = ", ".join(m.text for m in metrics if m.biology is not None)
    if plan is None or not plan.fractions or plan.fractions < 1:
        raise SelectionError(f"{needing} need the course's number of fractions: pass --fractions (no RT Plan gives a valid one)")
    if len(plan.fraction_groups) > 1:
        raise SelectionError(
            f"{needing}: the plan has {len(plan.fraction_groups)} fraction groups, so a voxel's dose per fraction is undefined; "
            "pass --fractions to evaluate the summed dose as one course"
        )
    return plan.fractions


class BiologicalDvhs:
    """EQD2/BED metrics of ROIs on the course's dose converted with ``fractions``, grids and DVHs kept in ``cache``."""

    def __init__(self, cache: DvhCache, fractions: int) -> None:
        self.cache = cache
        self.fractions = fractions

    def value(self, metric: Metric, roi: Roi) -> tuple[float, str | None]:
        """(value [Gy EQD2/BED, or % / cc for V metrics], note on a default alpha/beta or None)."""
        assert metric.biology is not None
        note = None
        alpha_beta = metric.biology.alpha_beta_gy
        if alpha_beta is None:
            alpha_beta, reason = roi_alpha_beta_gy(roi.name, roi.interpreted_type)
            note = f"{metric.text}: α/β {alpha_beta:g} Gy ({reason}), {self.fractions} fx"
        model = metric.biology.model
        dose, fractions, ab = self.cache.grid(PHYSICAL), self.fractions, alpha_beta
        key = biological_grid_key(model, alpha_beta, fractions)
        dvh = self.cache.dvh(roi, key, lambda: biological_grid(dose, fractions, model, ab))
        return evaluate_metric(metric, roi.name, MetricContext({roi.name: dvh}, grid=self.cache.grid(key))), note
