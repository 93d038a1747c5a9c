"""RT Dose -> a 3D dose grid in Gy on axes in patient coordinates (mm), and the one dose sampler.

The grid is normalised so that ``dose_gy[k, j, i]`` is the dose at
``(x_mm[i], y_mm[j], z_mm[k])`` with all three axes strictly ascending,
whatever the axial orientation and frame order of the file.

Sampling (``dose_at_points``, ``dose_on_lattice``, and the primitives
``axis_interpolation`` and ``PlaneInterpolation`` the DVH engine builds on)
follows one rule everywhere:

* the grid covers its voxels: along each axis, from the first voxel centre
  minus half the spacing to its neighbour, to the last centre plus half the
  spacing to its neighbour (a lone plane, row or column is taken as 1 mm thick,
  0.5 mm either side of its centre: rtcheck's default, since the file gives it
  no extent); positions within ``EDGE_TOLERANCE_MM`` beyond that extent count as
  on its edge (floating-point rounding of positions computed from two files);
* inside, the dose is interpolated linearly along each axis (trilinearly)
  between the two nearest voxel centres; in the half-voxel band beyond the
  outermost centres the edge voxels' value is used (no extrapolation);
* outside, the dose is unknown: NaN, never 0. Callers decide what an unknown
  dose means (the DVH engine counts the volume outside the grid; re-irradiation
  marks the voxel not covered by the prior course).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset

from rtcheck.dicom.dose_file import DoseFile, describe_dose_file
from rtcheck.dicom.io import file_meta_notes, read_dataset
from rtcheck.errors import InputError, UnsupportedObjectError

_AXIS_TOLERANCE = 1e-3
_POSITION_TOLERANCE_MM = 0.01
# Beyond the grid's extent by at most this, a position is on its edge (rounding, not geometry).
EDGE_TOLERANCE_MM = 1e-6
# Half the thickness given to a lone plane, row or column (no neighbour to take a spacing from).
LONE_VOXEL_HALF_WIDTH_MM = 0.5


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


# Bounds of the numbers a dose grid is built from, rtcheck's defaults: beyond them a value is damage,
# not geometry or dose, and would make the sampling arrays absurd (a voxel of 1e300 mm, a grid 10 km away).
_MIN_SPACING_MM, _MAX_SPACING_MM = 1e-3, 1e3
_MAX_POSITION_MM = 1e6
# No radiotherapy dose reaches 10 000 Gy: a larger one is a damaged scaling.
_MAX_DOSE_GY = 1e4


def _element(ds: Dataset, keyword: str) -> str:
    """``Keyword (gggg,eeee)`` for messages."""
    tag = ds[keyword].tag if keyword in ds else None
    return f"{keyword} ({tag.group:04X},{tag.element:04X})" if tag is not None else keyword


def _float_list(ds: Dataset, keyword: str, path: Path, count: int | None = None, *, limit: float = _MAX_POSITION_MM) -> list[float]:
    """The values of a numeric element, finite and within +-``limit``; UnsupportedObjectError naming the element."""
    if keyword not in ds or ds[keyword].value is None or ds[keyword].value == "":
        raise UnsupportedObjectError(path, f"RT Dose lacks {keyword}")
    value = ds[keyword].value
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        value = [value]
    try:
        values = [float(v) for v in value]
    except (TypeError, ValueError, OverflowError):
        raise UnsupportedObjectError(path, f"RT Dose {_element(ds, keyword)} is not numeric") from None
    if count is not None and len(values) != count:
        raise UnsupportedObjectError(path, f"RT Dose {_element(ds, keyword)} has {len(values)} values, expected {count}")
    if not all(np.isfinite(values)) or any(abs(v) > limit for v in values):
        raise UnsupportedObjectError(path, f"RT Dose {_element(ds, keyword)} holds {values} (not finite or beyond {limit:g})")
    return values


def _positive_int(ds: Dataset, keyword: str, path: Path, default: int | None = None) -> int:
    """A count (Rows, Columns, Number of Frames...): a whole number above 0."""
    value = ds.get(keyword)
    if value is None or value == "":
        if default is None:
            raise UnsupportedObjectError(path, f"RT Dose lacks {keyword}")
        return default
    try:
        number = int(value)
    except (TypeError, ValueError, OverflowError):
        raise UnsupportedObjectError(path, f"RT Dose {_element(ds, keyword)} is not a whole number ({value!r})") from None
    if number <= 0 or number != float(value):
        raise UnsupportedObjectError(path, f"RT Dose {_element(ds, keyword)} is {value}, not a count above 0")
    return number


def _check_pixel_format(ds: Dataset, path: Path) -> None:
    """PS3.3 C.8.8.3.4.1 (RT Dose, Image Pixel Module): Samples per Pixel 1, Bits Allocated 16 or 32, Bits
    Stored equal to Bits Allocated, High Bit one less; Pixel Representation 0001H (two's complement) only for
    Dose Type ERROR, else 0000H (unsigned).  rtcheck accepts a signed grid whose values are all >= 0."""
    bits = _positive_int(ds, "BitsAllocated", path)
    if bits not in (16, 32):
        raise UnsupportedObjectError(path, f"RT Dose {_element(ds, 'BitsAllocated')} is {bits}; PS3.3 allows 16 or 32")
    stored = _positive_int(ds, "BitsStored", path, default=bits)
    if stored > bits:
        raise UnsupportedObjectError(path, f"RT Dose {_element(ds, 'BitsStored')} is {stored}, more than Bits Allocated {bits}")
    representation = ds.get("PixelRepresentation", 0)
    if representation not in (0, 1):
        raise UnsupportedObjectError(path, f"RT Dose {_element(ds, 'PixelRepresentation')} is {representation!r}, neither 0 nor 1")
    if _positive_int(ds, "SamplesPerPixel", path, default=1) != 1:
        raise UnsupportedObjectError(path, f"RT Dose {_element(ds, 'SamplesPerPixel')} is not 1")


def _native_dtype(ds: Dataset) -> np.dtype | None:
    """The numpy dtype of uncompressed pixel data that fills its bits, else None (pydicom decodes it)."""
    syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    bits = int(ds.get("BitsAllocated", 0) or 0)
    if (
        syntax is None or syntax.is_compressed or syntax.is_deflated or bits not in (16, 32)
        or int(ds.get("BitsStored", 0) or 0) != bits or int(ds.get("SamplesPerPixel", 1) or 1) != 1
        or not isinstance(ds.PixelData, (bytes, bytearray))
    ):
        return None
    order = "<" if syntax.is_little_endian else ">"
    kind = "i" if ds.get("PixelRepresentation", 0) == 1 else "u"
    return np.dtype(f"{order}{kind}{bits // 8}")


def _stored_values(ds: Dataset, path: Path, frames: int, rows: int, cols: int) -> np.ndarray:
    """The stored pixel values as a (frames, rows, columns) integer array.

    Uncompressed data whose values fill their bits (Bits Stored = Bits Allocated; PS3.3 C.8.8.3.4.1:
    an RT Dose's Bits Allocated is 16 or 32) are viewed in place in the data set's bytes, without a copy; anything else is
    decoded by pydicom.
    """
    dtype = _native_dtype(ds)
    count = frames * rows * cols
    if dtype is not None:
        if len(ds.PixelData) < count * dtype.itemsize:
            raise UnsupportedObjectError(
                path, f"cannot decode RT Dose pixel data (it holds {len(ds.PixelData)} bytes, {count * dtype.itemsize} expected)"
            )
        return np.frombuffer(ds.PixelData, dtype=dtype, count=count).reshape(frames, rows, cols)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pydicom's notes on odd pixel data: the checks below say what matters
            pixels = np.asarray(ds.pixel_array)
    except Exception as exc:  # missing decoder, corrupt or truncated pixel data
        raise UnsupportedObjectError(path, f"cannot decode RT Dose pixel data ({type(exc).__name__}: {exc})") from None
    if pixels.size != count:
        raise UnsupportedObjectError(
            path, f"RT Dose pixel data holds {pixels.size} values; NumberOfFrames x Rows x Columns = {frames} x {rows} x {cols} = {count}"
        )
    return pixels.reshape(frames, rows, cols)


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
    if not all(_MIN_SPACING_MM <= v <= _MAX_SPACING_MM for v in (row_spacing, col_spacing)):
        raise UnsupportedObjectError(
            path, f"RT Dose {_element(ds, 'PixelSpacing')} is {row_spacing}, {col_spacing} mm (between {_MIN_SPACING_MM:g} and {_MAX_SPACING_MM:g} mm expected)"
        )
    # PS3.3 C.8.8.3: "Scaling factor that when multiplied by the dose grid data ... yields grid doses in the
    # dose units": a dose is never negative, and a zero factor erases it.
    [scaling_value] = _float_list(ds, "DoseGridScaling", path, 1)
    if scaling_value <= 0:
        raise UnsupportedObjectError(path, f"RT Dose {_element(ds, 'DoseGridScaling')} is {scaling_value}; a scaling above 0 is required")

    _check_pixel_format(ds, path)
    frames = _positive_int(ds, "NumberOfFrames", path, default=1)
    rows, cols = _positive_int(ds, "Rows", path), _positive_int(ds, "Columns", path)
    pixels = _stored_values(ds, path, frames, rows, cols)
    if pixels.dtype.kind == "i" and pixels.size and int(pixels.min()) < 0:
        raise UnsupportedObjectError(
            path, f"RT Dose holds negative stored values ({_element(ds, 'PixelRepresentation')} 1); a dose is never negative"
        )

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

    # Voxel centres along the in-plane axes; the stored values are viewed (not copied) as (frame, y, x)
    # with x and y ascending, then scaled frame by frame, in ascending z, into the one float array.
    col_positions = origin[row_axis[0]] + row_axis[1] * col_spacing * np.arange(cols)
    row_positions = origin[col_axis[0]] + col_axis[1] * row_spacing * np.arange(rows)
    if row_axis[0] == 1:  # rows run along x: transpose to (frame, y, x)
        pixels = pixels.transpose(0, 2, 1)
        x, y = row_positions, col_positions
    else:
        x, y = col_positions, row_positions
    if x[0] > x[-1]:
        x, pixels = x[::-1], pixels[:, :, ::-1]
    if y[0] > y[-1]:
        y, pixels = y[::-1], pixels[:, ::-1, :]
    order = np.argsort(z, kind="stable")
    z = z[order]
    if z.size > 1 and np.any(np.diff(z) <= 0):
        raise UnsupportedObjectError(path, "GridFrameOffsetVector has repeated frame positions")
    # PS3.3 C.8.8.3, Dose Grid Scaling: "Scaling factor that when multiplied by the dose grid data found
    # in Pixel Data (7FE0,0010) Attribute of the Image Pixel Module, yields grid doses in the dose units".
    scaling = np.float64(scaling_value)
    dose = np.empty((frames, y.size, x.size))
    for k, frame in enumerate(order):
        np.multiply(pixels[frame], scaling, out=dose[k])
    if dose.size and not float(dose.max()) <= _MAX_DOSE_GY:
        raise UnsupportedObjectError(
            path, f"RT Dose reaches {float(dose.max()):g} Gy ({_element(ds, 'DoseGridScaling')} {scaling_value:g}); above {_MAX_DOSE_GY:g} Gy is no radiotherapy dose"
        )

    return DoseGrid(
        dose_gy=dose,
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
    grid = parse_dose(ds, path)
    grid.notes += file_meta_notes(ds, path)
    return grid


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


# --------------------------------------------------------------------------- the one dose sampler


@dataclass(frozen=True)
class AxisInterpolation:
    """Where positions fall along one grid axis (the module's edge rule).

    Per position: ``inside`` the grid's extent; the ``lower`` and ``upper`` voxel
    centre indices it is interpolated between and the ``weight`` (0..1) of the
    upper one. Beyond the outermost centres (inside or not) the position is
    clamped to the edge voxel: ``lower == upper`` or weight 0/1 there.
    """

    inside: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    weight: np.ndarray


def axis_extent_mm(centres_mm: np.ndarray) -> tuple[float, float]:
    """The extent (mm) a grid axis covers: its outermost voxel centres plus half a spacing each way."""
    if centres_mm.size == 1:
        return float(centres_mm[0]) - LONE_VOXEL_HALF_WIDTH_MM, float(centres_mm[0]) + LONE_VOXEL_HALF_WIDTH_MM
    return (
        float(centres_mm[0] - (centres_mm[1] - centres_mm[0]) / 2),
        float(centres_mm[-1] + (centres_mm[-1] - centres_mm[-2]) / 2),
    )


def axis_interpolation(centres_mm: np.ndarray, positions_mm: np.ndarray) -> AxisInterpolation:
    """Linear interpolation of ascending voxel centres (mm) at ``positions_mm`` (mm), edge-clamped."""
    n = centres_mm.size
    positions = np.asarray(positions_mm, dtype=float)
    low_edge, high_edge = axis_extent_mm(centres_mm)
    inside = (positions >= low_edge - EDGE_TOLERANCE_MM) & (positions <= high_edge + EDGE_TOLERANCE_MM)
    if n == 1:
        zeros = np.zeros(positions.size, dtype=np.int64)
        return AxisInterpolation(inside, zeros, zeros, np.zeros(positions.size))
    clamped = np.clip(positions, centres_mm[0], centres_mm[-1])
    upper = np.clip(np.searchsorted(centres_mm, clamped, side="right"), 1, n - 1)
    lower = upper - 1
    weight = (clamped - centres_mm[lower]) / (centres_mm[upper] - centres_mm[lower])
    return AxisInterpolation(inside, lower, upper, weight)


def dose_at_points(grid: DoseGrid, points_mm: np.ndarray) -> np.ndarray:
    """Dose (Gy, float64) at (N, 3) points (x, y, z) in patient coordinates (mm): trilinear,
    NaN for a point outside the grid (the module's edge rule)."""
    points_mm = np.asarray(points_mm, dtype=float).reshape(-1, 3)
    if points_mm.shape[0] == 0:
        return np.zeros(0)
    x = axis_interpolation(grid.x_mm, points_mm[:, 0])
    y = axis_interpolation(grid.y_mm, points_mm[:, 1])
    z = axis_interpolation(grid.z_mm, points_mm[:, 2])
    _, ny, nx = grid.dose_gy.shape
    flat = grid.dose_gy.reshape(-1)
    value = np.zeros(points_mm.shape[0])
    for zk, zf in ((z.lower, 1 - z.weight), (z.upper, z.weight)):
        for yk, yf in ((y.lower, 1 - y.weight), (y.upper, y.weight)):
            row = (zk * ny + yk) * nx
            for xk, xf in ((x.lower, 1 - x.weight), (x.upper, x.weight)):
                value += np.take(flat, row + xk) * zf * yf * xf
    value[~(x.inside & y.inside & z.inside)] = np.nan
    return value


class PlaneInterpolation:
    """Bilinear interpolation of a grid's axial dose planes at the points of an in-plane
    lattice (columns at ``xs_mm``, rows at ``ys_mm``; patient coordinates, mm).

    ``inside`` (rows, columns) says which lattice points the grid covers; values at the
    others are the clamped edge values, to be ignored (``values`` sets them to NaN).
    Only the window of voxel rows and columns the lattice reaches is read. The arithmetic
    is done in the planes' dtype (the DVH engine passes float32 planes).
    """

    def __init__(self, x_mm: np.ndarray, y_mm: np.ndarray, xs_mm: np.ndarray, ys_mm: np.ndarray) -> None:
        self.x = axis_interpolation(x_mm, xs_mm)
        self.y = axis_interpolation(y_mm, ys_mm)
        self.inside = self.y.inside[:, None] & self.x.inside[None, :]
        c0, r0 = int(self.x.lower.min()), int(self.y.lower.min())
        self.window = (slice(r0, int(self.y.upper.max()) + 1), slice(c0, int(self.x.upper.max()) + 1))
        self._cols = (self.x.lower - c0, self.x.upper - c0)
        self._rows = (self.y.lower - r0, self.y.upper - r0)
        self._weights: dict[np.dtype, tuple[np.ndarray, np.ndarray]] = {}

    @property
    def shape(self) -> tuple[int, int]:
        return self.y.inside.size, self.x.inside.size

    def _weights_as(self, dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
        if dtype not in self._weights:
            self._weights[dtype] = (self.x.weight.astype(dtype), self.y.weight.astype(dtype)[:, None])
        return self._weights[dtype]

    def _along_x(self, planes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(left voxel column, right minus left, interpolated along x), each (planes, voxel rows, columns)."""
        dose = planes[:, self.window[0], self.window[1]]
        tx, _ = self._weights_as(dose.dtype)
        # np.take: several times faster than fancy indexing on these strided views.
        left, right = np.take(dose, self._cols[0], axis=2), np.take(dose, self._cols[1], axis=2)
        x_diff = np.subtract(right, left, out=right)
        along_x = np.multiply(x_diff, tx, out=np.empty_like(left))
        along_x += left
        return left, x_diff, along_x

    def values(self, planes: np.ndarray) -> np.ndarray:
        """(planes, rows, columns) dose at the lattice points of (planes, grid rows, grid columns)
        dose planes (Gy); NaN at points the grid does not cover."""
        _, _, along_x = self._along_x(planes)
        _, ty = self._weights_as(along_x.dtype)
        below, above = np.take(along_x, self._rows[0], axis=1), np.take(along_x, self._rows[1], axis=1)
        above -= below
        above *= ty
        above += below
        above[:, ~self.inside] = np.nan
        return above

    def values_and_changes(self, planes: np.ndarray) -> np.ndarray:
        """(3, planes, rows, columns): the bilinear dose (Gy) at the lattice points, then its change
        between the two voxel columns and between the two voxel rows it is interpolated across (Gy;
        0 along a lone column or row). Values at points the grid does not cover are not masked."""
        left, x_diff, along_x = self._along_x(planes)
        _, ty = self._weights_as(along_x.dtype)
        y_lo, y_hi = self._rows
        below, above = np.take(along_x, y_lo, axis=1), np.take(along_x, y_hi, axis=1)
        out = np.empty((3,) + below.shape, along_x.dtype)
        y_diff = np.subtract(above, below, out=out[2])
        np.multiply(y_diff, ty, out=out[0])
        out[0] += below
        x_below, x_above = np.take(x_diff, y_lo, axis=1), np.take(x_diff, y_hi, axis=1)
        x_below *= 1 - ty
        x_above *= ty
        np.add(x_below, x_above, out=out[1])
        return out


def dose_on_lattice(grid: DoseGrid, x_mm: np.ndarray, y_mm: np.ndarray, z_mm: np.ndarray) -> np.ndarray:
    """The grid's dose (Gy, float64) resampled at every (x, y, z) of three ascending axes (mm), as a
    (z, y, x) array: trilinear, NaN outside the grid (the module's edge rule). Used to bring one
    course's or one plan's dose onto another grid of the same Frame of Reference."""
    z = axis_interpolation(grid.z_mm, np.asarray(z_mm, dtype=float))
    plane = PlaneInterpolation(grid.x_mm, grid.y_mm, np.asarray(x_mm, dtype=float), np.asarray(y_mm, dtype=float))
    out = np.full((z.inside.size,) + plane.shape, np.nan)
    for k in np.flatnonzero(z.inside):
        lower, upper = grid.dose_gy[z.lower[k]], grid.dose_gy[z.upper[k]]
        out[k] = plane.values((lower + (upper - lower) * z.weight[k])[None])[0]
    return out


def resampled_sum(grids: list[DoseGrid]) -> tuple[DoseGrid, list[str]]:
    """The sum of dose grids of one Frame of Reference (e.g. the plans of one course, the fraction groups of
    one plan), on the first grid's voxel centres, and notes.

    Grids of the first's geometry are added as they are; the others are resampled by :func:`dose_on_lattice`.
    The dose is known only where every grid gives it, so the summed grid keeps the first grid's centres that
    all the grids cover (the module's edge rule) and nothing beyond: a structure reaching farther counts as
    outside the dose grid, never as receiving no dose there.
    """
    first = grids[0]
    for other in grids[1:]:
        if other.frame_of_reference_uid != first.frame_of_reference_uid:
            raise InputError(
                other.paths[0] if other.paths else None,
                f"Frame of Reference {other.frame_of_reference_uid} differs from {first.paths[0] if first.paths else 'the first dose'}'s "
                f"({first.frame_of_reference_uid}); rtcheck adds doses only in one Frame of Reference (no registration)",
            )
    keep = []
    for axis in ("x_mm", "y_mm", "z_mm"):
        centres = getattr(first, axis)
        inside = np.ones(centres.size, dtype=bool)
        for other in grids[1:]:
            low, high = axis_extent_mm(getattr(other, axis))
            inside &= (centres >= low - EDGE_TOLERANCE_MM) & (centres <= high + EDGE_TOLERANCE_MM)
        if not inside.any():
            raise InputError(other.paths[0] if other.paths else None, f"its dose grid does not overlap {first.paths[0]}'s: the doses cannot be added")
        keep.append(np.flatnonzero(inside))
    ix, iy, iz = (slice(int(k[0]), int(k[-1]) + 1) for k in keep)
    x, y, z = first.x_mm[ix], first.y_mm[iy], first.z_mm[iz]
    total = first.dose_gy[iz, iy, ix].copy()
    notes = []
    for other in grids[1:]:
        if other.same_geometry(first):
            total += other.dose_gy[iz, iy, ix]
        else:
            total += dose_on_lattice(other, x, y, z)
            notes.append(f"{', '.join(map(str, other.paths))}: resampled (trilinear) onto the grid of {first.paths[0]}")
    if total.shape != first.dose_gy.shape:
        notes.append(
            f"the summed dose covers {total.size / first.dose_gy.size * 100:.1f} % of {first.paths[0]}'s grid: "
            "only where every dose grid gives the dose"
        )
    return DoseGrid(
        dose_gy=total, x_mm=np.ascontiguousarray(x), y_mm=np.ascontiguousarray(y), z_mm=np.ascontiguousarray(z),
        frame_of_reference_uid=first.frame_of_reference_uid,
        paths=[p for g in grids for p in g.paths], summation_type="sum", dose_type=first.dose_type,
        files=[f for g in grids for f in g.files],
    ), notes
