"""The batch summary: one row per plan set, as ``summary.csv`` and ``summary.json`` (schema ``rtcheck.batch/1``)."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from rtcheck import __version__

SCHEMA = "rtcheck.batch/1"
ERROR = "error"  # the verdict of a set that could not be checked
VERDICTS = ("per_protocol", "variation_acceptable", "not_evaluated", "deviation_unacceptable", ERROR)


@dataclass
class SummaryRow:
    """One plan set.  The counts are of the checks that count (those that make the verdict); None when not checked.

    Report paths are relative to the output folder ("" when none was written).
    """

    patient_id: str
    plan_label: str
    plan_uid: str
    arm: str
    verdict: str
    deviations: int | None
    variations: int | None
    not_evaluated: int | None
    report_json: str
    report_html: str
    plan_file: str
    error: str
    notes: list[str] = field(default_factory=list)

    def record_report(self, output_format: str, relative: str) -> None:
        """Note the report written in ``output_format`` (``json`` or ``html``) at ``relative``."""
        setattr(self, REPORT_COLUMNS[output_format], relative)

    def sort_key(self) -> tuple[str, str, str, str]:
        return (self.patient_id, self.plan_label, self.plan_uid, self.plan_file)


REPORT_COLUMNS = {"json": "report_json", "html": "report_html"}  # the per-plan reports a batch writes, by format name
CSV_COLUMNS = [name for name in SummaryRow.__dataclass_fields__ if name != "notes"]


def counts(rows: list[SummaryRow]) -> dict[str, int]:
    """Rows per verdict (``error`` for sets that could not be checked), every verdict listed."""
    return {verdict: sum(1 for r in rows if r.verdict == verdict) for verdict in VERDICTS}


def summary_csv(rows: list[SummaryRow]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        values = asdict(row)
        writer.writerow(["" if values[c] is None else values[c] for c in CSV_COLUMNS])
    return buffer.getvalue()


def summary_document(
    rows: list[SummaryRow], *, protocol: dict[str, str], arm: str, roots: list[str], skipped: list[str], unassigned: list[str]
) -> dict[str, Any]:
    """The ``rtcheck.batch/1`` document.  Nothing in it depends on timing or on the order tasks finished in."""
    return {
        "schema": SCHEMA,
        "rtcheck_version": __version__,
        "protocol": protocol,
        "arm": arm,
        "roots": roots,
        "counts": counts(rows),
        "plans": [asdict(r) for r in rows],
        "unassigned": unassigned,
        "skipped": skipped,
    }


def summary_json(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
