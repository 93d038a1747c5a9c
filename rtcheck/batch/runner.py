"""Running batch tasks on this machine: in-process for one job, else in a pool of worker processes.

Workers live for the whole batch, so each pays the imports and receives the
protocol once (through the pool's initializer), not once per plan.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterator

from rtcheck.batch.discovery import PlanSetFiles
from rtcheck.batch.tasks import BatchSettings, TaskResult, check_plan_files, failed

_settings: BatchSettings | None = None  # in a worker: set once by _start_worker


def default_jobs() -> int:
    """The number of CPUs this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _start_worker(settings: BatchSettings) -> None:
    global _settings
    _settings = settings
    # Pay the imports before the first plan, once per worker.
    for module in ("rtcheck.api", "rtcheck.render.outputs"):
        importlib.import_module(module)


def _check_in_worker(plan_set: PlanSetFiles) -> TaskResult:
    assert _settings is not None, "worker started without settings"
    return check_plan_files(plan_set, _settings)


def run_local(sets: list[PlanSetFiles], settings: BatchSettings, jobs: int) -> Iterator[TaskResult]:
    """Check ``sets`` with ``jobs`` processes, yielding results as they complete (in no fixed order)."""
    if jobs <= 1 or len(sets) <= 1:
        for plan_set in sets:
            yield check_plan_files(plan_set, settings)
        return
    from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait

    pool = ProcessPoolExecutor(max_workers=min(jobs, len(sets)), initializer=_start_worker, initargs=(settings,))
    try:
        pending: dict[Future[TaskResult], PlanSetFiles] = {pool.submit(_check_in_worker, s): s for s in sets}
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                plan_set = pending.pop(future)
                try:
                    yield future.result()
                except Exception as exc:  # noqa: BLE001 - a worker died (killed, out of memory): report, go on
                    yield failed(plan_set, f"internal error: worker process failed ({type(exc).__name__}: {exc})", internal=True)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
