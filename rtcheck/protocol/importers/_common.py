"""What every importer and exporter of a foreign protocol format shares.

Importers build an rtcheck protocol *document* (the dict a protocol YAML file
holds, schema ``rtcheck.protocol/1``) with :class:`DocumentBuilder`; every
constraint's ``source`` names the imported file and the row or item it came
from.  Exporters read the validated model and turn each constraint of one arm
into an :class:`AbsoluteConstraint`: a metric whose doses are absolute (a % of
the prescription is converted with the arm's prescription, exactly as rtcheck
would grade it), or they list what the format cannot hold in ``losses``.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any

from rtcheck.errors import MetricSyntaxError, ProtocolExportError, ProtocolImportError
from rtcheck.metrics.grammar import Metric, MetricKind, parse_metric
from rtcheck.protocol.model import Arm, Constraint, Protocol, StructureSpec

SCHEMA = "rtcheck.protocol/1"
IMPORTED_ARM = "main"
_VOLUME_KINDS = (MetricKind.VOLUME_AT_DOSE, MetricKind.VOLUME_COMPLEMENT)
_OPERATOR = re.compile(r"^\s*(<=|>=|<|>)\s*([+-]?[0-9]*\.?[0-9]+)\s*$")


def number_text(value: float) -> str:
    """A number as a protocol or foreign file writes it: no float noise (47.88, not 47.880000000000003)."""
    return format(round(value, 9), ".12g")


def slug(text: str) -> str:
    """An rtcheck id made of ``text``: lower case, '%' as 'pct', anything else not allowed as '-'."""
    text = text.replace("%", "pct").lower()
    text = re.sub(r"[^a-z0-9._-]+", "-", text).strip("-._")
    return text or "x"


def parse_operator_value(text: str) -> tuple[str, float] | None:
    """``'<=6500'`` -> ``('<=', 6500.0)``; None when the text is not an operator and a number."""
    match = _OPERATOR.match(text)
    return (match.group(1), float(match.group(2))) if match else None


def is_looser(variation: float, per_protocol: float, operator: str) -> bool:
    """True when ``variation`` allows at least what ``per_protocol`` allows for this limit direction."""
    return variation >= per_protocol if operator in ("<", "<=") else variation <= per_protocol


@dataclass
class DocumentBuilder:
    """Collects structures and constraints of one imported file into a protocol document."""

    file_name: str
    data: bytes
    format_title: str
    title: str
    structures: dict[str, dict[str, Any]] = field(default_factory=dict)
    constraints: list[dict[str, Any]] = field(default_factory=list)
    not_imported: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    _origin: dict[str, str] = field(default_factory=dict)

    def fail(self, location: str | None, reason: str) -> ProtocolImportError:
        return ProtocolImportError(self.file_name, location, reason)

    def structure(self, name: str, aliases: list[str], fma_codes: list[int], location: str, *, role: str | None = None) -> str:
        """Declare (or meet again) structure ``name``; rows naming it must agree on aliases and codes."""
        name = name.strip()
        if not name:
            raise self.fail(location, "empty structure name")
        body: dict[str, Any] = {"role": role or _role(name), "aliases": _unique([name, *aliases])}
        if fma_codes:
            body["fma"] = fma_codes[0] if len(fma_codes) == 1 else list(fma_codes)
        known = self.structures.get(name)
        if known is None:
            self.structures[name] = body
            self._origin[name] = location
        elif known != body:
            raise self.fail(
                location,
                f"structure {name!r} has other aliases or codes than at {self._origin[name]} "
                f"({_describe(body)} here, {_describe(known)} there); one structure needs one description",
            )
        return name

    def metric(self, text: str, location: str) -> Metric:
        try:
            return parse_metric(text)
        except MetricSyntaxError as exc:
            raise self.fail(location, f"{exc} (rtcheck's metric grammar: README, 'Metric grammar')") from None

    def constraint(
        self,
        structure: str,
        metric: Metric,
        operator: str,
        per_protocol: float,
        variation: float | None,
        *,
        kind: str,
        location: str,
        comment: str = "",
        variation_operator: str | None = None,
    ) -> None:
        if metric.needs_prescription:
            raise self.fail(
                location,
                f"metric {metric.text} is relative to a prescription, which a {self.format_title} does not state; "
                "write the dose in Gy or cGy",
            )
        if variation is not None and not is_looser(variation, per_protocol, operator):
            raise self.fail(
                location,
                f"variation {number_text(variation)} is stricter than the limit {operator} {number_text(per_protocol)}",
            )
        unit = metric.output_unit
        body: dict[str, Any] = {
            "id": self._unique_id(slug(f"{structure}-{metric.text.replace('[', '-').replace(']', '')}")),
            "structure": structure,
            "metric": metric.text,
            "per_protocol": f"{operator} {number_text(per_protocol)} {unit}",
        }
        if variation is not None:
            body["variation_acceptable"] = f"{variation_operator or operator} {number_text(variation)} {unit}"
        body["kind"] = kind  # a ConstraintKind value: required | graded-if-contoured | informational
        body["source"] = f"{PurePath(self.file_name).name} {location}" + (f": {comment.strip()}" if comment.strip() else "")
        self.constraints.append(body)

    def _unique_id(self, base: str) -> str:
        taken = {c["id"] for c in self.constraints}
        candidate, n = base, 2
        while candidate in taken:
            candidate, n = f"{base}-{n}", n + 1
        return candidate

    def build(self, protocol_id: str | None = None) -> dict[str, Any]:
        if not self.constraints:
            raise self.fail(None, f"no constraint to import (is this a {self.format_title}?)")
        source: dict[str, Any] = {
            "imported_from": PurePath(self.file_name).name,
            "format": self.format_title,
            "sha256": hashlib.sha256(self.data).hexdigest(),
        }
        if self.notes:
            source["notes"] = " ".join(self.notes)
        if self.not_imported:
            source["not_imported"] = list(self.not_imported)
        return {
            "schema": SCHEMA,
            "id": protocol_id or slug(PurePath(self.file_name).stem),
            "title": self.title,
            "version": "1",
            "source": source,
            "structures": self.structures,
            "arms": {
                IMPORTED_ARM: {
                    "title": f"{self.title} (imported from {PurePath(self.file_name).name})",
                    "prescriptions": [],
                    "constraints": self.constraints,
                }
            },
        }


def read_json(data: bytes, file_name: str) -> Any:
    """The JSON content of an imported file; a one-line ProtocolImportError when it is not JSON."""
    try:
        return json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProtocolImportError(file_name, None, f"not a JSON document ({exc})") from None


def known_keys(body: dict, allowed: set[str], builder: DocumentBuilder, location: str) -> None:
    """Refuse keys a format does not define: a key rtcheck does not know may change the meaning."""
    unknown = sorted(str(k) for k in body.keys() - allowed)
    if unknown:
        raise builder.fail(location, f"unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(allowed))})")


def _role(name: str) -> str:
    # TG-263 names targets with these prefixes (GTV, CTV, ITV, PTV and their suffixes).
    return "target" if name.upper().startswith(("PTV", "CTV", "GTV", "ITV")) else "oar"


def _unique(names: list[str]) -> list[str]:
    seen: list[str] = []
    for name in (n.strip() for n in names):
        if name and name not in seen:
            seen.append(name)
    return seen


def _describe(body: dict[str, Any]) -> str:
    return f"aliases {body['aliases']}" + (f", FMA {body['fma']}" if "fma" in body else "")


def parse_codes(text: str, builder: DocumentBuilder, location: str) -> list[int]:
    """FMA IDs separated by '|' (e.g. ``7200|7199``); anything that is not a whole number is refused."""
    codes = []
    for part in (p.strip() for p in text.split("|")):
        if not part:
            continue
        if not part.isdigit():
            raise builder.fail(
                location,
                f"structure code {part!r} is not an FMA ID (a whole number); rtcheck matches FMA codes only, "
                "give other names as aliases",
            )
        codes.append(int(part))
    return codes


# --- export -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class AbsoluteConstraint:
    """One constraint of an arm with absolute doses, as a foreign format writes it.

    ``metric`` doses are in Gy or cGy (never % of a prescription); ``per_protocol`` and
    ``variation`` are the limit values in the metric's output unit; ``operator`` its direction.
    """

    constraint: Constraint
    structure: StructureSpec
    metric: Metric
    operator: str
    per_protocol: float
    variation: float | None
    variation_operator: str | None


@dataclass
class Exported:
    """A protocol written in a foreign format: the file's bytes and what the format could not hold."""

    data: bytes
    losses: list[str]


