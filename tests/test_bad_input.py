"""Bad inputs: refused with exit 2 and one line naming the file, or checked with the affected
checks not evaluated (with the reason).  Never a traceback, never a pass.

The DICOM files are real bytes written with pydicom (tests/dicom_factory.py), copies of the
shipped sample plans, or pydicom's own test files.
"""

from __future__ import annotations

import copy
import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import generate_uid

from cli_helpers import rtcheck, run_process
from dicom_factory import Case, RoiShape

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "sample_plans"
PROTOCOL_FILE = ROOT / "protocols" / "escc-induction-icrt-ccrt.yaml"
CR_PR = ["--protocol", "escc-induction-icrt-ccrt", "--arm", "cr-pr"]


# --------------------------------------------------------------------------- helpers


def assert_input_error(result, *words, names: Path | str | None = None) -> str:
    """Exit 2 with exactly one stderr line ``rtcheck: error: <file>: ...`` holding ``words``."""
    assert result.exit_code == 2, (result.exit_code, result.stdout, result.stderr, result.exception)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    line = lines[0]
    assert line.startswith("rtcheck: error: "), line
    assert "Traceback" not in result.stderr + result.stdout
    if names is not None:
        assert line.startswith(f"rtcheck: error: {names}: "), line
    for word in words:
        assert word.lower() in line.lower(), (word, line)
    return line


def plateau_dose(x, y, z):
    """50.4 Gy inside r < 15 mm of the z axis, falling off to a 2 Gy bath beyond ~20 mm."""
    r = np.hypot(x, y)
    # A 2 Gy bath: below 5 % of 50.4 Gy, so organs cut at |z| = 20 mm are complete by rtcheck's completeness rule.
    return 2.0 + 48.4 / (1.0 + np.exp(-(15.0 - r)))


def compliant_rois(**replace: RoiShape) -> list[RoiShape]:
    """PTV on the axis; Lungs, Heart and SpinalCord 20+ mm away, in the 2 Gy bath; BODY around them."""
    rois = {
        "PTV": RoiShape("PTV", radius_mm=10, interpreted_type="PTV"),
        "Lungs": RoiShape("Lungs", centre_xy_mm=(-28, 0), radius_mm=6),
        "Heart": RoiShape("Heart", centre_xy_mm=(25, 20), radius_mm=6),
        "SpinalCord": RoiShape("SpinalCord", centre_xy_mm=(0, -30), radius_mm=4),
        "BODY": RoiShape("BODY", radius_mm=38, z_range_mm=(-26, 26), interpreted_type="EXTERNAL"),
    }
    rois.update(replace)
    return list(rois.values())


def compliant_case(**replace: RoiShape) -> Case:
    """A cr-pr plan (PTV 50.4 Gy / 28 fx) meeting every required check of the protocol."""
    return Case(compliant_rois(**replace), dose=plateau_dose)


def check_json(*args):
    result = rtcheck("check", *args, *CR_PR, "--format", "json")
    assert result.exit_code in (0, 1), (result.exit_code, result.stderr, result.exception)
    return result, json.loads(result.stdout)


def dvh_json(*args) -> dict:
    result = rtcheck("dvh", *args, "--format", "json")
    assert result.exit_code == 0, (result.exit_code, result.stderr, result.exception)
    document = json.loads(result.stdout)
    assert document["schema"] == "rtcheck.dvh/1"
    return {row["name"]: row for row in document["structures"]}


def save(ds: Dataset, path: Path) -> Path:
    ds.save_as(path, enforce_file_format=True)
    return path


def new_instance(ds: Dataset) -> Dataset:
    """A copy of ``ds`` as a new SOP instance."""
    other = copy.deepcopy(ds)
    other.SOPInstanceUID = generate_uid()
    other.file_meta.MediaStorageSOPInstanceUID = other.SOPInstanceUID
    return other


# --------------------------------------------------------------------------- the baseline


