"""Loading and validating protocol files (YAML).

Every problem is reported as a ProtocolError naming the file, the entry
(e.g. ``arms.cr-pr.constraints[3] (lungs-v20).per_protocol``) and what is wrong.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Any

import yaml

from rtcheck.errors import MetricSyntaxError, ProtocolError, UnknownProtocolError
from rtcheck.metrics.grammar import Metric, parse_metric
from rtcheck.radiobiology.protocol_fields import KEYS as BIOLOGY_KEYS, parse_biology_fields
from rtcheck.protocol.model import Arm, Constraint, Derivation, Eqd2Window, Prescription, Protocol, StructureSpec, Threshold

SCHEMA = "rtcheck.protocol/1"
OVERLAY_SCHEMA = "rtcheck.overlay/1"
PROTOCOL_PATH_ENV = "RTCHECK_PROTOCOL_PATH"
_ID = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
_THRESHOLD = re.compile(r"^\s*(<=|>=|<|>)\s*([0-9]*\.?[0-9]+)\s*(Gy|cGy|%|cc)\s*$")
_ROLES = ("target", "oar", "other")
_OPERATIONS = ("union", "intersection", "subtract")
# A prescription's total must equal fractions x dose per fraction to this relative precision.
_RX_CONSISTENCY = 0.005


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate mapping keys (PyYAML keeps the last one silently)."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


class _Validator:
    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, entry: str | None, message: str) -> ProtocolError:
        return ProtocolError(self.source, entry, message)

    def mapping(self, value: Any, entry: str, *, required: set[str], optional: set[str] = frozenset()) -> dict:
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
        return Threshold(op, float(number), unit)


def _structures(v: _Validator, raw: Any) -> dict[str, StructureSpec]:
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
        role = body.get("role", "oar")
        if role not in _ROLES:
            raise v.fail(f"{entry}.role", f"expected one of {', '.join(_ROLES)}, got {role!r}")
        specs[str(name)] = StructureSpec(
            name=str(name),
            tg263=v.text(body.get("tg263", name), f"{entry}.tg263"),
            role=role,
            aliases=tuple(a.strip() for a in aliases),
            derived=derived,
            fma_codes=_fma_codes(v, body.get("fma"), f"{entry}.fma"),
        )
    for name in specs:
        _check_acyclic(v, name, specs, ())
    return specs


def _fma_codes(v: _Validator, raw: Any, entry: str) -> tuple[int, ...]:
    """``fma: 7310`` or ``fma: [7200, 7199]``: Foundational Model of Anatomy IDs (TG-263's FMAID column)."""
    if raw is None:
        return ()
    codes = raw if isinstance(raw, list) else [raw]
    if not codes or not all(isinstance(c, int) and not isinstance(c, bool) and c > 0 for c in codes):
        raise v.fail(entry, f"expected an FMA ID (a positive whole number) or a list of them, got {raw!r}")
    return tuple(codes)


def _derivation(v: _Validator, raw: Any, entry: str, structures: dict) -> Derivation | None:
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
    return Derivation(operation, tuple(operands))


def _check_acyclic(v: _Validator, name: str, specs: dict[str, StructureSpec], path: tuple[str, ...]) -> None:
    if name in path:
        raise v.fail(f"structures.{path[0]}.derived", f"derivation cycle: {' -> '.join(path + (name,))}")
    derived = specs[name].derived
    for operand in derived.operands if derived else ():
        _check_acyclic(v, operand, specs, path + (name,))


def _constraint(v: _Validator, raw: Any, entry: str, structures: dict[str, StructureSpec]) -> Constraint:
    body = v.mapping(
        raw,
        entry,
        required={"id", "structure", "metric", "per_protocol", "source"},
        optional={"variation_acceptable", "required", "relative_to", "max_outside_dose_grid_pct", *BIOLOGY_KEYS},
    )
    cid = v.identifier(body["id"], f"{entry}.id")
    entry = f"{entry} ({cid})"
    structure = body["structure"]
    if structure not in structures:
        raise v.fail(f"{entry}.structure", f"unknown structure {structure!r}; defined: {', '.join(structures)}")
    try:
        metric = parse_metric(body["metric"])
    except MetricSyntaxError as exc:
        raise v.fail(f"{entry}.metric", str(exc)) from None
    biology = parse_biology_fields(v, body, entry, metric, structures[structure])
    metric = biology.metric
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
        required=v.boolean(body.get("required", True), f"{entry}.required"),
        source=v.text(body["source"], f"{entry}.source"),
        relative_to=relative_to,
        max_outside_dose_grid_pct=outside,
        cumulative=biology.cumulative,
        recovery_credit=biology.recovery_credit,
        alpha_beta_note=biology.alpha_beta_note,
    )


