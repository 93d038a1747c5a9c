"""The listener's storage rules (safe paths, atomic writes, temporary files) and plan-set completeness."""

from __future__ import annotations

import os
import subprocess
import sys

import pydicom
import pytest
from pydicom.uid import generate_uid

from conftest import ROOT
from rtcheck.net.catalog import Catalog, describe_instance
from rtcheck.errors import UnsafeIdentifierError
from rtcheck.files import atomic_write, remove_stale_temp_files
from rtcheck.net.storage import (
    instance_path,
    safe_modality,
    safe_patient_id,
    valid_uid,
)

SAMPLE = ROOT / "sample_plans" / "sd-pd-compliant"


@pytest.mark.parametrize("value", ["", "../../x", "1.2.3/../4", "1.2..3", ".1.2", "1.2.", "1.2.3 x", "1." + "2" * 63, None])
def test_invalid_uids_are_refused(value):
    with pytest.raises(UnsafeIdentifierError):
        valid_uid(value, "SOPInstanceUID")


def test_valid_uids_pass_unchanged():
    assert valid_uid("1.2.840.10008.5.1.4.1.1.481.5", "x") == "1.2.840.10008.5.1.4.1.1.481.5"
    assert valid_uid("1." + "2" * 62, "x") == "1." + "2" * 62  # 64 characters


@pytest.mark.parametrize(
    ("given", "folder"),
    [("RTCHECK-002", "RTCHECK-002"), ("", "UNKNOWN"), (None, "UNKNOWN"), (".", "_"), ("..", "_."),
     ("../../etc", "_._.._etc"), ("/abs", "_abs"), ("A B\\C", "A_B_C"), ("张三", "__"), (".hidden", "_hidden")],
)
def test_patient_ids_are_made_safe(given, folder):
    assert safe_patient_id(given) == folder


def test_modality_outside_its_alphabet_falls_back():
    assert safe_modality("RTPLAN", "OT") == "RTPLAN"
    assert safe_modality("../x", "RTPLAN") == "RTPLAN"
    assert safe_modality("", "CT") == "CT"


def test_report_names_refuse_a_uid_that_is_not_one(tmp_path):
    from rtcheck.net.reports import report_path

    assert report_path(tmp_path / "RTPLAN.1.2.dcm", "1.2", ".json") == tmp_path / "rtcheck-1.2.json"
    with pytest.raises(UnsafeIdentifierError):
        report_path(tmp_path / "RTPLAN.1.2.dcm", "../../x", ".json")


def test_instance_path_layout_and_escape_through_a_symbolic_link(tmp_path):
    store = tmp_path / "store"
    store.mkdir()
    assert instance_path(store, "P1", "1.2.3", "RTPLAN", "1.2.3.4") == store / "P1" / "1.2.3" / "RTPLAN.1.2.3.4.dcm"
    outside = tmp_path / "outside"
    outside.mkdir()
    (store / "EVIL").symlink_to(outside)
    with pytest.raises(UnsafeIdentifierError, match="outside"):
        instance_path(store, "EVIL", "1.2.3", "CT", "1.2.3.5")


def test_atomic_write_creates_folders_and_replaces_a_file_whole(tmp_path):
    target = tmp_path / "store" / "P" / "1.2" / "CT.1.2.3.dcm"
    (tmp_path / "store").mkdir()
    atomic_write(target, [b"first"], root=tmp_path / "store")
    atomic_write(target, [b"sec", b"ond"], root=tmp_path / "store")
    assert target.read_bytes() == b"second"
    assert sorted(os.listdir(target.parent)) == ["CT.1.2.3.dcm"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary_file(tmp_path):
    target = tmp_path / "CT.1.2.3.dcm"
    target.write_bytes(b"old")

    def chunks():
        yield b"half of the new"
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError):
        atomic_write(target, chunks())
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["CT.1.2.3.dcm"]


def test_stale_temporary_files_of_dead_processes_only_are_removed(tmp_path):
    dead_pid = int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                                  capture_output=True, text=True).stdout)
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        dead = tmp_path / "a" / f".rtcheck-tmp-{dead_pid}-0a1b"
        alive = tmp_path / f".rtcheck-tmp-{live.pid}-0a1b"
        mine = tmp_path / f".rtcheck-tmp-{os.getpid()}-0a1b"
        data = tmp_path / "CT.1.2.dcm"
        dead.parent.mkdir()
        for path in (dead, alive, mine, data):
            path.write_bytes(b"x")
        assert remove_stale_temp_files(tmp_path) == [dead]
        assert remove_stale_temp_files(tmp_path, own=True) == [mine]
        assert alive.exists() and data.exists()
    finally:
        live.kill()
        live.wait()


