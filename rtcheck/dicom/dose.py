"""RT Dose -> a 3D dose grid in Gy on axes in patient coordinates (mm).

The grid is normalised so that ``dose_gy[k, j, i]`` is the dose at
``(x_mm[i], y_mm[j], z_mm[k])`` with all three axes strictly ascending,
whatever the axial orientation and frame order of the file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset

from rtcheck.dicom.dose_file import DoseFile, describe_dose_file
from rtcheck.dicom.io import read_dataset
from rtcheck.errors import InputError, UnsupportedObjectError

_AXIS_TOLERANCE = 1e-3
_POSITION_TOLERANCE_MM = 0.01


@dataclass
class DoseGrid:
    """Dose (Gy) sampled at voxel centres; axes ascending, in mm."""

    dose_gy: np.ndarray
    x_mm: np.ndarray
    y_mm: np.ndarray
    z_mm: np.ndarray
    frame_of_reference_uid: str
    paths: list[Path] = field(default_factory=list)
    summation_type: str = "PLAN"
    dose_type: str = "PHYSICAL"
    notes: list[str] = field(default_factory=list)
    # For a FRACTION dose: the number of fractions it was multiplied by.
    fraction_scale: int | None = None
    # The RT Dose files the grid was read from (UIDs, the planning system's DVHs); none for a derived grid.
    files: list[DoseFile] = field(default_factory=list)

    @property
    def max_gy(self) -> float:
        return float(self.dose_gy.max()) if self.dose_gy.size else 0.0

    def single_precision(self) -> np.ndarray:
        """The dose as float32 (Gy), made once and kept, for the DVH engine's sampling."""
        cached = getattr(self, "_float32", None)
        if cached is None or cached.shape != self.dose_gy.shape:
            cached = self.dose_gy.astype(np.float32)
            self._float32 = cached
        return cached

    def same_geometry(self, other: "DoseGrid") -> bool:
        return (
            self.dose_gy.shape == other.dose_gy.shape
            and np.allclose(self.x_mm, other.x_mm, atol=_POSITION_TOLERANCE_MM)
            and np.allclose(self.y_mm, other.y_mm, atol=_POSITION_TOLERANCE_MM)
            and np.allclose(self.z_mm, other.z_mm, atol=_POSITION_TOLERANCE_MM)
        )


def _axis_of(vector: np.ndarray) -> tuple[int, int] | None:
    """(axis index 0/1 for x/y, sign) when ``vector`` is +-x or +-y, else None."""
    for axis in (0, 1):
        expected = np.zeros(3)
        expected[axis] = 1.0
        if np.allclose(vector, expected, atol=_AXIS_TOLERANCE):
            return axis, 1
        if np.allclose(vector, -expected, atol=_AXIS_TOLERANCE):
            return axis, -1
    return None


def _float_list(ds: Dataset, keyword: str, path: Path, count: int | None = None) -> list[float]:
    if keyword not in ds or ds[keyword].value is None:
        raise UnsupportedObjectError(path, f"RT Dose lacks {keyword}")
    value = ds[keyword].value
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        value = [value]
    try:
        values = [float(v) for v in value]
    except (TypeError, ValueError):
        raise UnsupportedObjectError(path, f"RT Dose {keyword} is not numeric") from None
    if count is not None and len(values) != count:
        raise UnsupportedObjectError(path, f"RT Dose {keyword} has {len(values)} values, expected {count}")
    return values


