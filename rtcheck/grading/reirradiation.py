"""The interval between the courses of a re-irradiation, graded where the arm states its conditions.

An arm's ``reirradiation_conditions`` (rtcheck.protocol.model.ReirradiationConditions) name a minimum
interval (e.g. Nieder's >= 6 months for the spinal cord).  The interval is not in the DICOM: it is
given as ``--prior-interval-months`` (CheckOptions.prior.interval_months).  Without it the check is
not evaluated and counts (never a pass); each course's dose limit is graded as a constraint
(rtcheck.grading.biology).
"""

from __future__ import annotations

from rtcheck.grading.outcome import CheckSpec
from rtcheck.protocol.model import Arm
from rtcheck.radiobiology.reirradiation import PriorCourse
from rtcheck.results import CheckKind, CheckOutcome, Status

__all__ = ["interval_checks"]


def interval_checks(arm: Arm, prior: PriorCourse | None) -> list[CheckOutcome]:
    """The interval check of ``arm``'s re-irradiation conditions (none when the arm states none)."""
    conditions = arm.reirradiation
    if conditions is None:
        return []
    minimum = conditions.min_interval_months
    spec = CheckSpec(
        id=conditions.INTERVAL_ID, kind=CheckKind.PRESCRIPTION, structure=conditions.structure, roi_name=None,
        metric="interval between the courses", unit="months", per_protocol=f">= {minimum:g} months",
        variation_acceptable=None, source=conditions.source,
    )
    months = prior.interval_months if prior is not None else None
    if months is None:
        return [spec.not_evaluated(
            f"the arm requires >= {minimum:g} months between the prior course and this one: give the interval "
            "(--prior-interval-months M, CheckOptions.prior.interval_months); without it the condition is not met"
        )]
    if months >= minimum:
        return [spec.graded(months, Status.PER_PROTOCOL, f"{months:g} months between the courses (>= {minimum:g})")]
    return [spec.graded(
        months, Status.DEVIATION_UNACCEPTABLE,
        f"{months:g} months between the courses, less than the {minimum:g} months the arm requires",
    )]
