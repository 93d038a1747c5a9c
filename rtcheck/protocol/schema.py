"""A protocol document (a plain mapping, as read from a protocol file) -> the protocol model.

Validation happens here, and only here: every problem is a ProtocolError naming the
source (the file), the entry (e.g. ``arms.cr-pr.constraints[3] (lungs-v20).per_protocol``)
and what is wrong.  Nothing here reads a file (rtcheck.protocol.library does).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Collection, Mapping
from typing import Any

from rtcheck.errors import MetricSyntaxError, ProtocolError
from rtcheck.metrics.grammar import Metric, parse_metric
from rtcheck.radiobiology.protocol_fields import KEYS as BIOLOGY_KEYS, parse_biology_fields
from rtcheck.protocol.plan_rules_schema import parse_plan_rules
from rtcheck.protocol.model import (
    Arm,
    Comparison,
    Constraint,
    ConstraintKind,
    Derivation,
    DoseSetBy,
    Eqd2Window,
    Operation,
    Phase,
    Prescription,
    Protocol,
    ReirradiationConditions,
    Role,
    StructureSpec,
    Threshold,
    WrittenFor,
    course_prescriptions,
)

__all__ = [
    "OVERLAY_SCHEMA",
    "SCHEMA",
    "Validator",
    "is_overlay",
    "constraint_kind",
    "parse_constraint",
    "parse_prescription",
    "parse_protocol",
    "parse_reirradiation",
    "parse_structures",
]

SCHEMA = "rtcheck.protocol/1"
OVERLAY_SCHEMA = "rtcheck.overlay/1"
_ID = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
_THRESHOLD = re.compile(r"^\s*(<=|>=|<|>)\s*([0-9]*\.?[0-9]+)\s*(Gy|cGy|%|cc)\s*$")
_ROLES = tuple(role.value for role in Role)
_OPERATIONS = tuple(operation.value for operation in Operation)
_DOSE_SET_BY = tuple(who.value for who in DoseSetBy)
# A prescription's total must equal fractions x dose per fraction to this relative precision.
_RX_CONSISTENCY = 0.005


class Validator:
    """Checks of a document's values; every failure names ``source`` (the file) and the entry."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, entry: str | None, message: str) -> ProtocolError:
        return ProtocolError(self.source, entry, message)

    def mapping(self, value: Any, entry: str | None, *, required: Collection[str], optional: Collection[str] = frozenset()) -> dict:
        """``value`` as a mapping with every key of ``required`` and no key outside ``required`` and ``optional``."""
        required, optional = set(required), set(optional)
        if not isinstance(value, dict):
            raise self.fail(entry, f"expected a mapping, got {type(value).__name__}")
        missing = sorted(required - value.keys())
        if missing:
            raise self.fail(entry, f"missing key(s): {', '.join(missing)}")
        unknown = sorted(str(k) for k in value.keys() - required - optional)
        if unknown:
            raise self.fail(entry, f"unknown key(s): {', '.join(unknown)} (allowed: {', '.join(sorted(required | optional))})")
        return value

    def text(self, value: Any, entry: str) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.fail(entry, "expected a non-empty text")
        return value.strip()

    def number(self, value: Any, entry: str, *, positive: bool = True) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(entry, f"expected a number, got {value!r}")
        if positive and value <= 0:
            raise self.fail(entry, f"expected a positive number, got {value!r}")
        return float(value)

    def integer(self, value: Any, entry: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise self.fail(entry, f"expected a positive whole number, got {value!r}")
        return value

    def boolean(self, value: Any, entry: str) -> bool:
        if not isinstance(value, bool):
            raise self.fail(entry, f"expected true or false, got {value!r}")
        return value

    def identifier(self, value: Any, entry: str) -> str:
        if not isinstance(value, str) or not _ID.match(value):
            raise self.fail(entry, f"expected an id of lower-case letters, digits, '.', '_' or '-', got {value!r}")
        return value

    def threshold(self, value: Any, entry: str, metric: Metric) -> Threshold:
        if not isinstance(value, str):
            raise self.fail(entry, f"expected a threshold such as \"<= 20 {metric.output_unit}\", got {value!r}")
        match = _THRESHOLD.match(value)
        if not match:
            raise self.fail(entry, f"expected '<', '<=', '>' or '>=', a number and a unit (Gy, cGy, %, cc), got {value!r}")
        op, number, unit = match.groups()
        if unit != metric.output_unit:
            raise self.fail(entry, f"unit {unit} does not match the metric {metric.text}'s output unit {metric.output_unit}")
        return Threshold(Comparison(op), float(number), unit)


def parse_structures(v: Validator, raw: Any) -> dict[str, StructureSpec]:
    """The ``structures:`` mapping of a document, keyed by the protocol's structure names."""
    if not isinstance(raw, dict) or not raw:
        raise v.fail("structures", "expected a non-empty mapping of structure names")
    specs = {}
    for name, body in raw.items():
        entry = f"structures.{name}"
        body = v.mapping(body, entry, required={"aliases"}, optional={"tg263", "role", "derived", "fma"})
        aliases = body["aliases"]
        derived = _derivation(v, body.get("derived"), f"{entry}.derived", raw)
        if not isinstance(aliases, list) or not all(isinstance(a, str) and a.strip() for a in aliases) or (not aliases and derived is None):
            raise v.fail(f"{entry}.aliases", "expected a list of names (non-empty unless the structure is derived)")
        role = body.get("role", Role.OAR.value)
        if role not in _ROLES:
            raise v.fail(f"{entry}.role", f"expected one of {', '.join(_ROLES)}, got {role!r}")
        specs[str(name)] = StructureSpec(
            name=str(name),
            tg263=v.text(body.get("tg263", name), f"{entry}.tg263"),
            role=Role(role),
            aliases=tuple(a.strip() for a in aliases),
            derived=derived,
            fma_codes=_fma_codes(v, body.get("fma"), f"{entry}.fma"),
        )
    for name in specs:
        _check_acyclic(v, name, specs, ())
    return specs


def _fma_codes(v: Validator, raw: Any, entry: str) -> tuple[int, ...]:
    """``fma: 7310`` or ``fma: [7200, 7199]``: Foundational Model of Anatomy IDs (TG-263's FMAID column)."""
    if raw is None:
        return ()
    codes = raw if isinstance(raw, list) else [raw]
    if not codes or not all(isinstance(c, int) and not isinstance(c, bool) and c > 0 for c in codes):
        raise v.fail(entry, f"expected an FMA ID (a positive whole number) or a list of them, got {raw!r}")
    return tuple(codes)


def _derivation(v: Validator, raw: Any, entry: str, structures: dict) -> Derivation | None:
    if raw is None:
        return None
    if not isinstance(raw, dict) or len(raw) != 1 or next(iter(raw)) not in _OPERATIONS:
        raise v.fail(entry, f"expected one of {', '.join(_OPERATIONS)} with a list of structures, e.g. {{union: [Lung_L, Lung_R]}}")
    operation, operands = next(iter(raw.items()))
    if not isinstance(operands, list) or len(operands) < 2:
        raise v.fail(f"{entry}.{operation}", "expected a list of at least two structures")
    for operand in operands:
        if operand not in structures:
            raise v.fail(f"{entry}.{operation}", f"unknown structure {operand!r}; defined: {', '.join(map(str, structures))}")
    return Derivation(Operation(operation), tuple(operands))


def _check_acyclic(v: Validator, name: str, specs: dict[str, StructureSpec], path: tuple[str, ...]) -> None:
    if name in path:
        raise v.fail(f"structures.{path[0]}.derived", f"derivation cycle: {' -> '.join(path + (name,))}")
    derived = specs[name].derived
    for operand in derived.operands if derived else ():
        _check_acyclic(v, operand, specs, path + (name,))


_KINDS = tuple(kind.value for kind in ConstraintKind)


def constraint_kind(v: Validator, raw: Any, entry: str, spec: StructureSpec) -> ConstraintKind:
    """``kind:`` of a constraint; absent: graded-if-contoured for an organ, required for anything else."""
    if raw is None:
        return ConstraintKind.IF_CONTOURED if spec.role is Role.OAR else ConstraintKind.REQUIRED
    if raw not in _KINDS:
        raise v.fail(entry, f"expected one of {', '.join(_KINDS)}, got {raw!r}")
    return ConstraintKind(raw)


def _structure_and_metric(v: Validator, body: dict, entry: str, structures: Mapping[str, StructureSpec]) -> tuple[str, Metric]:
    """``body``'s structure (one the protocol defines) and its parsed metric."""
    structure = body["structure"]
    if structure not in structures:
        raise v.fail(f"{entry}.structure", f"unknown structure {structure!r}; defined: {', '.join(structures)}")
    try:
        return structure, parse_metric(body["metric"])
    except MetricSyntaxError as exc:
        raise v.fail(f"{entry}.metric", str(exc)) from None


#: rtcheck's default tolerance [Gy] between the plan's dose per fraction and the one a limit was written
#: for, when the protocol states none: below the 0.2 Gy step between the usual 1.8 and 2.0 Gy schedules,
#: so a protocol whose limits cover both must say so (tolerance_gy: 0.2).
DEFAULT_WRITTEN_FOR_TOLERANCE_GY = 0.1


def parse_written_for(v: Any, raw: Any, entry: str) -> WrittenFor:
    """``written_for: {dose_per_fraction_gy: 2, tolerance_gy: 0.2, source: ...}`` -> WrittenFor."""
    body = v.mapping(raw, entry, required={"dose_per_fraction_gy", "source"}, optional={"tolerance_gy"})
    d_ref = v.number(body["dose_per_fraction_gy"], f"{entry}.dose_per_fraction_gy")
    given = "tolerance_gy" in body
    tolerance = v.number(body["tolerance_gy"], f"{entry}.tolerance_gy", positive=False) if given else DEFAULT_WRITTEN_FOR_TOLERANCE_GY
    if tolerance < 0:
        raise v.fail(f"{entry}.tolerance_gy", "expected a tolerance >= 0 Gy")
    return WrittenFor(d_ref, tolerance, v.text(body["source"], f"{entry}.source"), tolerance_is_default=not given)


def parse_constraint(v: Validator, raw: Any, entry: str, structures: Mapping[str, StructureSpec]) -> Constraint:
    """One constraint (``entry`` says where it stands, e.g. ``arms.cr-pr.constraints[3]``)."""
    if isinstance(raw, dict) and "required" in raw:
        raise v.fail(f"{entry}.required", f"required: true/false is replaced by kind: {' | '.join(_KINDS)}")
    body = v.mapping(
        raw,
        entry,
        required={"id", "structure", "metric", "per_protocol", "source"},
        optional={"variation_acceptable", "kind", "relative_to", "max_outside_dose_grid_pct", *BIOLOGY_KEYS},
    )
    cid = v.identifier(body["id"], f"{entry}.id")
    entry = f"{entry} ({cid})"
    structure, metric = _structure_and_metric(v, body, entry, structures)
    biology = parse_biology_fields(v, body, entry, metric, structures[structure])
    metric = biology.metric
    written_for = None
    if body.get("written_for") is not None:
        if metric.biology is not None:
            raise v.fail(f"{entry}.written_for", "an EQD2/BED limit holds for any fractionation: written_for is for physical limits")
        written_for = parse_written_for(v, body["written_for"], f"{entry}.written_for")
    per_protocol = v.threshold(body["per_protocol"], f"{entry}.per_protocol", metric)
    variation = None
    if body.get("variation_acceptable") is not None:
        variation = v.threshold(body["variation_acceptable"], f"{entry}.variation_acceptable", metric)
        if variation.is_upper_limit != per_protocol.is_upper_limit:
            raise v.fail(f"{entry}.variation_acceptable", "must limit the same direction as per_protocol")
        looser = variation.value >= per_protocol.value if variation.is_upper_limit else variation.value <= per_protocol.value
        if not looser:
            raise v.fail(f"{entry}.variation_acceptable", f"{variation} is stricter than per_protocol {per_protocol}")
    relative_to = body.get("relative_to")
    if relative_to is not None and relative_to not in structures:
        raise v.fail(f"{entry}.relative_to", f"unknown structure {relative_to!r}")
    outside = body.get("max_outside_dose_grid_pct", 0.0)
    outside = v.number(outside, f"{entry}.max_outside_dose_grid_pct", positive=False) if outside else 0.0
    if not 0 <= outside <= 100:
        raise v.fail(f"{entry}.max_outside_dose_grid_pct", "expected a percentage between 0 and 100")
    return Constraint(
        id=cid,
        structure=structure,
        metric=metric,
        per_protocol=per_protocol,
        variation_acceptable=variation,
        kind=constraint_kind(v, body.get("kind"), f"{entry}.kind", structures[structure]),
        source=v.text(body["source"], f"{entry}.source"),
        relative_to=relative_to,
        max_outside_dose_grid_pct=outside,
        cumulative=biology.cumulative,
        recovery_credit=biology.recovery_credit,
        alpha_beta_note=biology.alpha_beta_note,
        written_for=written_for,
    )


def _with_organ_fractionation(constraints: list[Constraint], written_for: WrittenFor | None, structures: Mapping[str, StructureSpec]) -> list[Constraint]:
    """``constraints`` with the protocol's ``organ_limits_written_for`` on each physical organ limit stating none."""
    if written_for is None:
        return constraints
    return [
        dataclasses.replace(c, written_for=written_for)
        if c.written_for is None and c.metric.biology is None and structures[c.structure].role is Role.OAR else c
        for c in constraints
    ]


def parse_reirradiation(
    v: Validator, raw: Any, entry: str, structures: Mapping[str, StructureSpec]
) -> tuple[ReirradiationConditions, list[Constraint]]:
    """An arm's ``reirradiation_conditions:`` and the two per-course constraints it implies (current
    course, prior course alone), both required: a re-irradiation condition is never optional."""
    body = v.mapping(raw, entry, required={"structure", "metric", "per_course", "min_interval_months", "source"})
    structure, metric = _structure_and_metric(v, body, entry, structures)
    if metric.biology is None:
        raise v.fail(f"{entry}.metric", f"courses of different fractionation are compared in EQD2 or BED, e.g. D0.03cc[BEDGy(a/b=2)], got {metric.text}")
    metric = parse_biology_fields(v, {}, entry, metric, structures[structure]).metric
    per_course = v.threshold(body["per_course"], f"{entry}.per_course", metric)
    if not per_course.is_upper_limit:
        raise v.fail(f"{entry}.per_course", f"a course's dose limit is an upper limit ('<' or '<='), got {per_course}")
    months = v.number(body["min_interval_months"], f"{entry}.min_interval_months")
    source = v.text(body["source"], f"{entry}.source")
    conditions = ReirradiationConditions(structure, metric, per_course, months, source)
    constraints = [
        Constraint(
            id=cid, structure=structure, metric=metric, per_protocol=per_course, variation_acceptable=None,
            kind=ConstraintKind.REQUIRED, source=f"{what}: {source}", prior_course=prior,
        )
        for cid, what, prior in (
            (ReirradiationConditions.CURRENT_COURSE_ID, "each course's limit, the current course", False),
            (ReirradiationConditions.PRIOR_COURSE_ID, "each course's limit, the prior course", True),
        )
    ]
    return conditions, constraints


def _window(v: Validator, raw: Any, entry: str, *, is_default: bool) -> Eqd2Window:
    body = v.mapping(raw, entry, required={"eqd2_gy", "alpha_beta_gy", "source"})
    bounds = v.mapping(body["eqd2_gy"], f"{entry}.eqd2_gy", required={"min", "max"})
    low = v.number(bounds["min"], f"{entry}.eqd2_gy.min")
    high = v.number(bounds["max"], f"{entry}.eqd2_gy.max")
    if high <= low:
        raise v.fail(f"{entry}.eqd2_gy", f"max {high:g} Gy is not above min {low:g} Gy")
    return Eqd2Window(low, high, v.number(body["alpha_beta_gy"], f"{entry}.alpha_beta_gy"), v.text(body["source"], f"{entry}.source"), is_default)


_DOSE_KEYS = ("total_dose_gy", "fractions", "dose_per_fraction_gy")


def parse_prescription(v: Validator, raw: Any, entry: str, structures: Mapping[str, StructureSpec]) -> Prescription:
    """One prescription of an arm (``entry`` says where it stands, e.g. ``arms.cr-pr.prescriptions[0]``)."""
    body = v.mapping(
        raw, entry, required={"target", "source"},
        optional={*_DOSE_KEYS, "tolerance", "dose_set_by", "default_window", "window"},
    )
    target = body["target"]
    if target not in structures:
        raise v.fail(f"{entry}.target", f"unknown structure {target!r}; defined: {', '.join(structures)}")
    raw_set_by = body.get("dose_set_by", DoseSetBy.TRIAL.value)
    if raw_set_by not in _DOSE_SET_BY:
        raise v.fail(f"{entry}.dose_set_by", f"expected {' or '.join(_DOSE_SET_BY)}, got {raw_set_by!r}")
    set_by = DoseSetBy(raw_set_by)
    windows = [key for key in ("default_window", "window") if key in body]
    given = [key for key in _DOSE_KEYS if key in body]
    if set_by is DoseSetBy.TRIAL and windows:
        raise v.fail(f"{entry}.{windows[0]}", "an EQD2 window is for a dose set by the site (dose_set_by: site)")
    if set_by is DoseSetBy.SITE and not given:
        if len(windows) != 1:
            raise v.fail(entry, "a site-set prescription without a dose needs one EQD2 window: default_window (an rtcheck default) or window (the site's)")
        if "tolerance" in body:
            raise v.fail(f"{entry}.tolerance", "a tolerance applies to a stated dose, not to an EQD2 window")
        key = windows[0]
        return Prescription(
            target=target, total_dose_gy=None, fractions=None, dose_per_fraction_gy=None,
            per_protocol_pct=0.0, variation_acceptable_pct=None, tolerance_source="",
            source=v.text(body["source"], f"{entry}.source"), dose_set_by=DoseSetBy.SITE,
            window=_window(v, body[key], f"{entry}.{key}", is_default=key == "default_window"),
        )
    if windows:
        raise v.fail(f"{entry}.{windows[0]}", "a prescription has either a dose or an EQD2 window, not both")
    missing = [key for key in _DOSE_KEYS if key not in body]
    if missing:
        raise v.fail(entry, f"missing key(s): {', '.join(missing)}")
    total = v.number(body["total_dose_gy"], f"{entry}.total_dose_gy")
    fractions = v.integer(body["fractions"], f"{entry}.fractions")
    per_fraction = v.number(body["dose_per_fraction_gy"], f"{entry}.dose_per_fraction_gy")
    if abs(per_fraction * fractions - total) > _RX_CONSISTENCY * total:
        raise v.fail(entry, f"{fractions} x {per_fraction:g} Gy = {fractions * per_fraction:g} Gy, not the total {total:g} Gy")
    tolerance = v.mapping(
        body.get("tolerance", {"per_protocol_pct": 0.0}) or {},
        f"{entry}.tolerance",
        required={"per_protocol_pct"},
        optional={"variation_acceptable_pct", "source"},
    )
    pp = v.number(tolerance["per_protocol_pct"], f"{entry}.tolerance.per_protocol_pct", positive=False)
    va = tolerance.get("variation_acceptable_pct")
    if va is not None:
        va = v.number(va, f"{entry}.tolerance.variation_acceptable_pct", positive=False)
        if va < pp:
            raise v.fail(f"{entry}.tolerance.variation_acceptable_pct", "is stricter than per_protocol_pct")
    return Prescription(
        target=target,
        total_dose_gy=total,
        fractions=fractions,
        dose_per_fraction_gy=per_fraction,
        per_protocol_pct=pp,
        variation_acceptable_pct=va,
        tolerance_source=str(tolerance.get("source", "")),
        source=v.text(body["source"], f"{entry}.source"),
        dose_set_by=set_by,
    )


def _phases(v: Validator, raw: Any, entry: str, structures: Mapping[str, StructureSpec]) -> tuple[Phase, ...]:
    """``phases:``: two or more phases, in the order they are delivered, each ``{name?, prescriptions}``; every
    prescription states its dose, and a phase's prescriptions share its number of fractions."""
    if not isinstance(raw, list) or len(raw) < 2:
        raise v.fail(entry, "expected a list of two or more phases (an arm with one phase gives prescriptions: instead)")
    phases = []
    for number, item in enumerate(raw, start=1):
        where = f"{entry}[{number - 1}]"
        body = v.mapping(item, where, required={"prescriptions"}, optional={"name"})
        name = v.text(body["name"], f"{where}.name") if "name" in body else ""
        raw_rx = body["prescriptions"]
        if not isinstance(raw_rx, list) or not raw_rx:
            raise v.fail(f"{where}.prescriptions", "expected a non-empty list of prescriptions")
        prescriptions = [parse_prescription(v, rx, f"{where}.prescriptions[{i}]", structures) for i, rx in enumerate(raw_rx)]
        for i, rx in enumerate(prescriptions):
            if rx.dose_set_by is not DoseSetBy.TRIAL:
                raise v.fail(f"{where}.prescriptions[{i}].dose_set_by", "a phase's prescription states its dose (dose_set_by: site is for an arm without phases)")
        targets = [rx.target for rx in prescriptions]
        if len(set(targets)) != len(targets):
            raise v.fail(f"{where}.prescriptions", "a target has more than one prescription in one phase")
        fractions = sorted({rx.fractions for rx in prescriptions if rx.fractions is not None})
        if len(fractions) > 1:
            raise v.fail(f"{where}.prescriptions", f"a phase's prescriptions are delivered together in one number of fractions, got {', '.join(map(str, fractions))}")
        phases.append(Phase(number, name, tuple(prescriptions)))
    return tuple(phases)


def _radiotherapy(v: Validator, body: dict, entry: str) -> bool:
    """``radiotherapy: none`` -> False; absent -> True (the protocol or arm gives radiotherapy)."""
    if "radiotherapy" not in body:
        return True
    if body["radiotherapy"] != "none":
        raise v.fail(entry, f"expected none (leave it out when there is radiotherapy), got {body['radiotherapy']!r}")
    return False


def is_overlay(document: Any) -> bool:
    """Whether ``document`` is a site overlay (it extends a base) rather than a protocol."""
    return isinstance(document, dict) and ("extends" in document or document.get("schema") == OVERLAY_SCHEMA)


def _named_lists(v: Validator, doc: dict, key: str, what: str) -> dict[str, list]:
    """A mapping of named, non-empty lists (``constraint_sets``, ``plan_rule_sets``), not yet parsed."""
    raw = doc.get(key) or {}
    if not isinstance(raw, dict):
        raise v.fail(key, f"expected a mapping of named lists of {what}")
    for name, items in raw.items():
        if not isinstance(items, list) or not items:
            raise v.fail(f"{key}.{name}", f"expected a non-empty list of {what}")
    return {str(name): items for name, items in raw.items()}


def parse_protocol(data: Any, source: str) -> Protocol:
    """Validate a protocol document (a plain mapping, e.g. parsed YAML) and build its model.

    ``source`` names the document in error messages (its file); the model's ``path`` and
    ``sha256`` are the library's to set.
    """
    v = Validator(source)
    doc = v.mapping(data, None, required={"schema", "id", "title", "source", "arms"}, optional={"version", "constraint_sets", "plan_rule_sets", "structures", "radiotherapy", "organ_limits_written_for"})
    if doc["schema"] != SCHEMA:
        raise v.fail("schema", f"expected {SCHEMA!r}, got {doc['schema']!r}")
    protocol_id = v.identifier(doc["id"], "id")
    if not isinstance(doc["source"], dict) or not doc["source"]:
        raise v.fail("source", "expected a mapping saying where the protocol comes from (seed, registry, notes)")
    protocol_rt = _radiotherapy(v, doc, "radiotherapy")
    if protocol_rt or "structures" in doc:
        if "structures" not in doc:
            raise v.fail(None, "missing key(s): structures")
        structures = parse_structures(v, doc["structures"])
    else:
        structures = {}

    organ_written_for = (
        parse_written_for(v, doc["organ_limits_written_for"], "organ_limits_written_for") if doc.get("organ_limits_written_for") is not None else None
    )
    constraint_sets = {
        name: [parse_constraint(v, item, f"constraint_sets.{name}[{i}]", structures) for i, item in enumerate(items)]
        for name, items in _named_lists(v, doc, "constraint_sets", "constraints").items()
    }
    rule_sets = {
        name: parse_plan_rules(v, items, f"plan_rule_sets.{name}", structures)
        for name, items in _named_lists(v, doc, "plan_rule_sets", "plan rules").items()
    }

    arms: dict[str, Arm] = {}
    if not isinstance(doc["arms"], dict) or not doc["arms"]:
        raise v.fail("arms", "expected a non-empty mapping of arms")
    for arm_id, body in doc["arms"].items():
        entry = f"arms.{arm_id}"
        v.identifier(arm_id, entry)
        body = v.mapping(body, entry, required={"title"}, optional={"prescriptions", "phases", "constraints", "radiotherapy", "plan_rules", "reirradiation_conditions"})
        if not protocol_rt or not _radiotherapy(v, body, f"{entry}.radiotherapy"):
            if not protocol_rt and "radiotherapy" in body:
                raise v.fail(f"{entry}.radiotherapy", "the protocol already says radiotherapy: none for every arm")
            given = [key for key in ("prescriptions", "phases", "constraints", "plan_rules", "reirradiation_conditions") if body.get(key)]
            if given:
                raise v.fail(f"{entry}.{given[0]}", "an arm without radiotherapy (radiotherapy: none) has no prescriptions or constraints, nor plan rules")
            arms[str(arm_id)] = Arm(str(arm_id), v.text(body["title"], f"{entry}.title"), (), (), radiotherapy=False)
            continue
        if "prescriptions" in body and "phases" in body:
            raise v.fail(f"{entry}.phases", "an arm gives prescriptions: (one phase) or phases:, not both")
        missing = [key for key in ("prescriptions", "constraints") if key not in body and not (key == "prescriptions" and "phases" in body)]
        if missing:
            raise v.fail(entry, f"missing key(s): {', '.join(missing)} (or radiotherapy: none)")
        phases: tuple[Phase, ...] = ()
        if "phases" in body:
            phases = _phases(v, body["phases"], f"{entry}.phases", structures)
            prescriptions = list(course_prescriptions(phases))
        else:
            raw_rx = body["prescriptions"]
            if not isinstance(raw_rx, list):
                raise v.fail(f"{entry}.prescriptions", "expected a list (empty when the arm has no radiotherapy)")
            prescriptions = [parse_prescription(v, item, f"{entry}.prescriptions[{i}]", structures) for i, item in enumerate(raw_rx)]
        targets = [rx.target for rx in prescriptions]
        if len(set(targets)) != len(targets):
            raise v.fail(f"{entry}.prescriptions", "a target has more than one prescription")
        constraints: list[Constraint] = []
        raw_constraints = body["constraints"]
        if not isinstance(raw_constraints, list):
            raise v.fail(f"{entry}.constraints", "expected a list")
        for i, item in enumerate(raw_constraints):
            item_entry = f"{entry}.constraints[{i}]"
            if isinstance(item, dict) and "use" in item:
                v.mapping(item, item_entry, required={"use"})
                if item["use"] not in constraint_sets:
                    raise v.fail(f"{item_entry}.use", f"unknown constraint set {item['use']!r}; defined: {', '.join(constraint_sets) or 'none'}")
                constraints.extend(constraint_sets[item["use"]])
            else:
                constraints.append(parse_constraint(v, item, item_entry, structures))
        reirradiation = None
        if body.get("reirradiation_conditions") is not None:
            reirradiation, implied = parse_reirradiation(v, body["reirradiation_conditions"], f"{entry}.reirradiation_conditions", structures)
            constraints += implied
        seen: set[str] = set()
        for c in constraints:
            if c.id in seen:
                raise v.fail(f"{entry}.constraints", f"constraint id {c.id!r} appears twice")
            seen.add(c.id)
            if c.metric.needs_prescription:
                reference = c.relative_to or c.structure
                if not prescriptions or (c.relative_to and reference not in targets):
                    raise v.fail(
                        f"{entry}.constraints ({c.id})",
                        f"metric {c.metric.text} is relative to a prescription, but the arm prescribes none to {reference}",
                    )
        plan_rules = parse_plan_rules(v, body.get("plan_rules"), f"{entry}.plan_rules", structures, rule_sets)
        constraints = _with_organ_fractionation(constraints, organ_written_for, structures)
        arms[str(arm_id)] = Arm(
            str(arm_id), v.text(body["title"], f"{entry}.title"), tuple(prescriptions), tuple(constraints), plan_rules=plan_rules, phases=phases,
            reirradiation=reirradiation,
        )

    return Protocol(
        id=protocol_id,
        title=v.text(doc["title"], "title"),
        version=str(doc.get("version", "")),
        source=dict(doc["source"]),
        structures=structures,
        arms=arms,
    )
