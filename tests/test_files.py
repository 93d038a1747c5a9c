"""The one safe writer (rtcheck.files): atomic, never over an input, and each caller's rule kept."""

from __future__ import annotations

import os
import shutil
import stat
import threading

import pydicom
import pytest

from cli_helpers import rtcheck
from conftest import ROOT
from rtcheck.errors import InsideInputsError, OutputFolderError, OverwritesInputError, WriteFailedError
from rtcheck.files import TEMP_PREFIX, InputGuard, OutputPlace, prepare_output_folder, write_output

SAMPLE = ROOT / "sample_plans" / "cr-pr-compliant"


@pytest.fixture
def plan_folder(tmp_path):
    folder = tmp_path / "plan"
    shutil.copytree(SAMPLE, folder)
    return folder


def _contents(folder):
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def test_a_failed_write_leaves_the_old_report_whole_and_no_temporary_file(tmp_path, monkeypatch):
    report = tmp_path / "report.xml"
    report.write_text("old report", encoding="utf-8")
    guard = InputGuard.of([], OutputPlace.BESIDE_INPUTS)

    def full_disk(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(WriteFailedError, match=r"report\.xml: cannot write the report \(No space left on device\)"):
        write_output(report, "new report, never seen half-written", guard)
    assert report.read_text(encoding="utf-8") == "old report"
    assert os.listdir(tmp_path) == ["report.xml"]


def test_a_failed_first_write_leaves_no_file_at_all(tmp_path, monkeypatch):
    def refused(source, target):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "replace", refused)
    with pytest.raises(WriteFailedError, match="new.json"):
        write_output(tmp_path / "new.json", "{}", InputGuard.of([], OutputPlace.APART))
    assert os.listdir(tmp_path) == []


def test_text_is_utf8_and_bytes_are_written_as_they_are(tmp_path):
    guard = InputGuard.of([], OutputPlace.BESIDE_INPUTS)
    write_output(tmp_path / "a.txt", "Ösophagus 50.4 Gy", guard)
    write_output(tmp_path / "b.pdf", b"%PDF-\x00\xff", guard)
    assert (tmp_path / "a.txt").read_bytes() == "Ösophagus 50.4 Gy".encode("utf-8")
    assert (tmp_path / "b.pdf").read_bytes() == b"%PDF-\x00\xff"


def test_a_report_is_never_written_over_an_input_file_nor_through_a_link_to_one(plan_folder, tmp_path):
    before = _contents(plan_folder)
    guard = InputGuard.of([plan_folder / "RP.dcm", plan_folder / "RD.dcm"], OutputPlace.BESIDE_INPUTS)
    link = tmp_path / "link.xml"
    link.symlink_to(plan_folder / "RD.dcm")
    for target in (plan_folder / "RP.dcm", link):
        with pytest.raises(OverwritesInputError, match=f"{target.name}: is one of the inputs"):
            write_output(target, "<x/>", guard)
    assert _contents(plan_folder) == before


def test_beside_inputs_allows_new_files_and_old_reports_in_an_input_folder_but_no_dicom_file_there(plan_folder):
    guard = InputGuard.of([plan_folder], OutputPlace.BESIDE_INPUTS)
    dicom = _contents(plan_folder)
    for _ in range(2):  # written, then replaced
        write_output(plan_folder / "report.xml", "<x/>", guard)
    assert (plan_folder / "report.xml").read_text(encoding="utf-8") == "<x/>"
    with pytest.raises(OverwritesInputError, match="RS.dcm: is one of the inputs"):
        write_output(plan_folder / "RS.dcm", "<x/>", guard)
    # A DICOM file under any name counts, a damaged one too: it is an input of the folder.
    shutil.copy(plan_folder / "RD.dcm", plan_folder / "dose-copy")
    with pytest.raises(OverwritesInputError):
        write_output(plan_folder / "dose-copy", "<x/>", guard)
    assert {k: v for k, v in _contents(plan_folder).items() if k in dicom} == dicom


def test_apart_refuses_an_output_folder_overlapping_the_inputs(plan_folder, tmp_path):
    guard = InputGuard.of([plan_folder], OutputPlace.APART)
    with pytest.raises(InsideInputsError, match="overlaps the input folder"):
        prepare_output_folder(plan_folder / "reports", guard, label="--out")
    with pytest.raises(InsideInputsError, match="overlaps the input folder"):
        prepare_output_folder(tmp_path, guard, label="--out")  # holds the inputs
    file_guard = InputGuard.of([plan_folder / "RP.dcm"], OutputPlace.APART)
    with pytest.raises(InsideInputsError, match=r"^--out .*: holds the input file .*RP\.dcm"):
        prepare_output_folder(plan_folder, file_guard, label="--out")
    assert not (plan_folder / "reports").exists()


