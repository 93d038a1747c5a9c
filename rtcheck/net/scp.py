"""The DICOM Storage SCP behind ``rtcheck listen`` (pynetdicom, imported only here).

Accepts RT Plan, RT Ion Plan, RT Dose, RT Structure Set and CT Image Storage
(CT is stored, not checked) in Implicit and Explicit VR Little Endian,
Deflated Explicit VR Little Endian and Explicit VR Big Endian, plus
Verification (C-ECHO).  The called AE title must be ours; with an allow-list
only those calling AE titles may associate.

A C-STORE is answered with success only once the instance is durably stored
(see :mod:`rtcheck.net.storage`); otherwise the sender gets a failure status
and a log line says why:

- ``0x0111`` Duplicate SOP Instance (PS3.7 C.5): its SOP Instance UID is
  already stored as another object (another SOP Class, patient or study, see
  :mod:`rtcheck.net.instances`); the stored file is left as it was;
- ``0xA700`` Refused, out of resources: the file could not be written (disk
  full, DIR unwritable) or the listener is stopping;
- ``0xA900`` Error, data set does not match SOP class: its SOP Class/Instance
  UID differs from the request's;
- ``0xC000`` Error, cannot understand: a UID that cannot be a path component
  (not digits and dots, over 64 characters, missing), or a path outside DIR;
- ``0xC210`` Error, cannot understand: the data set cannot be decoded
  completely (an element shorter than its header announces, an element header
  cut short, Pixel Data shorter than its image), checked before anything is
  written.

Connections are admitted by :mod:`rtcheck.net.gate` (idle sockets cannot hold
the association slots).  :meth:`Listener.stop` ends within ``stop_timeout_s``
whatever the peers do: associations still open are aborted (a C-STORE not yet
fully received is never acknowledged) and their sockets closed.
"""

from __future__ import annotations

import errno
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from rtcheck.dicom.sop import SOP_CLASS_KINDS, RTObjectKind
from rtcheck.dicom.io import read_received_dataset
from rtcheck.errors import InputError, ListenerError, UnsafeIdentifierError
from rtcheck.files import TEMP_PREFIX, atomic_write, remove_stale_temp_files
from rtcheck.net.arrivals import ArrivalWorker
from rtcheck.net.catalog import Catalog, CheckUnit, describe_instance
from rtcheck.net.courses import CourseRule
from rtcheck.net.gate import DEFAULT_LIMITS, ConnectionGate, ConnectionLimits
from rtcheck.net.instances import InstanceIndex, identity_of
from rtcheck.net.logs import log_event
from rtcheck.net.reports import PlanChecker, has_current_report
from rtcheck.net.status import STATUS_FILE, scan_store, write_status
from rtcheck.results import CheckResult
from rtcheck.net.storage import (
    STORED_FILE_MODE,
    instance_path,
    safe_modality,
)
from rtcheck.protocol.model import Protocol

LOG = logging.getLogger("rtcheck.net")

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
VERIFICATION = "1.2.840.10008.1.1"
STORAGE_CLASSES = {**{uid: kind.value for uid, kind in SOP_CLASS_KINDS.items()}, CT_IMAGE_STORAGE: "CT Image"}
TRANSFER_SYNTAXES = [
    "1.2.840.10008.1.2",  # Implicit VR Little Endian
    "1.2.840.10008.1.2.1",  # Explicit VR Little Endian
    "1.2.840.10008.1.2.1.99",  # Deflated Explicit VR Little Endian
    "1.2.840.10008.1.2.2",  # Explicit VR Big Endian
]
_FALLBACK_MODALITY = {
    RTObjectKind.PLAN: "RTPLAN",
    RTObjectKind.ION_PLAN: "RTPLAN",
    RTObjectKind.DOSE: "RTDOSE",
    RTObjectKind.STRUCTURE_SET: "RTSTRUCT",
}

STATUS_SUCCESS = 0x0000
STATUS_DUPLICATE_INSTANCE = 0x0111
STATUS_OUT_OF_RESOURCES = 0xA700
STATUS_DOES_NOT_MATCH = 0xA900
STATUS_CANNOT_UNDERSTAND = 0xC000
STATUS_CANNOT_DECODE = 0xC210
STOP_TIMEOUT_S = 4.0  # rtcheck's default: with the CLI's 0.5 s signal poll and the exit, within the README's 5 s
_STORE_DRAIN_SHARE = 0.6  # of the stop time, given to C-STOREs being written before associations are aborted