def _window(v: _Validator, raw: Any, entry: str, *, is_default: bool) -> Eqd2Window:
    body = v.mapping(raw, entry, required={"eqd2_gy", "alpha_beta_gy", "source"})
    bounds = v.mapping(body["eqd2_gy"], f"{entry}.eqd2_gy", required={"min", "max"})
    low = v.number(bounds["min"], f"{entry}.eqd2_gy.min")
    high = v.number(bounds["max"], f"{entry}.eqd2_gy.max")
    if high <= low:
        raise v.fail(f"{entry}.eqd2_gy", f"max {high:g} Gy is not above min {low:g} Gy")
    return Eqd2Window(low, high, v.number(body["alpha_beta_gy"], f"{entry}.alpha_beta_gy"), v.text(body["source"], f"{entry}.source"), is_default)


_DOSE_KEYS = ("total_dose_gy", "fractions", "dose_per_fraction_gy")


def _prescription(v: _Validator, raw: Any, entry: str, structures: dict[str, StructureSpec]) -> Prescription:
    body = v.mapping(
        raw, entry, required={"target", "source"},
        optional={*_DOSE_KEYS, "tolerance", "dose_set_by", "default_window", "window"},
    )
    target = body["target"]
    if target not in structures:
        raise v.fail(f"{entry}.target", f"unknown structure {target!r}; defined: {', '.join(structures)}")
    set_by = body.get("dose_set_by", "trial")
    if set_by not in ("trial", "site"):
        raise v.fail(f"{entry}.dose_set_by", f"expected trial or site, got {set_by!r}")
    windows = [key for key in ("default_window", "window") if key in body]
    given = [key for key in _DOSE_KEYS if key in body]
    if set_by == "trial" and windows:
        raise v.fail(f"{entry}.{windows[0]}", "an EQD2 window is for a dose set by the site (dose_set_by: site)")
    if set_by == "site" and not given:
        if len(windows) != 1:
            raise v.fail(entry, "a site-set prescription without a dose needs one EQD2 window: default_window (an rtcheck default) or window (the site's)")
        if "tolerance" in body:
            raise v.fail(f"{entry}.tolerance", "a tolerance applies to a stated dose, not to an EQD2 window")
        key = windows[0]
        return Prescription(
            target=target, total_dose_gy=None, fractions=None, dose_per_fraction_gy=None,
            per_protocol_pct=0.0, variation_acceptable_pct=None, tolerance_source="",
            source=v.text(body["source"], f"{entry}.source"), dose_set_by="site",
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


def _radiotherapy(v: _Validator, body: dict, entry: str) -> bool:
    """``radiotherapy: none`` -> False; absent -> True (the protocol or arm gives radiotherapy)."""
    if "radiotherapy" not in body:
        return True
    if body["radiotherapy"] != "none":
        raise v.fail(entry, f"expected none (leave it out when there is radiotherapy), got {body['radiotherapy']!r}")
    return False


def parse_protocol(data: Any, source: str) -> Protocol:
    """Validate a protocol document (already parsed from YAML) and build its model."""
    v = _Validator(source)
    doc = v.mapping(data, None, required={"schema", "id", "title", "source", "arms"}, optional={"version", "constraint_sets", "structures", "radiotherapy"})
    if doc["schema"] != SCHEMA:
        raise v.fail("schema", f"expected {SCHEMA!r}, got {doc['schema']!r}")
    protocol_id = v.identifier(doc["id"], "id")
    if not isinstance(doc["source"], dict) or not doc["source"]:
        raise v.fail("source", "expected a mapping saying where the protocol comes from (seed, registry, notes)")
    protocol_rt = _radiotherapy(v, doc, "radiotherapy")
    if protocol_rt or "structures" in doc:
        if "structures" not in doc:
            raise v.fail(None, "missing key(s): structures")
        structures = _structures(v, doc["structures"])
    else:
        structures = {}

    constraint_sets: dict[str, list[Constraint]] = {}
    raw_sets = doc.get("constraint_sets") or {}
    if not isinstance(raw_sets, dict):
        raise v.fail("constraint_sets", "expected a mapping of named lists of constraints")
    for set_name, items in raw_sets.items():
        if not isinstance(items, list) or not items:
            raise v.fail(f"constraint_sets.{set_name}", "expected a non-empty list of constraints")
        constraint_sets[str(set_name)] = [_constraint(v, item, f"constraint_sets.{set_name}[{i}]", structures) for i, item in enumerate(items)]

    arms: dict[str, Arm] = {}
    if not isinstance(doc["arms"], dict) or not doc["arms"]:
        raise v.fail("arms", "expected a non-empty mapping of arms")
    for arm_id, body in doc["arms"].items():
        entry = f"arms.{arm_id}"
        v.identifier(arm_id, entry)
        body = v.mapping(body, entry, required={"title"}, optional={"prescriptions", "constraints", "radiotherapy"})
        if not protocol_rt or not _radiotherapy(v, body, f"{entry}.radiotherapy"):
            if not protocol_rt and "radiotherapy" in body:
                raise v.fail(f"{entry}.radiotherapy", "the protocol already says radiotherapy: none for every arm")
            given = [key for key in ("prescriptions", "constraints") if body.get(key)]
            if given:
                raise v.fail(f"{entry}.{given[0]}", "an arm without radiotherapy (radiotherapy: none) has no prescriptions or constraints")
            arms[str(arm_id)] = Arm(str(arm_id), v.text(body["title"], f"{entry}.title"), (), (), radiotherapy=False)
            continue
        missing = [key for key in ("prescriptions", "constraints") if key not in body]
        if missing:
            raise v.fail(entry, f"missing key(s): {', '.join(missing)} (or radiotherapy: none)")
        raw_rx = body["prescriptions"]
        if not isinstance(raw_rx, list):
            raise v.fail(f"{entry}.prescriptions", "expected a list (empty when the arm has no radiotherapy)")
        prescriptions = [_prescription(v, item, f"{entry}.prescriptions[{i}]", structures) for i, item in enumerate(raw_rx)]
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
                constraints.append(_constraint(v, item, item_entry, structures))
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
        arms[str(arm_id)] = Arm(str(arm_id), v.text(body["title"], f"{entry}.title"), tuple(prescriptions), tuple(constraints))

    return Protocol(
        id=protocol_id,
        title=v.text(doc["title"], "title"),
        version=str(doc.get("version", "")),
        source=dict(doc["source"]),
        structures=structures,
        arms=arms,
    )


def load_protocol_file(path: str | Path) -> Protocol:
    """Read, validate and return the protocol in ``path`` (with its sha256); a site overlay is merged with its base."""
    path = Path(path)
    raw, data = read_document(path)
    if isinstance(data, dict) and ("extends" in data or data.get("schema") == OVERLAY_SCHEMA):
        from rtcheck.protocol.overlay import load_overlay

        return load_overlay(path, raw, data)
    from rtcheck.protocol.importers.tg263 import resolve_nomenclature

    protocol = parse_protocol(resolve_nomenclature(data, path), str(path))
    protocol.path = path
    protocol.sha256 = hashlib.sha256(raw).hexdigest()
    return protocol


def read_document(path: Path) -> tuple[bytes, Any]:
    """The bytes of a protocol or overlay file and its YAML content (duplicate keys refused)."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ProtocolError(str(path), None, f"cannot read ({exc.strerror or exc})") from None
    try:
        data = yaml.load(raw.decode("utf-8"), Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except UnicodeDecodeError:
        raise ProtocolError(str(path), None, "not UTF-8 text") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise ProtocolError(str(path), where, f"invalid YAML: {problem}") from None
    return raw, data


def protocol_dirs() -> list[Path]:
    """Folders searched for protocols: those in $RTCHECK_PROTOCOL_PATH, then the built-in ones."""
    dirs = [Path(p) for p in os.environ.get(PROTOCOL_PATH_ENV, "").split(os.pathsep) if p]
    package = Path(__file__).resolve().parent.parent
    # Installed wheel: rtcheck/builtin_protocols; source checkout or editable install: ../protocols.
    for builtin in (package / "builtin_protocols", package.parent / "protocols"):
        if builtin.is_dir():
            dirs.append(builtin)
            break
    return dirs


def _protocol_files() -> list[Path]:
    files: list[Path] = []
    for folder in protocol_dirs():
        if folder.is_dir():
            files.extend(sorted(list(folder.glob("*.yaml")) + list(folder.glob("*.yml"))))
    return files


def list_protocols() -> list[Protocol]:
    """Every protocol found, first occurrence of an id winning (user folders before built-ins)."""
    found: dict[str, Protocol] = {}
    for path in _protocol_files():
        protocol = load_protocol_file(path)
        found.setdefault(protocol.id, protocol)
    return list(found.values())


def find_protocol(id_or_path: str) -> Protocol:
    """The protocol with this id, or the protocol file at this path."""
    candidate = Path(id_or_path)
    if candidate.suffix in (".yaml", ".yml") or os.sep in id_or_path:
        if candidate.is_file():
            return load_protocol_file(candidate)
        raise UnknownProtocolError(f"protocol file {id_or_path} does not exist")
    for path in _protocol_files():
        # File names follow ids; only the matching file is read before the full scan.
        if path.stem == id_or_path:
            protocol = load_protocol_file(path)
            if protocol.id == id_or_path:
                return protocol
    for protocol in list_protocols():
        if protocol.id == id_or_path:
            return protocol
    known = ", ".join(p.id for p in list_protocols()) or "none"
    raise UnknownProtocolError(f"unknown protocol {id_or_path!r}; known protocols: {known}")
