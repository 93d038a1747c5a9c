"""What the store holds that has no current report yet, and why: ``rtcheck listen --status``.

A running listener keeps ``DIR/.rtcheck-status.json`` up to date (written
atomically whenever the list changes; a failure to write it, on a full disk
say, is logged and tried again at the next change).  :func:`store_status`
reads it and scans DIR itself, so it also answers when no listener runs: each
plan whose JSON report is missing or older than its files is listed with the
listener's reason (settling, checking, waiting for an object, reports not
written and retried) or, when the listener has none, what the set lacks or
``unchecked``.  A plan counts as reported when its own report is current or,
checked as part of a course (``listen --sum``), its course's report is.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from pydicom.dataset import Dataset

from rtcheck.errors import InputError, UnsafeIdentifierError
from rtcheck.net.arrivals import PlanState
from rtcheck.dicom.references import group_courses
from rtcheck.net.catalog import Catalog, CourseFiles, PlanFiles, describe_instance
from rtcheck.net.logs import log_event
from rtcheck.net.reports import has_current_report
from rtcheck.files import TEMP_PREFIX, atomic_write
from rtcheck.net.storage import valid_uid

LOG = logging.getLogger("rtcheck.net")
STATUS_FILE = ".rtcheck-status.json"
STATUS_SCHEMA = "rtcheck.listen-status/1"


def scan_store(store: Path) -> Iterator[tuple[Path, str, Dataset]]:
    """(file, SOP Instance UID, header) of every DICOM file in ``store``, oldest first (the newest copy of a UID last).

    Files that cannot be read are logged (``unreadable``) and skipped.
    """
    from rtcheck.dicom.io import read_dataset

    found = []
    for dirpath, dirnames, filenames in os.walk(store):
        dirnames.sort()
        for name in filenames:
            if name.endswith(".dcm") and not name.startswith(TEMP_PREFIX):
                path = Path(dirpath) / name
                try:
                    found.append((path.stat().st_mtime_ns, path))
                except OSError:
                    continue
    for _, path in sorted(found):
        try:
            ds = read_dataset(path, stop_before_pixels=True)
            uid = valid_uid(ds.get("SOPInstanceUID"), "SOPInstanceUID")  # a file put there by hand may hold anything
        except (InputError, UnsafeIdentifierError) as exc:
            log_event(LOG, logging.WARNING, "unreadable", path=path, error=getattr(exc, "reason", str(exc)))
            continue
        except Exception as exc:  # noqa: BLE001 - one odd file must not stop the scan
            log_event(LOG, logging.WARNING, "unreadable", path=path, error=f"{type(exc).__name__}: {exc}")
            continue
        yield path, uid, ds


def write_status(store: Path, states: list[PlanState]) -> None:
    """Write the listener's list of plans without a current report (atomically) to ``DIR/.rtcheck-status.json``."""
    document = {
        "schema": STATUS_SCHEMA,
        "pid": os.getpid(),
        "written": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "plans": [asdict(state) for state in states],
    }
    atomic_write(store / STATUS_FILE, [(json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode("utf-8")])


@dataclass(frozen=True)
class PendingSet:
    """A plan received and not yet reported: ``source`` says who knows why (``listener`` or ``scan``)."""

    plan_uid: str
    path: Path
    state: str
    reason: str
    attempts: int
    source: str


def store_status(store: Path) -> tuple[list[PendingSet], bool]:
    """Plans in ``store`` without a current report, and whether a listener is running on it (its status file)."""
    listener_states, running = _listener_states(store)
    catalog = Catalog()
    for path, _uid, ds in scan_store(store):
        catalog.add(describe_instance(ds, path))
    in_reported_course = _reported_in_courses(catalog)
    pending = []
    for plan in sorted(catalog.plans(), key=lambda p: p.sop_instance_uid):
        files = catalog.plan_files(plan.sop_instance_uid)
        if files is None or has_current_report(files) or plan.sop_instance_uid in in_reported_course:
            continue
        known = listener_states.get(plan.sop_instance_uid) if running else None
        if known is not None:
            pending.append(PendingSet(plan.sop_instance_uid, plan.path, known.state, known.reason, known.attempts, "listener"))
        elif files.missing:
            pending.append(PendingSet(plan.sop_instance_uid, plan.path, "waiting", f"lacks {files.missing}", 0, "scan"))
        else:
            why = "complete, not checked yet" + ("" if running else " (no listener running on this folder)")
            pending.append(PendingSet(plan.sop_instance_uid, plan.path, "unchecked", why, 0, "scan"))
    return pending, running


def _reported_in_courses(catalog: Catalog) -> set[str]:
    """The plans of the courses (as ``listen --sum`` groups them) that have a current course report."""
    reported: set[str] = set()
    for group in group_courses(catalog.linking().sets):
        course = CourseFiles(tuple(PlanFiles.of(linked) for linked in group.sets))
        if len(course.sets) > 1 and has_current_report(course):
            reported.update(course.plan_uids)
    return reported


def _listener_states(store: Path) -> tuple[dict[str, PlanState], bool]:
    try:
        document = json.loads((store / STATUS_FILE).read_text(encoding="utf-8"))
        pid = int(document["pid"])
        states = {p["plan_uid"]: PlanState(**p) for p in document["plans"]}
    except (OSError, ValueError, KeyError, TypeError):
        return {}, False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return states, False
    except PermissionError:
        pass
    return states, True
