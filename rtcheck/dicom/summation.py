"""The RT Doses of one plan -> its course dose, by DoseSummationType as PS3.3 defines it.

PS3.3 C.8.8.3 (RT Dose Module), Dose Summation Type (3004,000A), enumerated values:

- PLAN: "dose calculated for an entire RT Plan";
- MULTI_PLAN: "dose calculated for 2 or more RT Plans";
- FRACTION: "dose calculated for a single Fraction Group within the referenced RT Plan"
  (the entire delivery of that fraction group, all its fractions);
- BEAM: "dose calculated for one or more Beams within the referenced RT Plan";
- BRACHY: "dose calculated for one or more Brachy Application Setups within the referenced RT Plan";
- FRACTION_SESSION, BEAM_SESSION, BRACHY_SESSION: the same "for a single session ("fraction")";
- CONTROL_POINT: "dose calculated for one or more Control Points within a Beam for a single fraction";
- RECORD: "dose calculated for the RT Beams Treatment Record".

So a FRACTION dose is never multiplied by the number of fractions; a *_SESSION dose is
(one session times the number of fractions planned of its fraction group).  CONTROL_POINT
and RECORD doses are not a planned course and are refused.

Which doses make the course when several reference one plan: a whole-plan dose
(PLAN, MULTI_PLAN) when there is one; else the fraction-group doses (one per fraction
group, summed); else the beam doses (summed).  Doses of a lower kind given as well are
compared with the one used (:class:`DoseComparison`), never added to it.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rtcheck.dicom.dose import DoseGrid, dose_on_lattice, load_dose, resampled_sum, sum_doses
from rtcheck.dicom.plan import FractionGroup, Plan
from rtcheck.dicom.references import ObjectReferences, beam_dose_gap
from rtcheck.dicom.sop import DoseScope, DoseSummation
from rtcheck.errors import InputError, LinkError, MissingObjectError, UnsupportedObjectError

__all__ = ["CourseDose", "DoseComparison", "DoseScope", "DoseSummation", "course_dose", "course_factor", "summation_of"]


_REFUSED = {
    DoseSummation.CONTROL_POINT: "the dose of some control points of one fraction, not a planned course",
    DoseSummation.RECORD: "the dose of a treatment record (delivered), not a planned course",
}


def summation_of(path: Path, written: str) -> tuple[DoseSummation, str]:
    """The DoseSummationType of an RT Dose as written (upper case, "" when absent) and a note, or
    UnsupportedObjectError naming ``path``: CONTROL_POINT, RECORD and unknown values are refused."""
    if not written:
        # Type 1 in PS3.3; rtcheck's default when absent: a whole-plan dose, said in a note.
        return DoseSummation.PLAN, f"{path}: no DoseSummationType; taken as PLAN (a whole-plan dose)"
    try:
        summation = DoseSummation(written)
    except ValueError:
        known = ", ".join(s.value for s in DoseSummation)
        raise UnsupportedObjectError(path, f"DoseSummationType {written} is not a PS3.3 value ({known})") from None
    if summation in _REFUSED:
        raise UnsupportedObjectError(path, f"DoseSummationType {summation.value} is {_REFUSED[summation]}; rtcheck checks planned course doses")
    return summation, ""


def course_factor(path: Path, summation: DoseSummation, fractions: int | None, whose: str) -> tuple[float, str]:
    """The factor turning one dose of ``summation`` into the whole delivery of its part, and a note.

    ``fractions``: the fractions planned of the dose's fraction group (``whose`` says where that
    number comes from). A *_SESSION dose needs it (MissingObjectError otherwise); other types are
    the whole delivery already (factor 1).
    """
    if not summation.per_session:
        return 1.0, ""
    if not fractions or fractions < 1:
        raise MissingObjectError(path, f"DoseSummationType {summation.value} is one session's dose; the number of fractions ({whose}) is needed to make it a course")
    return float(fractions), f"{path}: DoseSummationType {summation.value} (one session) x {fractions} fractions ({whose})"


@dataclass(frozen=True)
class DoseComparison:
    """How far doses given besides the one used (e.g. BEAM doses besides the PLAN dose) are from it.

    Differences are voxel by voxel on the used dose's grid, in % of the used dose's maximum:
    ``max_difference_pct`` the largest, ``d2_difference_pct`` the one exceeded in 2 % of the voxels
    (the 98th percentile of |difference|).  ``covered_pct``: the share of the used grid's voxels the
    compared doses cover.
    """

    used: str
    used_paths: tuple[str, ...]
    compared: str
    compared_paths: tuple[str, ...]
    max_difference_pct: float | None
    d2_difference_pct: float | None
    covered_pct: float
    reason: str = ""  # why no difference was computed

    def note(self) -> str:
        if self.max_difference_pct is None or self.d2_difference_pct is None:
            return f"{self.compared} not compared with the {self.used} dose used: {self.reason}"
        return (
            f"the {self.used} dose is used; the sum of the {self.compared} differs from it by at most "
            f"{self.max_difference_pct:.2f} % (D2 of the difference {self.d2_difference_pct:.2f} %) of its maximum"
            + (f", over the {self.covered_pct:.1f} % of its voxels they cover" if self.covered_pct < 100.0 else "")
        )

    def as_dict(self) -> dict:
        return dataclasses.asdict(self) | {"used_paths": list(self.used_paths), "compared_paths": list(self.compared_paths)}


@dataclass
class CourseDose:
    grid: DoseGrid
    notes: list[str] = field(default_factory=list)
    comparisons: list[DoseComparison] = field(default_factory=list)


def _group_of(plan: Plan | None, dose: ObjectReferences) -> FractionGroup | None:
    """The fraction group a dose belongs to: the one it references, else the plan's only group."""
    if plan is None:
        return None
    if dose.fraction_group is not None:
        return plan.fraction_group(dose.fraction_group)
    return plan.fraction_groups[0] if len(plan.fraction_groups) == 1 else None


