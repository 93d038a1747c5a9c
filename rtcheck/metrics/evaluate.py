"""Value of a parsed metric in a context: the DVHs of the plan's structures and the dose grid.

Doses in Gy internally; ``rx_gy`` is the prescription that % doses refer to.
Every metric of the grammar today reads one structure's DVH; the context holds
all of them (and the grid) so that a metric of two structures (a conformity or
gradient index) reads what it needs from the same place.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from rtcheck.dvh.histogram import DoseVolumeHistogram
from rtcheck.errors import MetricUndefinedError
from rtcheck.metrics.grammar import Metric, MetricKind

if TYPE_CHECKING:
    from rtcheck.dicom.dose import DoseGrid

__all__ = ["MetricContext", "evaluate_metric", "metric_value"]


@dataclass(frozen=True)
class MetricContext:
    """What a metric may read: the DVH of each structure by name and the dose grid (Gy, mm) they were computed on
    (None when the caller has only DVHs)."""

    dvhs: Mapping[str, DoseVolumeHistogram] = field(default_factory=dict)
    grid: "DoseGrid | None" = None

    def dvh(self, structure: str) -> DoseVolumeHistogram:
        try:
            return self.dvhs[structure]
        except KeyError:
            raise MetricUndefinedError(f"no DVH of {structure} in the metric's context") from None


def evaluate_metric(metric: Metric, structure: str, context: MetricContext, rx_gy: float | None = None) -> float:
    """The value of ``metric`` of ``structure`` in its output unit (Gy, cGy, % of ``rx_gy``, cc or % of volume).

    Raises MetricUndefinedError when the context has no DVH of the structure, the
    structure has no volume in the dose grid, the volume asked for exceeds the
    structure's, or a % dose has no prescription.
    """
    return _on_dvh(metric, context.dvh(structure), rx_gy)


def metric_value(metric: Metric, dvh: DoseVolumeHistogram, rx_gy: float | None = None) -> float:
    """:func:`evaluate_metric` in the context of one DVH (``rtcheck dvh``, tests)."""
    return evaluate_metric(metric, dvh.name, MetricContext({dvh.name: dvh}), rx_gy)


def _dose_in_gy(metric: Metric, rx_gy: float | None) -> float:
    assert metric.argument is not None
    if metric.argument_unit == "Gy":
        return metric.argument
    if metric.argument_unit == "cGy":
        return metric.argument / 100.0
    if rx_gy is None:
        raise MetricUndefinedError(f"{metric.text} needs a prescription dose")
    return metric.argument / 100.0 * rx_gy


def _express_dose(value_gy: float, metric: Metric, rx_gy: float | None) -> float:
    if metric.output_unit == "Gy":
        return value_gy
    if metric.output_unit == "cGy":
        return value_gy * 100.0
    if rx_gy is None:
        raise MetricUndefinedError(f"{metric.text} needs a prescription dose")
    return value_gy / rx_gy * 100.0


def _on_dvh(metric: Metric, dvh: DoseVolumeHistogram, rx_gy: float | None) -> float:
    volume = dvh.volume_cc
    if volume <= 0:
        raise MetricUndefinedError(f"{dvh.name} has no volume inside the dose grid")
    if rx_gy is not None and rx_gy <= 0:
        raise MetricUndefinedError(f"prescription dose {rx_gy} Gy is not positive")
    kind = metric.kind
    if kind is MetricKind.MEAN:
        return _express_dose(dvh.mean_gy, metric, rx_gy)
    if kind is MetricKind.MAX:
        return _express_dose(dvh.max_gy, metric, rx_gy)
    if kind is MetricKind.MIN:
        return _express_dose(dvh.min_gy, metric, rx_gy)

    assert metric.argument is not None
    if kind in (MetricKind.DOSE_AT_VOLUME, MetricKind.DOSE_COMPLEMENT):
        asked_cc = metric.argument if metric.argument_unit == "cc" else metric.argument / 100.0 * volume
        if asked_cc > volume * (1 + 1e-9):
            raise MetricUndefinedError(f"{metric.text}: {dvh.name} is only {volume:.3f} cc")
        hottest_cc = asked_cc if kind is MetricKind.DOSE_AT_VOLUME else volume - asked_cc
        return _express_dose(dvh.dose_at_volume_cc(hottest_cc), metric, rx_gy)

    receiving_cc = dvh.volume_at_dose_cc(_dose_in_gy(metric, rx_gy))
    value_cc = receiving_cc if kind is MetricKind.VOLUME_AT_DOSE else volume - receiving_cc
    return value_cc if metric.output_unit == "cc" else value_cc / volume * 100.0
