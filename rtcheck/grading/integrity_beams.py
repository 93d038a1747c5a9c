"""Plan rules on the dose calculation (RT Dose) and on the beams (RT Plan): grid, heterogeneity correction,
dose type, algorithm, radiation type, energy, technique, isocentres, machine, MU per Gy."""

from __future__ import annotations

import numpy as np

from rtcheck.dicom.beams import Beam, BeamSet, Technique
from rtcheck.dicom.planset import PlanSet
from rtcheck.grading.integrity_spec import rule_spec
from rtcheck.protocol.plan_rules import PlanRule, RuleKind
from rtcheck.results import CheckOutcome

__all__ = ["BEAM_RULES", "DOSE_RULES", "beam_rule_outcome", "dose_rule_outcome"]

DOSE_RULES = (RuleKind.DOSE_GRID, RuleKind.HETEROGENEITY_CORRECTION, RuleKind.DOSE_TYPE, RuleKind.CALCULATION_ALGORITHM)
BEAM_RULES = (
    RuleKind.RADIATION_TYPE, RuleKind.BEAM_ENERGY, RuleKind.TECHNIQUE, RuleKind.ISOCENTRES, RuleKind.TREATMENT_MACHINE, RuleKind.MU_PER_GY,
)
_SPACING_TOLERANCE_MM = 1e-3
_MULTI = "\\"  # how DICOM writes a multi-valued element


def _axis_spacing_mm(axis: np.ndarray) -> float | None:
    return float(np.max(np.diff(axis))) if axis.size > 1 else None


def dose_rule_outcome(rule: PlanRule, plan_set: PlanSet) -> CheckOutcome:
    """One dose-calculation rule graded on the plan set's RT Dose file(s)."""
    dose = plan_set.dose
    files = dose.files
    names = ", ".join(f.path.name for f in files) or "the RT Dose"
    if rule.kind is RuleKind.DOSE_GRID:
        assert rule.max_value is not None
        spec = rule_spec(rule, metric="dose grid spacing (largest of x, y, z)", unit="mm", per_protocol=f"<= {rule.max_value:g} mm", structure="RT Dose")
        spacings = {axis: _axis_spacing_mm(values) for axis, values in (("x", dose.x_mm), ("y", dose.y_mm), ("z", dose.z_mm))}
        known = {axis: s for axis, s in spacings.items() if s is not None}
        if not known:
            return spec.absent(f"{names}: a single voxel; PixelSpacing and GridFrameOffsetVector give no spacing")
        largest = max(known.values())
        detail = ", ".join(f"{axis} {s:.2f} mm" for axis, s in known.items())
        lone = [axis for axis, s in spacings.items() if s is None]
        if lone:
            detail += f"; {' and '.join(lone)}: one plane only (no spacing)"
        message = f"{names}: {detail} (PixelSpacing, GridFrameOffsetVector)"
        if largest <= rule.max_value + _SPACING_TOLERANCE_MM:
            return spec.passed(largest, message)
        return spec.failed(largest, message + f"; {largest:.2f} mm exceeds {rule.max_value:g} mm")
    if rule.kind is RuleKind.HETEROGENEITY_CORRECTION:
        spec = rule_spec(rule, metric="tissue heterogeneity correction", unit="", per_protocol="IMAGE (heterogeneity from the images)", structure="RT Dose")
        absent = [f.path.name for f in files if f.heterogeneity_correction is None]
        if absent:
            return spec.absent(f"{', '.join(absent)}: no TissueHeterogeneityCorrection (3004,0014) element: the export does not say whether the dose was corrected for heterogeneity")
        values = {f.path.name: f.heterogeneity_correction or () for f in files}
        shown = "; ".join(f"{name}: {_MULTI.join(v) or '(empty)'}" for name, v in values.items())
        off = [name for name, v in values.items() if "IMAGE" not in v]
        if off:
            return spec.failed(None, f"TissueHeterogeneityCorrection {shown}: {', '.join(off)} not calculated with the image's heterogeneity (PS3.3: WATER = the whole volume as water)")
        return spec.passed(None, f"TissueHeterogeneityCorrection {shown}")
    if rule.kind is RuleKind.DOSE_TYPE:
        spec = rule_spec(rule, metric="DoseType", unit="", per_protocol=" or ".join(rule.allowed), structure="RT Dose")
        missing = [f.path.name for f in files if not f.dose_type]
        if missing:
            return spec.absent(f"{', '.join(missing)}: no DoseType (3004,0004)")
        wrong = [f"{f.path.name}: {f.dose_type}" for f in files if f.dose_type not in rule.allowed]
        if wrong:
            return spec.failed(None, f"DoseType {'; '.join(wrong)}, expected {' or '.join(rule.allowed)}")
        return spec.passed(None, f"DoseType {', '.join(sorted({f.dose_type for f in files}))}")
    # Calculation algorithm: PS3.3's RT Dose IOD has no standard element naming it.
    spec = rule_spec(rule, metric="dose calculation algorithm", unit="", per_protocol=" or ".join(rule.allowed), structure="RT Dose")
    makers = sorted({f"{i.manufacturer or '?'} {i.software}".strip() for f in files if (i := f.identity) is not None})
    return spec.absent(
        "the RT Dose IOD (PS3.3 C.8.8.3) has no standard element naming the calculation algorithm and rtcheck reads no "
        f"vendor private element (none is documented to it); the export names only its system: {'; '.join(makers) or 'nothing'}"
    )


