"""What the command line does, callable from Python.

>>> from rtcheck.api import check_paths, dvh_statistics
>>> results = check_paths(["sample_plans/cr-pr-compliant"], "escc-induction-icrt-ccrt", "cr-pr")
>>> results[0].verdict
<Status.PER_PROTOCOL: 'per_protocol'>
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from rtcheck.dicom.planset import build_dvh_set, build_plan_set, load_inputs, select_plans
from rtcheck.dvh import EngineOptions, compute_dvh
from rtcheck.errors import MetricUndefinedError, SelectionError
from rtcheck.evaluation import CheckOptions, check_plan_set
from rtcheck.metrics.evaluate import metric_value
from rtcheck.metrics.grammar import Metric, parse_metric
from rtcheck.protocol.loader import find_protocol
from rtcheck.protocol.matching import normalise_name
from rtcheck.protocol.model import Protocol
from rtcheck.results import CheckResult


def check_paths(
    paths: list[str | Path],
    protocol: str | Protocol,
    arm: str,
    *,
    plan: str | None = None,
    options: CheckOptions = CheckOptions(),
) -> list[CheckResult]:
    """Check every plan found in ``paths`` (or the one ``plan`` selects) against ``arm`` of ``protocol``."""
    if isinstance(protocol, str):
        protocol = find_protocol(protocol)
    protocol.arm(arm)  # an unknown arm is a usage error before any file is read
    unknown = [name for name, _ in options.structure_map if name not in protocol.structures]
    if unknown:
        raise SelectionError(
            f"--map names structure(s) {', '.join(map(repr, unknown))} that protocol {protocol.id} does not define; "
            f"its structures: {', '.join(protocol.structures)}"
        )
    inputs = load_inputs(paths)
    results = []
    for selected in select_plans(inputs, plan):
        plan_set = build_plan_set(selected, inputs)
        result = check_plan_set(plan_set, protocol, arm, options)
        result.notes[:0] = inputs.skipped
        results.append(result)
    return results


@dataclass
class StructureStatistics:
    """DVH statistics of one ROI (doses Gy, volumes cc); ``metrics`` maps each metric as given to its value."""

    name: str
    roi_number: int
    volume_cc: float
    outside_dose_grid_pct: float | None
    min_gy: float | None
    mean_gy: float | None
    max_gy: float | None
    metrics: dict[str, float | None] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def dvh_statistics(
    paths: list[str | Path],
    *,
    structures: list[str] | None = None,
    metrics: list[str] | None = None,
    rx_gy: float | None = None,
    plan: str | None = None,
    engine: EngineOptions = EngineOptions(),
) -> tuple[list[StructureStatistics], list[str]]:
    """DVH statistics of the ROIs (all, or those named) in the inputs, and notes about the inputs.

    A % of prescription metric uses ``rx_gy``, else the plan's highest prescription.
    """
    parsed: list[Metric] = [parse_metric(m) for m in (metrics or [])]
    inputs = load_inputs(paths)
    plan_set = build_dvh_set(inputs, plan)
    if rx_gy is None and plan_set.plan is not None:
        doses = [t.total_dose_gy for t in plan_set.plan.targets if t.total_dose_gy]
        rx_gy = max(doses) if doses else None
    if rx_gy is None and any(m.needs_prescription for m in parsed):
        needing = ", ".join(m.text for m in parsed if m.needs_prescription)
        raise SelectionError(f"{needing} refer to a prescription: pass --rx-gy (no RT Plan gives one)")

    rois = plan_set.structure_set.rois
    if structures:
        wanted = []
        for name in structures:
            hits = [r for r in rois if r.name == name] or [r for r in rois if normalise_name(r.name) == normalise_name(name)]
            if not hits:
                raise SelectionError(f"--structure {name!r} matches no ROI; ROIs: {', '.join(r.name for r in rois)}")
            wanted.extend(h for h in hits if h not in wanted)
        rois = wanted
    spacing = plan_set.structure_set.typical_plane_spacing_mm()
    rows: list[StructureStatistics] = []
    for roi in rois:
        if not roi.is_volume:
            rows.append(
                StructureStatistics(roi.name, roi.number, 0.0, None, None, None, None, {m.text: None for m in parsed}, [roi.unusable_reason or ""])
            )
            continue
        dvh = compute_dvh(roi, plan_set.dose, plane_spacing_mm=spacing, options=engine)
        if dvh.volume_cc <= 0:
            rows.append(
                StructureStatistics(
                    roi.name, roi.number, dvh.total_volume_cc, 100.0, None, None, None, {m.text: None for m in parsed},
                    ["the structure lies entirely outside the dose grid"],
                )
            )
            continue
        row = StructureStatistics(
            roi.name, roi.number, dvh.total_volume_cc, dvh.fraction_outside * 100.0, dvh.min_gy, dvh.mean_gy, dvh.max_gy
        )
        if dvh.outside_volume_cc > 0:
            row.notes.append(f"{dvh.fraction_outside * 100:.1f} % of the volume lies outside the dose grid; statistics cover the part inside")
        for metric in parsed:
            try:
                row.metrics[metric.text] = metric_value(metric, dvh, rx_gy)
            except MetricUndefinedError as exc:
                row.metrics[metric.text] = None
                row.notes.append(str(exc))
        rows.append(row)
    return rows, inputs.skipped + plan_set.notes