def export_arm(protocol: Protocol, arm_id: str | None) -> Arm:
    """The arm to export: the one named, or the only one; a format holds one list of constraints."""
    radiotherapy = [a for a in protocol.arms.values() if a.radiotherapy]
    if arm_id is None:
        if len(radiotherapy) != 1:
            raise ProtocolExportError(
                f"protocol {protocol.id} has arms {', '.join(a.id for a in radiotherapy) or '(none with radiotherapy)'}: "
                "choose one with --arm (a foreign format holds one list of constraints)"
            )
        return radiotherapy[0]
    return protocol.radiotherapy_arm(arm_id)


def absolute_constraints(protocol: Protocol, arm: Arm, *, dose_unit: str | None = None) -> tuple[list[AbsoluteConstraint], list[str]]:
    """The arm's constraints with absolute doses, and what cannot be exported (with the reason).

    ``dose_unit``: "Gy" when the format knows Gy only (cGy doses are converted).
    """
    rows: list[AbsoluteConstraint] = []
    losses: list[str] = []
    for rx in arm.prescriptions:
        dose = f"{number_text(rx.total_dose_gy)} Gy in {rx.fractions} fx" if rx.total_dose_gy is not None else "site-set dose"
        losses.append(f"prescription of {rx.target} ({dose}): the format holds no per-target prescription")
    derived_fallbacks = sorted({c.structure for c in arm.constraints if protocol.structures[c.structure].derived and protocol.structures[c.structure].aliases})
    for name in derived_fallbacks:
        losses.append(
            f"structure {name}: written by its names only; the derivation {protocol.structures[name].derived} used when "
            "no ROI has one of them is not (the format cannot describe a derivation)"
        )
    for c in arm.constraints:
        spec = protocol.structures[c.structure]
        why = _not_exportable(c, spec)
        if why:
            losses.append(f"constraint {c.id} ({c.structure} {c.metric.text}): {why}")
            continue
        metric, scale = c.metric, 1.0
        if metric.needs_prescription:
            reference = arm.reference_prescription(c)
            if reference is None or reference.total_dose_gy is None:
                losses.append(f"constraint {c.id} ({c.structure} {c.metric.text}): % of a prescription without a stated dose")
                continue
            metric, scale = _absolute(metric, reference.total_dose_gy)
        if dose_unit == "Gy" and "cGy" in (metric.output_unit, metric.argument_unit):
            metric, extra = _in_gy(metric)
            scale *= extra
        rows.append(
            AbsoluteConstraint(
                constraint=c,
                structure=spec,
                metric=metric,
                operator=c.per_protocol.operator,
                per_protocol=c.per_protocol.value * scale,
                variation=None if c.variation_acceptable is None else c.variation_acceptable.value * scale,
                variation_operator=None if c.variation_acceptable is None else c.variation_acceptable.operator,
            )
        )
    if not rows:
        raise ProtocolExportError(f"protocol {protocol.id} arm {arm.id}: no constraint can be written in this format ({'; '.join(losses)})")
    return rows, losses