@dataclass
class ListenerConfig:
    """How ``rtcheck listen`` runs; ``settle_s`` in seconds."""

    store: Path
    port: int
    ae_title: str
    protocol: Protocol
    arm: str
    bind: str = "127.0.0.1"
    allowed_calling_aes: tuple[str, ...] = ()
    settle_s: float = 3.0
    html: bool = True  # write the HTML report (when rtcheck.render.html is available)
    limits: ConnectionLimits = DEFAULT_LIMITS
    stop_timeout_s: float = STOP_TIMEOUT_S
    max_associations: int = 32
    # Called with each result and its HTML report's path ("" when none) once the reports are written (listen --db).
    on_result: Callable[[CheckResult, str], None] | None = None
    # listen --sum: the plans of one course (rtcheck.net.courses) are checked as one; the arm must have phases.
    sum_plans: bool = False


@dataclass
class _Stats:
    stored: int = 0
    refused: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


class Listener:
    """A running Storage SCP: :meth:`start`, then :meth:`stop` (from any thread, e.g. after a signal)."""

    def __init__(self, config: ListenerConfig) -> None:
        self.config = config
        self.store = Path(config.store)
        self.catalog = Catalog()
        self.instances = InstanceIndex()
        self.gate = ConnectionGate(config.limits)
        self._write_lock = threading.Lock()
        self._abandon = threading.Event()
        checker = PlanChecker(config.protocol, config.arm, self._write_lock, self._abandon, html=config.html, on_result=config.on_result)
        self.courses = CourseRule(config.protocol.course_phases(config.arm), config.arm) if config.sum_plans else None
        self.worker = ArrivalWorker(self.catalog, checker, config.settle_s, prepare=checker.prepare, resolve=self._unit_of)
        self.worker.on_status(lambda states: write_status(self.store, states))
        self._stopping = False
        self._in_flight = 0
        self._in_flight_done = threading.Condition()
        self._stats = _Stats()
        self._ae: Any = None  # pynetdicom's ApplicationEntity once started
        self._server: Any = None  # its association server

    # -- life cycle ------------------------------------------------------------------------------

    def start(self) -> None:
        """Prepare DIR, resume pending plans from it, start the worker and the server (non-blocking)."""
        from pynetdicom import evt

        try:
            self.store.mkdir(parents=True, exist_ok=True)
            probe = self.store / f"{TEMP_PREFIX}{os.getpid()}-0"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise ListenerError(f"{self.store}: cannot store received files there ({exc.strerror or exc})") from None
        for path in remove_stale_temp_files(self.store, own=True):
            log_event(LOG, logging.INFO, "removed-temp", path=path)
        self._resume()

        ae = _gated_ae_class()(ae_title=self.config.ae_title)
        ae.gate = self.gate
        ae.require_called_aet = True
        if self.config.allowed_calling_aes:
            ae.require_calling_aet = list(self.config.allowed_calling_aes)
        ae.acse_timeout = self.config.limits.request_timeout_s  # an acceptor's wait for the A-ASSOCIATE request
        # The gate limits connections; pynetdicom's own count also holds threads still ending, so it gets room.
        ae.maximum_associations = 2 * self.config.limits.max_connections
        for uid in STORAGE_CLASSES:
            ae.add_supported_context(uid, TRANSFER_SYNTAXES)
        ae.add_supported_context(VERIFICATION, TRANSFER_SYNTAXES)
        handlers: list[Any] = [
            (evt.EVT_C_STORE, self._on_store),
            (evt.EVT_C_ECHO, self._on_echo),
            (evt.EVT_ACCEPTED, self._on_accepted),
            (evt.EVT_REJECTED, self._on_rejected),
            (evt.EVT_RELEASED, self._on_ended),
            (evt.EVT_ABORTED, self._on_ended),
            (evt.EVT_CONN_OPEN, self._on_connection),
            (evt.EVT_REQUESTED, lambda event: self.gate.requested(event.assoc)),
            (evt.EVT_CONN_CLOSE, lambda event: self.gate.closed(event.assoc)),
        ]
        try:
            self._server = ae.start_server((self.config.bind, self.config.port), block=False, evt_handlers=handlers)
        except OSError as exc:
            raise ListenerError(f"cannot listen on {self.config.bind}:{self.config.port} ({exc.strerror or exc})") from None
        self._ae = ae
        self.worker.start()  # after the bind: a listener that cannot serve checks nothing
        allowed = ",".join(self.config.allowed_calling_aes) or "any"
        limits = self.config.limits
        grouping: dict[str, Any] = {"sum": "courses"} if self.courses is not None else {}
        log_event(
            LOG, logging.INFO, "listening", address=f"{self.config.bind}:{self.config.port}", ae_title=self.config.ae_title,
            allow_ae=allowed, store=self.store, settle_s=self.config.settle_s, arm=self.config.arm,
            request_timeout_s=limits.request_timeout_s, max_per_address=limits.max_per_address,
            max_connections=limits.max_connections, **grouping,
        )

    def stop(self) -> bool:
        """Stop within ``stop_timeout_s`` whatever the peers do: refuse new stores and connections, let stores being
        written finish (for part of that time), abort the associations still open (a C-STORE not yet fully received
        is not acknowledged) and close their sockets, abandon the check in progress (no report is half-written),
        remove this process's temporary files.

        True when everything has ended; False when a thread is still running (an abandoned check in native code
        that cannot be interrupted, an association thread pynetdicom has not ended): the caller should end the
        process at once rather than let the interpreter wait for it."""
        started = time.monotonic()
        deadline = started + self.config.stop_timeout_s
        with self._in_flight_done:
            self._stopping = True
        server_done = threading.Event()
        if self._server is not None:
            server = self._server

            def stop_server() -> None:
                try:
                    server.shutdown()  # stops accepting (serve_forever polls every 0.5 s)
                finally:
                    server_done.set()

            threading.Thread(target=stop_server, name="rtcheck-stop-server", daemon=True).start()
        else:
            server_done.set()
        with self._in_flight_done:
            drain_until = started + _STORE_DRAIN_SHARE * self.config.stop_timeout_s
            while self._in_flight and time.monotonic() < drain_until:
                self._in_flight_done.wait(max(0.0, drain_until - time.monotonic()))
        aborted = self._abort_associations()
        self._abandon.set()
        ended = self._worker_stopped(max(0.0, deadline - time.monotonic() - 0.2))
        server_done.wait(max(0.0, deadline - time.monotonic()))
        pending = self.worker.pending()
        for path in remove_stale_temp_files(self.store, own=True):
            log_event(LOG, logging.WARNING, "removed-temp", path=path)
        try:
            (self.store / STATUS_FILE).unlink()  # no listener: `rtcheck listen --status` then reads DIR alone
        except OSError:
            pass
        threads_left = []
        for thread in threading.enumerate():  # association threads end once their sockets are closed
            if thread not in (threading.current_thread(), threading.main_thread()) and not thread.daemon:
                thread.join(max(0.0, deadline - time.monotonic()))
                if thread.is_alive():
                    threads_left.append(thread.name)
        log_event(LOG, logging.INFO, "stopped", stored=self._stats.stored, refused=self._stats.refused,
                  pending_plans=len(pending), aborted=aborted, seconds=round(time.monotonic() - started, 3))
        return ended and server_done.is_set() and not threads_left

    def _abort_associations(self) -> int:
        """A-ABORT every association still open, then close every socket still open; returns how many were open."""
        ae = self._ae
        if ae is None:
            return 0
        associations = list(ae.active_associations)
        for assoc in associations:
            if not assoc.is_established:  # no association yet (A-ABORT is invalid then): its socket is closed below
                continue
            try:
                assoc.abort(block=False)  # queues the A-ABORT; the association's own thread sends it
            except Exception:  # noqa: BLE001 - an association already ending
                pass
        time.sleep(0.1 if associations else 0.0)  # lets the A-ABORTs out before the sockets close
        self.gate.close_all()
        return len(associations)

    def _worker_stopped(self, timeout_s: float) -> bool:
        """Stop the check thread (after a report being written, if any, is complete)."""
        if not self._write_lock.acquire(timeout=timeout_s):
            return False
        try:
            return self.worker.stop(min(0.5, timeout_s))
        finally:
            self._write_lock.release()

    def _unit_of(self, plan_uid: str) -> CheckUnit | None:
        """What is checked when a stored plan settles: its set, or with ``--sum`` its course."""
        if self.courses is not None:
            return self.courses.unit_of(self.catalog, plan_uid)
        return self.catalog.plan_files(plan_uid)

    def _resume(self) -> None:
        """Catalogue DIR and schedule the plans whose reports are missing or older than their files."""
        scanned = 0
        for path, sop_uid, ds in scan_store(self.store):
            scanned += 1
            try:
                instance = describe_instance(ds, path)
            except Exception as exc:  # noqa: BLE001 - one odd file must not keep the listener from starting
                log_event(LOG, logging.WARNING, "unreadable", path=path, error=f"{type(exc).__name__}: {exc}")
                continue
            self.instances.record(sop_uid, identity_of(ds, path))  # CT too: no other object may take its UID
            self.catalog.add(instance)
        waiting = []
        for plan in self.catalog.plans():
            files = self._unit_of(plan.sop_instance_uid)
            if files is not None and not has_current_report(files):
                waiting.append(plan.sop_instance_uid)
        self.worker.arrived(waiting)
        log_event(LOG, logging.INFO, "resumed", store=self.store, files=scanned, plans=len(self.catalog.plans()),
                  to_check=len(waiting))

    # -- handlers (network threads) --------------------------------------------------------------------

    @contextmanager
    def _storing(self):
        """Count a C-STORE being handled; yields False (nothing to do but refuse) once stopping."""
        with self._in_flight_done:
            accepting = not self._stopping
            if accepting:
                self._in_flight += 1
        if not accepting:
            yield False
            return
        try:
            yield True
        finally:
            with self._in_flight_done:
                self._in_flight -= 1
                self._in_flight_done.notify_all()

    def _refuse(self, status: int, calling: str, uid: str, reason: str) -> int:
        with self._stats.lock:
            self._stats.refused += 1
        log_event(LOG, logging.WARNING, "refused", calling_ae=calling, uid=uid, status=f"0x{status:04X}", reason=reason)
        return status

    def _on_store(self, event) -> int:
        calling = _calling_ae(event)
        request = event.request
        uid = str(request.AffectedSOPInstanceUID or "")
        with self._storing() as accepting:
            if not accepting:
                return self._refuse(STATUS_OUT_OF_RESOURCES, calling, uid, "listener stopping")
            encoded = event.encoded_dataset(include_meta=True)
            try:
                ds = read_received_dataset(encoded, f"C-STORE of {uid or 'an instance'}")
            except InputError as exc:
                return self._refuse(STATUS_CANNOT_DECODE, calling, uid, exc.reason)
            sop_class = str(ds.get("SOPClassUID", ""))
            sop_uid = str(ds.get("SOPInstanceUID", ""))
            if sop_uid != uid or sop_class != str(request.AffectedSOPClassUID or ""):
                return self._refuse(
                    STATUS_DOES_NOT_MATCH, calling, uid,
                    f"data set's SOP Class/Instance UID ({sop_class}, {sop_uid}) differ from the request's",
                )
            kind = SOP_CLASS_KINDS.get(sop_class)
            try:
                fallback = (_FALLBACK_MODALITY.get(kind) if kind else None) or ("CT" if sop_class == CT_IMAGE_STORAGE else "OT")
                name = safe_modality(ds.get("Modality", ""), fallback)
                path = instance_path(self.store, ds.get("PatientID", ""), ds.get("StudyInstanceUID", ""), name, sop_uid)
            except UnsafeIdentifierError as exc:
                return self._refuse(STATUS_CANNOT_UNDERSTAND, calling, uid, str(exc))
            identity = identity_of(ds, path)
            with self.instances.storing(sop_uid, identity) as (conflict, replaced):
                if conflict:
                    return self._refuse(STATUS_DUPLICATE_INSTANCE, calling, uid, conflict)
                try:
                    atomic_write(path, [encoded], root=self.store, mode=STORED_FILE_MODE)
                except OSError as exc:
                    full = exc.errno in (errno.ENOSPC, errno.EDQUOT)
                    reason = "out of disk space" if full else "cannot write"
                    return self._refuse(STATUS_OUT_OF_RESOURCES, calling, uid, f"{path}: {reason} ({exc.strerror or exc})")
                self.instances.record(sop_uid, identity)
                if replaced is not None:  # the same object stored before under another Modality: one file per UID
                    _remove_replaced(replaced)
            self.worker.stored(lambda: self._catalogue(ds, path))
        with self._stats.lock:
            self._stats.stored += 1
        log_event(LOG, logging.INFO, "stored", calling_ae=calling, kind=STORAGE_CLASSES.get(sop_class, sop_class),
                  uid=sop_uid, path=path)
        return STATUS_SUCCESS

    def _catalogue(self, ds, path: Path) -> list[str]:
        """Add a stored instance to the catalogue; the plans whose set it belongs to."""
        try:
            return self.catalog.add(describe_instance(ds, path))
        except Exception as exc:  # noqa: BLE001 - stored all the same; the check will report the problem
            log_event(LOG, logging.WARNING, "unlinked", path=path, error=f"{type(exc).__name__}: {exc}")
            return []

    def _on_connection(self, event) -> None:
        try:
            sock = event.assoc.dul.socket.socket
        except AttributeError:
            sock = None
        self.gate.opened(event.assoc, sock)

    def _on_echo(self, event) -> int:
        log_event(LOG, logging.DEBUG, "echo", calling_ae=_calling_ae(event), peer=_peer(event))
        return STATUS_SUCCESS

    def _on_accepted(self, event) -> None:
        log_event(LOG, logging.INFO, "associated", calling_ae=_calling_ae(event), peer=_peer(event))

    def _on_rejected(self, event) -> None:
        primitive = event.assoc.requestor.primitive
        calling = str(getattr(primitive, "calling_ae_title", "") or "").strip()
        called = str(getattr(primitive, "called_ae_title", "") or "").strip()
        if self.config.allowed_calling_aes and calling not in self.config.allowed_calling_aes:
            reason = "calling AE title not allowed"
        elif called != self.config.ae_title:
            reason = "called AE title is not ours"
        else:
            reason = "too many associations or no acceptable presentation context"
        log_event(LOG, logging.WARNING, "rejected", calling_ae=calling, called_ae=called, peer=_peer(event), reason=reason)

    def _on_ended(self, event) -> None:
        how = "released" if event.event.name == "EVT_RELEASED" else "aborted"
        calling = _calling_ae(event)
        # A connection that never asked for an association (a port probe) has no calling AE: not worth a line.
        log_event(LOG, logging.INFO if calling else logging.DEBUG, how, calling_ae=calling, peer=_peer(event))


