"""Writes small, real DICOM RT objects with pydicom for tests.

Shapes are cylinders along z (axial contours every ``plane_mm``); doses are
given as a function of patient coordinates (mm) -> Gy, so expectations can be
computed in closed form.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

RT_PLAN = "1.2.840.10008.5.1.4.1.1.481.5"
RT_DOSE = "1.2.840.10008.5.1.4.1.1.481.2"
RT_STRUCT = "1.2.840.10008.5.1.4.1.1.481.3"
CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
AXIAL = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)

DoseFunction = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


def _image_item() -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID, item.ReferencedSOPInstanceUID = CT_IMAGE, generate_uid()
    return item


def _base(sop_class: str, modality: str, frame_uid: str, study_uid: str) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = sop_class
    ds.Modality = modality
    ds.PatientName = "TEST^PATIENT"
    ds.PatientID = "TEST-1"
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = generate_uid()
    ds.FrameOfReferenceUID = frame_uid
    return ds


@dataclass
class RoiShape:
    """A cylinder (or elliptic cylinder) along z: contours every plane of ``z_range_mm``.

    ``profile(z)`` scales the radius per plane (a sphere, a cone); planes where it
    is not positive get no contour.  ``also`` adds circles ((x, y), radius) on
    every plane, e.g. overlapping a first one.  ``planes_mm`` gives the contour
    planes' z explicitly (a helper ROI on finer planes, variable spacing) instead
    of the case's ``plane_mm`` steps over ``z_range_mm``.
    """

    name: str
    centre_xy_mm: tuple[float, float] = (0.0, 0.0)
    radius_mm: float | tuple[float, float] = 10.0
    z_range_mm: tuple[float, float] = (-20.0, 20.0)
    interpreted_type: str = "ORGAN"
    geometric_type: str = "CLOSED_PLANAR"
    points: int = 64
    holes_radius_mm: float | None = None
    profile: Callable[[float], float] | None = None
    also: tuple[tuple[tuple[float, float], float], ...] = ()
    planes_mm: tuple[float, ...] | None = None


def circle(centre: tuple[float, float], radius: float | tuple[float, float], z: float, points: int) -> list[float]:
    rx, ry = (radius, radius) if isinstance(radius, (int, float)) else radius
    angles = np.linspace(0, 2 * np.pi, points, endpoint=False)
    xyz = np.column_stack([centre[0] + rx * np.cos(angles), centre[1] + ry * np.sin(angles), np.full(points, z)])
    return [round(float(v), 4) for v in xyz.ravel()]


@dataclass
class Case:
    """A plan set in memory; ``write(folder)`` saves RP/RD/RS files and returns their paths."""

    rois: list[RoiShape]
    dose: DoseFunction
    plane_mm: float = 2.0
    grid_spacing_mm: tuple[float, float, float] = (2.0, 2.0, 2.0)  # x, y, z
    grid_min_mm: tuple[float, float, float] = (-40.0, -40.0, -30.0)
    grid_max_mm: tuple[float, float, float] = (40.0, 40.0, 30.0)
    prescriptions: list[tuple[str | None, float]] = field(default_factory=lambda: [("PTV", 50.4)])  # (ROI name or None, Gy)
    fractions: int = 28
    plan_label: str = "TESTPLAN"
    frame_uid: str = field(default_factory=generate_uid)
    study_uid: str = field(default_factory=generate_uid)

    def __post_init__(self) -> None:
        self.plan = _base(RT_PLAN, "RTPLAN", self.frame_uid, self.study_uid)
        self.structure_set = _base(RT_STRUCT, "RTSTRUCT", self.frame_uid, self.study_uid)
        self.rt_dose = _base(RT_DOSE, "RTDOSE", self.frame_uid, self.study_uid)
        self._build_structure_set()
        self._build_plan()
        self._build_dose()

    def _build_structure_set(self) -> None:
        ss = self.structure_set
        del ss.FrameOfReferenceUID  # an RT Structure Set names frames in its sequences
        ss.StructureSetLabel = "TESTSS"
        ref = Dataset()
        ref.FrameOfReferenceUID = self.frame_uid
        ss.ReferencedFrameOfReferenceSequence = Sequence([ref])
        ss.StructureSetROISequence = Sequence()
        ss.ROIContourSequence = Sequence()
        ss.RTROIObservationsSequence = Sequence()
        for number, shape in enumerate(self.rois, start=1):
            item = Dataset()
            item.ROINumber = number
            item.ReferencedFrameOfReferenceUID = self.frame_uid
            item.ROIName = shape.name
            item.ROIGenerationAlgorithm = "MANUAL"
            ss.StructureSetROISequence.append(item)
            contours = Sequence()
            if shape.geometric_type == "POINT":
                c = Dataset()
                c.ContourGeometricType = "POINT"
                c.NumberOfContourPoints = 1
                c.ContourData = [shape.centre_xy_mm[0], shape.centre_xy_mm[1], shape.z_range_mm[0]]
                contours.append(c)
            else:
                z0, z1 = shape.z_range_mm
                planes = shape.planes_mm if shape.planes_mm is not None else np.arange(z0, z1 + 1e-6, self.plane_mm)
                for z in planes:
                    scale = shape.profile(float(z)) if shape.profile else 1.0
                    if scale <= 0:
                        continue
                    circles = [(shape.centre_xy_mm, shape.radius_mm)]
                    if shape.holes_radius_mm:
                        circles.append((shape.centre_xy_mm, shape.holes_radius_mm))
                    for centre, radius in [*circles, *shape.also]:
                        c = Dataset()
                        c.ContourGeometricType = shape.geometric_type
                        c.NumberOfContourPoints = shape.points
                        scaled = radius * scale if isinstance(radius, (int, float)) else (radius[0] * scale, radius[1] * scale)
                        c.ContourData = circle(centre, scaled, float(z), shape.points)
                        contours.append(c)
            rc = Dataset()
            rc.ReferencedROINumber = number
            rc.ROIDisplayColor = [255, 0, 0]
            rc.ContourSequence = contours
            ss.ROIContourSequence.append(rc)
            obs = Dataset()
            obs.ObservationNumber = number
            obs.ReferencedROINumber = number
            obs.RTROIInterpretedType = shape.interpreted_type
            obs.ROIInterpreter = ""
            ss.RTROIObservationsSequence.append(obs)

    def roi_number(self, name: str) -> int:
        return next(i for i, r in enumerate(self.rois, start=1) if r.name == name)

    def _build_plan(self) -> None:
        plan = self.plan
        plan.RTPlanLabel = self.plan_label
        plan.RTPlanGeometry = "PATIENT"
        ref = Dataset()
        ref.ReferencedSOPClassUID = RT_STRUCT
        ref.ReferencedSOPInstanceUID = self.structure_set.SOPInstanceUID
        plan.ReferencedStructureSetSequence = Sequence([ref])
        plan.DoseReferenceSequence = Sequence()
        for number, (roi_name, dose_gy) in enumerate(self.prescriptions, start=1):
            item = Dataset()
            item.DoseReferenceNumber = number
            item.DoseReferenceUID = generate_uid()
            if roi_name is not None and any(r.name == roi_name for r in self.rois):
                item.DoseReferenceStructureType = "VOLUME"
                item.ReferencedROINumber = self.roi_number(roi_name)
            else:
                item.DoseReferenceStructureType = "SITE"
            item.DoseReferenceDescription = roi_name or "site"
            item.DoseReferenceType = "TARGET"
            item.TargetPrescriptionDose = dose_gy
            plan.DoseReferenceSequence.append(item)
        group = Dataset()
        group.FractionGroupNumber = 1
        group.NumberOfFractionsPlanned = self.fractions
        group.NumberOfBeams = 1
        group.NumberOfBrachyApplicationSetups = 0
        beam_ref = Dataset()
        beam_ref.ReferencedBeamNumber = 1
        beam_ref.BeamDose = round(max(d for _, d in self.prescriptions) / self.fractions, 6) if self.prescriptions else 2.0
        group.ReferencedBeamSequence = Sequence([beam_ref])
        plan.FractionGroupSequence = Sequence([group])
        beam = Dataset()
        beam.BeamNumber = 1
        beam.BeamName = "AP"
        beam.BeamType = "STATIC"
        beam.RadiationType = "PHOTON"
        plan.BeamSequence = Sequence([beam])

    def axes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return tuple(
            np.arange(lo, hi + 1e-6, step) for lo, hi, step in zip(self.grid_min_mm, self.grid_max_mm, self.grid_spacing_mm)
        )  # type: ignore[return-value]

    def _build_dose(self) -> None:
        ds = self.rt_dose
        x, y, z = self.axes()
        zz, yy, xx = np.meshgrid(z, y, x, indexing="ij")
        dose = np.asarray(self.dose(xx, yy, zz), dtype=float)
        if dose.min() < 0:
            raise ValueError("a test dose must be non-negative everywhere on the grid (stored unsigned)")
        scaling = max(float(dose.max()), 1e-6) / 60000.0
        pixels = np.round(dose / scaling).astype(np.uint32)
        ds.DoseUnits = "GY"
        ds.DoseType = "PHYSICAL"
        ds.DoseSummationType = "PLAN"
        ds.DoseGridScaling = f"{scaling:.10g}"
        ds.ImagePositionPatient = [float(x[0]), float(y[0]), float(z[0])]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.PixelSpacing = [self.grid_spacing_mm[1], self.grid_spacing_mm[0]]
        ds.GridFrameOffsetVector = [float(v - z[0]) for v in z]
        ds.NumberOfFrames = len(z)
        ds.FrameIncrementPointer = 0x3004000C
        ds.Rows, ds.Columns = len(y), len(x)
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.BitsAllocated = 32
        ds.BitsStored = 32
        ds.HighBit = 31
        ds.PixelRepresentation = 0
        ds.PixelData = pixels.astype("<u4").tobytes()
        ref = Dataset()
        ref.ReferencedSOPClassUID = RT_PLAN
        ref.ReferencedSOPInstanceUID = self.plan.SOPInstanceUID
        ds.ReferencedRTPlanSequence = Sequence([ref])

    def write_ct(
        self,
        folder: Path,
        z_values,
        *,
        series_uid: str | None = None,
        orientation: tuple[float, ...] = AXIAL,
        frame_uid: str | None = None,
        listed: int | None = None,
    ) -> str:
        """CT images (headers, no pixels) at ``z_values`` (mm), files CT000.dcm..., and the case's structure set
        made to reference their series (RTReferencedSeriesSequence listing every image, or ``listed`` made-up
        ones); with ``series_uid`` the images are of that other series.  Writes the case too; returns the
        series UID the structure set references."""
        folder.mkdir(parents=True, exist_ok=True)
        referenced = generate_uid()
        images = Sequence()
        for i, z in enumerate(z_values):
            ds = _base(CT_IMAGE, "CT", frame_uid or self.frame_uid, self.study_uid)
            ds.PatientName, ds.PatientID = self.plan.PatientName, self.plan.PatientID
            ds.SeriesInstanceUID = series_uid or referenced
            ds.ImagePositionPatient, ds.ImageOrientationPatient = [-40.0, -40.0, float(z)], list(orientation)
            ds.SliceThickness = 2.0
            ds.save_as(folder / f"CT{i:03d}.dcm", enforce_file_format=True)
            item = Dataset()
            item.ReferencedSOPClassUID = CT_IMAGE
            item.ReferencedSOPInstanceUID = generate_uid() if series_uid else ds.SOPInstanceUID
            images.append(item)
        if listed is not None:
            images = Sequence([_image_item() for _ in range(listed)])
        ref_series = Dataset()
        ref_series.SeriesInstanceUID = referenced
        ref_series.ContourImageSequence = images
        study = Dataset()
        study.ReferencedSOPInstanceUID = self.study_uid
        study.RTReferencedSeriesSequence = Sequence([ref_series])
        self.structure_set.ReferencedFrameOfReferenceSequence[0].RTReferencedStudySequence = Sequence([study])
        self.write(folder)
        return referenced

    def write(self, folder: Path) -> dict[str, Path]:
        folder.mkdir(parents=True, exist_ok=True)
        paths = {"plan": folder / "RP.dcm", "structure_set": folder / "RS.dcm", "dose": folder / "RD.dcm"}
        for key, ds in (("plan", self.plan), ("structure_set", self.structure_set), ("dose", self.rt_dose)):
            ds.save_as(paths[key], enforce_file_format=True)
        return paths
