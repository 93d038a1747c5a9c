"""``rtcheck batch``: check every plan found under some folders, in parallel, with a summary.

Flow: :mod:`.discovery` groups the files into plan sets by UID references;
:mod:`.runner` (this machine) or :mod:`.cluster` (Dask) runs one task per set
(:mod:`.tasks`); this module writes each set's reports through
:mod:`.reports` as results arrive, then the summary (:mod:`.summary`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from rtcheck import __version__
from rtcheck.batch.discovery import Discovery, PlanSetFiles, discover
from rtcheck.batch.reports import SUMMARY_CSV, SUMMARY_JSON, OutputFolder
from rtcheck.batch.cohort_report import criteria_files
from rtcheck.batch.summary import ERROR, SummaryRow, counts, summary_csv, summary_document, summary_json
from rtcheck.batch.tasks import BatchSettings, TaskResult
from rtcheck.errors import RtcheckError
from rtcheck.files import write_output
from rtcheck.grading import CheckOptions
from rtcheck.protocol.model import Protocol

__all__ = ["BatchOutcome", "SummaryRow", "run_batch"]


@dataclass
class BatchOutcome:
    """What a batch did: the summary rows (sorted), where the summary went, and what was passed over."""

    rows: list[SummaryRow]
    summary_csv: Path
    summary_json: Path
    skipped: list[str] = field(default_factory=list)
    unassigned: list[str] = field(default_factory=list)
    internal_errors: int = 0

    @property
    def counts(self) -> dict[str, int]:
        return counts(self.rows)


def _row(plan_set: PlanSetFiles, result: TaskResult) -> SummaryRow:
    return SummaryRow(
        patient_id=plan_set.patient_id,
        plan_label=plan_set.plan_label,
        plan_uid=plan_set.plan_uid,
        arm=result.arm,
        verdict=ERROR if result.error and not result.verdict else result.verdict,
        deviations=result.deviations,
        variations=result.variations,
        not_evaluated=result.not_evaluated,
        report_json="",
        report_html="",
        plan_file=plan_set.plan_file,
        error=result.error,
        notes=list(result.notes),
    )


def run_batch(
    roots: list[str | Path],
    protocol: str | Protocol,
    arm: str,
    out_dir: str | Path,
    *,
    jobs: int | None = None,
    html: bool = False,
    anonymize: bool = False,
    options: CheckOptions = CheckOptions(),
    dask_scheduler: str | None = None,
    on_start: Callable[[Discovery], None] | None = None,
    on_row: Callable[[SummaryRow], None] | None = None,
    on_record: Callable[[Any, str], None] | None = None,
    sum_plans: bool = False,
) -> BatchOutcome:
    """Check every plan set under ``roots`` against ``arm`` (or ``auto``) of ``protocol``; write reports and summary.

    Per set ``<out_dir>/<patient>/<plan UID>.json`` (and ``.html`` with ``html``);
    then ``summary.csv`` and ``summary.json``.  A set that cannot be checked is a
    row with its ``error``; the batch goes on.  Problems with the batch itself
    (unknown protocol or arm, output folder among the inputs, Dask unreachable)
    raise before anything is checked.  ``on_start`` receives the discovery,
    ``on_row`` each row as its set completes (in completion order); ``on_record`` (``batch --db``)
    each checked set's :class:`rtcheck.store.record.CheckRecord` and its HTML report's path ("" when none).
    ``sum_plans`` (``batch --sum``): the plans of one patient, Frame of Reference and structure set are one course
    when the arm (with ``auto``: any arm) has as many phases (:mod:`.discovery`); the arm must have phases.
    """
    from rtcheck.batch.runner import default_jobs, run_local
    from rtcheck.api import checkable_protocol
    from rtcheck.render.outputs import FORMATS

    protocol = checkable_protocol(protocol, arm, options)  # usage errors before any file is read
    client = None
    if dask_scheduler:
        from rtcheck.batch.cluster import connect

        client = connect(dask_scheduler)  # an unreachable scheduler is an error before anything is read or created
    output = OutputFolder(out_dir, roots)  # refused when it overlaps the inputs, before any file is read
    phases: frozenset[int] = frozenset()
    if sum_plans:
        phases = protocol.course_phases(arm)
    found = discover(roots, course_phases=phases, arm=arm)
    if on_start is not None:
        on_start(found)

    settings = BatchSettings(
        protocol=protocol, arm=arm, options=options, html=html, anonymize=anonymize, generated_at=datetime.now(timezone.utc),
        records=on_record is not None,
    )
    by_key = {s.key: s for s in found.sets}
    # Names are given out in sorted order before any task runs, so they do not depend on completion order.
    names = {s.key: output.report_name(s.patient_id, s.plan_uid, "") for s in found.sets if not s.error}
    runnable = [s for s in found.sets if not s.error]
    if client is not None:
        from rtcheck.batch.cluster import run_on_dask

        results = run_on_dask(client, runnable, settings)
    else:
        results = run_local(runnable, settings, jobs or default_jobs())

    rows: list[SummaryRow] = []
    internal = 0
    check_documents: dict[str, str] = {}

    def record(row: SummaryRow) -> None:
        rows.append(row)
        if on_row is not None:
            on_row(row)

    for plan_set in found.sets:
        if plan_set.error:
            record(_row(plan_set, TaskResult(key=plan_set.key, error=plan_set.error, notes=plan_set.notes)))
    for result in results:
        plan_set = by_key[result.key]
        if result.rtcheck_version != __version__:
            result = TaskResult(
                key=result.key,
                error=f"checked by a worker running rtcheck {result.rtcheck_version}, not {__version__}: not used",
            )
        row = _row(plan_set, result)
        try:
            for name, text in result.reports.items():
                relative = names[plan_set.key] + FORMATS[name].suffix
                write_output(output.path / relative, text, output.guard, root=output.path)
                row.record_report(name, relative)
        except RtcheckError as exc:
            row.error = "; ".join(filter(None, [row.error, str(exc)]))
        internal += result.internal
        if "json" in result.reports and not result.error:
            check_documents[result.key] = result.reports["json"]
        if on_record is not None and result.record is not None and not row.error:
            on_record(result.record, str((output.path / row.report_html).resolve()) if row.report_html else "")
        record(row)

    rows.sort(key=SummaryRow.sort_key)
    protocol_info = {"id": protocol.id, "title": protocol.title, "sha256": protocol.sha256}
    document = summary_document(
        rows, protocol=protocol_info, arm=arm, roots=[str(r) for r in roots], skipped=found.skipped, unassigned=found.unassigned
    )
    csv_path, json_path = output.path / SUMMARY_CSV, output.path / SUMMARY_JSON
    write_output(csv_path, summary_csv(rows), output.guard)
    write_output(json_path, summary_json(document), output.guard)
    criteria = criteria_files([check_documents[k] for k in sorted(check_documents)], protocol=protocol_info, arm=arm)
    for name, text in criteria.items():
        write_output(output.path / name, text, output.guard)
    return BatchOutcome(rows, csv_path, json_path, found.skipped, found.unassigned, internal)