def _energy_text(beam: Beam) -> str:
    unit = "MV" if beam.radiation_type == "PHOTON" else "MeV"
    return ", ".join(f"{e:g} {unit}" + (" " + "/".join(beam.fluence_modes) if beam.fluence_modes else "") for e in beam.energies)


def _setup_note(beams: BeamSet) -> str:
    setup = beams.setup_beams
    return f"; {len(setup)} setup beam(s) (TreatmentDeliveryType SETUP) are imaging only and not counted" if setup else ""


def beam_rule_outcome(rule: PlanRule, plan_set: PlanSet) -> CheckOutcome:
    """One beam rule graded on the plan's treatment beams (setup beams are counted for imaging only)."""
    beams = plan_set.facts.beams or BeamSet()
    treatment = beams.treatment_beams
    note = _setup_note(beams)
    if rule.kind is RuleKind.RADIATION_TYPE:
        spec = rule_spec(rule, metric="radiation type", unit="", per_protocol=" or ".join(rule.allowed))
    elif rule.kind is RuleKind.BEAM_ENERGY:
        spec = rule_spec(rule, metric="nominal beam energy", unit="", per_protocol=", ".join(rule.allowed) + " (MV photons, MeV others)")
    elif rule.kind is RuleKind.TECHNIQUE:
        spec = rule_spec(rule, metric="technique", unit="", per_protocol=" or ".join(rule.allowed))
    elif rule.kind is RuleKind.ISOCENTRES:
        spec = rule_spec(rule, metric="isocentres", unit="", per_protocol=f"<= {rule.max_value:g}")
    elif rule.kind is RuleKind.TREATMENT_MACHINE:
        spec = rule_spec(rule, metric="treatment machine", unit="", per_protocol="one machine" + (f": {' or '.join(rule.allowed)}" if rule.allowed else ""))
    else:
        spec = rule_spec(rule, metric="MU per Gy (per fraction)", unit="MU/Gy", per_protocol=f"{rule.min_value:g}-{rule.max_value:g} MU/Gy")
    if not treatment:
        return spec.absent(f"the RT Plan has no treatment beams (BeamSequence / IonBeamSequence){note}")

    if rule.kind is RuleKind.RADIATION_TYPE:
        unknown = [b.name for b in treatment if not b.radiation_type]
        if unknown:
            return spec.absent(f"beam(s) {', '.join(unknown)} without RadiationType (300A,00C6)")
        types = sorted({b.radiation_type for b in treatment})
        wrong = [f"{b.name}: {b.radiation_type}" for b in treatment if b.radiation_type not in rule.allowed]
        if wrong:
            return spec.failed(None, f"RadiationType {'; '.join(wrong)}{note}")
        return spec.passed(None, f"RadiationType {', '.join(types)} ({len(treatment)} treatment beams){note}")

    if rule.kind is RuleKind.BEAM_ENERGY:
        if beams.is_ion:
            return spec.unreadable("an ion beam delivers many energy layers (IonControlPointSequence); the rule lists photon/electron nominal energies")
        missing = [b.name for b in treatment if not b.energies]
        if missing:
            return spec.absent(f"beam(s) {', '.join(missing)} state no positive NominalBeamEnergy (300A,0114) in their control points{note}")
        allowed = [float(a) for a in rule.allowed]
        wrong = [f"{b.name}: {_energy_text(b)}" for b in treatment if any(min(abs(e - a) for a in allowed) > 0.01 for e in b.energies)]
        shown = "; ".join(sorted({_energy_text(b) for b in treatment}))
        if wrong:
            return spec.failed(max(e for b in treatment for e in b.energies), f"energy not allowed: {'; '.join(wrong)}{note}")
        return spec.passed(max(e for b in treatment for e in b.energies), f"NominalBeamEnergy {shown}{note}")

    if rule.kind is RuleKind.TECHNIQUE:
        unknown = [f"{b.name} ({b.technique_evidence})" for b in treatment if b.technique is Technique.UNKNOWN]
        if unknown:
            return spec.absent(f"technique not readable for {', '.join(unknown)}")
        found = sorted({str(b.technique) for b in treatment})
        evidence = "; ".join(f"{b.name}: {b.technique} ({b.technique_evidence})" for b in treatment[:4]) + (" ..." if len(treatment) > 4 else "")
        wrong = [t for t in found if t not in rule.allowed]
        if wrong:
            return spec.failed(None, f"technique {', '.join(wrong)} not allowed; {evidence}")
        return spec.passed(None, f"{', '.join(found)}; {evidence}")

    if rule.kind is RuleKind.ISOCENTRES:
        assert rule.max_value is not None
        without = [b.name for b in treatment if b.isocentre_mm is None]
        if without:
            return spec.absent(f"beam(s) {', '.join(without)} without IsocenterPosition (300A,012C) in the first control point")
        isocentres = beams.isocentres_mm()
        shown = "; ".join("(" + ", ".join(f"{v:.1f}" for v in iso) + ") mm" for iso in isocentres)
        message = f"{len(isocentres)} isocentre(s) of {len(treatment)} treatment beams: {shown}{note}"
        if len(isocentres) <= rule.max_value:
            return spec.passed(float(len(isocentres)), message)
        return spec.failed(float(len(isocentres)), message)

    if rule.kind is RuleKind.TREATMENT_MACHINE:
        unnamed = [b.name for b in treatment if not b.machine]
        if unnamed:
            return spec.absent(f"beam(s) {', '.join(unnamed)} without TreatmentMachineName (300A,00B2)")
        machines = sorted({b.machine for b in treatment})
        if len(machines) > 1:
            listing = "; ".join(f"{m}: {', '.join(b.name for b in treatment if b.machine == m)}" for m in machines)
            return spec.failed(None, f"treatment beams on {len(machines)} machines ({listing})")
        if rule.allowed and machines[0] not in rule.allowed:
            return spec.failed(None, f"TreatmentMachineName {machines[0]} is not {' or '.join(rule.allowed)}")
        return spec.passed(None, f"every treatment beam on {machines[0]}{note}")

    return _mu_per_gy(rule, plan_set, treatment, note)


