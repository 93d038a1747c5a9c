"""What the store keeps of one check, in a small picklable form a batch worker can send back.

A :class:`CheckRecord` is the ``rtcheck.check/1`` JSON text rtcheck writes
(:func:`rtcheck.render.json.render_checks`), plus what the document lacks for the
dashboard: the DVH of each evaluated structure (to draw it), where each check sits
on its plot (:class:`rtcheck.results.DvhMarker`), the patient's name and the
plan/study dates, and the sha256 of each input file.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rtcheck.dvh.histogram import DoseVolumeHistogram
from rtcheck.results import CheckResult

__all__ = ["CheckRecord", "CurveRecord", "build_record", "file_sha256", "record_from_document"]

CHECK_SCHEMA = "rtcheck.check/1"
PLOT_BINS = 4096  # rtcheck's default: finer than the 600 points a plot draws, ~30 kB per structure


@dataclass(frozen=True)
class CurveRecord:
    """A structure's differential DVH from bin ``first_bin`` (cc per bin of ``bin_width_gy`` Gy),
    float64 little-endian zlib-compressed, with the exact statistics kept beside it (Gy, cc)."""

    structure: str
    roi_name: str
    bin_width_gy: float
    first_bin: int
    differential_cc: bytes
    volume_cc: float
    outside_volume_cc: float
    min_gy: float
    max_gy: float
    mean_gy: float

    @classmethod
    def of(cls, structure: str, roi_name: str, dvh: DoseVolumeHistogram) -> CurveRecord:
        """The DVH kept for plots: at most ``PLOT_BINS`` bins between its minimum and maximum, merged
        from the check's fine bins, so the cumulative volume is exact at every kept bin edge; minimum,
        maximum and mean are kept exactly.  (The checks' values come from the full DVH, not this.)"""
        size = dvh.differential_cc.size
        # Bins below the minimum and above the maximum hold nothing: they are not kept.
        first = min(max(int(math.floor(dvh.min_gy / dvh.bin_width_gy)), 0), size) if size else 0
        last = min(int(math.floor(dvh.max_gy / dvh.bin_width_gy)), size - 1) if size else -1
        merge = max(1, math.ceil((last + 1 - first) / PLOT_BINS))
        start = first - first % merge
        fine = np.asarray(dvh.differential_cc[start : last + 1], dtype=float)
        fine = np.concatenate((fine, np.zeros(-fine.size % merge)))
        kept = np.ascontiguousarray(fine.reshape(-1, merge).sum(axis=1), dtype="<f8")
        return cls(structure, roi_name, dvh.bin_width_gy * merge, start // merge, zlib.compress(kept.tobytes(), 6), dvh.volume_cc,
                   dvh.outside_volume_cc, dvh.min_gy, dvh.max_gy, dvh.mean_gy)

    def histogram(self) -> DoseVolumeHistogram:
        """The DVH again, as the check computed it (bins before ``first_bin`` are zero)."""
        kept = np.frombuffer(zlib.decompress(self.differential_cc), dtype="<f8")
        differential = np.zeros(self.first_bin + kept.size)
        differential[self.first_bin :] = kept
        return DoseVolumeHistogram(self.structure, self.bin_width_gy, differential, self.volume_cc, self.min_gy, self.max_gy,
                                   self.mean_gy, outside_volume_cc=self.outside_volume_cc)


@dataclass(frozen=True)
class CheckRecord:
    document_text: str
    inputs: tuple[tuple[str, str], ...]  # (path as given, sha256 of its bytes or "" when unreadable)
    curves: tuple[CurveRecord, ...] = ()
    markers: tuple[str | None, ...] = ()  # JSON of each check's DvhMarker, in the document's order
    patient_name: str = ""
    plan_date: str = ""  # DICOM DA, "" when absent
    study_date: str = ""
    report_html: str = ""
    curves_stored: bool = True
    document: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def parsed(self) -> dict[str, Any]:
        return self.document or json.loads(self.document_text)

    @property
    def document_sha256(self) -> str:
        return hashlib.sha256(self.document_text.encode("utf-8")).hexdigest()

    @property
    def key(self) -> str:
        """What makes a re-check the same check: the document without its input paths, and the
        inputs' contents (their paths when a file could not be read), so that checking the same
        files again with the same protocol, arm, options and rtcheck version adds nothing."""
        document = {k: v for k, v in self.parsed().items() if k != "inputs"}
        hashes = [sha for _, sha in self.inputs]
        inputs = sorted(hashes) if all(hashes) else sorted(path for path, _ in self.inputs)
        canonical = json.dumps({"document": document, "inputs": inputs}, sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def file_sha256(path: str | Path) -> str:
    """sha256 of a file's bytes; "" when it cannot be read (gone, no permission)."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    except OSError:
        return ""
    return digest.hexdigest()


def build_record(result: CheckResult, *, document_text: str | None = None, report_html: str = "") -> CheckRecord:
    """The record of a check just made (``document_text``: its JSON as written, else rendered here)."""
    if document_text is None:
        from rtcheck.render.json import render_checks

        document_text = render_checks([result])
    roi_names = {s.structure: s.roi_name for s in result.structures}
    curves = tuple(CurveRecord.of(name, roi_names.get(name, ""), dvh) for name, dvh in result.dvhs_by_structure.items())
    markers = tuple(None if c.marker is None else json.dumps(dataclasses.asdict(c.marker), sort_keys=True) for c in result.checks)
    return CheckRecord(
        document_text=document_text,
        inputs=tuple((path, file_sha256(path)) for path in result.input_files),
        curves=curves,
        markers=markers,
        patient_name=result.patient_name,
        plan_date=result.plan_date,
        study_date=result.study_date,
        report_html=report_html,
    )


def record_from_document(text: str, *, report_html: str = "") -> CheckRecord | None:
    """The record of a ``rtcheck.check/1`` document written earlier (``batch``'s reports), without
    DVH curves; None for another kind of JSON document (a batch summary, a listener's error report).
    Inputs are hashed where they still are (relative paths from the current folder)."""
    document = json.loads(text)
    if not isinstance(document, dict) or document.get("schema") != CHECK_SCHEMA:
        return None
    inputs = tuple((str(path), file_sha256(path)) for path in document.get("inputs", []))
    return CheckRecord(document_text=text, inputs=inputs, report_html=report_html, curves_stored=False, document=document)
