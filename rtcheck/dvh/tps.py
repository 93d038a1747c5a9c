"""The planning system's own DVHs (RT Dose ``DVHSequence``) and their comparison with rtcheck's.

Doses are in Gy, volumes in cc (cm^3).

Reading.  Each ``DVHSequence`` item that references exactly one ROI (contribution
INCLUDED) is read with ``dicompylercore.dvh.DVH.from_dicom_dvh`` and converted to
a cumulative DVH in Gy:

* ``DVHType`` CUMULATIVE or DIFFERENTIAL (a differential DVH is accumulated);
* ``DoseUnits`` GY, CGY (/ 100) or RELATIVE: % of the RT Dose's
  ``DVHNormalizationDoseValue`` when the RT Dose is in GY/CGY, else of the plan's
  prescription when the caller passes one (the caller passes it only when the plan
  has a single prescription level); otherwise the doses are *not comparable*;
* ``DVHVolumeUnits`` CM3, PERCENT or PER_U (fraction): a relative DVH has no
  total volume, so its volume and D2cc are *not comparable* (mean and D95% are);
* ``DVHDoseScaling`` multiplies the bin widths.

The DICOM standard does not say which dose of a bin a cumulative volume belongs
to; rtcheck follows dicompyler-core: the k-th volume is the volume receiving at
least the *lower* edge of the k-th bin, and within a bin the volume is spread
uniformly, so the cumulative curve is piecewise linear between bin edges.  The
structure volume is the first cumulative volume; the mean is the area under the
cumulative curve divided by the volume; D95% and D2cc are interpolated on the
curve (not read off the nearest bin, as dicompyler-core's statistics do); the
maximum (minimum) is the upper (lower) edge of the highest (lowest) bin holding
volume.  The stored ``DVHMinimumDose``/``DVHMaximumDose``/``DVHMeanDose`` are not
used: some systems write them in % of the prescription whatever ``DoseUnits``
says (:func:`stored_statistics_notes` reports it).

Comparison tolerance (a difference is *flagged* when its magnitude exceeds it):

* volume: 3 % of the planning system's volume, or 0.5 cc, whichever is larger.
  Systems differ in how they cap the first and last contour planes, count
  partial voxels and interpolate between planes; a few % of the volume of a small
  structure is expected, a larger difference points to a different structure or
  contour interpretation.
* doses (mean, D95%, D2cc): 2 % of the plan's prescription, or 0.5 Gy, whichever
  is larger (0.5 Gy alone when no prescription is known).  Dose-metric agreement
  within about 2 % of the prescription is what AAPM TG-53 (quality assurance of
  treatment planning) and TG-263-style DVH-metric comparisons expect between
  DVH calculators on the same dose grid; the 0.5 Gy floor absorbs the bin width
  and interpolation differences that dominate at low dose.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pydicom.dataset import Dataset

from rtcheck.dicom.dose import DoseGrid
from rtcheck.dvh.histogram import DoseVolumeHistogram

VOLUME_TOLERANCE_FRACTION = 0.03
VOLUME_TOLERANCE_FLOOR_CC = 0.5
DOSE_TOLERANCE_RX_FRACTION = 0.02
DOSE_TOLERANCE_FLOOR_GY = 0.5
D2CC_MIN_VOLUME_CC = 2.0
TOLERANCE_TEXT = (
    f"volume {VOLUME_TOLERANCE_FRACTION * 100:g} % of the planning system's or {VOLUME_TOLERANCE_FLOOR_CC:g} cc, "
    f"doses {DOSE_TOLERANCE_RX_FRACTION * 100:g} % of the prescription or {DOSE_TOLERANCE_FLOOR_GY:g} Gy, whichever is larger"
)

QUANTITIES: dict[str, str] = {"volume_cc": "cc", "mean_gy": "Gy", "d95_gy": "Gy", "d2cc_gy": "Gy"}

# Cumulative volumes below this fraction of the structure volume are rounding noise of the exporting system.
_NEGLIGIBLE_FRACTION = 1e-9


@dataclass
class TpsDvh:
    """One ROI's DVH as stored by the planning system, converted to a cumulative DVH in Gy.

    ``dvh`` (None when the item is unreadable) is a cumulative ``dicompylercore.dvh.DVH`` with dose bins in Gy (in %
    when ``dose_reason`` says the doses cannot be converted) and counts in cm3
    (in % when ``volume_reason`` says the total volume is unknown).  Values that
    cannot be given honestly are None.  ``stored_*`` are the item's
    DVHMinimumDose/DVHMaximumDose/DVHMeanDose as written, in the item's units.
    """

    roi_number: int
    volume_cc: float | None
    mean_gy: float | None
    max_gy: float | None
    min_gy: float | None
    dvh: Any
    source: str = ""
    dose_reason: str | None = None
    volume_reason: str | None = None
    stored_units: str = ""
    stored_min: float | None = None
    stored_max: float | None = None
    stored_mean: float | None = None
    curve_mean: float | None = None  # mean of the curve in the item's own dose units (for stored_* checks)
    notes: list[str] = field(default_factory=list)

    def dose_at_volume_fraction_gy(self, fraction: float) -> float | None:
        """Dose (Gy) received by at least ``fraction`` (0-1) of the volume, or None if doses are not in Gy."""
        if self.dose_reason is not None:
            return None
        dose, volume = _knots(self.dvh)
        return _dose_at_volume(dose, volume, fraction * volume[0]) if volume[0] > 0 else None

    def dose_at_volume_cc_gy(self, volume_cc: float) -> float | None:
        """Dose (Gy) received by at least ``volume_cc``, or None if doses or volumes are not absolute."""
        if self.dose_reason is not None or self.volume_reason is not None or not self.volume_cc or volume_cc > self.volume_cc:
            return None
        dose, volume = _knots(self.dvh)
        return _dose_at_volume(dose, volume, volume_cc)

    @property
    def d95_gy(self) -> float | None:
        """D95% (Gy), interpolated on the cumulative curve."""
        return self.dose_at_volume_fraction_gy(0.95)

    @property
    def d2cc_gy(self) -> float | None:
        """D2cc (Gy), interpolated on the cumulative curve; None below 2 cc or without absolute volumes."""
        if self.volume_cc is None or self.volume_cc < D2CC_MIN_VOLUME_CC:
            return None
        return self.dose_at_volume_cc_gy(D2CC_MIN_VOLUME_CC)


def _knots(dvh: Any) -> tuple[np.ndarray, np.ndarray]:
    """(dose ascending, volume receiving at least it) at the bin edges of a cumulative dicompyler DVH.

    Negative and negligible volumes (rounding noise) become 0 and the curve is
    made non-increasing.
    """
    counts = np.asarray(dvh.counts, dtype=float)
    bins = np.asarray(dvh.bins, dtype=float)
    if bins.size == counts.size:  # a zero first bin width: dicompyler did not prepend 0 Gy
        bins = np.concatenate(([0.0], bins))
    volume = np.concatenate((np.clip(counts, 0.0, None), [0.0]))
    volume = np.minimum.accumulate(volume)
    if volume.size and volume[0] > 0:
        volume[volume < volume[0] * _NEGLIGIBLE_FRACTION] = 0.0
    return bins, volume


def _dose_at_volume(dose: np.ndarray, volume: np.ndarray, wanted: float) -> float:
    """Highest dose received by at least ``wanted`` volume on a piecewise-linear non-increasing curve."""
    if wanted <= 0:
        return float(dose[int(np.nonzero(volume > 0)[0][-1]) + 1]) if np.any(volume > 0) else 0.0
    if wanted >= volume[0]:
        k = int(np.nonzero(volume >= volume[0])[0][-1])
        return float(dose[k])
    k = int(np.searchsorted(-volume, -wanted, side="right")) - 1  # last knot with volume >= wanted
    v0, v1 = volume[k], volume[k + 1]
    t = (v0 - wanted) / (v0 - v1)
    return float(dose[k] + t * (dose[k + 1] - dose[k]))


def _curve_statistics(dvh: Any) -> tuple[float, float, float, float]:
    """(volume, mean, min, max) of a cumulative dicompyler DVH, in its own units."""
    dose, volume = _knots(dvh)
    total = float(volume[0])
    if total <= 0:
        return 0.0, 0.0, 0.0, 0.0
    mean = float(np.sum((volume[:-1] + volume[1:]) * np.diff(dose)) / 2.0) / total
    holding = np.nonzero(volume > 0)[0]
    maximum = float(dose[holding[-1] + 1])
    below = np.nonzero(volume < total)[0]
    minimum = float(dose[below[0] - 1]) if below.size else 0.0
    return total, mean, minimum, maximum


def _float_or_none(item: Dataset, keyword: str) -> float | None:
    value = item.get(keyword)
    try:
        return None if value is None or value == "" else float(value)
    except (TypeError, ValueError):
        return None


def _single_roi(item: Dataset) -> int | None:
    refs = item.get("DVHReferencedROISequence") or []
    if len(refs) != 1 or "ReferencedROINumber" not in refs[0]:
        return None
    if str(refs[0].get("DVHROIContributionType", "INCLUDED")).upper() != "INCLUDED":
        return None
    return int(refs[0].ReferencedROINumber)


def _normalisation_gy(ds: Dataset) -> float | None:
    """DVHNormalizationDoseValue in Gy, when the RT Dose's own units say what it is."""
    value = _float_or_none(ds, "DVHNormalizationDoseValue")
    units = str(ds.get("DoseUnits", "")).upper()
    if value is None or value <= 0:
        return None
    return {"GY": value, "CGY": value / 100.0}.get(units)