def test_synthetic_baseline_is_per_protocol(tmp_path):
    """The case the not-evaluated tests below spoil is itself compliant, so their verdicts come from the spoiling."""
    compliant_case().write(tmp_path)
    result, document = check_json(tmp_path)
    assert result.exit_code == 0
    assert document["verdict"] == "per_protocol"
    required = [c for c in document["checks"] if c["counts"] and c["kind"] != "integrity"]
    assert {c["structure"] for c in required} == {"PTV", "Lungs", "Heart", "SpinalCord", "Body-PTV"}
    assert all(c["status"] == "per_protocol" for c in document["checks"] if c["counts"])


# --------------------------------------------------------------------------- files that are not (whole) DICOM


@pytest.mark.parametrize("command", [["check", *CR_PR], ["dvh"]], ids=["check", "dvh"])
def test_non_dicom_file_named_explicitly_is_refused(tmp_path, command):
    """A text file named on the command line is an input error naming it."""
    paths = compliant_case().write(tmp_path / "set")
    notes = tmp_path / "notes.txt"
    notes.write_text("patient notes, not DICOM\n", encoding="utf-8")
    result = rtcheck(command[0], *paths.values(), notes, *command[1:])
    assert_input_error(result, "not a DICOM file", names=notes)


def test_non_dicom_file_in_a_scanned_folder_is_skipped_with_a_warning(tmp_path):
    """A stray file met while scanning a folder is skipped with a warning; the check goes on."""
    compliant_case().write(tmp_path)
    notes = tmp_path / "notes.txt"
    notes.write_text("patient notes, not DICOM\n", encoding="utf-8")

    result, document = check_json(tmp_path)
    assert result.exit_code == 0 and document["verdict"] == "per_protocol"
    warnings = [line for line in result.stderr.splitlines() if line.startswith("rtcheck: warning:")]
    assert len(warnings) == 1 and str(notes) in warnings[0] and "skipped" in warnings[0]
    assert any(str(notes) in note and "skipped" in note for note in document["notes"])

    table = rtcheck("check", tmp_path, *CR_PR)
    assert table.exit_code == 0
    assert f"{notes}: skipped" in table.stdout

    dvh = rtcheck("dvh", tmp_path)
    assert dvh.exit_code == 0 and "PTV" in dvh.stdout
    assert f"rtcheck: warning: {notes}: skipped" in dvh.stderr


def _truncate(path: Path, fraction: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])


def test_truncated_dose_is_refused(tmp_path):
    """An RT Dose cut off mid-way (in its pixel data) is refused as truncated, in a folder or named."""
    paths = compliant_case().write(tmp_path)
    _truncate(paths["dose"])
    assert_input_error(rtcheck("check", tmp_path, *CR_PR), "truncated", names=paths["dose"])
    assert_input_error(rtcheck("check", *paths.values(), *CR_PR), "truncated", names=paths["dose"])
    assert_input_error(rtcheck("dvh", tmp_path), "truncated", names=paths["dose"])


def test_truncated_plan_named_explicitly_is_refused(tmp_path):
    """An RT Plan cut off mid-way and named on the command line is refused as truncated."""
    paths = compliant_case().write(tmp_path)
    _truncate(paths["plan"])
    assert_input_error(rtcheck("check", *paths.values(), *CR_PR), "truncated", names=paths["plan"])


def test_truncated_plan_in_a_folder_is_reported(tmp_path):
    """A truncated RT Plan inside a folder must not vanish: the error names it and says truncated."""
    paths = compliant_case().write(tmp_path)
    _truncate(paths["plan"])
    result = rtcheck("check", tmp_path, *CR_PR)
    assert result.exit_code == 2
    assert str(paths["plan"]) in result.stderr and "truncated" in result.stderr


@pytest.mark.parametrize("command", [["check", *CR_PR], ["dvh"]], ids=["check", "dvh"])
def test_pydicom_truncated_plan_is_refused(command):
    """pydicom's rtplan_truncated.dcm (cut inside the beam sequence) is refused as truncated."""
    path = get_testdata_file("rtplan_truncated.dcm")
    assert_input_error(rtcheck(command[0], path, *command[1:]), "truncated", names=path)


# --------------------------------------------------------------------------- RT Dose objects rtcheck cannot use honestly


def _no_pixel_data(case: Case) -> None:
    del case.rt_dose.PixelData


def _relative(case: Case) -> None:
    case.rt_dose.DoseUnits = "RELATIVE"


