"""Plan rules on the contours: target containment and margin, laterality, missing planes, self-intersecting
contours and organ volume plausibility (geometry: :mod:`rtcheck.dicom.contour_geometry`; volumes: the
DVH engine's, through the check's DVH cache, so they are the volumes every other output shows)."""

from __future__ import annotations

import numpy as np

from rtcheck.dicom import contour_geometry as geometry
from rtcheck.dicom.planset import PlanSet
from rtcheck.dicom.structures import Roi
from rtcheck.dvh import Combination
from rtcheck.grading.dvh_cache import DvhCache, unusable_reason
from rtcheck.grading.integrity_spec import IntegritySpec, rule_spec
from rtcheck.protocol.matching import StructureMatch
from rtcheck.protocol.plan_rules import PlanRule, RuleKind, side_of
from rtcheck.protocol.model import Protocol
from rtcheck.results import CheckOutcome

__all__ = ["CONTOUR_RULES", "contour_rule_outcomes"]

CONTOUR_RULES = (
    RuleKind.TARGET_CONTAINMENT, RuleKind.MARGIN, RuleKind.LATERALITY, RuleKind.CONTOUR_GAPS, RuleKind.SELF_INTERSECTION, RuleKind.ORGAN_VOLUME,
)
# PS3.3 C.7.6.2.1.1: "The x-axis is increasing to the left hand side of the patient" - whatever the
# patient's position on the couch, so the side of an organ is read from x alone.
_SIDE_SIGN = {"left": 1.0, "right": -1.0}


def _absent_structure(spec: IntegritySpec, name: str, match: StructureMatch) -> CheckOutcome:
    return spec.absent(f"structure missing: {match.reason or f'no ROI matches {name}'}")


def _rois(shape: Roi | Combination) -> list[Roi]:
    return shape.rois() if isinstance(shape, Combination) else [shape]


def _containment(rule: PlanRule, matches: dict[str, StructureMatch], cache: DvhCache) -> CheckOutcome:
    assert rule.inner is not None and rule.outer is not None and rule.max_value is not None
    spec = rule_spec(rule, metric=f"volume of {rule.inner} outside {rule.outer}", unit="cc", per_protocol=f"<= {rule.max_value:g} cc", structure=rule.inner)
    inner, outer = matches[rule.inner], matches[rule.outer]
    for name, match in ((rule.inner, inner), (rule.outer, outer)):
        if match.shape is None:
            return _absent_structure(spec, name, match)
    assert inner.shape is not None and outer.shape is not None
    unusable = unusable_reason(inner.shape) or unusable_reason(outer.shape)
    if unusable:
        return spec.unreadable(unusable)
    outside = Combination(f"{rule.inner} outside {rule.outer} (integrity {rule.id})", "subtract", (inner.shape, outer.shape))
    outside_cc = cache.dvh(outside).total_volume_cc
    inner_cc = cache.dvh(inner.shape).total_volume_cc
    share = outside_cc / inner_cc * 100.0 if inner_cc > 0 else 0.0
    message = f"{outside_cc:.2f} cc of {rule.inner} ({inner.label}, {inner_cc:.1f} cc; {share:.1f} %) lies outside {rule.outer} ({outer.label})"
    if outside_cc <= rule.max_value:
        return spec.passed(outside_cc, message)
    return spec.failed(outside_cc, message)


def _margin(rule: PlanRule, matches: dict[str, StructureMatch]) -> CheckOutcome:
    assert rule.inner is not None and rule.outer is not None and rule.min_value is not None and rule.max_value is not None
    band = f"mean {rule.min_value:g}-{rule.max_value:g} mm, smallest >= {rule.min_value - rule.tolerance_mm:g} mm"
    spec = rule_spec(rule, metric=f"margin of {rule.outer} around {rule.inner} (mean)", unit="mm", per_protocol=band, structure=rule.outer)
    inner, outer = matches[rule.inner], matches[rule.outer]
    for name, match in ((rule.inner, inner), (rule.outer, outer)):
        if match.shape is None:
            return _absent_structure(spec, name, match)
    if not isinstance(inner.shape, Roi) or not isinstance(outer.shape, Roi):
        return spec.unreadable("margins are measured between two contoured ROIs, not derived structures")
    unusable = unusable_reason(inner.shape) or unusable_reason(outer.shape)
    if unusable:
        return spec.unreadable(unusable)
    points = geometry.surface_points(inner.shape)
    outer_surface = geometry.surface_points(outer.shape)
    distance = geometry.nearest_distances_mm(points, outer_surface)
    signed = np.where(geometry.inside(outer.shape, points), distance, -distance)
    mean, smallest = float(signed.mean()), float(signed.min())
    message = (
        f"distance from each point of {rule.inner}'s surface ({inner.label}) to {rule.outer}'s ({outer.label}), negative outside it: "
        f"mean {mean:.1f} mm, smallest {smallest:.1f} mm, largest {float(signed.max()):.1f} mm ({len(points)} surface points)"
    )
    if rule.min_value <= mean <= rule.max_value and smallest >= rule.min_value - rule.tolerance_mm:
        return spec.passed(mean, message)
    return spec.failed(mean, message)


