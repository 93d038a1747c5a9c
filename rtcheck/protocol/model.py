"""The protocol domain model (what a protocol file means once validated)."""

from __future__ import annotations

import operator
from dataclasses import dataclass, field
from pathlib import Path

from rtcheck.codes import CodedWord
from rtcheck.errors import NoRadiotherapyError, SelectionError, UnknownArmError
from rtcheck.metrics.grammar import Metric
from rtcheck.protocol.plan_rules import PlanRule
from rtcheck.radiobiology.recovery import RecoveryCredit



class Role(CodedWord):
    """What a structure is to the protocol (``role:``); ``oar`` when the file says nothing."""

    TARGET = "target"
    OAR = "oar"
    OTHER = "other"


class Operation(CodedWord):
    """How a derived structure is made from its operands (``derived: {operation: [...]}``)."""

    UNION = "union"
    INTERSECTION = "intersection"
    SUBTRACT = "subtract"  # the first operand minus all the others


class DoseSetBy(CodedWord):
    """Who states a prescription's dose (``dose_set_by:``): the trial, or the site (within an EQD2 window)."""

    TRIAL = "trial"
    SITE = "site"


class ConstraintKind(CodedWord):
    """Whether a constraint makes the plan's verdict (``kind:``).

    ``required``: always counts; a structure that cannot be found or evaluated makes it
    (and the verdict) not evaluated.  ``graded-if-contoured``: counts when its structure is
    contoured; a structure that is not contoured gives a note, not a verdict.  ``informational``:
    reported, never counts.  Organs (role ``oar``) default to ``graded-if-contoured``, every
    other structure to ``required``.
    """

    REQUIRED = "required"
    IF_CONTOURED = "graded-if-contoured"
    INFORMATIONAL = "informational"


class Comparison(CodedWord):
    """The comparison of a one-sided threshold such as ``<= 20 Gy``."""

    LESS = "<"
    LESS_OR_EQUAL = "<="
    GREATER = ">"
    GREATER_OR_EQUAL = ">="


_OPERATORS = {
    Comparison.LESS: operator.lt,
    Comparison.LESS_OR_EQUAL: operator.le,
    Comparison.GREATER: operator.gt,
    Comparison.GREATER_OR_EQUAL: operator.ge,
}


@dataclass(frozen=True)
class Threshold:
    """A one-sided limit such as ``< 25 %``; ``unit`` is the metric's output unit."""

    operator: Comparison
    value: float
    unit: str

    def satisfied_by(self, measured: float) -> bool:
        return _OPERATORS[self.operator](measured, self.value)

    @property
    def is_upper_limit(self) -> bool:
        return self.operator in (Comparison.LESS, Comparison.LESS_OR_EQUAL)

    def __str__(self) -> str:
        return f"{self.operator} {self.value:g} {self.unit}"


@dataclass(frozen=True)
class Derivation:
    """How a structure is made from others when no ROI provides it: ``union``,
    ``intersection`` or ``subtract`` (the first operand minus the others)."""

    operation: Operation
    operands: tuple[str, ...]

    def __str__(self) -> str:
        symbol = {Operation.UNION: " | ", Operation.INTERSECTION: " & ", Operation.SUBTRACT: " - "}[self.operation]
        return symbol.join(self.operands)


@dataclass(frozen=True)
class StructureSpec:
    """A structure the protocol speaks of: its key, TG-263 name, role, accepted ROI names,
    optionally its FMA codes (matched against a structure set's RT ROI Identification Code
    Sequence before any name) and how to derive it from other structures when no ROI matches."""

    name: str
    tg263: str
    role: Role
    aliases: tuple[str, ...]
    derived: Derivation | None = None
    fma_codes: tuple[int, ...] = ()


@dataclass(frozen=True)
class WrittenFor:
    """The fractionation a physical organ limit was written for (``written_for:``): its dose per
    fraction [Gy] and how far [Gy] the plan's may differ before the limit is graded in EQD2
    (rtcheck.grading.fractionation); ``tolerance_is_default``: rtcheck's default tolerance."""

    dose_per_fraction_gy: float
    tolerance_gy: float
    source: str
    tolerance_is_default: bool = False


