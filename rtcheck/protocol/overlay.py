"""Site overlays: a department's adaptation of a trial protocol, kept in its own file.

An overlay (``schema: rtcheck.overlay/1``) ``extends:`` a protocol (by id, or by a
path relative to the overlay) and changes structure aliases, thresholds of named
constraints, site-set prescriptions, and may add structures and constraints
(README, "Site overlays").  It is merged into the base's YAML document, the
result validated like any protocol, and every value it set is recorded in
``Protocol.provenance`` (the base file provides everything else).

An overlay cannot remove a constraint (it may make one optional, with a
``reason``), cannot give radiotherapy to an arm or protocol without it, and
cannot change a dose the trial fixes (only its tolerance).  An overlay may
extend another overlay; a cycle is refused.
"""

from __future__ import annotations

import copy
import hashlib
import threading
from pathlib import Path
from typing import Any

from rtcheck.errors import ProtocolError
from rtcheck.protocol.loader import (
    OVERLAY_SCHEMA,
    _constraint,
    _prescription,
    _structures,
    _Validator,
    parse_protocol,
    read_document,
)
from rtcheck.protocol.model import Protocol

# What an overlay may change in a constraint; its metric, structure and biology stay the base's.
_CONSTRAINT_FIELDS = {"per_protocol", "variation_acceptable", "required", "max_outside_dose_grid_pct", "recovery_credit"}
_DOSE_FIELDS = {"total_dose_gy", "fractions", "dose_per_fraction_gy", "tolerance"}
# Overlay files being resolved in this thread, outermost first: a file met again is a cycle.
_loading = threading.local()


def load_overlay(path: Path, raw: bytes, data: Any) -> Protocol:
    """Merge the overlay in ``path`` (its bytes and parsed YAML) with its base and validate the result."""
    return _load(path, raw, data)[0]


def _load(path: Path, raw: bytes, data: Any) -> tuple[Protocol, dict]:
    """The merged protocol and the merged YAML document it was built from."""
    stack: list[Path] = getattr(_loading, "stack", [])
    resolved = path.resolve()
    if resolved in stack:
        chain = " -> ".join(str(p) for p in [*stack[stack.index(resolved):], resolved])
        raise ProtocolError(str(path), "extends", f"overlays extend each other in a cycle: {chain}")
    _loading.stack = [*stack, resolved]
    try:
        return _merge(path, raw, data)
    finally:
        _loading.stack = stack


def overlay_notes(protocol: Protocol) -> list[str]:
    """Notes for a check report: the overlay chain with each file's sha256."""
    if not protocol.bases:
        return []
    chain = "; ".join(f"{b['kind']} {b['id']} ({b['path']}, sha256 {b['sha256']})" for b in protocol.bases)
    return [
        f"protocol {protocol.id} is a site overlay ({protocol.path}, sha256 {protocol.sha256}) of: {chain}; "
        f"{len(protocol.provenance)} value(s) set by overlays (rtcheck protocols show {protocol.id})"
    ]


def _base_path(v: _Validator, path: Path, extends: Any) -> Path:
    from rtcheck.protocol.loader import _protocol_files

    if not isinstance(extends, str) or not extends.strip():
        raise v.fail("extends", "expected the id or the file of the protocol this overlay adapts")
    if extends.endswith((".yaml", ".yml")) or "/" in extends:
        base = Path(extends) if Path(extends).is_absolute() else path.parent / extends
        if not base.is_file():
            raise v.fail("extends", f"protocol file {base} does not exist")
        return base
    stack: list[Path] = getattr(_loading, "stack", [])
    files = _protocol_files()
    # File names follow ids: try the file named after the id first, then every file.
    for candidate in sorted(files, key=lambda f: f.stem != extends):
        if candidate.resolve() == path.resolve():
            continue
        try:
            _, data = read_document(candidate)
        except ProtocolError:
            continue
        if isinstance(data, dict) and data.get("id") == extends:
            if candidate.resolve() in stack:
                chain = " -> ".join(str(p) for p in [*stack[stack.index(candidate.resolve()):], candidate.resolve()])
                raise v.fail("extends", f"overlays extend each other in a cycle: {chain}")
            return candidate
    raise v.fail("extends", f"unknown protocol {extends!r} (searched the protocol folders)")


