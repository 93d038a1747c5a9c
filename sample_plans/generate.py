#!/usr/bin/env python3
"""Generate synthetic esophageal-cancer (ESCC, mid-thoracic) RT sample cases as DICOM.

Each case is one folder under ``sample_plans/`` holding an RT Structure Set
(``RS.dcm``), an RT Plan (``RP.dcm``) and an RT Dose (``RD.dcm``); there is no
CT.  Anatomy, targets and dose are analytic (ellipses, ellipsoids, sigmoids),
so the cases are tiny, fully deterministic and their DVH metrics are known
in advance with large margins to the protocol thresholds
(escc-induction-icrt-ccrt).  See ``sample_plans/README.md`` for the sets and
their expected verdicts.

A re-irradiation case also gets ``prior/RD.dcm``: the RT Dose of an earlier
course on the same Frame of Reference (its plan is not written), on a coarser
grid offset from the current one.

Run ``python sample_plans/generate.py`` to regenerate; the output is
byte-identical on every run (fixed UIDs, dates and implementation UID).

Coordinates are DICOM patient coordinates in mm, head-first supine:
+x = patient left, +y = posterior, +z = superior.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.tag import Tag
from pydicom.uid import (
    UID,
    ExplicitVRLittleEndian,
    RTDoseStorage,
    RTPlanStorage,
    RTStructureSetStorage,
    generate_uid,
)

OUTPUT_DIR = Path(__file__).resolve().parent

# Every UID is a hash of fixed strings under pydicom's UID root, so re-runs are identical.
UID_ENTROPY_ROOT = "rtcheck-sample-plans-v1"
# Fixed (not pydicom-version dependent) implementation identity in the file meta.
IMPLEMENTATION_CLASS_UID = generate_uid(entropy_srcs=[UID_ENTROPY_ROOT, "implementation"])
IMPLEMENTATION_VERSION_NAME = "RTCHECK_SAMPLES1"

FIXED_DATE = "20260101"
PRIOR_COURSE_DATE = "20250101"  # the re-irradiation sample's prior course
FIXED_TIME = "120000"
MANUFACTURER = "rtcheck sample generator"

CONTOUR_SPACING_MM = 5.0  # every contour plane lies on z = k * 5 mm
DOSE_SPACING_MM = 4.0  # dose grid: 4 x 4 mm pixels, 4 mm slices
ISOCENTER_MM = (5.0, 30.0, 0.0)  # GTV centre

# ROI numbers are fixed across sets; a set lacking an ROI simply skips its number.
ROI_BODY, ROI_LUNGS, ROI_HEART, ROI_CORD, ROI_ESOPHAGUS, ROI_GTV, ROI_PTV, ROI_PGTV = range(1, 9)


# --------------------------------------------------------------------------- geometry


@dataclass(frozen=True)
class Ellipse2D:
    """Axis-aligned ellipse in an axial plane (mm)."""

    cx_mm: float
    cy_mm: float
    ax_mm: float
    ay_mm: float

    def norm2(self, x_mm: np.ndarray, y_mm: np.ndarray) -> np.ndarray:
        """Squared normalised radius: < 1 inside, 1 on the boundary."""
        return ((x_mm - self.cx_mm) / self.ax_mm) ** 2 + ((y_mm - self.cy_mm) / self.ay_mm) ** 2

    def point(self, t_rad: np.ndarray) -> np.ndarray:
        """Boundary points (N x 2) at parameter angles ``t_rad``."""
        return np.column_stack(
            (self.cx_mm + self.ax_mm * np.cos(t_rad), self.cy_mm + self.ay_mm * np.sin(t_rad))
        )

    def polygon(self, n_points: int) -> np.ndarray:
        """Counter-clockwise polygon with ``n_points`` vertices."""
        return self.point(np.arange(n_points) * (2.0 * math.pi / n_points))


def _ellipsoid_scale(dz_mm: float, half_length_mm: float) -> float:
    """Cross-section scale of an ellipsoid at ``dz_mm`` from its centre (0 outside)."""
    u = dz_mm / half_length_mm
    return math.sqrt(1.0 - u * u) if abs(u) < 1.0 else 0.0


@dataclass(frozen=True)
class Shape:
    """An analytic ROI: one or more axial ellipses as a function of z.

    kind:
      ``cylinder``  constant ellipse(s) for z in [z_min, z_max]
      ``ellipsoid`` ellipse scaled by sqrt(1 - (dz/c)^2), c = half length
      ``capsule``   elliptic cylinder of half length ``flat_half_mm`` closed by
                    ellipsoidal caps of height ``cap_mm`` ("rounded cylinder")
      ``lung``      cylinder whose apex tapers, minus the (expanded) heart
    """

    kind: str
    ellipses: tuple[Ellipse2D, ...]
    z_min_mm: float
    z_max_mm: float
    cz_mm: float = 0.0
    flat_half_mm: float = 0.0
    cap_mm: float = 0.0
    apex_taper_from_mm: float | None = None
    carve: "Shape | None" = None
    carve_margin_mm: float = 0.0

    def scale(self, z_mm: float) -> float:
        """Cross-section scale factor at ``z_mm`` (0 = no cross-section)."""
        if self.kind in ("cylinder", "lung"):
            if not (self.z_min_mm <= z_mm <= self.z_max_mm):
                return 0.0
            if self.apex_taper_from_mm is not None and z_mm > self.apex_taper_from_mm:
                # Lung apex: ellipsoidal taper reaching 45% at z_max.
                span = (self.z_max_mm - self.apex_taper_from_mm) / math.sqrt(1.0 - 0.45**2)
                return _ellipsoid_scale(z_mm - self.apex_taper_from_mm, span)
            return 1.0
        if self.kind == "ellipsoid":
            return _ellipsoid_scale(z_mm - self.cz_mm, (self.z_max_mm - self.z_min_mm) / 2.0)
        if self.kind == "capsule":
            excess = abs(z_mm - self.cz_mm) - self.flat_half_mm
            return 1.0 if excess <= 0 else _ellipsoid_scale(excess, self.cap_mm)
        raise ValueError(self.kind)

    def sections(self, z_mm: float) -> list[Ellipse2D]:
        """The ellipses of the cross-section at ``z_mm`` (empty if none)."""
        s = self.scale(z_mm)
        if s <= 0.0:
            return []
        return [Ellipse2D(e.cx_mm, e.cy_mm, e.ax_mm * s, e.ay_mm * s) for e in self.ellipses]

    def carve_section(self, z_mm: float) -> Ellipse2D | None:
        """The ellipse removed from this shape at ``z_mm`` (expanded heart), if any."""
        if self.carve is None:
            return None
        cut = self.carve.sections(z_mm)
        if not cut:
            return None
        e = cut[0]
        m = self.carve_margin_mm
        return Ellipse2D(e.cx_mm, e.cy_mm, e.ax_mm + m, e.ay_mm + m)

    def contour_planes_mm(self) -> list[float]:
        """z of the contour planes: multiples of 5 mm with a non-degenerate section."""
        k0 = math.ceil(self.z_min_mm / CONTOUR_SPACING_MM - 1e-9)
        k1 = math.floor(self.z_max_mm / CONTOUR_SPACING_MM + 1e-9)
        planes = [k * CONTOUR_SPACING_MM for k in range(k0, k1 + 1)]
        # Skip tip planes where an ellipsoid degenerates to (nearly) a point.
        return [z for z in planes if self.scale(z) >= 0.2]

    def polygons(self, z_mm: float, n_points: int) -> list[np.ndarray]:
        """Closed planar polygons of the cross-section at ``z_mm``."""
        cut = self.carve_section(z_mm)
        out = []
        for e in self.sections(z_mm):
            if cut is not None and bool(np.any(cut.norm2(*e.polygon(720).T) < 1.0)):
                out.append(_ellipse_minus_ellipse(e, cut, n_points))
            else:
                out.append(e.polygon(n_points))
        return out


def _bisect_t(f: Callable[[float], bool], t_in: float, t_out: float, iterations: int = 60) -> float:
    """Root of the boolean predicate ``f`` (True at t_in, False at t_out) by bisection."""
    for _ in range(iterations):
        mid = 0.5 * (t_in + t_out)
        if f(mid):
            t_in = mid
        else:
            t_out = mid
    return 0.5 * (t_in + t_out)


def _ellipse_minus_ellipse(keep: Ellipse2D, cut: Ellipse2D, n_points: int) -> np.ndarray:
    """Polygon of ``keep`` with a convex bite ``cut`` removed (one simple polygon).

    Built from the arc of ``keep`` outside ``cut`` plus the arc of ``cut`` inside
    ``keep``; both convex, so a single bite gives exactly two crossings.
    """
    dense_t = np.linspace(0.0, 2.0 * math.pi, 4096, endpoint=False)
    inside = cut.norm2(*keep.point(dense_t).T) < 1.0
    changes = np.flatnonzero(inside != np.roll(inside, -1))
    if changes.size != 2:
        raise ValueError(f"expected a single bite, got {changes.size} boundary crossings")
    step = dense_t[1]

    def in_cut(t: float) -> bool:
        return bool(cut.norm2(*keep.point(np.array([t])).T)[0] < 1.0)

    # Crossing at change index i lies between dense_t[i] and dense_t[i] + step.
    crossings = []
    for i in changes:
        t0, t1 = dense_t[i], dense_t[i] + step
        crossings.append(_bisect_t(in_cut, t0, t1) if inside[i] else _bisect_t(in_cut, t1, t0))
    # Outside arc runs from the in->out crossing to the out->in crossing (counter-clockwise).
    if inside[changes[0]]:
        t_start, t_end = crossings[0], crossings[1]
    else:
        t_start, t_end = crossings[1], crossings[0]
    if t_end < t_start:
        t_end += 2.0 * math.pi

    p_end, p_start = keep.point(np.array([t_end, t_start]))
    # Cut-ellipse parameters of the two crossing points.
    u_end = math.atan2((p_end[1] - cut.cy_mm) / cut.ay_mm, (p_end[0] - cut.cx_mm) / cut.ax_mm)
    u_start = math.atan2((p_start[1] - cut.cy_mm) / cut.ay_mm, (p_start[0] - cut.cx_mm) / cut.ax_mm)
    # Go from p_end back to p_start along whichever cut arc lies inside ``keep``.
    du = (u_start - u_end) % (2.0 * math.pi)  # counter-clockwise span
    mid_ccw = cut.point(np.array([u_end + du / 2.0]))
    if keep.norm2(*mid_ccw.T)[0] >= 1.0:
        du -= 2.0 * math.pi  # clockwise instead
    # Share the vertices by arc length (approximated on dense samples).
    arc_keep = keep.point(np.linspace(t_start, t_end, 400))
    arc_cut = cut.point(np.linspace(u_end, u_end + du, 400))
    len_keep = float(np.sum(np.hypot(*np.diff(arc_keep, axis=0).T)))
    len_cut = float(np.sum(np.hypot(*np.diff(arc_cut, axis=0).T)))
    n_keep = int(round(n_points * len_keep / (len_keep + len_cut)))
    n_keep = min(max(n_keep, 4), n_points - 2)
    n_cut = n_points - n_keep
    pts_keep = keep.point(np.linspace(t_start, t_end, n_keep))  # both crossings included
    pts_cut = cut.point(u_end + du * (np.arange(1, n_cut + 1) / (n_cut + 1)))  # interior only
    return np.vstack((pts_keep, pts_cut))


# Anatomy shared by every set (semi-axes and centres in mm).
BODY = Shape("cylinder", (Ellipse2D(0.0, 0.0, 160.0, 112.0),), -115.0, 115.0)
HEART = Shape("ellipsoid", (Ellipse2D(25.0, -35.0, 55.0, 45.0),), -110.0, -10.0, cz_mm=-60.0)
LUNGS = Shape(
    "lung",
    (Ellipse2D(-80.0, -5.0, 50.0, 72.0), Ellipse2D(80.0, -5.0, 50.0, 72.0)),
    -100.0,
    110.0,
    apex_taper_from_mm=70.0,
    carve=HEART,
    carve_margin_mm=2.0,  # lungs end 2 mm short of the heart: no shared voxels
)
SPINAL_CORD = Shape("cylinder", (Ellipse2D(0.0, 75.0, 6.0, 6.0),), -100.0, 110.0)
ESOPHAGUS = Shape("cylinder", (Ellipse2D(5.0, 30.0, 9.0, 9.0),), -100.0, 110.0)
GTV = Shape("ellipsoid", (Ellipse2D(5.0, 30.0, 18.0, 16.0),), -30.0, 30.0, cz_mm=0.0)
# GTV + ~10 mm radially and +30 mm cranio-caudally, as a rounded cylinder.
PTV = Shape("capsule", (Ellipse2D(5.0, 30.0, 28.0, 26.0),), -60.0, 60.0, flat_half_mm=40.0, cap_mm=20.0)
PGTV = Shape("ellipsoid", (Ellipse2D(5.0, 30.0, 23.0, 21.0),), -35.0, 35.0, cz_mm=0.0)


@dataclass(frozen=True)
class RoiSpec:
    """One ROI to write: number, exact name, interpreted type, colour, shape, vertex count."""

    number: int
    name: str
    interpreted_type: str
    color_rgb: tuple[int, int, int]
    shape: Shape
    n_points: int


ROIS: tuple[RoiSpec, ...] = (
    RoiSpec(ROI_BODY, "BODY", "EXTERNAL", (0, 255, 0), BODY, 48),
    RoiSpec(ROI_LUNGS, "Lungs", "ORGAN", (0, 128, 255), LUNGS, 48),
    RoiSpec(ROI_HEART, "Heart", "ORGAN", (255, 0, 128), HEART, 48),
    RoiSpec(ROI_CORD, "SpinalCord", "ORGAN", (255, 255, 0), SPINAL_CORD, 48),
    RoiSpec(ROI_ESOPHAGUS, "Esophagus", "ORGAN", (160, 82, 45), ESOPHAGUS, 48),
    RoiSpec(ROI_GTV, "GTV", "GTV", (255, 0, 0), GTV, 48),
    RoiSpec(ROI_PTV, "PTV", "PTV", (0, 255, 255), PTV, 48),
    RoiSpec(ROI_PGTV, "PGTV", "PTV", (255, 128, 0), PGTV, 48),
)


def approx_signed_distance_mm(shape: Shape, x_mm: np.ndarray, y_mm: np.ndarray, z_mm: np.ndarray) -> np.ndarray:
    """First-order signed distance to a single-ellipse target surface (< 0 inside).

    Uses (rho - 1) / |grad rho| with rho the normalised radius: exact for a
    sphere and accurate near the surface, which is where the dose fall-off
    is shaped.
    """
    (e,) = shape.ellipses
    dx, dy = x_mm - e.cx_mm, y_mm - e.cy_mm
    dz = z_mm - shape.cz_mm
    if shape.kind == "ellipsoid":
        c = (shape.z_max_mm - shape.z_min_mm) / 2.0
        zz, dzz = dz / c, 1.0 / c
    elif shape.kind == "capsule":
        excess = np.maximum(np.abs(dz) - shape.flat_half_mm, 0.0)
        zz, dzz = excess / shape.cap_mm, 1.0 / shape.cap_mm
    else:
        raise ValueError(shape.kind)
    rho = np.sqrt((dx / e.ax_mm) ** 2 + (dy / e.ay_mm) ** 2 + zz**2)
    rho_safe = np.maximum(rho, 1e-6)
    grad = np.sqrt((dx / e.ax_mm**2) ** 2 + (dy / e.ay_mm**2) ** 2 + (zz * dzz) ** 2) / rho_safe
    return (rho - 1.0) / np.maximum(grad, 1e-6)


# --------------------------------------------------------------------------- cases


@dataclass(frozen=True)
class Beam:
    """A static photon beam: gantry angle (IEC, degrees), relative weight at the
    isocentre and aperture margin around the PTV projection (mm)."""

    name: str
    gantry_deg: float
    weight: float
    margin_mm: float = 7.0


@dataclass(frozen=True)
class Prescription:
    """A TARGET dose reference: ROI number, total dose (Gy), label."""

    roi_number: int
    total_gy: float
    description: str


# Five static fields; AP/PA-weighted so the lungs get a realistic but modest bath.
BEAMS_STANDARD = (
    Beam("AP", 0.0, 0.22),
    Beam("LAO60", 60.0, 0.16),
    Beam("LPO140", 140.0, 0.22),
    Beam("RPO220", 220.0, 0.22),
    Beam("RAO320", 320.0, 0.18),
)
# Heavy, generously open opposed laterals: both lungs are irradiated across
# their whole width, which is what drives Lungs V20Gy far above the limit.
BEAMS_LATERAL = (
    Beam("AP", 0.0, 0.14),
    Beam("LLAT90", 90.0, 0.32, margin_mm=15.0),
    Beam("PA", 180.0, 0.10),
    Beam("RLAT270", 270.0, 0.32, margin_mm=15.0),
    Beam("RAO320", 320.0, 0.12),
)


@dataclass(frozen=True)
class SampleCase:
    """One generated set: identity, prescription, beams and dose-design knobs."""

    folder: str
    patient_id: str
    patient_name: str
    plan_label: str
    plan_name: str
    summary: str
    fractions: int
    prescriptions: tuple[Prescription, ...]
    beams: tuple[Beam, ...] = BEAMS_STANDARD
    include_cord: bool = True
    include_pgtv: bool = False
    pgtv_cold_inferior: bool = False  # remove most of the boost below z = -18 mm
    cord_sparing: float | None = None  # dip of the bath around the cord; None: CORD_SPARING
    # Re-irradiation: an earlier course written as prior/RD.dcm (see PriorCourse).
    prior: "PriorCourse | None" = None

    @property
    def base_rx_gy(self) -> float:
        """Prescription of the PTV (the dose level of the whole-PTV plateau)."""
        return next(p.total_gy for p in self.prescriptions if p.roi_number == ROI_PTV)

    @property
    def boost_rx_gy(self) -> float | None:
        return next((p.total_gy for p in self.prescriptions if p.roi_number == ROI_PGTV), None)

    @property
    def top_rx_gy(self) -> float:
        return max(p.total_gy for p in self.prescriptions)


@dataclass(frozen=True)
class PriorCourse:
    """An earlier course on the same Frame of Reference, written as ``prior/RD.dcm`` only
    (its plan is not shipped): PTV prescription (Gy), fractions and cord sparing of its
    dose, on a coarser grid offset from the current one (so it must be resampled)."""

    rx_gy: float
    fractions: int
    cord_sparing: float
    spacing_mm: float = 5.0
    offset_mm: float = 2.5


RX_PTV = Prescription(ROI_PTV, 50.4, "PTV 50.4Gy")
RX_PGTV = Prescription(ROI_PGTV, 59.92, "PGTV 59.92Gy")

CASES: tuple[SampleCase, ...] = (
    SampleCase(
        "cr-pr-compliant", "RTCHECK-001", "RTCHECK^SAMPLE_CRPR", "ESO_CRPR", "ESCC CR/PR 50.4Gy/28fx",
        "arm cr-pr, PTV 50.4 Gy / 28 fx, everything per protocol", 28, (RX_PTV,),
    ),
    SampleCase(
        "sd-pd-compliant", "RTCHECK-002", "RTCHECK^SAMPLE_SDPD", "ESO_SIB", "ESCC SD/PD SIB 59.92/50.4Gy/28fx",
        "arm sd-pd SIB, PGTV 59.92 Gy + PTV 50.4 Gy / 28 fx, everything per protocol", 28,
        (RX_PTV, RX_PGTV), include_pgtv=True,
    ),
    SampleCase(
        "cr-pr-wrong-fractions", "RTCHECK-003", "RTCHECK^SAMPLE_CRPR_25FX", "ESO_CRPR", "ESCC CR/PR 50Gy/25fx",
        "arm cr-pr but planned 50 Gy / 25 fx (2 Gy/fx)", 25, (Prescription(ROI_PTV, 50.0, "PTV 50Gy"),),
    ),
    SampleCase(
        "cr-pr-lung-v20-high", "RTCHECK-004", "RTCHECK^SAMPLE_CRPR_LUNG", "ESO_CRPR", "ESCC CR/PR 50.4Gy/28fx LAT",
        "arm cr-pr with heavy lateral beams: Lungs V20Gy far above 35%", 28, (RX_PTV,), beams=BEAMS_LATERAL,
    ),
    SampleCase(
        "sd-pd-pgtv-undercovered", "RTCHECK-005", "RTCHECK^SAMPLE_SDPD_COLD", "ESO_SIB",
        "ESCC SD/PD SIB 59.92/50.4Gy/28fx", "arm sd-pd SIB with the inferior PGTV left at ~52 Gy", 28,
        (RX_PTV, RX_PGTV), include_pgtv=True, pgtv_cold_inferior=True,
    ),
    SampleCase(
        "cr-pr-no-cord", "RTCHECK-006", "RTCHECK^SAMPLE_CRPR_NOCORD", "ESO_CRPR", "ESCC CR/PR 50.4Gy/28fx",
        "as cr-pr-compliant but the structure set has no SpinalCord", 28, (RX_PTV,), include_cord=False,
    ),
    SampleCase(
        "reirradiation-cord-cumulative", "RTCHECK-007", "RTCHECK^SAMPLE_REIRRADIATION", "ESO_REIRR", "ESCC re-RT 50Gy/25fx",
        "re-irradiation of a regional recurrence, 50 Gy / 25 fx, after a prior 60 Gy / 30 fx course (prior/RD.dcm); "
        "cumulative cord EQD2 above the limit", 25, (Prescription(ROI_PTV, 50.0, "PTV 50Gy"),),
        cord_sparing=0.0, prior=PriorCourse(60.0, 30, cord_sparing=0.0),
    ),
)


# --------------------------------------------------------------------------- dose model

# Dose-shape parameters (fractions of the prescription unless in mm).
PLATEAU_LEVEL = 1.02  # mean target plateau
PLATEAU_RIPPLE = 0.012  # smooth +/- inhomogeneity, keeps D2% ~103%
PTV_EDGE_MM = 4.0  # 50% point of the target shell outside the PTV surface
PTV_SIGMA_MM = 2.6  # logistic width: ~7 mm 80-20% penumbra
BOOST_EDGE_MM = 3.5  # boost shell 50% point outside the PGTV surface
BOOST_SIGMA_MM = 2.4
FIELD_PENUMBRA_MM = 3.0
ATTENUATION_PER_MM = 0.0045  # 6 MV in water, ~4.5 %/cm
SCATTER_LEVEL = 0.16  # low-dose scatter bath next to the target...
SCATTER_RANGE_MM = 30.0  # ...decaying with distance from the PTV
BATH_CAP = 0.96  # soft ceiling: overlapping fields next to the PTV stay below the plateau
CORD_SPARING = 0.20  # IMRT-like dip of the bath around the spinal cord...
CORD_SPARING_RADIUS_MM = 14.0  # ...Gaussian in the distance from the cord axis


def _logistic(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # overflow-free 1 / (1 + exp(-x))


def _depth_mm(x_mm: np.ndarray, y_mm: np.ndarray, dir_x: float, dir_y: float) -> np.ndarray:
    """Depth along the beam from the BODY surface (parallel beam, ellipse body)."""
    (b,) = BODY.ellipses
    a = (dir_x / b.ax_mm) ** 2 + (dir_y / b.ay_mm) ** 2
    h = x_mm * dir_x / b.ax_mm**2 + y_mm * dir_y / b.ay_mm**2
    c = (x_mm / b.ax_mm) ** 2 + (y_mm / b.ay_mm) ** 2 - 1.0
    return np.maximum((h + np.sqrt(np.maximum(h * h - a * c, 0.0))) / a, 0.0)


def beam_half_width_mm(beam: Beam) -> float:
    """Half-width of the aperture across the beam, in the axial plane, at the isocentre."""
    (e,) = PTV.ellipses
    th = math.radians(beam.gantry_deg)
    # Support function of the PTV ellipse along the in-plane beam's-eye-view axis.
    return math.hypot(e.ax_mm * math.cos(th), e.ay_mm * math.sin(th)) + beam.margin_mm


def beam_half_length_mm(beam: Beam) -> float:
    """Half-length of the aperture along z (cranio-caudal) at the isocentre."""
    return PTV.flat_half_mm + PTV.cap_mm + beam.margin_mm


def beam_bath(case: SampleCase, x_mm: np.ndarray, y_mm: np.ndarray, z_mm: np.ndarray) -> np.ndarray:
    """Sum over beams of weight x depth factor x aperture profile (fraction of Rx)."""
    ix, iy, iz = ISOCENTER_MM
    total = np.zeros(np.broadcast_shapes(x_mm.shape, y_mm.shape, z_mm.shape))
    for beam in case.beams:
        along_z = _logistic((beam_half_length_mm(beam) - np.abs(z_mm - iz)) / FIELD_PENUMBRA_MM)
        th = math.radians(beam.gantry_deg)
        # IEC 61217 HFS: gantry 0 irradiates from anterior (-y) towards posterior (+y).
        dir_x, dir_y = -math.sin(th), math.cos(th)
        u = (x_mm - ix) * math.cos(th) + (y_mm - iy) * math.sin(th)
        across = _logistic((beam_half_width_mm(beam) - np.abs(u)) / FIELD_PENUMBRA_MM)
        depth = _depth_mm(x_mm, y_mm, dir_x, dir_y)
        depth_iso = float(_depth_mm(np.array(ix), np.array(iy), dir_x, dir_y))
        total = total + beam.weight * np.exp(-ATTENUATION_PER_MM * (depth - depth_iso)) * across * along_z
    return total


def dose_gy(case: SampleCase, x_mm: np.ndarray, y_mm: np.ndarray, z_mm: np.ndarray) -> np.ndarray:
    """Analytic plan dose (Gy) at patient coordinates (broadcastable arrays)."""
    d_ptv = approx_signed_distance_mm(PTV, x_mm, y_mm, z_mm)
    shell = _logistic((PTV_EDGE_MM - d_ptv) / PTV_SIGMA_MM)
    # Smooth, deterministic inhomogeneity so the target DVH has a realistic shoulder.
    ripple = np.sin((x_mm - 5.0) / 11.0) * np.cos((y_mm - 30.0) / 13.0) * np.cos(z_mm / 23.0)
    plateau = PLATEAU_LEVEL + PLATEAU_RIPPLE * ripple
    bath = beam_bath(case, x_mm, y_mm, z_mm) + SCATTER_LEVEL * np.exp(-np.maximum(d_ptv, 0.0) / SCATTER_RANGE_MM)
    bath = BATH_CAP * np.tanh(bath / BATH_CAP)
    (cord,) = SPINAL_CORD.ellipses
    r2_cord = (x_mm - cord.cx_mm) ** 2 + (y_mm - cord.cy_mm) ** 2
    sparing = CORD_SPARING if case.cord_sparing is None else case.cord_sparing
    bath = bath * (1.0 - sparing * np.exp(-r2_cord / CORD_SPARING_RADIUS_MM**2))
    relative = shell * plateau + (1.0 - shell) * bath
    dose = case.base_rx_gy * relative
    if case.boost_rx_gy is not None:
        d_pgtv = approx_signed_distance_mm(PGTV, x_mm, y_mm, z_mm)
        boost = _logistic((BOOST_EDGE_MM - d_pgtv) / BOOST_SIGMA_MM)
        if case.pgtv_cold_inferior:
            # A cold inferior PGTV (e.g. a compromise for the heart): boost mostly lost.
            boost = boost * (1.0 - 0.95 * _logistic((-18.0 - z_mm) / 2.0))
        dose = dose + (case.boost_rx_gy - case.base_rx_gy) * (1.0 + 0.5 * PLATEAU_RIPPLE * ripple) * boost
    inside_body = BODY.ellipses[0].norm2(x_mm, y_mm) <= 1.0
    return np.where(inside_body, dose, 0.0)


@dataclass(frozen=True)
class DoseGrid:
    """Axial dose grid: voxel-centre coordinates along x (columns), y (rows), z (frames)."""

    x_mm: np.ndarray
    y_mm: np.ndarray
    z_mm: np.ndarray


def dose_grid() -> DoseGrid:
    """Grid covering the BODY in x/y and every ROI in z with a half-slice margin."""
    (b,) = BODY.ellipses
    # Outermost voxel centres reach the BODY edge in x/y and pass the half-slab
    # (2.5 mm) beyond the last BODY contour in z.
    nx = math.ceil(b.ax_mm / DOSE_SPACING_MM)
    ny = math.ceil(b.ay_mm / DOSE_SPACING_MM)
    nz = math.ceil((BODY.z_max_mm + CONTOUR_SPACING_MM / 2.0) / DOSE_SPACING_MM)
    k = np.arange
    return DoseGrid(
        x_mm=(k(2 * nx + 1) - nx) * DOSE_SPACING_MM,
        y_mm=(k(2 * ny + 1) - ny) * DOSE_SPACING_MM,
        z_mm=(k(2 * nz + 1) - nz) * DOSE_SPACING_MM,
    )


# --------------------------------------------------------------------------- DICOM writing


def uid(case: SampleCase, role: str) -> UID:
    """Deterministic UID for ``role`` (e.g. 'plan', 'study') of ``case``."""
    return generate_uid(entropy_srcs=[UID_ENTROPY_ROOT, case.folder, role])


def _common(case: SampleCase, sop_class: UID, role: str, modality: str, series_number: int) -> Dataset:
    """A dataset with file meta and the patient/study/series/equipment/SOP modules filled."""
    ds = Dataset()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = uid(case, role)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = IMPLEMENTATION_CLASS_UID
    meta.ImplementationVersionName = IMPLEMENTATION_VERSION_NAME
    ds.file_meta = meta

    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.InstanceCreationDate = FIXED_DATE
    ds.InstanceCreationTime = FIXED_TIME
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = uid(case, role)
    ds.StudyDate = FIXED_DATE
    ds.StudyTime = FIXED_TIME
    ds.AccessionNumber = ""
    ds.Modality = modality
    ds.Manufacturer = MANUFACTURER
    ds.ReferringPhysicianName = ""
    ds.StudyDescription = "rtcheck synthetic ESCC sample"
    ds.SeriesDescription = f"{case.folder} {modality}"
    ds.ManufacturerModelName = "generate.py"
    ds.PatientName = case.patient_name
    ds.PatientID = case.patient_id
    ds.PatientBirthDate = ""
    ds.PatientSex = "O"
    ds.StudyInstanceUID = uid(case, "study")
    ds.SeriesInstanceUID = uid(case, f"series-{role}")
    ds.StudyID = "1"
    ds.SeriesNumber = series_number
    ds.InstanceNumber = 1
    ds.FrameOfReferenceUID = uid(case, "frame-of-reference")
    ds.PositionReferenceIndicator = ""
    ds.SoftwareVersions = IMPLEMENTATION_VERSION_NAME
    return ds


def _coords_ds(values: np.ndarray) -> list[float]:
    """Flat contour coordinates rounded to 0.01 mm; -0.0 normalised so text is stable."""
    return [float(v) + 0.0 for v in np.round(np.asarray(values, dtype=float).ravel(), 2)]


def build_structure_set(case: SampleCase) -> Dataset:
    """The RT Structure Set of ``case`` (closed planar axial contours, no images)."""
    ds = _common(case, RTStructureSetStorage, "structure-set", "RTSTRUCT", 1)
    del ds.FrameOfReferenceUID, ds.PositionReferenceIndicator  # not in the RTSTRUCT IOD
    ds.StructureSetLabel = "ESO_RS"
    ds.StructureSetName = "ESCC synthetic"
    ds.StructureSetDate = FIXED_DATE
    ds.StructureSetTime = FIXED_TIME
    for_uid = uid(case, "frame-of-reference")
    ref_for = Dataset()
    ref_for.FrameOfReferenceUID = for_uid
    ds.ReferencedFrameOfReferenceSequence = Sequence([ref_for])

    rois = [
        r
        for r in ROIS
        if (r.number != ROI_CORD or case.include_cord) and (r.number != ROI_PGTV or case.include_pgtv)
    ]
    ss_rois, roi_contours, observations = [], [], []
    for obs_number, roi in enumerate(rois, start=1):
        item = Dataset()
        item.ROINumber = roi.number
        item.ReferencedFrameOfReferenceUID = for_uid
        item.ROIName = roi.name
        item.ROIGenerationAlgorithm = "MANUAL"
        ss_rois.append(item)

        contours = []
        for z in roi.shape.contour_planes_mm():
            for poly in roi.shape.polygons(z, roi.n_points):
                c = Dataset()
                c.ContourGeometricType = "CLOSED_PLANAR"
                c.NumberOfContourPoints = len(poly)
                xyz = np.column_stack((poly, np.full(len(poly), z)))
                c.ContourData = _coords_ds(xyz)
                contours.append(c)
        rc = Dataset()
        rc.ROIDisplayColor = list(roi.color_rgb)
        rc.ContourSequence = Sequence(contours)
        rc.ReferencedROINumber = roi.number
        roi_contours.append(rc)

        obs = Dataset()
        obs.ObservationNumber = obs_number
        obs.ReferencedROINumber = roi.number
        obs.RTROIInterpretedType = roi.interpreted_type
        obs.ROIInterpreter = ""
        observations.append(obs)
    ds.StructureSetROISequence = Sequence(ss_rois)
    ds.ROIContourSequence = Sequence(roi_contours)
    ds.RTROIObservationsSequence = Sequence(observations)
    return ds


def _ds_str(value: float, decimals: int = 4) -> str:
    """Decimal string without float noise (DS values must be <= 16 chars)."""
    text = f"{value:.{decimals}f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def build_plan(case: SampleCase) -> Dataset:
    """The RT Plan of ``case``: dose references, one fraction group, five static beams."""
    ds = _common(case, RTPlanStorage, "plan", "RTPLAN", 2)
    ds.RTPlanLabel = case.plan_label
    ds.RTPlanName = case.plan_name
    ds.RTPlanDescription = case.summary
    ds.RTPlanDate = FIXED_DATE
    ds.RTPlanTime = FIXED_TIME
    ds.RTPlanGeometry = "PATIENT"

    ref_ss = Dataset()
    ref_ss.ReferencedSOPClassUID = RTStructureSetStorage
    ref_ss.ReferencedSOPInstanceUID = uid(case, "structure-set")
    ds.ReferencedStructureSetSequence = Sequence([ref_ss])

    dose_refs = []
    for number, rx in enumerate(case.prescriptions, start=1):
        dr = Dataset()
        dr.DoseReferenceNumber = number
        dr.DoseReferenceUID = uid(case, f"dose-reference-{number}")
        dr.DoseReferenceStructureType = "VOLUME"
        dr.ReferencedROINumber = rx.roi_number
        dr.DoseReferenceDescription = rx.description
        dr.DoseReferenceType = "TARGET"
        dr.TargetPrescriptionDose = _ds_str(rx.total_gy)
        dose_refs.append(dr)
    ds.DoseReferenceSequence = Sequence(dose_refs)

    setup = Dataset()
    setup.PatientPosition = "HFS"
    setup.PatientSetupNumber = 1
    setup.SetupTechnique = "ISOCENTRIC"
    ds.PatientSetupSequence = Sequence([setup])

    # Beam doses (Gy/fx) in 0.1 mGy steps; the last absorbs rounding so the
    # decimal sum equals the highest prescription's dose per fraction exactly.
    per_fraction_tenth_mgy = int(round(case.top_rx_gy / case.fractions * 1e4))
    weight_sum = sum(b.weight for b in case.beams)
    beam_tenth_mgy = [int(round(per_fraction_tenth_mgy * b.weight / weight_sum)) for b in case.beams]
    beam_tenth_mgy[-1] = per_fraction_tenth_mgy - sum(beam_tenth_mgy[:-1])

    ref_beams, beams = [], []
    for number, (beam, tenth_mgy) in enumerate(zip(case.beams, beam_tenth_mgy), start=1):
        beam_dose_gy = tenth_mgy / 1e4
        rb = Dataset()
        rb.ReferencedBeamNumber = number
        rb.BeamDose = _ds_str(beam_dose_gy)
        # ~1.15 MU per cGy at the isocentre: a plausible 6 MV isocentric figure.
        rb.BeamMeterset = _ds_str(round(beam_dose_gy * 100.0 * 1.15, 1), 1)
        ref_beams.append(rb)
        beams.append(_build_beam(number, beam))

    fg = Dataset()
    fg.FractionGroupNumber = 1
    fg.NumberOfFractionsPlanned = case.fractions
    fg.NumberOfBeams = len(case.beams)
    fg.NumberOfBrachyApplicationSetups = 0
    fg.ReferencedBeamSequence = Sequence(ref_beams)
    ref_drs = []
    for number in range(1, len(case.prescriptions) + 1):
        rdr = Dataset()
        rdr.ReferencedDoseReferenceNumber = number
        ref_drs.append(rdr)
    fg.ReferencedDoseReferenceSequence = Sequence(ref_drs)
    ds.FractionGroupSequence = Sequence([fg])
    ds.BeamSequence = Sequence(beams)
    return ds


def _build_beam(number: int, beam: Beam) -> Dataset:
    """One STATIC 6 MV beam with symmetric jaws and two control points."""
    b = Dataset()
    b.Manufacturer = MANUFACTURER
    b.TreatmentMachineName = "SAMPLE_LINAC"
    b.PrimaryDosimeterUnit = "MU"
    b.SourceAxisDistance = 1000
    lim_x, lim_y = Dataset(), Dataset()
    lim_x.RTBeamLimitingDeviceType, lim_x.NumberOfLeafJawPairs = "ASYMX", 1
    lim_y.RTBeamLimitingDeviceType, lim_y.NumberOfLeafJawPairs = "ASYMY", 1
    b.BeamLimitingDeviceSequence = Sequence([lim_x, lim_y])
    b.BeamNumber = number
    b.BeamName = beam.name
    b.BeamDescription = f"{beam.name} static 6MV"
    b.BeamType = "STATIC"
    b.RadiationType = "PHOTON"
    b.TreatmentDeliveryType = "TREATMENT"
    b.NumberOfWedges = 0
    b.NumberOfCompensators = 0
    b.NumberOfBoli = 0
    b.NumberOfBlocks = 0
    b.FinalCumulativeMetersetWeight = 1
    b.NumberOfControlPoints = 2
    b.ReferencedPatientSetupNumber = 1

    half_x = round(beam_half_width_mm(beam), 1)
    half_y = round(beam_half_length_mm(beam), 1)
    cp0 = Dataset()
    cp0.ControlPointIndex = 0
    cp0.NominalBeamEnergy = 6
    cp0.DoseRateSet = 600
    jaw_x, jaw_y = Dataset(), Dataset()
    jaw_x.RTBeamLimitingDeviceType, jaw_x.LeafJawPositions = "ASYMX", [-half_x, half_x]
    jaw_y.RTBeamLimitingDeviceType, jaw_y.LeafJawPositions = "ASYMY", [-half_y, half_y]
    cp0.BeamLimitingDevicePositionSequence = Sequence([jaw_x, jaw_y])
    cp0.GantryAngle = _ds_str(beam.gantry_deg, 1)
    cp0.GantryRotationDirection = "NONE"
    cp0.BeamLimitingDeviceAngle = 0
    cp0.BeamLimitingDeviceRotationDirection = "NONE"
    cp0.PatientSupportAngle = 0
    cp0.PatientSupportRotationDirection = "NONE"
    cp0.TableTopEccentricAngle = 0
    cp0.TableTopEccentricRotationDirection = "NONE"
    cp0.IsocenterPosition = [_ds_str(v, 2) for v in ISOCENTER_MM]
    cp0.CumulativeMetersetWeight = 0
    cp1 = Dataset()
    cp1.ControlPointIndex = 1
    cp1.CumulativeMetersetWeight = 1
    b.ControlPointSequence = Sequence([cp0, cp1])
    return b


def _scaling_for(max_gy: float) -> float:
    """Smallest 'round' DoseGridScaling (1, 2 or 5 x 10^k Gy) whose 16-bit range holds ``max_gy``."""
    exponent = -6
    while True:
        for mantissa in (1, 2, 5):
            step = mantissa * 10.0**exponent
            if max_gy / step <= 65535:
                return step
        exponent += 1


def _fill_dose_grid(ds: Dataset, x_mm: np.ndarray, y_mm: np.ndarray, z_mm: np.ndarray, step_mm: float,
                    dose: np.ndarray, comment: str, plan_uid: str) -> None:
    """The image, grid and dose elements of an RT Dose (PLAN, PHYSICAL, Gy, 16-bit) of ``dose`` [Gy] on the axes."""
    scaling = _scaling_for(float(dose.max()))
    pixels = np.round(dose / scaling).astype("<u2")
    ds.ImagePositionPatient = [_ds_str(v, 2) for v in (x_mm[0], y_mm[0], z_mm[0])]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.SliceThickness = _ds_str(step_mm, 2)
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.NumberOfFrames = len(z_mm)
    ds.FrameIncrementPointer = Tag(0x3004, 0x000C)  # GridFrameOffsetVector
    ds.Rows = len(y_mm)
    ds.Columns = len(x_mm)
    ds.PixelSpacing = [_ds_str(step_mm, 2), _ds_str(step_mm, 2)]  # row, column
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    ds.DoseUnits = "GY"
    ds.DoseType = "PHYSICAL"
    ds.DoseComment = comment
    ds.DoseSummationType = "PLAN"
    ds.GridFrameOffsetVector = [_ds_str(v - z_mm[0], 2) for v in z_mm]
    ds.DoseGridScaling = _ds_str(scaling, 6)
    ref_plan = Dataset()
    ref_plan.ReferencedSOPClassUID = RTPlanStorage
    ref_plan.ReferencedSOPInstanceUID = plan_uid
    ds.ReferencedRTPlanSequence = Sequence([ref_plan])
    ds.PixelData = pixels.tobytes()
    ds["PixelData"].VR = "OW"


def build_dose(case: SampleCase) -> Dataset:
    """The RT Dose (PLAN summation, PHYSICAL, Gy) of ``case`` on the 4 mm grid."""
    ds = _common(case, RTDoseStorage, "dose", "RTDOSE", 3)
    grid = dose_grid()
    z, y, x = np.meshgrid(grid.z_mm, grid.y_mm, grid.x_mm, indexing="ij")
    dose = dose_gy(case, x, y, z)
    _fill_dose_grid(ds, grid.x_mm, grid.y_mm, grid.z_mm, DOSE_SPACING_MM, dose, f"analytic sample dose, {case.folder}",
                    uid(case, "plan"))
    return ds


def prior_case(case: SampleCase) -> SampleCase:
    """The earlier course of a re-irradiation ``case`` as a case of its own (same anatomy and beams)."""
    assert case.prior is not None
    rx = Prescription(ROI_PTV, case.prior.rx_gy, f"PTV {case.prior.rx_gy:g}Gy")
    return SampleCase(
        case.folder, case.patient_id, case.patient_name, case.plan_label + "_PRIOR", case.plan_name + " prior course",
        "prior course", case.prior.fractions, (rx,), cord_sparing=case.prior.cord_sparing,
    )


def build_prior_dose(case: SampleCase) -> Dataset:
    """The prior course's RT Dose: same Frame of Reference, its own (absent) plan, a coarser offset grid."""
    assert case.prior is not None
    prior = prior_case(case)
    ds = _common(case, RTDoseStorage, "prior-dose", "RTDOSE", 4)
    step, offset = case.prior.spacing_mm, case.prior.offset_mm
    (b,) = BODY.ellipses
    k = np.arange

    def axis(half_mm: float) -> np.ndarray:
        n = math.ceil((half_mm - offset) / step)
        return offset - step + step * (k(2 * n + 2) - n)  # offset, symmetric about 0

    x_mm, y_mm = axis(b.ax_mm), axis(b.ay_mm)
    z_mm = axis(BODY.z_max_mm + CONTOUR_SPACING_MM / 2.0)
    z, y, x = np.meshgrid(z_mm, y_mm, x_mm, indexing="ij")
    dose = dose_gy(prior, x, y, z)
    ds.SeriesDescription = f"{case.folder} prior course RTDOSE"
    # An earlier study, a year before the current course (which is dated FIXED_DATE).
    ds.StudyInstanceUID = uid(case, "prior-study")
    ds.StudyDate = ds.InstanceCreationDate = PRIOR_COURSE_DATE
    # The plan of the earlier course is not shipped: only its dose is needed.
    _fill_dose_grid(ds, x_mm, y_mm, z_mm, step, dose,
                    f"analytic sample dose, prior course {case.prior.rx_gy:g} Gy / {case.prior.fractions} fx",
                    uid(case, "prior-plan"))
    return ds


OUTPUT_FILES = {"RS.dcm": build_structure_set, "RP.dcm": build_plan, "RD.dcm": build_dose}
PRIOR_DOSE_FILE = Path("prior") / "RD.dcm"


def write_case(case: SampleCase, root: Path = OUTPUT_DIR) -> list[Path]:
    """Write the three DICOM files of ``case`` into ``root / case.folder``."""
    folder = root / case.folder
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.dcm"):  # the folder is ours: drop files from older layouts
        if stale.name not in OUTPUT_FILES:
            stale.unlink()
    paths = []
    for name, build in OUTPUT_FILES.items():
        path = folder / name
        build(case).save_as(path, enforce_file_format=True)
        paths.append(path)
    if case.prior is not None:
        path = folder / PRIOR_DOSE_FILE
        path.parent.mkdir(exist_ok=True)
        build_prior_dose(case).save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def main() -> None:
    for case in CASES:
        for path in write_case(case):
            print(f"wrote {path.relative_to(OUTPUT_DIR.parent)} ({path.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