def _coronal(case: Case) -> None:
    case.rt_dose.ImageOrientationPatient = [1, 0, 0, 0, 0, -1]


def _sagittal(case: Case) -> None:
    case.rt_dose.ImageOrientationPatient = [0, 1, 0, 0, 0, -1]


def _other_frame(case: Case) -> None:
    case.rt_dose.FrameOfReferenceUID = generate_uid()


@pytest.mark.parametrize(
    "spoil, words",
    [
        (_no_pixel_data, ["pixel data"]),
        (_relative, ["RELATIVE"]),
        (_coronal, ["non-axial"]),
        (_sagittal, ["non-axial"]),
        (_other_frame, ["Frame of Reference"]),
    ],
    ids=["no-pixel-data", "relative", "coronal", "sagittal", "frame-of-reference"],
)
def test_unusable_dose_is_refused(tmp_path, spoil, words):
    """Doses without pixel data, RELATIVE, non-axial or in another Frame of Reference: exit 2 naming RD.dcm."""
    case = compliant_case()
    spoil(case)
    paths = case.write(tmp_path)
    assert_input_error(rtcheck("check", tmp_path, *CR_PR), *words, names=paths["dose"])
    assert_input_error(rtcheck("dvh", tmp_path), *words, names=paths["dose"])


def test_structure_set_in_another_frame_of_reference_is_refused(tmp_path):
    """A structure set whose Frame of Reference is not the dose's is refused, naming RS.dcm."""
    case = compliant_case()
    other = generate_uid()
    case.structure_set.ReferencedFrameOfReferenceSequence[0].FrameOfReferenceUID = other
    for item in case.structure_set.StructureSetROISequence:
        item.ReferencedFrameOfReferenceUID = other
    paths = case.write(tmp_path)
    assert_input_error(rtcheck("check", tmp_path, *CR_PR), "Frame of Reference", names=paths["structure_set"])


# --------------------------------------------------------------------------- missing or dangling objects


def test_structure_set_not_among_the_inputs(tmp_path):
    """Plan and dose given without the structure set: exit 2 naming the plan."""
    paths = compliant_case().write(tmp_path)
    assert_input_error(rtcheck("check", paths["plan"], paths["dose"], *CR_PR), "Structure Set", names=paths["plan"])


def test_plan_references_another_structure_set(tmp_path):
    """The plan's ReferencedStructureSetSequence points at a UID no input has: exit 2 naming the plan."""
    case = compliant_case()
    missing = generate_uid()
    case.plan.ReferencedStructureSetSequence[0].ReferencedSOPInstanceUID = missing
    paths = case.write(tmp_path)
    line = assert_input_error(rtcheck("check", tmp_path, *CR_PR), "Structure Set", names=paths["plan"])
    assert missing in line


def test_dose_referencing_an_absent_plan(tmp_path):
    """The only dose references a plan that is not there: exit 2 naming the plan and the dangling dose."""
    case = compliant_case()
    case.rt_dose.ReferencedRTPlanSequence[0].ReferencedSOPInstanceUID = generate_uid()
    paths = case.write(tmp_path)
    line = assert_input_error(rtcheck("check", tmp_path, *CR_PR), "no RT Dose", names=paths["plan"])
    assert str(paths["dose"]) in line


def test_no_dose_at_all(tmp_path):
    """Plan and structure set without any RT Dose: exit 2 naming the plan."""
    paths = compliant_case().write(tmp_path)
    paths["dose"].unlink()
    assert_input_error(rtcheck("check", tmp_path, *CR_PR), "no RT Dose", names=paths["plan"])
    assert_input_error(rtcheck("dvh", paths["structure_set"]), "no RT Dose")


# --------------------------------------------------------------------------- ROIs without a volume, or outside the dose grid


def _without_contours(name: str):
    def spoil(case: Case) -> None:
        del case.structure_set.ROIContourSequence[case.roi_number(name) - 1].ContourSequence

    return spoil


