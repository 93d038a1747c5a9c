"""rtcheck's own checks that the objects of a plan set belong together (the "wrong CT" class): patient,
study and Frame of Reference agree across RT Plan, RT Structure Set, RT Dose and the images the structure
set was drawn on; that image series is the one among the inputs and covers the contours; dates in order;
the plan's approval.  They run for every arm: agreement between objects needs no protocol threshold.

A disagreement is a deviation (it counts); what the files do not carry is not evaluated and, for the
optional elements (dates, images), does not count.  Messages name files and elements, never the patient's
name or birth date (reports may be anonymised).
"""

from __future__ import annotations

from collections.abc import Callable

from rtcheck.dicom.identity import ImageSeries, ObjectIdentity
from rtcheck.dicom.planset import PlanSet
from rtcheck.grading.integrity_spec import IntegritySpec, rule_spec
from rtcheck.grading.outcome import CheckSpec
from rtcheck.protocol.plan_rules import Counts, PlanRule
from rtcheck.results import CheckKind, CheckOutcome, Status

__all__ = ["approval_outcome", "object_outcomes"]

_SOURCE = "rtcheck: the objects of one plan set describe one patient, study and Frame of Reference (PS3.3 C.7.1.1, C.7.2.1, C.7.4.1)"
_CT_SOURCE = "rtcheck: the structure set's contours are drawn on the image series it references (PS3.3 C.8.8.5 RTReferencedSeriesSequence)"
_DATE_SOURCE = "rtcheck: an object is made after its study, and a dose after the last change of its plan (PS3.3 C.8.8.9 RTPlanDate)"
# Contours within this (mm) beyond the images' extent still count as covered (rounding of positions).
_COVERAGE_TOLERANCE_MM = 0.5


def _spec(check_id: str, metric: str, per_protocol: str, source: str, counts: Counts = Counts.REQUIRED) -> IntegritySpec:
    return IntegritySpec(
        CheckSpec(id=check_id, kind=CheckKind.INTEGRITY, structure="objects", roi_name=None, metric=metric, unit="",
                  per_protocol=per_protocol, variation_acceptable=None, source=source),
        counts,
    )


def _name(identity: ObjectIdentity) -> str:
    return f"{identity.role} {identity.path.name}"


def _normalised_name(name: str) -> str:
    # PN components are separated by '^'; trailing empty components and case carry no identity.
    return "^".join(part.strip() for part in name.upper().split("^")).rstrip("^")


def _agreement(
    check_id: str, metric: str, element: str, objects: list[ObjectIdentity], value: Callable[[ObjectIdentity], str], *, show: bool
) -> CheckOutcome:
    """Whether every object that carries ``element`` gives the same value (``show``: values may be printed)."""
    spec = _spec(check_id, metric, "the same in every object", _SOURCE, Counts.IF_PRESENT)
    carrying = [o for o in objects if value(o)]
    lacking = [_name(o) for o in objects if not value(o)]
    lack = f"; {', '.join(lacking)} without {element}" if lacking else ""
    if len(carrying) < 2:
        return spec.absent(f"fewer than two objects carry {element}{lack}")
    reference = carrying[0]
    differing = [o for o in carrying[1:] if value(o) != value(reference)]
    if differing:
        detail = "; ".join(
            f"{_name(o)}" + (f" has {value(o)!r}, {_name(reference)} {value(reference)!r}" if show else f" differs from {_name(reference)}")
            for o in differing
        )
        return spec.failed(None, f"{element} differs between the objects: {detail}. They may not belong together", Status.DEVIATION_UNACCEPTABLE)
    return spec.passed(None, f"{element} agrees across {len(carrying)} objects{lack}")


def _drawn_on(plan_set: PlanSet) -> tuple[list[tuple[str, int]], ImageSeries | None, list[ImageSeries]]:
    """The series the structure set references, the one of them among the inputs (None) and the others there."""
    ss = plan_set.facts.structure_set
    referenced = list(ss.referenced_series) if ss is not None else []
    uids = {uid for uid, _ in referenced}
    present = [s for s in plan_set.facts.images if s.series_uid in uids]
    others = [s for s in plan_set.facts.images if s.series_uid not in uids]
    return referenced, (present[0] if present else None), others


