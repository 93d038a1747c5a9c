"""``--arm auto``: the one arm of a protocol whose prescriptions match the plan's."""

from __future__ import annotations

from rtcheck.dicom.planset import PlanSet
from rtcheck.errors import ArmSelectionError
from rtcheck.grading.dose_regions import largest_region_at_or_above
from rtcheck.grading.options import CheckOptions
from rtcheck.grading.phases import phase_checks
from rtcheck.grading.prescriptions import grade_dose, pair_prescriptions, unlisted_parts
from rtcheck.grading.site_prescription import window_matches
from rtcheck.protocol.matching import resolve_structure
from rtcheck.protocol.model import Arm, Prescription, Protocol
from rtcheck.results import Status

__all__ = ["choose_arm"]

# rtcheck defaults for ``--arm auto`` reading the dose (the protocols state no such rule):
# a contiguous region of more than BOOST_REGION_MIN_CC at or above another arm's higher prescription
# less its variation-acceptable tolerance (e.g. 95 % of 59.92 Gy = 56.92 Gy) contradicts a plan whose
# stated prescriptions match an arm without that level.  1 cc: well above a voxel or two of
# interpolation noise or a point hot spot (the hot-spot checks grade those), well below any boost
# volume (a nodal boost of 1 cm radius is about 4 cc).
BOOST_REGION_MIN_CC = 1.0


def _band(rx: Prescription) -> float:
    return rx.variation_acceptable_pct if rx.variation_acceptable_pct is not None else rx.per_protocol_pct


def _dose_contradiction(chosen: str, plan_set: PlanSet, protocol: Protocol) -> str | None:
    """Why the dose contradicts the chosen arm's prescriptions: a boost-level region of another arm's
    higher prescription (the highest such level found), or None."""
    stated = [rx for rx in protocol.arms[chosen].prescriptions if rx.total_dose_gy is not None]
    if not stated:
        return None
    ceiling = max(rx.total_dose_gy * (1 + _band(rx) / 100) for rx in stated if rx.total_dose_gy is not None)
    levels = sorted(
        {
            (rx.total_dose_gy * (1 - _band(rx) / 100), rx.total_dose_gy, arm_id, rx.target)
            for arm_id, arm in protocol.arms.items()
            if arm_id != chosen
            for rx in arm.prescriptions
            if rx.total_dose_gy is not None and rx.total_dose_gy * (1 - _band(rx) / 100) > ceiling
        },
        reverse=True,
    )
    for level, total, arm_id, target in levels:
        region = largest_region_at_or_above(plan_set.dose, plan_set.structure_set, level)
        if region.volume_cc > BOOST_REGION_MIN_CC:
            return (
                f"its dose has a contiguous {region.volume_cc:.1f} cc at or above {level:.2f} Gy {region.within}, "
                f"the level of arm {arm_id}'s {target} {total:g} Gy (less {100 * (1 - level / total):g} %), "
                f"which arm {chosen}'s prescriptions (at most {ceiling:.2f} Gy) do not have"
            )
    return None


def _arm_mismatch(arm: Arm, plan_set: PlanSet, protocol: Protocol, options: CheckOptions) -> str | None:
    """Why the plan's prescriptions do not fit ``arm`` (None when they do)."""
    plan = plan_set.plan
    assert plan is not None
    if not arm.radiotherapy or not arm.prescriptions:
        return "the arm has no radiotherapy"
    overrides = dict(options.structure_map)
    matches = {rx.target: resolve_structure(rx.target, protocol.structures, plan_set.structure_set, overrides) for rx in arm.prescriptions}
    if arm.phases:
        # Phases: the arm fits when every phase and course prescription check passes (within variation).
        checks, _ = phase_checks(arm, plan, matches, protocol)
        failing = [c for c in checks if c.status in (Status.DEVIATION_UNACCEPTABLE, Status.NOT_EVALUATED)]
        return f"{failing[0].id}: {failing[0].message}" if failing else None
    paired = pair_prescriptions(arm.prescriptions, plan.targets, matches, protocol)
    missing = [rx.target for rx in arm.prescriptions if rx.target not in paired]
    if missing:
        return f"no plan prescription for {', '.join(missing)}"
    unlisted = unlisted_parts(arm, plan, paired)
    if unlisted:
        return unlisted[0].message
    for rx in arm.prescriptions:
        target = paired[rx.target][0]
        if rx.window is not None:
            reason = window_matches(rx, target)
            if reason:
                return reason
            continue
        if target.fractions != rx.fractions:
            return f"{rx.target}: {target.fractions} fractions, not {rx.fractions}"
        band = rx.variation_acceptable_pct if rx.variation_acceptable_pct is not None else rx.per_protocol_pct
        assert rx.total_dose_gy is not None  # the protocol loader gives a prescription without a window its dose
        if target.total_dose_gy is None or grade_dose(target.total_dose_gy, rx.total_dose_gy, band, None) is not Status.PER_PROTOCOL:
            return f"{rx.target}: {target.total_dose_gy} Gy, not {rx.total_dose_gy:g} Gy within {band:g} %"
    return None


def choose_arm(plan_set: PlanSet, protocol: Protocol, options: CheckOptions = CheckOptions()) -> tuple[str, str]:
    """The arm whose prescriptions match the plan's (``--arm auto``), and a note saying why.

    Match: every prescription of the arm paired with one of the plan (and no plan
    prescription left over), the same number of fractions, the total dose within
    the arm's variation-acceptable tolerance.  None or several: ArmSelectionError.
    One, but the dose contradicts it (a contiguous region of more than BOOST_REGION_MIN_CC at
    another arm's higher prescription level, less its tolerance): ArmSelectionError saying why.
    """
    protocol.ensure_checkable("auto")  # NoRadiotherapyError for a protocol without radiotherapy
    reasons = {arm_id: _arm_mismatch(arm, plan_set, protocol, options) for arm_id, arm in protocol.arms.items()}
    candidates = [arm_id for arm_id, reason in reasons.items() if reason is None]
    label = plan_set.plan.label if plan_set.plan else ""
    where = f"{plan_set.plan.path}: " if plan_set.plan else ""  # every error names its file
    if len(candidates) == 1:
        contradiction = _dose_contradiction(candidates[0], plan_set, protocol)
        if contradiction:
            raise ArmSelectionError(
                f"{where}--arm auto: plan {label}'s prescriptions match arm {candidates[0]} of {protocol.id} but {contradiction}; "
                "choose the arm with --arm"
            )
        return candidates[0], f"arm {candidates[0]} chosen automatically: the only arm whose prescriptions match the plan's"
    if candidates:
        raise ArmSelectionError(f"{where}--arm auto: plan {label} matches several arms of {protocol.id} ({', '.join(candidates)}); choose one with --arm")
    listing = "; ".join(f"{arm_id}: {reason}" for arm_id, reason in reasons.items())
    raise ArmSelectionError(f"{where}--arm auto: plan {label} matches no arm of {protocol.id} ({listing}); choose one with --arm")
