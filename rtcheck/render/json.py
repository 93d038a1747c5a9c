"""JSON documents ``rtcheck.check/1`` and ``rtcheck.dvh/1`` (documented in README.md)."""

from __future__ import annotations

import json
from typing import Any

from rtcheck import __version__
from rtcheck.results import CheckResult

CHECK_SCHEMA = "rtcheck.check/1"
DVH_SCHEMA = "rtcheck.dvh/1"


def _number(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(float(value), digits)


def check_document(result: CheckResult) -> dict[str, Any]:
    """The ``rtcheck.check/1`` document of one plan's check."""
    return {
        "schema": CHECK_SCHEMA,
        "rtcheck_version": __version__,
        "protocol": {
            "id": result.protocol_id,
            "title": result.protocol_title,
            "arm": result.arm,
            "sha256": result.protocol_sha256,
        },
        "plan": {
            "label": result.plan_label,
            "sop_instance_uid": result.plan_sop_instance_uid,
            "patient_id": result.patient_id,
            "fractions": result.plan_fractions,
            "targets": [
                {
                    "name": t.name,
                    "dose_gy": _number(t.dose_gy),
                    "fractions": t.fractions,
                    "dose_per_fraction_gy": _number(t.dose_per_fraction_gy),
                    "sources": t.sources,
                }
                for t in result.targets
            ],
        },
        "checks": [
            {
                "id": c.id,
                "kind": c.kind,
                "structure": c.structure,
                "roi_name": c.roi_name,
                "metric": c.metric,
                "value": _number(c.value),
                "unit": c.unit,
                "per_protocol": c.per_protocol,
                "variation_acceptable": c.variation_acceptable,
                "status": c.status.value,
                "message": c.message,
                "constraint_kind": c.constraint_kind.value,
                "counts": c.counts,
                "source": c.source,
                "biology": c.biology,
                "physical_value": _number(c.physical_value),
            }
            for c in result.checks
        ],
        "structures": [
            {
                "structure": s.structure,
                "roi_name": s.roi_name,
                "roi_number": s.roi_number,
                "volume_cc": _number(s.volume_cc, 3),
                "outside_dose_grid_pct": _number(s.outside_dose_grid_pct, 3),
                "min_gy": _number(s.min_gy),
                "mean_gy": _number(s.mean_gy),
                "max_gy": _number(s.max_gy),
            }
            for s in result.structures
        ],
        "notes": result.notes,
        "inputs": result.input_files,
        "tps_comparison": [
            {
                "structure": t.structure,
                "roi_name": t.roi_name,
                "roi_number": t.roi_number,
                "source": t.source,
                "quantities": {
                    name: {
                        "rtcheck": _number(q.rtcheck),
                        "tps": _number(q.tps),
                        "difference": _number(q.difference),
                        "relative_difference_pct": _number(q.relative_difference_pct, 2),
                        "tolerance": _number(q.tolerance),
                        "flagged": q.flagged,
                    }
                    for name, q in t.quantities.items()
                },
                "notes": t.notes,
            }
            for t in result.tps_comparison
        ],
        "dose_comparisons": [
            c.as_dict() | {"max_difference_pct": _number(c.max_difference_pct, 3), "d2_difference_pct": _number(c.d2_difference_pct, 3),
                           "covered_pct": _number(c.covered_pct, 2)}
            for c in result.dose_comparisons
        ],
        "verdict": result.verdict.value,
    }


def render_checks(results: list[CheckResult]) -> str:
    """One document for one plan; a JSON array of documents for several."""
    documents = [check_document(r) for r in results]
    payload: Any = documents[0] if len(documents) == 1 else documents
    return json.dumps(payload, indent=2, ensure_ascii=False)


def dvh_document(rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {"schema": DVH_SCHEMA, "rtcheck_version": __version__, "structures": rows}
