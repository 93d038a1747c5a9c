"""How each status looks, in one table read by every renderer (terminal, JUnit, HTML, PDF, plots).

Every status has a word and a symbol, so that reports read without colour; the
colours are the same in the HTML tables, the verdict box and the DVH plots.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from types import MappingProxyType

from rtcheck.protocol.model import ConstraintKind
from rtcheck.results import CheckOutcome, CheckResult, Status

__all__ = ["STATUS_STYLES", "STATUS_WORDS", "JunitElement", "StatusStyle", "not_counted_note", "tally"]


class JunitElement(str, Enum):
    """The JUnit element a check with this status carries; a check without one passes."""

    FAILURE = "failure"
    ERROR = "error"


@dataclass(frozen=True)
class StatusStyle:
    word: str  # terminal, HTML, PDF: upper case, reads without colour
    phrase: str  # running text: JUnit messages, the HTML footer, plot legends
    symbol: str  # HTML/PDF, before the word
    colour: str  # HTML/PDF and plots (CSS hex)
    terminal_colour: str  # ANSI colour name (click.style)
    terminal_bold: bool
    css_class: str  # HTML row and verdict class
    marker: str | None  # matplotlib marker of a check drawn on a DVH plot; None: never drawn
    junit: JunitElement | None


STATUS_STYLES: Mapping[Status, StatusStyle] = MappingProxyType({
    Status.PER_PROTOCOL: StatusStyle(
        "PER PROTOCOL", "per protocol", "\u2713", "#1b7a34", "green", False, "per-protocol", "o", None),  # check mark
    Status.VARIATION_ACCEPTABLE: StatusStyle(
        "VARIATION", "variation acceptable", "\u2248", "#b35c00", "yellow", True, "variation-acceptable", "s", None),  # almost equal
    Status.DEVIATION_UNACCEPTABLE: StatusStyle(
        "DEVIATION", "deviation unacceptable", "\u2717", "#c0171d", "red", True, "deviation-unacceptable", "X",  # ballot x
        JunitElement.FAILURE),
    Status.NOT_EVALUATED: StatusStyle(
        "NOT EVALUATED", "not evaluated", "?", "#6b3fa0", "magenta", True, "not-evaluated", None, JunitElement.ERROR),
})

STATUS_WORDS: Mapping[Status, str] = MappingProxyType({status: style.word for status, style in STATUS_STYLES.items()})


def not_counted_note(check: CheckOutcome) -> str:
    """Why a check does not make the verdict, as shown next to its status ("" when it counts)."""
    if check.counts:
        return ""
    if check.constraint_kind is ConstraintKind.INFORMATIONAL:
        return "informational"
    return "not contoured"


def tally(result: CheckResult) -> str:
    """The counts behind the verdict, the same words in every report."""
    counted = result.counted
    counts = ", ".join(f"{sum(c.status is s for c in counted)} {STATUS_WORDS[s].lower()}" for s in Status)
    rest = len(result.checks) - len(counted)
    return f"checks that make the verdict: {counts}" + (f"; {rest} not counted (informational or not contoured)" if rest else "")
