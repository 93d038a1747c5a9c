"""Recording checks in the store: one transaction per check, idempotent by the record's key."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from enum import Enum
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from rtcheck.store.database import ResultStore
from rtcheck.store.models import Check, CheckItem, DvhCurve, InputFile
from rtcheck.store.record import CheckRecord, record_from_document

__all__ = ["ImportCounts", "Origin", "Recorded", "import_reports", "record_check", "report_documents"]


class Origin(str, Enum):
    """Which command recorded a check."""

    CHECK = "check"
    BATCH = "batch"
    LISTEN = "listen"
    IMPORT = "import"


@dataclass(frozen=True)
class Recorded:
    check_id: int
    created: bool  # False: the same check was already stored


def record_check(store: ResultStore, record: CheckRecord, origin: Origin, *, checked_at: datetime | None = None) -> Recorded:
    """Store one check (its document, items, curves, inputs) unless the same check is stored already."""
    key = record.key
    with store.session() as session:
        existing = session.scalar(select(Check.id).where(Check.key == key))
        if existing is not None:
            return Recorded(existing, False)
    document = record.parsed()
    plan, protocol = document.get("plan", {}), document.get("protocol", {})
    check = Check(
        key=key,
        plan_uid=str(plan.get("sop_instance_uid", "")),
        plan_label=str(plan.get("label", "")),
        patient_id=str(plan.get("patient_id", "")),
        patient_name=record.patient_name,
        plan_date=record.plan_date,
        study_date=record.study_date,
        protocol_id=str(protocol.get("id", "")),
        protocol_title=str(protocol.get("title", "")),
        protocol_sha256=str(protocol.get("sha256", "")),
        arm=str(protocol.get("arm", "")),
        verdict=str(document.get("verdict", "")),
        rtcheck_version=str(document.get("rtcheck_version", "")),
        checked_at=checked_at or datetime.now(timezone.utc),
        origin=origin.value,
        document=record.document_text,
        document_sha256=record.document_sha256,
        report_html=record.report_html,
        curves_stored=record.curves_stored,
    )
    markers = list(record.markers) + [None] * (len(document.get("checks", [])) - len(record.markers))
    check.items = [
        CheckItem(
            position=n, criterion=c["id"], kind=c["kind"], structure=c["structure"], roi_name=c.get("roi_name"),
            metric=c["metric"], value=c.get("value"), unit=c.get("unit", ""), per_protocol=c.get("per_protocol", ""),
            variation_acceptable=c.get("variation_acceptable"), status=c["status"], message=c.get("message", ""),
            # The column keeps its name: whether the check makes the verdict (JSON "counts"; "required" before issue 13).
            required=bool(c.get("counts", c.get("required", True))), source=c.get("source", ""), biology=c.get("biology"),
            physical_value=c.get("physical_value"), marker=markers[n],
        )
        for n, c in enumerate(document.get("checks", []))
    ]
    check.curves = [
        DvhCurve(position=n, structure=c.structure, roi_name=c.roi_name, bin_width_gy=c.bin_width_gy, first_bin=c.first_bin,
                 differential_cc=c.differential_cc, volume_cc=c.volume_cc, outside_volume_cc=c.outside_volume_cc,
                 min_gy=c.min_gy, max_gy=c.max_gy, mean_gy=c.mean_gy)
        for n, c in enumerate(record.curves)
    ]
    check.inputs = [InputFile(position=n, path=path, sha256=sha) for n, (path, sha) in enumerate(record.inputs)]
    try:
        with store.session() as session:
            session.add(check)
            session.flush()
            return Recorded(check.id, True)
    except IntegrityError:
        # Another process stored the same check meanwhile.
        with store.session() as session:
            stored = session.scalar(select(Check.id).where(Check.key == key))
        if stored is None:
            raise
        return Recorded(stored, False)


@dataclass
class ImportCounts:
    """What ``rtcheck db import`` did with the JSON files of an output folder."""

    added: int = 0
    already_stored: int = 0
    not_checks: int = 0  # summaries, error reports, other JSON
    unreadable: list[str] | None = None

    def __post_init__(self) -> None:
        self.unreadable = [] if self.unreadable is None else self.unreadable


def report_documents(out_dir: str | Path) -> list[Path]:
    """The JSON files under a ``batch --out`` folder (or a listener's store), sorted."""
    return sorted(p for p in Path(out_dir).rglob("*.json") if p.is_file())


def import_reports(store: ResultStore, files: Iterable[Path], *, on_file: Callable[[Path], None] | None = None) -> ImportCounts:
    """Record every ``rtcheck.check/1`` document among ``files``; an HTML report beside one is linked."""
    import json

    counts = ImportCounts()
    assert counts.unreadable is not None
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
            html = path.with_suffix(".html")
            record = record_from_document(text, report_html=str(html.resolve()) if html.is_file() else "")
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            counts.unreadable.append(f"{path}: {getattr(exc, 'strerror', None) or exc}")
            record = None
        else:
            if record is None:
                counts.not_checks += 1
            elif record_check(store, record, Origin.IMPORT).created:
                counts.added += 1
            else:
                counts.already_stored += 1
        if on_file is not None:
            on_file(path)
    return counts
