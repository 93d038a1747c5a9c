#!/usr/bin/env python3
"""DVH speed benchmark: rtcheck against dicompyler-core on a synthetic thoracic plan.

The script

1. writes a synthetic esophageal (thoracic) case as real DICOM files: an RT
   Structure Set (14 ROIs from the BODY down to a PTV ring with a hole, contours
   every 2.5 mm over 400 mm, 60-120 points per polygon), an RT Dose on a 2.5 mm
   grid of 140 x 100 x 170 = 2.38 M voxels (uint32 with DoseGridScaling, an
   analytic plan-like dose) and an RT Plan linking the two;
2. times rtcheck's DVHs of every structure in a child process per repeat
   (so that the peak memory is that of the DVH engine alone);
3. times dicompyler-core 0.5.6's default ``dvhcalc.get_dvh`` loop over the same
   structures, in its own virtual environment with pydicom < 3 (created on
   first use, reused afterwards);
4. compares volume (cc), mean and maximum dose (Gy) structure by structure,
   and prints the speed ratio and the memory figures against the goals.

Units: positions in mm (DICOM patient coordinates), doses in Gy, volumes in
cc, times in seconds, memory in MB (10^6 bytes).

It is a benchmark, not a test: it exits 0 whatever the figures are, 1 when an
engine crashed, and 2 when dicompyler-core's environment cannot be made
(e.g. no access to the package index).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
DEFAULT_DICOMPYLER_VENV = BENCH_DIR / ".venv-dicompyler"
DICOMPYLER_REQUIREMENTS = ("pydicom>=2.4,<3", "dicompyler-core==0.5.6", "numpy")

RT_PLAN_CLASS = "1.2.840.10008.5.1.4.1.1.481.5"
RT_DOSE_CLASS = "1.2.840.10008.5.1.4.1.1.481.2"
RT_STRUCT_CLASS = "1.2.840.10008.5.1.4.1.1.481.3"

# Goals of the issue.
SPEED_GOAL = 10.0  # dicompyler-core time / rtcheck time, at least
MEMORY_GOAL_DOSE_FACTOR = 3.0  # DVH-phase memory below 3 x dose array + one structure mask
LARGE_STRUCTURE_CC = 100.0  # "where dicompyler-core is right": structures above this volume
VOLUME_TOLERANCE = 0.03  # relative
MEAN_TOLERANCE = 0.02  # fraction of the dose grid's maximum

PRESCRIPTION_GY = 50.0  # PTV
BOOST_GY = 60.0  # PGTV (simultaneous integrated boost)
FRACTIONS = 25

# --------------------------------------------------------------------------
# Synthetic case
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Shape:
    """A tube of star-shaped polygons along z.

    In-plane: an ellipse of semi-axes ``ax`` x ``ay`` (mm) around
    (``cx``, ``cy``) (mm), radially perturbed by a few harmonics.  Along z
    (``z_low``..``z_high`` mm) the semi-axes are scaled by a profile that
    tapers over ``taper_top`` / ``taper_bottom`` mm (0: no taper) down to
    ``min_scale``.  ``drift`` (mm) moves the centre sideways with z.
    """

    cx: float
    cy: float
    ax: float
    ay: float
    z_low: float
    z_high: float
    taper_top: float = 0.0
    taper_bottom: float = 0.0
    min_scale: float = 0.3
    drift: float = 0.0
    wobble: float = 0.05  # amplitude of the radial harmonics (fraction of the radius)
    seed: int = 0

    def scale_at(self, z: float) -> float:
        """Factor (dimensionless) on the semi-axes at plane ``z`` (mm)."""
        scale = 1.0
        if self.taper_top > 0:
            scale = min(scale, math.sqrt(max(0.0, (self.z_high - z) / self.taper_top)))
        if self.taper_bottom > 0:
            scale = min(scale, math.sqrt(max(0.0, (z - self.z_low) / self.taper_bottom)))
        return max(self.min_scale, scale)

    def polygon(self, z: float, grow_mm: float = 0.0) -> np.ndarray:
        """Vertices (N x 2, mm) of the contour at plane ``z``, semi-axes grown by ``grow_mm``."""
        rng = np.random.default_rng(self.seed)
        orders = np.array([2, 3, 5])
        amplitudes = self.wobble * rng.uniform(0.3, 1.0, orders.size) / orders ** 0.5
        phases = rng.uniform(0, 2 * np.pi, orders.size)
        s = self.scale_at(z)
        ax, ay = self.ax * s + grow_mm, self.ay * s + grow_mm
        perimeter = math.pi * (3 * (ax + ay) - math.sqrt((3 * ax + ay) * (ax + 3 * ay)))
        n = int(np.clip(round(perimeter / 4.0), 60, 120))
        theta = np.linspace(0, 2 * np.pi, n, endpoint=False)
        radius = 1.0 + sum(a * np.cos(k * theta + p + z / 90.0) for k, a, p in zip(orders, amplitudes, phases))
        cx = self.cx + self.drift * math.sin(z / 90.0)
        return np.column_stack((cx + ax * radius * np.cos(theta), self.cy + ay * radius * np.sin(theta)))


@dataclass(frozen=True)
class RoiSpec:
    """One ROI: its polygons per plane are those of ``shapes`` (union of disjoint parts),
    minus those of ``holes`` (nested, even-odd)."""

    number: int
    name: str
    interpreted_type: str
    shapes: tuple[Shape, ...]
    holes: tuple[Shape, ...] = ()
    grow_mm: tuple[float, ...] = ()  # per shape, mm added to its semi-axes

    def polygons(self, z: float) -> list[tuple[np.ndarray, int]]:
        """(vertices N x 2 mm, +1 outer / -1 hole) of the contours at plane ``z``."""
        out: list[tuple[np.ndarray, int]] = []
        grows = self.grow_mm or (0.0,) * len(self.shapes)
        for shape, grow in zip(self.shapes, grows):
            if shape.z_low - 1e-6 <= z <= shape.z_high + 1e-6:
                out.append((shape.polygon(z, grow), 1))
        for hole in self.holes:
            if hole.z_low - 1e-6 <= z <= hole.z_high + 1e-6:
                out.append((hole.polygon(z), -1))
        return out


@dataclass(frozen=True)
class CaseGeometry:
    """Dose grid (voxel centres, mm) and contour planes (mm) of a case."""

    columns: int
    rows: int
    frames: int
    spacing_mm: float
    x0_mm: float
    y0_mm: float
    z0_mm: float
    contour_planes_mm: tuple[float, ...]

    @property
    def voxels(self) -> int:
        return self.columns * self.rows * self.frames


@dataclass
class Case:
    """A written case: its folder and files, and per ROI the exact contour volume (cc)."""

    folder: Path
    structure_path: Path
    dose_path: Path
    plan_path: Path
    geometry: CaseGeometry
    roi_names: dict[int, str]
    reference_volume_cc: dict[int, float]
    dose_max_gy: float
    contour_points: int
    build_seconds: float = 0.0


def _tumour_shapes() -> tuple[Shape, Shape, Shape]:
    """GTV, PGTV and PTV of a mid-thoracic esophageal tumour (mm)."""
    gtv = Shape(-5, 38, 18, 16, -30, 30, taper_top=10, taper_bottom=10, min_scale=0.5, wobble=0.06, seed=11)
    pgtv = Shape(-5, 38, 24, 22, -35, 35, taper_top=10, taper_bottom=10, min_scale=0.55, wobble=0.05, seed=12)
    ptv = Shape(-5, 38, 36, 33, -50, 50, taper_top=12, taper_bottom=12, min_scale=0.6, wobble=0.04, seed=13)
    return gtv, pgtv, ptv


def thoracic_rois(quick: bool) -> list[RoiSpec]:
    """The ROIs of the case: 14 for the full case, 5 for ``quick``."""
    body = Shape(0, 0, 160, 112, -200, 200, wobble=0.02, seed=1)
    lung_r = Shape(-68, 5, 52, 72, -70, 150, taper_top=60, taper_bottom=20, min_scale=0.3, wobble=0.06, seed=2)
    lung_l = Shape(70, 5, 50, 70, -60, 150, taper_top=60, taper_bottom=20, min_scale=0.3, wobble=0.06, seed=3)
    heart = Shape(25, -30, 60, 48, -75, 25, taper_top=40, taper_bottom=30, min_scale=0.35, wobble=0.05, seed=4)
    cord = Shape(0, 80, 6, 6, -200, 200, wobble=0.03, seed=5)
    esophagus = Shape(-5, 40, 10, 8, -130, 185, drift=6, wobble=0.05, seed=6)
    trachea = Shape(0, 10, 9, 9, 70, 200, wobble=0.03, seed=7)
    liver = Shape(-60, -5, 95, 80, -200, -65, taper_top=35, min_scale=0.35, wobble=0.06, seed=8)
    stomach = Shape(65, -15, 45, 38, -185, -85, taper_top=25, taper_bottom=25, min_scale=0.35, wobble=0.06, seed=9)
    gtv, pgtv, ptv = _tumour_shapes()
    if quick:
        return [
            RoiSpec(1, "BODY", "EXTERNAL", (body,)),
            RoiSpec(2, "Lungs", "ORGAN", (lung_r, lung_l)),
            RoiSpec(3, "Heart", "ORGAN", (heart,)),
            RoiSpec(4, "SpinalCord", "ORGAN", (cord,)),
            RoiSpec(5, "PTV", "PTV", (ptv,)),
        ]
    return [
        RoiSpec(1, "BODY", "EXTERNAL", (body,)),
        RoiSpec(2, "Lung_R", "ORGAN", (lung_r,)),
        RoiSpec(3, "Lung_L", "ORGAN", (lung_l,)),
        RoiSpec(4, "Lungs", "ORGAN", (lung_r, lung_l)),
        RoiSpec(5, "Heart", "ORGAN", (heart,)),
        RoiSpec(6, "SpinalCord", "ORGAN", (cord,)),
        RoiSpec(7, "Esophagus", "ORGAN", (esophagus,)),
        RoiSpec(8, "Trachea", "ORGAN", (trachea,)),
        RoiSpec(9, "Liver", "ORGAN", (liver,)),
        RoiSpec(10, "Stomach", "ORGAN", (stomach,)),
        RoiSpec(11, "GTV", "GTV", (gtv,)),
        RoiSpec(12, "PGTV", "PTV", (pgtv,)),
        RoiSpec(13, "PTV", "PTV", (ptv,)),
        RoiSpec(14, "Ring_PTV", "CONTROL", (ptv,), holes=(ptv,), grow_mm=(20.0,)),
    ]


def case_geometry(quick: bool, grid_mm: float = 2.5) -> CaseGeometry:
    """Dose grid over 350 x 250 x 425 mm (quick: 175 mm in z) at ``grid_mm``, and its contour planes.

    At 2.5 mm: 140 x 100 x 170 voxels (quick: x 70); at 1 mm: 350 x 250 x 425.
    Contour planes every 2.5 mm (as CT slices; at 2.5 mm they coincide with dose
    planes): 161 planes from -200 to +200 mm, quick 60 from -75 to +72.5 mm.
    """
    plane_spacing = 2.5
    extent_z, low_z = (175.0, -86.25) if quick else (425.0, -211.25)
    planes = np.arange(-75.0, 72.5 + 1e-6, plane_spacing) if quick else np.arange(-200.0, 200.0 + 1e-6, plane_spacing)
    return CaseGeometry(
        columns=round(350.0 / grid_mm),
        rows=round(250.0 / grid_mm),
        frames=round(extent_z / grid_mm),
        spacing_mm=grid_mm,
        x0_mm=-175.0 + grid_mm / 2,
        y0_mm=-125.0 + grid_mm / 2,
        z0_mm=low_z + grid_mm / 2,
        contour_planes_mm=tuple(float(z) for z in planes),
    )


def _phi(t: np.ndarray) -> np.ndarray:
    """Standard normal cumulative distribution (vectorised, float64)."""
    # numpy has no erf: tabulate math.erf finely (error < 1e-6) and interpolate.
    grid = np.linspace(-8, 8, 4001)
    table = np.array([0.5 * (1 + math.erf(v / math.sqrt(2))) for v in grid])
    return np.interp(t, grid, table)


def _coverage(x: np.ndarray, y: np.ndarray, z: np.ndarray, shape: Shape, sigma_mm: float) -> np.ndarray:
    """Fraction (0-1) of a prescription a target receives: 95 % at its surface, penumbra ``sigma_mm``."""
    r_ell = np.sqrt(((x - shape.cx) / shape.ax) ** 2 + ((y - shape.cy) / shape.ay) ** 2)
    radial = (r_ell - 1.0) * math.sqrt(shape.ax * shape.ay)
    half_length = (shape.z_high - shape.z_low) / 2
    axial = np.abs(z - (shape.z_high + shape.z_low) / 2) - half_length
    outside = np.hypot(np.maximum(radial, 0), np.maximum(axial, 0)) + np.minimum(np.maximum(radial, axial), 0)
    return _phi((1.645 * sigma_mm - outside) / sigma_mm)


def plan_dose_gy(geometry: CaseGeometry) -> np.ndarray:
    """Analytic plan-like dose (Gy) on the grid, indexed [frame, row, column] = [z, y, x].

    PTV plateau at 50 Gy and PGTV boost to 60 Gy with a 5 mm penumbra, a
    five-field beam pattern and a low-dose bath around them, a +-1.5 % ripple
    (hot spots), zero outside the body outline.
    """
    x = geometry.x0_mm + geometry.spacing_mm * np.arange(geometry.columns)
    y = geometry.y0_mm + geometry.spacing_mm * np.arange(geometry.rows)
    z = geometry.z0_mm + geometry.spacing_mm * np.arange(geometry.frames)
    # A few frames at a time: the formulas' temporaries stay small on a 1 mm grid.
    dose = np.empty((z.size, y.size, x.size))
    for first in range(0, z.size, 16):
        dose[first : first + 16] = _plan_dose_at(x, y, z[first : first + 16])
    return dose


def _plan_dose_at(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
    """``plan_dose_gy`` on the grid of the axes x, y, z (mm), indexed [z, y, x]."""
    zz, yy, xx = np.meshgrid(z, y, x, indexing="ij", sparse=True)
    _, pgtv, ptv = _tumour_shapes()
    ptv_cover = _coverage(xx, yy, zz, ptv, 5.0)
    boost_cover = _coverage(xx, yy, zz, pgtv, 5.0)
    target = PRESCRIPTION_GY * ptv_cover + (BOOST_GY - PRESCRIPTION_GY) * boost_cover

    iso_x, iso_y = ptv.cx, ptv.cy
    in_plane = np.hypot(xx - iso_x, yy - iso_y)
    along = np.abs(zz) - (ptv.z_high - ptv.z_low) / 2
    bath = 16.0 * np.exp(-(in_plane**2) / (2 * 55.0**2)) * _phi((20.0 - along) / 10.0)
    bath = bath + 3.0 * np.exp(-(in_plane**2) / (2 * 150.0**2)) * _phi((80.0 - along) / 25.0)
    for angle in np.radians([0.0, 72.0, 144.0, 216.0, 288.0]):
        across = np.abs((xx - iso_x) * math.cos(angle) + (yy - iso_y) * math.sin(angle))
        depth = (xx - iso_x) * math.sin(angle) - (yy - iso_y) * math.cos(angle)
        beam = 6.0 * _phi((40.0 - across) / 4.0) * np.exp(-0.004 * (np.clip(depth, -150, None) + 150))
        bath = bath + beam * _phi((10.0 - along) / 6.0)
    dose = target + bath * (1.0 - ptv_cover)
    ripple = 1.0 + 0.015 * np.sin(xx / 13.0 + 0.3) * np.sin(yy / 17.0) * np.cos(zz / 19.0)
    dose = dose * ripple
    # Nothing outside the body (its mean outline; the contour adds a 2 % wobble).
    inside_body = (xx / 160.0) ** 2 + (yy / 112.0) ** 2 <= 1.0
    return np.where(inside_body, dose, 0.0)


def _base_dataset(sop_class: str, modality: str, shared: dict[str, str]) -> Dataset:
    """A data set with file meta and the patient/study/frame attributes common to the case."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = modality
    ds.PatientName = "Bench^Thorax"
    ds.PatientID = "RTCHECK-BENCH"
    ds.StudyInstanceUID = shared["study"]
    ds.SeriesInstanceUID = generate_uid()
    ds.FrameOfReferenceUID = shared["frame"]
    ds.StudyDate = ds.SeriesDate = "20240101"
    ds.StudyTime = ds.SeriesTime = "120000"
    ds.Manufacturer = "rtcheck benchmark"
    return ds