UNUSABLE_ROIS = {
    "heart-empty": (compliant_rois(), _without_contours("Heart"), "Heart", "no contours"),
    "heart-open-planar": (
        compliant_rois(Heart=RoiShape("Heart", centre_xy_mm=(25, 20), radius_mm=6, geometric_type="OPEN_PLANAR")),
        None, "Heart", "OPEN_PLANAR",
    ),
    "cord-point": (
        compliant_rois(SpinalCord=RoiShape("SpinalCord", centre_xy_mm=(0, -30), geometric_type="POINT")),
        None, "SpinalCord", "POINT",
    ),
    "ptv-empty": (compliant_rois(), _without_contours("PTV"), "PTV", "no contours"),
}


@pytest.mark.parametrize("rois, spoil, structure, reason", UNUSABLE_ROIS.values(), ids=UNUSABLE_ROIS.keys())
def test_roi_without_volume_is_not_evaluated(tmp_path, rois, spoil, structure, reason):
    """A required structure that is empty, OPEN_PLANAR or POINT only: its constraints are not
    evaluated with the reason and the verdict is not_evaluated (exit 1), never a pass."""
    case = Case(rois, dose=plateau_dose)
    if spoil:
        spoil(case)
    case.write(tmp_path)
    result, document = check_json(tmp_path)
    assert result.exit_code == 1
    assert document["verdict"] == "not_evaluated"
    affected = [c for c in document["checks"] if c["structure"] == structure and c["kind"] == "dvh"]
    assert affected
    for check in affected:
        assert check["status"] == "not_evaluated" and check["value"] is None
        assert reason in check["message"]
    # Everything else still passes: the verdict is due to this structure alone.
    # (the integrity checks of the spoiled structure's contours, and a structure derived from it such as
    # Body-PTV, are not evaluated for the same reason)
    others = [c for c in document["checks"] if c["counts"] and c not in affected and c["structure"] != structure
              and f"ROI {structure!r}" not in c["message"]]
    assert others and all(c["status"] == "per_protocol" for c in others)

    rows = dvh_json(tmp_path)  # listed with volume 0 and a note, not an error
    assert rows[structure]["volume_cc"] == 0
    assert rows[structure]["mean_gy"] is None
    assert any(reason in note for note in rows[structure]["notes"])


def test_structure_partly_outside_the_dose_grid_is_not_evaluated(tmp_path):
    """A Heart reaching 10 mm below the dose grid: its constraints are not evaluated, saying so."""
    # Contour planes z = -40..0 every 2 mm are slabs from -41 to 1 mm; the grid's centres start
    # at z = -30 so it covers z >= -31 mm: 10 of the 42 mm lie outside.
    heart = RoiShape("Heart", centre_xy_mm=(25, 20), radius_mm=6, z_range_mm=(-40, 0))
    Case(compliant_rois(Heart=heart), dose=plateau_dose).write(tmp_path)
    result, document = check_json(tmp_path)
    assert result.exit_code == 1 and document["verdict"] == "not_evaluated"
    heart_checks = [c for c in document["checks"] if c["structure"] == "Heart" and c["kind"] == "dvh"]
    assert heart_checks
    for check in heart_checks:
        assert check["status"] == "not_evaluated" and check["value"] is None
        assert "outside the dose grid" in check["message"]

    row = dvh_json(tmp_path)["Heart"]
    assert row["outside_dose_grid_pct"] == pytest.approx(100 * 10 / 42, abs=0.5)
    assert row["mean_gy"] == pytest.approx(2.0, abs=0.05)  # statistics of the part inside
    assert any("outside the dose grid" in note for note in row["notes"])


def test_structure_laterally_outside_the_dose_grid_is_not_evaluated(tmp_path):
    """A Heart crossing the grid's x edge (x = 41 mm) is not evaluated either."""
    heart = RoiShape("Heart", centre_xy_mm=(35, 20), radius_mm=8)
    Case(compliant_rois(Heart=heart), dose=plateau_dose).write(tmp_path)
    _, document = check_json(tmp_path)
    assert document["verdict"] == "not_evaluated"
    for check in (c for c in document["checks"] if c["structure"] == "Heart" and c["kind"] == "dvh"):
        assert check["status"] == "not_evaluated" and "outside the dose grid" in check["message"]


