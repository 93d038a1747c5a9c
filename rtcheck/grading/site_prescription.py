"""Grading a prescription whose dose the site sets (the trial states none) against its EQD2 window.

The plan's EQD2 for the target is computed from the plan's own total dose D [Gy]
and fractions n with the window's α/β [Gy]: ``EQD2 = D (D/n + α/β) / (2 + α/β)``.

Grading (README, "Prescriptions whose dose the site sets"):

* an rtcheck *default* window is not a trial requirement, so inside it the check
  is at best ``variation_acceptable``; outside it ``deviation_unacceptable``;
* a window the *site* states: inside ``per_protocol``, outside ``deviation_unacceptable``.

Bounds are inclusive.
"""

from __future__ import annotations

from rtcheck.dicom.plan import TargetPrescription
from rtcheck.grading.outcome import CheckSpec
from rtcheck.protocol.model import Eqd2Window, Prescription
from rtcheck.radiobiology.lq import eqd2_gy
from rtcheck.results import CheckKind, CheckOutcome, Status

__all__ = ["site_dose_notes", "window_matches", "window_outcome"]

# Exported doses are rounded (e.g. 59.92 stored as 59.9200000001): compare at this precision [Gy].
_EPSILON_GY = 1e-6


def window_outcome(rx: Prescription, target: TargetPrescription | None, how: str, roi_name: str | None) -> CheckOutcome:
    """The ``rx-<target>-eqd2`` check of a site-set prescription with an EQD2 window."""
    window = rx.window
    assert window is not None
    bounds = f"{window.min_gy:g}-{window.max_gy:g} Gy"
    if window.is_default:
        per_protocol = "dose set by the site (the trial states none)"
        variation: str | None = f"EQD2 {bounds} (rtcheck default window, not a trial requirement)"
    else:
        per_protocol, variation = f"EQD2 {bounds} (site window)", None
    spec = CheckSpec(
        id=f"rx-{rx.target.lower()}-eqd2",
        kind=CheckKind.PRESCRIPTION,
        structure=rx.target,
        roi_name=roi_name,
        metric=f"EQD2 (α/β {window.alpha_beta_gy:g} Gy)",
        unit="Gy",
        per_protocol=per_protocol,
        variation_acceptable=variation,
        source=f"{rx.source}; window: {window.source}",
    )
    if target is None:
        return spec.not_evaluated(f"the plan has no prescription for {rx.target}")
    if not target.total_dose_gy or not target.fractions:
        missing = "total dose" if not target.total_dose_gy else "number of fractions"
        return spec.not_evaluated(f"the plan does not state the {missing} of {target.name!r}, so its EQD2 cannot be computed")
    value, inside = _plan_eqd2(window, target.total_dose_gy, target.fractions)
    schedule = (
        f"dose set by the site: plan {target.total_dose_gy:g} Gy in {target.fractions} fx "
        f"= EQD2 {value:.2f} Gy (α/β {window.alpha_beta_gy:g} Gy)"
    )
    if window.is_default:
        status = Status.VARIATION_ACCEPTABLE if inside else Status.DEVIATION_UNACCEPTABLE
        verdict = (
            f"{'inside' if inside else 'outside'} rtcheck's default window {bounds}, which is an rtcheck default, "
            "not a trial requirement; state the site's prescription in a site overlay to grade it per protocol"
        )
    else:
        status = Status.PER_PROTOCOL if inside else Status.DEVIATION_UNACCEPTABLE
        verdict = f"{'inside' if inside else 'outside'} the site's window {bounds}"
    origin = target.sources.get("total_dose_gy", "")
    return spec.graded(value, status, f"{schedule}, {verdict}; {how}; from {origin}")


def _plan_eqd2(window: Eqd2Window, total_dose_gy: float, fractions: int) -> tuple[float, bool]:
    """The EQD2 [Gy] of a plan's prescription for a target, and whether it lies inside ``window``
    (bounds inclusive, to the rounding of the stated doses)."""
    value = float(eqd2_gy(total_dose_gy, fractions, window.alpha_beta_gy))
    return value, window.min_gy - _EPSILON_GY <= value <= window.max_gy + _EPSILON_GY


def window_matches(rx: Prescription, target: TargetPrescription) -> str | None:
    """Why ``target`` does not fit the window of ``rx`` (None when its EQD2 lies inside), for ``--arm auto``."""
    window = rx.window
    assert window is not None
    if not target.total_dose_gy or not target.fractions:
        return f"{rx.target}: the plan states no total dose or fractions, so its EQD2 is unknown"
    value, inside = _plan_eqd2(window, target.total_dose_gy, target.fractions)
    if inside:
        return None
    return f"{rx.target}: EQD2 {value:.2f} Gy outside the {window}"


def site_dose_notes(arm_prescriptions: tuple[Prescription, ...]) -> list[str]:
    """Notes saying which doses the site sets and what the window is."""
    notes = []
    for rx in arm_prescriptions:
        if rx.dose_set_by != "site":
            continue
        if rx.window is None:
            notes.append(f"{rx.target}: the dose is set by the site ({rx.total_dose_gy:g} Gy / {rx.fractions} fx; {rx.source})")
        elif rx.window.is_default:
            notes.append(
                f"{rx.target}: the trial states no dose, it is set by the site; rtcheck checks the plan's EQD2 against the window "
                f"{rx.window}, an rtcheck default that is not a trial requirement (so at best variation acceptable); "
                f"window source: {' '.join(rx.window.source.split())}"
            )
        else:
            notes.append(f"{rx.target}: the trial states no dose, it is set by the site; the site's window {rx.window}: {' '.join(rx.window.source.split())}")
    return notes
