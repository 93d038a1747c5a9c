"""EQD2/BED metrics for ``rtcheck dvh`` (no protocol): per ROI, the alpha/beta of the metric or the ROI's default."""

from __future__ import annotations

from rtcheck.dicom.dose import DoseGrid
from rtcheck.dvh import DoseVolumeHistogram, EngineOptions, compute_dvh
from rtcheck.errors import SelectionError
from rtcheck.metrics.evaluate import metric_value
from rtcheck.metrics.grammar import Metric
from rtcheck.radiobiology.alpha_beta import roi_alpha_beta_gy
from rtcheck.radiobiology.dose import biological_grid


def course_fractions(plan, given: int | None, metrics: list[Metric]) -> int | None:
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
    """Converted dose grids (by model and alpha/beta) and the DVHs of ROIs on them, made once."""

    def __init__(self, dose: DoseGrid, fractions: int, plane_spacing_mm: float | None, engine: EngineOptions) -> None:
        self.dose = dose
        self.fractions = fractions
        self.spacing = plane_spacing_mm
        self.engine = engine
        self._grids: dict[tuple[str, float], DoseGrid] = {}
        self._dvhs: dict[tuple[int, str, float], DoseVolumeHistogram] = {}

    def value(self, metric: Metric, roi) -> tuple[float, str | None]:
        """(value [Gy EQD2/BED, or % / cc for V metrics], note on a default alpha/beta or None)."""
        assert metric.biology is not None
        note = None
        alpha_beta = metric.biology.alpha_beta_gy
        if alpha_beta is None:
            alpha_beta, reason = roi_alpha_beta_gy(roi.name, roi.interpreted_type)
            note = f"{metric.text}: α/β {alpha_beta:g} Gy ({reason}), {self.fractions} fx"
        model = metric.biology.model
        grid_key = (model, alpha_beta)
        if grid_key not in self._grids:
            self._grids[grid_key] = biological_grid(self.dose, self.fractions, model, alpha_beta)
        key = (roi.number, model, alpha_beta)
        if key not in self._dvhs:
            self._dvhs[key] = compute_dvh(roi, self._grids[grid_key], plane_spacing_mm=self.spacing, options=self.engine)
        return metric_value(metric, self._dvhs[key], None), note
