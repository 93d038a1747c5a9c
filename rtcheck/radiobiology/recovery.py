"""Recovery credit of a prior course's dose in re-irradiation.

A protocol may state that part of the prior course's biological dose is
forgiven after an interval, e.g. 25 % of the prior EQD2 after 6 months and
50 % after 12 months (a rule quoted for spinal cord re-irradiation).  rtcheck
applies a credit only when the protocol states one (with its source) and the
interval between the courses is given (``--prior-interval-months``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RecoveryStep:
    """From ``after_months`` months between the courses on, ``credit_pct`` % of the prior dose is forgiven."""

    after_months: float
    credit_pct: float


@dataclass(frozen=True)
class RecoveryCredit:
    """A protocol's recovery schedule (steps in ascending ``after_months``) and its source."""

    steps: tuple[RecoveryStep, ...]
    source: str

    def credit_pct(self, interval_months: float) -> float:
        """The credit [% of the prior EQD2/BED] after ``interval_months``: the last step reached, else 0."""
        credit = 0.0
        for step in self.steps:
            if interval_months >= step.after_months:
                credit = step.credit_pct
        return credit

    def describe(self) -> str:
        return ", ".join(f"{s.credit_pct:g} % after {s.after_months:g} months" for s in self.steps)
