"""RT Plan / RT Ion Plan -> prescription per target, with the source of every number.

Doses are total doses in Gy unless the name says per fraction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pydicom.dataset import Dataset

from rtcheck.dicom.sop import RTObjectKind

# Beam doses and the target prescription of one plan should agree to well within this.
_BEAM_DOSE_AGREEMENT = 0.01


@dataclass
class FractionGroup:
    number: int
    fractions_planned: int | None
    beam_dose_per_fraction_gy: float | None
    referenced_dose_reference_numbers: list[int]


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
    # RTPlanDate and StudyDate as written (DICOM DA, YYYYMMDD), "" when absent: for reports.
    plan_date: str = ""
    study_date: str = ""

    @property
    def fractions(self) -> int | None:
        """Fractions planned: the sum over fraction groups, None if any is unknown."""
        counts = [g.fractions_planned for g in self.fraction_groups]
        if not counts or any(c is None for c in counts):
            return None
        return sum(counts)  # type: ignore[arg-type]

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


def _parse_fraction_groups(ds: Dataset) -> list[FractionGroup]:
    groups: list[FractionGroup] = []
    for item in ds.get("FractionGroupSequence", []):
        beam_doses = [_float(b.get("BeamDose")) for b in item.get("ReferencedBeamSequence", [])]
        known = [d for d in beam_doses if d is not None]
        groups.append(
            FractionGroup(
                number=_int(item.get("FractionGroupNumber")) or len(groups) + 1,
                fractions_planned=_int(item.get("NumberOfFractionsPlanned")),
                beam_dose_per_fraction_gy=sum(known) if known else None,
                referenced_dose_reference_numbers=[
                    n for n in (_int(r.get("ReferencedDoseReferenceNumber")) for r in item.get("ReferencedDoseReferenceSequence", [])) if n is not None
                ],
            )
        )
    return groups


def _group_for(number: int | None, groups: list[FractionGroup]) -> FractionGroup | None:
    """The fraction group delivering a dose reference: the one that references it, else the only group."""
    referencing = [g for g in groups if number is not None and number in g.referenced_dose_reference_numbers]
    if len(referencing) == 1:
        return referencing[0]
    if not referencing and len(groups) == 1:
        return groups[0]
    return None


def parse_plan(ds: Dataset, path: Path, kind: RTObjectKind) -> Plan:
    """Build a Plan (prescriptions and fractionation) from an RT (Ion) Plan data set."""
    groups = _parse_fraction_groups(ds)
    beams_seq = ds.get("IonBeamSequence" if kind is RTObjectKind.ION_PLAN else "BeamSequence", [])
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
        group = _group_for(number, groups)
        if group is not None and group.fractions_planned:
            target.fractions = group.fractions_planned
            target.sources["fractions"] = f"RT Plan FractionGroupSequence item {group.number} NumberOfFractionsPlanned"
            target.dose_per_fraction_gy = total / group.fractions_planned
            target.sources["dose_per_fraction_gy"] = "TargetPrescriptionDose / NumberOfFractionsPlanned"
        else:
            plan.notes.append(f"dose reference {number}: no single fraction group delivers it; fractions unknown")
        plan.targets.append(target)

    if not plan.targets:
        # Beam-dose-only plans: the dose to the beam dose specification points is all there is.
        for group in groups:
            if group.beam_dose_per_fraction_gy is None or not group.fractions_planned:
                continue
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
                        "total_dose_gy": f"sum of BeamDose in fraction group {group.number} x NumberOfFractionsPlanned",
                        "fractions": f"RT Plan FractionGroupSequence item {group.number} NumberOfFractionsPlanned",
                        "dose_per_fraction_gy": f"sum of BeamDose in fraction group {group.number}",
                    },
                )
            )
    else:
        _check_beam_dose_agreement(plan)
    return plan


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
