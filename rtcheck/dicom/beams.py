"""The beams of an RT (Ion) Plan as delivered: radiation, energy, machine, isocentre, technique, meterset.

Read as PS3.3 defines them (RT Beams Module C.8.8.14, RT Ion Beams Module C.8.8.25,
RT Fraction Scheme Module C.8.8.13).  Positions are patient coordinates (mm),
metersets as written (MU for a PrimaryDosimeterUnit of MU).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from dataclasses import dataclass, field

import numpy as np
from pydicom.dataset import Dataset

from rtcheck.codes import CodedWord
from rtcheck.dicom.sop import RTObjectKind

__all__ = ["Beam", "BeamSet", "Technique", "parse_beams"]

# Isocentres closer than this (mm) are one isocentre: rounding of exported positions, not a second one.
ISOCENTRE_TOLERANCE_MM = 0.5
# A gantry that moves less than this (degrees) between control points is not an arc.
_ARC_MIN_DEG = 1.0
# MLC/jaw positions that move less than this (mm) between control points are one aperture.
_APERTURE_TOLERANCE_MM = 0.01


class Technique(CodedWord):
    """How a beam is delivered, read from its control points (see :func:`parse_beams`)."""

    THREE_D = "3D"  # one aperture per beam, gantry fixed
    IMRT = "IMRT"  # gantry fixed, aperture changes (step-and-shoot STATIC or sliding-window DYNAMIC)
    VMAT = "VMAT"  # gantry rotates while the aperture changes
    CONFORMAL_ARC = "conformal arc"  # gantry rotates, one aperture
    ION_SCANNING = "ion scanning"  # RT Ion Plan, ScanMode MODULATED / MODULATED_SPEC
    ION_PASSIVE = "ion passive"  # RT Ion Plan, ScanMode NONE / UNIFORM
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Beam:
    """One beam.  ``energies`` are the NominalBeamEnergy values of its control points (MV for photons,
    MeV for electrons and ions, per PS3.3 "Nominal Beam Energy at control point (MV/MeV)"), positive ones
    only; ``fluence_modes`` the PrimaryFluenceModeSequence's FluenceModeID (e.g. FFF) where NON_STANDARD.
    ``meterset`` is the fraction group's BeamMeterset (per fraction) and ``meterset_unit`` the beam's
    PrimaryDosimeterUnit; ``isocentre_mm`` the first control point's IsocenterPosition."""

    number: int | None
    name: str
    delivery_type: str  # TreatmentDeliveryType: TREATMENT, OPEN_PORTFILM, TRMT_PORTFILM, CONTINUATION, SETUP
    radiation_type: str
    machine: str
    energies: tuple[float, ...]
    fluence_modes: tuple[str, ...]
    technique: Technique
    isocentre_mm: tuple[float, float, float] | None
    meterset: float | None
    meterset_unit: str
    technique_evidence: str = ""

    @property
    def is_setup(self) -> bool:
        """A setup (imaging/positioning) beam: PS3.3 TreatmentDeliveryType SETUP delivers no treatment dose."""
        return self.delivery_type == "SETUP"


@dataclass
class BeamSet:
    """The beams of a plan (treatment and setup) and the patient positions of its setups."""

    beams: list[Beam] = field(default_factory=list)
    patient_positions: tuple[str, ...] = ()
    is_ion: bool = False

    @property
    def treatment_beams(self) -> list[Beam]:
        return [b for b in self.beams if not b.is_setup]

    @property
    def setup_beams(self) -> list[Beam]:
        return [b for b in self.beams if b.is_setup]

    def isocentres_mm(self) -> list[tuple[float, float, float]]:
        """Distinct isocentres of the treatment beams (within ``ISOCENTRE_TOLERANCE_MM``), in beam order."""
        found: list[tuple[float, float, float]] = []
        for beam in self.treatment_beams:
            if beam.isocentre_mm is None:
                continue
            if not any(np.linalg.norm(np.subtract(beam.isocentre_mm, other)) <= ISOCENTRE_TOLERANCE_MM for other in found):
                found.append(beam.isocentre_mm)
        return found


