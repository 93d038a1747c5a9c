"""The one way rtcheck writes a file: atomically, and never over or among its inputs.

Atomic: the content goes to a temporary file in the target's folder (named
``.rtcheck-tmp-<pid>-<random>``, so that a restart can recognise and remove
leftovers of a process that is gone), is flushed and fsynced, then renamed over
the target with ``os.replace``, and the folder is fsynced so that the rename
itself is durable.  A reader sees the old file or the new one, never a mix; a
failed write leaves no partial file.

Never over an input: every writer names its inputs and where its outputs may
go relative to them (:class:`OutputPlace`); :class:`InputGuard` refuses the
rest.  rtcheck never modifies or deletes an input file.
"""

from __future__ import annotations

import errno
import os
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from rtcheck.errors import InsideInputsError, OutputFolderError, OverwritesInputError, WriteFailedError

__all__ = [
    "TEMP_PREFIX",
    "InputGuard",
    "OutputPlace",
    "atomic_write",
    "make_dirs",
    "prepare_output_folder",
    "remove_output",
    "remove_stale_temp_files",
    "write_output",
]

TEMP_PREFIX = ".rtcheck-tmp-"
_TEMP_NAME = re.compile(r"^\.rtcheck-tmp-(\d+)-[0-9a-f]+$")
# Permission bits before the umask, as open() uses them: a report is made like any file the user writes.
FILE_MODE = 0o666


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


def atomic_write(path: Path, chunks: Iterable[bytes], *, root: Path | None = None, mode: int = FILE_MODE) -> None:
    """Write ``chunks`` to ``path`` atomically (temporary file, fsync, rename, fsync of the folder).

    With ``root`` the missing folders between ``root`` and ``path`` are created
    first.  ``mode``: the new file's permission bits before the umask.  On any
    error the temporary file is removed and the error (``OSError``) re-raised;
    an existing ``path`` is then left as it was.  No input check: callers that
    write outputs use :func:`write_output`.
    """
    if root is not None:
        make_dirs(root, path.parent)
    temp = path.parent / f"{TEMP_PREFIX}{os.getpid()}-{secrets.token_hex(8)}"
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
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


class OutputPlace(Enum):
    """Where a writer's outputs may go relative to its inputs."""

    BESIDE_INPUTS = "beside-inputs"
    """Into an input folder, as a new file or over an older report, never over an input: a path given, or a
    DICOM file inside a folder given.  ``check``'s reports may sit beside the plan; the listener writes its
    reports beside the stored plan."""

    APART = "apart"
    """Nothing inside an input folder and no input inside the output folder (``batch --out``): every output
    path, links resolved, must lie outside every input."""


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


@dataclass(frozen=True)
class InputGuard:
    """A writer's inputs (files and folders, as given) and the place its outputs may take (:class:`OutputPlace`)."""

    inputs: tuple[str, ...]
    place: OutputPlace

    @classmethod
    def of(cls, inputs: Iterable[str | Path], place: OutputPlace) -> InputGuard:
        return cls(tuple(str(p) for p in inputs), place)

    def refuse(self, target: str | Path) -> None:
        """Raise unless writing ``target`` is allowed: OverwritesInputError or InsideInputsError, naming ``target``."""
        real = os.path.realpath(target)
        for given in self.inputs:
            root = os.path.realpath(given)
            if self.place is OutputPlace.APART:
                if _inside(real, root):
                    raise InsideInputsError(target, f"resolves into the inputs ({real}); not written")
            elif real == root or (os.path.isdir(root) and os.path.isfile(real) and _inside(real, root) and _is_dicom(real)):
                raise OverwritesInputError(target, "is one of the inputs; choose another report file")

    def refuse_output_folder(self, folder: str | Path, *, label: str) -> None:
        """With :attr:`OutputPlace.APART`: raise InsideInputsError when ``folder`` overlaps an input.

        ``label`` names the folder in the message (``--out``).
        """
        out = os.path.realpath(folder)
        for given in self.inputs:
            root = os.path.realpath(given)
            if os.path.isdir(root) and (_inside(out, root) or _inside(root, out)):
                raise InsideInputsError(
                    f"{label} {folder}", f"overlaps the input folder {given}; rtcheck writes nothing among its inputs"
                )
            if not os.path.isdir(root) and _inside(root, out):
                raise InsideInputsError(f"{label} {folder}", f"holds the input file {given}; choose another folder")


def _is_dicom(path: str) -> bool:
    from rtcheck.dicom.io import is_dicom_file  # only when an existing file inside an input folder is in the way

    return is_dicom_file(path)


def prepare_output_folder(folder: str | Path, guard: InputGuard, *, label: str) -> Path:
    """``folder``, checked to lie apart from the inputs and created if missing; ``label`` names it in messages."""
    guard.refuse_output_folder(folder, label=label)
    path = Path(folder)
    if path.exists() and not path.is_dir():
        raise OutputFolderError(f"{label} {folder}", "is not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputFolderError(f"{label} {folder}", f"cannot create the folder ({exc.strerror or exc})") from None
    return path


def write_output(
    path: str | Path, content: str | bytes, guard: InputGuard, *, root: Path | None = None, mode: int = FILE_MODE
) -> None:
    """Write a report (text as UTF-8, bytes as they are) atomically, after ``guard`` allowed it.

    With ``root`` the folders between ``root`` and ``path`` are created.  A link
    at ``path`` is followed, as ``open()`` would: the file it points to is
    replaced (the guard judged that file).  Errors: OverwritesInputError,
    InsideInputsError, WriteFailedError, each naming ``path``.
    """
    guard.refuse(path)
    data = content.encode("utf-8") if isinstance(content, str) else content
    try:
        if root is not None:
            make_dirs(root, Path(path).parent)
        atomic_write(Path(os.path.realpath(path)), [data], mode=mode)
    except OSError as exc:
        raise WriteFailedError(path, f"cannot write the report ({exc.strerror or exc})") from None


def remove_output(path: str | Path, guard: InputGuard) -> None:
    """Remove an older output that would contradict a new one (a missing one is fine), after ``guard`` allowed it."""
    guard.refuse(path)
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
