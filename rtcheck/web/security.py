"""What guards the dashboard: sessions, CSRF tokens, roles, a login rate limit, pseudonyms.

Every page needs a logged-in active account; every POST a CSRF token bound to the
session; signing off the role reviewer or admin.  Failed logins are limited per
client address and per user name (``LoginThrottle``).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, MutableMapping
from typing import Any

__all__ = ["LoginThrottle", "Pseudonyms", "csrf_token", "tokens_match"]

CSRF_FIELD = "csrf_token"


def csrf_token(session: MutableMapping[str, Any]) -> str:
    """The session's CSRF token, made on first use."""
    token = session.get(CSRF_FIELD)
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        session[CSRF_FIELD] = token
    return token


def tokens_match(expected: object, given: object) -> bool:
    return isinstance(expected, str) and isinstance(given, str) and bool(given) and hmac.compare_digest(expected, given)


class LoginThrottle:
    """At most ``max_failures`` failed logins per ``window_s`` seconds for one client address, and for
    one user name (rtcheck's defaults: 5 per 5 minutes, as OWASP suggests a small number per window)."""

    def __init__(self, max_failures: int = 5, window_s: float = 300.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_failures, self.window_s, self._clock = max_failures, window_s, clock
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._failures.setdefault(key, deque())
        while times and now - times[0] >= self.window_s:
            times.popleft()
        return times

    def wait_s(self, address: str, username: str) -> float:
        """Seconds before this client may try this user name again (0: now)."""
        now = self._clock()
        with self._lock:
            waits = [self.window_s - (now - t[0]) for t in (self._recent("a:" + address, now), self._recent("u:" + username, now))
                     if len(t) >= self.max_failures]
        return max(waits, default=0.0)

    def failed(self, address: str, username: str) -> None:
        now = self._clock()
        with self._lock:
            for key in ("a:" + address, "u:" + username):
                self._recent(key, now).append(now)

    def succeeded(self, username: str) -> None:
        with self._lock:
            self._failures.pop("u:" + username, None)


class Pseudonyms:
    """``--anonymize``: a patient ID shown as ``patient-`` and a keyed hash, stable for this process only."""

    def __init__(self) -> None:
        self._key = secrets.token_bytes(32)

    def __call__(self, patient_id: str) -> str:
        return "patient-" + hmac.new(self._key, patient_id.encode("utf-8"), hashlib.sha256).hexdigest()[:10]
