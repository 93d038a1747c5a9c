"""rtcheck's default plausibility windows for organ volumes (the ``organ_volume`` plan rule).

These are rtcheck defaults, not anatomical references: wide windows meant to catch a
wrong, partial, mislabelled or mis-scaled contour of an adult organ, outside of which a
volume is reported as a variation.  A protocol may state its own range per structure.
The cord's volume depends on how much of it is contoured, so it is judged by its mean
cross-section (volume / contoured length).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DEFAULT_ORGAN_VOLUMES", "OrganRange"]


@dataclass(frozen=True)
class OrganRange:
    """A plausible range of an organ's size: in ``unit`` "cc" (volume) or "area_mm2" (mean cross-section,
    volume / contoured length); ``reason`` says where the default comes from ("" when a protocol states it)."""

    low: float
    high: float
    unit: str
    reason: str

    def __str__(self) -> str:
        unit = "cc" if self.unit == "cc" else "mm² mean cross-section"
        return f"{self.low:g}-{self.high:g} {unit}"


_REASON = (
    "wide adult plausibility window chosen by rtcheck to catch a wrong or partial contour "
    "(not an anatomical reference; state a range in the protocol to replace it)"
)

# By TG-263 name.
DEFAULT_ORGAN_VOLUMES: dict[str, OrganRange] = {
    "Lungs": OrganRange(1500.0, 8000.0, "cc", _REASON),
    "Lung_L": OrganRange(600.0, 4000.0, "cc", _REASON),
    "Lung_R": OrganRange(700.0, 4500.0, "cc", _REASON),
    "Heart": OrganRange(250.0, 1500.0, "cc", _REASON),
    "Liver": OrganRange(700.0, 3500.0, "cc", _REASON),
    "Kidney_L": OrganRange(60.0, 350.0, "cc", _REASON),
    "Kidney_R": OrganRange(60.0, 350.0, "cc", _REASON),
    # A cord 6-16 mm across (or its canal, when that is what is contoured) has 30-300 mm² of section.
    "SpinalCord": OrganRange(30.0, 300.0, "area_mm2", _REASON),
}
