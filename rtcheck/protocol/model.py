"""The protocol domain model (what a protocol file means once validated)."""

from __future__ import annotations

import operator
from dataclasses import dataclass, field
from pathlib import Path

from rtcheck.errors import UnknownArmError
from rtcheck.metrics.grammar import Metric

_OPERATORS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


@dataclass(frozen=True)
class Threshold:
    """A one-sided limit such as ``< 25 %``; ``unit`` is the metric's output unit."""

    operator: str
    value: float
    unit: str

    def satisfied_by(self, measured: float) -> bool:
        return _OPERATORS[self.operator](measured, self.value)

    @property
    def is_upper_limit(self) -> bool:
        return self.operator in ("<", "<=")

    def __str__(self) -> str:
        return f"{self.operator} {self.value:g} {self.unit}"


@dataclass(frozen=True)
class Derivation:
    """How a structure is made from others when no ROI provides it: ``union``,
    ``intersection`` or ``subtract`` (the first operand minus the others)."""

    operation: str
    operands: tuple[str, ...]

    def __str__(self) -> str:
        symbol = {"union": " | ", "intersection": " & ", "subtract": " - "}[self.operation]
        return symbol.join(self.operands)


@dataclass(frozen=True)
class StructureSpec:
    """A structure the protocol speaks of: its key, TG-263 name, role, accepted ROI names,
    and optionally how to derive it from other structures when no ROI matches."""

    name: str
    tg263: str
    role: str
    aliases: tuple[str, ...]
    derived: Derivation | None = None


@dataclass(frozen=True)
class Constraint:
    id: str
    structure: str
    metric: Metric
    per_protocol: Threshold
    variation_acceptable: Threshold | None
    required: bool
    source: str
    relative_to: str | None = None
    max_outside_dose_grid_pct: float = 0.0


@dataclass(frozen=True)
class Prescription:
    """Intended prescription of one target: total dose (Gy), fractions, dose per fraction (Gy), tolerances (%)."""

    target: str
    total_dose_gy: float
    fractions: int
    dose_per_fraction_gy: float
    per_protocol_pct: float
    variation_acceptable_pct: float | None
    tolerance_source: str
    source: str


@dataclass(frozen=True)
class Arm:
    id: str
    title: str
    prescriptions: tuple[Prescription, ...]
    constraints: tuple[Constraint, ...]

    def prescription_for(self, target: str) -> Prescription | None:
        for rx in self.prescriptions:
            if rx.target == target:
                return rx
        return None

    def reference_prescription(self, constraint: Constraint) -> Prescription | None:
        """The prescription a % dose of ``constraint`` refers to.

        An explicit ``relative_to``; else the structure's own prescription when it
        is a target of this arm; else the arm's highest prescription.
        """
        if constraint.relative_to:
            return self.prescription_for(constraint.relative_to)
        own = self.prescription_for(constraint.structure)
        if own is not None:
            return own
        if not self.prescriptions:
            return None
        return max(self.prescriptions, key=lambda rx: rx.total_dose_gy)


@dataclass
class Protocol:
    id: str
    title: str
    version: str
    source: dict
    structures: dict[str, StructureSpec]
    arms: dict[str, Arm]
    path: Path | None = None
    sha256: str = ""
    notes: list[str] = field(default_factory=list)

    def arm(self, arm_id: str) -> Arm:
        try:
            return self.arms[arm_id]
        except KeyError:
            raise UnknownArmError(
                f"protocol {self.id} has no arm {arm_id!r}; valid arms: {', '.join(self.arms)}"
            ) from None