def _structure_set(rois: list[RoiSpec], planes: tuple[float, ...], shared: dict[str, str]) -> tuple[Dataset, dict[int, float], int]:
    """RT Structure Set data set, the exact contour volume of each ROI (cc) and the number of points."""
    ds = _base_dataset(RT_STRUCT_CLASS, "RTSTRUCT", shared)
    ds.StructureSetLabel = "BENCH_THORAX"
    ds.StructureSetDate, ds.StructureSetTime = "20240101", "120000"
    frame = Dataset()
    frame.FrameOfReferenceUID = shared["frame"]
    ds.ReferencedFrameOfReferenceSequence = Sequence([frame])
    spacing = planes[1] - planes[0] if len(planes) > 1 else 2.5
    roi_items, contour_items, observations = [], [], []
    volumes: dict[int, float] = {}
    points_total = 0
    for roi in rois:
        item = Dataset()
        item.ROINumber = roi.number
        item.ReferencedFrameOfReferenceUID = shared["frame"]
        item.ROIName = roi.name
        item.ROIGenerationAlgorithm = "MANUAL"
        roi_items.append(item)
        contours = []
        area_mm2 = 0.0
        for z in planes:
            for xy, sign in roi.polygons(z):
                x, y = xy[:, 0], xy[:, 1]
                area_mm2 += sign * 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))
                contour = Dataset()
                contour.ContourGeometricType = "CLOSED_PLANAR"
                contour.NumberOfContourPoints = len(xy)
                contour.ContourData = [f"{v:.2f}" for v in np.column_stack((xy, np.full(len(xy), z))).ravel()]
                contours.append(contour)
                points_total += len(xy)
        volumes[roi.number] = area_mm2 * spacing / 1000.0
        rc = Dataset()
        rc.ReferencedROINumber = roi.number
        rc.ROIDisplayColor = [(37 * roi.number) % 256, (91 * roi.number) % 256, (151 * roi.number) % 256]
        rc.ContourSequence = Sequence(contours)
        contour_items.append(rc)
        obs = Dataset()
        obs.ObservationNumber = roi.number
        obs.ReferencedROINumber = roi.number
        obs.RTROIInterpretedType = roi.interpreted_type
        obs.ROIInterpreter = ""
        observations.append(obs)
    ds.StructureSetROISequence = Sequence(roi_items)
    ds.ROIContourSequence = Sequence(contour_items)
    ds.RTROIObservationsSequence = Sequence(observations)
    return ds, volumes, points_total