def _sample(name: str) -> pydicom.Dataset:
    return pydicom.dcmread(SAMPLE / name, stop_before_pixels=True)


def test_a_plan_set_is_complete_with_its_structure_set_and_a_dose(tmp_path):
    rs, rp, rd = _sample("RS.dcm"), _sample("RP.dcm"), _sample("RD.dcm")
    catalog = Catalog()
    assert catalog.add(describe_instance(rd, tmp_path / "rd")) == [rp.SOPInstanceUID]  # before its plan
    assert catalog.plan_files(rp.SOPInstanceUID) is None
    assert catalog.add(describe_instance(rp, tmp_path / "rp")) == [rp.SOPInstanceUID]
    assert catalog.plan_files(rp.SOPInstanceUID).missing == f"RT Structure Set {rs.SOPInstanceUID}"
    assert catalog.add(describe_instance(rs, tmp_path / "rs")) == [rp.SOPInstanceUID]
    files = catalog.plan_files(rp.SOPInstanceUID)
    assert files.missing == ""
    assert files.paths == [tmp_path / "rp", tmp_path / "rs", tmp_path / "rd"]


def test_beam_doses_must_cover_every_beam(tmp_path):
    rp = _sample("RP.dcm")
    beams = [int(b.BeamNumber) for b in rp.BeamSequence]
    assert len(beams) == 5  # sample_plans/README.md: five beams
    catalog = Catalog()
    catalog.add(describe_instance(rp, tmp_path / "rp"))
    for number in beams[:-1]:  # the last beam's dose has not arrived
        rd = _sample("RD.dcm")
        rd.SOPInstanceUID = generate_uid()
        rd.DoseSummationType = "BEAM"
        beam, group = pydicom.Dataset(), pydicom.Dataset()
        beam.ReferencedBeamNumber = number
        group.ReferencedFractionGroupNumber = 1
        group.ReferencedBeamSequence = [beam]
        rd.ReferencedRTPlanSequence[0].ReferencedFractionGroupSequence = [group]
        catalog.add(describe_instance(rd, tmp_path / f"rd{number}"))
    assert f"BEAM doses of beams {beams[-1]}" in catalog.plan_files(rp.SOPInstanceUID).missing
    assert len(catalog.plan_files(rp.SOPInstanceUID).doses) == 4


def test_restart_scan_reads_links_from_stored_files(tmp_path):
    rp = _sample("RP.dcm")
    described = describe_instance(pydicom.dcmread(SAMPLE / "RP.dcm"), tmp_path / "rp")
    assert described.structure_set_uid == rp.ReferencedStructureSetSequence[0].ReferencedSOPInstanceUID
    assert described.beam_numbers == tuple(int(b.BeamNumber) for b in rp.BeamSequence)
    ct = pydicom.Dataset()
    ct.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    ct.SOPInstanceUID = generate_uid()
    assert Catalog().add(describe_instance(ct, tmp_path / "ct")) == []  # stored, never checked


def test_a_file_stored_during_a_check_makes_its_report_stale(tmp_path):
    """The report is dated at its check's start: a dose re-exported mid-check is re-checked after a restart."""
    import shutil
    import threading
    import time

    from rtcheck.net.reports import PlanChecker, has_current_report

    catalog = Catalog()
    for name in ("RS.dcm", "RP.dcm", "RD.dcm"):
        shutil.copy(SAMPLE / name, tmp_path / name)
        catalog.add(describe_instance(_sample(name), tmp_path / name))
    files = catalog.plan_files(_sample("RP.dcm").SOPInstanceUID)
    checker = PlanChecker("escc-induction-icrt-ccrt", "sd-pd", threading.Lock(), threading.Event(), html=False)

    checker(files)
    assert has_current_report(files)

    real_write = checker._write_result

    def write_after_a_store(*args):
        time.sleep(0.01)
        (tmp_path / "RD.dcm").write_bytes((SAMPLE / "RD.dcm").read_bytes())  # stored while the check ran
        time.sleep(0.01)
        real_write(*args)

    checker._write_result = write_after_a_store
    checker(files)
    assert not has_current_report(files)
