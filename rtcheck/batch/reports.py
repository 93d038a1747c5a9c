"""Where a batch writes: safe, unique report names under DIR, never into the inputs."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

from rtcheck.errors import BatchError

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_MAX_NAME = 64
SUMMARY_CSV, SUMMARY_JSON = "summary.csv", "summary.json"


def safe_name(raw: str, fallback: str) -> str:
    """A file-name-safe form of ``raw``; names that had to change get a hash of the original, so stay distinct."""
    name = _UNSAFE.sub("_", raw).strip("._-")[:_MAX_NAME]
    if not name:
        return fallback
    if name != raw:
        name += "-" + hashlib.sha256(raw.encode("utf-8")).hexdigest()[:8]
    return name


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


class OutputFolder:
    """The batch's output folder, checked to be apart from the inputs, and the report files in it."""

    def __init__(self, out_dir: str | Path, roots: list[str | Path]) -> None:
        self.path = Path(out_dir)
        out = os.path.realpath(self.path)
        self._roots = [os.path.realpath(r) for r in roots]
        for given, root in zip(roots, self._roots):
            if os.path.isdir(root) and (_inside(out, root) or _inside(root, out)):
                raise BatchError(f"--out {out_dir}: overlaps the input folder {given}; rtcheck writes nothing among its inputs")
            if not os.path.isdir(root) and _inside(root, out):
                raise BatchError(f"--out {out_dir}: holds the input file {given}; choose another folder")
        if self.path.exists() and not self.path.is_dir():
            raise BatchError(f"--out {out_dir}: is not a folder")
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise BatchError(f"--out {out_dir}: cannot create the folder ({exc.strerror or exc})") from None
        self._taken: set[str] = set()

    def report_name(self, patient_id: str, plan_uid: str, suffix: str) -> str:
        """``<patient>/<plan UID><suffix>``, relative to the output folder, distinct from every name given before."""
        folder = safe_name(patient_id, "no-patient-id")
        if folder.lower() in (SUMMARY_CSV, SUMMARY_JSON):  # a patient folder must not take the summary's name
            folder += "-" + hashlib.sha256(patient_id.encode("utf-8")).hexdigest()[:8]
        stem = safe_name(plan_uid, "no-plan-uid")
        name, n = f"{folder}/{stem}{suffix}", 1
        while name.lower() in self._taken:  # case-insensitive file systems too
            n += 1
            name = f"{folder}/{stem}-{n}{suffix}"
        self._taken.add(name.lower())
        return name

    def write(self, relative: str, text: str) -> None:
        """Write a report; a path that resolves into the inputs (through a link) is refused."""
        target = self.path / relative
        real = os.path.realpath(target)
        if any(_inside(real, root) for root in self._roots):
            raise BatchError(f"{target}: resolves into the inputs ({real}); not written")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise BatchError(f"{target}: cannot write the report ({exc.strerror or exc})") from None
