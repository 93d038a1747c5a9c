"""The one dose sampler (rtcheck.dicom.dose): values at points and on another grid, one edge rule.

Every grid here is an RT Dose written with pydicom and read back by rtcheck. The dose is a
linear field, which trilinear interpolation reproduces exactly, so every expected value is the
field itself (inside), the field at the clamped position (in the half-voxel band beyond the
outermost centres) or NaN (outside).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from dicom_factory import RT_DOSE, _base
from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, RLELossless, generate_uid

from rtcheck.dicom.dose import (
    EDGE_TOLERANCE_MM,
    DoseGrid,
    PlaneInterpolation,
    axis_extent_mm,
    dose_at_points,
    dose_on_lattice,
    load_dose,
)

FRAME = generate_uid()
X = np.arange(-10.0, 10.1, 2.5)  # 9 columns, extent -11.25 .. 11.25
Y = np.arange(-6.0, 6.1, 3.0)  # 5 rows, extent -7.5 .. 7.5
Z = np.arange(-4.0, 4.1, 2.0)  # 5 planes, extent -5 .. 5


def field(x, y, z):
    """A linear dose (Gy), non-negative over the test grids."""
    return 30.0 + 0.8 * np.asarray(x) - 0.5 * np.asarray(y) + 1.5 * np.asarray(z)


# Row direction (along a row, i.e. increasing column), column direction (increasing row).
ORIENTATIONS = {
    "standard": ((1, 0, 0), (0, 1, 0)),
    "flipped": ((-1, 0, 0), (0, -1, 0)),
    "transposed": ((0, 1, 0), (1, 0, 0)),
    "transposed flipped": ((0, -1, 0), (-1, 0, 0)),
}


def write_dose(path: Path, x: np.ndarray, y: np.ndarray, z: np.ndarray, orientation: str = "standard",
               frames_descending: bool = False, bits: int = 32, bits_stored: int | None = None,
               syntax: str = ExplicitVRLittleEndian) -> Path:
    """An RT Dose of ``field`` on the ascending axes x, y, z (mm), stored in the given pixel layout."""
    row_dir, col_dir = (np.array(v, dtype=float) for v in ORIENTATIONS[orientation])
    # Pixel (r, c) lies at origin + c * spacing * row_dir + r * spacing * col_dir.
    axes = {0: x, 1: y}
    row_axis, col_axis = int(np.argmax(np.abs(row_dir))), int(np.argmax(np.abs(col_dir)))
    along_row = axes[row_axis] if row_dir[row_axis] > 0 else axes[row_axis][::-1]
    along_col = axes[col_axis] if col_dir[col_axis] > 0 else axes[col_axis][::-1]
    frames_z = z[::-1] if frames_descending else z
    grid = np.meshgrid(frames_z, along_col, along_row, indexing="ij")
    coords = {2: grid[0], col_axis: grid[1], row_axis: grid[2]}
    dose = field(coords[0], coords[1], coords[2])
    scaling = 1e-4 if bits == 32 else 1e-2
    normal_z = float(np.cross(row_dir, col_dir)[2])
    origin = [0.0, 0.0, float(frames_z[0])]
    origin[row_axis], origin[col_axis] = float(along_row[0]), float(along_col[0])

    ds = _base(RT_DOSE, "RTDOSE", FRAME, generate_uid())
    ds.DoseUnits, ds.DoseType, ds.DoseSummationType = "GY", "PHYSICAL", "PLAN"
    ds.DoseGridScaling = f"{scaling:g}"
    ds.ImagePositionPatient = origin
    ds.ImageOrientationPatient = [*row_dir.tolist(), *col_dir.tolist()]
    ds.PixelSpacing = [float(abs(along_col[1] - along_col[0])), float(abs(along_row[1] - along_row[0]))]
    ds.GridFrameOffsetVector = [float(normal_z * (v - frames_z[0])) for v in frames_z]
    ds.NumberOfFrames = len(frames_z)
    ds.FrameIncrementPointer = 0x3004000C
    ds.Rows, ds.Columns = len(along_col), len(along_row)
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored = bits, bits_stored or bits
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 0
    counts = np.round(dose / scaling)
    big = syntax == ExplicitVRBigEndian
    ds.PixelData = counts.astype(f"{'>' if big else '<'}u{bits // 8}").tobytes()
    if big:
        ds.file_meta.TransferSyntaxUID = syntax
    if syntax == RLELossless:
        ds.compress(RLELossless)
    ds.save_as(path, enforce_file_format=True)
    return path


@pytest.fixture()
def grid(tmp_path) -> DoseGrid:
    return load_dose(write_dose(tmp_path / "RD.dcm", X, Y, Z))


def test_points_inside_the_grid_are_interpolated_trilinearly(grid):
    rng = np.random.default_rng(7)
    points = np.column_stack([rng.uniform(X[0], X[-1], 200), rng.uniform(Y[0], Y[-1], 200), rng.uniform(Z[0], Z[-1], 200)])
    values = dose_at_points(grid, points)
    np.testing.assert_allclose(values, field(points[:, 0], points[:, 1], points[:, 2]), atol=1e-4)
    # At the voxel centres the stored values themselves.
    centre = np.array([[X[3], Y[1], Z[4]]])
    assert dose_at_points(grid, centre)[0] == grid.dose_gy[4, 1, 3]


def test_the_half_voxel_band_takes_the_edge_value_and_beyond_it_the_dose_is_unknown(grid):
    low_x, high_x = axis_extent_mm(grid.x_mm)
    assert (low_x, high_x) == (-11.25, 11.25)
    y, z = 1.0, -1.0
    xs = np.array([
        -10.0, -11.0, low_x, low_x - EDGE_TOLERANCE_MM / 2,  # edge centre, in the band, on the edge, rounding
        high_x + EDGE_TOLERANCE_MM / 2, low_x - 1e-3, high_x + 1e-3, 40.0,  # rounding; then outside
    ])
    points = np.column_stack([xs, np.full(xs.size, y), np.full(xs.size, z)])
    values = dose_at_points(grid, points)
    edge_low, edge_high = field(-10.0, y, z), field(10.0, y, z)
    np.testing.assert_allclose(values[:5], [edge_low, edge_low, edge_low, edge_low, edge_high], atol=1e-4)
    assert np.isnan(values[5:]).all()
    # The same rule along y and z: 0.1 mm beyond each extent is unknown, 0.1 mm within is the edge value.
    for axis, centres in ((1, Y), (2, Z)):
        low, high = axis_extent_mm(centres)
        inner = np.tile([0.0, 0.0, 0.0], (4, 1))
        inner[:, axis] = [low + 0.1, high - 0.1, low - 0.1, high + 0.1]
        got = dose_at_points(grid, inner)
        clamped = inner.copy()
        clamped[:2, axis] = [centres[0], centres[-1]]
        np.testing.assert_allclose(got[:2], field(clamped[:2, 0], clamped[:2, 1], clamped[:2, 2]), atol=1e-4)
        assert np.isnan(got[2:]).all()
    assert dose_at_points(grid, np.zeros((0, 3))).shape == (0,)


def test_a_lone_plane_is_taken_as_one_millimetre_thick(tmp_path):
    grid = load_dose(write_dose(tmp_path / "RD.dcm", X, Y, np.array([2.0])))
    assert axis_extent_mm(grid.z_mm) == (1.5, 2.5)
    points = np.array([[0.0, 0.0, 2.0], [0.0, 0.0, 2.4], [0.0, 0.0, 1.6], [0.0, 0.0, 2.6], [0.0, 0.0, 1.0]])
    values = dose_at_points(grid, points)
    np.testing.assert_allclose(values[:3], field(0.0, 0.0, 2.0), atol=1e-4)
    assert np.isnan(values[3:]).all()


@pytest.mark.parametrize("orientation", sorted(ORIENTATIONS))
@pytest.mark.parametrize("frames_descending", [False, True])
def test_flipped_and_transposed_pixel_layouts_give_the_same_grid_and_values(tmp_path, grid, orientation, frames_descending):
    other = load_dose(write_dose(tmp_path / "other.dcm", X, Y, Z, orientation, frames_descending))
    for axis in ("x_mm", "y_mm", "z_mm"):
        np.testing.assert_array_equal(getattr(other, axis), getattr(grid, axis))
    np.testing.assert_array_equal(other.dose_gy, grid.dose_gy)
    assert other.dose_gy.flags.c_contiguous and other.dose_gy.dtype == np.float64
    points = np.array([[-9.3, 4.2, 3.1], [10.9, -7.4, -4.9], [0.0, 0.0, 5.5]])
    np.testing.assert_array_equal(dose_at_points(other, points), dose_at_points(grid, points))


def test_sixteen_bit_doses_are_read_as_the_same_dose(tmp_path):
    grid = load_dose(write_dose(tmp_path / "RD.dcm", X, Y, Z, "flipped", bits=16))
    zz, yy, xx = np.meshgrid(Z, Y, X, indexing="ij")
    np.testing.assert_allclose(grid.dose_gy, field(xx, yy, zz), atol=0.005)


def test_resampling_onto_a_shifted_finer_grid_follows_the_edge_rule(grid):
    # 1 mm steps offset by 0.25 mm, reaching 2 mm beyond the grid on every side.
    x, y, z = np.arange(-13.25, 13.3, 1.0), np.arange(-9.25, 9.3, 1.0), np.arange(-7.25, 7.3, 1.0)
    values = dose_on_lattice(grid, x, y, z)
    assert values.shape == (z.size, y.size, x.size)
    zz, yy, xx = np.meshgrid(z, y, x, indexing="ij")
    inside = (np.abs(xx) <= 11.25) & (np.abs(yy) <= 7.5) & (np.abs(zz) <= 5.0)
    assert np.array_equal(~np.isnan(values), inside)
    expected = field(np.clip(xx, X[0], X[-1]), np.clip(yy, Y[0], Y[-1]), np.clip(zz, Z[0], Z[-1]))
    np.testing.assert_allclose(values[inside], expected[inside], atol=1e-4)
    # The same numbers as the point sampler at those positions.
    points = np.column_stack([xx.ravel(), yy.ravel(), zz.ravel()])
    np.testing.assert_allclose(values.ravel(), dose_at_points(grid, points), rtol=0, atol=1e-12, equal_nan=True)


def test_a_finer_grid_whose_outermost_centres_lie_on_the_extent_is_covered(grid):
    # Centres every 1.25 mm from edge to edge: the outermost ones lie exactly on the grid's extent.
    x, y, z = np.linspace(-11.25, 11.25, 19), np.linspace(-7.5, 7.5, 13), np.linspace(-5.0, 5.0, 9)
    values = dose_on_lattice(grid, x, y, z)
    assert not np.isnan(values).any()
    zz, yy, xx = np.meshgrid(z, y, x, indexing="ij")
    expected = field(np.clip(xx, X[0], X[-1]), np.clip(yy, Y[0], Y[-1]), np.clip(zz, Z[0], Z[-1]))
    np.testing.assert_allclose(values, expected, atol=1e-4)


def test_resampling_onto_the_grid_itself_returns_its_dose(grid):
    np.testing.assert_array_equal(dose_on_lattice(grid, grid.x_mm, grid.y_mm, grid.z_mm), grid.dose_gy)


def test_plane_interpolation_gives_the_dvh_engine_values_and_changes_across_voxels(grid):
    xs, ys = np.arange(-12.0, 12.1, 0.5), np.arange(-8.0, 8.1, 0.5)
    plane = PlaneInterpolation(grid.x_mm, grid.y_mm, xs, ys)
    planes = grid.single_precision()[1:4]
    out = plane.values_and_changes(planes)
    assert out.shape == (3, 3, ys.size, xs.size) and out.dtype == np.float32
    yy, xx = np.meshgrid(ys, xs, indexing="ij")
    assert np.array_equal(plane.inside, (np.abs(xx) <= 11.25) & (np.abs(yy) <= 7.5))
    for k, z in enumerate(Z[1:4]):
        np.testing.assert_allclose(out[0, k], field(np.clip(xx, X[0], X[-1]), np.clip(yy, Y[0], Y[-1]), z), atol=1e-3)
    # Between centres: the field's change across one voxel (0.8 Gy/mm x 2.5 mm, -0.5 Gy/mm x 3 mm).
    np.testing.assert_allclose(out[1], 2.0, atol=1e-3)
    np.testing.assert_allclose(out[2], -1.5, atol=1e-3)
    values = plane.values(grid.dose_gy[1:4])
    assert np.array_equal(np.isnan(values[0]), ~plane.inside)
    np.testing.assert_allclose(values[:, plane.inside], out[0][:, plane.inside], atol=1e-4)


# --------------------------------------------------------------------------- reading the RT Dose


@pytest.mark.parametrize("orientation", sorted(ORIENTATIONS))
def test_the_grid_is_the_stored_values_times_the_scaling_in_ascending_axes(tmp_path, orientation):
    path = write_dose(tmp_path / "RD.dcm", X, Y, Z, orientation, frames_descending=True)
    grid = load_dose(path)
    ds = pydicom.dcmread(path)
    # pydicom's own decoding, reordered by the file's geometry: the same float64 numbers.
    stored = ds.pixel_array.astype(np.float64) * float(ds.DoseGridScaling)
    row_dir, col_dir = ORIENTATIONS[orientation]
    if row_dir[1]:
        stored = stored.transpose(0, 2, 1)
    if min(row_dir + col_dir) < 0:
        stored = stored[:, ::-1, ::-1]
    np.testing.assert_array_equal(grid.dose_gy, stored[::-1])


@pytest.mark.parametrize(
    "bits, stored, syntax",
    [(16, 16, RLELossless), (32, 32, ExplicitVRBigEndian), (16, 15, ExplicitVRLittleEndian)],
    ids=["rle-lossless", "big-endian", "bits-stored-15-of-16"],
)
def test_doses_pydicom_decodes_are_read_as_the_same_grid(tmp_path, bits, stored, syntax):
    reference = load_dose(write_dose(tmp_path / "RD.dcm", X, Y, Z, "flipped", bits=bits))
    other = load_dose(write_dose(tmp_path / "other.dcm", X, Y, Z, "flipped", bits=bits, bits_stored=stored, syntax=syntax))
    np.testing.assert_array_equal(other.dose_gy, reference.dose_gy)
    np.testing.assert_array_equal(other.x_mm, reference.x_mm)


# --------------------------------------------------------------------------- contours, converted once


def test_an_roi_arranges_its_contours_by_plane_once(tmp_path):
    from dicom_factory import Case, RoiShape

    from rtcheck.dicom.io import read_dataset
    from rtcheck.dicom.structures import Contour, parse_structure_set

    case = Case([RoiShape("PTV", radius_mm=10.0, z_range_mm=(-4.0, 4.0))], dose=lambda x, y, z: np.full_like(x, 1.0))
    path = case.write(tmp_path)["structure_set"]
    roi = parse_structure_set(read_dataset(path), path).rois[0]
    z, polygons = roi.planes()
    np.testing.assert_array_equal(z, [-4.0, -2.0, 0.0, 2.0, 4.0])
    assert [len(p) for p in polygons] == [1] * 5 and roi.planes()[1] is polygons  # kept, not remade
    low, high = roi.bounds_mm()
    np.testing.assert_allclose(low, [-10.0, -10.0, -4.0], atol=1e-9)
    np.testing.assert_allclose(high, [10.0, 10.0, 4.0], atol=1e-9)
    # A contour added afterwards (e.g. by a caller building an ROI) is seen.
    roi.contours.append(Contour(6.0, np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])))
    np.testing.assert_array_equal(roi.plane_positions_mm(), [-4.0, -2.0, 0.0, 2.0, 4.0, 6.0])
    assert len(roi.planes()[1]) == 6
