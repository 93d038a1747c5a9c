"""Settle-time tracking of plan arrivals, and the worker thread that checks settled plans.

Every stored instance that belongs to a plan's set (the plan, its structure
set, a dose referencing it) marks the plan pending, due ``settle_s`` seconds
after that arrival; a further arrival postpones it.  When a plan falls due the
worker takes it off the pending list and checks it once, if complete (else it
waits for the missing object, whose arrival marks it pending again).  An
arrival during the check marks the plan pending again, so the re-export is
checked after the check in progress: each settled arrival is checked exactly
once.  Checks run on this one worker thread, never on a network thread.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from rtcheck.net.catalog import Catalog, PlanFiles
from rtcheck.net.logs import log_event

LOG = logging.getLogger("rtcheck.net")


class ArrivalWorker:
    """Schedules plans ``settle_s`` after their last arrival and runs ``check(files)`` on its own thread."""

    def __init__(
        self, catalog: Catalog, check: Callable[[PlanFiles], None], settle_s: float, prepare: Callable[[], None] | None = None
    ) -> None:
        self.catalog = catalog
        self._check = check
        self._prepare = prepare
        self.settle_s = settle_s
        self._due: dict[str, float] = {}  # plan UID -> monotonic time it settles
        self._condition = threading.Condition()
        self._stopping = False
        self._current: str | None = None
        self._thread = threading.Thread(target=self._run, name="rtcheck-checks", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def arrived(self, plan_uids: list[str]) -> None:
        """Mark plans pending (an instance of their set has just been stored)."""
        if not plan_uids:
            return
        due = time.monotonic() + self.settle_s
        with self._condition:
            for uid in plan_uids:
                self._due[uid] = due
            self._condition.notify()

    def pending(self) -> list[str]:
        with self._condition:
            return sorted(self._due) + ([self._current] if self._current else [])

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

    def _next_settled(self) -> str | None:
        """Block until a plan settles (its UID) or the worker stops (None)."""
        with self._condition:
            while not self._stopping:
                now = time.monotonic()
                if self._due:
                    uid, due = min(self._due.items(), key=lambda item: item[1])
                    if due <= now:
                        del self._due[uid]
                        self._current = uid
                        return uid
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
            uid = self._next_settled()
            if uid is None:
                return
            try:
                files = self.catalog.plan_files(uid)
                if files is None:
                    log_event(LOG, logging.DEBUG, "waiting", plan=uid, missing="the RT Plan")
                elif files.missing:
                    log_event(LOG, logging.INFO, "waiting", plan=uid, missing=files.missing)
                else:
                    self._check(files)
            except Exception as exc:  # noqa: BLE001 - a failing check must not stop the listener
                LOG.exception("check of plan %s failed: %s", uid, exc)
            finally:
                with self._condition:
                    self._current = None