def _midline_x(plan_set: PlanSet) -> tuple[float, str] | None:
    """The patient's midline x (mm): the centroid of the EXTERNAL ROI (RTROIInterpretedType EXTERNAL)."""
    bodies = [r for r in plan_set.structure_set.rois if r.interpreted_type.upper() == "EXTERNAL" and r.is_volume]
    if len(bodies) != 1:
        return None
    centre = geometry.centroid_mm(bodies[0])
    return (float(centre[0]), f"the centroid of {bodies[0].name} (EXTERNAL)") if centre is not None else None


def _laterality(rule: PlanRule, name: str, protocol: Protocol, matches: dict[str, StructureMatch], plan_set: PlanSet, positions: str) -> CheckOutcome:
    side = side_of(protocol.structures[name].tg263)
    assert side is not None
    spec = rule_spec(rule, metric=f"side of {name}", unit="mm", per_protocol=f"centroid on the patient's {side} (> 0 mm)", structure=name,
                     roi_name=matches[name].label, suffix=name)
    match = matches[name]
    if match.shape is None:
        return _absent_structure(spec, name, match)
    if not isinstance(match.shape, Roi) or not match.shape.is_volume:
        return spec.unreadable(f"{name}: {unusable_reason(match.shape) or 'a derived structure has no side of its own'}")
    centre = geometry.centroid_mm(match.shape)
    if centre is None:
        return spec.unreadable(f"{name}: contours without area")
    midline = _midline_x(plan_set)
    if midline is None:
        # Without one body outline, the paired organ of the other side, when contoured, is the reference.
        partner_name = next(
            (n for n in rule.structures if n != name and side_of(protocol.structures[n].tg263) not in (side, None)
             and protocol.structures[n].tg263[:-2] == protocol.structures[name].tg263[:-2]), None,
        )
        partner = matches[partner_name].shape if partner_name is not None else None
        partner_centre = geometry.centroid_mm(partner) if isinstance(partner, Roi) and partner.is_volume else None
        if partner_centre is None:
            return spec.absent(f"{name}: no single EXTERNAL ROI and no contoured {partner_name or 'paired organ'} to tell the patient's midline")
        midline = (float(centre[0] + partner_centre[0]) / 2, f"halfway to {partner_name} ({matches[partner_name or ''].label})")
    offset = (float(centre[0]) - midline[0]) * _SIDE_SIGN[side]
    message = (
        f"{name} ({match.label}) centroid x {centre[0]:.1f} mm, midline x {midline[0]:.1f} mm ({midline[1]}): {abs(offset):.1f} mm to the patient's "
        f"{side if offset > 0 else ('right' if side == 'left' else 'left')} (patient coordinates: +x is the patient's left, PS3.3 C.7.6.2.1.1{positions})"
    )
    if offset > 0:
        return spec.passed(offset, message)
    return spec.failed(offset, message + f": not on the {side} side its name says")


def _gaps(rule: PlanRule, name: str, match: StructureMatch) -> CheckOutcome:
    limit = rule.max_value or 0.0
    spec = rule_spec(rule, metric="missing contour planes", unit="planes", per_protocol=f"<= {limit:g}", structure=name, roi_name=match.label, suffix=name)
    if match.shape is None:
        return _absent_structure(spec, name, match)
    gaps, shown = 0, []
    for roi in _rois(match.shape):
        if not roi.is_volume:
            return spec.unreadable(f"ROI {roi.name!r}: {roi.unusable_reason}")
        for gap in geometry.missing_planes(roi):
            gaps += gap.missing
            shown.append(f"{roi.name}: {gap.missing} between z {gap.below_mm:.1f} and {gap.above_mm:.1f} mm")
    spacing = "; ".join(f"{roi.name} every {s:.2f} mm" for roi in _rois(match.shape) if (s := geometry.typical_spacing_mm(roi)) is not None)
    label = f"{name} ({match.label})"
    if gaps <= limit:
        return spec.passed(float(gaps), f"{label}: {gaps} plane(s) missing inside the extent ({spacing or 'a single plane'})" + (f": {'; '.join(shown)}" if shown else ""))
    return spec.failed(float(gaps), f"{label}: {gaps} plane(s) missing inside the extent (planes {spacing}): {'; '.join(shown)}")


