"""Dose-volume histograms: one interface, ``compute_dvh(roi, dose) -> DoseVolumeHistogram``.

The engine behind it may change; callers only rely on this module's names.
"""

from rtcheck.dvh.engine import EngineOptions, compute_dvh
from rtcheck.dvh.histogram import DoseVolumeHistogram

__all__ = ["DoseVolumeHistogram", "EngineOptions", "compute_dvh"]
