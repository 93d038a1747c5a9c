"""RT Plan / RT Ion Plan -> prescription per target, with the source of every number.

Doses are total doses in Gy unless the name says per fraction.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from pathlib import Path

from pydicom.dataset import Dataset

from rtcheck.dicom.sop import DOSE_FREE_DELIVERY_TYPES, RTObjectKind

# Beam doses and the target prescription of one plan should agree to well within this.
_BEAM_DOSE_AGREEMENT = 0.01


@dataclass
class FractionGroup:
    """One fraction group (RT Fraction Scheme Module, PS3.3 C.8.8.13): its fractions, the sum of its treatment
    beams' BeamDose (Gy per fraction) and where those doses are specified."""

    number: int
    fractions_planned: int | None
    beam_dose_per_fraction_gy: float | None
    referenced_dose_reference_numbers: list[int]
    # The distinct dose specification points of its treatment beams with a BeamDose: coordinates (mm) of
    # BeamDoseSpecificationPoint, else the Referenced Dose Reference UID; "?" for a beam that names none.
    beam_dose_points: list[str] = field(default_factory=list)
    treatment_beams_with_dose: int = 0


@dataclass
class TargetPrescription:
    """A prescription of the plan.

    ``name`` is the referenced ROI's name once linked to the structure set,
    else the DoseReferenceDescription.  ``sources`` maps each number
    (``total_dose_gy``, ``fractions``, ``dose_per_fraction_gy``) to where it came from.
    """

    name: str
    dose_reference_number: int | None
    roi_number: int | None
    description: str
    total_dose_gy: float | None
    fractions: int | None
    dose_per_fraction_gy: float | None
    sources: dict[str, str] = field(default_factory=dict)
    # The fraction groups that deliver it (by FractionGroupNumber); empty when unknown.
    fraction_groups: list[int] = field(default_factory=list)


class PartKind(enum.Enum):
    """What a part of a course is: a fraction group of one RT Plan, or one RT Plan of a plan sum."""

    FRACTION_GROUP = "fraction group"
    PLAN = "plan"


@dataclass
class PlanPart:
    """One part of a planned course, paired with one phase of a protocol arm: a fraction group of an RT Plan
    (PS3.3 C.8.8.13: its NumberOfFractionsPlanned, the dose references it names), or one RT Plan of a plan sum.

    ``targets`` are the prescriptions it delivers; ``shared`` those also delivered by another part (their
    TargetPrescriptionDose covers several parts, so the dose of this part alone is not stated)."""

    kind: PartKind
    number: int
    label: str
    fractions: int | None
    fractions_source: str
    targets: list[TargetPrescription]
    shared: list[TargetPrescription] = field(default_factory=list)

    def is_shared(self, target: TargetPrescription) -> bool:
        return any(target is s for s in self.shared)


@dataclass
class Plan:
    path: Path
    kind: RTObjectKind
    sop_instance_uid: str
    label: str
    name: str
    frame_of_reference_uid: str
    patient_id: str
    patient_name: str
    fraction_groups: list[FractionGroup]
    targets: list[TargetPrescription]
    beam_numbers: list[int]
    notes: list[str] = field(default_factory=list)
    # Why the plan has no readable prescription ("" when it has one): prescription checks say it.
    prescription_gap: str = ""
    # RTPlanDate and StudyDate as written (DICOM DA, YYYYMMDD), "" when absent: for reports.
    plan_date: str = ""
    study_date: str = ""
    # The parts of a plan sum (one per RT Plan, in phase order); empty for one RT Plan (see ``parts``).
    sum_parts: list[PlanPart] = field(default_factory=list)

    @property
    def fractions(self) -> int | None:
        """Fractions planned: the sum over fraction groups, None if any is unknown."""
        counts = [g.fractions_planned for g in self.fraction_groups]
        if not counts or any(c is None for c in counts):
            return None
        return sum(counts)  # type: ignore[arg-type]

    @property
    def parts(self) -> list[PlanPart]:
        """The parts of the course, in delivery order: the plans of a plan sum, else the fraction groups in
        FractionGroupSequence order, each with the prescriptions that reference it."""
        if self.sum_parts:
            return self.sum_parts
        parts = []
        for group in self.fraction_groups:
            targets = [t for t in self.targets if group.number in t.fraction_groups]
            parts.append(PlanPart(
                PartKind.FRACTION_GROUP, group.number, f"fraction group {group.number}", group.fractions_planned,
                f"RT Plan FractionGroupSequence item {group.number} NumberOfFractionsPlanned",
                targets, [t for t in targets if len(t.fraction_groups) > 1],
            ))
        return parts

    def fraction_group(self, number: int) -> FractionGroup | None:
        for group in self.fraction_groups:
            if group.number == number:
                return group
        return None


