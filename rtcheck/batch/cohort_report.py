"""The cohort statistics of a batch as ``criteria.csv``, ``criteria.json`` (``rtcheck.batch-criteria/1``)
and ``criteria.html``, a page with a plot.

The statistics are :func:`rtcheck.cohort.cohort_statistics` of the run's check documents, one
criterion per (arm, check id): with ``--arm auto`` the arms' shared ids are not mixed.
The plot is one horizontal bar per criterion, split into the share of plans per
status (colours and words of the check reports), with the values' median and
range written beside it.  Drawn as plain SVG so the page is the same bytes on
every run.
"""

from __future__ import annotations

import csv
import html
import io
import json
from typing import Any

from rtcheck import __version__
from rtcheck.cohort import STATUSES, CriterionStats, cohort_statistics, graded_checks

SCHEMA = "rtcheck.batch-criteria/1"
CRITERIA_CSV, CRITERIA_JSON, CRITERIA_HTML = "criteria.csv", "criteria.json", "criteria.html"
_COLOURS = {"per_protocol": "#2e7d32", "variation_acceptable": "#f9a825", "deviation_unacceptable": "#c62828", "not_evaluated": "#757575"}
_WORDS = {"per_protocol": "per protocol", "variation_acceptable": "variation acceptable", "deviation_unacceptable": "deviation unacceptable", "not_evaluated": "not evaluated"}
_QUANTILES = ("min", "p25", "median", "p75", "max")


def _round(value: float) -> float:
    return round(value, 4)


def _per_protocol(stats: CriterionStats) -> str:
    return "; ".join(stats.per_protocol)


def _variation(stats: CriterionStats) -> str | None:
    return "; ".join(stats.variation_acceptable) or None


def criteria_document(stats: list[CriterionStats], *, protocol: dict[str, str], arm: str) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "rtcheck_version": __version__,
        "protocol": protocol,
        "arm": arm,
        "criteria": [
            {
                "id": s.id, "arm": s.arm, "kind": s.kind, "structure": s.structure, "metric": s.metric, "unit": s.unit,
                "per_protocol": _per_protocol(s), "variation_acceptable": _variation(s), "required": s.required,
                "plans": s.plans,
                "counts": s.counts,
                "share_pct": {status: _round(s.share_pct(status)) for status in STATUSES},
                "values": {k: _round(v) for k, v in (s.quantiles() or {}).items()} or None,
                "all_values": [_round(v) for v in s.values],
            }
            for s in stats
        ],
    }


def criteria_json(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def criteria_csv(stats: list[CriterionStats]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["id", "arm", "structure", "metric", "unit", "per_protocol", "variation_acceptable", "required", "plans",
                     *(f"{s}_pct" for s in STATUSES), *(f"value_{q}" for q in _QUANTILES)])
    for s in stats:
        quantiles = s.quantiles() or {}
        writer.writerow([s.id, s.arm, s.structure, s.metric, s.unit, _per_protocol(s), _variation(s) or "", s.required, s.plans,
                         *(f"{s.share_pct(status):.1f}" for status in STATUSES),
                         *(f"{quantiles[q]:.4g}" if q in quantiles else "" for q in _QUANTILES)])
    return buffer.getvalue()


def _plot(stats: list[CriterionStats]) -> str:
    label_w, bar_w, text_w, row_h = 340, 360, 280, 22
    height = row_h * (len(stats) + 2)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{label_w + bar_w + text_w}" height="{height}" role="img" '
             'aria-label="Share of plans per status for each criterion" font-family="sans-serif" font-size="12">']
    for i, s in enumerate(stats):
        y = row_h * i + 4
        parts.append(f'<text x="{label_w - 6}" y="{y + 13}" text-anchor="end">{html.escape(f"{s.arm} · {s.id} ({s.metric})")}</text>')
        x = float(label_w)
        for status in STATUSES:
            width = bar_w * s.share_pct(status) / 100.0
            if width > 0:
                parts.append(f'<rect x="{x:.1f}" y="{y}" width="{width:.1f}" height="{row_h - 6}" fill="{_COLOURS[status]}">'
                             f'<title>{_WORDS[status]}: {s.counts[status]} of {s.plans} plans</title></rect>')
            x += width
        q = s.quantiles()
        spread = f"median {q['median']:.4g} {s.unit} (range {q['min']:.4g}–{q['max']:.4g})" if q else "no value"
        parts.append(f'<text x="{label_w + bar_w + 6}" y="{y + 13}">{html.escape(spread)}</text>')
    y = row_h * len(stats) + 8
    x = float(label_w)
    for status in STATUSES:
        parts.append(f'<rect x="{x:.0f}" y="{y}" width="12" height="12" fill="{_COLOURS[status]}"/>'
                     f'<text x="{x + 16:.0f}" y="{y + 11}">{_WORDS[status]}</text>')
        x += 16 + 7.5 * len(_WORDS[status]) + 12
    parts.append("</svg>")
    return "".join(parts)


def criteria_html(stats: list[CriterionStats], *, protocol: dict[str, str], arm: str) -> str:
    rows = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in (
            s.id, s.arm, s.structure, s.metric, _per_protocol(s), _variation(s) or "—", "yes" if s.required else "no", s.plans,
            *(f"{s.share_pct(status):.1f} %" for status in STATUSES),
            *((f"{(s.quantiles() or {})[q]:.4g} {s.unit}" if s.quantiles() else "—") for q in ("min", "median", "max")),
        )) + "</tr>"
        for s in stats
    )
    head = "".join(f"<th>{h}</th>" for h in ("criterion", "arm", "structure", "metric", "per protocol", "variation", "required", "plans",
                                               *(_WORDS[s] for s in STATUSES), "min", "median", "max"))
    title = html.escape(f"Cohort test of {protocol.get('id', '')} arm {arm}")
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        "<style>body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px;"
        "text-align:left}</style></head><body>"
        f"<h1>{title}</h1><p>{html.escape(protocol.get('title', ''))} (sha256 {html.escape(protocol.get('sha256', ''))}). "
        "Share of the checked plans per status for each criterion, and the distribution of its values "
        "(plans where it could not be evaluated have no value). rtcheck "
        f"{html.escape(__version__)}.</p>{_plot(stats)}<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table></body></html>\n"
    )


def criteria_files(documents: list[str], *, protocol: dict[str, str], arm: str) -> dict[str, str]:
    """The three cohort files (name -> text) of the plans whose check documents (JSON text) are given."""
    stats = cohort_statistics(check for text in documents for check in graded_checks(json.loads(text)))
    return {
        CRITERIA_CSV: criteria_csv(stats),
        CRITERIA_JSON: criteria_json(criteria_document(stats, protocol=protocol, arm=arm)),
        CRITERIA_HTML: criteria_html(stats, protocol=protocol, arm=arm),
    }
