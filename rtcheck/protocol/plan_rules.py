"""The model of an arm's plan rules (``plan_rules:``; read by :mod:`rtcheck.protocol.plan_rules_schema`): dose calculation, beams and technique, approval and contour
geometry, checked from the DICOM itself (``rtcheck.grading.integrity``).

Each rule states its ``source`` (or, with ``rtcheck_default: true``, why rtcheck chose the value),
whether it ``counts`` towards the plan's verdict and what breaking it is (``on_failure``).  Example::

    plan_rules:
      - id: dose-grid
        rule: dose_grid
        max_mm: 3
        source: NRG/IROC dose calculation requirement (protocol section 6)
      - id: ptv-contains-gtv
        rule: target_containment
        inner: GTV
        outer: PTV
        max_outside_cc: 0.1
        source: ICRU 62
"""

from __future__ import annotations

from dataclasses import dataclass

from rtcheck.codes import CodedWord
from rtcheck.protocol.organ_volumes import OrganRange

__all__ = ["Counts", "OnFailure", "PlanRule", "RuleKind", "side_of"]


class RuleKind(CodedWord):
    """What a plan rule checks (``rule:``)."""

    DOSE_GRID = "dose_grid"  # max_mm: largest dose grid spacing along x, y, z
    HETEROGENEITY_CORRECTION = "heterogeneity_correction"  # the dose was calculated with tissue heterogeneity (IMAGE)
    DOSE_TYPE = "dose_type"  # allowed: DoseType values
    CALCULATION_ALGORITHM = "calculation_algorithm"  # allowed: algorithm names
    RADIATION_TYPE = "radiation_type"  # allowed: RadiationType values
    BEAM_ENERGY = "beam_energy"  # allowed: nominal energies (MV photons, MeV electrons/ions)
    TECHNIQUE = "technique"  # allowed: 3D, IMRT, VMAT, conformal arc, ion scanning, ion passive
    ISOCENTRES = "isocentres"  # max: number of distinct isocentres of the treatment beams
    TREATMENT_MACHINE = "treatment_machine"  # one machine for every treatment beam (allowed: optional names)
    MU_PER_GY = "mu_per_gy"  # min, max: MU per fraction per Gy per fraction
    APPROVAL = "approval"  # allowed: ApprovalStatus values
    TARGET_CONTAINMENT = "target_containment"  # inner, outer, max_outside_cc
    MARGIN = "margin"  # inner, outer, min_mm, max_mm: mean margin band; smallest margin >= min_mm - tolerance_mm
    LATERALITY = "laterality"  # structures: each on the side its name says
    CONTOUR_GAPS = "contour_gaps"  # structures, max_missing_planes
    SELF_INTERSECTION = "self_intersection"  # structures
    ORGAN_VOLUME = "organ_volume"  # structures; ranges: {structure: {min_cc, max_cc} | {min_area_mm2, max_area_mm2}}


class Counts(CodedWord):
    """Whether a rule's outcome counts towards the plan's verdict.

    ``required``: counts, and a rule the DICOM gives no information for is not evaluated and counts;
    ``if_present``: counts when the information (a structure, an element) is there, else reported only;
    ``informational``: reported, never counts.
    """

    REQUIRED = "required"
    IF_PRESENT = "if_present"
    INFORMATIONAL = "informational"


class OnFailure(CodedWord):
    """The status of a broken rule (``on_failure:``)."""

    DEVIATION = "deviation_unacceptable"
    VARIATION = "variation_acceptable"


@dataclass(frozen=True)
class PlanRule:
    """One rule of ``plan_rules``; which fields mean something depends on ``kind`` (see :class:`RuleKind`).

    Units: ``max_value``/``min_value`` are mm (dose_grid, margin), cc (target_containment), MU/Gy (mu_per_gy)
    or counts (isocentres, contour_gaps).  ``tolerance_mm`` is the margin rule's allowance for contour
    discretisation.  ``volume_ranges`` maps a structure to its plausible range (organ_volume).
    """

    id: str
    kind: RuleKind
    source: str
    counts: Counts
    on_failure: OnFailure
    rtcheck_default: bool = False
    max_value: float | None = None
    min_value: float | None = None
    allowed: tuple[str, ...] = ()
    structures: tuple[str, ...] = ()
    inner: str | None = None
    outer: str | None = None
    tolerance_mm: float = 0.0
    volume_ranges: tuple[tuple[str, OrganRange], ...] = ()

    @property
    def source_text(self) -> str:
        return f"rtcheck default: {self.source}" if self.rtcheck_default else self.source


def side_of(tg263: str) -> str | None:
    """"left" / "right" for a TG-263 name with the laterality suffix _L / _R, else None."""
    if tg263.endswith("_L"):
        return "left"
    if tg263.endswith("_R"):
        return "right"
    return None
