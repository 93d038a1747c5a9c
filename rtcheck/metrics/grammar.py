"""Strict parser of TG-263 DVH metric names.

Grammar (no spaces, case-sensitive, output unit in brackets is mandatory)::

    metric   := dose_at | volume_at | stat
    dose_at  := ("D" | "DC") number ("%" | "cc") "[" dose_unit "]"
    volume_at:= ("V" | "CV") number ("Gy" | "cGy" | "%") "[" ("%" | "cc") "]"
    stat     := ("Mean" | "Max" | "Min") "[" dose_unit "]"
    dose_unit:= "Gy" | "cGy" | "%" | bio_unit
    bio_unit := ("EQD2" | "BED") "Gy" ["(a/b=" number ")"]
    number   := digits ["." digits] | "." digits

``%`` as a dose means percent of the prescription; ``%`` as a volume means
percent of the structure's volume.  ``DC<v>`` is the dose to the coldest
volume ``v`` (the minimum dose of the hottest ``V - v``); ``CV<d>`` is the
volume receiving less than ``d``.

A ``bio_unit`` makes the metric radiobiological: the dose (the output of
D/DC/Mean/Max/Min, the argument of V/CV) is an equivalent dose in 2 Gy
fractions (``EQD2Gy``) or a biologically effective dose (``BEDGy``), in Gy,
computed voxel by voxel with the linear-quadratic model and the alpha/beta
ratio in Gy given after ``a/b=`` (when omitted, the structure's default; see
:mod:`rtcheck.radiobiology.alpha_beta`).  Examples: ``D0.03cc[EQD2Gy(a/b=2)]``,
``Max[BEDGy(a/b=3)]``, ``V50EQD2Gy(a/b=3)[%]``, ``Mean[EQD2Gy]``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from rtcheck.errors import MetricSyntaxError

DOSE_UNITS = ("Gy", "cGy", "%")
VOLUME_UNITS = ("%", "cc")
BIOLOGICAL_MODELS = ("EQD2", "BED")


@dataclass(frozen=True)
class Biology:
    """A radiobiological qualifier: ``model`` EQD2 or BED, ``alpha_beta_gy`` (None: the structure's default)."""

    model: str
    alpha_beta_gy: float | None = None

    def unit_text(self) -> str:
        """The qualifier as written in a metric, e.g. ``EQD2Gy(a/b=2)``."""
        ab = "" if self.alpha_beta_gy is None else f"(a/b={self.alpha_beta_gy:g})"
        return f"{self.model}Gy{ab}"


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
    # EQD2/BED qualifier of the metric's dose (output or argument, always in Gy); None: physical dose.
    biology: Biology | None = None

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

    def physical(self) -> "Metric":
        """The same metric on the physical dose (the qualifier replaced by plain Gy)."""
        if self.biology is None:
            return self
        return Metric(_with_dose_unit(self, "Gy"), self.kind, self.argument, self.argument_unit, self.output_unit)

    def with_biology(self, biology: Biology) -> "Metric":
        """This physical metric made radiobiological (its dose must be in Gy)."""
        if self.biology is not None:
            raise MetricSyntaxError(self.text, 0, "the metric already has a radiobiological qualifier")
        dose_unit = self.argument_unit if self.kind in (MetricKind.VOLUME_AT_DOSE, MetricKind.VOLUME_COMPLEMENT) else self.output_unit
        if dose_unit != "Gy":
            raise MetricSyntaxError(self.text, 0, "an EQD2 or BED metric needs its dose in Gy (not cGy or % of prescription)")
        return Metric(_with_dose_unit(self, biology.unit_text()), self.kind, self.argument, self.argument_unit, self.output_unit, biology)


def _with_dose_unit(metric: Metric, unit: str) -> str:
    """``metric``'s text with its dose unit (Gy or a qualifier) replaced by ``unit``."""
    head, bracket = metric.text[: metric.text.rindex("[")], metric.text[metric.text.rindex("[") :]
    if metric.kind in (MetricKind.VOLUME_AT_DOSE, MetricKind.VOLUME_COMPLEMENT):
        number_end = len(metric.kind.value)
        while number_end < len(head) and (head[number_end].isdigit() or head[number_end] == "."):
            number_end += 1
        return head[:number_end] + unit + bracket
    return head + "[" + unit + "]"


class _Cursor:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.found_biology: Biology | None = None

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

    def biology(self) -> Biology | None:
        """A qualifier ``EQD2Gy`` / ``BEDGy`` with an optional ``(a/b=<number>)``, or None."""
        model = self.take(BIOLOGICAL_MODELS)
        if model is None:
            return None
        if not self.text.startswith("Gy", self.pos):
            raise self.fail(f"expected Gy after {model} (e.g. {model}Gy(a/b=3))")
        self.pos += 2
        if not self.text.startswith("(", self.pos):
            return Biology(model)
        self.pos += 1
        if not self.text.startswith("a/b=", self.pos):
            raise self.fail("expected 'a/b=' and the alpha/beta ratio in Gy, e.g. (a/b=3)")
        self.pos += 4
        ab_pos = self.pos
        alpha_beta = self.number()
        if alpha_beta <= 0:
            raise self.fail("the alpha/beta ratio must be positive", ab_pos)
        if not self.text.startswith(")", self.pos):
            raise self.fail("expected ')' closing the alpha/beta ratio")
        self.pos += 1
        return Biology(model, alpha_beta)

    def bracketed_unit(self, allowed: tuple[str, ...]) -> str:
        if self.pos >= len(self.text):
            raise self.fail(f"missing output unit, expected '[' followed by one of {', '.join(allowed)}")
        if self.text[self.pos] != "[":
            raise self.fail("expected '[' opening the output unit")
        self.pos += 1
        unit_pos = self.pos
        if allowed == DOSE_UNITS:
            self.found_biology = self.biology()
            if self.found_biology is not None:
                return self._close_unit("Gy")
        unit = self.take(allowed)
        if unit is None:
            extra = " or EQD2Gy/BEDGy" if allowed == DOSE_UNITS else ""
            raise self.fail(f"expected output unit {' or '.join(allowed)}{extra}", unit_pos)
        return self._close_unit(unit)

    def _close_unit(self, unit: str) -> str:
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
        return Metric(text, kind, None, None, unit, cursor.found_biology)

    arg_pos = cursor.pos
    argument = cursor.number()
    unit_pos = cursor.pos
    if kind in (MetricKind.DOSE_AT_VOLUME, MetricKind.DOSE_COMPLEMENT):
        arg_unit = cursor.take(VOLUME_UNITS)
        if arg_unit is None:
            raise cursor.fail("expected volume unit % or cc", unit_pos)
        output = cursor.bracketed_unit(DOSE_UNITS)
    else:
        cursor.found_biology = cursor.biology()
        arg_unit = "Gy" if cursor.found_biology is not None else cursor.take(("Gy", "cGy", "%"))
        if arg_unit is None:
            raise cursor.fail("expected dose unit Gy, cGy, % or EQD2Gy/BEDGy", unit_pos)
        output = cursor.bracketed_unit(VOLUME_UNITS)

    if arg_unit == "%" and kind in (MetricKind.DOSE_AT_VOLUME, MetricKind.DOSE_COMPLEMENT) and argument > 100:
        raise cursor.fail("a volume percentage must be between 0 and 100", arg_pos)
    return Metric(text, kind, argument, arg_unit, output, cursor.found_biology)