def _not_exportable(c: Constraint, spec: StructureSpec) -> str:
    if spec.derived is not None and not spec.aliases:
        return f"structure derived as {spec.derived}: the format cannot describe a derivation"
    if c.metric.biology is not None:
        return "EQD2/BED metric: the format has physical doses only"
    if c.cumulative:
        return "cumulative (re-irradiation) constraint: the format has one course only"
    if c.max_outside_dose_grid_pct:
        return "max_outside_dose_grid_pct: the format cannot hold it"
    return ""


def metric_text(kind: MetricKind, argument: float | None, argument_unit: str | None, output_unit: str) -> str:
    if argument is None:
        return f"{kind.value}[{output_unit}]"
    return f"{kind.value}{number_text(argument)}{argument_unit}[{output_unit}]"


def _absolute(metric: Metric, rx_gy: float) -> tuple[Metric, float]:
    """``metric`` with its % of prescription turned into Gy, and the factor for its limit values."""
    if metric.kind in _VOLUME_KINDS:
        assert metric.argument is not None
        return parse_metric(metric_text(metric.kind, metric.argument * rx_gy / 100.0, "Gy", metric.output_unit)), 1.0
    return parse_metric(metric_text(metric.kind, metric.argument, metric.argument_unit, "Gy")), rx_gy / 100.0


def _in_gy(metric: Metric) -> tuple[Metric, float]:
    if metric.kind in _VOLUME_KINDS:
        assert metric.argument is not None
        return parse_metric(metric_text(metric.kind, metric.argument / 100.0, "Gy", metric.output_unit)), 1.0
    return parse_metric(metric_text(metric.kind, metric.argument, metric.argument_unit, "Gy")), 0.01


def operator_losses(rows: list[AbsoluteConstraint], *, inclusive: bool) -> list[str]:
    """What a format loses of the limits' operators: one operator per row (PQM), or only
    inclusive boundaries (``inclusive``: ProKnow, Plan Score Card)."""
    losses = []
    for r in rows:
        limits = [(r.operator, r.per_protocol)] + ([(r.variation_operator, r.variation)] if r.variation is not None else [])
        if inclusive:
            strict = [f"{op} {number_text(v)}" for op, v in limits if op in ("<", ">")]
            if strict:
                losses.append(f"constraint {r.constraint.id}: the strict limit(s) {', '.join(strict)} are written as inclusive boundaries")
        elif r.variation is not None and r.variation_operator != r.operator:
            losses.append(
                f"constraint {r.constraint.id}: the variation limit {r.variation_operator} {number_text(r.variation)} "
                f"is written with the per-protocol operator {r.operator}"
            )
    return losses