def test_apart_refuses_a_write_that_resolves_into_the_inputs_through_a_link(plan_folder, tmp_path):
    guard = InputGuard.of([plan_folder], OutputPlace.APART)
    out = prepare_output_folder(tmp_path / "out", guard, label="--out")
    (out / "P1").symlink_to(plan_folder)
    before = _contents(plan_folder)
    with pytest.raises(InsideInputsError, match="resolves into the inputs"):
        write_output(out / "P1" / "report.json", "{}", guard, root=out)
    assert _contents(plan_folder) == before
    write_output(out / "P2" / "report.json", "{}", guard, root=out)  # missing folders are made
    assert (out / "P2" / "report.json").read_text(encoding="utf-8") == "{}"


def test_an_output_folder_that_is_a_file_is_refused(tmp_path):
    (tmp_path / "out").write_text("x", encoding="utf-8")
    with pytest.raises(OutputFolderError, match=r"^--out .*out: is not a folder$"):
        prepare_output_folder(tmp_path / "out", InputGuard.of([], OutputPlace.APART), label="--out")


def test_reports_get_the_users_umask_and_the_listeners_stay_owner_writable(tmp_path):
    from rtcheck.net.storage import STORED_FILE_MODE

    guard = InputGuard.of([], OutputPlace.BESIDE_INPUTS)
    old = os.umask(0o002)
    try:
        write_output(tmp_path / "report.xml", "<x/>", guard)
        write_output(tmp_path / "rtcheck-1.2.json", "{}", guard, mode=STORED_FILE_MODE)
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "report.xml").stat().st_mode) == 0o664  # like open(): 0o666 less the umask
    assert stat.S_IMODE((tmp_path / "rtcheck-1.2.json").stat().st_mode) == 0o644


# -- each caller ---------------------------------------------------------------------------------


def test_check_writes_its_reports_atomically_beside_the_plan(plan_folder):
    result = rtcheck("check", plan_folder, "--protocol", "escc-induction-icrt-ccrt", "--arm", "cr-pr",
                     "--junit", plan_folder / "report.xml", "--html", plan_folder / "report.html")
    assert result.exit_code == 0, result.stderr
    assert (plan_folder / "report.xml").read_bytes().startswith(b"<?xml")
    assert (plan_folder / "report.html").read_bytes().startswith(b"<!DOCTYPE html>")
    assert not [p for p in plan_folder.iterdir() if p.name.startswith(TEMP_PREFIX)]


def test_check_names_the_report_it_cannot_write(plan_folder, tmp_path):
    target = tmp_path / "no-such-folder" / "report.xml"
    result = rtcheck("check", plan_folder, "--protocol", "escc-induction-icrt-ccrt", "--arm", "cr-pr", "--junit", target)
    assert result.exit_code == 2
    assert result.stderr.strip() == f"rtcheck: error: {target}: cannot write the report (No such file or directory)"


def test_batch_refuses_a_summary_that_resolves_into_the_inputs(plan_folder, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "summary.csv").symlink_to(plan_folder / "RP.dcm")
    before = _contents(plan_folder)
    result = rtcheck("batch", plan_folder, "--protocol", "escc-induction-icrt-ccrt", "--arm", "cr-pr", "--out", out, "--jobs", "1")
    assert result.exit_code == 2 and "summary.csv: resolves into the inputs" in result.stderr
    assert _contents(plan_folder) == before


def test_the_listener_writes_beside_the_stored_plan_never_over_a_stored_file(plan_folder, monkeypatch):
    from rtcheck.net import reports
    from rtcheck.dicom.references import describe, link
    from rtcheck.net.catalog import PlanFiles
    from rtcheck.protocol.library import find_protocol

    [linked] = link(describe(pydicom.dcmread(plan_folder / name), plan_folder / name) for name in ("RP.dcm", "RS.dcm", "RD.dcm")).sets
    files = PlanFiles(linked)
    checker = reports.PlanChecker(find_protocol("escc-induction-icrt-ccrt"), "cr-pr", threading.Lock(), threading.Event(), html=False)
    checker(files)
    uid = files.plan.sop_instance_uid
    written = {p.name for p in plan_folder.iterdir()} - {"RP.dcm", "RS.dcm", "RD.dcm"}
    assert written == {f"rtcheck-{uid}.xml", f"rtcheck-{uid}.json"}
    assert stat.S_IMODE((plan_folder / f"rtcheck-{uid}.json").stat().st_mode) & 0o022 == 0

    # Were a report name ever to fall on a file of the set, the permission stops short of it.
    monkeypatch.setattr(reports, "report_path", lambda plan, uid, suffix: plan.parent / "RD.dcm")
    before = _contents(plan_folder)
    with pytest.raises(OverwritesInputError, match="RD.dcm: is one of the inputs"):
        checker._write_error(files, "a message", 0.0, 0)
    assert _contents(plan_folder) == before
