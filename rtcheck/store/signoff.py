"""Sign-off of a check by a reviewer: append-only, with a written reason per failing check.

Accepting a plan whose required checks include a deviation (``deviation_unacceptable``)
or a check that could not be made (``not_evaluated``) needs a reason for each of those:
rtcheck's rule, since an accepted plan with an unexplained failing check would read as a pass.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import select

from rtcheck.errors import StoreError
from rtcheck.results import Status
from rtcheck.store.database import ResultStore
from rtcheck.store.models import as_utc, Check, CheckItem, Decision, Role, SignOff, SignOffReason, User

__all__ = ["FAILING", "audit_csv", "audit_json", "audit_rows", "failing_items", "sign_off"]

FAILING = (Status.DEVIATION_UNACCEPTABLE.value, Status.NOT_EVALUATED.value)
AUDIT_SCHEMA = "rtcheck.audit/1"
_MAX_TEXT = 4000


def failing_items(check: Check) -> list[CheckItem]:
    """The required checks that need a reason to accept the plan."""
    return [item for item in check.items if item.required and item.status in FAILING]


def sign_off(store: ResultStore, check_id: int, user_id: int, decision: Decision, comment: str, reasons: dict[int, str]) -> int:
    """Record a decision on a check; ``reasons`` maps check-item ids to their written reason.

    StoreError (nothing stored) when the user may not sign off, the check is unknown, a reason
    names an item of another check, or accepting lacks a reason for a failing check.
    """
    comment = comment.strip()
    reasons = {item_id: text.strip() for item_id, text in reasons.items() if text and text.strip()}
    if len(comment) > _MAX_TEXT or any(len(text) > _MAX_TEXT for text in reasons.values()):
        raise StoreError(f"a comment or reason is longer than {_MAX_TEXT} characters")
    with store.session() as session:
        user = session.get(User, user_id)
        if user is None or not user.active or user.role not in (Role.REVIEWER.value, Role.ADMIN.value):
            raise StoreError("only an active reviewer or admin may sign off")
        check = session.get(Check, check_id)
        if check is None:
            raise StoreError(f"no check {check_id}")
        items = {item.id: item for item in check.items}
        foreign = [i for i in reasons if i not in items]
        if foreign:
            raise StoreError(f"reasons given for checks not in this plan: {foreign}")
        if decision is Decision.ACCEPTED:
            missing = [item.criterion for item in failing_items(check) if item.id not in reasons]
            if missing:
                raise StoreError(f"accepting this plan needs a written reason for each failing check: missing for {', '.join(missing)}")
        elif not comment and not reasons:
            raise StoreError("rejecting a plan needs a comment or a reason")
        record = SignOff(check_id=check.id, user_id=user.id, username=user.username, decision=decision.value, comment=comment,
                         document_sha256=check.document_sha256, signed_at=datetime.now(timezone.utc))
        record.reasons = [
            SignOffReason(check_item_id=item_id, criterion=items[item_id].criterion, status=items[item_id].status, reason=text)
            for item_id, text in sorted(reasons.items(), key=lambda pair: items[pair[0]].position)
        ]
        session.add(record)
        session.flush()
        return record.id


@dataclass(frozen=True)
class AuditRow:
    """One line of the audit export: a sign-off, or one reason of it."""

    sign_off_id: int
    signed_at: str  # ISO 8601, UTC
    username: str
    decision: str
    check_id: int
    plan_uid: str
    patient_id: str
    protocol_id: str
    protocol_sha256: str
    arm: str
    verdict: str
    document_sha256: str
    comment: str
    criterion: str
    status: str
    reason: str


def audit_rows(store: ResultStore, *, pseudonym: Any = None) -> list[AuditRow]:
    """Every sign-off in the order they were made, one row per reason (a sign-off without reasons: one row).

    ``pseudonym`` (a function of a patient ID) replaces patient IDs when the dashboard is anonymized.
    """
    rows = []
    with store.session() as session:
        for record, check in session.execute(select(SignOff, Check).join(Check, SignOff.check_id == Check.id).order_by(SignOff.id)):
            patient = pseudonym(check.patient_id) if pseudonym else check.patient_id
            signed_at = as_utc(record.signed_at).isoformat(timespec="seconds")
            reasons: list[SignOffReason | None] = list(record.reasons) or [None]
            for reason in reasons:
                rows.append(AuditRow(
                    sign_off_id=record.id, signed_at=signed_at, username=record.username, decision=record.decision, check_id=check.id,
                    plan_uid=check.plan_uid, patient_id=patient, protocol_id=check.protocol_id, protocol_sha256=check.protocol_sha256,
                    arm=check.arm, verdict=check.verdict, document_sha256=record.document_sha256, comment=record.comment,
                    criterion=reason.criterion if reason else "", status=reason.status if reason else "",
                    reason=reason.reason if reason else "",
                ))
    return rows


def audit_csv(rows: list[AuditRow]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(list(AuditRow.__dataclass_fields__))
    for row in rows:
        writer.writerow([_cell(v) for v in row.__dict__.values()])
    return buffer.getvalue()


def _cell(value: object) -> object:
    """Spreadsheet formula injection: a text starting with = + - @ is written with a leading quote."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def audit_json(rows: list[AuditRow]) -> str:
    return json.dumps({"schema": AUDIT_SCHEMA, "sign_offs": [row.__dict__ for row in rows]}, indent=2, ensure_ascii=False)