def _self_intersection(rule: PlanRule, name: str, match: StructureMatch) -> CheckOutcome:
    spec = rule_spec(rule, metric="self-intersecting contours", unit="crossings", per_protocol="0", structure=name, roi_name=match.label, suffix=name)
    if match.shape is None:
        return _absent_structure(spec, name, match)
    found = []
    for roi in _rois(match.shape):
        if not roi.is_volume:
            return spec.unreadable(f"ROI {roi.name!r}: {roi.unusable_reason}")
        found += [(roi.name, z, n) for z, n in geometry.self_intersections(roi)]
    total = sum(n for _, _, n in found)
    if not found:
        return spec.passed(0.0, f"{name} ({match.label}): no contour crosses itself")
    shown = "; ".join(f"{roi} z {z:.1f} mm: {n}" for roi, z, n in found[:5]) + (" ..." if len(found) > 5 else "")
    return spec.failed(float(total), f"{name} ({match.label}): {total} edge crossing(s) on {len(found)} plane(s): {shown} (the inside of such a contour is ambiguous)")


def _organ_volume(rule: PlanRule, name: str, match: StructureMatch, cache: DvhCache) -> CheckOutcome:
    plausible = dict(rule.volume_ranges)[name]
    unit = "cc" if plausible.unit == "cc" else "mm²"
    spec = rule_spec(rule, metric="volume" if plausible.unit == "cc" else "mean cross-section", unit=unit, per_protocol=str(plausible),
                     structure=name, roi_name=match.label, suffix=name,
                     source_note=f"range {plausible}: rtcheck default, {plausible.reason}" if plausible.reason else "")
    if match.shape is None:
        return _absent_structure(spec, name, match)
    unusable = unusable_reason(match.shape)
    if unusable:
        return spec.unreadable(unusable)
    volume_cc = cache.dvh(match.shape).total_volume_cc
    value, detail = volume_cc, f"{volume_cc:.1f} cc"
    if plausible.unit == "area_mm2":
        z = np.concatenate([roi.plane_positions_mm() for roi in _rois(match.shape)])
        spacing = geometry.typical_spacing_mm(_rois(match.shape)[0]) or 0.0
        length_mm = float(z.max() - z.min()) + spacing
        if length_mm <= 0:
            return spec.unreadable(f"{name}: a single plane without spacing; no length to divide the volume by")
        value = volume_cc * 1000.0 / length_mm
        detail = f"{volume_cc:.1f} cc over {length_mm:.0f} mm contoured = {value:.0f} mm² mean cross-section"
    message = f"{name} ({match.label}): {detail}"
    if plausible.low <= value <= plausible.high:
        return spec.passed(value, message)
    return spec.failed(value, f"{message}, outside the plausible {plausible}: check the contour before trusting its DVH")


def contour_rule_outcomes(
    rule: PlanRule, plan_set: PlanSet, protocol: Protocol, matches: dict[str, StructureMatch], cache: DvhCache
) -> list[CheckOutcome]:
    """The outcomes of one contour rule (one per structure for the rules over several structures)."""
    if rule.kind is RuleKind.TARGET_CONTAINMENT:
        return [_containment(rule, matches, cache)]
    if rule.kind is RuleKind.MARGIN:
        return [_margin(rule, matches)]
    if rule.kind is RuleKind.LATERALITY:
        beams = plan_set.facts.beams
        positions = f"; patient position {', '.join(sorted(set(beams.patient_positions)))}" if beams and beams.patient_positions else ""
        return [_laterality(rule, name, protocol, matches, plan_set, positions) for name in rule.structures]
    if rule.kind is RuleKind.CONTOUR_GAPS:
        return [_gaps(rule, name, matches[name]) for name in rule.structures]
    if rule.kind is RuleKind.SELF_INTERSECTION:
        return [_self_intersection(rule, name, matches[name]) for name in rule.structures]
    return [_organ_volume(rule, name, matches[name], cache) for name in rule.structures]
