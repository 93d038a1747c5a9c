"""Inputs are walked safely, in one place (rtcheck.dicom.walk), by check, dvh and batch (issue 12, item 3).

Before: a symlink loop crashed check, dvh and batch; a FIFO or a link to /dev/zero hung check and batch;
batch passed over an unreadable folder without a word and reported "per_protocol", exit 0.
"""

import errno
import json
import os
import shutil
from pathlib import Path

import pydicom
import pytest

from rtcheck.dicom import walk as walk_module
from rtcheck.dicom.walk import walk_inputs
from tests.cli_helpers import rtcheck, run_process

SAMPLES = Path(__file__).resolve().parents[1] / "sample_plans"
PROTOCOL = ("--protocol", "escc-induction-icrt-ccrt", "--arm", "cr-pr")


def _inputs(tmp_path) -> Path:
    folder = tmp_path / "inputs" / "plan"
    shutil.copytree(SAMPLES / "cr-pr-compliant", folder)
    return folder.parent


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file() and not p.is_symlink()}


@pytest.fixture
def special_inputs(tmp_path):
    """The plan beside a FIFO, a link to /dev/zero, a link loop between folders and a self-referring link."""
    root = _inputs(tmp_path)
    os.mkfifo(root / "a-fifo")
    os.symlink("/dev/zero", root / "zeros")
    os.symlink("..", root / "plan" / "up")  # a folder loop: inputs/plan/up -> inputs
    os.symlink("self", root / "self")  # a file link loop
    os.symlink(root / "plan", root / "plan-again")  # the same files reached twice
    return root


def test_the_walk_lists_regular_files_once_and_notes_the_rest(special_inputs):
    found = walk_inputs([special_inputs])
    assert sorted(f.path.name for f in found.files) == ["RD.dcm", "RP.dcm", "RS.dcm"]
    notes = "\n".join(found.notes)
    assert "a-fifo: skipped, a FIFO" in notes and "zeros: skipped, a device" in notes
    assert "self: skipped, a loop of symbolic links" in notes
    assert found.unreadable == []


@pytest.mark.parametrize("command", ["check", "dvh"])
def test_check_and_dvh_pass_over_special_files_with_a_warning(special_inputs, command):
    before = _snapshot(special_inputs)
    args = [command, special_inputs, *(PROTOCOL if command == "check" else ()), "--format", "json"]
    result = run_process(*args)  # a real process, with its 120 s limit: a hang fails the test
    assert result.returncode == 0, result.stderr
    assert "a-fifo: skipped, a FIFO" in result.stderr and "Traceback" not in result.stderr
    assert _snapshot(special_inputs) == before


def test_batch_passes_over_special_files_with_a_warning(special_inputs, tmp_path):
    result = run_process("batch", special_inputs, *PROTOCOL, "--out", tmp_path / "out", "--jobs", "1")
    assert result.returncode == 0, result.stderr
    assert "a-fifo: skipped, a FIFO" in result.stderr and "1 plan set(s): 1 per_protocol" in result.stdout


def test_a_special_file_named_itself_is_refused_in_one_line(tmp_path):
    os.mkfifo(tmp_path / "fifo")
    result = rtcheck("check", tmp_path / "fifo", *PROTOCOL)
    assert result.exit_code == 2 and result.stderr.strip().splitlines() == [f"rtcheck: error: {tmp_path / 'fifo'}: is a FIFO; only regular files and folders are read"]


def _refuse_listing(monkeypatch, refused: Path):
    real = os.scandir

    def scandir(path):
        if Path(path) == refused:
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(walk_module.os, "scandir", scandir)


def _unreadable_folder_inputs(tmp_path):
    """The compliant plan, and beside it a folder the system refuses to list holding a deviating plan."""
    root = _inputs(tmp_path)
    shutil.copytree(SAMPLES / "cr-pr-wrong-fractions", root / "locked")
    return root, root / "locked"


