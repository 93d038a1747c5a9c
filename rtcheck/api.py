"""What the command line does, callable from Python.

Each plan set is linked once (:mod:`rtcheck.dicom.references`): ``check_paths`` links
what it reads; ``batch`` and ``listen`` link while they find sets and pass each set to
:func:`check_linked_set`.

>>> from rtcheck.api import check_paths, dvh_statistics
>>> results = check_paths(["sample_plans/cr-pr-compliant"], "escc-induction-icrt-ccrt", "cr-pr")
>>> results[0].verdict
<Status.PER_PROTOCOL: 'per_protocol'>
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rtcheck.dicom.planset import (
    LoadedInputs, build_dvh_set, build_plan_set, load_inputs, load_linked, select_sets, with_structure_set,
)
from rtcheck.dicom.plansum import build_plan_sum
from rtcheck.dicom.references import LinkedSet
from rtcheck.dicom.structures import Roi
from rtcheck.dvh import EngineOptions
from rtcheck.dvh.tps import TpsComparison, TpsDvh, compare_with_tps, planning_system_dvhs
from rtcheck.errors import MetricUndefinedError, SelectionError
from rtcheck.grading import CheckOptions, DvhCache, check_plan_set, choose_arm
from rtcheck.grading.tps import prescription_levels_gy
from rtcheck.metrics.evaluate import MetricContext, evaluate_metric
from rtcheck.metrics.grammar import Metric, parse_metric
from rtcheck.protocol.library import find_protocol
from rtcheck.protocol.matching import normalise_name
from rtcheck.protocol.model import Protocol
from rtcheck.results import CheckResult, StructureStatistics


def checkable_protocol(protocol: str | Protocol, arm: str, options: CheckOptions = CheckOptions()) -> Protocol:
    """The protocol (loaded when given by id), after the usage errors a check can meet before reading any
    file: an unknown arm or one without radiotherapy, --map naming a structure the protocol lacks."""
    if isinstance(protocol, str):
        protocol = find_protocol(protocol)
    protocol.ensure_checkable(arm)
    unknown = [name for name, _ in options.structure_map if name not in protocol.structures]
    if unknown:
        raise SelectionError(
            f"--map names structure(s) {', '.join(map(repr, unknown))} that protocol {protocol.id} does not define; "
            f"its structures: {', '.join(protocol.structures)}"
        )
    return protocol


def check_paths(
    paths: list[str | Path],
    protocol: str | Protocol,
    arm: str,
    *,
    plan: str | None = None,
    options: CheckOptions = CheckOptions(),
    structure_set: str | Path | None = None,
    sum_plans: bool = False,
) -> list[CheckResult]:
    """Check every plan found in ``paths`` (or the one ``plan`` selects) against ``arm`` of ``protocol``.

    ``structure_set``: an RT Structure Set file to use instead of the one the plans reference (``--structure-set``;
    same patient and Frame of Reference, said in the result's notes).  ``sum_plans`` (``--sum``): the plans
    found are one course, checked as one (:mod:`rtcheck.dicom.plansum`), in the order they were found."""
    protocol = checkable_protocol(protocol, arm, options)
    inputs = load_inputs(paths)
    sets = select_sets(inputs, plan)
    if structure_set is not None:
        sets = [with_structure_set(linked, inputs, structure_set) for linked in sets]
    if sum_plans:
        plan_set = build_plan_sum(sets, inputs)
        chosen, note = choose_arm(plan_set, protocol, options) if arm == "auto" else (arm, "")
        notes = [*inputs.skipped, *(n for s in sets for n in s.notes), *([note] if note else [])]
        return [check_plan_set(plan_set, protocol, chosen, options, input_notes=notes)]
    results = []
    for linked in sets:
        results.append(_check_linked(linked, inputs, protocol, arm, options, input_notes=inputs.skipped))
    return results


def check_linked_set(
    linked: LinkedSet, protocol: str | Protocol, arm: str, *, options: CheckOptions = CheckOptions()
) -> CheckResult:
    """Check one plan set linked already (by batch discovery or the listener's catalogue, see
    :func:`rtcheck.dicom.references.link`) against ``arm`` of ``protocol``: its files are read, not linked again."""
    protocol = checkable_protocol(protocol, arm, options)
    return _check_linked(linked, load_linked(linked), protocol, arm, options, input_notes=[])


def check_linked_course(
    sets: Sequence[LinkedSet], protocol: str | Protocol, arm: str, *, options: CheckOptions = CheckOptions()
) -> CheckResult:
    """Check the plan sets ``sets`` (two or more, in phase order, as :func:`rtcheck.dicom.references.group_courses`
    grouped them for batch) as one course, like ``rtcheck check --sum``: their files are read, not linked again."""
    protocol = checkable_protocol(protocol, arm, options)
    inputs = load_linked(*sets)
    plan_set = build_plan_sum(list(sets), inputs)
    chosen, note = choose_arm(plan_set, protocol, options) if arm == "auto" else (arm, "")
    notes = [*(n for s in sets for n in s.notes), *([note] if note else [])]
    return check_plan_set(plan_set, protocol, chosen, options, input_notes=notes)


def _check_linked(
    linked: LinkedSet, inputs: LoadedInputs, protocol: Protocol, arm: str, options: CheckOptions, *, input_notes: list[str]
) -> CheckResult:
    plan_set = build_plan_set(linked, inputs)
    chosen, note = choose_arm(plan_set, protocol, options) if arm == "auto" else (arm, "")
    notes = [*input_notes, *linked.notes, *([note] if note else [])]
    return check_plan_set(plan_set, protocol, chosen, options, input_notes=notes)


def dvh_statistics(
    paths: list[str | Path],
    *,
    structures: list[str] | None = None,
    metrics: list[str] | None = None,
    rx_gy: float | None = None,
    plan: str | None = None,
    engine: EngineOptions = EngineOptions(),
    compare_tps: bool = False,
    fractions: int | None = None,
) -> tuple[list[StructureStatistics], list[str]]:
    """DVH statistics of the ROIs (all, or those named) in the inputs, and notes about the inputs.

    A % of prescription metric uses ``rx_gy``, else the plan's highest prescription.
    With ``compare_tps`` each row's ``tps`` compares it with the planning system's
    DVH stored in the RT Dose (see :mod:`rtcheck.dvh.tps`; the dose tolerance is
    relative to the same prescription).
    EQD2/BED metrics (``Max[EQD2Gy(a/b=2)]``) are computed per voxel with
    ``fractions``, else the plan's (one fraction group), and the metric's
    alpha/beta, else the ROI's default (rtcheck.radiobiology.alpha_beta).
    """
    parsed: list[Metric] = [parse_metric(m) for m in (metrics or [])]
    inputs = load_inputs(paths)
    plan_set = build_dvh_set(inputs, plan)
    given_rx = rx_gy
    prescriptions = prescription_levels_gy(plan_set.plan)
    if rx_gy is None and prescriptions:
        rx_gy = max(prescriptions)
    rx_notes: list[str] = []
    if any(m.needs_prescription for m in parsed):
        needing = ", ".join(m.text for m in parsed if m.needs_prescription)
        if rx_gy is None:
            gap = plan_set.plan.prescription_gap if plan_set.plan is not None else "no RT Plan among the inputs"
            raise SelectionError(f"{needing} refer to a prescription: pass --rx-gy (the plan gives none: {gap or 'no prescribed dose'})")
        if given_rx is not None:
            rx_notes.append(f"{needing}: % of {rx_gy:g} Gy, the prescription given with --rx-gy")
        else:
            assert plan_set.plan is not None
            top = max((t for t in plan_set.plan.targets if t.total_dose_gy), key=lambda t: t.total_dose_gy or 0.0)
            rx_notes.append(
                f"{needing}: % of {rx_gy:g} Gy, the plan's highest prescription ({top.name!r}, from {top.sources.get('total_dose_gy', '?')}); "
                "pass --rx-gy for another"
            )
    tps: dict[int, TpsDvh] = {}
    tps_notes: list[str] = []
    if compare_tps:
        single = given_rx if given_rx is not None else (prescriptions[0] if len(set(prescriptions)) == 1 else None)
        tps, tps_notes = planning_system_dvhs(plan_set.dose, rx_gy=rx_gy, relative_rx_gy=single, announce=True)

    rois = plan_set.structure_set.rois
    if structures:
        wanted: list[Roi] = []
        for name in structures:
            hits = [r for r in rois if r.name == name] or [r for r in rois if normalise_name(r.name) == normalise_name(name)]
            if not hits:
                raise SelectionError(f"--structure {name!r} matches no ROI; ROIs: {', '.join(r.name for r in rois)}")
            wanted.extend(h for h in hits if h not in wanted)
        rois = wanted
    cache = DvhCache(plan_set.dose, engine, slice_positions_mm=plan_set.slice_positions_mm)
    biological = None
    if any(m.biology is not None for m in parsed):
        from rtcheck.grading.statistics import BiologicalDvhs, course_fractions

        bio_fractions = course_fractions(plan_set.plan, fractions, parsed)
        assert bio_fractions is not None  # course_fractions raises SelectionError when it has none
        biological = BiologicalDvhs(cache, bio_fractions)
    rows: list[StructureStatistics] = []
    for roi in rois:
        unmatched = [f"the planning system has a DVH of it ({tps[roi.number].source}) but rtcheck none"] if roi.number in tps else []
        if not roi.is_volume:
            rows.append(
                StructureStatistics(
                    roi.name, roi.number, 0.0, None, None, None, None, {m.text: None for m in parsed}, [roi.unusable_reason or "", *unmatched]
                )
            )
            continue
        dvh = cache.dvh(roi)
        if dvh.volume_cc <= 0:
            rows.append(
                StructureStatistics(
                    roi.name, roi.number, dvh.total_volume_cc, 100.0, None, None, None, {m.text: None for m in parsed},
                    ["the structure lies entirely outside the dose grid", *unmatched],
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
                if metric.biology is not None and biological is not None:
                    # EQD2/BED: the DVH on the converted grid (rtcheck.grading.statistics).
                    row.metrics[metric.text], note = biological.value(metric, roi)
                    row.notes += [note] if note else []
                    continue
                row.metrics[metric.text] = evaluate_metric(metric, roi.name, MetricContext({roi.name: dvh}, grid=plan_set.dose), rx_gy)
            except MetricUndefinedError as exc:
                row.metrics[metric.text] = None
                row.notes.append(str(exc))
        if roi.number in tps:
            row.tps = compare_with_tps(dvh, tps[roi.number], rx_gy=rx_gy)
            row.notes += row.tps.notes
        rows.append(row)
    return rows, inputs.skipped + plan_set.notes + rx_notes + tps_notes