def _merge(path: Path, raw: bytes, data: Any) -> tuple[Protocol, dict]:
    v = _Validator(str(path))
    doc = v.mapping(
        data, None, required={"schema", "id", "extends", "source"},
        optional={"title", "version", "extends_sha256", "structures", "add_structures", "constraints", "arms"},
    )
    if doc["schema"] != OVERLAY_SCHEMA:
        raise v.fail("schema", f"expected {OVERLAY_SCHEMA!r} for a file with extends:, got {doc['schema']!r}")
    overlay_id = v.identifier(doc["id"], "id")
    if not isinstance(doc["source"], dict) or not doc["source"]:
        raise v.fail("source", "expected a mapping saying who adapted the protocol and why (site, notes)")
    base_path = _base_path(v, path, doc["extends"])
    base, base_document = _load_base(base_path)
    if overlay_id == base.id:
        raise v.fail("id", f"an overlay needs its own id, not its base's {base.id!r}")
    if doc.get("extends_sha256") is not None and doc["extends_sha256"] != base.sha256:
        raise v.fail("extends_sha256", f"the base {base_path} has sha256 {base.sha256}, not the one this overlay was written for")
    merged = copy.deepcopy(base_document)
    provenance = dict(base.provenance)
    origin = str(path)

    changes = {k: doc[k] for k in ("structures", "add_structures", "constraints", "arms") if doc.get(k)}
    if changes and not base.radiotherapy:
        raise v.fail(next(iter(changes)), f"protocol {base.id} has no radiotherapy; an overlay cannot add radiotherapy to it")

    _override_structures(v, doc, merged, provenance, origin)
    specs = _structures(v, merged.get("structures") or {})
    # Protocol-wide changes first: a per-arm change of the same value then wins in its arm.
    _override_constraints(v, doc.get("constraints") or {}, "constraints", merged, None, specs, provenance, origin)
    arms_raw = doc.get("arms") or {}
    if not isinstance(arms_raw, dict):
        raise v.fail("arms", "expected a mapping of arm ids")
    for arm_id, body in arms_raw.items():
        _override_arm(v, str(arm_id), body, merged, specs, provenance, origin, base)

    merged["id"] = overlay_id
    root_title = base.bases[0]["title"] if base.bases else base.title
    merged["title"] = v.text(doc["title"], "title") if "title" in doc else f"{root_title} (site overlay {overlay_id})"
    if "version" in doc:
        merged["version"] = str(doc["version"])
    merged["source"] = {
        **merged["source"],
        f"overlay {overlay_id}": "; ".join(f"{k}: {' '.join(str(val).split())}" for k, val in doc["source"].items()),
    }
    protocol = parse_protocol(merged, str(path))
    protocol.path = path
    protocol.sha256 = hashlib.sha256(raw).hexdigest()
    kind = "overlay" if base.bases else "protocol"
    protocol.bases = [*base.bases, {"kind": kind, "id": base.id, "title": base.title, "path": str(base.path), "sha256": base.sha256}]
    protocol.provenance = provenance
    return protocol, merged


def _load_base(base_path: Path) -> tuple[Protocol, dict]:
    """The base protocol and the YAML document it was built from (merged, for an overlay), from one read of the file."""
    raw, data = read_document(base_path)
    if isinstance(data, dict) and ("extends" in data or data.get("schema") == OVERLAY_SCHEMA):
        return _load(base_path, raw, data)
    base = parse_protocol(copy.deepcopy(data), str(base_path))
    base.path = base_path
    base.sha256 = hashlib.sha256(raw).hexdigest()
    return base, data


