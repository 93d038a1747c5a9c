"""ProKnow DS scorecard templates (JSON), as the proknow-python SDK reads and writes them.

A template is ``{"name": ..., "computed": [...], "custom": [...]}``; each computed
metric has a ``type`` (``DOSE_VOLUME_PERCENT_ROI``, ``MAX_DOSE_ROI``...), a
``roi_name``, arguments ``arg_1``/``arg_2`` (doses in Gy, volumes in % or cc) and
``objectives``: 2 to 10 levels, each ``{"label", "color", "min"?, "max"?}``.

rtcheck reads a value's level as the first objective whose [min, max] holds it
(bounds inclusive; the SDK documents neither rule), maps each level's label to a
status (:data:`DEFAULT_LEVELS`, or the caller's mapping) and requires the
statuses to rise in one direction along the value axis, which gives a one-sided
per-protocol and variation limit.  Anything else is refused with the item and
the reason: two-sided levels, a label without a status, a metric type rtcheck
does not compute.  Custom metrics (values typed in by users) and computed metrics
without objectives (display only) are listed in ``source.not_imported``.
"""

from __future__ import annotations

import json
import math
from typing import Any

from rtcheck.errors import ProtocolExportError
from rtcheck.metrics.grammar import Metric, MetricKind
from rtcheck.protocol.importers._common import (
    DocumentBuilder,
    Exported,
    absolute_constraints,
    known_keys,
    read_json,
    export_arm,
    metric_text,
    operator_losses,
)
from rtcheck.protocol.model import Protocol

FORMAT_TITLE = "ProKnow DS scorecard template"
PER_PROTOCOL, VARIATION, DEVIATION = "per_protocol", "variation_acceptable", "deviation_unacceptable"
_SEVERITY = {PER_PROTOCOL: 0, VARIATION: 1, DEVIATION: 2}
# Labels -> statuses.  The rtcheck labels are what export_proknow writes; the others are the
# levels of the SDK's own example (coloured green, light green, yellow, orange, red there).
DEFAULT_LEVELS = {
    "PER PROTOCOL": PER_PROTOCOL,
    "VARIATION ACCEPTABLE": VARIATION,
    "DEVIATION UNACCEPTABLE": DEVIATION,
    "IDEAL": PER_PROTOCOL,
    "GOOD": PER_PROTOCOL,
    "ACCEPTABLE": VARIATION,
    "MARGINAL": VARIATION,
    "UNACCEPTABLE": DEVIATION,
}
_COLOURS = {PER_PROTOCOL: [18, 191, 0], VARIATION: [255, 216, 0], DEVIATION: [255, 0, 0]}
# ProKnow computed metric type -> (rtcheck kind, argument unit, output unit); doses in Gy.
_TYPES: dict[str, tuple[MetricKind, str | None, str]] = {
    "DOSE_VOLUME_PERCENT_ROI": (MetricKind.DOSE_AT_VOLUME, "%", "Gy"),
    "DOSE_VOLUME_CC_ROI": (MetricKind.DOSE_AT_VOLUME, "cc", "Gy"),
    "DOSE_VOLUME_MINUS_CC_ROI": (MetricKind.DOSE_COMPLEMENT, "cc", "Gy"),
    "VOLUME_CC_DOSE_ROI": (MetricKind.VOLUME_AT_DOSE, "Gy", "cc"),
    "VOLUME_PERCENT_DOSE_ROI": (MetricKind.VOLUME_AT_DOSE, "Gy", "%"),
    "MIN_DOSE_ROI": (MetricKind.MIN, None, "Gy"),
    "MAX_DOSE_ROI": (MetricKind.MAX, None, "Gy"),
    "MEAN_DOSE_ROI": (MetricKind.MEAN, None, "Gy"),
}
_TOP_KEYS = {"name", "computed", "custom", "id"}
_ITEM_KEYS = {"type", "roi_name", "arg_1", "arg_2", "objectives", "id"}
_OBJECTIVE_KEYS = {"label", "color", "min", "max"}


