"""Cohort statistics of the stored checks of one protocol arm: per criterion the share of plans per
status and the distribution of values (:func:`rtcheck.cohort.cohort_statistics`, as ``batch``'s cohort
test), with a histogram and a plan's percentile; a criterion's values over time with
control limits (an individuals chart, as used in statistical process control of plan quality).

The cohort is the newest check of each plan (RT Plan SOP Instance UID) for the protocol and
arm, so a plan checked again counts once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import numpy as np
from sqlalchemy import func, select

from rtcheck.cohort import CriterionStats, GradedCheck, cohort_statistics, counted_value
from rtcheck.store.database import ResultStore
from rtcheck.store.models import Check, CheckItem, as_utc

__all__ = ["ControlLimits", "CriterionView", "Trend", "TrendPoint", "control_limits", "criteria", "percentile_rank", "trend"]

# Individuals chart: sigma estimated from the mean moving range of consecutive points, d2 = 1.128 for ranges of two
# (Montgomery, Introduction to Statistical Quality Control); limits at 3 sigma.
_D2 = 1.128
_SIGMAS = 3.0
_BINS = 12  # rtcheck's default number of histogram bins: readable for a cohort of tens to hundreds of plans


@dataclass(frozen=True)
class CriterionView(CriterionStats):
    """One criterion (a protocol check id) across the arm's cohort as the protocol page shows it: the
    shared statistics with their histogram and one plan's place."""

    histogram: tuple[list[int], list[float]] | None = None  # counts, edges (unit of the criterion)
    this_value: float | None = None
    this_status: str = ""
    this_percentile: float | None = None  # % of the cohort's values below this plan's (ties count half)

    @property
    def criterion(self) -> str:
        return self.id

    @property
    def statuses(self) -> dict[str, int]:
        """Plans per status, the statuses met only."""
        return {status: n for status, n in self.counts.items() if n}

    def share(self, status: str) -> float:
        return self.share_pct(status)


def _cohort_ids(store: ResultStore, protocol_id: str, arm: str) -> list[int]:
    with store.session() as session:
        newest = (select(func.max(Check.id)).where(Check.protocol_id == protocol_id, Check.arm == arm).group_by(Check.plan_uid))
        return sorted(session.scalars(newest))


def percentile_rank(values: list[float], value: float) -> float:
    """Percent of ``values`` below ``value``, ties counting half (the mean of the strict and weak ranks)."""
    below = sum(v < value for v in values)
    equal = sum(v == value for v in values)
    return 100.0 * (below + 0.5 * equal) / len(values) if values else float("nan")


def _graded(item: CheckItem, check: Check) -> GradedCheck:
    return GradedCheck(protocol=check.protocol_id, arm=check.arm, id=item.criterion, kind=item.kind, structure=item.structure,
                       metric=item.metric, unit=item.unit, required=item.required, per_protocol=item.per_protocol,
                       variation_acceptable=item.variation_acceptable, status=item.status, value=item.value)


def _view(stats: CriterionStats, own: CheckItem | None) -> CriterionView:
    histogram = None
    if stats.values:
        counts, edges = np.histogram(stats.values, bins=min(_BINS, max(1, len(set(stats.values)))))
        histogram = ([int(c) for c in counts], [float(e) for e in edges])
    if own is None:
        return CriterionView(**vars(stats), histogram=histogram)
    percentile = percentile_rank(stats.values, own.value) if own.value is not None and stats.values else None
    return CriterionView(**vars(stats), histogram=histogram, this_value=own.value, this_status=own.status, this_percentile=percentile)


def criteria(store: ResultStore, protocol_id: str, arm: str, *, check_id: int | None = None) -> list[CriterionView]:
    """Every criterion of the arm's cohort, in the protocol's order (the checks' positions); ``check_id`` adds that check's place."""
    ids = _cohort_ids(store, protocol_id, arm)
    with store.session() as session:
        rows = session.execute(select(CheckItem, Check).join(Check, CheckItem.check_id == Check.id)
                               .where(CheckItem.check_id.in_(ids)).order_by(CheckItem.position, CheckItem.id))
        graded = [_graded(item, check) for item, check in rows]
        own = {} if check_id is None else {
            item.criterion: item for item in session.scalars(select(CheckItem).where(CheckItem.check_id == check_id))}
    return [_view(stats, own.get(stats.id)) for stats in cohort_statistics(graded)]


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
        value = counted_value(item.status, item.value)
        if value is None:
            result.without_value += 1
            continue
        points.append(TrendPoint(check.id, _day(check), value, item.status, check.plan_label))
    points.sort(key=lambda p: (p.when, p.check_id))
    result.limits = control_limits([p.value for p in points])
    if result.limits is not None:
        lim = result.limits
        points = [TrendPoint(p.check_id, p.when, p.value, p.status, p.plan_label, not lim.lower <= p.value <= lim.upper) for p in points]
    result.points = points
    return result
