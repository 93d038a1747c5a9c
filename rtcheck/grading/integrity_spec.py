"""How a plan rule (or one of rtcheck's own object checks) becomes outcomes: the spec stated once, then
graded, failed as the rule says, or not evaluated, counting towards the verdict as the rule says."""

from __future__ import annotations

from dataclasses import dataclass

from rtcheck.grading.outcome import CheckSpec
from rtcheck.protocol.model import ConstraintKind
from rtcheck.protocol.plan_rules import Counts, OnFailure, PlanRule
from rtcheck.results import CheckKind, CheckOutcome, Status

__all__ = ["IntegritySpec", "rule_spec"]

# A plan rule's Counts is the constraint kind of its outcome (if_present: graded when the information is there).
_KIND = {Counts.REQUIRED: ConstraintKind.REQUIRED, Counts.IF_PRESENT: ConstraintKind.IF_CONTOURED, Counts.INFORMATIONAL: ConstraintKind.INFORMATIONAL}


@dataclass(frozen=True)
class IntegritySpec:
    """A check of kind ``integrity``: ``counts`` says whether it counts towards the verdict (see
    :class:`rtcheck.protocol.plan_rules.Counts`), ``on_failure`` the status of a broken rule."""

    spec: CheckSpec
    counts: Counts
    on_failure: OnFailure = OnFailure.DEVIATION

    def _counted(self, outcome: CheckOutcome, evaluated: bool) -> CheckOutcome:
        outcome.constraint_kind = _KIND[self.counts]
        outcome.counts = self.counts is Counts.REQUIRED or (self.counts is Counts.IF_PRESENT and evaluated)
        if not outcome.counts and self.counts is Counts.INFORMATIONAL:
            outcome.message += " (informational: does not count towards the verdict)"
        return outcome

    def passed(self, value: float | None, message: str) -> CheckOutcome:
        return self._graded(value, Status.PER_PROTOCOL, message)

    def failed(self, value: float | None, message: str, status: Status | None = None) -> CheckOutcome:
        """Broken: the rule's ``on_failure`` status, or ``status`` when the check itself decides."""
        return self._graded(value, status or Status(self.on_failure.value), message)

    def _graded(self, value: float | None, status: Status, message: str) -> CheckOutcome:
        outcome = self.spec.graded(value, status, message) if value is not None else self.spec.not_evaluated(message)
        outcome.status = status
        return self._counted(outcome, True)

    def absent(self, reason: str) -> CheckOutcome:
        """What the check needs is not in the inputs (an element, a structure, an image series): not evaluated,
        counting only for a required check."""
        return self._counted(self.spec.not_evaluated(reason), False)

    def unreadable(self, reason: str) -> CheckOutcome:
        """The information is there but cannot be judged (ambiguous, unsupported): not evaluated, counting
        like an evaluated check, so that a plan does not pass on what rtcheck could not read."""
        return self._counted(self.spec.not_evaluated(reason), True)


def rule_spec(
    rule: PlanRule, *, metric: str, unit: str, per_protocol: str, structure: str = "plan", roi_name: str | None = None,
    suffix: str = "", source_note: str = "",
) -> IntegritySpec:
    """The spec of a protocol's plan rule (``suffix`` tells apart the outcomes of a rule over several structures;
    ``source_note`` adds where a value of rtcheck's own, such as a default range, comes from)."""
    spec = CheckSpec(
        id=rule.id + (f".{suffix}" if suffix else ""), kind=CheckKind.INTEGRITY, structure=structure, roi_name=roi_name,
        metric=metric, unit=unit, per_protocol=per_protocol, variation_acceptable=None,
        source=rule.source_text + (f"; {source_note}" if source_note else ""),
    )
    return IntegritySpec(spec, rule.counts, rule.on_failure)
