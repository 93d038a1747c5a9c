"""ContourData is parsed in bulk from its raw bytes: same numbers as pydicom's, honest failures."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest

from cli_helpers import rtcheck
from rtcheck.dicom.io import contour_coordinates, read_dataset

SAMPLES = Path(__file__).resolve().parent.parent / "sample_plans"


@pytest.mark.parametrize("folder", ["cr-pr-compliant", "sd-pd-compliant"])
def test_bulk_parse_equals_pydicom_value_by_value(folder):
    ours = read_dataset(SAMPLES / folder / "RS.dcm")
    theirs = pydicom.dcmread(SAMPLES / folder / "RS.dcm")
    compared = 0
    for mine, reference in zip(ours.ROIContourSequence, theirs.ROIContourSequence):
        for a, b in zip(mine.ContourSequence, reference.ContourSequence):
            expected = np.array([float(v) for v in b.ContourData])
            np.testing.assert_array_equal(contour_coordinates(a), expected)
            compared += 1
    assert compared > 50


def test_already_converted_values_are_read_too():
    ds = pydicom.dcmread(SAMPLES / "cr-pr-compliant" / "RS.dcm")
    item = ds.ROIContourSequence[0].ContourSequence[0]
    expected = [float(v) for v in item.ContourData]  # converts the element
    np.testing.assert_array_equal(contour_coordinates(item), expected)


def _corrupt_first_cord_value(source: Path, target: Path, replacement: bytes) -> None:
    """Copy the RS with the first SpinalCord coordinate replaced (same length) in the file's bytes."""
    ds = pydicom.dcmread(source)
    number = next(int(r.ROINumber) for r in ds.StructureSetROISequence if r.ROIName == "SpinalCord")
    item = next(rc for rc in ds.ROIContourSequence if int(rc.ReferencedROINumber) == number).ContourSequence[0]
    value = bytes(item.get_item(0x30060050).value)
    first = value.split(b"\\")[0]
    assert len(replacement) <= len(first)
    corrupted = replacement.ljust(len(first)) + value[len(first):]
    content = source.read_bytes()
    assert content.count(value) == 1
    target.write_bytes(content.replace(value, corrupted))


@pytest.mark.parametrize("replacement", [b"abc", b"nan"])
def test_a_bad_coordinate_makes_the_roi_not_evaluated_never_a_pass(tmp_path, replacement):
    case = tmp_path / "case"
    shutil.copytree(SAMPLES / "cr-pr-compliant", case)
    _corrupt_first_cord_value(SAMPLES / "cr-pr-compliant" / "RS.dcm", case / "RS.dcm", replacement)
    result = rtcheck("check", case, "--protocol", "escc-induction-icrt-ccrt", "--arm", "cr-pr", "--format", "json")
    assert result.exit_code == 1
    document = json.loads(result.stdout)
    cord = next(c for c in document["checks"] if c["id"] == "cord-max")
    assert cord["status"] == "not_evaluated"
    assert "SpinalCord" in cord["message"] and ("not a number" in cord["message"] or "not finite" in cord["message"])
    assert document["verdict"] == "not_evaluated"
