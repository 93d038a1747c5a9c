"""Settle-time tracking of plan arrivals, and the worker thread that checks settled plans.

Every stored instance that belongs to a plan's set (the plan, its structure
set, a dose referencing it) marks the plan pending, due ``settle_s`` seconds
after that arrival; a further arrival postpones it.  When a plan falls due the
worker takes it off the pending list and checks it once, if complete (else it
waits for the missing object, whose arrival marks it pending again).  What is
checked is the plan's set or, with ``listen --sum``, its course (the ``resolve``
function, :mod:`rtcheck.net.courses`): a course is checked when the last of its
plans to settle settles, so the course waits for every phase's set.  An
arrival during the check marks the plan pending again, so the re-export is
checked after the check in progress: each settled arrival is checked exactly
once.  Checks run on this one worker thread, never on a network thread.

A check whose reports cannot be written (the system refused the write:
:class:`~rtcheck.errors.WriteFailedError` or ``OSError``; disk full, a folder
made unwritable) is tried again after a backoff (``RETRY_FIRST_S``, doubling up
to ``RETRY_MAX_S``) until they are, with a ``report-retry`` log line each time.
:meth:`ArrivalWorker.status` lists every plan received but not yet reported,
and why (settling, checking, waiting for an object, reports not written).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from rtcheck.errors import WriteFailedError
from rtcheck.net.catalog import Catalog, CheckUnit
from rtcheck.net.logs import log_event

LOG = logging.getLogger("rtcheck.net")
RETRY_FIRST_S = 1.0  # rtcheck's defaults: soon enough once space is freed, rare enough not to load a full disk
RETRY_MAX_S = 60.0


@dataclass(frozen=True)
class PlanState:
    """Why a received plan has no current report yet: ``state`` is settling, checking, waiting or retrying."""

    plan_uid: str
    state: str
    reason: str = ""
    attempts: int = 0  # failed attempts to write its reports


class ArrivalWorker:
    """Schedules plans ``settle_s`` after their last arrival and runs ``check(files)`` on its own thread."""

    def __init__(
        self,
        catalog: Catalog,
        check: Callable[[CheckUnit], None],
        settle_s: float,
        prepare: Callable[[], None] | None = None,
        resolve: Callable[[str], CheckUnit | None] | None = None,
    ) -> None:
        self.catalog = catalog
        self._check = check
        # What a settled plan brings to check: its set (default) or its course (listen --sum).
        self._resolve = resolve if resolve is not None else catalog.plan_files
        self._prepare = prepare
        self.settle_s = settle_s
        self._due: dict[str, float] = {}  # plan UID -> monotonic time it settles
        self._condition = threading.Condition(threading.RLock())
        self._stopping = False
        self._current: str | None = None
        self._current_plans: tuple[str, ...] = ()  # the plans of the set or course being checked
        self._waiting: dict[str, str] = {}  # plan UID -> what its set or course lacks
        self._deferred: dict[str, str] = {}  # plan UID -> the plan of its course whose settling brings the check
        self._failures: dict[str, tuple[int, str]] = {}  # plan UID -> (failed attempts, last error)
        self._status_listeners: list[Callable[[list[PlanState]], None]] = []
        self._last_status: list[PlanState] | None = None
        self._status_stale = False  # an arrival since the status was last published
        self._status_error = ""  # why the status could not be published last time
        self._thread = threading.Thread(target=self._run, name="rtcheck-checks", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def arrived(self, plan_uids: list[str]) -> None:
        """Mark plans pending (an instance of their set has just been stored)."""
        if not plan_uids:
            return
        due = time.monotonic() + self.settle_s
        with self._condition:  # re-entrant: stored() holds it already
            for uid in plan_uids:
                self._due[uid] = due
                self._waiting.pop(uid, None)
                self._deferred.pop(uid, None)
            self._status_stale = True
            self._condition.notify()

    def stored(self, add: Callable[[], list[str]]) -> None:
        """Run ``add`` (which catalogues a stored instance and returns the plans concerned) and mark those plans
        pending, as one step for the worker: a check's view of the catalogue is taken either before both (the
        arrival then brings a later check) or after both (the plan then waits to settle), never in between,
        where it would see the instance and yet be marked for another check because of it."""
        with self._condition:
            self.arrived(add())

    def pending(self) -> list[str]:
        """The plans waiting to settle, then the one being checked (a plan re-exported during its check: twice)."""
        with self._condition:
            return sorted(self._due) + ([self._current] if self._current else [])

    def on_status(self, callback: Callable[[list[PlanState]], None]) -> None:
        """Call ``callback(status())`` on the worker thread whenever the status has changed."""
        self._status_listeners.append(callback)

    def status(self) -> list[PlanState]:
        """Every plan received and not yet reported, and why (sorted by plan UID)."""
        with self._condition:
            states = {uid: PlanState(uid, "waiting", f"lacks {missing}") for uid, missing in self._waiting.items()}
            for uid, other in self._deferred.items():
                states[uid] = PlanState(uid, "settling", f"checked with its course once plan {other} has settled")
            for uid in self._due:
                attempts, error = self._failures.get(uid, (0, ""))
                if attempts:
                    states[uid] = PlanState(uid, "retrying", f"reports not written: {error}", attempts)
                else:
                    states[uid] = PlanState(uid, "settling")
            if self._current:
                attempts, error = self._failures.get(self._current, (0, ""))
                for uid in self._current_plans or (self._current,):
                    if uid != self._current and uid in self._due:  # re-sent during its course's check: settling
                        continue
                    states[uid] = PlanState(uid, "checking", f"reports not written: {error}" if attempts else "", attempts)
        return [states[uid] for uid in sorted(states)]

    def stop(self, timeout_s: float | None = None) -> bool:
        """Stop taking plans; wait up to ``timeout_s`` for the check in progress.  True when the thread ended."""
        with self._condition:
            self._stopping = True
            self._condition.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout_s)
        return not self._thread.is_alive()

    @property
    def stopping(self) -> bool:
        return self._stopping

    def _next_settled(self) -> tuple[str, CheckUnit | None] | None:
        """Block until a plan settles (its UID and its set or course as catalogued at that moment), the status is
        to be published (``("", None)``) or the worker stops (None).  A plan whose course holds another plan still
        settling is set aside: that plan's settling brings the course's check."""
        with self._condition:
            while not self._stopping:
                if self._status_stale and self._status_listeners:
                    self._status_stale = False
                    return "", None
                now = time.monotonic()
                if self._due:
                    uid, due = min(self._due.items(), key=lambda item: item[1])
                    if due <= now:
                        del self._due[uid]
                        unit = self._resolve(uid)
                        settling = [other for other in (unit.plan_uids if unit is not None else ()) if other in self._due]
                        if settling:
                            self._deferred[uid] = settling[0]
                            self._status_stale = True
                            continue
                        self._current = uid
                        self._current_plans = unit.plan_uids if unit is not None else ()
                        for plan in self._current_plans:
                            self._waiting.pop(plan, None)
                            self._deferred.pop(plan, None)
                        return uid, unit
                    self._condition.wait(due - now)
                else:
                    self._condition.wait()
            return None

    def _run(self) -> None:
        if self._prepare is not None:
            try:
                self._prepare()  # imports the checking code now, not on the first plan's clock
            except Exception:  # noqa: BLE001 - the check itself will report the problem
                LOG.debug("preparing the checks failed", exc_info=True)
        while True:
            self._publish_status()
            settled = self._next_settled()
            if settled is None:
                return
            uid, files = settled
            if not uid:
                continue
            self._publish_status()
            try:
                if files is None:
                    log_event(LOG, logging.DEBUG, "waiting", plan=uid, missing="the RT Plan")
                elif files.missing:
                    log_event(LOG, logging.INFO, "waiting", plan=uid, missing=files.missing)
                    with self._condition:
                        for plan in files.plan_uids:  # a course waiting for a phase: each of its plans says so
                            if plan not in self._due:
                                self._waiting[plan] = files.missing
                                self._deferred.pop(plan, None)
                else:
                    self._check(files)
                    with self._condition:
                        for plan in {uid, *files.plan_uids}:
                            self._failures.pop(plan, None)
            except (WriteFailedError, OSError) as exc:  # the reports could not be written: again later, however long it takes
                self._retry_later(uid, exc)
            except Exception:  # noqa: BLE001 - a failing check must not stop the listener
                log_event(LOG, logging.ERROR, "check-crashed", plan=uid, exc_info=True)
            finally:
                with self._condition:
                    self._current = None
                    self._current_plans = ()

    def _retry_later(self, uid: str, exc: Exception) -> None:
        if isinstance(exc, OSError):
            error = f"{exc.strerror or type(exc).__name__}" + (f": {exc.filename}" if exc.filename else "")
        else:
            error = str(exc)
        with self._condition:
            attempts = self._failures.get(uid, (0, ""))[0] + 1
            self._failures[uid] = (attempts, error)
            delay = min(RETRY_MAX_S, RETRY_FIRST_S * 2 ** (attempts - 1))
            if uid not in self._due:  # a new arrival meanwhile is checked when it settles, not later
                self._due[uid] = time.monotonic() + delay
            self._condition.notify()
        log_event(LOG, logging.ERROR, "report-retry", plan=uid, attempt=attempts, retry_in_s=delay, error=error)

    def _publish_status(self) -> None:
        if not self._status_listeners:
            return
        status = self.status()
        if status == self._last_status:
            return
        for callback in self._status_listeners:
            try:
                callback(status)
            except Exception as exc:  # noqa: BLE001 - the status is a courtesy; checks go on, it is tried again
                error = f"{type(exc).__name__}: {exc}"
                if error != self._status_error:  # once per kind of failure, not once per arrival on a full disk
                    log_event(LOG, logging.WARNING, "status-not-written", error=error)
                self._status_error = error
                return
        self._last_status = status
        self._status_error = ""