def read_tps_dvhs(ds: Dataset, *, source: str = "RT Dose", rx_gy: float | None = None, dose_scale: float = 1.0) -> list[TpsDvh]:
    """The per-ROI DVHs stored in an RT Dose data set (``DVHSequence``); [] when it has none.

    ``rx_gy`` is the plan's prescription (Gy), used for RELATIVE doses when the
    RT Dose gives no DVHNormalizationDoseValue; pass None when the plan has no
    single prescription.  ``dose_scale`` multiplies every dose (the number of
    fractions for a FRACTION dose).  Items for several ROIs or with excluded ROIs
    are not per-ROI DVHs and are left out (see :func:`stored_statistics_notes`).
    """
    items = ds.get("DVHSequence") or []
    if not items:
        return []
    from dicompylercore.dvh import DVH  # lazily: plain checks do not pay for it

    normalisation = _normalisation_gy(ds)
    found: list[TpsDvh] = []
    for index, item in enumerate(items, start=1):
        roi_number = _single_roi(item)
        if roi_number is None or "DVHData" not in item:
            continue
        where = f"{source} DVHSequence item {index}"
        problem = _item_problem(item)
        if problem is not None:
            found.append(_unusable(roi_number, where, problem))
            continue
        # from_dicom_dvh takes the first item of the ROI: give it this one, with DVHData as numbers.
        clean = Dataset()
        clean.DVHReferencedROISequence = item.DVHReferencedROISequence
        clean.DVHType, clean.DoseUnits, clean.DVHVolumeUnits = item.DVHType, item.DoseUnits, item.DVHVolumeUnits
        clean.DVHDoseScaling = float(item.DVHDoseScaling)
        values = _dvh_values(item)
        assert values is not None  # _item_problem refused an item without readable DVHData
        clean.DVHData = values.tolist()
        holder = Dataset()
        holder.DVHSequence = [clean]
        cumulative = DVH.from_dicom_dvh(holder, roi_number).cumulative
        bins = np.asarray(cumulative.bins, dtype=float)
        counts = np.asarray(cumulative.counts, dtype=float)
        curve_mean = _curve_statistics(cumulative)[1]

        dose_units = str(item.get("DoseUnits", "")).upper()
        dose_reason = None
        factor = None
        if dose_units == "GY":
            factor = 1.0
        elif dose_units == "CGY":
            factor = 0.01
        elif dose_units == "RELATIVE":
            if normalisation is not None:
                factor = normalisation / 100.0
            elif rx_gy:
                factor = rx_gy / 100.0
            else:
                dose_reason = (
                    "doses RELATIVE without DVHNormalizationDoseValue in Gy and no single plan prescription: "
                    "cannot be converted to Gy"
                )
        else:
            dose_reason = f"DoseUnits {dose_units or '(absent)'} is not GY, CGY or RELATIVE"

        volume_units = str(item.get("DVHVolumeUnits", "")).upper()
        volume_reason = None
        if volume_units == "CM3":
            pass
        elif volume_units in ("PERCENT", "PER_U"):
            if volume_units == "PER_U":
                counts = counts * 100.0
            volume_reason = f"volumes in {volume_units} of an unstated total volume: cc quantities not comparable"
        else:
            volume_reason = f"DVHVolumeUnits {volume_units or '(absent)'} is not CM3, PERCENT or PER_U"

        dvh = DVH(
            counts,
            bins * (factor * dose_scale if factor is not None else 1.0),
            dvh_type="cumulative",
            dose_units="Gy" if factor is not None else "%",
            volume_units="cm3" if volume_reason is None else "%",
            name=cumulative.name,
        )
        total, mean, minimum, maximum = _curve_statistics(dvh)
        notes = []
        if dose_units == "RELATIVE" and factor is not None:
            basis = "DVHNormalizationDoseValue" if normalisation is not None else "the plan's prescription"
            notes.append(f"{where}: RELATIVE doses taken as % of {basis} ({factor * 100:g} Gy)")
        if dose_scale != 1.0 and factor is not None:
            notes.append(f"{where}: doses multiplied by {dose_scale:g}")
        doses_ok = dose_reason is None
        found.append(
            TpsDvh(
                roi_number=roi_number,
                volume_cc=total if volume_reason is None else None,
                mean_gy=mean if doses_ok else None,
                max_gy=maximum if doses_ok else None,
                min_gy=minimum if doses_ok else None,
                dvh=dvh,
                source=where,
                dose_reason=dose_reason,
                volume_reason=volume_reason,
                stored_units=dose_units,
                stored_min=_float_or_none(item, "DVHMinimumDose"),
                stored_max=_float_or_none(item, "DVHMaximumDose"),
                stored_mean=_float_or_none(item, "DVHMeanDose"),
                curve_mean=curve_mean,
                notes=notes,
            )
        )
    return found


