"""Linear-quadratic (LQ) model: BED and EQD2 of a uniformly fractionated dose.

Conventions (standard LQ, no time factor):

* ``n`` fractions of equal dose ``d = D / n`` [Gy] each, total dose ``D`` [Gy].
* ``BED = D * (1 + d / (alpha/beta))`` [Gy].
* ``EQD2 = BED / (1 + 2 Gy / (alpha/beta)) = D * (d + alpha/beta) / (2 + alpha/beta)``
  [Gy]: the total dose in 2 Gy fractions with the same LQ effect.

Every function accepts Python floats or numpy arrays (elementwise); arrays in,
arrays out. ``alpha_beta_gy`` must be > 0 and ``n_fractions`` >= 1.
"""

from __future__ import annotations

from typing import Union

import numpy as np

ArrayOrFloat = Union[float, np.ndarray]

#: Reference dose per fraction of EQD2 [Gy].
REFERENCE_DOSE_PER_FRACTION_GY = 2.0


def _check_fractions(n_fractions: ArrayOrFloat) -> None:
    # alpha/beta is checked by _with_dose_per_fraction, which every formula goes through.
    if np.any(np.asarray(n_fractions, dtype=float) < 1):
        raise ValueError(f"number of fractions must be >= 1, got {n_fractions!r}")


def _out(value: np.ndarray, *inputs: ArrayOrFloat) -> ArrayOrFloat:
    """Return a float when every input was a scalar, else the array."""
    if all(np.ndim(x) == 0 for x in inputs):
        return float(value)
    return value


def _with_dose_per_fraction(total_dose_gy: ArrayOrFloat, dose_per_fraction_gy: ArrayOrFloat,
                            alpha_beta_gy: ArrayOrFloat) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if np.any(np.asarray(alpha_beta_gy, dtype=float) <= 0):
        raise ValueError(f"alpha/beta must be > 0 Gy, got {alpha_beta_gy!r}")
    return (np.asarray(total_dose_gy, dtype=float), np.asarray(dose_per_fraction_gy, dtype=float),
            np.asarray(alpha_beta_gy, dtype=float))


def _per_fraction(total_dose_gy: ArrayOrFloat, n_fractions: ArrayOrFloat) -> ArrayOrFloat:
    value = np.asarray(total_dose_gy, dtype=float) / np.asarray(n_fractions, dtype=float)
    return _out(value, total_dose_gy, n_fractions)


def bed_gy(total_dose_gy: ArrayOrFloat, n_fractions: ArrayOrFloat,
           alpha_beta_gy: ArrayOrFloat) -> ArrayOrFloat:
    """Biologically effective dose [Gy] of ``total_dose_gy`` [Gy] in ``n_fractions``.

    ``BED = D * (1 + (D / n) / (alpha/beta))``.
    """
    _check_fractions(n_fractions)
    return bed_from_dose_per_fraction_gy(total_dose_gy, _per_fraction(total_dose_gy, n_fractions), alpha_beta_gy)


def eqd2_gy(total_dose_gy: ArrayOrFloat, n_fractions: ArrayOrFloat,
            alpha_beta_gy: ArrayOrFloat) -> ArrayOrFloat:
    """Equivalent dose in 2 Gy fractions [Gy] of ``total_dose_gy`` [Gy] in ``n_fractions``.

    ``EQD2 = D * (D / n + alpha/beta) / (2 Gy + alpha/beta)``.
    """
    _check_fractions(n_fractions)
    return eqd2_from_dose_per_fraction_gy(total_dose_gy, _per_fraction(total_dose_gy, n_fractions), alpha_beta_gy)


def eqd2_from_dose_per_fraction_gy(total_dose_gy: ArrayOrFloat,
                                   dose_per_fraction_gy: ArrayOrFloat,
                                   alpha_beta_gy: ArrayOrFloat) -> ArrayOrFloat:
    """EQD2 [Gy] given the total dose and the dose per fraction (both [Gy])."""
    d_total, d, ab = _with_dose_per_fraction(total_dose_gy, dose_per_fraction_gy, alpha_beta_gy)
    return _out(d_total * (d + ab) / (REFERENCE_DOSE_PER_FRACTION_GY + ab), total_dose_gy, dose_per_fraction_gy, alpha_beta_gy)


def bed_from_dose_per_fraction_gy(total_dose_gy: ArrayOrFloat,
                                  dose_per_fraction_gy: ArrayOrFloat,
                                  alpha_beta_gy: ArrayOrFloat) -> ArrayOrFloat:
    """BED [Gy] given the total dose and the dose per fraction (both [Gy])."""
    d_total, d, ab = _with_dose_per_fraction(total_dose_gy, dose_per_fraction_gy, alpha_beta_gy)
    return _out(d_total * (1.0 + d / ab), total_dose_gy, dose_per_fraction_gy, alpha_beta_gy)


def eqd2_to_bed_gy(eqd2: ArrayOrFloat, alpha_beta_gy: ArrayOrFloat) -> ArrayOrFloat:
    """BED [Gy] of an EQD2 [Gy]: ``BED = EQD2 * (1 + 2 Gy / (alpha/beta))``."""
    ab = np.asarray(alpha_beta_gy, dtype=float)
    value = np.asarray(eqd2, dtype=float) * (1.0 + REFERENCE_DOSE_PER_FRACTION_GY / ab)
    return _out(value, eqd2, alpha_beta_gy)


def bed_to_eqd2_gy(bed: ArrayOrFloat, alpha_beta_gy: ArrayOrFloat) -> ArrayOrFloat:
    """EQD2 [Gy] of a BED [Gy]: ``EQD2 = BED / (1 + 2 Gy / (alpha/beta))``."""
    ab = np.asarray(alpha_beta_gy, dtype=float)
    value = np.asarray(bed, dtype=float) / (1.0 + REFERENCE_DOSE_PER_FRACTION_GY / ab)
    return _out(value, bed, alpha_beta_gy)
