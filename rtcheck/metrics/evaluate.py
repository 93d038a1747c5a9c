"""Value of a parsed metric on a DVH.

Doses in Gy internally; ``rx_gy`` is the prescription that % doses refer to.
"""

from __future__ import annotations

from rtcheck.dvh.histogram import DoseVolumeHistogram
from rtcheck.errors import MetricUndefinedError
from rtcheck.metrics.grammar import Metric, MetricKind


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


def metric_value(metric: Metric, dvh: DoseVolumeHistogram, rx_gy: float | None = None) -> float:
    """The metric's value in its output unit (Gy, cGy, % of ``rx_gy``, cc or % of volume).

    Raises MetricUndefinedError when the structure has no volume in the dose
    grid, the volume asked for exceeds the structure's, or a % dose has no
    prescription.
    """
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
