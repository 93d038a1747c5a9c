"""Checking a stored plan set, or a course of several (``listen --sum``), and writing its reports next to the plan.

Reports: ``rtcheck-<PlanSOPInstanceUID>.xml`` (JUnit), ``.html`` (when the HTML
renderer is available) and ``.json`` (``rtcheck.check/1``), each written
atomically, the JSON last: once it is there, the set of reports is complete.
A course of several plans has one set of reports, ``rtcheck-course-<UID of its
first plan>.*`` beside its first plan, and its plans none of their own.
A set that cannot be checked gets a JSON error report
(``rtcheck.listen-error/1``) instead and its older XML/HTML reports are removed,
so that no report contradicts the data (an HTML report left from an earlier
check is removed too when HTML is not written).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rtcheck import __version__
from rtcheck.errors import RtcheckError
from rtcheck.files import InputGuard, OutputPlace, remove_output, write_output
from rtcheck.net.catalog import CheckUnit, CourseFiles
from rtcheck.net.logs import log_event
from rtcheck.net.storage import STORED_FILE_MODE, valid_uid
from rtcheck.protocol.model import Protocol

if TYPE_CHECKING:
    from rtcheck.results import CheckResult

LOG = logging.getLogger("rtcheck.net")
ERROR_SCHEMA = "rtcheck.listen-error/1"
# The reports of a checked plan, by format name (rtcheck.render.outputs.FORMATS), in the order written: the JSON last.
REPORT_FORMATS = ("junit", "html", "json")


def report_path(plan_path: Path, plan_uid: str, suffix: str) -> Path:
    """``rtcheck-<uid><suffix>`` beside the plan; UnsafeIdentifierError if the UID cannot be part of a file name."""
    return plan_path.parent / f"rtcheck-{valid_uid(plan_uid, 'SOPInstanceUID')}{suffix}"


def course_report_path(plan_path: Path, plan_uid: str, suffix: str) -> Path:
    """``rtcheck-course-<uid><suffix>`` beside the course's first plan (``plan_uid``: that plan's UID)."""
    return plan_path.parent / f"rtcheck-course-{valid_uid(plan_uid, 'SOPInstanceUID')}{suffix}"


def unit_report_path(files: CheckUnit, suffix: str) -> Path:
    """Where the reports of a plan set, or of a course of several plans, go."""
    where = course_report_path if isinstance(files, CourseFiles) and len(files.sets) > 1 else report_path
    return where(files.plan.path, files.plan.sop_instance_uid, suffix)


def _guard(files: CheckUnit) -> InputGuard:
    """The listener's explicit permission: reports go beside the stored plan, among its set's files, never over one."""
    return InputGuard.of(files.paths, OutputPlace.BESIDE_INPUTS)


def _write(files: CheckUnit, suffix: str, text: str) -> None:
    write_output(unit_report_path(files, suffix), text, _guard(files), mode=STORED_FILE_MODE)


def _remove(files: CheckUnit, suffix: str) -> None:
    remove_output(unit_report_path(files, suffix), _guard(files))


def _course_field(files: CheckUnit) -> dict[str, Any]:
    """The ``course=`` field of a log line: the UIDs of a course's plans, in phase order."""
    return {"course": "+".join(files.plan_uids)} if isinstance(files, CourseFiles) else {}


def has_current_report(files: CheckUnit) -> bool:
    """True when the JSON report of a plan set (or course) exists and is newer than every file of it.

    A report carries the time its check began (see ``_stamp``), so a file stored during
    the check makes it stale even if the check finished later.
    """
    report = unit_report_path(files, ".json")
    try:
        written = report.stat().st_mtime_ns
        return all(path.stat().st_mtime_ns <= written for path in files.paths)
    except OSError:
        return False


