"""Cohort statistics of the stored checks of one protocol arm: per criterion the share of plans per
status, the distribution of values and a plan's percentile; a criterion's values over time with
control limits (an individuals chart, as used in statistical process control of plan quality).

The cohort is the newest check of each plan (RT Plan SOP Instance UID) for the protocol and
arm, so a plan checked again counts once.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date

import numpy as np
from sqlalchemy import func, select

from rtcheck.results import Status
from rtcheck.store.database import ResultStore
from rtcheck.store.models import Check, CheckItem, as_utc

__all__ = ["ControlLimits", "CriterionStats", "Trend", "TrendPoint", "control_limits", "criteria", "percentile_rank", "trend"]

# Individuals chart: sigma estimated from the mean moving range of consecutive points, d2 = 1.128 for ranges of two
# (Montgomery, Introduction to Statistical Quality Control); limits at 3 sigma.
_D2 = 1.128
_SIGMAS = 3.0
_BINS = 12  # rtcheck's default number of histogram bins: readable for a cohort of tens to hundreds of plans


@dataclass
class CriterionStats:
    """One criterion (a protocol check id) across the cohort."""

    criterion: str
    metric: str
    structure: str
    unit: str
    per_protocol: list[str]  # the thresholds met in the cohort (several when the protocol file changed)
    statuses: dict[str, int]  # plans per status
    values: list[float]
    histogram: tuple[list[int], list[float]] | None = None  # counts, edges (unit of the criterion)
    this_value: float | None = None
    this_status: str = ""
    this_percentile: float | None = None  # % of the cohort's values below this plan's (ties count half)

    @property
    def plans(self) -> int:
        return sum(self.statuses.values())

    def share(self, status: str) -> float:
        return 100.0 * self.statuses.get(status, 0) / self.plans if self.plans else 0.0


def _cohort_ids(store: ResultStore, protocol_id: str, arm: str) -> list[int]:
    with store.session() as session:
        newest = (select(func.max(Check.id)).where(Check.protocol_id == protocol_id, Check.arm == arm).group_by(Check.plan_uid))
        return sorted(session.scalars(newest))


def percentile_rank(values: list[float], value: float) -> float:
    """Percent of ``values`` below ``value``, ties counting half (the mean of the strict and weak ranks)."""
    below = sum(v < value for v in values)
    equal = sum(v == value for v in values)
    return 100.0 * (below + 0.5 * equal) / len(values) if values else float("nan")


def criteria(store: ResultStore, protocol_id: str, arm: str, *, check_id: int | None = None) -> list[CriterionStats]:
    """Every criterion of the arm's cohort, in the protocol's order; ``check_id`` adds that check's place."""
    ids = _cohort_ids(store, protocol_id, arm)
    with store.session() as session:
        items = list(session.scalars(select(CheckItem).where(CheckItem.check_id.in_(ids)).order_by(CheckItem.position, CheckItem.id)))
        own = list(session.scalars(select(CheckItem).where(CheckItem.check_id == check_id))) if check_id is not None else []
    by_criterion: dict[str, CriterionStats] = {}
    for item in items:
        stats = by_criterion.setdefault(item.criterion, CriterionStats(item.criterion, item.metric, item.structure, item.unit, [], Counter(), []))
        stats.statuses[item.status] += 1
        if item.per_protocol not in stats.per_protocol:
            stats.per_protocol.append(item.per_protocol)
        if item.value is not None:
            stats.values.append(item.value)
    for stats in by_criterion.values():
        stats.statuses = dict(stats.statuses)
        if stats.values:
            counts, edges = np.histogram(stats.values, bins=min(_BINS, max(1, len(set(stats.values)))))
            stats.histogram = ([int(c) for c in counts], [float(e) for e in edges])
    for item in own:
        stats_of = by_criterion.get(item.criterion)
        if stats_of is None:
            continue
        stats_of.this_value, stats_of.this_status = item.value, item.status
        if item.value is not None and stats_of.values:
            stats_of.this_percentile = percentile_rank(stats_of.values, item.value)
    return list(by_criterion.values())


@dataclass(frozen=True)
class ControlLimits:
    mean: float
    sigma: float  # mean moving range / d2
    lower: float
    upper: float


def control_limits(values: list[float]) -> ControlLimits | None:
    """Individuals-chart limits of a series in time order; None with fewer than two values."""
    if len(values) < 2:
        return None
    series = np.asarray(values, dtype=float)
    sigma = float(np.mean(np.abs(np.diff(series)))) / _D2
    mean = float(series.mean())
    return ControlLimits(mean, sigma, mean - _SIGMAS * sigma, mean + _SIGMAS * sigma)


@dataclass(frozen=True)
class TrendPoint:
    check_id: int
    when: date  # the RT Plan date (RTPlanDate) when the plan has one, else the day of the check (UTC)
    value: float
    status: str
    plan_label: str
    outside: bool = False  # beyond the control limits


@dataclass
class Trend:
    criterion: str
    metric: str
    unit: str
    points: list[TrendPoint] = field(default_factory=list)
    limits: ControlLimits | None = None
    without_value: int = 0  # plans of the cohort where the criterion has no value (not evaluated)


def _day(check: Check) -> date:
    if len(check.plan_date) == 8 and check.plan_date.isdigit():
        try:
            return date(int(check.plan_date[:4]), int(check.plan_date[4:6]), int(check.plan_date[6:]))
        except ValueError:
            pass
    return as_utc(check.checked_at).date()


def trend(store: ResultStore, protocol_id: str, arm: str, criterion: str) -> Trend:
    """One criterion's values across the arm's cohort in time order, with individuals-chart limits."""
    ids = _cohort_ids(store, protocol_id, arm)
    with store.session() as session:
        rows = list(session.execute(select(CheckItem, Check).join(Check, CheckItem.check_id == Check.id)
                                    .where(CheckItem.check_id.in_(ids), CheckItem.criterion == criterion)))
    result = Trend(criterion, rows[0][0].metric if rows else "", rows[0][0].unit if rows else "")
    points = []
    for item, check in rows:
        if item.value is None:
            result.without_value += 1
            continue
        points.append(TrendPoint(check.id, _day(check), item.value, item.status, check.plan_label))
    points.sort(key=lambda p: (p.when, p.check_id))
    result.limits = control_limits([p.value for p in points])
    if result.limits is not None:
        lim = result.limits
        points = [TrendPoint(p.check_id, p.when, p.value, p.status, p.plan_label, not lim.lower <= p.value <= lim.upper) for p in points]
    result.points = points
    return result


STATUS_ORDER = [s.value for s in Status]