def _item_problem(item: Dataset) -> str | None:
    """Why a DVHSequence item cannot be read, or None."""
    missing = [k for k in ("DVHType", "DoseUnits", "DVHVolumeUnits", "DVHDoseScaling") if item.get(k) in (None, "")]
    if missing:
        return f"{', '.join(missing)} absent"
    dvh_type = str(item.DVHType).upper()
    if dvh_type not in ("CUMULATIVE", "DIFFERENTIAL"):
        return f"DVHType {dvh_type} is not CUMULATIVE or DIFFERENTIAL"
    values = _dvh_values(item)
    if values is None:
        return "DVHData is not a list of numbers"
    if values.size < 2 or values.size % 2:
        return f"DVHData holds {values.size} values, not dose-width/volume pairs"
    try:
        scaling = float(item.DVHDoseScaling)
    except (TypeError, ValueError):
        return "DVHDoseScaling is not a number"
    if np.any(values[0::2] < 0) or not np.all(np.isfinite(values)) or scaling <= 0:
        return "negative or non-finite dose bin widths, volumes or DVHDoseScaling"
    return None


def _dvh_values(item: Dataset) -> np.ndarray | None:
    """DVHData as floats; also when written with VR UN (pydicom does so above 64 kB in explicit VR)."""
    data = item.get("DVHData")
    if isinstance(data, (bytes, bytearray)):
        try:
            data = [float(v) for v in bytes(data).decode("ascii").strip("\0 ").split("\\")]
        except (UnicodeDecodeError, ValueError):
            return None
    elif isinstance(data, (int, float)):
        data = [data]
    try:
        return np.asarray(list(data), dtype=float)
    except (TypeError, ValueError):
        return None


