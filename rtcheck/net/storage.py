"""Where received instances go, and how they get there without a half-written file.

Layout: ``DIR/<PatientID>/<StudyInstanceUID>/<Modality>.<SOPInstanceUID>.dcm``.
Every component comes from the received data, so each is validated or made
safe first, and the final path is confirmed to lie inside DIR (a symbolic link
inside DIR cannot redirect a write out of it).

Instances are written by :func:`rtcheck.files.atomic_write` (temporary file,
fsync, rename, fsync of the folder), with :data:`STORED_FILE_MODE`: a reader
sees the old file or the new one, never a mix.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from rtcheck.errors import UnsafeIdentifierError

STORED_FILE_MODE = 0o644  # received instances and their reports: readable by all, written by the listener only
_UID = re.compile(r"^[0-9]+(\.[0-9]+)*$")
_UID_MAX_CHARS = 64
_SAFE_ID_CHARS = re.compile(r"[^A-Za-z0-9._-]")
_MODALITY = re.compile(r"^[A-Z0-9_]{1,16}$")
_PATIENT_ID_MAX_CHARS = 64
UNKNOWN_PATIENT = "UNKNOWN"


def valid_uid(value: object, name: str) -> str:
    """``value`` as a UID string, or UnsafeIdentifierError when it is not digits and dots, at most 64 characters."""
    text = str(value if value is not None else "").strip().rstrip("\x00")
    if not text:
        raise UnsafeIdentifierError(f"{name} is missing")
    if len(text) > _UID_MAX_CHARS or not _UID.match(text):
        raise UnsafeIdentifierError(f"{name} {text[:80]!r} is not a valid UID (digits and dots, at most 64 characters)")
    return text


def safe_patient_id(value: object) -> str:
    """A folder name for a patient ID: letters, digits, ``.``, ``_`` and ``-`` kept, anything else ``_``.

    Never ``.`` or ``..`` nor a hidden name (a leading dot becomes ``_``); an
    empty or missing ID is ``UNKNOWN``.  Distinct IDs may map to one folder
    (``A/B`` and ``A_B``); the study UID below it still keeps studies apart.
    """
    text = str(value if value is not None else "").strip()[:_PATIENT_ID_MAX_CHARS]
    text = _SAFE_ID_CHARS.sub("_", text)
    if text.startswith("."):
        text = "_" + text[1:]
    return text or UNKNOWN_PATIENT


def safe_modality(value: object, fallback: str) -> str:
    """The Modality attribute as a file-name prefix (upper-case letters, digits, ``_``), else ``fallback``."""
    text = str(value if value is not None else "").strip().upper()
    return text if _MODALITY.match(text) else fallback


def instance_path(root: Path, patient_id: object, study_uid: object, modality: str, sop_instance_uid: object) -> Path:
    """The path of an instance under ``root``; UnsafeIdentifierError when a UID is invalid or the path escapes ``root``."""
    study = valid_uid(study_uid, "StudyInstanceUID")
    sop = valid_uid(sop_instance_uid, "SOPInstanceUID")
    if not _MODALITY.match(modality):
        raise UnsafeIdentifierError(f"modality {modality!r} cannot be used in a file name")
    path = root / safe_patient_id(patient_id) / study / f"{modality}.{sop}.dcm"
    ensure_inside(root, path)
    return path


def ensure_inside(root: Path, path: Path) -> None:
    """UnsafeIdentifierError unless ``path`` (with symbolic links in existing parents resolved) lies inside ``root``."""
    real_root = os.path.realpath(root)
    real = os.path.realpath(path)
    if os.path.commonpath([real_root, real]) != real_root or real == real_root:
        raise UnsafeIdentifierError(f"{path} would lie outside {root}")
