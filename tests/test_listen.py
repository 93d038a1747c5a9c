"""`rtcheck listen` as a real process on loopback, with real DICOM peers (dcmtk, pynetdicom).

Each test starts the listener on a free port with a short settle time, talks to
it, and waits (with generous safety limits, never asserting a duration) for
the files and log lines it expects.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pydicom
import pytest
from pydicom.uid import generate_uid

from conftest import ROOT, require_program

SAMPLE = ROOT / "sample_plans" / "sd-pd-compliant"
PROTOCOL = "escc-induction-icrt-ccrt"
LIMIT_S = 120.0  # safety net only: a test that waits this long has failed
# A light protocol (the sd-pd prescriptions and one coverage check) where the number of checks, not their
# depth, matters: the load test runs 20 checks on 2 shared cores.
LIGHT_PROTOCOL = textwrap.dedent(
    """
    schema: rtcheck.protocol/1
    id: listen-load-test
    title: Prescriptions of the sd-pd arm and PGTV coverage (a light check for the listener's tests)
    version: "1"
    source: {notes: tests/test_listen.py}
    structures:
      PTV: {tg263: PTV, role: target, aliases: [PTV]}
      PGTV: {tg263: PTV_High, role: target, aliases: [PGTV]}
    arms:
      sd-pd:
        title: SIB 50.4 Gy / 59.92 Gy in 28 fx
        prescriptions:
          - {target: PGTV, total_dose_gy: 59.92, fractions: 28, dose_per_fraction_gy: 2.14,
             tolerance: {per_protocol_pct: 1.0, variation_acceptable_pct: 5.0, source: test}, source: test}
          - {target: PTV, total_dose_gy: 50.4, fractions: 28, dose_per_fraction_gy: 1.8,
             tolerance: {per_protocol_pct: 1.0, variation_acceptable_pct: 5.0, source: test}, source: test}
        constraints:
          - {id: pgtv-d95, structure: PGTV, metric: "D95%[%]", per_protocol: ">= 95 %", source: test}
    """
)


def _light(folder: Path) -> str:
    path = folder / "light.yaml"
    path.write_text(LIGHT_PROTOCOL, encoding="utf-8")
    return str(path)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(predicate, what: str, limit_s: float = LIMIT_S, proc: subprocess.Popen | None = None):
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"listener exited with {proc.returncode} while waiting for {what}")
        time.sleep(0.05)
    raise AssertionError(f"gave up waiting for {what}")


class Running:
    """One listener subprocess; its stderr goes to a file the test reads."""

    def __init__(
        self, store: Path, log: Path, *args: str, settle: float = 0.5, html: bool = False, protocol: str = PROTOCOL,
        arm: str = "sd-pd",
    ) -> None:
        self.store = store
        self.log = log
        self.port = _free_port()
        command = [
            sys.executable, "-m", "rtcheck.cli", "listen", "--port", str(self.port), "--ae-title", "RTCHECK",
            "--store", str(store), "--protocol", protocol, "--arm", arm, "--settle", str(settle),
            "--html" if html else "--no-html", *args,
        ]
        self._log_handle = open(log, "ab")
        self.proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=self._log_handle, cwd=ROOT)
        _wait_for(self._accepts, "the listener to accept connections", proc=self.proc)

    def _accepts(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return True
        except OSError:
            return False

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def lines(self, event: str) -> list[str]:
        return [line for line in self.text().splitlines() if len(line.split(" ")) > 2 and line.split(" ")[2] == event]

    def terminate(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log_handle.close()
        return self.proc.returncode


@pytest.fixture
def listeners():
    """Start listeners with ``listeners(store, log, *args, settle=...)``; all are stopped at the end."""
    started: list[Running] = []

    def start(*args, **kwargs) -> Running:
        running = Running(*args, **kwargs)
        started.append(running)
        return running

    try:
        yield start
    finally:
        for running in started:
            try:
                running.terminate()
            finally:
                if running.proc.poll() is None:
                    running.proc.kill()
                    running.proc.wait()


def _all_files(root: Path) -> list[Path]:
    return [Path(d) / n for d, _, names in os.walk(root) for n in names]


def _temp_files(root: Path) -> list[Path]:
    return [p for p in _all_files(root) if p.name.startswith(".rtcheck-tmp-")]


def _reports(store: Path, suffix: str = ".json") -> list[Path]:
    return sorted(p for p in _all_files(store) if p.name.startswith("rtcheck-") and p.name.endswith(suffix))


def _content_sha256(ds: pydicom.Dataset) -> str:
    """Hash of a data set's decoded elements (tag, VR, value), whatever transfer syntax it travelled in.

    Pixel data is hashed as its bytes, which are little-endian in every syntax sent here but Explicit VR Big
    Endian, and that one is only used for a data set without pixel data.
    """
    digest = hashlib.sha256()
    for element in ds.iterall():
        value = element.value
        if element.VR == "SQ":
            value = len(value)
        digest.update(f"{element.tag}{element.VR}".encode())
        digest.update(value if isinstance(value, bytes) else repr(value).encode())
    return digest.hexdigest()


def _clone_set(source: Path, patient_id: str) -> list[pydicom.Dataset]:
    """A distinct copy of a sample plan set: new study, instance UIDs and patient ID, references updated."""
    rs, rp, rd = (pydicom.dcmread(source / name) for name in ("RS.dcm", "RP.dcm", "RD.dcm"))
    study = generate_uid()
    for ds in (rs, rp, rd):
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.StudyInstanceUID = study
        ds.SeriesInstanceUID = generate_uid()
        ds.PatientID = patient_id
    rp.ReferencedStructureSetSequence[0].ReferencedSOPInstanceUID = rs.SOPInstanceUID
    rd.ReferencedRTPlanSequence[0].ReferencedSOPInstanceUID = rp.SOPInstanceUID
    return [rs, rp, rd]


def _scu(ae_title: str = "TPS"):
    from pynetdicom import AE, StoragePresentationContexts
    from pynetdicom.sop_class import Verification

    ae = AE(ae_title=ae_title)
    ae.requested_contexts = StoragePresentationContexts[:127]
    ae.add_requested_context(Verification)
    # These tests are about what is stored and checked, not how fast: on a loaded 2-core machine twenty
    # concurrent senders may wait longer than pynetdicom's default 30 s for a C-STORE response.
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 120
    return ae


def _send(port: int, datasets: list[pydicom.Dataset], *, calling: str = "TPS", called: str = "RTCHECK") -> list[int]:
    ae = _scu(calling)
    assoc = ae.associate("127.0.0.1", port, ae_title=called)
    assert assoc.is_established, f"association {calling}->{called} not established"
    try:
        statuses = []
        for ds in datasets:
            status = assoc.send_c_store(ds)
            statuses.append(int(status.Status) if "Status" in status else -1)
        return statuses
    finally:
        assoc.release()


def _echo(port: int) -> int:
    ae = _scu()
    assoc = ae.associate("127.0.0.1", port, ae_title="RTCHECK")
    assert assoc.is_established
    try:
        return int(assoc.send_c_echo().Status)
    finally:
        assoc.release()


def test_storescu_sample_plan_is_checked_on_arrival(tmp_path, listeners):
    storescu = require_program("storescu", "dcmtk")
    echoscu = require_program("echoscu", "dcmtk")
    store = tmp_path / "store"
    running = listeners(store, tmp_path / "listen.log", html=True)
    echo = subprocess.run([echoscu, "-aet", "TPS", "-aec", "RTCHECK", "127.0.0.1", str(running.port)],
                          capture_output=True, text=True, timeout=60)
    assert echo.returncode == 0, echo.stderr
    sent = subprocess.run([storescu, "-aet", "TPS", "-aec", "RTCHECK", "127.0.0.1", str(running.port),
                           *(str(SAMPLE / n) for n in ("RS.dcm", "RP.dcm", "RD.dcm"))],
                          capture_output=True, text=True, timeout=60)
    assert sent.returncode == 0, sent.stderr

    plan = pydicom.dcmread(SAMPLE / "RP.dcm", stop_before_pixels=True)
    report = _wait_for(lambda: _reports(store), "the JSON report", proc=running.proc)
    assert [p.name for p in report] == [f"rtcheck-{plan.SOPInstanceUID}.json"]
    document = json.loads(report[0].read_text(encoding="utf-8"))
    assert document["verdict"] == "per_protocol"  # sample_plans/README.md: sd-pd-compliant is per protocol
    assert document["plan"]["sop_instance_uid"] == plan.SOPInstanceUID
    folder = report[0].parent
    assert folder == store / plan.PatientID / plan.StudyInstanceUID
    stored = sorted(p.name for p in folder.glob("*.dcm"))
    assert stored == sorted(f"{pydicom.dcmread(SAMPLE / n, stop_before_pixels=True).Modality}."
                            f"{pydicom.dcmread(SAMPLE / n, stop_before_pixels=True).SOPInstanceUID}.dcm"
                            for n in ("RS.dcm", "RP.dcm", "RD.dcm"))
    for name in ("RS.dcm", "RP.dcm", "RD.dcm"):
        original = pydicom.dcmread(SAMPLE / name)
        copy = pydicom.dcmread(folder / f"{original.Modality}.{original.SOPInstanceUID}.dcm")
        assert _content_sha256(copy) == _content_sha256(original)
    junit = ET.parse(folder / f"rtcheck-{plan.SOPInstanceUID}.xml").getroot()
    verdicts = [p.get("value") for p in junit.iter("property") if p.get("name") == "verdict"]
    assert verdicts == ["per_protocol"]
    html = folder / f"rtcheck-{plan.SOPInstanceUID}.html"
    try:
        from rtcheck.render.html import render_html  # noqa: F401 - written by another part of rtcheck
    except ImportError:
        assert not html.exists()
    else:
        assert plan.SOPInstanceUID in html.read_text(encoding="utf-8")

    [checked] = running.lines("checked")
    assert f"plan={plan.SOPInstanceUID}" in checked and "verdict=per_protocol" in checked
    assert len(running.lines("stored")) == 3
    assert all("calling_ae=TPS" in line for line in running.lines("stored"))
    assert running.terminate() == 0
    assert "stopped" in running.text().splitlines()[-1]
    assert not _temp_files(tmp_path)


@pytest.mark.parametrize("syntax", ["1.2.840.10008.1.2", "1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.2"])
def test_transfer_syntaxes_are_stored_as_received(tmp_path, listeners, syntax):
    from pynetdicom import AE
    from pynetdicom.sop_class import RTStructureSetStorage

    store = tmp_path / "store"
    running = listeners(store, tmp_path / "listen.log")
    [rs, rp, rd] = _clone_set(SAMPLE, "SYNTAX")
    for _ in rs.iterall():  # decode every element, so that pynetdicom encodes them anew in the syntax below
        pass
    rs.file_meta.TransferSyntaxUID = syntax
    rs.set_original_encoding(syntax == "1.2.840.10008.1.2", syntax != "1.2.840.10008.1.2.2", rs.original_character_set)
    ae = AE(ae_title="TPS")
    ae.add_requested_context(RTStructureSetStorage, syntax)  # only this one: the listener must accept it
    assoc = ae.associate("127.0.0.1", running.port, ae_title="RTCHECK")
    assert assoc.is_established
    try:
        assert int(assoc.send_c_store(rs).Status) == 0x0000
    finally:
        assoc.release()
    [stored] = [p for p in _all_files(store) if p.suffix == ".dcm"]
    copy = pydicom.dcmread(stored)
    assert copy.file_meta.TransferSyntaxUID == syntax
    assert _content_sha256(copy) == _content_sha256(rs)


def test_called_and_calling_ae_titles_are_enforced(tmp_path, listeners):
    running = listeners(tmp_path / "store", tmp_path / "listen.log", "--allow-ae", "TPS", "--allow-ae", "ORTHANC")
    wrong_called = _scu("TPS").associate("127.0.0.1", running.port, ae_title="NOTRTCHECK")
    assert wrong_called.is_rejected
    outsider = _scu("INTRUDER").associate("127.0.0.1", running.port, ae_title="RTCHECK")
    assert outsider.is_rejected
    assert _echo(running.port) == 0x0000  # TPS is allowed
    rejected = running.lines("rejected")
    assert any("called_ae=NOTRTCHECK" in line and "called AE title is not ours" in line for line in rejected)
    assert any("calling_ae=INTRUDER" in line and "calling AE title not allowed" in line for line in rejected)
    assert running.terminate() == 0
    assert _all_files(tmp_path / "store") == []


@pytest.mark.filterwarnings("ignore:Invalid value for VR UI", "ignore:The value length")  # the point of the test
def test_unsafe_identifiers_are_refused_and_nothing_is_written_outside_the_store(tmp_path, listeners):
    work = tmp_path / "a" / "b"
    store = work / "store"
    running = listeners(store, tmp_path / "listen.log")
    before = set(_all_files(tmp_path))
    attacks = []
    for field, value in (
        ("SOPInstanceUID", "../../x"),
        ("SOPInstanceUID", "/tmp/x"),
        ("StudyInstanceUID", "1.2." + "3" * 70),  # over 64 characters (pynetdicom will not send such a SOP UID)
        ("StudyInstanceUID", "../../../../escape"),
        ("StudyInstanceUID", ".."),
    ):
        [rs, rp, rd] = _clone_set(SAMPLE, "EVIL")
        setattr(rp, field, value)
        if field == "SOPInstanceUID":
            rp.file_meta.MediaStorageSOPInstanceUID = value
        attacks.append(rp)
    statuses = _send(running.port, attacks)
    assert all(0xC000 <= s <= 0xCFFF for s in statuses), [hex(s) for s in statuses]
    [rs, rp, rd] = _clone_set(SAMPLE, "../../..")  # an unsafe patient ID is made safe, not refused
    assert _send(running.port, [rs]) == [0x0000]
    after = set(_all_files(tmp_path)) - before
    assert [p.relative_to(store).parts[:2] for p in after if p.suffix == ".dcm"] == [("_._.._..", rs.StudyInstanceUID)]
    assert all(store in p.parents for p in after - {tmp_path / "listen.log"}), after
    assert not [p for p in _all_files(tmp_path.parent) if p.name in ("x", "x.dcm", "escape") or "escape" in p.name]
    assert len(running.lines("refused")) == len(attacks)
    assert _echo(running.port) == 0x0000


def test_an_unwritable_destination_gets_a_failure_status_and_nothing_half_written(tmp_path, listeners):
    store = tmp_path / "store"
    running = listeners(store, tmp_path / "listen.log")
    [rs, rp, rd] = _clone_set(SAMPLE, "BLOCKED")
    (store / "BLOCKED").write_bytes(b"a file where the patient's folder should be")  # unwritable even for root
    assert _send(running.port, [rs]) == [0xA700]
    [refused] = running.lines("refused")
    assert f"uid={rs.SOPInstanceUID}" in refused and "status=0xA700" in refused and "cannot write" in refused
    assert sorted(p.name for p in _all_files(store) if p.name != ".rtcheck-status.json") == ["BLOCKED"]
    (store / "BLOCKED").unlink()
    assert _send(running.port, [rs]) == [0x0000]  # the same instance, once the folder can be made


def test_twenty_concurrent_senders_every_instance_stored_every_plan_checked_once(tmp_path, listeners):
    store = tmp_path / "store"
    running = listeners(store, tmp_path / "listen.log", "--log-json", protocol=_light(tmp_path))
    sets = [_clone_set(SAMPLE, f"LOAD-{i:02d}") for i in range(20)]
    errors: list[BaseException] = []

    def send(datasets):
        try:
            assert _send(running.port, datasets) == [0, 0, 0]
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=send, args=(s,)) for s in sets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(LIMIT_S)
    assert not errors, errors

    # Twenty checks run one after another: on a loaded 2-core machine that outlasts the usual safety net.
    _wait_for(lambda: len(_reports(store)) == 20, "20 reports", limit_s=20 * LIMIT_S, proc=running.proc)
    assert running.terminate() == 0
    expected = {ds.SOPInstanceUID: _content_sha256(ds) for s in sets for ds in s}
    stored = [p for p in _all_files(store) if p.suffix == ".dcm"]
    assert len(stored) == 60
    assert not _reports(store, ".html")  # --no-html
    assert len(_reports(store, ".xml")) == 20
    assert {pydicom.dcmread(p).SOPInstanceUID: _content_sha256(pydicom.dcmread(p)) for p in stored} == expected
    events = [json.loads(line) for line in running.text().splitlines()]
    checked = [e for e in events if e["event"] == "checked"]
    assert sorted(e["plan"] for e in checked) == sorted(s[1].SOPInstanceUID for s in sets)
    assert {e["verdict"] for e in checked} == {"per_protocol"}
    assert {e["patient"] for e in checked} == {f"LOAD-{i:02d}" for i in range(20)}
    [stopped] = [e for e in events if e["event"] == "stopped"]
    assert stopped["stored"] == 60 and stopped["pending_plans"] == 0
    for s in sets:
        report = store / s[1].PatientID / s[1].StudyInstanceUID
        assert json.loads((report / f"rtcheck-{s[1].SOPInstanceUID}.json").read_text())["verdict"] == "per_protocol"
    assert not _temp_files(tmp_path)


_KILLED_SENDER = textwrap.dedent(
    """
    import os, sys
    import pydicom
    from pynetdicom import AE, evt
    from pynetdicom.sop_class import RTDoseStorage

    ds = pydicom.dcmread(sys.argv[2])
    sent = []

    def on_pdu_sent(event):
        if type(event.pdu).__name__ == "P_DATA_TF":
            sent.append(1)
            if len(sent) == 4:  # command and a few fragments of the data set are out: die
                os._exit(9)

    ae = AE(ae_title="TPS")
    ae.add_requested_context(RTDoseStorage, ds.file_meta.TransferSyntaxUID)
    assoc = ae.associate("127.0.0.1", int(sys.argv[1]), ae_title="RTCHECK", evt_handlers=[(evt.EVT_PDU_SENT, on_pdu_sent)])
    assert assoc.is_established
    assoc.send_c_store(ds)
    os._exit(0)
    """
)


def test_a_sender_killed_mid_transfer_leaves_no_partial_file(tmp_path, listeners):
    store = tmp_path / "store"
    running = listeners(store, tmp_path / "listen.log", protocol=_light(tmp_path))
    [rs, rp, rd] = _clone_set(SAMPLE, "KILLED")
    dose_file = tmp_path / "rd.dcm"
    rd.save_as(dose_file)
    child = subprocess.run([sys.executable, "-c", _KILLED_SENDER, str(running.port), str(dose_file)],
                           capture_output=True, text=True, timeout=LIMIT_S)
    assert child.returncode == 9, child.stderr  # it died in the middle of the data set
    _wait_for(lambda: running.lines("aborted"), "the listener to see the association end", proc=running.proc)
    assert not running.lines("stored")
    assert [p for p in _all_files(store) if p.suffix == ".dcm" or p.name.startswith(".rtcheck-tmp-")] == []
    assert _echo(running.port) == 0x0000
    assert _send(running.port, [rs, rp, rd]) == [0, 0, 0]  # and it still stores
    _wait_for(lambda: _reports(store), "the report", proc=running.proc)
    assert running.terminate() == 0
    assert not _temp_files(tmp_path)


def test_a_plan_that_cannot_be_checked_gets_an_error_report_and_the_listener_keeps_serving(tmp_path, listeners):
    store = tmp_path / "store"
    running = listeners(store, tmp_path / "listen.log")
    [rs, rp, rd] = _clone_set(SAMPLE, "BROKEN")
    rd.DoseUnits = "RELATIVE"  # rtcheck refuses relative doses
    assert _send(running.port, [rs, rp, rd]) == [0, 0, 0]
    [report] = _wait_for(lambda: _reports(store), "the error report", proc=running.proc)
    document = json.loads(report.read_text(encoding="utf-8"))
    assert document["schema"] == "rtcheck.listen-error/1" and document["verdict"] is None
    assert "RELATIVE" in document["error"] and rd.SOPInstanceUID in " ".join(document["inputs"])
    assert not _reports(store, ".xml")
    [failed] = _wait_for(lambda: running.lines("check-failed"), "the log line (written after the report)", proc=running.proc)
    assert f"plan={rp.SOPInstanceUID}" in failed and "RELATIVE" in failed
    assert _echo(running.port) == 0x0000
    assert running.proc.poll() is None


def test_an_incomplete_set_waits_for_its_dose(tmp_path, listeners):
    store = tmp_path / "store"
    running = listeners(store, tmp_path / "listen.log", protocol=_light(tmp_path))
    [rs, rp, rd] = _clone_set(SAMPLE, "LATE-DOSE")
    assert _send(running.port, [rs, rp]) == [0, 0]
    _wait_for(lambda: running.lines("waiting"), "the listener to say the set is incomplete", proc=running.proc)
    assert "an RT Dose referencing the plan" in running.lines("waiting")[0]
    assert not _reports(store)
    assert _send(running.port, [rd]) == [0]
    [report] = _wait_for(lambda: _reports(store), "the report", proc=running.proc)
    assert json.loads(report.read_text(encoding="utf-8"))["verdict"] == "per_protocol"


def test_a_re_export_is_checked_again(tmp_path, listeners):
    store = tmp_path / "store"
    running = listeners(store, tmp_path / "listen.log", protocol=_light(tmp_path))
    datasets = _clone_set(SAMPLE, "AGAIN")
    assert _send(running.port, datasets) == [0, 0, 0]
    _wait_for(lambda: len(running.lines("checked")) == 1, "the first check", proc=running.proc)
    assert _send(running.port, datasets) == [0, 0, 0]
    _wait_for(lambda: len(running.lines("checked")) == 2, "the check of the re-export", proc=running.proc)
    assert running.terminate() == 0
    assert len(running.lines("checked")) == 2
    assert len([p for p in _all_files(store) if p.suffix == ".dcm"]) == 3  # replaced, not duplicated


def test_restart_checks_the_set_stored_before_the_stop(tmp_path, listeners):
    storescu = require_program("storescu", "dcmtk")
    store = tmp_path / "store"
    log = tmp_path / "listen.log"
    first = listeners(store, log, settle=600)  # never settles while this one runs
    sent = subprocess.run([storescu, "-aet", "TPS", "-aec", "RTCHECK", "127.0.0.1", str(first.port),
                           *(str(SAMPLE / n) for n in ("RS.dcm", "RP.dcm", "RD.dcm"))],
                          capture_output=True, text=True, timeout=60)
    assert sent.returncode == 0, sent.stderr
    assert len(first.lines("stored")) == 3
    assert first.terminate() == 0
    assert "pending_plans=1" in first.lines("stopped")[0]
    assert not _reports(store) and not _temp_files(tmp_path)

    second = listeners(store, log)
    assert "to_check=1" in second.lines("resumed")[-1]
    [report] = _wait_for(lambda: _reports(store), "the report after the restart", proc=second.proc)
    assert json.loads(report.read_text(encoding="utf-8"))["verdict"] == "per_protocol"
    assert second.terminate() == 0

    third = listeners(store, log)  # the report is current: nothing to do
    assert "to_check=0" in third.lines("resumed")[-1]
    assert third.terminate() == 0
    assert len(third.lines("checked")) == 1


def test_stale_temporary_files_are_removed_on_start(tmp_path, listeners):
    folder = tmp_path / "store" / "P" / "1.2.3"
    folder.mkdir(parents=True)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    leftover = folder / f".rtcheck-tmp-{dead.stdout.strip()}-00ff"
    leftover.write_bytes(b"half a file")
    running = listeners(tmp_path / "store", tmp_path / "listen.log")
    assert not leftover.exists()
    assert any(str(leftover) in line for line in running.lines("removed-temp"))


def test_listen_refuses_a_port_in_use_with_one_line(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "rtcheck.cli", "listen", "--port", str(port), "--store", str(tmp_path / "s"),
             "--protocol", PROTOCOL, "--arm", "sd-pd"],
            capture_output=True, text=True, timeout=LIMIT_S, cwd=ROOT,
        )
    assert done.returncode == 2
    assert f"rtcheck: error: cannot listen on 127.0.0.1:{port}" in done.stderr
    assert "Traceback" not in done.stderr


def test_sigterm_while_a_plan_is_being_checked_stops_cleanly(tmp_path, listeners):
    store = tmp_path / "store"
    running = listeners(store, tmp_path / "listen.log", settle=0, html=True)
    assert _send(running.port, _clone_set(SAMPLE, "STOPPED")) == [0, 0, 0]
    running.proc.send_signal(signal.SIGTERM)  # the check has just begun, or is about to
    assert running.terminate() == 0
    assert "stopped" in running.text().splitlines()[-1]
    assert not _temp_files(tmp_path)
    written = {p.suffix for p in _all_files(store) if p.name.startswith("rtcheck-")}
    assert written in (set(), {".json", ".xml", ".html"}, {".json", ".xml"})  # all of the reports or none
    if written:
        assert running.lines("checked")
    else:
        assert "pending_plans=1" in running.lines("stopped")[0] or running.lines("abandoned")
