"""Cohort statistics of graded checks: per criterion, the plans per status and the distribution of values.

The one computation behind ``batch``'s cohort test of a protocol (``criteria.csv/json/html``, fed the
check documents of its run) and the dashboard's protocol page (fed the checks kept in the results
store).  A *criterion* is a check id of one protocol arm: the statistics are grouped per
(protocol, arm, check id), since arms of a protocol share ids (``ptv-d95``) with other thresholds,
and a batch with ``--arm auto`` checks plans against several arms.  Criteria come in the order
their (protocol, arm) first appears, then the order the check ids first appear in it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from rtcheck.results import Status

__all__ = ["STATUSES", "Criterion", "CriterionStats", "GradedCheck", "cohort_statistics", "counted_value", "graded_checks"]

STATUSES = tuple(status.value for status in Status)


def counted_value(status: str, value: float | None) -> float | None:
    """The value a check adds to its criterion's distribution: none when the check was not evaluated."""
    return None if value is None or status == Status.NOT_EVALUATED.value else float(value)


@dataclass(frozen=True)
class Criterion:
    """What a criterion is: a check id of one protocol arm, with what it measures (``unit``)."""

    protocol: str
    arm: str
    id: str
    kind: str
    structure: str
    metric: str
    unit: str
    required: bool  # whether the check counts towards the verdict (the check document's "counts")


@dataclass(frozen=True)
class GradedCheck(Criterion):
    """One plan's graded check as a cohort sees it (``value`` in ``unit``; statuses as :class:`Status` values)."""

    per_protocol: str
    variation_acceptable: str | None
    status: str
    value: float | None


def graded_checks(document: dict[str, Any] | list[dict[str, Any]]) -> Iterator[GradedCheck]:
    """The graded checks of a parsed ``rtcheck.check/1`` document (one plan, or a list of plans)."""
    for plan in document if isinstance(document, list) else [document]:
        protocol = plan.get("protocol", {})
        for check in plan.get("checks", []):
            yield GradedCheck(
                protocol=protocol.get("id", ""), arm=protocol.get("arm", ""), id=check["id"], kind=check["kind"],
                structure=check["structure"], metric=check["metric"], unit=check["unit"], required=bool(check.get("counts", check.get("required", True))),
                per_protocol=check["per_protocol"], variation_acceptable=check.get("variation_acceptable"),
                status=check["status"], value=check.get("value"),
            )


@dataclass(frozen=True)
class CriterionStats(Criterion):
    """One criterion over the cohort.  Structure, metric, unit, kind and ``required`` are those of its
    first check; ``per_protocol`` and ``variation_acceptable`` list every distinct threshold met (several
    when the protocol file changed between checks); ``values`` (in ``unit``) are sorted."""

    per_protocol: list[str] = field(default_factory=list)
    variation_acceptable: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STATUSES, 0))
    values: list[float] = field(default_factory=list)

    @property
    def plans(self) -> int:
        return sum(self.counts.values())

    def share_pct(self, status: str) -> float:
        """Percent of the cohort's plans with this status (0 for an empty cohort)."""
        return 100.0 * self.counts.get(status, 0) / self.plans if self.plans else 0.0

    def quantiles(self) -> dict[str, float] | None:
        """min, 25th percentile, median, 75th percentile and max of the values (linear interpolation); None without values."""
        if not self.values:
            return None
        q = np.percentile(np.asarray(self.values, dtype=float), [0, 25, 50, 75, 100])
        return dict(zip(("min", "p25", "median", "p75", "max"), (float(v) for v in q)))


_IDENTITY = [f.name for f in fields(Criterion)]


def cohort_statistics(checks: Iterable[GradedCheck]) -> list[CriterionStats]:
    """The statistics of every criterion, grouped per (protocol, arm, check id), over the checks given."""
    groups: dict[tuple[str, str], dict[str, CriterionStats]] = {}
    for check in checks:
        criteria = groups.setdefault((check.protocol, check.arm), {})
        stats = criteria.get(check.id)
        if stats is None:
            stats = criteria[check.id] = CriterionStats(**{name: getattr(check, name) for name in _IDENTITY})
        stats.counts[check.status] += 1
        if check.per_protocol not in stats.per_protocol:
            stats.per_protocol.append(check.per_protocol)
        if check.variation_acceptable is not None and check.variation_acceptable not in stats.variation_acceptable:
            stats.variation_acceptable.append(check.variation_acceptable)
        value = counted_value(check.status, check.value)
        if value is not None:
            stats.values.append(value)
    result = [stats for criteria in groups.values() for stats in criteria.values()]
    for stats in result:
        stats.values.sort()
    return result
