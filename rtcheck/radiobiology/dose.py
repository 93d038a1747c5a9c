"""Per-voxel LQ conversion of a dose grid to EQD2 or BED.

Each voxel's dose ``D`` [Gy] was delivered in the course's ``n`` fractions,
so its dose per fraction is its own ``D / n`` (not the prescription's):

* ``EQD2_vox = D * (D / n + a/b) / (2 Gy + a/b)``
* ``BED_vox  = D * (1 + D / (n * a/b))``

The converted grid has the geometry of the physical one; the DVH engine then
runs unchanged on it (it interpolates the converted values between voxel
centres).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from rtcheck.dicom.dose import DoseGrid
from rtcheck.radiobiology.lq import bed_gy, eqd2_gy

MODELS = ("EQD2", "BED")


def biological_dose_gy(dose_gy: np.ndarray, n_fractions: int, model: str, alpha_beta_gy: float) -> np.ndarray:
    """``dose_gy`` [Gy, total over ``n_fractions``] converted voxel by voxel to ``model`` (EQD2 or BED) [Gy]."""
    if model == "EQD2":
        return np.asarray(eqd2_gy(np.asarray(dose_gy, dtype=float), n_fractions, alpha_beta_gy))
    if model == "BED":
        return np.asarray(bed_gy(np.asarray(dose_gy, dtype=float), n_fractions, alpha_beta_gy))
    raise ValueError(f"unknown radiobiological model {model!r}; expected one of {', '.join(MODELS)}")


def with_dose(grid: DoseGrid, dose_gy: np.ndarray, note: str) -> DoseGrid:
    """A grid of ``grid``'s geometry holding ``dose_gy`` instead (a new object: caches are not shared)."""
    return dataclasses.replace(grid, dose_gy=np.ascontiguousarray(dose_gy, dtype=float), notes=[*grid.notes, note])


def biological_grid(grid: DoseGrid, n_fractions: int, model: str, alpha_beta_gy: float) -> DoseGrid:
    """``grid`` converted voxel by voxel to EQD2 or BED [Gy] for a course of ``n_fractions``."""
    converted = biological_dose_gy(grid.dose_gy, n_fractions, model, alpha_beta_gy)
    return with_dose(grid, converted, f"{model} per voxel, {n_fractions} fx, alpha/beta {alpha_beta_gy:g} Gy")
