"""DVH metrics in AAPM TG-263 nomenclature: parsing and evaluation."""

from rtcheck.metrics.grammar import Metric, MetricKind, parse_metric
from rtcheck.metrics.evaluate import MetricContext, evaluate_metric, metric_value

__all__ = ["Metric", "MetricContext", "MetricKind", "evaluate_metric", "metric_value", "parse_metric"]
