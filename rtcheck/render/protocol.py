"""A protocol as text or as a JSON document (``rtcheck protocols show``)."""

from __future__ import annotations

from typing import Any

from rtcheck.protocol.model import Prescription, Protocol


def _origin(protocol: Protocol, key: str) -> dict[str, Any]:
    """Where an entry and its values come from: the file that defined the entry, and each value an overlay set."""
    base = protocol.bases[0]["path"] if protocol.bases else (str(protocol.path) if protocol.path else None)
    fields = {k[len(key) + 1:]: f for k, f in protocol.provenance.items() if k.startswith(key + ".")}
    return {"entry": protocol.provenance.get(key, base), "values": fields}


def _window(rx: Prescription) -> dict[str, Any] | None:
    w = rx.window
    if w is None:
        return None
    return {"eqd2_min_gy": w.min_gy, "eqd2_max_gy": w.max_gy, "alpha_beta_gy": w.alpha_beta_gy, "is_rtcheck_default": w.is_default, "source": w.source}


def protocol_document(protocol: Protocol) -> dict[str, Any]:
    return {
        "schema": "rtcheck.protocol-show/1",
        "id": protocol.id,
        "title": protocol.title,
        "version": protocol.version,
        "source": protocol.source,
        "path": str(protocol.path) if protocol.path else None,
        "sha256": protocol.sha256,
        "radiotherapy": protocol.radiotherapy,
        "extends": protocol.bases,
        "structures": [
            {
                "name": s.name,
                "tg263": s.tg263,
                "role": s.role,
                "aliases": list(s.aliases),
                "derived": {s.derived.operation: list(s.derived.operands)} if s.derived else None,
                "origin": _origin(protocol, f"structures.{s.name}"),
            }
            for s in protocol.structures.values()
        ],
        "arms": [
            {
                "id": arm.id,
                "title": arm.title,
                "radiotherapy": arm.radiotherapy,
                "prescriptions": [
                    {
                        "target": rx.target,
                        "dose_set_by": rx.dose_set_by,
                        "total_dose_gy": rx.total_dose_gy,
                        "fractions": rx.fractions,
                        "dose_per_fraction_gy": rx.dose_per_fraction_gy,
                        "eqd2_window": _window(rx),
                        "tolerance_per_protocol_pct": rx.per_protocol_pct,
                        "tolerance_variation_acceptable_pct": rx.variation_acceptable_pct,
                        "tolerance_source": rx.tolerance_source,
                        "source": rx.source,
                        "origin": _origin(protocol, f"arms.{arm.id}.prescriptions.{rx.target}"),
                    }
                    for rx in arm.prescriptions
                ],
                "constraints": [
                    {
                        "id": c.id,
                        "structure": c.structure,
                        "metric": c.metric.text,
                        "per_protocol": str(c.per_protocol),
                        "variation_acceptable": str(c.variation_acceptable) if c.variation_acceptable else None,
                        "kind": c.kind.value,
                        "relative_to": c.relative_to,
                        "max_outside_dose_grid_pct": c.max_outside_dose_grid_pct,
                        "source": c.source,
                        "cumulative": c.cumulative,
                        "recovery_credit": None if c.recovery_credit is None else {
                            "steps": [{"after_months": st.after_months, "credit_pct": st.credit_pct} for st in c.recovery_credit.steps],
                            "source": c.recovery_credit.source,
                        },
                        "alpha_beta_note": c.alpha_beta_note or None,
                        "origin": _origin(protocol, f"arms.{arm.id}.constraints.{c.id}"),
                    }
                    for c in arm.constraints
                ],
            }
            for arm in protocol.arms.values()
        ],
    }


def describe_protocol(protocol: Protocol) -> str:
    lines = [f"{protocol.id}: {protocol.title}", f"  file   {protocol.path}", f"  sha256 {protocol.sha256}"]
    for base in reversed(protocol.bases):
        lines.append(f"  extends {base['kind']} {base['id']}: {base['path']} (sha256 {base['sha256']})")
    if protocol.bases:
        lines.append(f"  [from FILE] marks a value a site overlay set; everything else comes from {protocol.bases[0]['path']}")
    if not protocol.radiotherapy:
        lines.append("  radiotherapy: none (no arm gives radiotherapy; a plan cannot be checked against it)")
    for key, value in protocol.source.items():
        lines.append(f"  source.{key}: {' '.join(str(value).split())}")
    lines += ["", "Structures (protocol name <- accepted ROI names):"]
    if not protocol.structures:
        lines.append("  none")
    for s in protocol.structures.values():
        derived = f"; else derived as {s.derived}" if s.derived else ""
        origin = _mark(protocol, f"structures.{s.name}")
        lines.append(f"  {s.name} [{s.role}, TG-263 {s.tg263}] <- {', '.join(s.aliases) or '(no ROI name)'}{derived}{origin}")
    for arm in protocol.arms.values():
        lines += ["", f"Arm {arm.id}: {arm.title}"]
        if not arm.radiotherapy:
            lines.append("  radiotherapy: none (no plan to check against this arm)")
        for rx in arm.prescriptions:
            origin = _mark(protocol, f"arms.{arm.id}.prescriptions.{rx.target}")
            if rx.window is not None:
                lines.append(f"  Rx {rx.target}: dose set by the site (the trial states none); {rx.window}{origin}")
                lines.append(f"      window source: {' '.join(rx.window.source.split())}")
            else:
                tolerance = f"± {rx.per_protocol_pct:g} % per protocol"
                if rx.variation_acceptable_pct is not None:
                    tolerance += f", ± {rx.variation_acceptable_pct:g} % variation"
                site = ", set by the site" if rx.dose_set_by == "site" else ""
                lines.append(f"  Rx {rx.target}: {rx.total_dose_gy:g} Gy / {rx.fractions} fx / {rx.dose_per_fraction_gy:g} Gy per fx ({tolerance}{site}){origin}")
            lines.append(f"      source: {' '.join(rx.source.split())}")
        for c in arm.constraints:
            variation = f"; variation {c.variation_acceptable}" if c.variation_acceptable else ""
            optional = "" if c.kind == "required" else f" [{c.kind}]"
            origin = _mark(protocol, f"arms.{arm.id}.constraints.{c.id}")
            cumulative = " [cumulative with the prior course]" if c.cumulative else ""
            lines.append(f"  {c.id}: {c.structure} {c.metric.text} {c.per_protocol}{variation}{optional}{cumulative}{origin}")
            if c.alpha_beta_note:
                lines.append(f"      alpha/beta: {c.alpha_beta_note}")
            if c.recovery_credit is not None:
                lines.append(f"      recovery credit: {c.recovery_credit.describe()} (source: {' '.join(c.recovery_credit.source.split())})")
            lines.append(f"      source: {' '.join(c.source.split())}")
    return "\n".join(lines)


def _mark(protocol: Protocol, key: str) -> str:
    """`` [from FILE: values]`` when a site overlay defined the entry or set some of its values."""
    origin = _origin(protocol, key)
    if key in protocol.provenance:
        return f" [from {protocol.provenance[key]}]"
    by_file: dict[str, list[str]] = {}
    for name, path in origin["values"].items():
        by_file.setdefault(path, []).append(name)
    return "".join(f" [{', '.join(names)} from {path}]" for path, names in by_file.items())
