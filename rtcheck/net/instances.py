"""Which SOP Instance UID the store holds, as what: refusing an instance that would take another's place.

A SOP Instance UID names one object for ever (PS3.3 C.12.1.1.1: "uniquely
identifies the SOP Instance").  An instance received with the UID of a stored
one is a re-send, which replaces the file, only when it is the same object: the
same SOP Class, patient and study.  Anything else (a CT sent with a stored RT
Plan's UID, a plan with another patient's UID) is refused, and the stored file
is left as it was.

Stores of one UID are serialised (:meth:`InstanceIndex.storing`), so that two
associations cannot both pass the test and then write.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Identity:
    """What a SOP Instance UID stands for in the store: its SOP Class, patient and study, and its file."""

    sop_class_uid: str
    patient_id: str
    study_uid: str
    path: Path

    def conflict_with(self, stored: Identity) -> str:
        """Why this instance may not replace ``stored`` (same SOP Instance UID), or "" when it may."""
        differences = [
            f"{what} {new!r} (stored: {old!r})"
            for what, new, old in (
                ("SOP Class", self.sop_class_uid, stored.sop_class_uid),
                ("patient", self.patient_id, stored.patient_id),
                ("study", self.study_uid, stored.study_uid),
            )
            if new != old
        ]
        if not differences:
            return ""
        return f"SOP Instance UID already stored as another object ({stored.path}): " + ", ".join(differences)


def identity_of(ds: object, path: Path) -> Identity:
    """The identity of a data set (pydicom Dataset) to be stored at, or read from, ``path``."""
    get = getattr(ds, "get")
    return Identity(
        str(get("SOPClassUID", "") or "").strip(),
        str(get("PatientID", "") or "").strip(),
        str(get("StudyInstanceUID", "") or "").strip(),
        path,
    )


class InstanceIndex:
    """SOP Instance UID -> :class:`Identity` of every instance in the store (thread-safe)."""

    def __init__(self) -> None:
        self._by_uid: dict[str, Identity] = {}
        self._busy: set[str] = set()
        self._changed = threading.Condition()

    def record(self, uid: str, identity: Identity) -> None:
        """Note a stored instance (the store's scan at start: the newest file of a UID is recorded last)."""
        with self._changed:
            self._by_uid[uid] = identity

    def get(self, uid: str) -> Identity | None:
        with self._changed:
            return self._by_uid.get(uid)

    @contextmanager
    def storing(self, uid: str, identity: Identity) -> Iterator[tuple[str, Path | None]]:
        """Hold ``uid`` while it is written: yields (why it is refused or "", the file it replaces if elsewhere).

        The caller writes only when the reason is empty and then calls :meth:`record`; other stores of the same
        UID wait until this one is over.
        """
        with self._changed:
            self._changed.wait_for(lambda: uid not in self._busy)
            self._busy.add(uid)
            stored = self._by_uid.get(uid)
        try:
            if stored is None:
                yield "", None
            else:
                yield identity.conflict_with(stored), (stored.path if stored.path != identity.path else None)
        finally:
            with self._changed:
                self._busy.discard(uid)
                self._changed.notify_all()
