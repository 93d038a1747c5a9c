"""SOP classes rtcheck recognises (objects are identified by SOP Class UID, never by file name)."""

from __future__ import annotations

import enum


class RTObjectKind(str, enum.Enum):
    PLAN = "RT Plan"
    ION_PLAN = "RT Ion Plan"
    DOSE = "RT Dose"
    STRUCTURE_SET = "RT Structure Set"


SOP_CLASS_KINDS: dict[str, RTObjectKind] = {
    "1.2.840.10008.5.1.4.1.1.481.5": RTObjectKind.PLAN,
    "1.2.840.10008.5.1.4.1.1.481.8": RTObjectKind.ION_PLAN,
    "1.2.840.10008.5.1.4.1.1.481.2": RTObjectKind.DOSE,
    "1.2.840.10008.5.1.4.1.1.481.3": RTObjectKind.STRUCTURE_SET,
}

PLAN_KINDS = (RTObjectKind.PLAN, RTObjectKind.ION_PLAN)
