"""Grading a course against an arm with phases (``phases:`` in the protocol file, e.g. a sequential boost).

The plan's parts (:attr:`rtcheck.dicom.plan.Plan.parts`) are its fraction groups, or the RT Plans of a plan
sum (``--sum``), in delivery order.  Each phase of the arm is paired with one part:

1. by fractions when that is unambiguous: each phase has at most one part with its number of fractions
   (several: the one whose prescribed doses are the phase's, within 0.5 %), no part is wanted by two
   phases, and as many pairs are made as there are phases or parts (whichever is fewer);
2. otherwise in order: the first phase with the first fraction group (or plan), and so on.

How each phase was paired is said in its checks' messages.  Then, per phase, the total dose, fractions
and dose per fraction of each of its prescriptions (``rx-phase<N>-<target>-...``); for the course, each
target's total dose and fractions added over the phases (``rx-<target>-...``).  A part with no phase, a
phase with no part and a prescription of a part its phase does not have are ``deviation_unacceptable``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from rtcheck.dicom.plan import PartKind, Plan, PlanPart, TargetPrescription, course_targets
from rtcheck.grading.outcome import CheckSpec
from rtcheck.grading.prescriptions import describe_target, pair_prescriptions, prescription_checks
from rtcheck.protocol.matching import StructureMatch
from rtcheck.protocol.model import Arm, Phase, Protocol
from rtcheck.results import CheckKind, CheckOutcome, Status

__all__ = ["PhasePairing", "pair_phases", "phase_checks"]

# Doses of a phase and of a part "are the same" within this (relative): only used to tell parts apart.
_DOSE_MATCH = 0.005
_SOURCE = "rtcheck: a plan is checked whole; a part the arm does not describe is a deviation"


@dataclass(frozen=True)
class PhasePairing:
    """Each arm phase paired with a plan part (``pairs``), the phases without one and the parts without one,
    and how the pairing was made (for the messages)."""

    pairs: tuple[tuple[Phase, PlanPart], ...]
    missing: tuple[Phase, ...]
    extra: tuple[PlanPart, ...]
    how: str


def _doses_match(phase: Phase, part: PlanPart) -> bool:
    doses = [t.total_dose_gy for t in part.targets if t.total_dose_gy is not None]
    return all(
        any(abs(d - rx.total_dose_gy) <= _DOSE_MATCH * rx.total_dose_gy for d in doses)
        for rx in phase.prescriptions if rx.total_dose_gy is not None
    )


def _by_fractions(phases: tuple[Phase, ...], parts: list[PlanPart]) -> list[tuple[Phase, PlanPart]] | None:
    pairs: list[tuple[Phase, PlanPart]] = []
    for phase in phases:
        candidates = [p for p in parts if p.fractions is not None and p.fractions == phase.fractions]
        if len(candidates) > 1:
            candidates = [p for p in candidates if _doses_match(phase, p)]
        if len(candidates) > 1:
            return None
        if candidates:
            pairs.append((phase, candidates[0]))
    chosen = [id(part) for _, part in pairs]
    if len(set(chosen)) != len(chosen) or len(pairs) != min(len(phases), len(parts)):
        return None
    return pairs


def pair_phases(phases: tuple[Phase, ...], parts: list[PlanPart]) -> PhasePairing:
    """Pair ``phases`` (an arm's, in order) with the plan's ``parts`` (see the module's rule)."""
    kind = parts[0].kind.value if parts else PartKind.FRACTION_GROUP.value
    pairs = _by_fractions(phases, parts)
    if pairs is not None:
        how = "paired by its fractions"
    else:
        pairs = list(zip(phases, parts))
        how = f"paired in {kind} order (fractions do not tell the {kind}s apart)"
    paired_phases = [phase for phase, _ in pairs]
    paired_parts = [id(part) for _, part in pairs]
    return PhasePairing(
        pairs=tuple(sorted(pairs, key=lambda pair: pair[0].number)),
        missing=tuple(phase for phase in phases if phase not in paired_phases),
        extra=tuple(part for part in parts if id(part) not in paired_parts),
        how=how,
    )


def _phase_view(part: PlanPart) -> list[TargetPrescription]:
    """The part's prescriptions as this phase sees them: a prescription delivered by several parts states
    no dose of this part alone (its total dose and dose per fraction unknown here; fractions the part's)."""
    view = []
    for target in part.targets:
        if not part.is_shared(target):
            view.append(target)
            continue
        why = (f"{target.name!r} (dose reference {target.dose_reference_number}) is delivered by fraction groups "
               f"{', '.join(map(str, target.fraction_groups))}: its TargetPrescriptionDose is theirs together, the plan states no dose of {part.label} alone")
        view.append(dataclasses.replace(
            target, total_dose_gy=None, dose_per_fraction_gy=None, fractions=part.fractions,
            sources={"total_dose_gy": why, "dose_per_fraction_gy": why, "fractions": part.fractions_source},
        ))
    return view


def _unlisted(check_id: str, unit: str, value: float, message: str, arm: Arm) -> CheckOutcome:
    spec = CheckSpec(
        id=check_id, kind=CheckKind.PRESCRIPTION, structure="", roi_name=None, metric="not in the arm", unit=unit,
        per_protocol=f"the phases of arm {arm.id}", variation_acceptable=None, source=_SOURCE,
    )
    return spec.graded(value, Status.DEVIATION_UNACCEPTABLE, message)


def _phase_part_checks(
    arm: Arm, phase: Phase, part: PlanPart, how: str, matches: dict[str, StructureMatch], protocol: Protocol
) -> list[CheckOutcome]:
    targets = _phase_view(part)
    paired = pair_prescriptions(phase.prescriptions, targets, matches, protocol)
    where = f"{phase.label} is {part.label} ({how})"
    paired = {name: (target, f"{where}; {detail}") for name, (target, detail) in paired.items()}
    checks = prescription_checks(phase.prescriptions, paired, matches, id_prefix=f"rx-phase{phase.number}-", missing=f"in {part.label} ({where})")
    used = [target for target, _ in paired.values()]
    for number, target in enumerate(targets, start=1):
        if any(target is u for u in used):
            continue
        value, unit = (target.total_dose_gy, "Gy") if target.total_dose_gy is not None else (float(target.fractions or 0), "fx")
        checks.append(_unlisted(
            f"rx-unlisted-phase{phase.number}-prescription-{number}", unit, value,
            f"the plan prescribes {describe_target(target)} in {part.label}, which {phase.label} of arm {arm.id} does not ({where})", arm,
        ))
    return checks


def _course_checks(arm: Arm, plan: Plan, matches: dict[str, StructureMatch], protocol: Protocol) -> tuple[list[CheckOutcome], list[str]]:
    """Each target's course total dose and fractions (dose per fraction is graded per phase), from the plan's
    prescriptions with those of one ROI added up; a course prescription in no part is a deviation."""
    targets, notes = course_targets(plan.targets)
    paired = pair_prescriptions(arm.prescriptions, targets, matches, protocol)
    checks = prescription_checks(arm.prescriptions, paired, matches, plan_gap=plan.prescription_gap, quantities=("total-dose", "fractions"))
    in_parts = {(t.roi_number, t.name) for part in plan.parts for t in part.targets}
    used = [target for target, _ in paired.values()]
    for number, target in enumerate(targets, start=1):
        if any(target is u for u in used) or (target.roi_number, target.name) in in_parts:
            continue
        value, unit = (target.total_dose_gy, "Gy") if target.total_dose_gy is not None else (float(target.fractions or 0), "fx")
        checks.append(_unlisted(f"rx-unlisted-prescription-{number}", unit, value,
                                f"the plan prescribes {describe_target(target)}, which arm {arm.id} does not", arm))
    return checks, notes


def phase_checks(arm: Arm, plan: Plan, matches: dict[str, StructureMatch], protocol: Protocol) -> tuple[list[CheckOutcome], list[str]]:
    """The prescription checks of a plan against an arm with phases (``arm.phases``), and notes: per phase,
    the course totals, and a deviation for each part without phase, phase without part and prescription of a
    part its phase does not have."""
    parts = plan.parts
    pairing = pair_phases(arm.phases, parts)
    checks: list[CheckOutcome] = []
    for phase, part in pairing.pairs:
        checks += _phase_part_checks(arm, phase, part, pairing.how, matches, protocol)
    kind = parts[0].kind.value if parts else PartKind.FRACTION_GROUP.value
    for phase in pairing.missing:
        spec = CheckSpec(
            id=f"rx-phase{phase.number}-missing", kind=CheckKind.PRESCRIPTION, structure=", ".join(rx.target for rx in phase.prescriptions),
            roi_name=None, metric="phase delivered", unit="fx", per_protocol=f"= {phase.fractions}", variation_acceptable=None,
            source="; ".join(rx.source for rx in phase.prescriptions),
        )
        checks.append(spec.graded(0.0, Status.DEVIATION_UNACCEPTABLE,
                                  f"arm {arm.id} prescribes {phase.label}: {phase.describe()}, which the plan does not: "
                                  f"no {kind} is left for it ({len(parts)} {kind}(s) for {len(arm.phases)} phases; {pairing.how})"))
    for part in pairing.extra:
        prescribed = "; ".join(describe_target(t) for t in part.targets) or "no prescription it names"
        fractions = f"{part.fractions} fx" if part.fractions else "fractions not stated"
        checks.append(_unlisted(
            f"rx-unlisted-{part.kind.value.replace(' ', '-')}-{part.number}", "fx", float(part.fractions or 0),
            f"the plan prescribes {part.label} ({fractions}: {prescribed}), which arm {arm.id} does not: "
            f"it has {len(arm.phases)} phases ({pairing.how})", arm,
        ))
    course, notes = _course_checks(arm, plan, matches, protocol)
    return checks + course, notes