def test_structure_entirely_outside_the_dose_grid_has_no_dose_statistics(tmp_path):
    """A structure wholly outside the grid received no known dose: its statistics are null, not 0 Gy."""
    heart = RoiShape("Heart", centre_xy_mm=(25, 20), radius_mm=6, z_range_mm=(40, 50))
    Case(compliant_rois(Heart=heart), dose=plateau_dose).write(tmp_path)
    row = dvh_json(tmp_path)["Heart"]
    assert row["outside_dose_grid_pct"] == pytest.approx(100.0)
    assert (row["min_gy"], row["mean_gy"], row["max_gy"]) == (None, None, None)


# --------------------------------------------------------------------------- protocol and metric errors


def test_unknown_protocol_lists_the_known_ids():
    """--protocol with an unknown id: exit 2 listing the protocols there are."""
    result = rtcheck("check", SAMPLES / "cr-pr-compliant", "--protocol", "no-such-trial", "--arm", "cr-pr")
    line = assert_input_error(result, "no-such-trial")
    assert "escc-induction-icrt-ccrt" in line


def test_unknown_arm_lists_the_arms(tmp_path):
    """--arm that the protocol does not have: exit 2 listing its arms, before any file is read."""
    result = rtcheck("check", tmp_path / "does-not-exist", "--protocol", "escc-induction-icrt-ccrt", "--arm", "cr")
    line = assert_input_error(result, "'cr'")
    assert "cr-pr, sd-pd" in line


def _constraint_entry(data: dict, constraint_id: str) -> str:
    """Where a constraint sits in the protocol document, e.g. constraint_sets.organs-at-risk[6] (cord-max)."""
    for set_name, items in data["constraint_sets"].items():
        for index, item in enumerate(items):
            if item["id"] == constraint_id:
                return f"constraint_sets.{set_name}[{index}] ({constraint_id})"
    raise AssertionError(constraint_id)


def test_malformed_protocol_file_is_refused_naming_file_and_entry(tmp_path):
    """--protocol path.yaml with a threshold in the wrong unit: exit 2 naming the file and the entry."""
    data = yaml.safe_load(PROTOCOL_FILE.read_text(encoding="utf-8"))
    entry = _constraint_entry(data, "cord-max")
    for items in data["constraint_sets"].values():
        for item in items:
            if item["id"] == "cord-max":
                item["per_protocol"] = "<= 45 %"  # the metric D0.03cc[Gy] is in Gy
    broken = tmp_path / "broken.yaml"
    broken.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    result = rtcheck("check", SAMPLES / "cr-pr-compliant", "--protocol", broken, "--arm", "cr-pr")
    assert_input_error(result, f"{entry}.per_protocol", "unit", names=broken)


def test_protocol_file_with_invalid_yaml_is_located(tmp_path):
    """A protocol file that is not YAML: exit 2 naming the file with line and column."""
    broken = tmp_path / "broken.yaml"
    broken.write_text("schema: rtcheck.protocol/1\nid: [unclosed\n", encoding="utf-8")
    result = rtcheck("check", SAMPLES / "cr-pr-compliant", "--protocol", broken, "--arm", "cr-pr")
    assert_input_error(result, "line", "YAML", names=broken)


def test_invalid_metric_points_at_the_character(tmp_path):
    """--metric 'D95[Gy]' lacks the volume unit: exit 2 before any file is read, pointing at character 4."""
    metric = "D95[Gy]"
    result = rtcheck("dvh", tmp_path / "never-read", "--metric", metric)
    assert result.exit_code == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert lines[0].startswith(f"rtcheck: error: invalid metric {metric!r}")
    assert "character 4" in lines[0]
    assert "never-read" not in result.stderr
    assert len(lines) == 1 and "after 'D95'" in lines[0]


# --------------------------------------------------------------------------- inputs are read-only


def _snapshot(folder: Path) -> dict[str, tuple[str, int, int]]:
    """sha256, size and mtime of the folder itself and of everything in it."""
    entries = {".": ("folder", 0, folder.stat().st_mtime_ns)}
    for path in sorted(folder.rglob("*")):
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "folder"
        entries[str(path.relative_to(folder))] = (digest, path.stat().st_size, path.stat().st_mtime_ns)
    return entries