def _image_outcomes(plan_set: PlanSet) -> tuple[list[CheckOutcome], ImageSeries | None]:
    series_spec = _spec("images-series", "image series of the contours", "among the inputs: the series the structure set references", _CT_SOURCE, Counts.IF_PRESENT)
    cover_spec = _spec("images-coverage", "contours inside the imaged extent", "every contour plane within the images' z extent", _CT_SOURCE, Counts.IF_PRESENT)
    referenced, series, others = _drawn_on(plan_set)
    if not referenced:
        reason = "the structure set has no RTReferencedSeriesSequence (3006,0014): it does not say which images its contours are drawn on"
        if others:
            return [series_spec.unreadable(reason), cover_spec.absent(reason)], None
        return [series_spec.absent(reason), cover_spec.absent(reason)], None
    names = ", ".join(uid for uid, _ in referenced)
    if series is None:
        if not others:
            why = f"no image of series {names} (referenced by the structure set) is among the inputs"
            return [series_spec.absent(why), cover_spec.absent(why)], None
        listing = "; ".join(f"{s.modality} series {s.series_uid} ({len(s.slices)} images)" for s in others)
        return [
            series_spec.failed(None, f"the images among the inputs ({listing}) are not the series the structure set was drawn on ({names}): a wrong image set", Status.DEVIATION_UNACCEPTABLE),
            cover_spec.absent(f"no image of series {names} among the inputs"),
        ], None
    expected = dict(referenced).get(series.series_uid, 0)
    extra = f"; other series among the inputs, not used: {', '.join(s.series_uid for s in others)}" if others else ""
    outcomes = [series_spec.passed(None, f"{series.modality} series {series.series_uid}: {len(series.slices)} images among the inputs{extra}")]
    extent = series.z_extent_mm()
    if expected and len(series.slices) < expected:
        outcomes.append(cover_spec.absent(f"{len(series.slices)} of the {expected} images the structure set lists (ContourImageSequence) are among the inputs: coverage is judged on a whole series"))
    elif extent is None:
        outcomes.append(cover_spec.absent("the images carry no ImagePositionPatient (0020,0032)"))
    else:
        low, high = extent
        outside = []
        for roi in plan_set.structure_set.rois:
            if not roi.is_volume:
                continue
            z = roi.plane_positions_mm()
            beyond = z[(z < low - _COVERAGE_TOLERANCE_MM) | (z > high + _COVERAGE_TOLERANCE_MM)]
            if beyond.size:
                outside.append(f"{roi.name} ({beyond.size} plane(s), z {beyond.min():.1f} to {beyond.max():.1f} mm)")
        message = f"images cover z {low:.1f} to {high:.1f} mm"
        if outside:
            outcomes.append(cover_spec.failed(None, f"{message}; contours outside them: {'; '.join(outside)}", Status.DEVIATION_UNACCEPTABLE))
        else:
            outcomes.append(cover_spec.passed(None, f"{message}; every contour plane lies within"))
    return outcomes, series


def _date_outcomes(objects: list[ObjectIdentity], plan: ObjectIdentity | None) -> list[CheckOutcome]:
    study_spec = _spec("dates-after-study", "objects dated on or after their study", "no object before its StudyDate", _DATE_SOURCE, Counts.IF_PRESENT)
    dose_spec = _spec("dates-dose-after-plan", "dose made after the plan's last change", "RT Dose content date/time >= RTPlanDate/Time", _DATE_SOURCE, Counts.IF_PRESENT)
    outcomes = []
    dated = [o for o in objects if o.when_date and o.study_date]
    if not dated:
        outcomes.append(study_spec.absent("no object carries both StudyDate and its content date"))
    else:
        early = [f"{_name(o)} {o.when_element} {o.when_date} before StudyDate {o.study_date}" for o in dated if o.when_date < o.study_date]
        if early:
            outcomes.append(study_spec.failed(None, "; ".join(early), Status.DEVIATION_UNACCEPTABLE))
        else:
            outcomes.append(study_spec.passed(None, f"{len(dated)} objects dated on or after their study"))
    doses = [o for o in objects if o.role == "RT Dose"]
    if plan is None or not plan.when_date:
        outcomes.append(dose_spec.absent("the RT Plan has no RTPlanDate (300A,0006)"))
    elif not any(d.when_date for d in doses):
        outcomes.append(dose_spec.absent("the RT Dose has neither ContentDate nor InstanceCreationDate"))
    else:
        # Compare date and time when both objects state a time, else dates only.
        def key(o: ObjectIdentity, with_time: bool) -> str:
            return o.when if with_time else o.when_date

        stale = []
        for dose in (d for d in doses if d.when_date):
            with_time = bool(dose.when_time and plan.when_time)
            if key(dose, with_time) < key(plan, with_time):
                stale.append(f"{_name(dose)} {dose.when_element} {dose.when_date} {dose.when_time if with_time else ''}".rstrip())
        shown = f"RTPlanDate {plan.when_date} {plan.when_time}".rstrip()
        if stale:
            outcomes.append(dose_spec.failed(None, f"{'; '.join(stale)} precede(s) the plan's last change ({shown}): the dose may not be this plan's", Status.DEVIATION_UNACCEPTABLE))
        else:
            outcomes.append(dose_spec.passed(None, f"dose dated on or after the plan ({shown})"))
    return outcomes


