"""The typed builder of check outcomes: what a check is, stated once, then graded or not evaluated."""

from __future__ import annotations

from dataclasses import dataclass

from rtcheck.protocol.model import ConstraintKind
from rtcheck.results import CheckKind, CheckOutcome, DvhMarker, Status

__all__ = ["CheckSpec"]


@dataclass(frozen=True)
class CheckSpec:
    """Everything an outcome states before the plan is looked at: its id, kind, structure, metric and
    unit, the per-protocol and variation-acceptable limits as shown, and where they come from."""

    id: str
    kind: CheckKind
    structure: str
    roi_name: str | None
    metric: str
    unit: str
    per_protocol: str
    variation_acceptable: str | None
    constraint_kind: ConstraintKind = ConstraintKind.REQUIRED
    source: str = ""

    def graded(self, value: float, status: Status, message: str, marker: DvhMarker | None = None) -> CheckOutcome:
        """The outcome of a check made: ``value`` in ``unit``, graded ``status``."""
        return self._outcome(value, status, message, marker)

    def not_evaluated(self, reason: str) -> CheckOutcome:
        """The outcome of a check that could not be made, saying why."""
        return self._outcome(None, Status.NOT_EVALUATED, reason, None)

    def not_contoured(self, reason: str, *, unresolved: bool = False) -> CheckOutcome:
        """A check whose structure was not found: not evaluated, and counting when the check is required or
        the structure is there but ``unresolved`` (ambiguous); a graded-if-contoured check whose structure is
        not contoured gives a note, not a verdict."""
        out = self._outcome(None, Status.NOT_EVALUATED, reason, None)
        out.counts = self.constraint_kind is ConstraintKind.REQUIRED or (unresolved and out.counts)
        return out

    def _outcome(self, value: float | None, status: Status, message: str, marker: DvhMarker | None) -> CheckOutcome:
        return CheckOutcome(
            id=self.id, kind=self.kind, structure=self.structure, roi_name=self.roi_name, metric=self.metric,
            value=value, unit=self.unit, per_protocol=self.per_protocol, variation_acceptable=self.variation_acceptable,
            status=status, message=message, constraint_kind=self.constraint_kind,
            counts=self.constraint_kind is not ConstraintKind.INFORMATIONAL, source=self.source, marker=marker,
        )
