"""Grading the plan's prescriptions against an arm's: pairing each protocol target with a plan dose
reference, then total dose, fractions and dose per fraction (or the EQD2 window of a site-set dose)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rtcheck.dicom.plan import Plan, TargetPrescription
from rtcheck.grading.outcome import CheckSpec
from rtcheck.grading.site_prescription import window_outcome
from rtcheck.protocol.matching import StructureMatch, normalise_name
from rtcheck.protocol.model import Arm, Prescription, Protocol
from rtcheck.results import CheckKind, CheckOutcome, Status

__all__ = ["QUANTITIES", "describe_target", "grade_dose", "pair_prescriptions", "prescription_checks", "UnlistedPart", "unlisted_checks", "unlisted_parts"]


def grade_dose(value: float, expected: float, per_protocol_pct: float, variation_pct: float | None) -> Status:
    """The status of a dose ``value`` [Gy] against ``expected`` [Gy] with bands in % of ``expected``."""
    deviation_pct = abs(value - expected) / expected * 100.0
    # Exports round doses (e.g. 59.92 stored as 59.9200000001): compare at 1e-6 %.
    if deviation_pct <= per_protocol_pct + 1e-6:
        return Status.PER_PROTOCOL
    if variation_pct is not None and deviation_pct <= variation_pct + 1e-6:
        return Status.VARIATION_ACCEPTABLE
    return Status.DEVIATION_UNACCEPTABLE


def pair_prescriptions(
    prescriptions: Sequence[Prescription], plan_targets: list[TargetPrescription], matches: dict[str, StructureMatch], protocol: Protocol
) -> dict[str, tuple[TargetPrescription, str]]:
    """Protocol target -> (plan prescription, how they were paired), for the protocol's ``prescriptions`` (an
    arm's, or one phase's) and the plan's ``plan_targets``."""
    paired: dict[str, tuple[TargetPrescription, str]] = {}
    free = list(plan_targets)
    for rx in prescriptions:
        match = matches.get(rx.target)
        spec = protocol.structures[rx.target]
        aliases = {normalise_name(a) for a in (spec.name, spec.tg263, *spec.aliases)}
        for target in free:
            if match is not None and match.roi is not None and target.roi_number == match.roi.number:
                how = f"plan dose reference {target.dose_reference_number} references ROI {match.roi.name!r}"
            elif normalise_name(target.description or "") in aliases or normalise_name(target.name) in aliases:
                how = f"plan dose reference named {target.name!r}"
            else:
                continue
            paired[rx.target] = (target, how)
            free.remove(target)
            break
    unpaired = [rx for rx in prescriptions if rx.target not in paired]
    if unpaired and len(unpaired) == len(free):
        # Same number left on both sides: pair by dose level, highest with highest, and say so.
        by_dose = sorted(free, key=lambda t: t.total_dose_gy or 0.0, reverse=True)
        for rx, target in zip(sorted(unpaired, key=lambda r: r.total_dose_gy or 0.0, reverse=True), by_dose):
            how = "the plan's only prescription" if len(prescriptions) == 1 and len(plan_targets) == 1 else "paired by dose level (no ROI or name link)"
            paired[rx.target] = (target, f"{how}: {target.name!r}")
    return paired


QUANTITIES = ("total-dose", "fractions", "dose-per-fraction")