def _plan(structure_uid: str, ptv_number: int, shared: dict[str, str]) -> Dataset:
    """RT Plan: PTV 50 Gy in 25 fractions, five beams, referencing the structure set."""
    ds = _base_dataset(RT_PLAN_CLASS, "RTPLAN", shared)
    ds.RTPlanLabel = "BENCH_ESO"
    ds.RTPlanName = "Bench esophagus"
    ds.RTPlanGeometry = "PATIENT"
    ref = Dataset()
    ref.ReferencedSOPClassUID = RT_STRUCT_CLASS
    ref.ReferencedSOPInstanceUID = structure_uid
    ds.ReferencedStructureSetSequence = Sequence([ref])
    target = Dataset()
    target.DoseReferenceNumber = 1
    target.DoseReferenceStructureType = "VOLUME"
    target.DoseReferenceDescription = "PTV"
    target.DoseReferenceType = "TARGET"
    target.ReferencedROINumber = ptv_number
    target.TargetPrescriptionDose = PRESCRIPTION_GY
    ds.DoseReferenceSequence = Sequence([target])
    beams, refs = [], []
    for number in range(1, 6):
        beam = Dataset()
        beam.BeamNumber = number
        beam.BeamName = f"F{number}"
        beam.BeamType = "STATIC"
        beam.RadiationType = "PHOTON"
        beam.TreatmentDeliveryType = "TREATMENT"
        beams.append(beam)
        beam_ref = Dataset()
        beam_ref.ReferencedBeamNumber = number
        beam_ref.BeamDose = f"{PRESCRIPTION_GY / FRACTIONS / 5:.6f}"
        beam_ref.BeamMeterset = 100.0
        refs.append(beam_ref)
    ds.BeamSequence = Sequence(beams)
    group = Dataset()
    group.FractionGroupNumber = 1
    group.NumberOfFractionsPlanned = FRACTIONS
    group.NumberOfBeams = len(beams)
    group.NumberOfBrachyApplicationSetups = 0
    group.ReferencedBeamSequence = Sequence(refs)
    dose_ref = Dataset()
    dose_ref.ReferencedDoseReferenceNumber = 1
    group.ReferencedDoseReferenceSequence = Sequence([dose_ref])
    ds.FractionGroupSequence = Sequence([group])
    return ds


