"""Reading the store for the dashboard: the list of checks with filters, one check in full."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone

from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from rtcheck.store.database import ResultStore
from rtcheck.store.models import Check, CheckItem, SignOff, as_utc

__all__ = ["CheckFilter", "CheckRow", "filter_choices", "list_checks", "load_check"]


@dataclass(frozen=True)
class CheckFilter:
    """Filters of the plan list; empty strings and None filter nothing.  Dates are of the check (UTC)."""

    protocol: str = ""
    arm: str = ""
    verdict: str = ""
    patient: str = ""  # patient ID, exact
    date_from: date | None = None
    date_to: date | None = None  # inclusive


@dataclass(frozen=True)
class CheckRow:
    id: int
    plan_uid: str
    plan_label: str
    patient_id: str
    protocol_id: str
    arm: str
    verdict: str
    checked_at: datetime  # UTC
    origin: str
    deviations: int
    not_evaluated: int
    variations: int
    decision: str  # the latest sign-off's decision, "" when none


def list_checks(store: ResultStore, where: CheckFilter = CheckFilter(), *, limit: int = 500) -> list[CheckRow]:
    """The newest checks first, filtered."""
    query = select(Check).order_by(Check.checked_at.desc(), Check.id.desc()).limit(limit)
    for column, value in ((Check.protocol_id, where.protocol), (Check.arm, where.arm), (Check.verdict, where.verdict),
                          (Check.patient_id, where.patient)):
        if value:
            query = query.where(column == value)
    if where.date_from is not None:
        query = query.where(Check.checked_at >= datetime.combine(where.date_from, time.min, timezone.utc))
    if where.date_to is not None:
        query = query.where(Check.checked_at < datetime.combine(where.date_to + timedelta(days=1), time.min, timezone.utc))
    with store.session() as session:
        checks = list(session.scalars(query))
        ids = [c.id for c in checks]
        counts: dict[tuple[int, str], int] = {}
        for check_id, status, n in session.execute(
            select(CheckItem.check_id, CheckItem.status, func.count()).where(CheckItem.check_id.in_(ids), CheckItem.required)
            .group_by(CheckItem.check_id, CheckItem.status)
        ):
            counts[(check_id, status)] = n
        latest: dict[int, str] = {}
        for check_id, decision in session.execute(
            select(SignOff.check_id, SignOff.decision).where(SignOff.check_id.in_(ids)).order_by(SignOff.id)
        ):
            latest[check_id] = decision
    return [
        CheckRow(c.id, c.plan_uid, c.plan_label, c.patient_id, c.protocol_id, c.arm, c.verdict, as_utc(c.checked_at), c.origin,
                 counts.get((c.id, "deviation_unacceptable"), 0), counts.get((c.id, "not_evaluated"), 0),
                 counts.get((c.id, "variation_acceptable"), 0), latest.get(c.id, ""))
        for c in checks
    ]


def filter_choices(store: ResultStore) -> dict[str, list[str]]:
    """The protocols, arms and verdicts present, for the filters' menus."""
    with store.session() as session:
        return {
            name: sorted(v for v in session.scalars(select(column).distinct()) if v)
            for name, column in (("protocol", Check.protocol_id), ("arm", Check.arm), ("verdict", Check.verdict))
        }


def load_check(store: ResultStore, check_id: int) -> Check | None:
    """One check with its items, curves, inputs and sign-offs (with reasons) loaded."""
    with store.session() as session:
        return session.scalar(
            select(Check).where(Check.id == check_id).options(
                selectinload(Check.items), selectinload(Check.curves), selectinload(Check.inputs),
                selectinload(Check.sign_offs).selectinload(SignOff.reasons),
            )
        )
