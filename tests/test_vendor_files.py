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


# --------------------------------------------------------------------------- ROI names: no silent choice

# Closed (tapering) ends, so the organ ends where it is drawn (rtcheck's contour completeness rule).
LUNGS = RoiShape("Lungs", centre_xy_mm=(0, 0), radius_mm=30, z_range_mm=(-20, 20), profile=lambda z: max(0.0, 1.0 - (z / 21.0) ** 2) ** 0.5)


def lung_case(*names: str) -> Case:
    rois = [RoiShape("PTV", radius_mm=10, z_range_mm=(-10, 10))] + [
        RoiShape(name, centre_xy_mm=LUNGS.centre_xy_mm, radius_mm=LUNGS.radius_mm, z_range_mm=LUNGS.z_range_mm, profile=LUNGS.profile) for name in names
    ]
    return Case(rois, dose=course)


def lungs_check(folder: Path, *options: str) -> dict:
    result = rtcheck("check", folder, *CR_PR, "--format", "json", *options)
    assert result.exit_code in (0, 1), result.stderr
    return next(c for c in json.loads(result.stdout)["checks"] if c["id"] == "lungs-v20")


def test_several_rois_matching_a_structure_are_not_evaluated_until_mapped(tmp_path):
    lung_case("Lung_Total", "TotalLung").write(tmp_path)
    check = lungs_check(tmp_path)
    assert check["status"] == "not_evaluated"
    assert "'Lung_Total', 'TotalLung'" in check["message"] and "--map Lungs=ROI" in check["message"]
    mapped = lungs_check(tmp_path, "--map", "Lungs=TotalLung")
    assert mapped["status"] != "not_evaluated" and mapped["roi_name"] == "TotalLung"


def test_the_exact_name_is_chosen_before_aliases_and_the_others_are_named(tmp_path):
    lung_case("Lung", "Lungs").write(tmp_path)
    check = lungs_check(tmp_path)
    assert check["roi_name"] == "Lungs" and check["status"] != "not_evaluated"
    assert "exact name before alias" in check["message"] and "not chosen: 'Lung'" in check["message"]


def test_ptv1_is_no_alias_of_the_elective_ptv():
    """In Chinese exports PTV1 is often the boost: no shipped protocol takes it for its PTV."""
    from rtcheck.protocol.library import list_protocols
    from rtcheck.protocol.matching import normalise_name

    for protocol in list_protocols():
        for spec in protocol.structures.values():
            assert "ptv1" not in {normalise_name(a) for a in spec.aliases}, (protocol.id, spec.name)


# --------------------------------------------------------------------------- a structure set not the one referenced


def test_an_unreferenced_structure_set_of_the_same_patient_and_frame_is_named_and_accepted_on_request(tmp_path):
    """The plan references a structure set that is absent; another of the same patient and Frame of Reference (a
    re-export with a new UID) is present: refused, naming that file and --structure-set; accepted with it, noted."""
    from pydicom.uid import generate_uid

    case = Case([RoiShape("PTV", radius_mm=12, z_range_mm=(-12, 12))], dose=course)
    paths = case.write(tmp_path / "plan")
    case.structure_set.SOPInstanceUID = generate_uid()
    case.structure_set.file_meta.MediaStorageSOPInstanceUID = case.structure_set.SOPInstanceUID
    case.structure_set.save_as(paths["structure_set"], enforce_file_format=True)
    result = rtcheck("check", tmp_path / "plan", *CR_PR)
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1
    assert f"{paths['plan']}: plan references RT Structure Set" in result.stderr
    assert f"--structure-set {paths['structure_set']}" in result.stderr
    accepted = rtcheck("check", tmp_path / "plan", *CR_PR, "--structure-set", paths["structure_set"], "--format", "json")
    assert accepted.exit_code in (0, 1), accepted.stderr
    document = json.loads(accepted.stdout)
    assert any("used as asked (--structure-set)" in n for n in document["notes"])
    assert str(paths["structure_set"]) in document["inputs"]

    other = Case([RoiShape("PTV")], dose=course)  # another Frame of Reference
    elsewhere = other.write(tmp_path / "other")["structure_set"]
    refused = rtcheck("check", tmp_path / "plan", *CR_PR, "--structure-set", elsewhere)
    assert refused.exit_code == 2 and "Frame of Reference" in refused.stderr and str(elsewhere) in refused.stderr
