"""A check's DVHs against the planning system's, stored in the plan's RT Dose (rtcheck.dvh.tps)."""

from __future__ import annotations

from rtcheck.dicom.dose import DoseGrid
from rtcheck.dicom.plan import Plan
from rtcheck.dvh import DoseVolumeHistogram
from rtcheck.dvh.tps import TpsComparison, compare_with_tps, planning_system_dvhs
from rtcheck.results import StructureSummary

__all__ = ["compare_check_with_tps", "prescription_levels_gy"]


def prescription_levels_gy(plan: Plan | None) -> list[float]:
    """The plan's prescribed total doses [Gy], in the plan's order (none without a plan)."""
    if plan is None:
        return []
    return [t.total_dose_gy for t in plan.targets if t.total_dose_gy]


def compare_check_with_tps(
    plan: Plan, dose: DoseGrid, structures: list[StructureSummary], dvhs_by_roi: dict[int, DoseVolumeHistogram]
) -> tuple[list[TpsComparison], list[str]]:
    """Comparisons of the structures a check evaluated that the RT Dose has DVHs of, and notes on the stored DVHs.

    Dose tolerances are relative to the plan's highest prescription; RELATIVE
    stored doses are converted with the plan's prescription when it has one level.
    """
    prescriptions = prescription_levels_gy(plan)
    rx_gy = max(prescriptions) if prescriptions else None
    single = prescriptions[0] if len(set(prescriptions)) == 1 else None
    tps, notes = planning_system_dvhs(dose, rx_gy=rx_gy, relative_rx_gy=single, announce=False)
    comparisons: list[TpsComparison] = []
    for summary in structures:
        ours = dvhs_by_roi.get(summary.roi_number) if summary.roi_number is not None else None
        theirs = tps.get(summary.roi_number) if summary.roi_number is not None else None
        if ours is None or theirs is None:
            continue
        comparison = compare_with_tps(ours, theirs, rx_gy=rx_gy)
        comparison.structure = summary.structure
        comparison.roi_name = summary.roi_name
        comparisons.append(comparison)
    return comparisons, notes
