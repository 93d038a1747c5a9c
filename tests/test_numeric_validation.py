"""Every number the dose reader uses is validated: a damaged value is a one-line error naming the file and
the element (exit 2), never an internal error or a silently wrong dose (issue 12, item 1).

The fuzz campaign behind the issue met: ``cannot reshape array`` (NumberOfFrames vs pixel data),
``IndexError`` (negative DoseGridScaling), ``cannot convert float NaN to integer`` (PixelSpacing NaN),
OverflowError (PixelSpacing 1e+-300), and a signed PixelRepresentation read as negative doses with exit 0.
"""

import warnings

import numpy as np
import pytest

from tests.cli_helpers import rtcheck
from tests.dicom_factory import Case, RoiShape


def _case():
    return Case([RoiShape("PTV", radius_mm=12.0)], dose=lambda x, y, z: np.full_like(x, 50.4))


def _set(ds, keyword, value):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom warns about the invalid values written on purpose
        setattr(ds, keyword, value)


def _signed_negative(ds):
    values = np.frombuffer(ds.PixelData, "<u4").astype("<i4")
    values[:10] = -1000
    ds.PixelRepresentation = 1
    ds.PixelData = values.tobytes()


def _frames_beyond_pixel_data(ds):
    ds.NumberOfFrames = int(ds.NumberOfFrames) + 1
    ds.GridFrameOffsetVector = [*ds.GridFrameOffsetVector, float(ds.GridFrameOffsetVector[-1]) + 2.0]
    ds.PixelData = ds.PixelData + b"\0"  # an odd length, neither the frames announced nor those held


DAMAGES = {
    "PixelSpacing NaN": (lambda ds: _set(ds, "PixelSpacing", ["NaN", "2.0"]), "PixelSpacing (0028,0030)"),
    "PixelSpacing 1e300": (lambda ds: _set(ds, "PixelSpacing", ["1e300", "2.0"]), "PixelSpacing (0028,0030)"),
    "PixelSpacing 1e-300": (lambda ds: _set(ds, "PixelSpacing", ["1e-300", "2.0"]), "PixelSpacing (0028,0030)"),
    "PixelSpacing 0": (lambda ds: _set(ds, "PixelSpacing", ["0", "2.0"]), "PixelSpacing (0028,0030)"),
    "DoseGridScaling negative": (lambda ds: _set(ds, "DoseGridScaling", "-0.001"), "DoseGridScaling (3004,000E)"),
    "DoseGridScaling NaN": (lambda ds: _set(ds, "DoseGridScaling", "NaN"), "DoseGridScaling (3004,000E)"),
    "DoseGridScaling zero": (lambda ds: _set(ds, "DoseGridScaling", "0"), "DoseGridScaling (3004,000E)"),
    "DoseGridScaling huge": (lambda ds: _set(ds, "DoseGridScaling", "1e300"), "DoseGridScaling (3004,000E)"),
    "ImagePositionPatient inf": (lambda ds: _set(ds, "ImagePositionPatient", ["-40", "inf", "-30"]), "ImagePositionPatient (0020,0032)"),
    "GridFrameOffsetVector NaN": (
        lambda ds: _set(ds, "GridFrameOffsetVector", ["0", "NaN", *[str(v) for v in ds.GridFrameOffsetVector[2:]]]),
        "GridFrameOffsetVector (3004,000C)",
    ),
    "NumberOfFrames beyond pixel data": (_frames_beyond_pixel_data, "pixel data"),
    "NumberOfFrames zero": (lambda ds: _set(ds, "NumberOfFrames", 0), "NumberOfFrames (0028,0008)"),
    "Rows zero": (lambda ds: _set(ds, "Rows", 0), "Rows (0028,0010)"),
    "BitsAllocated 8": (lambda ds: _set(ds, "BitsAllocated", 8), "BitsAllocated (0028,0100)"),
    "signed negative doses": (_signed_negative, "negative"),
}


@pytest.mark.parametrize("name", DAMAGES)
def test_a_damaged_dose_number_is_a_one_line_error_naming_file_and_element(tmp_path, name):
    damage, element = DAMAGES[name]
    case = _case()
    damage(case.rt_dose)
    paths = case.write(tmp_path)
    before = {p: p.read_bytes() for p in paths.values()}
    result = rtcheck("check", tmp_path, "--protocol", "escc-induction-icrt-ccrt", "--arm", "cr-pr")
    assert result.exit_code == 2, result.output
    [line] = result.stderr.strip().splitlines()
    assert str(paths["dose"]) in line and element in line
    assert {p: p.read_bytes() for p in paths.values()} == before
