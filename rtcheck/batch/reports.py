"""Where a batch writes: safe, unique report names under DIR, which lies apart from the inputs.

The files themselves are written by :func:`rtcheck.files.write_output`, with the folder's :attr:`OutputFolder.guard`.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from rtcheck.files import InputGuard, OutputPlace, prepare_output_folder

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


class OutputFolder:
    """The batch's output folder, checked to be apart from the inputs, and the report names in it.

    ``guard`` is the rule every write into it follows: no path that resolves into the inputs (through a link).
    """

    def __init__(self, out_dir: str | Path, roots: list[str | Path]) -> None:
        self.guard = InputGuard.of(roots, OutputPlace.APART)
        self.path = prepare_output_folder(out_dir, self.guard, label="--out")
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
