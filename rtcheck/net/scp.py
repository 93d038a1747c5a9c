"""The DICOM Storage SCP behind ``rtcheck listen`` (pynetdicom, imported only here).

Accepts RT Plan, RT Ion Plan, RT Dose, RT Structure Set and CT Image Storage
(CT is stored, not checked) in Implicit and Explicit VR Little Endian,
Deflated Explicit VR Little Endian and Explicit VR Big Endian, plus
Verification (C-ECHO).  The called AE title must be ours; with an allow-list
only those calling AE titles may associate.

A C-STORE is answered with success only once the instance is durably stored
(see :mod:`rtcheck.net.storage`); otherwise the sender gets a failure status
and a log line says why:

- ``0xA700`` Refused, out of resources: the file could not be written (disk
  full, DIR unwritable) or the listener is stopping;
- ``0xA900`` Error, data set does not match SOP class: its SOP Class/Instance
  UID differs from the request's;
- ``0xC000`` Error, cannot understand: a UID that cannot be a path component
  (not digits and dots, over 64 characters, missing), or a path outside DIR;
- ``0xC210`` Error, cannot understand: the data set cannot be decoded.
"""

from __future__ import annotations

import errno
import logging
import os
import threading
import time
from typing import Any
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from rtcheck.dicom.sop import SOP_CLASS_KINDS, RTObjectKind
from rtcheck.errors import ListenerError, UnsafeIdentifierError
from rtcheck.files import TEMP_PREFIX, atomic_write, remove_stale_temp_files
from rtcheck.net.arrivals import ArrivalWorker
from rtcheck.net.catalog import Catalog, describe_instance
from rtcheck.net.logs import log_event
from rtcheck.net.reports import PlanChecker, has_current_report
from rtcheck.net.storage import (
    STORED_FILE_MODE,
    valid_uid,
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
STATUS_OUT_OF_RESOURCES = 0xA700
STATUS_DOES_NOT_MATCH = 0xA900
STATUS_CANNOT_UNDERSTAND = 0xC000
STATUS_CANNOT_DECODE = 0xC210
_STORE_DRAIN_S = 10.0  # on shutdown, wait this long for C-STOREs being written


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
    max_associations: int = 32


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
        self._write_lock = threading.Lock()
        self._abandon = threading.Event()
        checker = PlanChecker(config.protocol, config.arm, self._write_lock, self._abandon, html=config.html)
        self.worker = ArrivalWorker(self.catalog, checker, config.settle_s, prepare=checker.prepare)
        self._stopping = False
        self._in_flight = 0
        self._in_flight_done = threading.Condition()
        self._stats = _Stats()
        self._ae: Any = None  # pynetdicom's ApplicationEntity once started

    # -- life cycle ------------------------------------------------------------------------------

    def start(self) -> None:
        """Prepare DIR, resume pending plans from it, start the worker and the server (non-blocking)."""
        from pynetdicom import AE, evt

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

        ae = AE(ae_title=self.config.ae_title)
        ae.require_called_aet = True
        if self.config.allowed_calling_aes:
            ae.require_calling_aet = list(self.config.allowed_calling_aes)
        ae.maximum_associations = self.config.max_associations
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
        ]
        try:
            ae.start_server((self.config.bind, self.config.port), block=False, evt_handlers=handlers)
        except OSError as exc:
            raise ListenerError(f"cannot listen on {self.config.bind}:{self.config.port} ({exc.strerror or exc})") from None
        self._ae = ae
        self.worker.start()  # after the bind: a listener that cannot serve checks nothing
        allowed = ",".join(self.config.allowed_calling_aes) or "any"
        log_event(
            LOG, logging.INFO, "listening", address=f"{self.config.bind}:{self.config.port}", ae_title=self.config.ae_title,
            allow_ae=allowed, store=self.store, settle_s=self.config.settle_s, arm=self.config.arm,
        )

    def stop(self) -> bool:
        """Stop cleanly: refuse new stores, end associations, let stores being written finish, abandon the check in
        progress (no report is half-written), remove this process's temporary files.

        True when the check thread has ended; False when an abandoned check is still running (in native code
        that cannot be interrupted): its result will be dropped, and the caller should end the process at once
        rather than let the interpreter finalise around it."""
        with self._in_flight_done:
            self._stopping = True
        if self._ae is not None:
            self._ae.shutdown()
        with self._in_flight_done:
            deadline = time.monotonic() + _STORE_DRAIN_S
            while self._in_flight and time.monotonic() < deadline:
                self._in_flight_done.wait(deadline - time.monotonic())
        self._abandon.set()
        with self._write_lock:  # a report being written is finished first; later ones are dropped
            ended = self.worker.stop(0.5)
        pending = self.worker.pending()
        for path in remove_stale_temp_files(self.store, own=True):
            log_event(LOG, logging.WARNING, "removed-temp", path=path)
        log_event(LOG, logging.INFO, "stopped", stored=self._stats.stored, refused=self._stats.refused,
                  pending_plans=len(pending))
        return ended

    def _resume(self) -> None:
        """Catalogue DIR and schedule the plans whose reports are missing or older than their files."""
        from rtcheck.dicom.io import read_dataset
        from rtcheck.errors import InputError

        found = []
        for dirpath, dirnames, filenames in os.walk(self.store):
            dirnames.sort()
            for name in filenames:
                if name.endswith(".dcm") and not name.startswith(TEMP_PREFIX):
                    path = Path(dirpath) / name
                    try:
                        found.append((path.stat().st_mtime_ns, path))
                    except OSError:
                        continue
        for _, path in sorted(found):  # oldest first: the newest copy of a UID wins
            try:
                ds = read_dataset(path, stop_before_pixels=True)
                valid_uid(ds.get("SOPInstanceUID"), "SOPInstanceUID")  # a file put there by hand may hold anything
                instance = describe_instance(ds, path)
            except (InputError, UnsafeIdentifierError) as exc:
                log_event(LOG, logging.WARNING, "unreadable", path=path, error=getattr(exc, "reason", str(exc)))
                continue
            except Exception as exc:  # noqa: BLE001 - one odd file must not keep the listener from starting
                log_event(LOG, logging.WARNING, "unreadable", path=path, error=f"{type(exc).__name__}: {exc}")
                continue
            self.catalog.add(instance)
        waiting = []
        for plan in self.catalog.plans():
            files = self.catalog.plan_files(plan.sop_instance_uid)
            if files is not None and not has_current_report(files):
                waiting.append(plan.sop_instance_uid)
        self.worker.arrived(waiting)
        log_event(LOG, logging.INFO, "resumed", store=self.store, files=len(found), plans=len(self.catalog.plans()),
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
            try:
                ds = event.dataset
                sop_class = str(ds.get("SOPClassUID", ""))
                sop_uid = str(ds.get("SOPInstanceUID", ""))
                patient_id = ds.get("PatientID", "")
                study_uid = ds.get("StudyInstanceUID", "")
                modality = ds.get("Modality", "")
            except Exception as exc:  # noqa: BLE001 - pydicom raises many types on bad bytes
                return self._refuse(STATUS_CANNOT_DECODE, calling, uid, f"data set cannot be decoded ({type(exc).__name__}: {exc})")
            if sop_uid != uid or sop_class != str(request.AffectedSOPClassUID or ""):
                return self._refuse(
                    STATUS_DOES_NOT_MATCH, calling, uid,
                    f"data set's SOP Class/Instance UID ({sop_class}, {sop_uid}) differ from the request's",
                )
            kind = SOP_CLASS_KINDS.get(sop_class)
            try:
                name = safe_modality(modality, (_FALLBACK_MODALITY.get(kind) if kind else None) or ("CT" if sop_class == CT_IMAGE_STORAGE else "OT"))
                path = instance_path(self.store, patient_id, study_uid, name, sop_uid)
            except UnsafeIdentifierError as exc:
                return self._refuse(STATUS_CANNOT_UNDERSTAND, calling, uid, str(exc))
            try:
                atomic_write(path, [event.encoded_dataset(include_meta=True)], root=self.store, mode=STORED_FILE_MODE)
            except OSError as exc:
                full = exc.errno in (errno.ENOSPC, errno.EDQUOT)
                reason = "out of disk space" if full else "cannot write"
                return self._refuse(STATUS_OUT_OF_RESOURCES, calling, uid, f"{path}: {reason} ({exc.strerror or exc})")
            try:
                plans = self.catalog.add(describe_instance(ds, path))
            except Exception as exc:  # noqa: BLE001 - stored all the same; the check will report the problem
                log_event(LOG, logging.WARNING, "unlinked", path=path, error=f"{type(exc).__name__}: {exc}")
                plans = []
            self.worker.arrived(plans)
        with self._stats.lock:
            self._stats.stored += 1
        log_event(LOG, logging.INFO, "stored", calling_ae=calling, kind=STORAGE_CLASSES.get(sop_class, sop_class),
                  uid=sop_uid, path=path)
        return STATUS_SUCCESS

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