def _unusable(roi_number: int, where: str, reason: str) -> TpsDvh:
    return TpsDvh(roi_number, None, None, None, None, None, where, dose_reason=reason, volume_reason=reason)


def planning_system_dvhs(
    dose: DoseGrid, *, rx_gy: float | None, relative_rx_gy: float | None, announce: bool
) -> tuple[dict[int, TpsDvh], list[str]]:
    """The planning system's DVHs stored in the RT Dose file(s) of ``dose``, by ROI number, and notes.

    ``rx_gy`` is used to recognise stored statistics in % of the prescription;
    ``relative_rx_gy`` converts RELATIVE DVH doses when the RT Dose gives no
    normalisation dose.  Several BEAM doses carry per-beam DVHs, which are not
    comparable with the DVH of their sum: none is returned, with a note.  With
    ``announce`` a dose without DVHs is noted too.
    """
    with_dvhs = [f for f in dose.files if f.stored_dvhs is not None]
    if not with_dvhs:
        files = ", ".join(str(p) for p in dose.paths)
        return {}, ([f"{files}: no planning-system DVHs (DVHSequence) to compare with"] if announce else [])
    if len(dose.files) > 1:
        return {}, [
            f"the {len(dose.files)} RT Doses of this plan carry the planning system's DVHs per beam, which are not "
            "comparable with the DVH of their sum: not compared"
        ]
    file = with_dvhs[0]
    assert file.stored_dvhs is not None
    scale = 1.0
    if file.summation_type.endswith("_SESSION"):
        # One session's dose (PS3.3 C.8.8.3), multiplied by its fractions like the grid (rtcheck.dicom.summation).
        if dose.fraction_scale is None:
            return {}, [f"{file.path}: the planning system's DVHs of a {file.summation_type} dose cannot be scaled to the course: not compared"]
        scale = float(dose.fraction_scale)
    dvhs = read_tps_dvhs(file.stored_dvhs, source=str(file.path), rx_gy=relative_rx_gy, dose_scale=scale)
    notes = stored_statistics_notes(file.stored_dvhs, dvhs, source=str(file.path), rx_gy=rx_gy)
    by_roi: dict[int, TpsDvh] = {}
    for dvh in dvhs:
        by_roi.setdefault(dvh.roi_number, dvh)
    return by_roi, notes