def _dose(geometry: CaseGeometry, dose_gy: np.ndarray, plan_uid: str, shared: dict[str, str]) -> tuple[Dataset, float]:
    """RT Dose (uint32 + DoseGridScaling, multi-frame, relative frame offsets) and its maximum (Gy) as stored."""
    ds = _base_dataset(RT_DOSE_CLASS, "RTDOSE", shared)
    ds.DoseUnits = "GY"
    ds.DoseType = "PHYSICAL"
    ds.DoseSummationType = "PLAN"
    scaling = float(f"{float(dose_gy.max()) / 4.0e6:.6e}")  # a TPS-like, not round, scaling
    counts = np.rint(dose_gy / scaling).astype(np.uint32)
    ds.DoseGridScaling = f"{scaling:.6e}"
    ds.ImagePositionPatient = [f"{geometry.x0_mm:.2f}", f"{geometry.y0_mm:.2f}", f"{geometry.z0_mm:.2f}"]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.PixelSpacing = [geometry.spacing_mm, geometry.spacing_mm]
    ds.SliceThickness = geometry.spacing_mm
    ds.GridFrameOffsetVector = [f"{geometry.spacing_mm * k:.2f}" for k in range(geometry.frames)]
    ds.FrameIncrementPointer = 0x3004000C
    ds.NumberOfFrames = geometry.frames
    ds.Rows, ds.Columns = geometry.rows, geometry.columns
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 32
    ds.HighBit = 31
    ds.PixelRepresentation = 0
    ds.PatientPosition = "HFS"
    plan_ref = Dataset()
    plan_ref.ReferencedSOPClassUID = RT_PLAN_CLASS
    plan_ref.ReferencedSOPInstanceUID = plan_uid
    ds.ReferencedRTPlanSequence = Sequence([plan_ref])
    ds.PixelData = counts.astype("<u4").tobytes()
    return ds, float(counts.max()) * scaling


def build_case(folder: Path, quick: bool, grid_mm: float = 2.5) -> Case:
    """Write RS.dcm, RP.dcm and RD.dcm of the synthetic thoracic case into ``folder``."""
    start = time.perf_counter()
    folder.mkdir(parents=True, exist_ok=True)
    geometry = case_geometry(quick, grid_mm)
    rois = thoracic_rois(quick)
    shared = {"study": generate_uid(), "frame": generate_uid()}
    structure, volumes, points = _structure_set(rois, geometry.contour_planes_mm, shared)
    ptv_number = next(r.number for r in rois if r.name == "PTV")
    plan = _plan(structure.SOPInstanceUID, ptv_number, shared)
    dose, dose_max = _dose(geometry, plan_dose_gy(geometry), plan.SOPInstanceUID, shared)
    paths = {name: folder / f"{name}.dcm" for name in ("RS", "RP", "RD")}
    for name, ds in (("RS", structure), ("RP", plan), ("RD", dose)):
        ds.save_as(paths[name], enforce_file_format=True)
    return Case(
        folder=folder,
        structure_path=paths["RS"],
        dose_path=paths["RD"],
        plan_path=paths["RP"],
        geometry=geometry,
        roi_names={r.number: r.name for r in rois},
        reference_volume_cc=volumes,
        dose_max_gy=dose_max,
        contour_points=points,
        build_seconds=time.perf_counter() - start,
    )


# --------------------------------------------------------------------------
# Child processes
# --------------------------------------------------------------------------

# Runs in the rtcheck interpreter; argv: case folder, result JSON path, mode:
# "" (compute_dvhs when rtcheck has it), "loop" (compute_dvh per ROI) or "profile" (loop under cProfile).
# Both child scripts read their own memory figures the same way; they run in different
# interpreters (dicompyler-core's has no rtcheck), so the function travels as source.
STATUS_MB_SOURCE = '''def status_mb(key):
    """VmRSS / VmHWM of this process in MB (10^6 bytes), None where /proc is absent."""
    try:
        with open("/proc/self/status") as fp:
            for line in fp:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024 / 1e6
    except OSError:
        return None
    return None
'''

RTCHECK_CHILD = r'''
import gc, json, resource, sys, time
start = time.perf_counter()
folder, result_path, mode = sys.argv[1], sys.argv[2], sys.argv[3]

{status_mb}
import numpy as np
import rtcheck.dvh as dvh
from rtcheck.dicom.planset import build_dvh_set, load_inputs
imported = time.perf_counter()
inputs = load_inputs([folder])
plan_set = build_dvh_set(inputs)
loaded = time.perf_counter()
gc.collect()
baseline_mb = status_mb("VmRSS")
load_peak_mb = status_mb("VmHWM")

def reset_peak():
    """Reset VmHWM to the current RSS (Linux /proc/self/clear_refs); False where that is impossible."""
    try:
        with open("/proc/self/clear_refs", "w") as fp:
            fp.write("5")
        return True
    except OSError:
        return False

phase_peak_reset = reset_peak()

profiler = None
if mode == "profile":
    import cProfile
    profiler = cProfile.Profile()
structure_set, dose = plan_set.structure_set, plan_set.dose
# Revisions before issue 12 applied one structure-set spacing to every ROI; later ones use each ROI's own planes.
spacing = structure_set.typical_plane_spacing_mm() if hasattr(structure_set, "typical_plane_spacing_mm") else None
volumes = [roi for roi in structure_set.rois if roi.is_volume]
per_roi, per_roi_peak = {}, {}
phase_peak_mb = None
t0, c0 = time.perf_counter(), time.process_time()
if profiler is not None:
    profiler.enable()
# cProfile sees only the calling thread: profile the one-structure-at-a-time loop.
if hasattr(dvh, "compute_dvhs") and mode == "":
    # compute_dvhs(structure_set, dose) or compute_dvhs(rois, dose, plane_spacing_mm=...), whichever it is.
    import inspect
    params = inspect.signature(dvh.compute_dvhs).parameters
    whole_set = next(iter(params)) == "structure_set"
    kwargs = {"plane_spacing_mm": spacing} if "plane_spacing_mm" in params and not whole_set else {}
    engine = "rtcheck.dvh.compute_dvhs(" + ("structure_set" if whole_set else "rois") + ", dose)"
    found = dvh.compute_dvhs(structure_set if whole_set else volumes, dose, **kwargs)
    histograms = list(found.values()) if hasattr(found, "values") else list(found)
else:
    engine = "rtcheck.dvh.compute_dvh loop"
    histograms = []
    for roi in volumes:
        before = status_mb("VmRSS") if phase_peak_reset else None
        t = time.perf_counter()
        histograms.append(dvh.compute_dvh(roi, dose, **({"plane_spacing_mm": spacing} if spacing is not None else {})))
        per_roi[roi.number] = time.perf_counter() - t
        if phase_peak_reset:  # peak of this structure, then a fresh high-water mark for the next
            peak = status_mb("VmHWM")
            per_roi_peak[roi.number] = peak - before
            phase_peak_mb = max(phase_peak_mb or 0.0, peak)
            reset_peak()
t1, c1 = time.perf_counter(), time.process_time()
if profiler is not None:
    profiler.disable()
if phase_peak_reset:
    phase_peak_mb = max(phase_peak_mb or 0.0, status_mb("VmHWM"))
numbers = {roi.name: roi.number for roi in volumes}
stats = {}
for h in histograms:
    number = h.roi_number if getattr(h, "roi_number", None) is not None else numbers.get(h.name)
    stats[str(number)] = {
        "name": h.name, "volume_cc": float(h.total_volume_cc), "inside_cc": float(h.volume_cc),
        "mean_gy": float(h.mean_gy), "max_gy": float(h.max_gy), "min_gy": float(h.min_gy),
    }
result = {
    "engine": engine,
    "import_s": imported - start, "load_s": loaded - imported, "dvh_s": t1 - t0, "dvh_cpu_s": c1 - c0,
    "per_roi_s": {str(k): v for k, v in per_roi.items()},
    "per_roi_peak_mb": {str(k): v for k, v in per_roi_peak.items()},
    "baseline_rss_mb": baseline_mb, "load_peak_mb": load_peak_mb, "phase_peak_mb": phase_peak_mb,
    "ru_maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6,
    "dose_bytes": int(dose.dose_gy.nbytes), "dose_dtype": str(dose.dose_gy.dtype),
    "dose_shape": list(dose.dose_gy.shape), "dose_max_gy": dose.max_gy,
    "plane_spacing_mm": spacing, "stats": stats,
    "numpy": np.__version__,
}
if profiler is not None:
    import io, pstats
    for key in ("cumulative", "tottime"):
        buffer = io.StringIO()
        pstats.Stats(profiler, stream=buffer).strip_dirs().sort_stats(key).print_stats(22)
        result["profile_" + key] = buffer.getvalue()
with open(result_path, "w") as fp:
    json.dump(result, fp)
'''