def _override_structures(v: _Validator, doc: dict, merged: dict, provenance: dict, origin: str) -> None:
    structures = merged.setdefault("structures", {})
    overrides = doc.get("structures") or {}
    if not isinstance(overrides, dict):
        raise v.fail("structures", "expected a mapping of the base's structure names")
    for name, body in overrides.items():
        entry = f"structures.{name}"
        if name not in structures:
            raise v.fail(entry, f"unknown structure {name!r} in the base; defined: {', '.join(structures)} (new ones go under add_structures)")
        body = v.mapping(body, entry, required={"source"}, optional={"aliases", "add_aliases"})
        v.text(body["source"], f"{entry}.source")
        if "aliases" not in body and "add_aliases" not in body:
            raise v.fail(entry, "expected aliases (replacing the base's) or add_aliases (added to them)")
        for key in ("aliases", "add_aliases"):
            if key in body and (not isinstance(body[key], list) or not all(isinstance(a, str) and a.strip() for a in body[key])):
                raise v.fail(f"{entry}.{key}", "expected a list of ROI names")
        aliases = list(body["aliases"]) if "aliases" in body else list(structures[name].get("aliases") or [])
        aliases += [a for a in body.get("add_aliases", []) if a not in aliases]
        if not aliases and not structures[name].get("derived"):
            raise v.fail(entry, "a structure that is not derived needs at least one alias")
        structures[name] = {**structures[name], "aliases": aliases}
        provenance[f"structures.{name}.aliases"] = origin
    added = doc.get("add_structures") or {}
    if not isinstance(added, dict):
        raise v.fail("add_structures", "expected a mapping of new structure names")
    for name, body in added.items():
        if name in structures:
            raise v.fail(f"add_structures.{name}", f"the base already defines {name!r}; change its aliases under structures")
        structures[name] = body
        provenance[f"structures.{name}"] = origin
    try:
        _structures(v, {**structures})
    except ProtocolError as exc:
        # Point at the overlay's entry for an added structure.
        raise v.fail(f"add_structures ({exc.entry})", exc.reason) from None


def _arm_items(merged: dict, arm_id: str) -> list:
    return merged["arms"][arm_id].setdefault("constraints", [])


def _arm_has(merged: dict, arm_id: str, cid: str) -> bool:
    sets = merged.get("constraint_sets") or {}
    for item in merged["arms"][arm_id].get("constraints") or []:
        if isinstance(item, dict) and "use" in item:
            if any(isinstance(c, dict) and c.get("id") == cid for c in sets.get(item["use"], [])):
                return True
        elif isinstance(item, dict) and item.get("id") == cid:
            return True
    return False


def _expand_use(merged: dict, arm_id: str, cid: str) -> dict | None:
    """The arm's own copy of constraint ``cid`` (a shared set it uses is copied into the arm)."""
    items = _arm_items(merged, arm_id)
    sets = merged.get("constraint_sets") or {}
    for index, item in enumerate(items):
        if isinstance(item, dict) and "use" in item and any(c.get("id") == cid for c in sets.get(item["use"], [])):
            items[index:index + 1] = copy.deepcopy(sets[item["use"]])
            break
    return next((item for item in items if isinstance(item, dict) and item.get("id") == cid), None)


def _override_constraints(
    v: _Validator, overrides: Any, entry: str, merged: dict, arm_id: str | None, specs: dict, provenance: dict, origin: str
) -> None:
    if not isinstance(overrides, dict):
        raise v.fail(entry, "expected a mapping of constraint ids")
    arms = [arm_id] if arm_id else list(merged["arms"])
    for cid, body in overrides.items():
        item_entry = f"{entry}.{cid}"
        body = v.mapping(body, item_entry, required={"source"}, optional=_CONSTRAINT_FIELDS | {"reason"})
        source = v.text(body["source"], f"{item_entry}.source")
        if body.get("required") is False and "reason" not in body:
            raise v.fail(f"{item_entry}.required", "making a constraint optional needs a reason: (why the site does not grade it)")
        if "reason" in body and body.get("required") is not False:
            raise v.fail(f"{item_entry}.reason", "a reason goes with required: false")
        targets = [a for a in arms if _arm_has(merged, a, cid)]
        if not targets:
            where = f"arm {arm_id}" if arm_id else "any arm"
            raise v.fail(item_entry, f"unknown constraint id {cid!r}: not in {where} of the base")
        if arm_id:
            items = [_expand_use(merged, arm_id, cid)]
        else:
            sets = merged.get("constraint_sets") or {}
            items = [c for group in sets.values() for c in group if c.get("id") == cid]
            items += [c for a in merged["arms"].values() for c in a.get("constraints") or [] if isinstance(c, dict) and c.get("id") == cid]
        for item in items:
            for key in (k for k in body if k in _CONSTRAINT_FIELDS):
                if body[key] is None:
                    item.pop(key, None)  # e.g. variation_acceptable: null removes the band
                else:
                    item[key] = body[key]
            why = f"{source}" + (f"; optional at this site: {body['reason']}" if "reason" in body else "")
            item["source"] = f"site overlay {origin}: {why} (base: {' '.join(str(item.get('source', '')).split())})"
            # Validated here so that an error points at the overlay's entry.
            _constraint(v, item, item_entry, specs)
        for a in targets:
            for key in [*(k for k in body if k in _CONSTRAINT_FIELDS), "source"]:
                provenance[f"arms.{a}.constraints.{cid}.{key}"] = origin