def _read(path: Path, notes: list[str]) -> DoseGrid:
    grid = load_dose(path)
    notes += grid.notes
    return grid


def _scaled(grid: DoseGrid, factor: float, summation: DoseSummation) -> DoseGrid:
    if factor == 1.0:
        return grid
    grid.dose_gy *= factor
    grid.summation_type = f"{summation.value} x {factor:g}"
    grid.fraction_scale = int(factor)
    return grid


def _plan_text(plan: Plan) -> str:
    return f"plan {plan.label or '(no label)'} ({plan.sop_instance_uid})"


def _load(plan: Plan | None, dose: ObjectReferences, summation: DoseSummation, notes: list[str]) -> DoseGrid:
    """One dose file as the whole delivery of its part (a session dose times its group's fractions)."""
    group = _group_of(plan, dose)
    if summation.per_session:
        if plan is None:
            raise MissingObjectError(dose.path, f"DoseSummationType {summation.value} is one session's dose; its RT Plan is needed for the number of fractions")
        if group is None:
            raise LinkError(dose.path, f"{summation.value} dose: cannot tell which fraction group of {_plan_text(plan)} it belongs to")
    fractions = group.fractions_planned if group is not None else None
    factor, note = course_factor(dose.path, summation, fractions, f"fraction group {group.number if group else '?'} NumberOfFractionsPlanned")
    notes += [note] if note else []
    return _scaled(_read(dose.path, notes), factor, summation)


def _fraction_group_dose(plan: Plan | None, doses: list[tuple[ObjectReferences, DoseSummation]], notes: list[str]) -> DoseGrid:
    """One dose per fraction group, each its group's whole delivery, summed over the groups."""
    if plan is None:
        if len(doses) > 1:
            listing = ", ".join(str(d.path) for d, _ in doses)
            raise MissingObjectError(doses[0][0].path, f"several fraction-group RT Doses ({listing}) and no RT Plan to tell their groups apart; pass the plan")
        dose, summation = doses[0]
        notes.append(f"{dose.path}: DoseSummationType {summation.value} is the whole delivery of one fraction group; "
                     "without the RT Plan rtcheck cannot tell whether the plan has other fraction groups")
        return _load(None, dose, summation, notes)
    by_group: dict[int, list[tuple[ObjectReferences, DoseSummation]]] = defaultdict(list)
    for dose, summation in doses:
        group = _group_of(plan, dose)
        if group is None:
            raise LinkError(dose.path, f"{summation.value} dose: cannot tell which fraction group of {_plan_text(plan)} it belongs to "
                            "(no Referenced Fraction Group Number and the plan has several groups)")
        by_group[group.number].append((dose, summation))
    for number, found in by_group.items():
        if len(found) > 1:
            listing = ", ".join(str(d.path) for d, _ in found)
            raise LinkError(found[0][0].path, f"several RT Doses for fraction group {number} of {_plan_text(plan)} ({listing}); pass the one to use")
    absent = [g.number for g in plan.fraction_groups if g.number not in by_group]
    if absent:
        raise MissingObjectError(doses[0][0].path, f"fraction group(s) {', '.join(map(str, absent))} of {_plan_text(plan)} have no RT Dose; "
                                 "the course is the sum of every group's dose")
    grids = [_load(plan, *found[0], notes) for found in by_group.values()]
    groups = ", ".join(map(str, by_group))
    if len(grids) == 1:
        notes.append(f"{grids[0].paths[0]}: DoseSummationType {doses[0][1].value}, the dose of fraction group {groups} (the plan's only one)")
        return grids[0]
    total, resampling = resampled_sum(grids)
    notes += [f"summed the doses of fraction groups {groups}", *resampling]
    total.summation_type = f"sum of fraction groups {groups}"
    return total