def parse_dose(ds: Dataset, path: Path) -> DoseGrid:
    """Build a DoseGrid from an RT Dose data set with pixel data.

    Refuses (UnsupportedObjectError) RELATIVE dose, non-axial grids, missing
    pixel data or scaling, and frame offsets that are not strictly monotonic.
    """
    units = str(ds.get("DoseUnits", "")).upper()
    if units == "RELATIVE":
        raise UnsupportedObjectError(path, "DoseUnits is RELATIVE; absolute dose (GY) is required")
    if units != "GY":
        raise UnsupportedObjectError(path, f"DoseUnits is {units or 'missing'}; GY is required")
    dose_type = str(ds.get("DoseType", "PHYSICAL")).upper()
    if dose_type == "ERROR":
        raise UnsupportedObjectError(path, "DoseType is ERROR (a dose difference, not a dose)")
    if "PixelData" not in ds:
        raise UnsupportedObjectError(path, "RT Dose has no pixel data (no dose grid to evaluate)")
    if "DoseGridScaling" not in ds:
        raise UnsupportedObjectError(path, "RT Dose lacks DoseGridScaling")

    orientation = np.array(_float_list(ds, "ImageOrientationPatient", path, 6))
    row_dir, col_dir = orientation[:3], orientation[3:]
    row_axis, col_axis = _axis_of(row_dir), _axis_of(col_dir)
    if row_axis is None or col_axis is None or row_axis[0] == col_axis[0]:
        raise UnsupportedObjectError(
            path, f"non-axial dose grid (ImageOrientationPatient {orientation.tolist()}); only axial grids are supported"
        )
    normal_z = float(np.cross(row_dir, col_dir)[2])
    origin = _float_list(ds, "ImagePositionPatient", path, 3)
    row_spacing, col_spacing = _float_list(ds, "PixelSpacing", path, 2)
    if row_spacing <= 0 or col_spacing <= 0:
        raise UnsupportedObjectError(path, f"invalid PixelSpacing {row_spacing}, {col_spacing}")

    try:
        pixels = ds.pixel_array
    except Exception as exc:  # missing decoder, corrupt or truncated pixel data
        raise UnsupportedObjectError(path, f"cannot decode RT Dose pixel data ({exc})") from None
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    rows, cols = int(ds.Rows), int(ds.Columns)
    pixels = np.asarray(pixels).reshape(frames, rows, cols)
    dose = pixels.astype(np.float64) * float(ds.DoseGridScaling)

    if frames > 1:
        offsets = np.array(_float_list(ds, "GridFrameOffsetVector", path, frames))
    else:
        offsets = np.array(_float_list(ds, "GridFrameOffsetVector", path)[:1] if "GridFrameOffsetVector" in ds else [0.0])
    if offsets[0] == 0.0:
        z = origin[2] + normal_z * offsets
    elif abs(offsets[0] - origin[2]) <= _POSITION_TOLERANCE_MM:
        z = offsets.copy()  # absolute z positions (the older convention)
    else:
        raise UnsupportedObjectError(
            path, f"GridFrameOffsetVector starts at {offsets[0]}, neither 0 (relative) nor the grid's z {origin[2]} (absolute)"
        )

    # Voxel centres along the in-plane axes, then reorder so x and y ascend.
    col_positions = origin[row_axis[0]] + row_axis[1] * col_spacing * np.arange(cols)
    row_positions = origin[col_axis[0]] + col_axis[1] * row_spacing * np.arange(rows)
    if row_axis[0] == 1:  # rows run along x: transpose to (frame, y, x)
        dose = dose.transpose(0, 2, 1)
        x, y = row_positions, col_positions
    else:
        x, y = col_positions, row_positions
    if x[0] > x[-1]:
        x, dose = x[::-1], dose[:, :, ::-1]
    if y[0] > y[-1]:
        y, dose = y[::-1], dose[:, ::-1, :]
    order = np.argsort(z, kind="stable")
    z, dose = z[order], dose[order]
    if z.size > 1 and np.any(np.diff(z) <= 0):
        raise UnsupportedObjectError(path, "GridFrameOffsetVector has repeated frame positions")

    return DoseGrid(
        dose_gy=np.ascontiguousarray(dose),
        x_mm=np.ascontiguousarray(x, dtype=float),
        y_mm=np.ascontiguousarray(y, dtype=float),
        z_mm=np.ascontiguousarray(z, dtype=float),
        frame_of_reference_uid=str(ds.get("FrameOfReferenceUID", "")),
        paths=[path],
        summation_type=str(ds.get("DoseSummationType", "")).upper(),
        dose_type=dose_type,
        files=[describe_dose_file(ds, path)],
    )


def load_dose(path: Path) -> DoseGrid:
    """Read an RT Dose file with its pixel data and build its DoseGrid."""
    ds = read_dataset(path)
    return parse_dose(ds, path)


def sum_doses(grids: list[DoseGrid]) -> DoseGrid:
    """Sum dose grids that share one geometry (e.g. the BEAM doses of one plan)."""
    first = grids[0]
    for other in grids[1:]:
        if not first.same_geometry(other):
            raise InputError(
                other.paths[0],
                f"BEAM dose grid differs from {first.paths[0]}'s; summing doses on different grids is not supported",
            )
    total = first.dose_gy.copy()
    for other in grids[1:]:
        total += other.dose_gy
    return DoseGrid(
        dose_gy=total,
        x_mm=first.x_mm,
        y_mm=first.y_mm,
        z_mm=first.z_mm,
        frame_of_reference_uid=first.frame_of_reference_uid,
        paths=[p for g in grids for p in g.paths],
        summation_type="BEAM (summed)",
        dose_type=first.dose_type,
        files=[f for g in grids for f in g.files],
    )