def import_proknow(data: bytes, file_name: str, *, protocol_id: str | None = None, levels: dict[str, str] | None = None) -> dict:
    """The protocol document of a ProKnow scorecard template; ``levels`` adds or overrides label -> status."""
    mapping = {**DEFAULT_LEVELS, **{k.strip().upper(): v for k, v in (levels or {}).items()}}
    doc = read_json(data, file_name)
    builder = DocumentBuilder(file_name, data, FORMAT_TITLE, title="")
    if not isinstance(doc, dict):
        raise builder.fail(None, "expected a JSON object with name, computed and custom")
    known_keys(doc, _TOP_KEYS, builder, "top level")
    name = doc.get("name")
    if not isinstance(name, str) or not name.strip():
        raise builder.fail("name", "expected the scorecard's name")
    builder.title = name.strip()
    computed = doc.get("computed")
    if not isinstance(computed, list):
        raise builder.fail("computed", "expected a list of computed metrics")
    for i, item in enumerate(doc.get("custom") or []):
        label = item.get("id", "?") if isinstance(item, dict) else item
        builder.not_imported.append(f"custom[{i}] ({label}): a custom metric is a value typed in by a user, not a dose metric")
    for i, item in enumerate(computed):
        _item(item, f"computed[{i}]", builder, mapping)
    return builder.build(protocol_id)



def _item(item: Any, location: str, builder: DocumentBuilder, mapping: dict[str, str]) -> None:
    if not isinstance(item, dict):
        raise builder.fail(location, "expected a computed metric (a JSON object)")
    known_keys(item, _ITEM_KEYS, builder, location)
    kind = item.get("type")
    roi = item.get("roi_name")
    location = f"{location} ({kind} of {roi})"
    objectives = item.get("objectives") or []
    if not objectives:
        builder.not_imported.append(f"{location}: no objectives (displayed, never graded)")
        return
    if kind not in _TYPES:
        raise builder.fail(location, f"metric type {kind!r} has no rtcheck metric; rtcheck reads {', '.join(_TYPES)}")
    if not isinstance(roi, str) or not roi.strip():
        raise builder.fail(location, "expected roi_name")
    metric_kind, argument_unit, output_unit = _TYPES[kind]
    argument = None
    if argument_unit is not None:
        argument = _number(item.get("arg_1"), builder, f"{location}.arg_1")
    if item.get("arg_2") is not None:
        raise builder.fail(f"{location}.arg_2", f"{kind} takes one argument, arg_2 is {item['arg_2']!r}")
    metric: Metric = builder.metric(metric_text(metric_kind, argument, argument_unit, output_unit), location)
    (operator, per_protocol), variation = _limits(objectives, builder, location, mapping)
    structure = builder.structure(roi, [], [], location)
    builder.constraint(
        structure, metric, operator, per_protocol, variation[1] if variation else None,
        kind="required", location=location, variation_operator=variation[0] if variation else None,
    )