def _beam_dose(plan: Plan | None, doses: list[tuple[ObjectReferences, DoseSummation]], notes: list[str]) -> DoseGrid:
    grids = [_load(plan, d, s, notes) for d, s in doses]
    if len(grids) == 1:
        return grids[0]
    total = sum_doses(grids)
    notes.append(f"summed {len(doses)} {'/'.join(sorted({s.value for _, s in doses}))} doses")
    return total


def _compare(used: DoseGrid, used_kind: str, compared: DoseGrid, compared_kind: str) -> DoseComparison:
    values = dose_on_lattice(compared, used.x_mm, used.y_mm, used.z_mm)
    covered = ~np.isnan(values)
    covered_pct = float(covered.mean() * 100.0) if covered.size else 0.0
    used_paths, compared_paths = tuple(str(p) for p in used.paths), tuple(str(p) for p in compared.paths)
    if not covered.any() or used.max_gy <= 0:
        return DoseComparison(used_kind, used_paths, compared_kind, compared_paths, None, None, covered_pct,
                              "their grids do not overlap or the dose used is zero everywhere")
    difference = np.abs(values[covered] - used.dose_gy[covered]) / used.max_gy * 100.0
    return DoseComparison(used_kind, used_paths, compared_kind, compared_paths,
                          float(difference.max()), float(np.percentile(difference, 98.0)), covered_pct)


_KIND = {DoseScope.PLANS: "whole-plan", DoseScope.FRACTION_GROUP: "fraction-group", DoseScope.BEAMS: "beam"}


def course_dose(plan: Plan | None, doses: list[ObjectReferences], plan_reference: ObjectReferences | None = None) -> CourseDose:
    """The course dose of ``plan`` (None: a structure set and its doses without a plan) from the RT Doses
    referencing it, by the rules of the module's docstring.  ``plan_reference`` (the plan as the linker
    saw it) lets beam doses given besides a whole-plan dose be checked for covering every treatment beam."""
    notes: list[str] = []
    by_scope: dict[DoseScope, list[tuple[ObjectReferences, DoseSummation]]] = {scope: [] for scope in DoseScope}
    for dose in doses:
        summation, note = summation_of(dose.path, dose.summation_type)
        notes += [note] if note else []
        by_scope[summation.scope].append((dose, summation))
    scopes = [scope for scope in DoseScope if by_scope[scope]]
    used_scope, compared_scopes = scopes[0], scopes[1:]
    if used_scope is DoseScope.PLANS:
        whole = by_scope[DoseScope.PLANS]
        if len(whole) > 1:
            listing = ", ".join(str(d.path) for d, _ in whole)
            raise LinkError(whole[0][0].path, f"several whole-plan RT Doses for one plan ({listing}); pass the one to use")
        dose, summation = whole[0]
        grid = _read(dose.path, notes)
        if summation is DoseSummation.MULTI_PLAN:
            notes.append(f"{dose.path}: DoseSummationType MULTI_PLAN (a sum over several plans)")
    elif used_scope is DoseScope.FRACTION_GROUP:
        grid = _fraction_group_dose(plan, by_scope[used_scope], notes)
    else:
        grid = _beam_dose(plan, by_scope[used_scope], notes)
    comparisons = [_comparison(plan, plan_reference, grid, _KIND[used_scope], scope, by_scope[scope]) for scope in compared_scopes]
    notes += [c.note() for c in comparisons]
    return CourseDose(grid, notes, comparisons)


def _comparison(
    plan: Plan | None, plan_reference: ObjectReferences | None, used: DoseGrid, used_kind: str,
    scope: DoseScope, others: list[tuple[ObjectReferences, DoseSummation]],
) -> DoseComparison:
    label = f"{'/'.join(sorted({s.value for _, s in others}))} doses"
    paths = tuple(str(d.path) for d, _ in others)
    try:
        if scope is DoseScope.BEAMS and plan_reference is not None:
            gap = beam_dose_gap(plan_reference, [d for d, _ in others])
            if gap is not None:
                raise MissingObjectError(gap.path, gap.reason)
        scratch: list[str] = []
        other = _fraction_group_dose(plan, others, scratch) if scope is DoseScope.FRACTION_GROUP else _beam_dose(plan, others, scratch)
    except InputError as exc:
        return DoseComparison(used_kind, tuple(str(p) for p in used.paths), label, paths, None, None, 0.0, exc.reason)
    return _compare(used, used_kind, other, label)