def object_outcomes(plan_set: PlanSet) -> list[CheckOutcome]:
    """The checks that the plan set's objects belong together (always made; see the module's docstring)."""
    facts = plan_set.facts
    image_outcomes, series = _image_outcomes(plan_set)
    objects = [o for o in (facts.plan, *facts.other_plans, facts.structure_set, *facts.doses) if o is not None]
    if series is not None:
        objects.append(series.identity)
    outcomes = [
        _agreement("objects-patient-id", "PatientID", "PatientID (0010,0020)", objects, lambda o: o.patient_id, show=False),
        _agreement("objects-patient-name", "PatientName", "PatientName (0010,0010)", objects, lambda o: _normalised_name(o.patient_name), show=False),
        _agreement("objects-birth-date", "PatientBirthDate", "PatientBirthDate (0010,0030)", objects, lambda o: o.birth_date, show=False),
        _agreement("objects-study", "StudyInstanceUID", "StudyInstanceUID (0020,000D)", objects, lambda o: o.study_uid, show=True),
        _frames(objects),
        *image_outcomes,
        *_date_outcomes([o for o in objects if o.role != "image"], facts.plan),
    ]
    return outcomes


def _frames(objects: list[ObjectIdentity]) -> CheckOutcome:
    spec = _spec("objects-frame", "Frame of Reference", "one Frame of Reference shared by every object", _SOURCE, Counts.IF_PRESENT)
    carrying = [o for o in objects if o.frames]
    if len(carrying) < 2:
        return spec.absent("fewer than two objects name a FrameOfReferenceUID (0020,0052)")
    common = set(carrying[0].frames)
    for o in carrying[1:]:
        common &= set(o.frames)
    if not common:
        listing = "; ".join(f"{_name(o)}: {', '.join(o.frames)}" for o in carrying)
        return spec.failed(None, f"no Frame of Reference common to every object ({listing})", Status.DEVIATION_UNACCEPTABLE)
    return spec.passed(None, f"{len(carrying)} objects share Frame of Reference {sorted(common)[0]}")


def approval_outcome(plan_set: PlanSet, rule: PlanRule | None) -> CheckOutcome:
    """The plan's ApprovalStatus (Approval Module, PS3.3 C.8.8.16): reported for every plan; graded when the
    protocol states an ``approval`` rule."""
    plan = plan_set.facts.plan
    status = plan.approval_status if plan is not None else ""
    if rule is None:
        spec = _spec("plan-approval", "ApprovalStatus", "reported (the protocol states no approval rule)", "rtcheck: PS3.3 C.8.8.16 Approval Module", Counts.INFORMATIONAL)
        if not status:
            return spec.absent("the RT Plan has no ApprovalStatus (300E,0002)")
        word = {"APPROVED": Status.PER_PROTOCOL, "UNAPPROVED": Status.VARIATION_ACCEPTABLE}.get(status, Status.DEVIATION_UNACCEPTABLE)
        return spec.failed(None, f"ApprovalStatus {status}", word)
    spec = rule_spec(rule, metric="ApprovalStatus", unit="", per_protocol=" or ".join(rule.allowed))
    if not status:
        return spec.absent("the RT Plan has no ApprovalStatus (300E,0002)")
    if status in rule.allowed:
        return spec.passed(None, f"ApprovalStatus {status}")
    return spec.failed(None, f"ApprovalStatus {status}, expected {' or '.join(rule.allowed)}")