# Runs in dicompyler-core's interpreter; argv: RS path, RD path, result JSON path, ROI numbers (comma-separated).
DICOMPYLER_CHILD = r'''
import json, logging, resource, sys, time
start = time.perf_counter()

{status_mb}
rs_path, rd_path, result_path, numbers = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
logging.disable(logging.WARNING)
import numpy as np
import pydicom
import dicompylercore
from dicompylercore import dvhcalc
imported = time.perf_counter()
stats, per_roi = {}, {}
t0, c0 = time.perf_counter(), time.process_time()
for number in [int(n) for n in numbers.split(",")]:
    t = time.perf_counter()
    d = dvhcalc.get_dvh(rs_path, rd_path, number)
    per_roi[str(number)] = time.perf_counter() - t
    stats[str(number)] = {"name": str(d.name), "volume_cc": float(d.volume), "mean_gy": float(d.mean),
                          "max_gy": float(d.max), "min_gy": float(d.min)}
t1, c1 = time.perf_counter(), time.process_time()
with open(result_path, "w") as fp:
    json.dump({
        "import_s": imported - start, "dvh_s": t1 - t0, "dvh_cpu_s": c1 - c0, "per_roi_s": per_roi, "stats": stats,
        "peak_mb": status_mb("VmHWM"),
        "ru_maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6,
        "versions": {"dicompyler-core": getattr(dicompylercore, "__version__", "?"),
                     "pydicom": pydicom.__version__, "numpy": np.__version__},
    }, fp)
'''

# Runs `rtcheck dvh` as the command line does, in the rtcheck interpreter; argv: result JSON path, then the
# command's arguments. The process's peak RSS (VmHWM, which exec resets) is written when it exits.
CLI_CHILD = r'''
import atexit, json, sys, time
start = time.perf_counter()

{status_mb}
result_path = sys.argv[1]

def report():
    with open(result_path, "w") as fp:
        json.dump({"peak_mb": status_mb("VmHWM"), "process_s": time.perf_counter() - start}, fp)

atexit.register(report)
sys.argv = ["rtcheck", *sys.argv[2:]]
from rtcheck.cli import main
main()
'''

RTCHECK_CHILD = RTCHECK_CHILD.replace("{status_mb}", STATUS_MB_SOURCE)
CLI_CHILD = CLI_CHILD.replace("{status_mb}", STATUS_MB_SOURCE)
DICOMPYLER_CHILD = DICOMPYLER_CHILD.replace("{status_mb}", STATUS_MB_SOURCE)


@dataclass
class EngineRun:
    """One child process: its result document and wall time from spawn to exit (s)."""

    result: dict
    process_s: float


class EngineFailed(RuntimeError):
    """A child process exited non-zero."""


def run_child(python: str, code: str, args: list[str], env: dict[str, str], result_path: Path, label: str,
              cwd: Path | None = None) -> EngineRun:
    """Run ``code`` in ``python`` with ``args`` in the folder ``cwd`` (first on the child's path, as for any
    ``python -c``); the child writes its result as JSON to ``result_path``."""
    result_path.unlink(missing_ok=True)
    start = time.perf_counter()
    done = subprocess.run([python, "-c", code, *args], env=env, capture_output=True, text=True, cwd=cwd or result_path.parent)
    elapsed = time.perf_counter() - start
    if done.returncode != 0 or not result_path.exists():
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-25:])
        raise EngineFailed(f"{label} child exited with status {done.returncode}:\n{tail}")
    return EngineRun(json.loads(result_path.read_text()), elapsed)


def rtcheck_env(tree: Path = REPO_ROOT) -> dict[str, str]:
    """Environment for an rtcheck child: this interpreter, with ``tree`` (this repository, or a
    reference revision's files) first on the path."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(tree), env.get("PYTHONPATH", "")) if p)
    return env


def reference_tree(revision: str, into: Path) -> Path:
    """The rtcheck package of ``revision`` of this repository, written into ``into`` (git archive)."""
    into.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(["git", "-C", str(REPO_ROOT), "archive", "--format=tar", revision, "rtcheck"], capture_output=True)
    if archive.returncode != 0:
        raise EngineFailed(f"git archive {revision} failed: {archive.stderr.decode(errors='replace').strip()}")
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into


def dicompyler_env() -> dict[str, str]:
    """Environment for the dicompyler-core child: nothing of this interpreter's path leaks in."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env["MPLBACKEND"] = "Agg"
    return env


def _venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def dicompyler_ready(python: Path) -> str | None:
    """Version line of dicompyler-core / pydicom when ``python`` can import dvhcalc with pydicom < 3, else None."""
    if not python.exists():
        return None
    probe = (
        "import pydicom, dicompylercore, dicompylercore.dvhcalc; "
        "assert int(pydicom.__version__.split('.')[0]) < 3; "
        "print(getattr(dicompylercore, '__version__', '?'), pydicom.__version__)"
    )
    done = subprocess.run([str(python), "-c", probe], env=dicompyler_env(), capture_output=True, text=True)
    return done.stdout.strip() if done.returncode == 0 else None