def prescription_checks(
    prescriptions: Sequence[Prescription], paired: dict[str, tuple[TargetPrescription, str]], matches: dict[str, StructureMatch], *,
    plan_gap: str = "", id_prefix: str = "rx-", quantities: Sequence[str] = QUANTITIES, missing: str = "",
) -> list[CheckOutcome]:
    """The ``<id_prefix><target>-<quantity>`` checks of every prescription of ``prescriptions`` (an arm's, or one
    phase's), given the pairing with the plan's; ``quantities``: which of total-dose, fractions, dose-per-fraction.
    ``plan_gap``: why the plan has no readable prescription at all (Plan.prescription_gap), said by each check;
    ``missing``: where the plan was looked in for an unpaired target (e.g. "in fraction group 2")."""
    outcomes: list[CheckOutcome] = []
    for rx in prescriptions:
        pair = paired.get(rx.target)
        target, how = pair if pair is not None else (None, "")
        roi_name = matches[rx.target].label if rx.target in matches else None
        if rx.window is not None:
            outcomes.append(window_outcome(rx, target, how, roi_name))
            continue
        band = f"± {rx.per_protocol_pct:g} %"
        variation = f"± {rx.variation_acceptable_pct:g} %" if rx.variation_acceptable_pct is not None else None
        items: list[tuple[str, str, float | int | None, str, str]] = [
            ("total-dose", "total dose", rx.total_dose_gy, "Gy", "total_dose_gy"),
            ("fractions", "fractions", rx.fractions, "fx", "fractions"),
            ("dose-per-fraction", "dose per fraction", rx.dose_per_fraction_gy, "Gy", "dose_per_fraction_gy"),
        ]
        for suffix, label, expected, unit, field_name in items:
            if suffix not in quantities:
                continue
            if unit == "fx":
                per_protocol, var_text = f"= {expected}", None
            else:
                per_protocol, var_text = f"{expected:g} Gy {band}", (f"{expected:g} Gy {variation}" if variation else None)
            spec = CheckSpec(
                id=f"{id_prefix}{rx.target.lower()}-{suffix}", kind=CheckKind.PRESCRIPTION, structure=rx.target, roi_name=roi_name,
                metric=label, unit=unit, per_protocol=per_protocol, variation_acceptable=var_text, source=rx.source,
            )
            if target is None:
                why = f"the plan has no readable prescription: {plan_gap}" if plan_gap else f"the plan has no prescription for {rx.target}"
                why += f" {missing}" if missing and not plan_gap else ""
                outcomes.append(spec.not_evaluated(why))
                continue
            value = getattr(target, field_name)
            if value is None:
                outcomes.append(spec.not_evaluated(target.sources.get(field_name) or f"the plan does not state the {label} of {target.name!r}"))
                continue
            assert expected is not None  # the protocol loader gives a prescription without a window every quantity
            if unit == "fx":
                status = Status.PER_PROTOCOL if value == expected else Status.DEVIATION_UNACCEPTABLE
            else:
                status = grade_dose(value, expected, rx.per_protocol_pct, rx.variation_acceptable_pct)
            origin = target.sources.get(field_name, "")
            site = "the site's prescription; " if rx.dose_set_by == "site" else ""
            outcomes.append(spec.graded(float(value), status, f"{site}{how}; from {origin}"))
    return outcomes


def describe_target(target: TargetPrescription) -> str:
    dose = f"{target.total_dose_gy:g} Gy" if target.total_dose_gy is not None else "a dose not stated"
    fractions = f" in {target.fractions} fx" if target.fractions else ""
    return f"{dose}{fractions} to {target.name!r}"


@dataclass(frozen=True)
class UnlistedPart:
    """A part of the plan the arm does not describe: a prescription or a fraction group, with the figure shown
    (the prescribed dose in Gy, or the group's fractions)."""

    suffix: str
    message: str
    value: float
    unit: str


def unlisted_parts(arm: Arm, plan: Plan, paired: dict[str, tuple[TargetPrescription, str]]) -> list[UnlistedPart]:
    """Each part of the plan the arm does not describe: a prescription paired with none of the arm's, and a
    fraction group delivering no paired prescription (e.g. a sequential boost without a dose reference)."""
    used = [target for target, _ in paired.values()]
    parts = []
    for number, target in enumerate(plan.targets, start=1):
        if any(target is u for u in used):
            continue
        value, unit = (target.total_dose_gy, "Gy") if target.total_dose_gy is not None else (float(target.fractions or 0), "fx")
        parts.append(UnlistedPart(f"prescription-{number}", f"the plan prescribes {describe_target(target)}, which arm {arm.id} does not", value, unit))
    if plan.targets:
        # Without any prescription the plan's groups cannot be told apart: the prescription checks say so.
        delivered = {g for t in plan.targets for g in t.fraction_groups}
        for group in plan.fraction_groups:
            if group.number in delivered or all(not t.fraction_groups for t in plan.targets):
                continue
            fractions = f"{group.fractions_planned} fx" if group.fractions_planned else "fractions not stated"
            parts.append(UnlistedPart(
                f"fraction-group-{group.number}",
                f"the plan has fraction group {group.number} ({fractions}) delivering no prescription that arm {arm.id} describes",
                float(group.fractions_planned or 0), "fx",
            ))
    return parts


def unlisted_checks(arm: Arm, plan: Plan, paired: dict[str, tuple[TargetPrescription, str]]) -> list[CheckOutcome]:
    """A deviation_unacceptable check for each part of the plan that arm ``arm`` does not describe: never ignored."""
    outcomes = []
    for part in unlisted_parts(arm, plan, paired):
        spec = CheckSpec(
            id=f"rx-unlisted-{part.suffix}", kind=CheckKind.PRESCRIPTION, structure="", roi_name=None, metric="not in the arm",
            unit=part.unit, per_protocol=f"only the prescriptions of arm {arm.id}", variation_acceptable=None,
            source="rtcheck: a plan is checked whole; a part the arm does not describe is a deviation",
        )
        outcomes.append(spec.graded(part.value, Status.DEVIATION_UNACCEPTABLE, part.message))
    return outcomes