def test_inputs_are_never_modified(tmp_path, monkeypatch):
    """check and dvh leave every input byte, size and mtime as they were, and write nothing beside them
    nor in the working directory."""
    plan = tmp_path / "plan"
    shutil.copytree(SAMPLES / "cr-pr-compliant", plan)
    (plan / "notes.txt").write_text("patient notes, not DICOM\n", encoding="utf-8")
    before = _snapshot(plan)
    assert sorted(before) == [".", "RD.dcm", "RP.dcm", "RS.dcm", "notes.txt"]

    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    for args in (
        ["check", plan, *CR_PR],
        ["check", plan, *CR_PR, "--format", "json"],
        ["check", *(plan / n for n in ("RP.dcm", "RS.dcm", "RD.dcm")), *CR_PR],
        ["dvh", plan, "--metric", "D95%[Gy]", "--metric", "V20Gy[%]", "--format", "csv"],
        ["dvh", plan, "--format", "json"],
    ):
        result = rtcheck(*args)
        assert result.exit_code == 0, (args, result.stderr)
    assert list(cwd.iterdir()) == []
    assert _snapshot(plan) == before


# --------------------------------------------------------------------------- FRACTION and BEAM doses


def test_fraction_dose_is_the_whole_delivery_of_its_fraction_group(tmp_path):
    """PS3.3 C.8.8.3: FRACTION is the dose of a whole fraction group (Pinnacle writes its plan dose so), not one
    session: the same dose labelled FRACTION or PLAN gives the same DVH; FRACTION_SESSION is 28 x it."""

    def course(x, y, z):
        return 50.0 + 0.3 * x + 0.1 * z

    rois = [RoiShape("PTV", centre_xy_mm=(4, -2), radius_mm=10, z_range_mm=(-10, 14))]
    for label in ("PLAN", "FRACTION", "FRACTION_SESSION"):
        case = Case(rois, dose=course)
        case.rt_dose.DoseSummationType = label
        case.write(tmp_path / label)
    plan, fraction, session = (dvh_json(tmp_path / label)["PTV"] for label in ("PLAN", "FRACTION", "FRACTION_SESSION"))
    assert plan["mean_gy"] == pytest.approx(50.0 + 0.3 * 4 + 0.1 * 2, abs=0.01)  # the centroid's dose
    for key in ("mean_gy", "max_gy", "min_gy"):
        assert fraction[key] == plan[key]
        assert session[key] == pytest.approx(28 * plan[key], rel=1e-6)
    assert "FRACTION_SESSION (one session) x 28 fractions" in rtcheck("dvh", tmp_path / "FRACTION_SESSION").stderr


def test_session_dose_without_its_plan_is_refused(tmp_path):
    """Without the RT Plan a FRACTION_SESSION dose cannot be made a course: exit 2 naming it. A FRACTION dose is
    a course already: read, with a note that other fraction groups cannot be known."""
    case = compliant_case()
    case.rt_dose.DoseSummationType = "FRACTION_SESSION"
    paths = case.write(tmp_path)
    assert_input_error(rtcheck("dvh", paths["structure_set"], paths["dose"]), "FRACTION_SESSION", names=paths["dose"])
    case.rt_dose.DoseSummationType = "FRACTION"
    case.write(tmp_path)
    result = rtcheck("dvh", paths["structure_set"], paths["dose"])
    assert result.exit_code == 0, result.stderr
    assert "cannot tell whether the plan has other fraction groups" in result.stderr


@pytest.mark.parametrize("summation", ["CONTROL_POINT", "RECORD", "SOMETHING"])
def test_control_point_record_and_unknown_summation_types_are_refused(tmp_path, summation):
    case = compliant_case()
    case.rt_dose.DoseSummationType = summation
    paths = case.write(tmp_path)
    assert_input_error(rtcheck("check", tmp_path, *CR_PR), "DoseSummationType", summation, names=paths["dose"])


