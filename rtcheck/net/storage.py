"""Where received instances go, and how they get there without a half-written file.

Layout: ``DIR/<PatientID>/<StudyInstanceUID>/<Modality>.<SOPInstanceUID>.dcm``.
Every component comes from the received data, so each is validated or made
safe first, and the final path is confirmed to lie inside DIR (a symbolic link
inside DIR cannot redirect a write out of it).

Writes are atomic: a temporary file in the target directory (named
``.rtcheck-tmp-<pid>-<random>`` so that a restart can recognise and remove
leftovers of a process that is gone), flushed and fsynced, renamed over the
target with ``os.replace``, then the directory is fsynced so the rename itself
is durable.  A reader sees the old file or the new one, never a mix.
"""

from __future__ import annotations

import errno
import os
import re
import secrets
from collections.abc import Iterable
from pathlib import Path

from rtcheck.errors import UnsafeIdentifierError

TEMP_PREFIX = ".rtcheck-tmp-"
_TEMP_NAME = re.compile(r"^\.rtcheck-tmp-(\d+)-[0-9a-f]+$")
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


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_dirs(root: Path, directory: Path) -> None:
    """Create ``directory`` (below an existing ``root``) level by level, fsyncing each parent that gained an entry."""
    relative = directory.relative_to(root)
    current = root
    for part in relative.parts:
        parent, current = current, current / part
        try:
            os.mkdir(current, 0o755)
        except FileExistsError:
            if not current.is_dir():
                raise NotADirectoryError(errno.ENOTDIR, "not a directory", str(current)) from None
            continue
        _fsync_dir(parent)


def atomic_write(path: Path, chunks: Iterable[bytes], *, root: Path | None = None) -> None:
    """Write ``chunks`` to ``path`` atomically (temporary file, fsync, rename, fsync of the directory).

    With ``root`` the missing folders between ``root`` and ``path`` are created
    first.  On any error the temporary file is removed and the error re-raised;
    an existing ``path`` is then left as it was.
    """
    if root is not None:
        make_dirs(root, path.parent)
    temp = path.parent / f"{TEMP_PREFIX}{os.getpid()}-{secrets.token_hex(8)}"
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        try:
            for chunk in chunks:
                view = memoryview(chunk)
                while view:
                    written = os.write(fd, view)
                    view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp, path)
    except BaseException:
        try:
            os.unlink(temp)
        except FileNotFoundError:
            pass
        raise
    _fsync_dir(path.parent)


def atomic_write_text(path: Path, text: str) -> None:
    """``atomic_write`` of UTF-8 text."""
    atomic_write(path, [text.encode("utf-8")])


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: leave its files alone
    return True


def remove_stale_temp_files(root: Path, *, own: bool = False) -> list[Path]:
    """Remove temporary files under ``root`` left by processes that are gone (and, with ``own``, this process's).

    Returns the removed paths.  Temporary files of another live process (a
    second listener on the same folder) are left alone.
    """
    removed = []
    me = os.getpid()
    for dirpath, _dirnames, filenames in os.walk(root):
        for name in filenames:
            match = _TEMP_NAME.match(name)
            if not match:
                continue
            pid = int(match.group(1))
            if (pid == me and not own) or (pid != me and _process_alive(pid)):
                continue
            path = Path(dirpath) / name
            try:
                os.unlink(path)
                removed.append(path)
            except FileNotFoundError:
                pass
    return removed
