"""What a check may be told besides the protocol and arm."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from rtcheck.codes import CodedWord
from rtcheck.dvh import EngineOptions

if TYPE_CHECKING:
    from rtcheck.radiobiology.reirradiation import PriorCourse

__all__ = ["CheckOptions", "CheckSelection"]


class CheckSelection(CodedWord):
    """Which checks a run makes (``rtcheck check --checks``): all of them, only the plan's integrity
    (rtcheck.grading.integrity), or only the prescription and DVH checks."""

    ALL = "all"
    INTEGRITY = "integrity"
    DVH = "dvh"


@dataclass(frozen=True)
class CheckOptions:
    """``structure_map``: protocol structure -> exact ROI name, overriding alias matching."""

    structure_map: tuple[tuple[str, str], ...] = ()
    engine: EngineOptions = EngineOptions()
    # Re-irradiation: the prior course (rtcheck.radiobiology.reirradiation.PriorCourse) for cumulative constraints.
    prior: "PriorCourse | None" = None
    checks: CheckSelection = CheckSelection.ALL