def _two_beam_case(second_dose, *, reference_beams: bool = True, shift_mm: float = 0.0):
    """A two-beam plan with one BEAM dose per beam: 30 Gy uniform, and ``second_dose``."""
    rois = [RoiShape("PTV", radius_mm=10, z_range_mm=(-10, 10))]
    case = Case(rois, dose=lambda x, y, z: np.full_like(x, 30.0))
    second = Case(rois, dose=second_dose, frame_uid=case.frame_uid)
    beam = Dataset()
    beam.BeamNumber = 2
    beam.BeamName = "PA"
    beam.BeamType = "STATIC"
    beam.RadiationType = "PHOTON"
    case.plan.BeamSequence.append(beam)
    group = case.plan.FractionGroupSequence[0]
    group.NumberOfBeams = 2
    ref = Dataset()
    ref.ReferencedBeamNumber = 2
    ref.BeamDose = 0.9
    group.ReferencedBeamSequence[0].BeamDose = 0.9
    group.ReferencedBeamSequence.append(ref)

    doses = [case.rt_dose, second.rt_dose]
    second.rt_dose.ReferencedRTPlanSequence[0].ReferencedSOPInstanceUID = case.plan.SOPInstanceUID
    for number, ds in enumerate(doses, start=1):
        ds.DoseSummationType = "BEAM"
        if reference_beams:
            beam_ref = Dataset()
            beam_ref.ReferencedBeamNumber = number
            fraction_group = Dataset()
            fraction_group.ReferencedFractionGroupNumber = 1
            fraction_group.ReferencedBeamSequence = Sequence([beam_ref])
            ds.ReferencedRTPlanSequence[0].ReferencedFractionGroupSequence = Sequence([fraction_group])
    if shift_mm:
        x, y, z = second.rt_dose.ImagePositionPatient
        second.rt_dose.ImagePositionPatient = [float(x) + shift_mm, float(y), float(z)]
    return case, second.rt_dose


@pytest.mark.parametrize("reference_beams", [True, False], ids=["beams-referenced", "beams-counted"])
def test_beam_doses_on_one_grid_are_summed(tmp_path, reference_beams):
    """Two BEAM doses of one plan on one grid are summed: 30 Gy + (10 Gy + 0.1 Gy/mm x) over a centred PTV."""
    case, second = _two_beam_case(lambda x, y, z: 10.0 + 0.1 * x, reference_beams=reference_beams)
    paths = case.write(tmp_path)
    save(second, tmp_path / "RD_beam2.dcm")
    row = dvh_json(tmp_path)["PTV"]
    assert row["mean_gy"] == pytest.approx(40.0, abs=0.02)
    assert row["max_gy"] == pytest.approx(41.0, abs=0.1)  # x reaches +10 mm
    assert row["min_gy"] == pytest.approx(39.0, abs=0.1)
    result = rtcheck("dvh", tmp_path)
    assert "summed 2 BEAM doses" in result.stderr
    # One BEAM dose alone is not the plan's dose.
    assert_input_error(rtcheck("dvh", *paths.values()), "BEAM")


def test_beam_doses_on_different_grids_are_refused(tmp_path):
    """BEAM doses on grids 2 mm apart cannot be summed voxel by voxel: exit 2 naming the odd one."""
    case, second = _two_beam_case(lambda x, y, z: np.full_like(x, 10.0), shift_mm=2.0)
    case.write(tmp_path)
    odd = save(second, tmp_path / "RD_beam2.dcm")
    assert_input_error(rtcheck("dvh", tmp_path), "grid", names=odd)
    assert_input_error(rtcheck("check", tmp_path, *CR_PR), "grid", names=odd)