def stored_statistics_notes(ds: Dataset, dvhs: list[TpsDvh], *, source: str = "RT Dose", rx_gy: float | None = None) -> list[str]:
    """Notes about an RT Dose's DVHSequence: items not used, and stored statistics that contradict the curves.

    A stored DVHMeanDose agreeing with the curve's mean as a % of ``rx_gy``
    (rather than in the stated DoseUnits) is reported as such.
    """
    notes: list[str] = []
    items = ds.get("DVHSequence") or []
    skipped = sum(1 for item in items if _single_roi(item) is None or "DVHData" not in item)
    if skipped:
        notes.append(f"{source}: {skipped} DVHSequence item(s) for several or excluded ROIs, or without DVHData, not compared")
    by_roi: dict[int, int] = {}
    for d in dvhs:
        by_roi[d.roi_number] = by_roi.get(d.roi_number, 0) + 1
    repeated = sorted(n for n, count in by_roi.items() if count > 1)
    if repeated:
        notes.append(f"{source}: several DVHs for ROI(s) {', '.join(map(str, repeated))}; the first is compared")
    consistent = 0
    in_percent: list[TpsDvh] = []
    other: list[TpsDvh] = []
    for d in dvhs:
        if d.stored_mean is None or d.curve_mean is None or d.stored_units not in ("GY", "CGY"):
            continue
        tolerance = max(0.02 * abs(d.curve_mean), 0.05 if d.stored_units == "GY" else 5.0)
        if abs(d.stored_mean - d.curve_mean) <= tolerance:
            consistent += 1
        elif rx_gy and d.mean_gy is not None and abs(d.stored_mean * rx_gy / 100.0 - d.mean_gy) <= max(0.02 * d.mean_gy, 0.05):
            in_percent.append(d)
        else:
            other.append(d)
    if in_percent and rx_gy:
        example = max(in_percent, key=lambda d: d.mean_gy or 0.0)
        assert example.stored_mean is not None  # in_percent holds DVHs with a stored mean only
        notes.append(
            f"{source}: DVHMinimumDose/DVHMaximumDose/DVHMeanDose of {len(in_percent)} DVH(s) are in % of the "
            f"{rx_gy:g} Gy prescription although DoseUnits is {example.stored_units} (e.g. ROI {example.roi_number}: "
            f"DVHMeanDose {example.stored_mean:.4g} = {example.stored_mean * rx_gy / 100.0:.3f} Gy, curve mean "
            f"{example.mean_gy:.3f} Gy); rtcheck reads the doses from the DVH curves"
        )
    if other:
        listing = ", ".join(f"ROI {d.roi_number}: {d.stored_mean:.4g} vs {d.curve_mean:.4g}" for d in other[:3])
        notes.append(f"{source}: stored DVHMeanDose disagrees with the DVH curve's mean ({listing}); the curves are used")
    return notes


@dataclass
class TpsQuantity:
    """One compared quantity: rtcheck's value, the planning system's, ours - theirs, and whether it exceeds ``tolerance``.

    Values are in ``unit`` (cc or Gy); ``reason`` says why a value is missing.
    """

    name: str
    unit: str
    rtcheck: float | None
    tps: float | None
    difference: float | None
    relative_difference_pct: float | None
    tolerance: float | None
    flagged: bool = False
    reason: str | None = None