def test_check_warns_of_an_unreadable_folder(tmp_path, monkeypatch):
    root, locked = _unreadable_folder_inputs(tmp_path)
    _refuse_listing(monkeypatch, locked)
    result = rtcheck("check", root, *PROTOCOL, "--format", "json")
    assert f"{locked}: skipped, folder cannot be read (Permission denied)" in result.stderr


def test_batch_reports_an_unreadable_folder_as_an_error_row_and_exits_2(tmp_path, monkeypatch):
    """Before: "1 plan set: per_protocol", exit 0, though a deviating plan was never read."""
    root, locked = _unreadable_folder_inputs(tmp_path)
    _refuse_listing(monkeypatch, locked)
    out = tmp_path / "out"
    result = rtcheck("batch", root, *PROTOCOL, "--out", out, "--jobs", "1")
    assert result.exit_code == 2, result.output
    rows = json.loads((out / "summary.json").read_text())
    rows = rows["plans"]
    assert any(str(locked) in json.dumps(row) and "folder cannot be read" in json.dumps(row) for row in rows)


def test_batch_reports_an_unreadable_file_as_an_error_row(tmp_path, monkeypatch):
    root = _inputs(tmp_path)
    refused = root / "plan" / "RD.dcm"
    real_open = open

    def guarded_open(file, *args, **kwargs):
        if str(file) == str(refused):
            raise PermissionError(errno.EACCES, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr("builtins.open", guarded_open)
    out = tmp_path / "out"
    result = rtcheck("batch", root, *PROTOCOL, "--out", out, "--jobs", "1")
    assert result.exit_code == 2, result.output
    assert f"{refused}: cannot be read (Permission denied)" in result.stderr


def test_check_refuses_two_different_files_with_one_sop_instance_uid(tmp_path):
    root = _inputs(tmp_path)
    other = root / "copy"
    other.mkdir()
    ds = pydicom.dcmread(root / "plan" / "RS.dcm")
    ds.StructureSetLabel = "EDITED"
    ds.save_as(other / "RS.dcm")
    for command in (("check", root, *PROTOCOL), ("dvh", root)):
        result = rtcheck(*command)
        assert result.exit_code == 2, result.output
        [line] = result.stderr.strip().splitlines()
        assert "several files that differ" in line or "several RT Structure Sets" in line
        assert str(other / "RS.dcm") in line


def test_a_library_warning_becomes_one_line_of_rtcheck(tmp_path, monkeypatch):
    import warnings

    from rtcheck import api

    real = api.check_paths

    def warning_check(*args, **kwargs):
        warnings.warn("Invalid value for VR DS: 'NaN'.\nPlease see <https://dicom.nema.org>", UserWarning, stacklevel=1)
        return real(*args, **kwargs)

    monkeypatch.setattr(api, "check_paths", warning_check)
    result = rtcheck("check", _inputs(tmp_path), *PROTOCOL, "--format", "json")
    assert result.exit_code == 0
    lines = result.stderr.strip().splitlines()
    assert lines == ["rtcheck: warning: tests (UserWarning): Invalid value for VR DS: 'NaN'. Please see <https://dicom.nema.org>"]


def test_an_error_about_the_inputs_as_a_whole_names_them(tmp_path):
    (tmp_path / "notes.txt").write_text("not DICOM")
    result = rtcheck("check", tmp_path, *PROTOCOL)
    assert result.exit_code == 2
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"rtcheck: error: {tmp_path}: no RT Plan among the inputs")


def test_an_arm_that_cannot_be_chosen_names_the_plan_file():
    plan = SAMPLES / "cr-pr-wrong-fractions" / "RP.dcm"
    result = rtcheck("check", plan.parent, "--protocol", "escc-induction-icrt-ccrt", "--arm", "auto")
    assert result.exit_code == 2
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"rtcheck: error: {plan}: --arm auto: plan ESO_CRPR matches no arm")
