"""Results of a check: what renderers read (they compute nothing themselves)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from rtcheck.codes import CodedWord
from rtcheck.protocol.model import ConstraintKind

if TYPE_CHECKING:
    from rtcheck.dicom.summation import DoseComparison
    from rtcheck.dvh.histogram import DoseVolumeHistogram
    from rtcheck.dvh.tps import TpsComparison

__all__ = [
    "CheckKind", "CheckOutcome", "CheckResult", "DvhMarker", "MarkerAxis", "Status", "StructureStatistics", "StructureSummary", "TargetSummary",
    "worst",
]


class Status(str, enum.Enum):
    """The verdict of a check, and of a plan (the worst of the checks that count)."""

    PER_PROTOCOL = "per_protocol"
    VARIATION_ACCEPTABLE = "variation_acceptable"
    DEVIATION_UNACCEPTABLE = "deviation_unacceptable"
    NOT_EVALUATED = "not_evaluated"


# Worst last: a deviation outranks a check that could not be made, which outranks a variation.
_SEVERITY = {
    Status.PER_PROTOCOL: 0,
    Status.VARIATION_ACCEPTABLE: 1,
    Status.NOT_EVALUATED: 2,
    Status.DEVIATION_UNACCEPTABLE: 3,
}


def worst(statuses: list[Status]) -> Status:
    """The overall verdict of some statuses; with none, nothing was shown to comply."""
    if not statuses:
        return Status.NOT_EVALUATED
    return max(statuses, key=_SEVERITY.__getitem__)


class CheckKind(CodedWord):
    """What a check grades: an item of a prescription, a DVH constraint of a structure, or the plan's
    integrity (dose calculation, beams, consistency of the objects, contour geometry: rtcheck.grading.integrity)."""

    PRESCRIPTION = "prescription"
    DVH = "dvh"
    INTEGRITY = "integrity"


class MarkerAxis(CodedWord):
    """The DVH axis a marker's thresholds lie on (``DvhMarker.free_axis``)."""

    DOSE = "dose"
    VOLUME = "volume"


@dataclass
class CheckOutcome:
    """One graded check: a prescription item or a DVH constraint."""

    id: str
    kind: CheckKind
    structure: str
    roi_name: str | None
    metric: str
    value: float | None
    unit: str
    per_protocol: str
    variation_acceptable: str | None
    status: Status
    message: str
    # The protocol's kind of the check; ``counts``: whether it makes the plan's verdict (a required
    # check always does, a graded-if-contoured one when its structure is contoured, an informational never).
    constraint_kind: ConstraintKind = ConstraintKind.REQUIRED
    counts: bool = True
    source: str = ""
    # Where the check lies on its structure's DVH, for plots (DVH checks with a value only).
    marker: DvhMarker | None = None
    # Radiobiological checks (EQD2/BED): what the value is, e.g. "EQD2, α/β = 2 Gy" or
    # "cumulative EQD2 (prior ... + current), α/β = 2 Gy, ..."; None for a physical dose check.
    biology: str | None = None
    # The same metric on the physical dose of the current course (biological checks only).
    physical_value: float | None = None


@dataclass
class DvhMarker:
    """A DVH check drawn on its structure's cumulative DVH: dose in Gy, volume in % of the
    structure's volume inside the dose grid (what ``DoseVolumeHistogram.cumulative`` shows, as %).

    For D/DC/V/CV metrics the value is the point (``dose_gy``, ``volume_pct``) and each
    threshold lies on the same curve axis as the value: ``free_axis`` "dose" (thresholds in Gy,
    at ``volume_pct``) or "volume" (thresholds in %, at ``dose_gy``).  For Mean/Max/Min
    ``volume_pct`` is None and the value and thresholds are doses (vertical lines).
    ``thresholds`` maps "per_protocol" / "variation_acceptable" to that position.
    A CV or DC metric counts the cold side, so it is drawn at 100 % minus its volume.
    """

    structure: str
    dose_gy: float
    volume_pct: float | None
    free_axis: MarkerAxis
    thresholds: dict[str, float] = field(default_factory=dict)


@dataclass
class TargetSummary:
    """A plan prescription as read from the RT Plan, with where each number came from."""

    name: str
    dose_gy: float | None
    fractions: int | None
    dose_per_fraction_gy: float | None
    sources: dict[str, str] = field(default_factory=dict)


@dataclass
class StructureSummary:
    """DVH summary of a structure the check used (doses Gy, volumes cc)."""

    structure: str
    roi_name: str
    roi_number: int | None  # None for a structure derived from several ROIs
    volume_cc: float
    outside_dose_grid_pct: float
    min_gy: float
    mean_gy: float
    max_gy: float


@dataclass
class CheckResult:
    protocol_id: str
    protocol_title: str
    protocol_sha256: str
    arm: str
    arm_title: str
    plan_label: str
    plan_sop_instance_uid: str
    plan_fractions: int | None
    patient_id: str
    targets: list[TargetSummary]
    checks: list[CheckOutcome]
    structures: list[StructureSummary] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    input_files: list[str] = field(default_factory=list)
    # The DVHs the check computed, by ROI number (structures derived from several ROIs
    # are left out); kept for comparisons and plots, not rendered as such.
    dvhs_by_roi: dict[int, "DoseVolumeHistogram"] = field(default_factory=dict, repr=False)
    # Against the planning system's DVHs in the RT Dose, for the structures above it has DVHs of (rtcheck.dvh.tps).
    tps_comparison: list[TpsComparison] = field(default_factory=list)
    # Identity for reports (DICOM DA dates as written, YYYYMMDD; "" when absent).
    patient_name: str = ""
    structure_set_uid: str = ""
    dose_uids: list[str] = field(default_factory=list)
    plan_date: str = ""
    study_date: str = ""
    # The DVH of every structure the check evaluated, by the protocol's structure name
    # (derived structures included), for plots.
    dvhs_by_structure: dict[str, "DoseVolumeHistogram"] = field(default_factory=dict, repr=False)
    # RT Doses given besides the one used (BEAM doses besides a PLAN dose...), compared with it (rtcheck.dicom.summation).
    dose_comparisons: list["DoseComparison"] = field(default_factory=list)

    @property
    def verdict(self) -> Status:
        return worst([c.status for c in self.checks if c.counts])

    @property
    def counted(self) -> list[CheckOutcome]:
        """The checks that make the verdict."""
        return [c for c in self.checks if c.counts]


@dataclass
class StructureStatistics:
    """DVH statistics of one ROI for ``rtcheck dvh`` (doses Gy, volumes cc); ``metrics`` maps each metric as given
    to its value."""

    name: str
    roi_number: int
    volume_cc: float
    outside_dose_grid_pct: float | None
    min_gy: float | None
    mean_gy: float | None
    max_gy: float | None
    metrics: dict[str, float | None] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    tps: TpsComparison | None = None  # with compare_tps: against the planning system's DVH, None without one
