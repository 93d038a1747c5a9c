"""One batch task: check one plan set and render its reports, in whatever process runs it.

The task returns the reports' text rather than writing them, so a worker on
another machine (Dask) needs no access to the output folder and every file is
written by the one process that checks the output paths.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from rtcheck import __version__
from rtcheck.batch.discovery import PlanSetFiles
from rtcheck.errors import RtcheckError
from rtcheck.grading import CheckOptions
from rtcheck.protocol.model import Protocol


@dataclass(frozen=True)
class BatchSettings:
    """What every task of a batch shares: the protocol (loaded once), the arm (or ``auto``) and the outputs."""

    protocol: Protocol
    arm: str
    options: CheckOptions = CheckOptions()
    html: bool = False
    anonymize: bool = False
    generated_at: datetime | None = None  # the report date of every HTML report (the batch's start)
    records: bool = False  # also return the check's rtcheck.store record (batch --db)

    @property
    def formats(self) -> tuple[str, ...]:
        """The reports written per plan set, by format name, in the order they are written."""
        return ("json", "html") if self.html else ("json",)


@dataclass
class TaskResult:
    """A task's outcome, small and picklable: counts of the checks that make the verdict, by status and the reports' text."""

    key: str
    arm: str = ""
    verdict: str = ""
    deviations: int | None = None
    variations: int | None = None
    not_evaluated: int | None = None
    notes: tuple[str, ...] = ()
    error: str = ""
    internal: bool = False  # the error is a bug, not the input's fault
    reports: dict[str, str] = field(default_factory=dict)  # format name (rtcheck.render.outputs.FORMATS) -> text
    rtcheck_version: str = __version__
    record: Any = None  # rtcheck.store.record.CheckRecord with BatchSettings.records


def failed(plan_set: PlanSetFiles, error: str, *, internal: bool = False) -> TaskResult:
    """The result of a set that could not be checked."""
    return TaskResult(key=plan_set.key, error=error, internal=internal, notes=plan_set.notes)


def check_plan_files(plan_set: PlanSetFiles, settings: BatchSettings) -> TaskResult:
    """Check one plan set as discovery linked it; an input problem or a bug becomes the result's ``error``,
    never an exception."""
    from rtcheck.api import check_linked_course, check_linked_set
    from rtcheck.render.outputs import RenderOptions, Rendering
    from rtcheck.results import Status

    if plan_set.error or (plan_set.linked is None and not plan_set.course):
        return failed(plan_set, plan_set.error or "internal error: a plan set without its linked files", internal=not plan_set.error)
    try:
        if plan_set.course:
            result = check_linked_course(plan_set.course, settings.protocol, settings.arm, options=settings.options)
        else:
            assert plan_set.linked is not None
            result = check_linked_set(plan_set.linked, settings.protocol, settings.arm, options=settings.options)
    except RtcheckError as exc:
        return failed(plan_set, str(exc))
    except Exception as exc:  # noqa: BLE001 - one set's bug must not stop the batch
        return failed(plan_set, _internal(exc), internal=True)
    results = [result]
    required = [c.status for c in result.counted]
    outcome = TaskResult(
        key=plan_set.key,
        arm=result.arm,
        verdict=result.verdict.value,
        deviations=required.count(Status.DEVIATION_UNACCEPTABLE),
        variations=required.count(Status.VARIATION_ACCEPTABLE),
        not_evaluated=required.count(Status.NOT_EVALUATED),
        notes=plan_set.notes,
    )
    rendering = Rendering(results, RenderOptions(anonymize=settings.anonymize, generated_at=settings.generated_at))
    try:
        for name in settings.formats:
            outcome.reports[name] = rendering.text(name)
        if settings.records:
            from rtcheck.store.record import build_record

            outcome.record = build_record(result, document_text=outcome.reports.get("json"))
    except Exception as exc:  # noqa: BLE001
        outcome.error, outcome.internal = _internal(exc), True
    return outcome


def _internal(exc: Exception) -> str:
    where = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
    at = f" at {where.filename.rsplit('/', 1)[-1]}:{where.lineno}" if where else ""
    return f"internal error: {type(exc).__name__}: {exc}{at} (a bug in rtcheck; please report it)"