def ensure_dicompyler_venv(venv: Path) -> Path | None:
    """The python of a venv able to run dicompyler-core's dvhcalc, creating or completing it if needed.

    Returns None (after saying why) when it cannot be made, e.g. without access
    to the package index.
    """
    python = _venv_python(venv)
    if dicompyler_ready(python):
        return python
    print(f"setting up dicompyler-core's environment in {venv} ({', '.join(DICOMPYLER_REQUIREMENTS)}) ...", flush=True)
    steps = []
    if not python.exists():
        steps.append([sys.executable, "-m", "venv", str(venv)])
    steps.append([str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q", *DICOMPYLER_REQUIREMENTS])
    for step in steps:
        try:
            done = subprocess.run(step, env=dicompyler_env(), capture_output=True, text=True, timeout=1800)
        except (OSError, subprocess.TimeoutExpired) as exc:
            print(f"error: {' '.join(step[:4])} ... failed: {exc}", file=sys.stderr)
            return None
        if done.returncode != 0:
            errors = [line for line in (done.stderr + done.stdout).splitlines() if "is ignored: it is neither" not in line]
            print(f"error: {' '.join(step[:4])} ... exited with status {done.returncode}:", file=sys.stderr)
            print("\n".join(errors[-15:]), file=sys.stderr)
            return None
    if not dicompyler_ready(python):
        print(f"error: {python} still cannot import dicompylercore.dvhcalc with pydicom < 3", file=sys.stderr)
        return None
    return python


# --------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------


@dataclass
class Agreement:
    """Per-structure comparison and the verdict on the large structures."""

    lines: list[str] = field(default_factory=list)
    large_checked: int = 0
    large_failed: list[str] = field(default_factory=list)


def _git_revision() -> str:
    try:
        done = subprocess.run(["git", "-C", str(REPO_ROOT), "describe", "--always", "--dirty"], capture_output=True, text=True)
    except OSError:
        return "unknown"
    return done.stdout.strip() or "unknown"


def compare(case: Case, ours: dict, theirs: dict, our_times: dict, their_times: dict) -> Agreement:
    """Table of volume / mean / max per structure and the large-structure agreement check."""
    out = Agreement()
    dose_max = case.dose_max_gy
    header = (
        f"{'ROI':<11}{'contour':>9}{'rtcheck':>9}{'dcp':>9}{'dV%':>7}  "
        f"{'rtcheck':>7}{'dcp':>7}{'dMean':>7}{'%max':>6}  {'rtcheck':>7}{'dcp':>7}{'dMax':>6}  {'t rtc':>6}{'t dcp':>7}  flag"
    )
    out.lines.append(f"{'':<11}{'volume (cc)':^34}  {'mean dose (Gy)':^27}  {'max dose (Gy)':^20}  {'time (s)':^13}")
    out.lines.append(header)
    for number, name in case.roi_names.items():
        key = str(number)
        a, b = ours.get(key), theirs.get(key)
        if a is None or b is None:
            out.lines.append(f"{name:<11} missing from {'rtcheck' if a is None else 'dicompyler-core'}")
            continue
        reference = case.reference_volume_cc[number]
        dv = (b["volume_cc"] - a["volume_cc"]) / a["volume_cc"] if a["volume_cc"] > 0 else math.inf
        dmean = b["mean_gy"] - a["mean_gy"]
        dmax = b["max_gy"] - a["max_gy"]
        flags = []
        if abs(dv) > VOLUME_TOLERANCE:
            flags.append("volume")
        if abs(dmean) > MEAN_TOLERANCE * dose_max:
            flags.append("mean")
        large = reference > LARGE_STRUCTURE_CC
        if large:
            out.large_checked += 1
            if flags:
                out.large_failed.append(name)
        flag = ", ".join(flags) + ("" if large else " (small)") if flags else ""
        t_ours = our_times.get(key)
        t_theirs = their_times.get(key)
        out.lines.append(
            f"{name:<11}{reference:>9.1f}{a['volume_cc']:>9.1f}{b['volume_cc']:>9.1f}{100 * dv:>+7.2f}  "
            f"{a['mean_gy']:>7.2f}{b['mean_gy']:>7.2f}{dmean:>+7.2f}{100 * dmean / dose_max:>+6.2f}  "
            f"{a['max_gy']:>7.2f}{b['max_gy']:>7.2f}{dmax:>+6.2f}  "
            f"{(f'{t_ours:.2f}' if t_ours is not None else '-'):>6}{(f'{t_theirs:.2f}' if t_theirs is not None else '-'):>7}  {flag}"
        )
    return out


@dataclass(frozen=True)
class ChildMemory:
    """Memory of one rtcheck child (MB): resident after imports and load, peak of the DVH phase and of the process.

    Peaks come from /proc/self/status VmHWM (reset after the load through
    /proc/self/clear_refs).  ``ru_maxrss`` is only a fallback: on Linux a child
    started by vfork/exec inherits the launching process's high-water mark in it.
    """

    baseline_mb: float
    phase_peak_mb: float
    process_peak_mb: float
    exact: bool

    @property
    def phase_increase_mb(self) -> float:
        return self.phase_peak_mb - self.baseline_mb


def run_memory(result: dict) -> ChildMemory:
    """ChildMemory of an rtcheck child's result document."""
    fallback = result["ru_maxrss_mb"]
    phase = result["phase_peak_mb"]
    load = result["load_peak_mb"]
    exact = phase is not None
    phase = phase if phase is not None else fallback
    process = max(phase, load) if load is not None else fallback
    return ChildMemory(result["baseline_rss_mb"] or 0.0, phase, process, exact)


def _mb(value: float | None) -> str:
    return f"{value:.1f} MB" if value is not None else "n/a"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, metavar="DIR", help="write the synthetic case into DIR (default: a temporary folder, removed afterwards)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 5 structures, 60 planes, 140 x 100 x 70 grid")
    parser.add_argument("--grid-mm", type=float, default=2.5, metavar="MM",
                        help="dose grid spacing (default 2.5: 2.38 M voxels; 1: 350 x 250 x 425 = 37.2 M voxels)")
    parser.add_argument("--reference", metavar="REV",
                        help="also measure rtcheck as of git revision REV of this repository (e.g. main), in the same run, "
                        "runs alternating, and print this tree's figures as ratios of the reference's")
    parser.add_argument("--repeat", type=int, default=3, metavar="N", help="rtcheck runs, one process each; the median is reported (default 3)")
    parser.add_argument("--dicompyler-repeat", type=int, default=1, metavar="N", help="dicompyler-core runs (default 1: it is slow)")
    parser.add_argument(
        "--dicompyler-venv",
        type=Path,
        default=DEFAULT_DICOMPYLER_VENV,
        metavar="PATH",
        help=f"venv for dicompyler-core, created if absent (default {DEFAULT_DICOMPYLER_VENV.relative_to(REPO_ROOT)})",
    )
    parser.add_argument("--no-dicompyler", action="store_true", help="time rtcheck alone (no ratio, no agreement table)")
    parser.add_argument("--loop", action="store_true", help="time rtcheck's compute_dvh loop even where rtcheck.dvh.compute_dvhs exists")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="also run rtcheck once under cProfile (one structure at a time with compute_dvh, since cProfile "
        "sees only the main thread) and print the top entries of its DVH part",
    )
    args = parser.parse_args(argv)
    if args.repeat < 1 or args.dicompyler_repeat < 1:
        parser.error("--repeat and --dicompyler-repeat must be at least 1")
    if args.grid_mm <= 0:
        parser.error("--grid-mm must be positive")
    return args


