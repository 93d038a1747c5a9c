"""Cohort test of a protocol: per criterion, the share of plans per status and the distribution of values.

Read from the per-plan check documents a batch writes (``rtcheck.render.json``), so
a trial office sees, before the trial opens, which criteria would flag most past
plans.  Criteria are the checks' ids (prescription and DVH checks alike), in the
order they first appear; a plan that could not be checked counts for no criterion.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np

STATUSES = ("per_protocol", "variation_acceptable", "deviation_unacceptable", "not_evaluated")


@dataclass
class CriterionStats:
    """One criterion over the cohort; ``values`` (in ``unit``) of the plans where it was computed, sorted."""

    id: str
    kind: str
    structure: str
    metric: str
    unit: str
    per_protocol: str
    variation_acceptable: str | None
    constraint_kind: str  # the protocol's kind: required | graded-if-contoured | informational
    counts: dict[str, int] = field(default_factory=lambda: {s: 0 for s in STATUSES})
    values: list[float] = field(default_factory=list)

    @property
    def plans(self) -> int:
        return sum(self.counts.values())

    def share_pct(self, status: str) -> float:
        return 100.0 * self.counts[status] / self.plans if self.plans else 0.0

    def quantiles(self) -> dict[str, float] | None:
        """min, 25th percentile, median, 75th percentile and max of the values (linear interpolation); None without values."""
        if not self.values:
            return None
        q = np.percentile(np.asarray(self.values, dtype=float), [0, 25, 50, 75, 100])
        return dict(zip(("min", "p25", "median", "p75", "max"), (float(v) for v in q)))


def cohort_statistics(documents: list[str]) -> list[CriterionStats]:
    """The statistics of every criterion over the plans whose check documents (JSON text) are given."""
    criteria: dict[str, CriterionStats] = {}
    for text in documents:
        payload = json.loads(text)
        for plan in payload if isinstance(payload, list) else [payload]:
            for check in plan.get("checks", []):
                stats = criteria.get(check["id"])
                if stats is None:
                    stats = criteria[check["id"]] = CriterionStats(
                        id=check["id"], kind=check["kind"], structure=check["structure"], metric=check["metric"],
                        unit=check["unit"], per_protocol=check["per_protocol"],
                        variation_acceptable=check.get("variation_acceptable"), constraint_kind=check["constraint_kind"],
                    )
                stats.counts[check["status"]] += 1
                if check.get("value") is not None and check["status"] != "not_evaluated":
                    stats.values.append(float(check["value"]))
    for stats in criteria.values():
        stats.values.sort()
    return list(criteria.values())
