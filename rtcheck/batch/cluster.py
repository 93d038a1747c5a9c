"""Running batch tasks on an existing Dask distributed cluster (optional extra ``dask``).

The tasks are the ones the local pool runs (:func:`rtcheck.batch.tasks.check_plan_files`);
each returns its reports' text, so workers need rtcheck installed and read
access to the input files at the same paths, but no access to the output folder.
"""

from __future__ import annotations

from collections.abc import Iterator

from rtcheck.batch.discovery import PlanSetFiles
from rtcheck.batch.tasks import BatchSettings, TaskResult, check_plan_files, failed
from rtcheck.errors import BatchError

CONNECT_TIMEOUT_S = 10


def connect(address: str):
    """A client of the Dask scheduler at ``address``; BatchError when Dask is missing or the scheduler unreachable."""
    try:
        from distributed import Client
    except ImportError:
        raise BatchError(
            "--dask-scheduler needs Dask distributed, which is not installed: pip install 'rtcheck[dask]'"
        ) from None
    _reachable(address)
    try:
        return Client(address, timeout=CONNECT_TIMEOUT_S, set_as_default=False)
    except Exception as exc:  # noqa: BLE001 - OSError, TimeoutError, ValueError for a bad address...
        raise BatchError(f"--dask-scheduler {address}: cannot connect ({type(exc).__name__}: {exc})") from None


def _reachable(address: str) -> None:
    """Fail fast, and without a half-built client left behind, on a malformed address or one where nothing listens."""
    import socket

    from distributed.comm.addressing import get_address_host_port

    try:
        host, port = get_address_host_port(address if "://" in address else f"tcp://{address}")
    except Exception as exc:  # noqa: BLE001 - ValueError, or whatever a scheme's parser raises
        raise BatchError(f"--dask-scheduler {address}: not a scheduler address such as tcp://HOST:8786 ({exc})") from None
    try:
        socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        raise BatchError(f"--dask-scheduler {address}: cannot connect ({exc.strerror or exc})") from None


def run_on_dask(client, sets: list[PlanSetFiles], settings: BatchSettings) -> Iterator[TaskResult]:
    """Check ``sets`` on the cluster of ``client`` (see :func:`connect`), yielding results as they complete.

    The client is closed when the results are exhausted (or the iteration stops).
    """
    from distributed import as_completed

    try:
        if not sets:
            return
        # The protocol travels to each worker once, not with every task.
        shared = client.scatter(settings, broadcast=True, hash=False)
        futures = client.map(check_plan_files, sets, settings=shared, pure=False)
        by_key = {future.key: plan_set for future, plan_set in zip(futures, sets)}
        for future in as_completed(futures, loop=client.loop):
            plan_set = by_key[future.key]
            try:
                result = future.result()
            except Exception as exc:  # noqa: BLE001 - a worker died or could not run the task
                result = failed(plan_set, f"internal error: Dask task failed ({type(exc).__name__}: {exc})", internal=True)
            future.release()
            yield result
    finally:
        client.close()
