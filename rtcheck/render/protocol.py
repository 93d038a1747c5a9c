"""A protocol as text or as a JSON document (``rtcheck protocols show``)."""

from __future__ import annotations

from typing import Any

from rtcheck.protocol.model import Protocol


def protocol_document(protocol: Protocol) -> dict[str, Any]:
    return {
        "schema": "rtcheck.protocol-show/1",
        "id": protocol.id,
        "title": protocol.title,
        "version": protocol.version,
        "source": protocol.source,
        "path": str(protocol.path) if protocol.path else None,
        "sha256": protocol.sha256,
        "structures": [
            {
                "name": s.name,
                "tg263": s.tg263,
                "role": s.role,
                "aliases": list(s.aliases),
                "derived": {s.derived.operation: list(s.derived.operands)} if s.derived else None,
            }
            for s in protocol.structures.values()
        ],
        "arms": [
            {
                "id": arm.id,
                "title": arm.title,
                "prescriptions": [
                    {
                        "target": rx.target,
                        "total_dose_gy": rx.total_dose_gy,
                        "fractions": rx.fractions,
                        "dose_per_fraction_gy": rx.dose_per_fraction_gy,
                        "tolerance_per_protocol_pct": rx.per_protocol_pct,
                        "tolerance_variation_acceptable_pct": rx.variation_acceptable_pct,
                        "tolerance_source": rx.tolerance_source,
                        "source": rx.source,
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
                        "required": c.required,
                        "relative_to": c.relative_to,
                        "max_outside_dose_grid_pct": c.max_outside_dose_grid_pct,
                        "source": c.source,
                    }
                    for c in arm.constraints
                ],
            }
            for arm in protocol.arms.values()
        ],
    }


def describe_protocol(protocol: Protocol) -> str:
    lines = [f"{protocol.id}: {protocol.title}", f"  file   {protocol.path}", f"  sha256 {protocol.sha256}"]
    for key, value in protocol.source.items():
        lines.append(f"  source.{key}: {' '.join(str(value).split())}")
    lines += ["", "Structures (protocol name <- accepted ROI names):"]
    for s in protocol.structures.values():
        derived = f"; else derived as {s.derived}" if s.derived else ""
        lines.append(f"  {s.name} [{s.role}, TG-263 {s.tg263}] <- {', '.join(s.aliases) or '(no ROI name)'}{derived}")
    for arm in protocol.arms.values():
        lines += ["", f"Arm {arm.id}: {arm.title}"]
        for rx in arm.prescriptions:
            tolerance = f"± {rx.per_protocol_pct:g} % per protocol"
            if rx.variation_acceptable_pct is not None:
                tolerance += f", ± {rx.variation_acceptable_pct:g} % variation"
            lines.append(f"  Rx {rx.target}: {rx.total_dose_gy:g} Gy / {rx.fractions} fx / {rx.dose_per_fraction_gy:g} Gy per fx ({tolerance})")
        for c in arm.constraints:
            variation = f"; variation {c.variation_acceptable}" if c.variation_acceptable else ""
            optional = "" if c.required else " (optional)"
            lines.append(f"  {c.id}: {c.structure} {c.metric.text} {c.per_protocol}{variation}{optional}")
            lines.append(f"      source: {' '.join(c.source.split())}")
    return "\n".join(lines)
