"""Site overlays: a department's adaptation of a trial protocol, kept in its own file.

An overlay (``schema: rtcheck.overlay/1``) ``extends:`` a protocol (by id, or by a
path relative to the overlay) and changes structure aliases, thresholds of named
constraints, site-set prescriptions, and may add structures and constraints
(README, "Site overlays").  It is merged into the base's document, the result
validated like any protocol, and every value it set is recorded in
``Protocol.provenance`` (the base file provides everything else).

An overlay cannot remove a constraint (it may make one graded-if-contoured or informational, with a
``reason``), cannot give radiotherapy to an arm or protocol without it, and
cannot change a dose the trial fixes (only its tolerance).  An overlay may
extend another overlay; rtcheck.protocol.library finds the base and refuses a cycle.

This module is a pure merge of documents: it reads no file and changes none of its
inputs.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from rtcheck.errors import ProtocolError
from rtcheck.protocol.model import DoseSetBy, Protocol
from rtcheck.protocol.schema import OVERLAY_SCHEMA, Validator, parse_constraint, parse_prescription, parse_structures

__all__ = ["merge_overlay", "overlay_extends", "overlay_notes"]

# What an overlay may change in a constraint; its metric, structure and biology stay the base's.
_CONSTRAINT_FIELDS = {"per_protocol", "variation_acceptable", "kind", "max_outside_dose_grid_pct", "recovery_credit"}
_DOSE_FIELDS = {"total_dose_gy", "fractions", "dose_per_fraction_gy", "tolerance"}


def overlay_extends(overlay: Any, source: str) -> str:
    """The ``extends:`` of overlay document ``overlay`` (the base's id or file), once its header is valid."""
    v = Validator(source)
    doc = _header(v, overlay)
    extends = doc["extends"]
    if not isinstance(extends, str) or not extends.strip():
        raise v.fail("extends", "expected the id or the file of the protocol this overlay adapts")
    return extends


def merge_overlay(base_document: Mapping[str, Any], base: Protocol, overlay: Any, source: str) -> tuple[dict[str, Any], dict[str, str]]:
    """Overlay document ``overlay`` (named ``source`` in errors) merged into ``base_document``.

    ``base`` is the model of ``base_document`` (with its sha256, overlay chain and provenance).
    Returns the merged protocol document, still to be validated as a whole, and the provenance:
    each value an overlay of the chain set -> that overlay's ``source``.
    """
    v = Validator(source)
    # A copy: the merged document shares no mapping with the caller's overlay.
    doc = copy.deepcopy(_header(v, overlay))
    overlay_id = doc["id"]
    if overlay_id == base.id:
        raise v.fail("id", f"an overlay needs its own id, not its base's {base.id!r}")
    if doc.get("extends_sha256") is not None and doc["extends_sha256"] != base.sha256:
        raise v.fail("extends_sha256", f"the base {base.path} has sha256 {base.sha256}, not the one this overlay was written for")
    merged = copy.deepcopy(dict(base_document))
    provenance = dict(base.provenance)
    origin = source

    changes = {k: doc[k] for k in ("structures", "add_structures", "constraints", "arms") if doc.get(k)}
    if changes and not base.radiotherapy:
        raise v.fail(next(iter(changes)), f"protocol {base.id} has no radiotherapy; an overlay cannot add radiotherapy to it")

    _override_structures(v, doc, merged, provenance, origin)
    specs = parse_structures(v, merged.get("structures") or {})
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
    return merged, provenance


def overlay_notes(protocol: Protocol) -> list[str]:
    """Notes for a check report: the overlay chain with each file's sha256."""
    if not protocol.bases:
        return []
    chain = "; ".join(f"{b['kind']} {b['id']} ({b['path']}, sha256 {b['sha256']})" for b in protocol.bases)
    return [
        f"protocol {protocol.id} is a site overlay ({protocol.path}, sha256 {protocol.sha256}) of: {chain}; "
        f"{len(protocol.provenance)} value(s) set by overlays (rtcheck protocols show {protocol.id})"
    ]


def _header(v: Validator, overlay: Any) -> dict[str, Any]:
    doc = v.mapping(
        overlay, None, required={"schema", "id", "extends", "source"},
        optional={"title", "version", "extends_sha256", "structures", "add_structures", "constraints", "arms"},
    )
    if doc["schema"] != OVERLAY_SCHEMA:
        raise v.fail("schema", f"expected {OVERLAY_SCHEMA!r} for a file with extends:, got {doc['schema']!r}")
    v.identifier(doc["id"], "id")
    if not isinstance(doc["source"], dict) or not doc["source"]:
        raise v.fail("source", "expected a mapping saying who adapted the protocol and why (site, notes)")
    return doc


def _override_structures(v: Validator, doc: dict, merged: dict, provenance: dict, origin: str) -> None:
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
        parse_structures(v, {**structures})
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
    v: Validator, overrides: Any, entry: str, merged: dict, arm_id: str | None, specs: dict, provenance: dict, origin: str
) -> None:
    if not isinstance(overrides, dict):
        raise v.fail(entry, "expected a mapping of constraint ids")
    arms = [arm_id] if arm_id else list(merged["arms"])
    for cid, body in overrides.items():
        item_entry = f"{entry}.{cid}"
        body = v.mapping(body, item_entry, required={"source"}, optional=_CONSTRAINT_FIELDS | {"reason"})
        source = v.text(body["source"], f"{item_entry}.source")
        weaker = body.get("kind") is not None and body.get("kind") != "required"
        if weaker and "reason" not in body:
            raise v.fail(f"{item_entry}.kind", f"making a constraint {body['kind']} needs a reason: (why the site does not always grade it)")
        if "reason" in body and not weaker:
            raise v.fail(f"{item_entry}.reason", "a reason goes with kind: graded-if-contoured or informational")
        targets = [a for a in arms if _arm_has(merged, a, cid)]
        if not targets:
            where = f"arm {arm_id}" if arm_id else "any arm"
            raise v.fail(item_entry, f"unknown constraint id {cid!r}: not in {where} of the base")
        items: list[dict]
        if arm_id:
            own = _expand_use(merged, arm_id, cid)  # found: the arm has the constraint
            items = [own] if own is not None else []
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
            why = f"{source}" + (f"; {body['kind']} at this site: {body['reason']}" if "reason" in body else "")
            item["source"] = f"site overlay {origin}: {why} (base: {' '.join(str(item.get('source', '')).split())})"
            # Validated here so that an error points at the overlay's entry.
            parse_constraint(v, item, item_entry, specs)
        for a in targets:
            for key in [*(k for k in body if k in _CONSTRAINT_FIELDS), "source"]:
                provenance[f"arms.{a}.constraints.{cid}.{key}"] = origin