def _mu_per_gy(rule: PlanRule, plan_set: PlanSet, treatment: list[Beam], note: str) -> CheckOutcome:
    assert rule.min_value is not None and rule.max_value is not None
    spec = rule_spec(rule, metric="MU per Gy (per fraction)", unit="MU/Gy", per_protocol=f"{rule.min_value:g}-{rule.max_value:g} MU/Gy")
    plan = plan_set.plan
    assert plan is not None
    if len(plan.fraction_groups) != 1:
        return spec.unreadable(f"the plan has {len(plan.fraction_groups)} fraction groups: MU per Gy is judged for a plan of one fraction group")
    not_mu = sorted({f"{b.name}: {b.meterset_unit or 'no PrimaryDosimeterUnit'}" for b in treatment if b.meterset_unit != "MU"})
    if not_mu:
        return spec.absent(f"meterset not in MU ({'; '.join(not_mu)}): PrimaryDosimeterUnit (300A,00B3) MU is needed")
    missing = [b.name for b in treatment if b.meterset is None]
    if missing:
        return spec.absent(f"beam(s) {', '.join(missing)} without BeamMeterset (300C,0009) in the fraction group")
    per_fraction = [t.dose_per_fraction_gy for t in plan.targets if t.dose_per_fraction_gy]
    if not per_fraction:
        return spec.absent("the plan states no dose per fraction (no TARGET dose reference with a prescription and fractions, no beam doses)")
    rx = max(per_fraction)
    source = next(t for t in plan.targets if t.dose_per_fraction_gy == rx)
    mu = sum(b.meterset or 0.0 for b in treatment)
    value = mu / rx
    message = f"{mu:.1f} MU per fraction (sum of BeamMeterset of {len(treatment)} treatment beams) / {rx:.3f} Gy per fraction ({source.name}) = {value:.1f} MU/Gy{note}"
    if rule.min_value <= value <= rule.max_value:
        return spec.passed(value, message)
    return spec.failed(value, message + f", outside {rule.min_value:g}-{rule.max_value:g} MU/Gy")
