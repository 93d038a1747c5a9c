"""Tables of the results store (SQLAlchemy 2 ORM); the schema itself is made by the migrations.

Doses in Gy, volumes in cc; times in UTC.  A *check* is one plan's ``rtcheck.check/1``
document as rtcheck wrote it (kept verbatim in :attr:`Check.document`), with its graded
items, the DVH curves of its structures and its inputs.  Sign-offs and their reasons are
append-only: the migrations add database triggers that refuse UPDATE and DELETE on them.
"""

from __future__ import annotations

import enum
from datetime import datetime, timezone

from sqlalchemy import Boolean, DateTime, Float, ForeignKey, Integer, LargeBinary, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

__all__ = ["as_utc", "Base", "Check", "CheckItem", "Decision", "DvhCurve", "InputFile", "Role", "SignOff", "SignOffReason", "User"]


class Role(str, enum.Enum):
    """What an account may do: read (viewer), also sign off (reviewer), also see the accounts (admin)."""

    VIEWER = "viewer"
    REVIEWER = "reviewer"
    ADMIN = "admin"


class Decision(str, enum.Enum):
    ACCEPTED = "accepted"
    REJECTED = "rejected"


def as_utc(value: datetime) -> datetime:
    """A stored time as an aware UTC datetime (SQLite gives them back naive, PostgreSQL aware)."""
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))  # argon2id, PHC string
    role: Mapped[str] = mapped_column(String(16))  # a Role value
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Check(Base):
    __tablename__ = "checks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # sha256 of what makes a check the same check again (see rtcheck.store.record.CheckRecord.key).
    key: Mapped[str] = mapped_column(String(64), unique=True)
    plan_uid: Mapped[str] = mapped_column(String(64), index=True)
    plan_label: Mapped[str] = mapped_column(String(255))
    patient_id: Mapped[str] = mapped_column(String(255), index=True)
    patient_name: Mapped[str] = mapped_column(String(255))
    plan_date: Mapped[str] = mapped_column(String(8))  # DICOM DA as written, "" when absent
    study_date: Mapped[str] = mapped_column(String(8))
    protocol_id: Mapped[str] = mapped_column(String(255), index=True)
    protocol_title: Mapped[str] = mapped_column(Text)
    protocol_sha256: Mapped[str] = mapped_column(String(64))
    arm: Mapped[str] = mapped_column(String(255), index=True)
    verdict: Mapped[str] = mapped_column(String(32), index=True)
    rtcheck_version: Mapped[str] = mapped_column(String(32))
    checked_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    origin: Mapped[str] = mapped_column(String(16))  # check, batch, listen or import
    document: Mapped[str] = mapped_column(Text)  # the rtcheck.check/1 JSON text, byte for byte
    document_sha256: Mapped[str] = mapped_column(String(64))
    report_html: Mapped[str] = mapped_column(Text, default="")  # path of the HTML report, "" when none
    curves_stored: Mapped[bool] = mapped_column(Boolean, default=True)

    items: Mapped[list[CheckItem]] = relationship(back_populates="check", order_by="CheckItem.position")
    curves: Mapped[list[DvhCurve]] = relationship(order_by="DvhCurve.position")
    inputs: Mapped[list[InputFile]] = relationship(order_by="InputFile.position")
    sign_offs: Mapped[list[SignOff]] = relationship(order_by="SignOff.id")


class CheckItem(Base):
    """One graded check of a plan (a prescription item or a DVH constraint), as in the JSON document."""

    __tablename__ = "check_items"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    check_id: Mapped[int] = mapped_column(ForeignKey("checks.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    criterion: Mapped[str] = mapped_column(String(255), index=True)  # the protocol's check id
    kind: Mapped[str] = mapped_column(String(32))
    structure: Mapped[str] = mapped_column(String(255))
    roi_name: Mapped[str | None] = mapped_column(String(255), nullable=True)
    metric: Mapped[str] = mapped_column(String(255))
    value: Mapped[float | None] = mapped_column(Float, nullable=True)
    unit: Mapped[str] = mapped_column(String(32))
    per_protocol: Mapped[str] = mapped_column(Text)
    variation_acceptable: Mapped[str | None] = mapped_column(Text, nullable=True)
    status: Mapped[str] = mapped_column(String(32))
    message: Mapped[str] = mapped_column(Text)
    required: Mapped[bool] = mapped_column(Boolean)
    source: Mapped[str] = mapped_column(Text)
    biology: Mapped[str | None] = mapped_column(Text, nullable=True)
    physical_value: Mapped[float | None] = mapped_column(Float, nullable=True)
    # The check's place on its DVH plot (rtcheck.results.DvhMarker as JSON), None when not drawn.
    marker: Mapped[str | None] = mapped_column(Text, nullable=True)

    check: Mapped[Check] = relationship(back_populates="items")


class DvhCurve(Base):
    """The DVH of one evaluated structure, enough to draw it: the differential histogram (cc per
    ``bin_width_gy`` bin from ``first_bin``), float64 little-endian, zlib-compressed."""

    __tablename__ = "dvh_curves"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    check_id: Mapped[int] = mapped_column(ForeignKey("checks.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    structure: Mapped[str] = mapped_column(String(255))
    roi_name: Mapped[str] = mapped_column(String(255))
    bin_width_gy: Mapped[float] = mapped_column(Float)
    first_bin: Mapped[int] = mapped_column(Integer)
    differential_cc: Mapped[bytes] = mapped_column(LargeBinary)
    volume_cc: Mapped[float] = mapped_column(Float)
    outside_volume_cc: Mapped[float] = mapped_column(Float)
    min_gy: Mapped[float] = mapped_column(Float)
    max_gy: Mapped[float] = mapped_column(Float)
    mean_gy: Mapped[float] = mapped_column(Float)


class InputFile(Base):
    __tablename__ = "input_files"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    check_id: Mapped[int] = mapped_column(ForeignKey("checks.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    path: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))  # "" when the file was gone at import


class SignOff(Base):
    """A reviewer's decision on one check: who, when, what, why.  Never updated nor deleted."""

    __tablename__ = "sign_offs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    check_id: Mapped[int] = mapped_column(ForeignKey("checks.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    username: Mapped[str] = mapped_column(String(64))  # as it was at signing
    decision: Mapped[str] = mapped_column(String(16))  # a Decision value
    comment: Mapped[str] = mapped_column(Text)
    document_sha256: Mapped[str] = mapped_column(String(64))  # the result signed, exactly
    signed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    reasons: Mapped[list[SignOffReason]] = relationship(order_by="SignOffReason.id")


class SignOffReason(Base):
    """The written reason for accepting (or rejecting) one failing check of the plan."""

    __tablename__ = "sign_off_reasons"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sign_off_id: Mapped[int] = mapped_column(ForeignKey("sign_offs.id"), index=True)
    check_item_id: Mapped[int] = mapped_column(ForeignKey("check_items.id"))
    criterion: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(Text)
