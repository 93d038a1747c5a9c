"""Files as planning systems write them: RT Plan and RT Dose without preamble and file meta (Monaco)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydicom.dataset import Dataset

from cli_helpers import rtcheck
from dicom_factory import Case, RoiShape

CR_PR = ["--protocol", "escc-induction-icrt-ccrt", "--arm", "cr-pr"]


def course(x, y, z):
    return 50.4 + 0.1 * x - 0.004 * (x**2 + y**2)


def save_without_meta(ds: Dataset, path: Path, *, implicit_vr: bool) -> Path:
    """``ds`` written as a bare data set: no 128-byte preamble, no DICM prefix, no file meta."""
    bare = Dataset(ds)
    bare.save_as(path, implicit_vr=implicit_vr, little_endian=True, enforce_file_format=False)
    assert path.read_bytes()[128:132] != b"DICM" and path.read_bytes()[:2] == b"\x08\x00"  # starts with group 0008
    return path


@pytest.mark.parametrize("implicit_vr", [True, False], ids=["implicit-vr", "explicit-vr"])
def test_plan_and_dose_without_file_meta_are_read_whole(tmp_path, implicit_vr):
    """The same plan with and without file meta gives the same check, and the output says what was inferred."""
    case = Case([RoiShape("PTV", radius_mm=12, z_range_mm=(-12, 12))], dose=course)
    paths = case.write(tmp_path / "with-meta")
    bare = tmp_path / "bare"
    bare.mkdir()
    save_without_meta(case.plan, bare / "RP.dcm", implicit_vr=implicit_vr)
    save_without_meta(case.rt_dose, bare / "RD.dcm", implicit_vr=implicit_vr)
    (bare / "RS.dcm").write_bytes(paths["structure_set"].read_bytes())
    expected = json.loads(rtcheck("check", tmp_path / "with-meta", *CR_PR, "--format", "json").stdout)
    result = rtcheck("check", bare, *CR_PR, "--format", "json")
    assert result.exit_code in (0, 1), result.stderr
    found = json.loads(result.stdout)
    assert [(c["id"], c["value"], c["status"]) for c in found["checks"]] == [(c["id"], c["value"], c["status"]) for c in expected["checks"]]
    syntax = "Implicit VR Little Endian" if implicit_vr else "Explicit VR Little Endian"
    for name in ("RP.dcm", "RD.dcm"):
        assert f"{bare / name}: no file meta (no DICM preamble); read as {syntax}, the encoding found in the file" in found["notes"]
    assert not any("RS.dcm: no file meta" in n for n in found["notes"])