def _override_arm(v: Validator, arm_id: str, body: Any, merged: dict, specs: dict, provenance: dict, origin: str, base: Protocol) -> None:
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
        constraint = parse_constraint(v, item, f"{entry}.add_constraints[{i}]", specs)
        if _arm_has(merged, arm_id, constraint.id):
            raise v.fail(f"{entry}.add_constraints[{i}]", f"arm {arm_id} already has constraint {constraint.id!r}; change it under constraints")
        _arm_items(merged, arm_id).append(copy.deepcopy(item))
        provenance[f"arms.{arm_id}.constraints.{constraint.id}"] = origin


def _override_prescription(v: Validator, entry: str, target: str, changes: Any, arm: dict, specs: dict) -> None:
    items = [rx for rx in arm.get("prescriptions") or [] if isinstance(rx, dict) and rx.get("target") == target]
    if not items:
        known = ", ".join(str(rx.get("target")) for rx in arm.get("prescriptions") or [])
        raise v.fail(entry, f"the arm prescribes nothing to {target!r}; its targets: {known}")
    rx = items[0]
    changes = v.mapping(changes, entry, required={"source"}, optional=_DOSE_FIELDS | {"window"})
    source = v.text(changes["source"], f"{entry}.source")
    if rx.get("dose_set_by", DoseSetBy.TRIAL.value) != DoseSetBy.SITE:
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
    parse_prescription(v, rx, entry, specs)
