"""Dose-volume histograms: one interface, ``compute_dvh(roi_or_combination, dose) -> DoseVolumeHistogram``
(``compute_dvhs`` for several at once).

The engine behind it may change; callers only rely on this module's names.
"""

from rtcheck.dvh.engine import Combination, EngineOptions, compute_dvh, compute_dvhs, shape_key
from rtcheck.dvh.histogram import DoseVolumeHistogram

__all__ = ["Combination", "DoseVolumeHistogram", "EngineOptions", "compute_dvh", "compute_dvhs", "shape_key"]
