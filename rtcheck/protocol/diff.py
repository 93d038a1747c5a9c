"""What differs between two protocols or two versions of one (``rtcheck protocols diff A B``).

Compared on the validated models, so constraint sets are resolved and values
are compared as rtcheck grades them (``< 25 %`` and ``<25 %`` are the same):
title, version and source; structures; each arm's title, prescriptions (by
target) and constraints (by id), field by field, sources included.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from rtcheck.protocol.model import Protocol


@dataclass(frozen=True)
class Difference:
    """One difference: where (e.g. ``arms.cr-pr.constraints.lungs-v20.per_protocol``), ``added``,
    ``removed`` or ``changed``, and the value in A and in B (None where absent)."""

    where: str
    change: str
    before: str | None
    after: str | None

    def __str__(self) -> str:
        if self.change == "added":
            return f"+ {self.where}: {self.after}"
        if self.change == "removed":
            return f"- {self.where}: {self.before}"
        return f"~ {self.where}: {self.before} -> {self.after}"


def _text(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(_text(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_text(v)}" for k, v in value.items()) + "}"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)  # Threshold, Metric, Derivation, windows: their own text as in protocol files


def _fields(where: str, a: Any, b: Any, skip: tuple[str, ...] = ()) -> list[Difference]:
    out = []
    for f in dataclasses.fields(a):
        if f.name in skip:
            continue
        before, after = _text(getattr(a, f.name)), _text(getattr(b, f.name))
        if before != after:
            out.append(Difference(f"{where}.{f.name}", "changed", before, after))
    return out


def _keyed(where: str, a: dict[str, Any], b: dict[str, Any], describe: Any, skip: tuple[str, ...] = ()) -> list[Difference]:
    out = []
    for key in a:
        if key not in b:
            out.append(Difference(f"{where}.{key}", "removed", describe(a[key]), None))
        else:
            out.extend(_fields(f"{where}.{key}", a[key], b[key], skip))
    out.extend(Difference(f"{where}.{key}", "added", None, describe(b[key])) for key in b if key not in a)
    return out


def diff_protocols(a: Protocol, b: Protocol) -> list[Difference]:
    """Every difference from protocol ``a`` to protocol ``b``, in the order of their files."""
    out: list[Difference] = []
    for name in ("id", "title", "version"):
        if getattr(a, name) != getattr(b, name):
            out.append(Difference(name, "changed", getattr(a, name), getattr(b, name)))
    for key in sorted(set(a.source) | set(b.source)):
        before, after = a.source.get(key), b.source.get(key)
        if before != after:
            change = "added" if before is None else "removed" if after is None else "changed"
            out.append(Difference(f"source.{key}", change, None if before is None else _text(before), None if after is None else _text(after)))
    out.extend(_keyed("structures", a.structures, b.structures, lambda s: _text(list(s.aliases))))
    for arm_id in a.arms:
        if arm_id not in b.arms:
            out.append(Difference(f"arms.{arm_id}", "removed", a.arms[arm_id].title, None))
            continue
        arm_a, arm_b = a.arms[arm_id], b.arms[arm_id]
        where = f"arms.{arm_id}"
        out.extend(_fields(where, arm_a, arm_b, skip=("id", "prescriptions", "constraints")))
        out.extend(_keyed(
            f"{where}.prescriptions",
            {rx.target: rx for rx in arm_a.prescriptions},
            {rx.target: rx for rx in arm_b.prescriptions},
            lambda rx: f"{_text(rx.total_dose_gy)} Gy in {_text(rx.fractions)} fx",
        ))
        out.extend(_keyed(
            f"{where}.constraints",
            {c.id: c for c in arm_a.constraints},
            {c.id: c for c in arm_b.constraints},
            lambda c: f"{c.structure} {c.metric.text} {c.per_protocol}",
            skip=("id",),
        ))
    out.extend(Difference(f"arms.{arm_id}", "added", None, b.arms[arm_id].title) for arm_id in b.arms if arm_id not in a.arms)
    return out
