"""The ``dvh`` command's output: DVH statistics per ROI as a terminal table, ``rtcheck.dvh/1`` JSON or CSV.

Doses in Gy, volumes in cc, ``outside_pct`` in % of the ROI's volume; metric
columns carry the metric as given (``D95%[Gy]``).  Each renderer returns the
whole text, ending with a newline.  With ``compare_tps`` the planning system's
DVHs (RT Dose DVHSequence) are set beside rtcheck's.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from rtcheck.dvh.tps import TOLERANCE_TEXT
from rtcheck.render.json import dvh_document
from rtcheck.render.terminal import table
from rtcheck.results import StructureStatistics

if TYPE_CHECKING:
    from rtcheck.dvh.tps import TpsQuantity

__all__ = ["DVH_FORMATS", "DvhReport", "render_dvh"]

# The planning-system quantities compared, in the order of the columns.
TPS_QUANTITIES = ("volume_cc", "mean_gy", "d95_gy", "d2cc_gy")


@dataclass(frozen=True)
class DvhReport:
    """What the ``dvh`` command shows: the rows, the metrics asked for (column order) and whether TPS DVHs were compared."""

    rows: Sequence[StructureStatistics]
    metrics: Sequence[str] = ()
    compare_tps: bool = False


def _number(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def _tps_fields(row: StructureStatistics) -> dict[str, Any]:
    if row.tps is None:
        return {"tps": None, "tps_difference": None, "tps_relative_difference_pct": None, "tps_flagged": None}
    q = row.tps.quantities
    return {
        "tps": {name: _number(q[name].tps, 4) for name in TPS_QUANTITIES},
        "tps_difference": {name: _number(q[name].difference, 4) for name in TPS_QUANTITIES},
        "tps_relative_difference_pct": {name: _number(q[name].relative_difference_pct, 2) for name in TPS_QUANTITIES},
        "tps_flagged": row.tps.flagged,
    }


def dvh_json(report: DvhReport) -> str:
    """The ``rtcheck.dvh/1`` document (doses Gy to 4 decimals, volumes cc to 3)."""
    payload = [
        {
            "name": r.name,
            "roi_number": r.roi_number,
            "volume_cc": _number(r.volume_cc),
            "outside_dose_grid_pct": _number(r.outside_dose_grid_pct),
            "min_gy": _number(r.min_gy, 4),
            "mean_gy": _number(r.mean_gy, 4),
            "max_gy": _number(r.max_gy, 4),
            "metrics": {k: _number(v, 4) for k, v in r.metrics.items()},
            **(_tps_fields(r) if report.compare_tps else {}),
            "notes": r.notes,
        }
        for r in report.rows
    ]
    return json.dumps(dvh_document(payload), indent=2, ensure_ascii=False) + "\n"


def _headers(report: DvhReport) -> list[str]:
    return ["structure", "roi_number", "volume_cc", "outside_pct", "min_gy", "mean_gy", "max_gy", *report.metrics]


def _values(row: StructureStatistics, report: DvhReport) -> list[float | None]:
    return [row.volume_cc, row.outside_dose_grid_pct, row.min_gy, row.mean_gy, row.max_gy, *(row.metrics.get(m) for m in report.metrics)]


def dvh_csv(report: DvhReport) -> str:
    """One row per ROI, numbers to 3 decimals, empty cells for values that do not exist."""
    headers = _headers(report)
    if report.compare_tps:
        headers += [f"{prefix}_{name}" for name in TPS_QUANTITIES for prefix in ("tps", "diff")] + ["tps_flagged"]
    rows = []
    for r in report.rows:
        values = _values(r, report)
        if report.compare_tps:
            values += [getattr(r.tps.quantities[name], attr) if r.tps else None for name in TPS_QUANTITIES for attr in ("tps", "difference")]
        cells = ["" if v is None else f"{v:.3f}" for v in values]
        if report.compare_tps:
            cells.append("" if r.tps is None else ";".join(r.tps.flagged))
        rows.append([r.name, str(r.roi_number), *cells])
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(headers)
    writer.writerows(rows)
    return buffer.getvalue()


def _pair(q: TpsQuantity) -> str:
    if q.rtcheck is None and q.tps is None:
        return "-"
    ours = "-" if q.rtcheck is None else f"{q.rtcheck:.2f}"
    theirs = "-" if q.tps is None else f"{q.tps:.2f}"
    difference = "" if q.difference is None else f" ({q.difference:+.2f}{' !' if q.flagged else ''})"
    return f"{ours} / {theirs}{difference}"


def dvh_table(report: DvhReport) -> str:
    """A terminal table (numbers to 2 decimals, ``-`` where none), each ROI's notes, then the TPS comparison."""
    cells = ([r.name, str(r.roi_number), *("" if v is None else f"{v:.2f}" for v in _values(r, report))] for r in report.rows)
    rows = [[c or "-" for c in row] for row in cells]
    lines = table(_headers(report), rows)
    lines += [f"  {r.name}: {note}" for r in report.rows for note in r.notes]
    if report.compare_tps:
        compared = [(r, r.tps) for r in report.rows if r.tps is not None]
        lines += ["", "Planning system DVHs: rtcheck / planning system (difference, ! above tolerance)"]
        tps_rows = [[r.name, *(_pair(t.quantities[name]) for name in TPS_QUANTITIES), ", ".join(t.flagged) or "-"] for r, t in compared]
        lines += table(["structure", "volume_cc", "mean_gy", "D95%_gy", "D2cc_gy", "flagged"], tps_rows)
        lines.append(f"Tolerance: {TOLERANCE_TEXT}.")
        without = [r.name for r in report.rows if r.tps is None]
        if without and compared:
            lines.append(f"No planning-system DVH: {', '.join(without)}")
    return "\n".join(lines) + "\n"


DVH_FORMATS: Mapping[str, Callable[[DvhReport], str]] = MappingProxyType({
    "table": dvh_table,
    "json": dvh_json,
    "csv": dvh_csv,
})


def render_dvh(report: DvhReport, output_format: str) -> str:
    """``report`` in one of :data:`DVH_FORMATS` (``table``, ``json``, ``csv``)."""
    return DVH_FORMATS[output_format](report)