@dataclass(frozen=True)
class RtcheckFigures:
    """What the summary needs from the rtcheck runs: median DVH time (s), DVH-phase memory increase and budget (MB)."""

    dvh_s: float
    increase_mb: float
    budget_mb: float

    @property
    def memory_met(self) -> bool:
        return self.increase_mb <= self.budget_mb


def report_case(case: Case, quick: bool) -> None:
    """Print what the synthetic case is."""
    g = case.geometry
    print(f"rtcheck DVH speed benchmark ({'quick' if quick else 'full'} case), rtcheck {_git_revision()}, {os.cpu_count()} CPUs")
    print(f"case: {case.folder}")
    print(
        f"  dose grid {g.columns} x {g.rows} x {g.frames} = {g.voxels / 1e6:.2f} M voxels at {g.spacing_mm} mm, "
        f"uint32 file {g.voxels * 4 / 1e6:.1f} MB, max {case.dose_max_gy:.2f} Gy"
    )
    print(
        f"  {len(case.roi_names)} structures, {len(g.contour_planes_mm)} contour planes "
        f"({g.contour_planes_mm[0]:+.1f} to {g.contour_planes_mm[-1]:+.1f} mm), {case.contour_points} contour points; "
        f"built in {case.build_seconds:.1f} s"
    )


def report_rtcheck(case: Case, runs: list[EngineRun]) -> RtcheckFigures:
    """Print rtcheck's timings and memory against the memory goal."""
    first = runs[0].result
    dvh_s = statistics.median(r.result["dvh_s"] for r in runs)
    process_s = statistics.median(r.process_s for r in runs)
    dose_mb = first["dose_bytes"] / 1e6
    mask_mb = case.geometry.voxels / 1e6  # one bool per dose voxel: a structure's mask over the whole grid
    budget_mb = MEMORY_GOAL_DOSE_FACTOR * dose_mb + mask_mb
    memory = [run_memory(r.result) for r in runs]
    peak = max(m.process_peak_mb for m in memory)
    phase_peak = max(m.phase_peak_mb for m in memory)
    increase = max(m.phase_increase_mb for m in memory)
    figures = RtcheckFigures(dvh_s, increase, budget_mb)

    print(f"\nrtcheck ({first['engine']}, numpy {first['numpy']}), {len(runs)} run(s), one process each")
    print(f"  DVH of all {len(first['stats'])} structures: median {dvh_s:.2f} s (runs: {', '.join(format(r.result['dvh_s'], '.2f') for r in runs)} s)")
    print(f"  process: median {process_s:.2f} s in all (import {first['import_s']:.2f} s, load {first['load_s']:.2f} s, DVH {first['dvh_s']:.2f} s)")
    print(
        f"  dose array in memory: {first['dose_dtype']} {'x'.join(map(str, first['dose_shape']))} = {dose_mb:.1f} MB; "
        f"one structure mask (bool per dose voxel) {mask_mb:.1f} MB"
    )
    print(
        f"  peak RSS of the process {peak:.1f} MB = {peak / dose_mb:.1f} x dose array "
        f"(after imports and load: {memory[0].baseline_mb:.1f} MB; peak during the load {_mb(first['load_peak_mb'])})"
    )
    exact = "" if all(m.exact for m in memory) else " (upper bound: whole-process peak)"
    print(
        f"  DVH phase: peak {phase_peak:.1f} MB{exact}, i.e. {increase:.1f} MB above the post-load baseline "
        f"= {increase / dose_mb:.2f} x dose array"
    )
    print(
        f"  memory goal (DVH-phase increase <= {MEMORY_GOAL_DOSE_FACTOR:g} x dose array + one mask = {budget_mb:.1f} MB): "
        f"{'MET' if figures.memory_met else 'NOT MET'}"
    )
    return figures


def report_dicompyler(case: Case, rtcheck_run: EngineRun, runs: list[EngineRun], ours: RtcheckFigures) -> None:
    """Print dicompyler-core's timings, the agreement table and the summary against the goals."""
    theirs = runs[0].result
    theirs_s = statistics.median(r.result["dvh_s"] for r in runs)
    process_s = statistics.median(r.process_s for r in runs)
    v = theirs["versions"]
    peak = max(r.result["peak_mb"] or r.result["ru_maxrss_mb"] for r in runs)
    dose_mb = rtcheck_run.result["dose_bytes"] / 1e6
    print(
        f"\ndicompyler-core {v['dicompyler-core']} (pydicom {v['pydicom']}, numpy {v['numpy']}), "
        f"default get_dvh(rs, rd, roi) per structure, {len(runs)} run(s)"
    )
    print(f"  DVH of all {len(theirs['stats'])} structures: median {theirs_s:.2f} s; process {process_s:.2f} s in all")
    print(f"  peak RSS of the process {peak:.1f} MB = {peak / dose_mb:.1f} x rtcheck's dose array")

    ours_result = rtcheck_run.result
    agreement = compare(case, ours_result["stats"], theirs["stats"], ours_result["per_roi_s"], theirs["per_roi_s"])
    print("\nagreement (dcp = dicompyler-core; d = dcp - rtcheck; 'contour' = exact volume of the contours, slabs of one plane spacing)")
    for line in agreement.lines:
        print("  " + line)
    print(
        "  note: dicompyler-core's default mode counts a dose voxel as in or out by its centre (no partial volume)\n"
        "  and keeps 1 cGy bins (its max is the upper edge of the highest non-empty bin, its mean uses bin centres);\n"
        "  it reads the dose on the contour planes only, rtcheck over each plane's slab; so on small structures\n"
        "  and for maxima in steep gradients its figures are the less accurate ones: flags there are expected."
    )
    large_ok = not agreement.large_failed
    print(
        f"  agreement on large structures (> {LARGE_STRUCTURE_CC:g} cc: volume within {100 * VOLUME_TOLERANCE:g} %, "
        f"mean within {100 * MEAN_TOLERANCE:g} % of the {case.dose_max_gy:.1f} Gy maximum), {agreement.large_checked} checked: "
        + ("PASS" if large_ok else f"FAIL ({', '.join(agreement.large_failed)})")
    )

    ratio = theirs_s / ours.dvh_s if ours.dvh_s > 0 else math.inf
    wording = f"rtcheck is {ratio:.1f}x faster" if ratio >= 1 else f"rtcheck is {1 / ratio:.1f}x slower"
    print("\nsummary")
    print(f"  DVH of the whole structure set: rtcheck {ours.dvh_s:.2f} s, dicompyler-core {theirs_s:.2f} s: {wording}")
    print(f"  speed goal (>= {SPEED_GOAL:g}x): {'MET' if ratio >= SPEED_GOAL else 'NOT MET'} ({ratio:.2f}x)")
    print(f"  memory goal: {'MET' if ours.memory_met else 'NOT MET'} ({ours.increase_mb:.1f} MB of {ours.budget_mb:.1f} MB)")
    print(f"  agreement where dicompyler-core is right: {'PASS' if large_ok else 'FAIL'}")


