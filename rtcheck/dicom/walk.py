"""THE walk of input trees: which files the files and folders given hold (``rtcheck check``, ``dvh``, ``batch``).

Only regular files are read.  A FIFO, device or socket found in a folder is
passed over with a note (opening one can block forever or read without end);
folders reached through symbolic links are followed, each once, so a link loop
ends the descent with a note instead of an error; a folder the system refuses
to list is reported in ``Walk.unreadable``.  Nothing is opened here, and
nothing is ever written.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from rtcheck.errors import InputError, UnreadableError

__all__ = ["Walk", "WalkedFile", "walk_inputs"]


@dataclass(frozen=True)
class WalkedFile:
    """A regular file to read; ``explicit`` when it was named itself (it must then be usable)."""

    path: Path
    explicit: bool


@dataclass
class Walk:
    """What the inputs hold: ``files`` in a stable order (each file once, however it was reached),
    ``notes`` about what was passed over ("path: skipped, why") and ``unreadable`` folders and files
    the operating system refused (path, why): a plan may lie in them, so they are never silent."""

    files: list[WalkedFile] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    unreadable: list[tuple[Path, str]] = field(default_factory=list)


def _kind_of(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def _reason(exc: OSError) -> str:
    if exc.errno == errno.ELOOP:
        return "a loop of symbolic links"
    return exc.strerror or str(exc)


class _Walker:
    def __init__(self) -> None:
        self.walk = Walk()
        self._seen_files: set[tuple[int, int]] = set()
        self._seen_folders: set[tuple[int, int]] = set()

    def given(self, path: Path) -> None:
        try:
            info = path.stat()
        except FileNotFoundError:
            broken = " (a broken symbolic link)" if path.is_symlink() else ""
            raise InputError(path, f"no such file or directory{broken}") from None
        except OSError as exc:
            raise UnreadableError(path, f"cannot be read ({_reason(exc)})") from None
        if stat.S_ISDIR(info.st_mode):
            self._folder(path, info)
        elif stat.S_ISREG(info.st_mode):
            self._file(path, info, explicit=True)
        else:
            raise InputError(path, f"is {_kind_of(info.st_mode)}; only regular files and folders are read")

    def _file(self, path: Path, info: os.stat_result, *, explicit: bool) -> None:
        key = (info.st_dev, info.st_ino)
        if key not in self._seen_files:
            self._seen_files.add(key)
            self.walk.files.append(WalkedFile(path, explicit))

    def _folder(self, root: Path, root_info: os.stat_result) -> None:
        # Depth first, a folder's files before its subfolders, names in order (as os.walk lists them).
        stack = [(root, root_info)]
        while stack:
            path, info = stack.pop()
            key = (info.st_dev, info.st_ino)
            if key in self._seen_folders:
                continue  # reached again through a link: its files are listed once (a loop ends here)
            self._seen_folders.add(key)
            subfolders = []
            for child, child_info in self._entries(path):
                if stat.S_ISDIR(child_info.st_mode):
                    subfolders.append((child, child_info))
                elif stat.S_ISREG(child_info.st_mode):
                    self._file(child, child_info, explicit=False)
                else:
                    self.walk.notes.append(f"{child}: skipped, {_kind_of(child_info.st_mode)} (only regular files are read)")
            stack.extend(reversed(subfolders))

    def _entries(self, path: Path) -> list[tuple[Path, os.stat_result]]:
        """The entries of a folder with what each leads to (links followed), problems noted."""
        try:
            with os.scandir(path) as entries:
                names = sorted(entry.name for entry in entries)
        except OSError as exc:
            self.walk.unreadable.append((path, f"folder cannot be read ({_reason(exc)})"))
            return []
        found = []
        for name in names:
            child = path / name
            try:
                found.append((child, child.stat()))
            except FileNotFoundError:
                self.walk.notes.append(f"{child}: skipped, a broken symbolic link")
            except OSError as exc:
                if exc.errno == errno.ELOOP:
                    self.walk.notes.append(f"{child}: skipped, a loop of symbolic links")
                else:
                    self.walk.unreadable.append((child, f"cannot be read ({_reason(exc)})"))
        return found


def walk_inputs(paths: list[str | Path]) -> Walk:
    """The regular files under ``paths`` (files and folders, recursively, in name order).

    A path given that does not exist or is not a regular file or folder raises
    ``InputError`` naming it; one the system refuses to read, ``UnreadableError``.
    """
    walker = _Walker()
    for given in paths:
        walker.given(Path(given))
    return walker.walk