def _float(value: object) -> float | None:
    """A finite number, or None for an absent or unreadable value (damaged exports are read, not trusted)."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _floats(values: object) -> tuple[float, ...] | None:
    """Every value of a multi-valued number element (pydicom gives a list, or the value itself when there
    is one), or None when one of them is unreadable."""
    if values is None:
        return ()
    items = list(values) if isinstance(values, Sequence) and not isinstance(values, (str, bytes)) else [values]
    numbers = [_float(v) for v in items]
    return tuple(n for n in numbers if n is not None) if all(n is not None for n in numbers) else None


def _int(value: object) -> int | None:
    try:
        return int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return None


def _apertures(control_points: list[Dataset]) -> int | None:
    """How many distinct apertures (leaf/jaw positions) the control points carry; None when a position
    is unreadable.

    PS3.3 C.8.8.14.5: a control point after the first includes BeamLimitingDevicePositionSequence
    only when positions change, so each item that differs from the last positions is a new aperture."""
    current: dict[str, np.ndarray] = {}
    apertures = 0
    for cp in control_points:
        changed = False
        for item in cp.get("BeamLimitingDevicePositionSequence") or []:
            kind = str(item.get("RTBeamLimitingDeviceType", ""))
            values = _floats(item.get("LeafJawPositions"))
            if values is None:
                return None
            positions = np.array(values)
            previous = current.get(kind)
            if previous is None or previous.shape != positions.shape or np.max(np.abs(previous - positions), initial=0.0) > _APERTURE_TOLERANCE_MM:
                changed = True
            current[kind] = positions
        if changed:
            apertures += 1
    return apertures


def _gantry_span_deg(control_points: list[Dataset]) -> float:
    angles = [a for a in (_float(cp.get("GantryAngle")) for cp in control_points) if a is not None]
    if len(angles) < 2:
        return 0.0
    steps = np.abs(np.diff(angles))
    steps = np.minimum(steps, 360.0 - steps)  # a step through 0 degrees
    return float(steps.sum())


def _technique(beam: Dataset, control_points: list[Dataset], is_ion: bool) -> tuple[Technique, str]:
    if is_ion:
        scan = str(beam.get("ScanMode", "") or "").upper()
        if scan.startswith("MODULATED"):
            return Technique.ION_SCANNING, f"ScanMode {scan}"
        if scan in ("NONE", "UNIFORM", "LINE"):
            return Technique.ION_PASSIVE, f"ScanMode {scan}"
        return Technique.UNKNOWN, "ScanMode absent"
    if not control_points:
        return Technique.UNKNOWN, "no ControlPointSequence"
    span = _gantry_span_deg(control_points)
    rotation = str(control_points[0].get("GantryRotationDirection", "") or "").upper()
    apertures = _apertures(control_points)
    if apertures is None:
        return Technique.UNKNOWN, "LeafJawPositions unreadable in a control point"
    arc = span >= _ARC_MIN_DEG or rotation in ("CW", "CC")
    evidence = f"{len(control_points)} control points, gantry {'arc of %.0f deg' % span if arc else 'fixed'}, {apertures} aperture(s)"
    if arc:
        return (Technique.VMAT if apertures > 1 else Technique.CONFORMAL_ARC), evidence
    return (Technique.IMRT if apertures > 1 else Technique.THREE_D), evidence


def _meterset_by_beam(ds: Dataset) -> dict[int, float]:
    """BeamMeterset per beam number over the fraction groups (per fraction; PS3.3 C.8.8.13)."""
    found: dict[int, float] = {}
    for group in ds.get("FractionGroupSequence") or []:
        for ref in group.get("ReferencedBeamSequence") or []:
            number, meterset = _int(ref.get("ReferencedBeamNumber")), _float(ref.get("BeamMeterset"))
            if number is not None and meterset is not None:
                found[number] = found.get(number, 0.0) + meterset
    return found


def parse_beams(ds: Dataset, kind: RTObjectKind) -> BeamSet:
    """The beams of an RT Plan (BeamSequence) or RT Ion Plan (IonBeamSequence) data set."""
    is_ion = kind is RTObjectKind.ION_PLAN
    metersets = _meterset_by_beam(ds)
    beams: list[Beam] = []
    for item in ds.get("IonBeamSequence" if is_ion else "BeamSequence") or []:
        control_points = list(item.get("IonControlPointSequence" if is_ion else "ControlPointSequence") or [])
        number = _int(item.get("BeamNumber"))
        energies = sorted({e for e in (_float(cp.get("NominalBeamEnergy")) for cp in control_points) if e is not None and e > 0})
        fluence = tuple(
            str(f.get("FluenceModeID", "") or "NON_STANDARD")
            for f in item.get("PrimaryFluenceModeSequence") or []
            if str(f.get("FluenceMode", "")).upper() == "NON_STANDARD"
        )
        iso = control_points[0].get("IsocenterPosition") if control_points else None
        iso_mm = _floats(iso)
        isocentre = iso_mm if iso_mm is not None and len(iso_mm) == 3 else None
        technique, evidence = _technique(item, control_points, is_ion)
        beams.append(
            Beam(
                number=number,
                name=str(item.get("BeamName", "") or item.get("BeamDescription", "") or f"beam {number}"),
                delivery_type=str(item.get("TreatmentDeliveryType", "") or "TREATMENT").upper(),
                radiation_type=str(item.get("RadiationType", "") or "").upper(),
                machine=str(item.get("TreatmentMachineName", "") or ""),
                energies=tuple(energies),
                fluence_modes=fluence,
                technique=technique,
                isocentre_mm=isocentre,
                meterset=metersets.get(number) if number is not None else None,
                meterset_unit=str(item.get("PrimaryDosimeterUnit", "") or "").upper(),
                technique_evidence=evidence,
            )
        )
    positions = tuple(str(s.get("PatientPosition", "") or "") for s in ds.get("PatientSetupSequence") or [])
    return BeamSet(beams=beams, patient_positions=tuple(p for p in positions if p), is_ion=is_ion)