@dataclass(frozen=True)
class Constraint:
    id: str
    structure: str
    metric: Metric
    per_protocol: Threshold
    variation_acceptable: Threshold | None
    kind: ConstraintKind
    source: str
    relative_to: str | None = None
    max_outside_dose_grid_pct: float = 0.0
    # Radiobiology (rtcheck.radiobiology): the metric's EQD2/BED qualifier is in ``metric.biology``;
    # ``cumulative`` adds the prior course (re-irradiation); ``recovery_credit`` forgives part of it.
    cumulative: bool = False
    recovery_credit: "RecoveryCredit | None" = None
    alpha_beta_note: str = ""
    # A physical organ limit's fractionation: a plan fractionated otherwise is graded in EQD2.
    written_for: "WrittenFor | None" = None
    # True: graded on the prior course's dose alone (re-irradiation conditions), needs --prior-dose.
    prior_course: bool = False


@dataclass(frozen=True)
class Eqd2Window:
    """Accepted range of a target's EQD2 [Gy] (α/β [Gy]) when the site, not the trial, sets the dose.

    ``is_default``: an rtcheck default (not a trial requirement, graded at best
    variation acceptable) rather than a window the site states (graded per protocol).
    """

    min_gy: float
    max_gy: float
    alpha_beta_gy: float
    source: str
    is_default: bool

    def __str__(self) -> str:
        kind = "rtcheck default window" if self.is_default else "site window"
        return f"EQD2 {self.min_gy:g}-{self.max_gy:g} Gy (α/β {self.alpha_beta_gy:g} Gy, {kind})"


@dataclass(frozen=True)
class Prescription:
    """Intended prescription of one target: total dose (Gy), fractions, dose per fraction (Gy), tolerances (%).

    ``dose_set_by`` is ``trial`` or ``site``.  A site-set prescription may give no
    dose (total, fractions and dose per fraction None) and an EQD2 ``window`` instead.
    """

    target: str
    total_dose_gy: float | None
    fractions: int | None
    dose_per_fraction_gy: float | None
    per_protocol_pct: float
    variation_acceptable_pct: float | None
    tolerance_source: str
    source: str
    dose_set_by: DoseSetBy = DoseSetBy.TRIAL
    window: Eqd2Window | None = None


@dataclass(frozen=True)
class Phase:
    """One phase of an arm's course (``phases:``), e.g. an elective phase then a sequential boost: its
    prescriptions (each with a stated dose), delivered together in ``fractions`` fractions.  ``number``
    counts from 1 in the order the protocol file lists the phases (the order they are delivered)."""

    number: int
    name: str
    prescriptions: tuple[Prescription, ...]

    @property
    def label(self) -> str:
        return f"phase {self.number}" + (f" ({self.name})" if self.name else "")

    @property
    def fractions(self) -> int | None:
        """The phase's fractions (the protocol loader makes all its prescriptions agree)."""
        return self.prescriptions[0].fractions if self.prescriptions else None

    def describe(self) -> str:
        """E.g. "45 Gy in 25 fx to PTV; 45 Gy in 25 fx to PTV_boost"."""
        return "; ".join(f"{rx.total_dose_gy:g} Gy in {rx.fractions} fx to {rx.target}" for rx in self.prescriptions)


def course_prescriptions(phases: tuple[Phase, ...]) -> tuple[Prescription, ...]:
    """The course prescription of each target of ``phases``: its phases' total doses and fractions added (dose per
    fraction their ratio), the strictest of their tolerances; targets in the order they first appear."""
    by_target: dict[str, list[tuple[Phase, Prescription]]] = {}
    for phase in phases:
        for rx in phase.prescriptions:
            by_target.setdefault(rx.target, []).append((phase, rx))
    course = []
    for target, items in by_target.items():
        if len(items) == 1:
            course.append(items[0][1])
            continue
        total = sum(rx.total_dose_gy or 0.0 for _, rx in items)
        fractions = sum(rx.fractions or 0 for _, rx in items)
        variations = [rx.variation_acceptable_pct for _, rx in items]
        course.append(Prescription(
            target=target, total_dose_gy=total, fractions=fractions, dose_per_fraction_gy=total / fractions,
            per_protocol_pct=min(rx.per_protocol_pct for _, rx in items),
            variation_acceptable_pct=None if any(v is None for v in variations) else min(v for v in variations if v is not None),
            tolerance_source="; ".join(dict.fromkeys(rx.tolerance_source for _, rx in items if rx.tolerance_source)),
            source="; ".join(f"{phase.label}: {rx.source}" for phase, rx in items),
        ))
    return tuple(course)


