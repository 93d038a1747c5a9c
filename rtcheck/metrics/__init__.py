"""DVH metrics in AAPM TG-263 nomenclature: parsing and evaluation."""

from rtcheck.metrics.grammar import Metric, MetricKind, parse_metric
from rtcheck.metrics.evaluate import metric_value

__all__ = ["Metric", "MetricKind", "parse_metric", "metric_value"]
