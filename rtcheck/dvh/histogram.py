"""The dose-volume histogram of one structure: doses in Gy, volumes in cc (cm^3).

The histogram is stored differentially in fine, uniform dose bins starting at
0 Gy, with the exact minimum, maximum and mean kept beside it.  Within a bin
the volume is taken as spread uniformly between the bin's edges (clipped to
[min, max]), so the cumulative DVH is piecewise linear and D/V look-ups are
interpolated, never read off the nearest bin.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class DoseVolumeHistogram:
    """Cumulative-capable DVH of one structure.

    ``differential_cc[k]`` is the volume (cc) whose dose lies in
    ``[k * bin_width_gy, (k + 1) * bin_width_gy)``.  ``volume_cc`` counts only
    the part inside the dose grid; ``outside_volume_cc`` the part outside it.
    """

    name: str
    bin_width_gy: float
    differential_cc: np.ndarray
    volume_cc: float
    min_gy: float
    max_gy: float
    mean_gy: float
    outside_volume_cc: float = 0.0
    roi_number: int | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def total_volume_cc(self) -> float:
        """Structure volume, inside and outside the dose grid (cc)."""
        return self.volume_cc + self.outside_volume_cc

    @property
    def fraction_outside(self) -> float:
        """Fraction (0-1) of the structure's volume lying outside the dose grid."""
        total = self.total_volume_cc
        return self.outside_volume_cc / total if total > 0 else 0.0

    def _cumulative_knots(self) -> tuple[np.ndarray, np.ndarray]:
        """(dose_gy ascending, volume_cc receiving at least that dose) at bin edges clipped to [min, max]."""
        if self.volume_cc <= 0:
            return np.array([0.0]), np.array([0.0])
        w = self.bin_width_gy
        first = int(np.floor(self.min_gy / w))
        last = min(int(np.floor(self.max_gy / w)), self.differential_cc.size - 1)
        diff = self.differential_cc[first : last + 1]
        # Volume at or above each interior edge: everything in the bins from that edge up.
        above = np.cumsum(diff[::-1])[::-1]
        edges = (np.arange(first + 1, last + 1)) * w
        dose = np.concatenate(([self.min_gy], edges, [self.max_gy]))
        volume = np.concatenate(([self.volume_cc], above[1:], [0.0]))
        # An edge equal to the maximum duplicates it: keep the maximum's zero volume.
        keep = np.concatenate((np.diff(dose) > 0, [True]))
        return dose[keep], volume[keep]

    def volume_at_dose_cc(self, dose_gy: float) -> float:
        """Volume (cc, inside the grid) receiving at least ``dose_gy``."""
        if self.volume_cc <= 0:
            return 0.0
        if dose_gy <= self.min_gy:
            return self.volume_cc
        if dose_gy > self.max_gy:
            return 0.0
        dose, volume = self._cumulative_knots()
        return float(np.interp(dose_gy, dose, volume))

    def dose_at_volume_cc(self, volume_cc: float) -> float:
        """Highest dose (Gy) received by at least ``volume_cc`` of the structure.

        ``volume_cc`` must lie in [0, volume_cc]; 0 gives the maximum and the
        whole volume the minimum.
        """
        if volume_cc <= 0:
            return self.max_gy
        if volume_cc >= self.volume_cc or self.max_gy <= self.min_gy:
            return self.min_gy
        dose, volume = self._cumulative_knots()
        # volume decreases with dose; find the segment where it crosses volume_cc.
        k = int(np.searchsorted(-volume, -volume_cc, side="right")) - 1
        k = min(max(k, 0), dose.size - 2)
        v0, v1 = volume[k], volume[k + 1]
        if v0 == v1:
            return float(dose[k + 1])
        t = (v0 - volume_cc) / (v0 - v1)
        return float(dose[k] + t * (dose[k + 1] - dose[k]))

    def cumulative(self) -> tuple[np.ndarray, np.ndarray]:
        """(dose_gy, volume_cc) of the cumulative DVH at its knots, for plotting or export."""
        return self._cumulative_knots()

    def to_dicompyler(self):
        """This DVH as a ``dicompylercore.dvh.DVH`` (cumulative, Gy, cm3) for interoperability."""
        from dicompylercore.dvh import DVH

        n = self.differential_cc.size
        edges = np.arange(n + 1) * self.bin_width_gy
        counts = np.cumsum(self.differential_cc[::-1])[::-1]
        return DVH(counts, edges, dvh_type="cumulative", dose_units="Gy", volume_units="cm3", name=self.name)