def _int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _float(value) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _dose_point(beam: Dataset) -> str:
    """Where a beam's BeamDose is specified: BeamDoseSpecificationPoint (300A,0082; mm, rounded to 0.01 mm),
    else the dose reference it names (Referenced Dose Reference UID, 300A,0083), else "?"."""
    point = beam.get("BeamDoseSpecificationPoint")
    if point is not None:
        try:
            return "(" + ", ".join(f"{float(v):.2f}" for v in point) + ") mm"
        except (TypeError, ValueError):
            return "?"
    uid = str(beam.get("ReferencedDoseReferenceUID", "") or "")
    return f"dose reference {uid}" if uid else "?"


def _parse_fraction_groups(ds: Dataset, dose_free: set[int]) -> list[FractionGroup]:
    groups: list[FractionGroup] = []
    for item in ds.get("FractionGroupSequence", []):
        with_dose = [
            b for b in item.get("ReferencedBeamSequence", [])
            if _float(b.get("BeamDose")) is not None and _int(b.get("ReferencedBeamNumber")) not in dose_free
        ]
        known = [float(b.BeamDose) for b in with_dose]
        groups.append(
            FractionGroup(
                number=_int(item.get("FractionGroupNumber")) or len(groups) + 1,
                fractions_planned=_int(item.get("NumberOfFractionsPlanned")),
                beam_dose_per_fraction_gy=sum(known) if known else None,
                referenced_dose_reference_numbers=[
                    n for n in (_int(r.get("ReferencedDoseReferenceNumber")) for r in item.get("ReferencedDoseReferenceSequence", [])) if n is not None
                ],
                beam_dose_points=list(dict.fromkeys(_dose_point(b) for b in with_dose)),
                treatment_beams_with_dose=len(with_dose),
            )
        )
    return groups


def _groups_for(number: int | None, groups: list[FractionGroup]) -> list[FractionGroup]:
    """The fraction groups delivering a dose reference: those that reference it, else the only group."""
    referencing = [g for g in groups if number is not None and number in g.referenced_dose_reference_numbers]
    if referencing:
        return referencing
    return list(groups) if len(groups) == 1 else []


def parse_plan(ds: Dataset, path: Path, kind: RTObjectKind) -> Plan:
    """Build a Plan (prescriptions and fractionation) from an RT (Ion) Plan data set."""
    beams_seq = ds.get("IonBeamSequence" if kind is RTObjectKind.ION_PLAN else "BeamSequence", [])
    dose_free = {
        n for n in (_int(b.get("BeamNumber")) for b in beams_seq
                    if str(b.get("TreatmentDeliveryType", "") or "").upper() in DOSE_FREE_DELIVERY_TYPES) if n is not None
    }
    groups = _parse_fraction_groups(ds, dose_free)
    beam_numbers = [n for n in (_int(b.get("BeamNumber")) for b in beams_seq) if n is not None]
    plan = Plan(
        path=path,
        kind=kind,
        sop_instance_uid=str(ds.get("SOPInstanceUID", "")),
        label=str(ds.get("RTPlanLabel", "") or ""),
        name=str(ds.get("RTPlanName", "") or ""),
        frame_of_reference_uid=str(ds.get("FrameOfReferenceUID", "") or ""),
        patient_id=str(ds.get("PatientID", "") or ""),
        patient_name=str(ds.get("PatientName", "") or ""),
        fraction_groups=groups,
        targets=[],
        beam_numbers=beam_numbers,
        plan_date=str(ds.get("RTPlanDate", "") or ""),
        study_date=str(ds.get("StudyDate", "") or ""),
    )

    for item in ds.get("DoseReferenceSequence", []):
        if str(item.get("DoseReferenceType", "")).upper() != "TARGET":
            continue
        structure_type = str(item.get("DoseReferenceStructureType", "")).upper()
        number = _int(item.get("DoseReferenceNumber"))
        description = str(item.get("DoseReferenceDescription", "") or "")
        total = _float(item.get("TargetPrescriptionDose"))
        if structure_type in ("POINT", "COORDINATES"):
            # A calculation point's dose is not a target prescription; keep it as a note.
            if total is not None:
                plan.notes.append(f"dose reference {number} ({description or structure_type}) is a point: {total:g} Gy, not used as a prescription")
            continue
        if total is None:
            continue
        where = f"RT Plan DoseReferenceSequence item {number}"
        target = TargetPrescription(
            name=description or f"dose reference {number}",
            dose_reference_number=number,
            roi_number=_int(item.get("ReferencedROINumber")) if structure_type == "VOLUME" else None,
            description=description,
            total_dose_gy=total,
            fractions=None,
            dose_per_fraction_gy=None,
            sources={"total_dose_gy": f"{where} TargetPrescriptionDose"},
        )
        delivering = _groups_for(number, groups)
        counts = [g.fractions_planned for g in delivering]
        if delivering and all(counts):
            target.fractions = sum(counts)  # type: ignore[arg-type]
            numbers = " + ".join(f"item {g.number}" for g in delivering)
            target.sources["fractions"] = f"RT Plan FractionGroupSequence {numbers} NumberOfFractionsPlanned"
            target.fraction_groups = [g.number for g in delivering]
            target.dose_per_fraction_gy = total / target.fractions
            target.sources["dose_per_fraction_gy"] = "TargetPrescriptionDose / NumberOfFractionsPlanned"
            if len(delivering) > 1:
                plan.notes.append(f"dose reference {number} is delivered by fraction groups {', '.join(str(g.number) for g in delivering)}: "
                                  f"{target.fractions} fractions in all")
        else:
            plan.notes.append(f"dose reference {number}: no fraction group with a number of fractions delivers it; fractions unknown")
        plan.targets.append(target)

    if not plan.targets:
        _beam_dose_prescriptions(plan)
    else:
        _check_beam_dose_agreement(plan)
    return plan


