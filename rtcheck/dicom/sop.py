"""Coded values of RT objects: the SOP classes rtcheck recognises (objects are identified by SOP Class
UID, never by file name) and RT Dose summation types (their rules: :mod:`rtcheck.dicom.summation`)."""

from __future__ import annotations

import enum

from rtcheck.codes import CodedWord


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


class DoseScope(CodedWord):
    """What part of the treatment a dose covers."""

    PLANS = "plans"  # a whole plan, or several
    FRACTION_GROUP = "fraction group"
    BEAMS = "beams"  # some beams or brachy application setups


class DoseSummation(CodedWord):
    """DoseSummationType (PS3.3 C.8.8.3); definitions quoted in rtcheck.dicom.summation."""

    PLAN = "PLAN"
    MULTI_PLAN = "MULTI_PLAN"
    FRACTION = "FRACTION"
    BEAM = "BEAM"
    BRACHY = "BRACHY"
    FRACTION_SESSION = "FRACTION_SESSION"
    BEAM_SESSION = "BEAM_SESSION"
    BRACHY_SESSION = "BRACHY_SESSION"
    CONTROL_POINT = "CONTROL_POINT"
    RECORD = "RECORD"

    @classmethod
    def of(cls, written: str) -> "DoseSummation | None":
        """The value as written (upper case; "" taken as PLAN, rtcheck's default), None when not a PS3.3 value."""
        try:
            return cls(written or "PLAN")
        except ValueError:
            return None

    @property
    def scope(self) -> DoseScope:
        if self in (DoseSummation.PLAN, DoseSummation.MULTI_PLAN):
            return DoseScope.PLANS
        if self in (DoseSummation.FRACTION, DoseSummation.FRACTION_SESSION):
            return DoseScope.FRACTION_GROUP
        return DoseScope.BEAMS

    @property
    def per_session(self) -> bool:
        """The dose of one session ("fraction"), to be multiplied by the fractions planned."""
        return self.value.endswith("_SESSION")


# Treatment Delivery Type (300A,00CE) of beams that deliver no treatment dose: setup and imaging exposures.
DOSE_FREE_DELIVERY_TYPES = frozenset({"SETUP", "OPEN_PORTFILM"})
