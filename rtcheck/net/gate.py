"""Admission of TCP connections to the listener, so that idle sockets cannot take every association slot.

Three limits (defaults in :data:`DEFAULT_LIMITS`, documented in the README):

- a connection must send its A-ASSOCIATE request within ``request_timeout_s``
  (pynetdicom's ACSE timeout, which for an acceptor is the wait for that request);
- at most ``max_per_address`` open connections from one IP address;
- at most ``max_connections`` open connections in all.

When a limit is reached, a new connection takes the place of the oldest
connection (of that address, or of any) that has not sent its A-ASSOCIATE
request yet, which is closed; only when every counted connection has
associated is the new one refused (closed at once).  A peer that associates
promptly therefore always gets in, whatever number of sockets others hold
open without speaking.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from dataclasses import dataclass, field

from rtcheck.net.logs import log_event

LOG = logging.getLogger("rtcheck.net")
_LOG_EVERY_S = 10.0  # one line per address and reason at most this often: a flood must not flood the log


@dataclass(frozen=True)
class ConnectionLimits:
    """``request_timeout_s`` in seconds; counts of open TCP connections."""

    request_timeout_s: float = 5.0
    max_per_address: int = 32
    max_connections: int = 64


DEFAULT_LIMITS = ConnectionLimits()


@dataclass
class _Connection:
    address: str
    opened: float
    assoc: object | None = None  # the pynetdicom Association, once it exists
    requested: bool = False  # has sent its A-ASSOCIATE request


@dataclass
class _Dropped:
    count: int = 0
    logged: float = field(default=-_LOG_EVERY_S)


class ConnectionGate:
    """Counts open connections by address and decides on each new one (thread-safe)."""

    def __init__(self, limits: ConnectionLimits) -> None:
        self.limits = limits
        self._lock = threading.Lock()
        self._open: dict[socket.socket, _Connection] = {}
        self._dropped: dict[tuple[str, str], _Dropped] = {}
        self._closed = False  # after close_all: every new connection is refused

    def admit(self, sock: socket.socket, address: str) -> bool:
        """Whether to serve a new connection from ``address`` (closing a silent one to make room if need be)."""
        evicted: list[tuple[socket.socket, _Connection]] = []
        with self._lock:
            if self._closed:
                return False
            self._purge()
            admitted = True
            for scope, limit in (("address", self.limits.max_per_address), ("all", self.limits.max_connections)):
                holders = [item for item in self._open.items() if scope == "all" or item[1].address == address]
                if len(holders) < limit:
                    continue
                silent = [item for item in holders if not item[1].requested]
                if not silent:
                    admitted = False
                    reason = f"{limit} connections open from {address}" if scope == "address" else f"{limit} connections open"
                    break
                oldest = min(silent, key=lambda item: item[1].opened)
                del self._open[oldest[0]]
                evicted.append(oldest)
            if admitted:
                self._open[sock] = _Connection(address, time.monotonic())
        for old_sock, old in evicted:
            _close(old_sock)
            self._note_drop(old.address, "closed to make room: no A-ASSOCIATE request yet")
        if not admitted:
            self._note_drop(address, f"refused: {reason}")
        return admitted

    def opened(self, assoc: object, sock: socket.socket | None) -> None:
        """The association object serving ``sock`` exists (pynetdicom's EVT_CONN_OPEN)."""
        with self._lock:
            if sock is not None and sock in self._open:
                self._open[sock].assoc = assoc

    def requested(self, assoc: object) -> None:
        """The peer has sent its A-ASSOCIATE request (EVT_REQUESTED): no longer a candidate for closing."""
        with self._lock:
            for connection in self._open.values():
                if connection.assoc is assoc:
                    connection.requested = True

    def closed(self, assoc: object) -> None:
        """The connection has closed (EVT_CONN_CLOSE)."""
        with self._lock:
            for sock in [s for s, c in self._open.items() if c.assoc is assoc]:
                del self._open[sock]

    def close_all(self) -> None:
        """Close every connection still open and refuse any later one (the listener is stopping)."""
        with self._lock:
            self._closed = True
            sockets = list(self._open)
            self._open.clear()
        for sock in sockets:
            _close(sock)

    def open_count(self) -> int:
        with self._lock:
            self._purge()
            return len(self._open)

    def _purge(self) -> None:
        """Forget connections already closed whatever way (lock held)."""
        for sock, connection in list(self._open.items()):
            thread = connection.assoc
            ended = isinstance(thread, threading.Thread) and thread.ident is not None and not thread.is_alive()
            if sock.fileno() == -1 or ended:
                del self._open[sock]

    def _note_drop(self, address: str, reason: str) -> None:
        now = time.monotonic()
        with self._lock:
            dropped = self._dropped.setdefault((address, reason), _Dropped())
            dropped.count += 1
            if now - dropped.logged < _LOG_EVERY_S:
                return
            count, dropped.count, dropped.logged = dropped.count, 0, now
        log_event(LOG, logging.WARNING, "connection-dropped", peer=address, reason=reason, count=count)


def _close(sock: socket.socket) -> None:
    """End a connection that its association thread still reads: its read returns, and pynetdicom cleans up."""
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