def _beam_dose_prescriptions(plan: Plan) -> None:
    """Plans without a TARGET dose reference: a fraction group's beam doses add up to a prescription only
    when every treatment beam's BeamDose is specified at one and the same point (a single beam counts);
    beam doses at several isocentres or points, or at points not named, are not summed into a dose no
    point receives: the plan then has no readable prescription (``prescription_gap``)."""
    gaps = []
    for group in plan.fraction_groups:
        if group.beam_dose_per_fraction_gy is None or not group.fractions_planned:
            gaps.append(f"fraction group {group.number} states no beam dose or no number of fractions")
            continue
        points = group.beam_dose_points
        if group.treatment_beams_with_dose > 1 and (len(points) != 1 or points == ["?"]):
            where = "points not named" if "?" in points else f"{len(points)} different points ({'; '.join(points)})"
            gaps.append(
                f"fraction group {group.number}: the BeamDose of its {group.treatment_beams_with_dose} treatment beams is specified at {where}; "
                "their sum is no dose any point receives"
            )
            continue
        point = group.beam_dose_points[0] if group.beam_dose_points and group.beam_dose_points[0] != "?" else "a point not named"
        plan.targets.append(
            TargetPrescription(
                name=f"fraction group {group.number} (beam dose)",
                dose_reference_number=None,
                roi_number=None,
                description="",
                total_dose_gy=group.beam_dose_per_fraction_gy * group.fractions_planned,
                fractions=group.fractions_planned,
                dose_per_fraction_gy=group.beam_dose_per_fraction_gy,
                sources={
                    "total_dose_gy": f"sum of BeamDose in fraction group {group.number} (at {point}) x NumberOfFractionsPlanned",
                    "fractions": f"RT Plan FractionGroupSequence item {group.number} NumberOfFractionsPlanned",
                    "dose_per_fraction_gy": f"sum of BeamDose in fraction group {group.number}",
                },
                fraction_groups=[group.number],
            )
        )
    if gaps:
        plan.notes += [f"no prescription read from beam doses: {gap}" for gap in gaps]
    if not plan.targets:
        plan.prescription_gap = "the RT Plan has no TARGET dose reference" + (f", and {gaps[0]}" if gaps else "")


def _check_beam_dose_agreement(plan: Plan) -> None:
    """Note when the beam doses add up to no target's dose per fraction (a hint of an inconsistent export)."""
    for group in plan.fraction_groups:
        per_fraction = group.beam_dose_per_fraction_gy
        if not per_fraction:
            continue
        delivered = [t.dose_per_fraction_gy for t in plan.targets if t.dose_per_fraction_gy]
        if delivered and not any(abs(per_fraction - d) <= _BEAM_DOSE_AGREEMENT * d for d in delivered):
            plan.notes.append(
                f"fraction group {group.number}: beam doses sum to {per_fraction:.3f} Gy per fraction, "
                f"matching no target's dose per fraction ({', '.join(f'{d:.3f}' for d in delivered)} Gy)"
            )


def course_targets(targets: list[TargetPrescription]) -> tuple[list[TargetPrescription], list[str]]:
    """The course's prescriptions: those of one ROI (several fraction groups or plans prescribing the same ROI) made
    one, their total doses and fractions added and both sources kept; the others as they are.  Copies: the
    prescriptions given are not changed.  Notes say which were added up."""
    merged: list[TargetPrescription] = []
    by_roi: dict[int, TargetPrescription] = {}
    notes: list[str] = []
    for target in targets:
        mine = replace(target, sources=dict(target.sources), fraction_groups=list(target.fraction_groups))
        earlier = by_roi.get(target.roi_number) if target.roi_number is not None else None
        if earlier is None:
            merged.append(mine)
            if target.roi_number is not None:
                by_roi[target.roi_number] = mine
            continue
        for key in ("total_dose_gy", "fractions"):
            a, b = getattr(earlier, key), getattr(mine, key)
            setattr(earlier, key, None if a is None or b is None else a + b)
            earlier.sources[key] = f"{earlier.sources.get(key, '?')} + {mine.sources.get(key, '?')}"
        earlier.fraction_groups += mine.fraction_groups
        if earlier.total_dose_gy is not None and earlier.fractions:
            earlier.dose_per_fraction_gy = earlier.total_dose_gy / earlier.fractions
            earlier.sources["dose_per_fraction_gy"] = "course total dose / course fractions"
        note = f"ROI {target.name!r} is prescribed in several parts of the course: one course prescription of their sum"
        notes += [] if note in notes else [note]
    return merged, notes