@dataclass
class TpsComparison:
    """rtcheck's DVH of one ROI against the planning system's: quantities volume_cc, mean_gy, d95_gy, d2cc_gy."""

    roi_number: int
    roi_name: str
    quantities: dict[str, TpsQuantity]
    source: str = ""
    structure: str | None = None  # the protocol's name, in a check
    notes: list[str] = field(default_factory=list)

    @property
    def flagged(self) -> list[str]:
        """Names of the quantities whose difference exceeds the tolerance."""
        return [name for name, q in self.quantities.items() if q.flagged]


def volume_tolerance_cc(tps_volume_cc: float) -> float:
    """Largest acceptable |volume difference| (cc) against a planning-system volume."""
    return max(VOLUME_TOLERANCE_FRACTION * abs(tps_volume_cc), VOLUME_TOLERANCE_FLOOR_CC)


def dose_tolerance_gy(rx_gy: float | None) -> float:
    """Largest acceptable |dose difference| (Gy) for mean, D95% and D2cc."""
    if rx_gy and rx_gy > 0:
        return max(DOSE_TOLERANCE_RX_FRACTION * rx_gy, DOSE_TOLERANCE_FLOOR_GY)
    return DOSE_TOLERANCE_FLOOR_GY


def _quantity(name: str, ours: float | None, theirs: float | None, tolerance: float | None, reason: str | None) -> TpsQuantity:
    unit = QUANTITIES[name]
    ours = None if ours is None else float(ours)
    theirs = None if theirs is None else float(theirs)
    if ours is None or theirs is None:
        return TpsQuantity(name, unit, ours, theirs, None, None, tolerance, False, reason or "not available")
    difference = ours - theirs
    relative = difference / theirs * 100.0 if theirs != 0 else None
    flagged = bool(tolerance is not None and abs(difference) > tolerance)
    return TpsQuantity(name, unit, ours, theirs, difference, relative, tolerance, flagged, None)


def compare_with_tps(our: DoseVolumeHistogram, tps: TpsDvh, *, rx_gy: float | None = None) -> TpsComparison:
    """Compare rtcheck's DVH of a ROI with the planning system's; ``rx_gy`` sets the dose tolerance.

    Volume is the structure volume (inside and outside the dose grid); D95% is of
    the volume inside the grid; D2cc is compared only when both volumes are at
    least 2 cc.
    """
    dose_tol = dose_tolerance_gy(rx_gy)
    inside = our.volume_cc > 0
    ours_volume = our.total_volume_cc if our.total_volume_cc > 0 else None
    ours_mean = our.mean_gy if inside else None
    ours_d95 = our.dose_at_volume_cc(0.95 * our.volume_cc) if inside else None
    d2cc_reason = tps.volume_reason or tps.dose_reason
    ours_d2cc = None
    tps_d2cc = None
    if our.volume_cc < D2CC_MIN_VOLUME_CC or (tps.volume_cc is not None and tps.volume_cc < D2CC_MIN_VOLUME_CC):
        d2cc_reason = f"D2cc needs both volumes >= {D2CC_MIN_VOLUME_CC:g} cc"
    else:
        ours_d2cc = our.dose_at_volume_cc(D2CC_MIN_VOLUME_CC)
        tps_d2cc = tps.d2cc_gy
    quantities = {
        "volume_cc": _quantity(
            "volume_cc", ours_volume, tps.volume_cc, volume_tolerance_cc(tps.volume_cc) if tps.volume_cc is not None else None, tps.volume_reason
        ),
        "mean_gy": _quantity("mean_gy", ours_mean, tps.mean_gy, dose_tol, tps.dose_reason),
        "d95_gy": _quantity("d95_gy", ours_d95, tps.d95_gy, dose_tol, tps.dose_reason),
        "d2cc_gy": _quantity("d2cc_gy", ours_d2cc, tps_d2cc, dose_tol, d2cc_reason),
    }
    notes = list(tps.notes)
    if our.outside_volume_cc > 0:
        notes.append(f"{our.fraction_outside * 100:.1f} % of the structure lies outside the dose grid: rtcheck's doses cover the part inside")
    return TpsComparison(tps.roi_number, our.name, quantities, source=tps.source, notes=notes)
