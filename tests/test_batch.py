"""rtcheck batch: plan sets found by UID references, checked in parallel, one summary row each."""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
from pathlib import Path

import pydicom
import pytest
from pydicom.uid import generate_uid

from cli_helpers import rtcheck
from rtcheck.batch.discovery import discover
from test_sample_plans import promised_verdicts

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "sample_plans"
PROTOCOL = "escc-induction-icrt-ccrt"
# The sample sets of this protocol (sample_plans/ may hold sets of other protocols too).
ESCC_SETS = (
    "cr-pr-compliant", "sd-pd-compliant", "cr-pr-wrong-fractions", "cr-pr-lung-v20-high", "sd-pd-pgtv-undercovered", "cr-pr-no-cord",
)


def expected_verdicts() -> dict[str, str]:
    """Folder -> verdict promised by sample_plans/README.md, for the ESCC sets."""
    promised = promised_verdicts()
    return {folder: promised[folder] for folder in ESCC_SETS}


def fingerprint(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


def plan_uid(path: Path) -> str:
    return str(pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID)


def copy_as_new_patient(source: Path, target: Path, tag: str, patient_id: str, files=("RP.dcm", "RS.dcm", "RD.dcm")) -> None:
    """Copy a sample set with fresh UIDs (and references to them) and another patient ID: a distinct plan set."""
    target.mkdir(parents=True, exist_ok=True)
    datasets = {name: pydicom.dcmread(source / name) for name in ("RP.dcm", "RS.dcm", "RD.dcm")}
    new = {str(ds.SOPInstanceUID): generate_uid(entropy_srcs=[tag, str(ds.SOPInstanceUID)]) for ds in datasets.values()}
    for name in files:
        ds = datasets[name]
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = new[str(ds.SOPInstanceUID)]
        ds.PatientID = patient_id
        for seq in ("ReferencedStructureSetSequence", "ReferencedRTPlanSequence"):
            for item in ds.get(seq, []):
                item.ReferencedSOPInstanceUID = new[str(item.ReferencedSOPInstanceUID)]
        ds.save_as(target / name, enforce_file_format=True)


def read_summary(out: Path) -> tuple[list[dict], dict]:
    with open(out / "summary.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return rows, json.loads((out / "summary.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def export(tmp_path_factory) -> Path:
    """A copy of the ESCC sample sets plus two broken sets: a truncated RT Dose, and a plan whose structure set is missing."""
    root = tmp_path_factory.mktemp("export") / "in"
    for folder in ESCC_SETS:
        shutil.copytree(SAMPLES / folder, root / folder)
    shutil.copy(SAMPLES / "README.md", root)  # not DICOM: skipped with a warning
    copy_as_new_patient(SAMPLES / "cr-pr-compliant", root / "broken-dose", "truncated", "BROKEN-RD")
    dose = root / "broken-dose" / "RD.dcm"
    dose.write_bytes(dose.read_bytes()[: dose.stat().st_size * 2 // 3])
    copy_as_new_patient(SAMPLES / "cr-pr-compliant", root / "no-structure-set", "no-rs", "BROKEN-RS", files=("RP.dcm", "RD.dcm"))
    return root


def test_batch_over_the_samples_and_broken_sets(export, tmp_path):
    before = fingerprint(export)
    out = tmp_path / "reports"
    result = rtcheck("batch", export, "--protocol", PROTOCOL, "--arm", "auto", "--out", out, "--jobs", "2")
    assert result.exit_code == 2, result.output  # some sets could not be checked
    assert fingerprint(export) == before  # inputs untouched
    rows, document = read_summary(out)
    by_uid = {row["plan_uid"]: row for row in rows}
    folders = {p.parent.name: plan_uid(p) for p in export.rglob("RP.dcm")}
    assert len(rows) == len(folders) == 8 and by_uid.keys() == set(folders.values())

    for folder, verdict in expected_verdicts().items():
        row = by_uid[folders[folder]]
        if folder == "cr-pr-wrong-fractions":  # 50 Gy / 25 fx matches no arm: auto cannot choose one
            assert row["verdict"] == "error" and "matches no arm" in row["error"] and row["report_json"] == ""
            continue
        assert (row["verdict"], row["error"], row["arm"]) == (verdict, "", "sd-pd" if folder.startswith("sd-pd") else "cr-pr")
        report = json.loads((out / row["report_json"]).read_text(encoding="utf-8"))
        assert report["verdict"] == verdict and report["plan"]["sop_instance_uid"] == row["plan_uid"]
        assert report["plan"]["patient_id"] == row["patient_id"] and Path(row["report_json"]).parts[0] == row["patient_id"]
        required = [c["status"] for c in report["checks"] if c["counts"]]
        assert int(row["deviations"]) == required.count("deviation_unacceptable")
        assert int(row["not_evaluated"]) == required.count("not_evaluated")

    truncated = by_uid[folders["broken-dose"]]
    assert truncated["verdict"] == "error" and "broken-dose/RD.dcm" in truncated["error"] and "truncated" in truncated["error"]
    assert truncated["patient_id"] == "BROKEN-RD" and truncated["report_json"] == ""
    missing = by_uid[folders["no-structure-set"]]
    assert missing["verdict"] == "error" and "RT Structure Set" in missing["error"] and "not among the inputs" in missing["error"]

    assert [r["plan_uid"] for r in document["plans"]] == [r["plan_uid"] for r in rows]
    assert document["counts"] == {
        v: sum(r["verdict"] == v for r in rows) for v in ("per_protocol", "variation_acceptable", "not_evaluated", "deviation_unacceptable", "error")
    }
    assert [Path(s.split(":")[0]).name for s in document["skipped"]] == ["README.md"]
    assert "8 plan set(s)" in result.stdout and "3 error" in result.stdout
    assert "broken-dose/RD.dcm" in result.stderr
    assert "checking" not in result.stderr  # no progress bar when stderr is not a terminal


def test_jobs_1_and_2_give_identical_summaries_and_reports(tmp_path):
    root = tmp_path / "in"
    cr_pr = {f: v for f, v in expected_verdicts().items() if f.startswith("cr-pr")}
    for folder in cr_pr:
        shutil.copytree(SAMPLES / folder, root / folder)
    outputs = []
    for jobs in ("1", "2"):
        out = tmp_path / f"out-{jobs}"
        result = rtcheck("batch", root, "--protocol", PROTOCOL, "--arm", "cr-pr", "--out", out, "--jobs", jobs)
        assert result.exit_code == 1, result.output  # worst verdict: deviations, no errors
        outputs.append(out)
    assert fingerprint(outputs[0]) == fingerprint(outputs[1])  # summaries and every report, byte for byte
    rows, _ = read_summary(outputs[0])
    assert {row["plan_file"].split("/")[-2]: row["verdict"] for row in rows} == cr_pr


def test_plan_sets_follow_uid_references_not_folders(tmp_path):
    root = tmp_path / "in"
    # Two sets' files mixed in one folder under names that say nothing; the second set's structure set
    # and dose sit in another folder; its patient ID is no safe file name.
    hostile = "../../x/.. y"
    copy_as_new_patient(SAMPLES / "cr-pr-no-cord", root / "mixed", "split", hostile, files=("RP.dcm",))
    copy_as_new_patient(SAMPLES / "cr-pr-no-cord", root / "other" / "deeper", "split", hostile, files=("RS.dcm", "RD.dcm"))
    for n, path in enumerate(sorted((SAMPLES / "cr-pr-compliant").glob("*.dcm"))):
        shutil.copy(path, root / "mixed" / f"{n}.dcm")
    before = fingerprint(root)
    out = tmp_path / "out"
    result = rtcheck("batch", root, "--protocol", PROTOCOL, "--arm", "auto", "--out", out, "--jobs", "2", "--html")
    assert result.exit_code == 1, result.output  # cr-pr-no-cord is not evaluated
    assert fingerprint(root) == before
    rows, _ = read_summary(out)
    verdicts = expected_verdicts()
    by_patient = {row["patient_id"]: row for row in rows}
    assert {p: r["verdict"] for p, r in by_patient.items()} == {
        "RTCHECK-001": verdicts["cr-pr-compliant"], hostile: verdicts["cr-pr-no-cord"]
    }
    inputs = {p: json.loads((out / r["report_json"]).read_text(encoding="utf-8"))["inputs"] for p, r in by_patient.items()}
    assert sorted(Path(p).parent.name for p in inputs[hostile]) == ["deeper", "deeper", "mixed"]
    assert sorted(Path(p).name for p in inputs["RTCHECK-001"]) == ["0.dcm", "1.dcm", "2.dcm"]
    for row in rows:
        assert row["error"] == ""
        for key in ("report_json", "report_html"):
            written = (out / row[key]).resolve()
            assert written.is_file() and written.is_relative_to(out.resolve()), row[key]
        assert ".." not in Path(row["report_json"]).parts and " " not in row["report_json"]
        assert row["plan_label"] in (out / row["report_html"]).read_text(encoding="utf-8")


def test_discovery_reports_what_belongs_to_no_plan(tmp_path):
    root = tmp_path / "in"
    copy_as_new_patient(SAMPLES / "cr-pr-compliant", root / "dose-only", "dose-only", "P1", files=("RD.dcm",))
    copy_as_new_patient(SAMPLES / "cr-pr-compliant", root / "contours-only", "contours-only", "P2", files=("RS.dcm",))
    (root / "notes.txt").write_text("not DICOM")
    plan = (SAMPLES / "sd-pd-compliant" / "RP.dcm").read_bytes()
    uid_at = plan.index(b"\x08\x00\x18\x00UI") + 8  # explicit VR little endian: tag, VR, 2-byte length
    (root / "damaged.dcm").write_bytes(plan[: uid_at + 20])  # cut inside the plan's SOP Instance UID
    shutil.copy(SAMPLES / "cr-pr-no-cord" / "RP.dcm", root / "copy1.dcm")
    shutil.copy(SAMPLES / "cr-pr-no-cord" / "RP.dcm", root / "copy2.dcm")

    found = discover([root])
    errors = {Path(s.files[0]).name: s.error for s in found.sets if s.error}
    assert "RT Dose references RT Plan" in errors["RD.dcm"] and "not among the inputs" in errors["RD.dcm"]
    assert "damaged.dcm" in errors and "(0008,0018)" in errors["damaged.dcm"] and "truncated" in errors["damaged.dcm"]
    [copies] = [s for s in found.sets if not s.error]
    assert copies.plan_uid == plan_uid(SAMPLES / "cr-pr-no-cord" / "RP.dcm") and "2 identical files" in copies.notes[0]
    assert [Path(n.split(":")[0]).parent.name for n in found.unassigned] == ["contours-only"]
    assert [Path(s.split(":")[0]).name for s in found.skipped] == ["notes.txt"]

    # Two different files claiming one plan UID: which one to check cannot be guessed.
    other = pydicom.dcmread(root / "copy2.dcm")
    other.RTPlanLabel = "CHANGED"
    other.save_as(root / "copy2.dcm")
    [conflict] = [s for s in discover([root]).sets if s.plan_uid == copies.plan_uid]
    assert "several files that differ" in conflict.error


def test_output_folder_inside_the_inputs_is_refused(export):
    before = fingerprint(export)
    result = rtcheck("batch", export, "--protocol", PROTOCOL, "--arm", "auto", "--out", export / "reports")
    assert result.exit_code == 2 and "overlaps the input folder" in result.stderr
    assert fingerprint(export) == before and not (export / "reports").exists()


def test_no_plan_found_is_an_error(tmp_path):
    (tmp_path / "empty").mkdir()
    result = rtcheck("batch", tmp_path / "empty", "--protocol", PROTOCOL, "--arm", "cr-pr", "--out", tmp_path / "out")
    assert result.exit_code == 2 and "no RT Plan or RT Dose found" in result.stderr


def test_unknown_arm_fails_before_anything_is_written(tmp_path):
    result = rtcheck("batch", SAMPLES, "--protocol", PROTOCOL, "--arm", "nope", "--out", tmp_path / "out")
    assert result.exit_code == 2 and "valid arms" in result.stderr
    assert not (tmp_path / "out").exists()


def test_progress_bar_on_a_terminal(tmp_path):
    import os
    import pty
    import subprocess
    import sys

    primary, secondary = pty.openpty()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "rtcheck.cli", "batch", SAMPLES / "cr-pr-compliant", "--protocol", PROTOCOL,
             "--arm", "cr-pr", "--out", tmp_path / "out", "--jobs", "1"],
            stdout=subprocess.PIPE, stderr=secondary, timeout=120,
        )
        os.close(secondary)
        seen = b""
        while True:
            try:
                chunk = os.read(primary, 4096)
            except OSError:  # the terminal closed: everything is read
                break
            if not chunk:
                break
            seen += chunk
    finally:
        os.close(primary)
    assert done.returncode == 0 and b"1 plan set(s): 1 per_protocol" in done.stdout
    assert b"checking" in seen and b"1/1" in seen


def test_dask_scheduler_without_dask_installed_says_which_extra(monkeypatch, tmp_path):
    import sys

    monkeypatch.setitem(sys.modules, "distributed", None)  # what an install without the extra sees: ImportError
    result = rtcheck("batch", SAMPLES / "cr-pr-compliant", "--protocol", PROTOCOL, "--arm", "cr-pr",
                     "--out", tmp_path / "out", "--dask-scheduler", "tcp://127.0.0.1:8786")
    assert result.exit_code == 2 and "rtcheck[dask]" in result.stderr
    assert not list((tmp_path / "out").glob("**/*.json"))


def test_a_patient_id_named_like_the_summary_does_not_take_its_place(tmp_path):
    root = tmp_path / "in"
    copy_as_new_patient(SAMPLES / "cr-pr-compliant", root / "a", "summary-name", "summary.csv")
    out = tmp_path / "out"
    result = rtcheck("batch", root, "--protocol", PROTOCOL, "--arm", "cr-pr", "--out", out, "--jobs", "1")
    assert result.exit_code == 0, result.stderr
    assert (out / "summary.csv").is_file() and (out / "summary.json").is_file()
    [row] = json.loads((out / "summary.json").read_text())["plans"]
    assert row["patient_id"] == "summary.csv" and row["verdict"] == "per_protocol"
    report = out / row["report_json"]
    assert report.is_file() and report.parent.name.startswith("summary.csv-")


def test_map_to_an_unknown_structure_is_the_same_usage_error_as_in_check(tmp_path):
    args = ["--protocol", PROTOCOL, "--arm", "cr-pr", "--map", "Heartt=Heart"]
    batch = rtcheck("batch", SAMPLES / "cr-pr-compliant", *args, "--out", tmp_path / "out")
    check = rtcheck("check", SAMPLES / "cr-pr-compliant", *args)
    assert batch.exit_code == check.exit_code == 2
    assert batch.stderr == check.stderr and "'Heartt'" in batch.stderr
    assert not (tmp_path / "out").exists()


def test_fail_on_variation_applies_to_the_batch_as_to_check(tmp_path):
    # Against the adebrelimab RT cohort, whose PTV dose the site sets, the sample is a variation at best.
    args = [SAMPLES / "cr-pr-compliant", "--protocol", "escc-adebrelimab-apatinib-2l", "--arm", "rt-cohort"]
    for fail_on, code in (("deviation", 0), ("variation", 1)):
        out = tmp_path / fail_on
        result = rtcheck("batch", *args, "--out", out, "--fail-on", fail_on)
        assert result.exit_code == code, result.stderr
        assert rtcheck("check", *args, "--fail-on", fail_on).exit_code == code
        [row] = json.loads((out / "summary.json").read_text())["plans"]
        assert row["verdict"] == "variation_acceptable"