def _remove_replaced(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    log_event(LOG, logging.INFO, "replaced", path=path)


def _gated_ae_class():
    """pynetdicom's AE whose server asks :class:`ConnectionGate` before serving a connection (imported lazily)."""
    from pynetdicom import AE
    from pynetdicom.transport import ThreadedAssociationServer

    class GatedServer(ThreadedAssociationServer):
        daemon_threads = True  # the short-lived threads that start an association; stop() bounds the rest
        request_queue_size = 256  # socketserver's 5 would let a burst of idle connections delay a peer's SYN

        def __init__(self, *args, gate: ConnectionGate, **kwargs) -> None:
            self.gate = gate
            super().__init__(*args, **kwargs)

        def verify_request(self, request, client_address) -> bool:
            return self.gate.admit(request, str(client_address[0]))

    class GatedAE(AE):
        gate: ConnectionGate

        def make_server(self, address, ae_title=None, contexts=None, ssl_context=None, evt_handlers=None,
                        server_class=None, **kwargs):
            return super().make_server(address, ae_title, contexts, ssl_context, evt_handlers,
                                       server_class=GatedServer, gate=self.gate, **kwargs)

    return GatedAE


def _calling_ae(event) -> str:
    try:
        return str(event.assoc.requestor.ae_title).strip()
    except AttributeError:
        return ""


def _peer(event) -> str:
    try:
        return f"{event.assoc.requestor.address}:{event.assoc.requestor.port}"
    except AttributeError:
        return ""
