"""Strict parser of TG-263 DVH metric names.

Grammar (no spaces, case-sensitive, output unit in brackets is mandatory)::

    metric   := dose_at | volume_at | stat
    dose_at  := ("D" | "DC") number ("%" | "cc") "[" dose_unit "]"
    volume_at:= ("V" | "CV") number ("Gy" | "cGy" | "%") "[" ("%" | "cc") "]"
    stat     := ("Mean" | "Max" | "Min") "[" dose_unit "]"
    dose_unit:= "Gy" | "cGy" | "%"
    number   := digits ["." digits] | "." digits

``%`` as a dose means percent of the prescription; ``%`` as a volume means
percent of the structure's volume.  ``DC<v>`` is the dose to the coldest
volume ``v`` (the minimum dose of the hottest ``V - v``); ``CV<d>`` is the
volume receiving less than ``d``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from rtcheck.errors import MetricSyntaxError

DOSE_UNITS = ("Gy", "cGy", "%")
VOLUME_UNITS = ("%", "cc")


class MetricKind(str, enum.Enum):
    DOSE_AT_VOLUME = "D"
    DOSE_COMPLEMENT = "DC"
    VOLUME_AT_DOSE = "V"
    VOLUME_COMPLEMENT = "CV"
    MEAN = "Mean"
    MAX = "Max"
    MIN = "Min"


@dataclass(frozen=True)
class Metric:
    """One parsed DVH metric.

    ``argument`` is the volume (for D/DC, in ``argument_unit`` % or cc) or the
    dose (for V/CV, in Gy, cGy or % of prescription); ``None`` for Mean/Max/Min.
    ``output_unit`` is the unit of the value (Gy, cGy, % or cc).
    """

    text: str
    kind: MetricKind
    argument: float | None
    argument_unit: str | None
    output_unit: str

    @property
    def needs_prescription(self) -> bool:
        """True when the metric refers to a prescription dose (a % dose argument or output)."""
        if self.kind in (MetricKind.VOLUME_AT_DOSE, MetricKind.VOLUME_COMPLEMENT):
            return self.argument_unit == "%"
        return self.output_unit == "%"

    @property
    def is_dose(self) -> bool:
        """True when the value is a dose (Gy, cGy or % of prescription)."""
        return self.kind not in (MetricKind.VOLUME_AT_DOSE, MetricKind.VOLUME_COMPLEMENT)

    def __str__(self) -> str:
        return self.text


class _Cursor:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def fail(self, message: str, position: int | None = None) -> MetricSyntaxError:
        return MetricSyntaxError(self.text, self.pos if position is None else position, message)

    def take(self, options: tuple[str, ...]) -> str | None:
        # Longest first so "cGy" is not read as "c" + "Gy" and "CV" not as "C".
        for option in sorted(options, key=len, reverse=True):
            if self.text.startswith(option, self.pos):
                self.pos += len(option)
                return option
        return None

    def number(self) -> float:
        start = self.pos
        digits_before = digits_after = 0
        while self.pos < len(self.text) and self.text[self.pos].isdigit():
            self.pos += 1
            digits_before += 1
        if self.pos < len(self.text) and self.text[self.pos] == ".":
            self.pos += 1
            while self.pos < len(self.text) and self.text[self.pos].isdigit():
                self.pos += 1
                digits_after += 1
            if digits_after == 0:
                raise self.fail("expected a digit after the decimal point")
        if digits_before == 0 and digits_after == 0:
            raise self.fail("expected a number", start)
        # isdigit() admits non-ASCII digits; float() accepts them too, which is fine.
        return float(self.text[start:self.pos])

    def bracketed_unit(self, allowed: tuple[str, ...]) -> str:
        if self.pos >= len(self.text):
            raise self.fail(f"missing output unit, expected '[' followed by one of {', '.join(allowed)}")
        if self.text[self.pos] != "[":
            raise self.fail("expected '[' opening the output unit")
        self.pos += 1
        unit_pos = self.pos
        unit = self.take(allowed)
        if unit is None:
            raise self.fail(f"expected output unit {' or '.join(allowed)}", unit_pos)
        if self.pos >= len(self.text) or self.text[self.pos] != "]":
            raise self.fail("expected ']' closing the output unit")
        self.pos += 1
        if self.pos != len(self.text):
            raise self.fail("unexpected text after the output unit")
        return unit


def parse_metric(text: str) -> Metric:
    """Parse a TG-263 metric such as ``D95%[Gy]`` or ``V20Gy[%]``.

    Raises :class:`~rtcheck.errors.MetricSyntaxError` pointing at the first
    offending character.
    """
    if not isinstance(text, str):
        raise MetricSyntaxError(str(text), 0, "a metric must be a string")
    cursor = _Cursor(text)
    if not text:
        raise cursor.fail("empty metric")
    head = cursor.take(("Mean", "Max", "Min", "DC", "CV", "D", "V"))
    if head is None:
        raise cursor.fail("expected D, DC, V, CV, Mean, Max or Min")
    kind = MetricKind(head)

    if kind in (MetricKind.MEAN, MetricKind.MAX, MetricKind.MIN):
        unit = cursor.bracketed_unit(DOSE_UNITS)
        return Metric(text, kind, None, None, unit)

    arg_pos = cursor.pos
    argument = cursor.number()
    unit_pos = cursor.pos
    if kind in (MetricKind.DOSE_AT_VOLUME, MetricKind.DOSE_COMPLEMENT):
        arg_unit = cursor.take(VOLUME_UNITS)
        if arg_unit is None:
            raise cursor.fail("expected volume unit % or cc", unit_pos)
        output = cursor.bracketed_unit(DOSE_UNITS)
    else:
        arg_unit = cursor.take(("Gy", "cGy", "%"))
        if arg_unit is None:
            raise cursor.fail("expected dose unit Gy, cGy or %", unit_pos)
        output = cursor.bracketed_unit(VOLUME_UNITS)

    if arg_unit == "%" and kind in (MetricKind.DOSE_AT_VOLUME, MetricKind.DOSE_COMPLEMENT) and argument > 100:
        raise cursor.fail("a volume percentage must be between 0 and 100", arg_pos)
    return Metric(text, kind, argument, arg_unit, output)