def _number(value: Any, builder: DocumentBuilder, location: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise builder.fail(location, f"expected a number, got {value!r}")
    return float(value)


def _limits(
    objectives: Any, builder: DocumentBuilder, location: str, mapping: dict[str, str]
) -> tuple[tuple[str, float], tuple[str, float] | None]:
    """The one-sided limits the levels describe: per protocol and variation (None without that level),
    each as (operator, value)."""
    if not isinstance(objectives, list) or not 2 <= len(objectives) <= 10:
        raise builder.fail(f"{location}.objectives", "expected 2 to 10 objectives")
    bins = []
    for j, objective in enumerate(objectives):
        where = f"{location}.objectives[{j}]"
        if not isinstance(objective, dict):
            raise builder.fail(where, "expected an objective {label, color, min, max}")
        known_keys(objective, _OBJECTIVE_KEYS, builder, where)
        label = str(objective.get("label", "")).strip()
        status = mapping.get(label.upper())
        if status not in _SEVERITY:
            raise builder.fail(
                where,
                f"label {label!r} has no rtcheck status; known labels: {', '.join(sorted(mapping))} "
                "(map others with --level LABEL=per_protocol|variation_acceptable|deviation_unacceptable)",
            )
        low = None if objective.get("min") is None else _number(objective["min"], builder, f"{where}.min")
        high = None if objective.get("max") is None else _number(objective["max"], builder, f"{where}.max")
        bins.append((low, high, status))
    bounds = sorted({b for low, high, _ in bins for b in (low, high) if b is not None})
    if not bounds:
        raise builder.fail(f"{location}.objectives", "no objective has a min or max: nothing separates the levels")
    # Probe the value axis: below, at and between every boundary, and above.
    probes = [bounds[0] - 1.0]
    for k, b in enumerate(bounds):
        probes.append(b)
        probes.append((b + bounds[k + 1]) / 2 if k + 1 < len(bounds) else b + 1.0)
    statuses = []
    for value in probes:
        hit = next((s for low, high, s in bins if (low is None or value >= low) and (high is None or value <= high)), None)
        if hit is None:
            raise builder.fail(f"{location}.objectives", f"the value {value:g} falls in no objective: the levels leave a gap")
        statuses.append(hit)
    severities = [_SEVERITY[s] for s in statuses]
    if severities == sorted(severities):
        upper = True
    elif severities == sorted(severities, reverse=True):
        upper = False
    else:
        raise builder.fail(f"{location}.objectives", "the levels are not one-sided (a status returns along the value axis): rtcheck grades one-sided limits only")
    if PER_PROTOCOL not in statuses or DEVIATION not in statuses:
        missing = "per protocol" if PER_PROTOCOL not in statuses else "a deviation"
        raise builder.fail(f"{location}.objectives", f"no level maps to {missing}: the objectives state no pass/fail limit")
    per_protocol = _edge(probes, statuses, PER_PROTOCOL, upper)
    variation = _edge(probes, statuses, VARIATION, upper) if VARIATION in statuses else None
    return per_protocol, variation


def _edge(probes: list[float], statuses: list[str], status: str, upper: bool) -> tuple[str, float]:
    """Where ``status`` ends towards worse statuses, as a limit (operator, value).

    Boundaries are the probes at odd positions: the status holding on a boundary makes
    the limit inclusive; one ending just before the next boundary makes it strict.
    """
    indices = [k for k, s in enumerate(statuses) if s == status]
    k = indices[-1] if upper else indices[0]
    if k % 2 == 1:
        return ("<=" if upper else ">="), probes[k]
    return ("<" if upper else ">"), probes[k + 1] if upper else probes[k - 1]


def export_proknow(protocol: Protocol, arm_id: str | None = None) -> Exported:
    """One arm of ``protocol`` as a ProKnow scorecard template (doses in Gy, levels named by rtcheck status)."""
    arm = export_arm(protocol, arm_id)
    rows, losses = absolute_constraints(protocol, arm, dose_unit="Gy")
    computed = []
    reverse = {(kind, argument_unit, output_unit): name for name, (kind, argument_unit, output_unit) in _TYPES.items()}
    written = []
    for r in rows:
        m = r.metric
        name = reverse.get((m.kind, m.argument_unit, m.output_unit))
        if name is None:
            losses.append(f"constraint {r.constraint.id} ({r.structure.name} {m.text}): no ProKnow metric type computes it")
            continue
        if len(r.structure.aliases) > 1 or r.structure.fma_codes:
            losses.append(f"structure {r.structure.name}: only its name is written (ProKnow names one ROI, no aliases or codes)")
        bound = "max" if r.operator in ("<", "<=") else "min"
        objectives: list[dict[str, Any]] = [{"label": "PER PROTOCOL", "color": _COLOURS[PER_PROTOCOL], bound: r.per_protocol}]
        if r.variation is not None:
            objectives.append({"label": "VARIATION ACCEPTABLE", "color": _COLOURS[VARIATION], bound: r.variation})
        objectives.append({"label": "DEVIATION UNACCEPTABLE", "color": _COLOURS[DEVIATION]})
        computed.append({"type": name, "roi_name": r.structure.name, "arg_1": m.argument, "arg_2": None, "objectives": objectives})
        written.append(r)
    if not computed:
        raise ProtocolExportError(f"protocol {protocol.id} arm {arm.id}: no constraint has a ProKnow metric type ({'; '.join(losses)})")
    losses.extend(operator_losses(written, inclusive=True))
    losses.append("the constraints' ids, sources and kinds are not written: a scorecard has no field for them")
    document = {"name": f"{protocol.title} — {arm.title}", "computed": computed, "custom": []}
    return Exported((json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode("utf-8"), sorted(set(losses), key=losses.index))