@dataclass
class PlanChecker:
    """Checks plan sets against one protocol arm and writes the reports.

    ``write_lock`` is held while reports are written: shutdown takes it so that
    no report is half-written when the process exits; ``abandon`` (set by
    shutdown) makes a check in progress drop its result instead of writing.
    """

    protocol: Protocol
    arm: str
    write_lock: threading.Lock
    abandon: threading.Event
    html: bool = True
    on_result: Callable[[CheckResult, str], None] | None = None  # see ListenerConfig.on_result

    def prepare(self) -> None:
        """Import the checking and rendering code (done on the worker thread at start)."""
        import rtcheck.api  # noqa: F401
        import rtcheck.render.outputs  # noqa: F401

    def __call__(self, files: CheckUnit) -> None:
        uid = files.plan.sop_instance_uid
        started = time.monotonic()
        began_ns = time.time_ns()
        if isinstance(files, CourseFiles) and files.error:
            self._write_error(files, files.error, started, began_ns)
            return
        try:
            from rtcheck.api import check_linked_course, check_linked_set

            if isinstance(files, CourseFiles):
                result = check_linked_course(files.linked_sets, self.protocol, self.arm)
            else:
                result = check_linked_set(files.linked, self.protocol, self.arm)
        except RtcheckError as exc:
            self._write_error(files, str(exc), started, began_ns)
            return
        except Exception as exc:  # noqa: BLE001 - one bad plan must not stop the listener
            LOG.exception("check of plan %s raised an internal error", uid)
            self._write_error(files, f"internal error: {type(exc).__name__}: {exc}", started, began_ns)
            return
        self._write_result(files, result, started, began_ns)

    def _write_result(self, files: CheckUnit, result: CheckResult, started: float, began_ns: int) -> None:
        from rtcheck.render.outputs import FORMATS, Rendering

        uid = files.plan.sop_instance_uid
        rendering = Rendering([result])
        documents: dict[str, str] = {}
        for name in REPORT_FORMATS:
            if name == "html" and not self.html:
                continue
            try:
                documents[FORMATS[name].suffix] = rendering.text(name)
            except Exception:  # noqa: BLE001 - the JSON and JUnit reports still count
                if name != "html":
                    raise
                LOG.exception("HTML report of plan %s failed", uid)
        with self.write_lock:
            if self.abandon.is_set():
                log_event(LOG, logging.INFO, "abandoned", plan=uid, reason="listener stopping")
                return
            if ".html" not in documents:
                _remove(files, ".html")
            for suffix, text in documents.items():
                _write(files, suffix, text)
            _stamp(unit_report_path(files, ".json"), began_ns)
        log_event(
            LOG, logging.INFO, "checked", plan=uid, **_course_field(files), label=result.plan_label,
            patient=result.patient_id, protocol=result.protocol_id, arm=result.arm, verdict=result.verdict.value,
            seconds=round(time.monotonic() - started, 3), report=unit_report_path(files, ".json"),
        )
        if self.on_result is not None:
            try:
                self.on_result(result, str(unit_report_path(files, ".html")) if ".html" in documents else "")
            except Exception:  # noqa: BLE001 - the reports are written; a store that fails must not stop the listener
                LOG.exception("recording the check of plan %s in the results store failed", uid)

    def _write_error(self, files: CheckUnit, message: str, started: float, began_ns: int) -> None:
        uid = files.plan.sop_instance_uid
        document = {
            "schema": ERROR_SCHEMA,
            "rtcheck_version": __version__,
            "plan": {"sop_instance_uid": uid},
            **({"course": {"plan_uids": list(files.plan_uids)}} if isinstance(files, CourseFiles) else {}),
            "inputs": [str(p) for p in files.paths],
            "error": message,
            "verdict": None,
        }
        with self.write_lock:
            if self.abandon.is_set():
                log_event(LOG, logging.INFO, "abandoned", plan=uid, reason="listener stopping")
                return
            for suffix in (".xml", ".html"):
                _remove(files, suffix)
            _write(files, ".json", json.dumps(document, indent=2, ensure_ascii=False) + "\n")
            _stamp(unit_report_path(files, ".json"), began_ns)
        log_event(
            LOG, logging.ERROR, "check-failed", plan=uid, **_course_field(files), error=message,
            seconds=round(time.monotonic() - started, 3), report=unit_report_path(files, ".json"),
        )


def _stamp(report: Path, began_ns: int) -> None:
    """Date the report at its check's start, for ``has_current_report``."""
    os.utime(report, ns=(began_ns, began_ns))

