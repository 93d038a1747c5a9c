"""Re-irradiation: the prior course's RT Dose added to the current course in EQD2/BED.

Steps (each a function here):

1. ``load_prior_dose``: read the prior RT Dose (read-only); it must be an RT
   Dose of a whole course in the current plan's Frame of Reference (rtcheck
   does no registration). Its DoseSummationType is read as PS3.3 defines it
   (:mod:`rtcheck.dicom.summation`): PLAN and MULTI_PLAN are the course;
   FRACTION is the whole delivery of one fraction group, taken as the course
   with a note; FRACTION_SESSION is one session, multiplied by
   ``--prior-fractions``; beam, brachy, control-point and record doses are
   refused.
2. ``resample_onto``: the prior dose at the current grid's voxel centres,
   by ``rtcheck.dicom.dose``'s sampler (trilinear; its edge rule: a centre
   within half a prior voxel beyond the prior grid's outermost centres takes
   the edge value, as in the DVH engine); farther out the prior dose is
   *unknown*, not zero: those voxels are marked uncovered, and a structure
   touching them is not evaluated for cumulative metrics.
3. ``cumulative_grid``: EQD2 (or BED) of each course per voxel, each with its
   own dose per fraction (voxel dose / the course's fractions), summed; the
   prior term is multiplied by ``1 - credit`` when a recovery credit applies.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rtcheck.dicom.dose import DoseGrid, dose_on_lattice, parse_dose
from rtcheck.dicom.io import read_dataset
from rtcheck.dicom.sop import SOP_CLASS_KINDS, DoseScope, DoseSummation, RTObjectKind
from rtcheck.dicom.summation import course_factor, summation_of
from rtcheck.errors import InputError
from rtcheck.radiobiology.dose import biological_dose_gy, with_dose


@dataclass(frozen=True)
class PriorCourse:
    """The prior course: its RT Dose file, its number of fractions and (optionally) the months between the courses."""

    dose_path: Path
    fractions: int
    interval_months: float | None = None

    def describe(self) -> str:
        interval = f", {self.interval_months:g} months before" if self.interval_months is not None else ""
        return f"prior course {Path(self.dose_path).name} in {self.fractions} fx{interval}"


@dataclass
class PriorDose:
    """The prior course's dose on the current grid.

    ``dose_gy``: prior physical dose [Gy] at the current voxel centres (0 where
    uncovered, never used there); ``covered``: True where the prior grid gives
    the dose; ``coverage``: 1.0/0.0 of ``covered`` on the current grid's
    geometry, whose DVH tells whether a structure lies wholly in the prior grid.
    """

    course: PriorCourse
    grid: DoseGrid
    dose_gy: np.ndarray
    covered: np.ndarray
    coverage: DoseGrid
    notes: list[str] = field(default_factory=list)


def load_prior_dose(course: PriorCourse) -> DoseGrid:
    """Read the prior course's RT Dose (read-only) and build its grid; InputError naming the file when unusable."""
    path = Path(course.dose_path)
    if not path.is_file():
        raise InputError(path, "prior dose file does not exist")
    ds = read_dataset(path)
    kind = SOP_CLASS_KINDS.get(str(ds.get("SOPClassUID", "")))
    if kind is not RTObjectKind.DOSE:
        raise InputError(path, f"the prior dose must be an RT Dose, not {kind.value if kind else 'SOP class ' + str(ds.get('SOPClassUID', '?'))}")
    if course.fractions < 1:
        raise InputError(path, f"prior course fractions must be >= 1, got {course.fractions}")
    summation, note = summation_of(path, str(ds.get("DoseSummationType", "")).upper())
    if summation.scope is DoseScope.BEAMS:
        raise InputError(path, f"prior dose has DoseSummationType {summation.value}, the dose of some beams; the whole prior course's dose (PLAN) is needed")
    grid = parse_dose(ds, path)
    grid.notes += [note] if note else []
    if summation is DoseSummation.FRACTION:
        grid.notes.append(f"{path}: DoseSummationType FRACTION, the whole delivery of one fraction group, taken as the whole prior course")
    factor, note = course_factor(path, summation, course.fractions, "--prior-fractions")
    if factor != 1.0:
        grid.dose_gy *= factor
        grid.notes.append(note + "; correct only when the prior plan had one fraction group")
    return grid


def resample_onto(prior: DoseGrid, current: DoseGrid) -> tuple[np.ndarray, np.ndarray]:
    """(prior dose [Gy] at ``current``'s voxel centres, 0 where not covered; covered mask).

    Raises InputError when the Frames of Reference differ: registration is not supported.
    """
    if prior.frame_of_reference_uid != current.frame_of_reference_uid:
        raise InputError(
            prior.paths[0] if prior.paths else None,
            f"registration is not supported: the prior dose's Frame of Reference {prior.frame_of_reference_uid or '(none)'} "
            f"differs from the current plan's {current.frame_of_reference_uid or '(none)'}; rtcheck sums doses only in one "
            "Frame of Reference (register and resample the prior dose in the planning system first)",
        )
    values = dose_on_lattice(prior, current.x_mm, current.y_mm, current.z_mm)
    covered = ~np.isnan(values)
    values[~covered] = 0.0
    return values, covered


def prepare_prior(course: PriorCourse, current: DoseGrid) -> PriorDose:
    """Load the prior course's dose and resample it onto ``current``."""
    grid = load_prior_dose(course)
    on_current, covered = resample_onto(grid, current)
    coverage = with_dose(current, covered.astype(float), "prior dose coverage (1 covered, 0 not)")
    notes = list(grid.notes)
    if not covered.all():
        notes.append(
            f"{course.dose_path}: the prior dose grid covers {covered.mean() * 100:.1f} % of the current dose grid's voxels; "
            "structures reaching beyond it are not evaluated for cumulative metrics"
        )
    return PriorDose(course, grid, on_current, covered, coverage, notes)


def cumulative_grid(
    current: DoseGrid, current_fractions: int, prior: PriorDose, model: str, alpha_beta_gy: float, credit_pct: float = 0.0
) -> DoseGrid:
    """Sum per voxel of the current course's and the prior course's EQD2 (or BED) [Gy].

    Each course is converted with its own fractions; the prior term is scaled by
    ``1 - credit_pct / 100`` (recovery credit).  Uncovered voxels hold the
    current course only: callers must not evaluate structures touching them.
    """
    now = biological_dose_gy(current.dose_gy, current_fractions, model, alpha_beta_gy)
    before = biological_dose_gy(prior.dose_gy, prior.course.fractions, model, alpha_beta_gy)
    total = now + (1.0 - credit_pct / 100.0) * before
    return with_dose(current, total, f"cumulative {model} with the prior course, alpha/beta {alpha_beta_gy:g} Gy")


def prior_only_grid(current: DoseGrid, prior: PriorDose, model: str, alpha_beta_gy: float) -> DoseGrid:
    """The prior course's EQD2 (or BED) [Gy] alone on the current grid (for reporting each course's share)."""
    before = biological_dose_gy(prior.dose_gy, prior.course.fractions, model, alpha_beta_gy)
    return with_dose(current, before, f"prior course {model}, alpha/beta {alpha_beta_gy:g} Gy")
