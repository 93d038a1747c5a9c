"""The one cache of a check's DVHs: each computed once per (structure shape, dose grid).

A dose grid is named by a key: :data:`PHYSICAL` for the plan set's own dose,
a tuple for a grid derived from it (EQD2/BED, cumulative with a prior course),
which the cache makes on first use and keeps.  Shapes are keyed by
:func:`rtcheck.dvh.shape_key` (an ROI's number, a derived structure's name).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable

import numpy as np

from rtcheck.dicom.dose import DoseGrid
from rtcheck.dicom.structures import Roi
from rtcheck.dvh import Combination, DoseVolumeHistogram, EngineOptions, compute_dvh, shape_key

__all__ = ["PHYSICAL", "DvhCache", "unusable_reason"]

PHYSICAL: Hashable = "physical"


def unusable_reason(shape: Roi | Combination) -> str | None:
    """Why no DVH can be computed for ``shape`` (an ROI, or one of its ROIs, without volume), else None."""
    unusable = [roi for roi in (shape.rois() if isinstance(shape, Combination) else [shape]) if not roi.is_volume]
    if not unusable:
        return None
    return "; ".join(f"ROI {roi.name!r} has no volume: {roi.unusable_reason}" for roi in unusable)


class DvhCache:
    """DVHs of one plan set's structures on its dose grid and on grids derived from it (doses Gy, volumes cc)."""

    def __init__(self, dose: DoseGrid, engine: EngineOptions = EngineOptions(), *, slice_positions_mm: np.ndarray | None = None) -> None:
        self.slice_positions_mm = slice_positions_mm
        self.engine = engine
        self._grids: dict[Hashable, DoseGrid] = {PHYSICAL: dose}
        self._dvhs: dict[tuple[object, Hashable], DoseVolumeHistogram] = {}

    def grid(self, key: Hashable, make: Callable[[], DoseGrid] | None = None) -> DoseGrid:
        """The grid named ``key``, made by ``make`` the first time it is asked for."""
        if key not in self._grids:
            if make is None:
                raise KeyError(f"no dose grid {key!r} and no way to make it")
            self._grids[key] = make()
        return self._grids[key]

    def dvh(self, shape: Roi | Combination, grid_key: Hashable = PHYSICAL, make_grid: Callable[[], DoseGrid] | None = None) -> DoseVolumeHistogram:
        """The DVH of ``shape`` on grid ``grid_key`` (made with ``make_grid`` when new), computed once."""
        key = (shape_key(shape), grid_key)
        if key not in self._dvhs:
            grid = self.grid(grid_key, make_grid)
            self._dvhs[key] = compute_dvh(shape, grid, slice_positions_mm=self.slice_positions_mm, options=self.engine)
        return self._dvhs[key]