@dataclass(frozen=True)
class ReirradiationConditions:
    """An arm's conditions for re-irradiating an organ (e.g. Nieder's for the spinal cord): at least
    ``min_interval_months`` months between the courses, and each course's ``metric`` (EQD2/BED) on
    ``structure`` within ``per_course``.  Graded as the checks named by ``*_ID`` below."""

    structure: str
    metric: Metric
    per_course: Threshold
    min_interval_months: float
    source: str

    INTERVAL_ID = "reirradiation-interval"
    CURRENT_COURSE_ID = "reirradiation-current-course"
    PRIOR_COURSE_ID = "reirradiation-prior-course"


@dataclass(frozen=True)
class Arm:
    """An arm of a protocol.  ``prescriptions`` is the course's: for an arm with ``phases`` (two or more, from
    a ``phases:`` list) each target's prescriptions added over the phases (:func:`course_prescriptions`)."""

    id: str
    title: str
    prescriptions: tuple[Prescription, ...]
    constraints: tuple[Constraint, ...]
    radiotherapy: bool = True  # False: the arm gives no radiotherapy (``radiotherapy: none``)
    # Plan rules checked from the DICOM itself (rtcheck.protocol.plan_rules, rtcheck.grading.integrity).
    plan_rules: tuple[PlanRule, ...] = ()
    phases: tuple[Phase, ...] = ()
    reirradiation: ReirradiationConditions | None = None

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
        # A site-set prescription without a dose ranks last: no level is known for it.
        return max(self.prescriptions, key=lambda rx: rx.total_dose_gy if rx.total_dose_gy is not None else -1.0)


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
    # A site overlay's chain of files, root protocol first: dicts with kind ("protocol" or
    # "overlay"), id, path, sha256.  Empty for a protocol read from one file.
    bases: list[dict] = field(default_factory=list)
    # Values a site overlay set, e.g. "arms.rt-cohort.constraints.lungs-v20.per_protocol" or
    # "structures.Lungs.aliases" -> the overlay file; anything absent comes from the base file.
    provenance: dict[str, str] = field(default_factory=dict)

    @property
    def radiotherapy(self) -> bool:
        """Whether any arm gives radiotherapy."""
        return any(arm.radiotherapy for arm in self.arms.values())

    def arm(self, arm_id: str) -> Arm:
        try:
            return self.arms[arm_id]
        except KeyError:
            raise UnknownArmError(
                f"protocol {self.id} has no arm {arm_id!r}; valid arms: {', '.join(self.arms)}"
            ) from None

    def ensure_checkable(self, arm_id: str) -> None:
        """Refuse, before any file is read, an unknown arm or one without radiotherapy ('auto': the protocol)."""
        if arm_id != "auto":
            self.radiotherapy_arm(arm_id)
        elif not self.radiotherapy:
            self.radiotherapy_arm(next(iter(self.arms)))

    def course_phases(self, arm_id: str) -> frozenset[int]:
        """The numbers of phases of arm ``arm_id``'s course (``auto``: of every arm with phases), for grouping
        phase plans into courses (``batch --sum``, ``listen --sum``); SelectionError when no such arm has phases."""
        arms = self.arms.values() if arm_id == "auto" else [self.arm(arm_id)]
        phases = frozenset(len(a.phases) for a in arms if a.phases)
        if not phases:
            which = f"no arm of {self.id} has" if arm_id == "auto" else f"arm {arm_id} of {self.id} has no"
            raise SelectionError(f"--sum: {which} phases; plans are grouped into courses only for an arm whose "
                                 "protocol declares phases")
        return phases

    def radiotherapy_arm(self, arm_id: str) -> Arm:
        """The arm a plan is checked against; NoRadiotherapyError when it gives no radiotherapy."""
        if not self.radiotherapy:
            raise NoRadiotherapyError(
                f"protocol {self.id} has no radiotherapy component ({self.title}): there is no plan to check against it"
            )
        arm = self.arm(arm_id)
        if not arm.radiotherapy:
            with_rt = ", ".join(a.id for a in self.arms.values() if a.radiotherapy)
            raise NoRadiotherapyError(
                f"protocol {self.id} arm {arm.id} has no radiotherapy component ({arm.title}): there is no plan to "
                f"check against it; arms with radiotherapy: {with_rt}"
            )
        return arm