def report_trees(by_tree: dict[str, list[EngineRun]], cli_peaks: dict[str, EngineRun], dicompyler: dict[str, float] | None) -> None:
    """Print the peak memory of `rtcheck dvh` and, with a reference revision, each figure of this tree
    as a ratio of the reference's (both measured in this run) and whether the DVHs are the same."""
    print("\nrtcheck dvh (the command, one process: import, load, all DVHs, JSON output)")
    for label, run in cli_peaks.items():
        print(f"  {label}: peak RSS {_mb(run.result['peak_mb'])}, {run.result['process_s']:.2f} s")
    if len(by_tree) < 2:
        return
    (ours_label, ours), (ref_label, ref) = by_tree.items()

    def figures(runs: list[EngineRun], cli: EngineRun) -> dict[str, float]:
        memory = [run_memory(r.result) for r in runs]
        return {
            "DVH time, median (s)": statistics.median(r.result["dvh_s"] for r in runs),
            "DVH CPU time, median (s)": statistics.median(r.result["dvh_cpu_s"] for r in runs),
            "load time, median (s)": statistics.median(r.result["load_s"] for r in runs),
            "peak RSS during the load (MB)": max(r.result["load_peak_mb"] or 0.0 for r in runs),
            "RSS after the load (MB)": max(m.baseline_mb for m in memory),
            "DVH-phase increase (MB)": max(m.phase_increase_mb for m in memory),
            "rtcheck dvh peak RSS (MB)": cli.result["peak_mb"] or 0.0,
        }

    mine, theirs = figures(ours, cli_peaks[ours_label]), figures(ref, cli_peaks[ref_label])
    print(f"\n{ours_label} against {ref_label} (same case, same run, runs alternating)")
    print(f"  {'':32} {'this tree':>10} {'reference':>10} {'ratio':>7}")
    for key in mine:
        ratio = mine[key] / theirs[key] if theirs[key] else math.nan
        print(f"  {key:32} {mine[key]:10.2f} {theirs[key]:10.2f} {ratio:7.3f}")
    if dicompyler is not None:
        # CPU time as well: on a shared machine the wall-clock ratio moves with the load.
        for key, what in (("dvh_s", "wall"), ("dvh_cpu_s", "CPU")):
            speed = {label: dicompyler[key] / statistics.median(r.result[key] for r in runs) for label, runs in by_tree.items()}
            print(f"  speed ratio against dicompyler-core, {what} time (its median {dicompyler[key]:.2f} s): "
                  + ", ".join(f"{label} {ratio:.1f}x" for label, ratio in speed.items()))
    same = ours[0].result["stats"] == ref[0].result["stats"]
    print(f"  every structure's volume, mean, minimum and maximum identical to the reference's: {'YES' if same else 'NO'}")


def report_profile(case: Case, profiled: EngineRun) -> None:
    """Print the per-structure times and peaks and the top cProfile entries of a profiled rtcheck run."""
    result = profiled.result
    print(f"\nprofile of rtcheck's DVH part ({result['engine']}, under cProfile: {result['dvh_s']:.2f} s with profiling)")
    peaks = result["per_roi_peak_mb"]
    print("  per structure (time under cProfile; peak memory above the RSS before it, glibc mmap threshold fixed at 128 KiB):")
    for key, seconds in result["per_roi_s"].items():
        extra = f", +{peaks[key]:.0f} MB" if key in peaks else ""
        print(f"    {case.roi_names.get(int(key), key):<11} {seconds:6.2f} s{extra}")
    for key in ("cumulative", "tottime"):
        lines = result[f"profile_{key}"].splitlines()
        first = next((i for i, line in enumerate(lines) if line.lstrip().startswith("ncalls")), 0)
        print(f"  by {key}:")
        for line in lines[first:]:
            if line.strip():
                print("    " + line.rstrip())


def benchmark(args: argparse.Namespace, workdir: Path) -> int:
    """Build the case in ``args.out`` or ``workdir``, run both engines, print the report; the exit status."""
    dicompyler_python: Path | None = None
    if not args.no_dicompyler:
        dicompyler_python = ensure_dicompyler_venv(args.dicompyler_venv.resolve())
        if dicompyler_python is None:
            print(
                "dicompyler-core's environment could not be created (is the package index reachable?). "
                f"Create it by hand: python3 -m venv {args.dicompyler_venv} && "
                f"{args.dicompyler_venv}/bin/pip install {' '.join(repr(r) for r in DICOMPYLER_REQUIREMENTS)}; "
                "or run with --no-dicompyler to time rtcheck alone.",
                file=sys.stderr,
            )
            return 2

    case = build_case((args.out or workdir / "case").resolve(), args.quick, args.grid_mm)
    report_case(case, args.quick)
    result_path = workdir / "result.json"
    folder = str(case.folder)
    trees = {"this tree": REPO_ROOT}
    try:
        if args.reference:
            trees[f"reference {args.reference}"] = reference_tree(args.reference, workdir / "reference")
        mode = "loop" if args.loop else ""
        by_tree: dict[str, list[EngineRun]] = {label: [] for label in trees}
        cli_peaks: dict[str, EngineRun] = {}
        for _ in range(args.repeat):  # alternating, so that both trees see the same load on the machine
            for label, tree in trees.items():
                by_tree[label].append(
                    run_child(sys.executable, RTCHECK_CHILD, [folder, str(result_path), mode], rtcheck_env(tree), result_path, f"rtcheck ({label})", tree)
                )
        for label, tree in trees.items():
            cli_args = [str(result_path), "dvh", folder, "--format", "json"]
            cli_peaks[label] = run_child(sys.executable, CLI_CHILD, cli_args, rtcheck_env(tree), result_path, f"rtcheck dvh ({label})", tree)
        runs = by_tree["this tree"]
        profiled = None
        if args.profile:
            # A fixed mmap threshold makes glibc return each large array on free, so every structure's peak is its own.
            env = {**rtcheck_env(), "MALLOC_MMAP_THRESHOLD_": "131072"}
            profiled = run_child(sys.executable, RTCHECK_CHILD, [folder, str(result_path), "profile"], env, result_path, "rtcheck (profile)")
        theirs_runs = []
        if dicompyler_python is not None:
            theirs_args = [str(case.structure_path), str(case.dose_path), str(result_path), ",".join(str(n) for n in case.roi_names)]
            theirs_runs = [
                run_child(str(dicompyler_python), DICOMPYLER_CHILD, theirs_args, dicompyler_env(), result_path, "dicompyler-core")
                for _ in range(args.dicompyler_repeat)
            ]
    except EngineFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1

    theirs = {key: statistics.median(r.result[key] for r in theirs_runs) for key in ("dvh_s", "dvh_cpu_s")} if theirs_runs else None
    report_trees(by_tree, cli_peaks, theirs)
    ours = report_rtcheck(case, runs)
    if theirs_runs:
        report_dicompyler(case, runs[0], theirs_runs, ours)
    else:
        print("\nsummary (dicompyler-core not run)")
        print(f"  DVH of the whole structure set: rtcheck {ours.dvh_s:.2f} s")
        print(f"  memory goal: {'MET' if ours.memory_met else 'NOT MET'} ({ours.increase_mb:.1f} MB of {ours.budget_mb:.1f} MB)")
    if profiled is not None:
        report_profile(case, profiled)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark in a temporary working folder; the exit status."""
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="rtcheck-dvh-bench-") as tmp:
        return benchmark(args, Path(tmp))


if __name__ == "__main__":
    sys.exit(main())