def _override_arm(v: _Validator, arm_id: str, body: Any, merged: dict, specs: dict, provenance: dict, origin: str, base: Protocol) -> None:
    entry = f"arms.{arm_id}"
    if arm_id not in merged["arms"]:
        raise v.fail(entry, f"unknown arm {arm_id!r}; the base's arms: {', '.join(merged['arms'])}")
    if not base.arms[arm_id].radiotherapy:
        raise v.fail(entry, f"arm {arm_id} of {base.id} has no radiotherapy; an overlay cannot add radiotherapy to it")
    body = v.mapping(body, entry, required=set(), optional={"prescriptions", "constraints", "add_constraints"})
    arm = merged["arms"][arm_id]
    rx_overrides = body.get("prescriptions") or {}
    if not isinstance(rx_overrides, dict):
        raise v.fail(f"{entry}.prescriptions", "expected a mapping of target names")
    for target, changes in rx_overrides.items():
        _override_prescription(v, f"{entry}.prescriptions.{target}", target, changes, arm, specs)
        provenance[f"arms.{arm_id}.prescriptions.{target}"] = origin
    _override_constraints(v, body.get("constraints") or {}, f"{entry}.constraints", merged, arm_id, specs, provenance, origin)
    added = body.get("add_constraints") or []
    if not isinstance(added, list):
        raise v.fail(f"{entry}.add_constraints", "expected a list of constraints")
    for i, item in enumerate(added):
        constraint = _constraint(v, item, f"{entry}.add_constraints[{i}]", specs)
        if _arm_has(merged, arm_id, constraint.id):
            raise v.fail(f"{entry}.add_constraints[{i}]", f"arm {arm_id} already has constraint {constraint.id!r}; change it under constraints")
        _arm_items(merged, arm_id).append(copy.deepcopy(item))
        provenance[f"arms.{arm_id}.constraints.{constraint.id}"] = origin


def _override_prescription(v: _Validator, entry: str, target: str, changes: Any, arm: dict, specs: dict) -> None:
    items = [rx for rx in arm.get("prescriptions") or [] if isinstance(rx, dict) and rx.get("target") == target]
    if not items:
        known = ", ".join(str(rx.get("target")) for rx in arm.get("prescriptions") or [])
        raise v.fail(entry, f"the arm prescribes nothing to {target!r}; its targets: {known}")
    rx = items[0]
    changes = v.mapping(changes, entry, required={"source"}, optional=_DOSE_FIELDS | {"window"})
    source = v.text(changes["source"], f"{entry}.source")
    if rx.get("dose_set_by", "trial") != "site":
        extra = sorted(changes.keys() - {"tolerance", "source"})
        if extra:
            raise v.fail(
                f"{entry}.{extra[0]}",
                "the trial fixes this prescription's dose; an overlay may change its tolerance only (a dose the site sets says dose_set_by: site)",
            )
    dose = {key for key in changes.keys() & _DOSE_FIELDS if key != "tolerance"}
    if dose or "window" in changes:
        # The site states its dose (or its own window): it replaces the base's dose or window.
        for key in ("total_dose_gy", "fractions", "dose_per_fraction_gy", "tolerance", "default_window", "window"):
            rx.pop(key, None)
    for key in changes.keys() - {"source"}:
        rx[key] = changes[key]
    rx["source"] = f"site overlay {v.source}: {source} (base: {' '.join(str(rx.get('source', '')).split())})"
    _prescription(v, rx, entry, specs)