def test_one_absurd_dose_voxel_does_not_exhaust_memory(tmp_path):
    """A single corrupt voxel (2^32 - 1 x DoseGridScaling, ~3e6 Gy) in a corner far from the PTV: the DVH of
    the PTV still works, or the dose is refused with exit 2 naming RD.dcm; never an internal error.
    Run in a process limited to 3 GiB of address space so a failure cannot take the test run down."""
    resource = pytest.importorskip("resource")
    case = Case([RoiShape("PTV", radius_mm=10)], dose=lambda x, y, z: np.full_like(x, 50.0))
    pixels = np.frombuffer(case.rt_dose.PixelData, dtype="<u4").copy()
    pixels[0] = 0xFFFFFFFF  # x = y = -40 mm, z = -30 mm
    case.rt_dose.PixelData = pixels.tobytes()
    paths = case.write(tmp_path)

    def limit_memory():
        resource.setrlimit(resource.RLIMIT_AS, (3 * 2**30, 3 * 2**30))

    proc = subprocess.run(
        [sys.executable, "-m", "rtcheck.cli", "dvh", tmp_path, "--format", "json"],
        capture_output=True, text=True, timeout=120, preexec_fn=limit_memory,
    )
    assert proc.returncode in (0, 2), proc.stderr
    if proc.returncode == 0:
        [row] = json.loads(proc.stdout)["structures"]
        assert row["mean_gy"] == pytest.approx(50.0, abs=0.01)
        assert row["max_gy"] == pytest.approx(50.0, abs=0.01)
    else:
        assert proc.stderr.startswith(f"rtcheck: error: {paths['dose']}: ")


# --------------------------------------------------------------------------- several plans


def test_several_plans_in_one_folder(tmp_path):
    """Each plan of a folder is checked (a JSON array); --plan LABEL picks one; an unknown label lists the plans."""
    for label in ("PLAN_A", "PLAN_B"):
        case = Case(compliant_rois(), dose=plateau_dose, plan_label=label)
        for prefix, ds in (("RP", case.plan), ("RS", case.structure_set), ("RD", case.rt_dose)):
            save(ds, tmp_path / f"{prefix}_{label}.dcm")

    result, documents = check_json(tmp_path)
    assert isinstance(documents, list)
    assert sorted(d["plan"]["label"] for d in documents) == ["PLAN_A", "PLAN_B"]
    assert all(d["verdict"] == "per_protocol" for d in documents)
    # Each plan is linked to its own files.
    for d in documents:
        label = d["plan"]["label"]
        assert sorted(Path(p).name for p in d["inputs"]) == sorted(f"{k}_{label}.dcm" for k in ("RD", "RP", "RS"))

    _, document = check_json(tmp_path, "--plan", "PLAN_B")
    assert isinstance(document, dict) and document["plan"]["label"] == "PLAN_B"

    line = assert_input_error(rtcheck("check", tmp_path, *CR_PR, "--plan", "NOPE"), "NOPE")
    assert "PLAN_A" in line and "PLAN_B" in line
    # dvh needs one plan: it asks for --plan, and takes it.
    assert_input_error(rtcheck("dvh", tmp_path), "--plan")
    assert rtcheck("dvh", tmp_path, "--plan", "PLAN_A").exit_code == 0


# --------------------------------------------------------------------------- real processes


def _assert_one_error_line(proc: subprocess.CompletedProcess, words: str) -> None:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("rtcheck: error: ") and words in lines[0]


def test_real_process_input_errors_are_one_line(tmp_path):
    """In real processes: exit 2, stderr exactly one 'rtcheck: error:' line, no traceback, nothing on stdout."""
    paths = compliant_case().write(tmp_path)
    _assert_one_error_line(run_process("check", get_testdata_file("rtplan_truncated.dcm"), *CR_PR), "truncated")
    _assert_one_error_line(run_process("check", paths["plan"], paths["dose"], *CR_PR), "Structure Set")
    _assert_one_error_line(run_process("check", tmp_path, "--protocol", "escc-induction-icrt-ccrt", "--arm", "cr"), "cr-pr, sd-pd")


@pytest.mark.parametrize(
    "inputs, words",
    [
        pytest.param(["{notes}"], "not a DICOM file", id="text-file"),
        pytest.param([get_testdata_file("rtdose.dcm"), get_testdata_file("rtstruct.dcm")], "RELATIVE", id="pydicom-relative-dose"),
    ],
)
def test_real_process_error_is_one_line_even_when_pydicom_warns(tmp_path, inputs, words):
    """Files that make pydicom warn while reading still give exactly one stderr line."""
    notes = tmp_path / "README.md"
    notes.write_text("# README\nnot DICOM\n", encoding="utf-8")  # pydicom's forced read warns on these bytes
    _assert_one_error_line(run_process("dvh", *(notes if a == "{notes}" else a for a in inputs)), words)
