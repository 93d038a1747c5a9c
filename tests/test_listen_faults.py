"""`rtcheck listen` under attack and faults (issue 17), on loopback with a real listener process.

Each test reproduces one failure of the fault campaign (an acknowledged plan
replaced by a CT, a forged log line, idle sockets stalling the listener, a
truncated data set acknowledged, SIGTERM ignored while a sender stalls,
library messages breaking the one-event-per-line log, reports never retried
after a full disk) and asserts the listener's answer.  Every wait is bounded
(``_wait_for``'s safety limit, socket timeouts); the only durations asserted
are the listener's documented bounds, with a margin.
"""

from __future__ import annotations

import json
import re
import select
import signal
import socket
import subprocess
import sys
import textwrap
import time

import pydicom
import pytest
from pydicom.dataset import FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from conftest import ROOT
from test_listen import (  # noqa: F401 - listeners is a fixture
    LIMIT_S,
    SAMPLE,
    _all_files,
    _clone_set,
    _echo,
    _light,
    _reports,
    _scu,
    _send,
    _temp_files,
    _wait_for,
    listeners,
)

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
STOP_BOUND_S = 5.0  # README: the listener ends within 5 s of SIGTERM/SIGINT
_PLAIN_LINE = re.compile(
    r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (DEBUG|INFO|WARNING|ERROR|CRITICAL) [a-z-]+'
    r'( [a-z_]+=([^\s"=\\]+|"([^"\\]|\\.)*"))*$'
)


def assert_one_event_per_line(text: str, *, as_json: bool) -> list:
    """Every line of a log is one well-formed event; returns the lines (parsed, for JSON)."""
    lines = text.splitlines()
    assert text.endswith("\n") and len(lines) == text.count("\n"), "a line break other than \\n in the log"
    if as_json:
        return [json.loads(line) for line in lines]
    bad = [line for line in lines if not _PLAIN_LINE.match(line)]
    assert not bad, bad[:3]
    return lines


def _ct_with_uid_of(plan: pydicom.Dataset, **changes) -> pydicom.Dataset:
    """A small CT image carrying the plan's SOP Instance UID, patient, study and Modality (the campaign's attack)."""
    ct = pydicom.Dataset()
    ct.file_meta = FileMetaDataset()
    ct.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ct.file_meta.MediaStorageSOPClassUID = CT_IMAGE_STORAGE
    ct.file_meta.MediaStorageSOPInstanceUID = plan.SOPInstanceUID
    ct.SOPClassUID = CT_IMAGE_STORAGE
    ct.SOPInstanceUID = plan.SOPInstanceUID
    ct.PatientID = plan.PatientID
    ct.StudyInstanceUID = plan.StudyInstanceUID
    ct.SeriesInstanceUID = generate_uid()
    ct.Modality = "RTPLAN"
    ct.Rows = ct.Columns = 2
    ct.BitsAllocated = ct.BitsStored = 16
    ct.HighBit = 15
    ct.SamplesPerPixel = 1
    ct.PixelRepresentation = 0
    ct.PhotometricInterpretation = "MONOCHROME2"
    ct.PixelData = bytes(8)
    for name, value in changes.items():
        setattr(ct, name, value)
    return ct


# -- 1. an instance may not take the place of another ---------------------------------------------------------------


def test_a_stored_uid_sent_as_another_object_is_refused_and_the_stored_file_kept(tmp_path, listeners):
    store = tmp_path / "store"
    running = listeners(store, tmp_path / "listen.log", protocol=_light(tmp_path))
    rs, rp, rd = _clone_set(SAMPLE, "KEEP")
    assert _send(running.port, [rs, rp, rd]) == [0, 0, 0]
    [plan_file] = [p for p in _all_files(store) if p.name.startswith("RTPLAN.")]
    exported = plan_file.read_bytes()

    other_patient = _clone_set(SAMPLE, "SOMEONE-ELSE")[1]
    other_patient.SOPInstanceUID = rp.SOPInstanceUID
    other_patient.file_meta.MediaStorageSOPInstanceUID = rp.SOPInstanceUID
    other_study = pydicom.dcmread(plan_file)
    other_study.StudyInstanceUID = generate_uid()
    attacks = [_ct_with_uid_of(rp), _ct_with_uid_of(rp, Modality="CT"), other_patient, other_study]
    assert _send(running.port, attacks) == [0x0111] * len(attacks)  # Duplicate SOP Instance

    assert plan_file.read_bytes() == exported
    assert len([p for p in _all_files(store) if p.suffix == ".dcm"]) == 3
    refused = running.lines("refused")
    assert len(refused) == len(attacks)
    assert all(f"uid={rp.SOPInstanceUID}" in line and "status=0x0111" in line for line in refused)
    assert "SOP Class" in refused[0] and "already stored" in refused[0]
    assert "patient" in refused[2] and "study" in refused[3]

    rp.RTPlanLabel = "RESENT"  # the same object again: replaced, atomically, as before
    assert _send(running.port, [rp]) == [0x0000]
    assert pydicom.dcmread(plan_file).RTPlanLabel == "RESENT"
    _wait_for(lambda: _reports(store), "the report", proc=running.proc)
    assert running.terminate() == 0

    restarted = listeners(store, tmp_path / "listen.log")  # the UIDs are known from the store's scan
    assert _send(restarted.port, [_ct_with_uid_of(rp)]) == [0x0111]
    assert pydicom.dcmread(plan_file).RTPlanLabel == "RESENT"


# -- 2. escaped log values --------------------------------------------------------------------------------------------

# Backslash is DICOM's value separator (a second value, not a character of this one): the unit test below covers it.
_SPECIALS = [chr(c) for c in range(0x20)] + ["\x7f", '"', "=", " "]
_FORGED = "\n2026-11-30T00:00:00.000Z INFO checked verdict=per_protocol"


@pytest.mark.filterwarnings("ignore:Invalid value for VR UI", "ignore:The value length")  # the point of the test
@pytest.mark.parametrize("as_json", [False, True], ids=["plain", "json"])
def test_control_characters_in_received_values_cannot_forge_a_log_line(tmp_path, listeners, as_json):
    store = tmp_path / "store"
    running = listeners(store, tmp_path / "listen.log", *(["--log-json"] if as_json else []), protocol=_light(tmp_path))
    rs, rp, rd = _clone_set(SAMPLE, "P")
    patient = "P" + "".join(_SPECIALS) + "\x85\u2028\u2029" + _FORGED
    for ds in (rs, rp, rd):
        ds.SpecificCharacterSet = "ISO_IR 192"
        ds.PatientID = patient
    rp.RTPlanLabel = "L\r\n\x00" + _FORGED[:10]
    assert _send(running.port, [rs, rp, rd]) == [0, 0, 0]
    attacks = []
    for char in _SPECIALS:  # a UID carrying each control character (and quote, backslash...) is refused and logged
        attack = _clone_set(SAMPLE, "UID")[1]
        attack.SOPInstanceUID = ("1.2.3" + char + "4" + _FORGED)[:64]
        attack.file_meta.MediaStorageSOPInstanceUID = attack.SOPInstanceUID
        attacks.append(attack)
    statuses = _send(running.port, attacks)
    assert all(s >= 0xA000 for s in statuses), [hex(s) for s in statuses]
    _wait_for(lambda: _reports(store), "the report", proc=running.proc)
    assert running.terminate() == 0

    events = assert_one_event_per_line(running.text(), as_json=as_json)
    if as_json:
        [checked] = [e for e in events if e["event"] == "checked"]
        assert checked["patient"] == patient and checked["label"] == rp.RTPlanLabel  # every character kept
        assert len([e for e in events if e["event"] == "refused"]) == len(attacks)
    else:
        assert len(running.lines("checked")) == 1
        assert len(running.lines("refused")) == len(attacks)
        assert not [line for line in events if "INFO checked verdict" in line.split(" ", 3)[2]]


def test_every_character_renders_as_one_token_on_one_line():
    from rtcheck.net.logs import render_plain

    token = re.compile(r'^e k=([^\s"=\\]+|"([^"\\]|\\.)*")$')
    for code in [*range(0x10000), *range(0x10000, 0x110000, 97)]:  # the whole BMP (separators, surrogates...), then a sample
        line = render_plain("e", {"k": f"a{chr(code)}b"})
        assert line.splitlines() == [line] and token.match(line), (hex(code), line)


_LIBRARY_NOISE = textwrap.dedent(
    """
    import logging, sys, threading, warnings
    from rtcheck.net.logs import configure

    configure(as_json=sys.argv[1] == "json")
    logging.getLogger("pynetdicom.acse").warning("a library message\\nover two lines")
    try:
        raise ValueError("boom\\nINFO checked verdict=per_protocol")
    except ValueError:
        logging.getLogger("pynetdicom.dul").exception("Exception in DUL.run(), aborting association")
        logging.getLogger("rtcheck.net").exception("check of plan %s failed", "1.2.3")
    warnings.warn("a warning\\nwith a second line")
    thread = threading.Thread(target=lambda: 1 / 0, name="doomed")
    thread.start()
    thread.join()
    """
)


@pytest.mark.parametrize("as_json", [False, True], ids=["plain", "json"])
def test_library_messages_tracebacks_and_warnings_are_one_event_per_line(as_json):
    done = subprocess.run([sys.executable, "-c", _LIBRARY_NOISE, "json" if as_json else "plain"],
                          capture_output=True, text=True, timeout=LIMIT_S, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    events = assert_one_event_per_line(done.stderr, as_json=as_json)
    assert len(events) == 5, done.stderr
    if as_json:
        assert [e["logger"] for e in events] == [
            "pynetdicom.acse", "pynetdicom.dul", "rtcheck.net", "py.warnings", "rtcheck.uncaught"
        ]
        assert "ZeroDivisionError" in events[4]["traceback"] and "boom\nINFO" in events[1]["traceback"]
    else:
        assert all(line.split(" ")[2] == "message" for line in events)
        assert "ZeroDivisionError" in events[4]


# -- 3. association limits ----------------------------------------------------------------------------------------------


def _quick_scu():
    """An SCU that gives up after 2 s at every step (the issue's bound for a C-ECHO under attack)."""
    ae = _scu()
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = ae.connection_timeout = 2
    return ae


def test_idle_connections_cannot_hold_off_a_peer(tmp_path, listeners):
    store = tmp_path / "store"
    running = listeners(store, tmp_path / "listen.log", "--request-timeout", "60")  # the idle ones stay, unless made room
    idle = []
    try:
        for i in range(100):  # half from this peer's own address, half from others on the loopback network
            source = ("127.0.0.1", 0) if i % 2 else (f"127.0.0.{2 + i % 40}", 0)
            idle.append(socket.create_connection(("127.0.0.1", running.port), timeout=LIMIT_S, source_address=source))
        for _ in range(3):
            assoc = _quick_scu().associate("127.0.0.1", running.port, ae_title="RTCHECK")
            assert assoc.is_established, "a peer was kept out by idle connections"
            try:
                assert int(assoc.send_c_echo().Status) == 0x0000
                assert int(assoc.send_c_store(_clone_set(SAMPLE, "UNDER-ATTACK")[0]).Status) == 0x0000
            finally:
                assoc.release()
    finally:
        for sock in idle:
            sock.close()
    assert running.lines("connection-dropped")
    assert running.proc.poll() is None


def test_a_connection_that_does_not_request_an_association_is_closed_after_the_request_timeout(tmp_path, listeners):
    running = listeners(tmp_path / "store", tmp_path / "listen.log", "--request-timeout", "1")
    with socket.create_connection(("127.0.0.1", running.port)) as sock:
        sock.settimeout(10)  # ten times the request timeout; pynetdicom's own default waits 30 s
        assert sock.recv(1) == b""  # closed by the listener


def test_per_address_limit_counts_associated_connections_and_spares_other_addresses(tmp_path, listeners):
    running = listeners(tmp_path / "store", tmp_path / "listen.log", "--max-per-address", "2")
    held = [_scu().associate("127.0.0.1", running.port, ae_title="RTCHECK") for _ in range(2)]
    try:
        assert all(a.is_established for a in held)
        third = _quick_scu().associate("127.0.0.1", running.port, ae_title="RTCHECK")
        assert not third.is_established  # closed at once: both connections of this address are associated
        other = _quick_scu().associate("127.0.0.1", running.port, ae_title="RTCHECK", bind_address=("127.0.0.2", 0))
        assert other.is_established
        other.release()
    finally:
        for assoc in held:
            assoc.release()
    _wait_for(lambda: running.lines("connection-dropped"), "the refusal's log line", proc=running.proc)
    assert "2 connections open from 127.0.0.1" in running.lines("connection-dropped")[0]
    assert _echo(running.port) == 0x0000  # the slots are free again


# -- 4. incomplete data sets ----------------------------------------------------------------------------------------------


def _send_files(port: int, paths) -> list[int]:
    """C-STORE files byte for byte as they are (pynetdicom otherwise decodes and re-encodes them, mending a cut)."""
    from pynetdicom import AE, _config
    from pynetdicom.sop_class import RTDoseStorage, RTPlanStorage

    ae = AE(ae_title="TPS")
    for sop_class in (RTDoseStorage, RTPlanStorage):
        ae.add_requested_context(sop_class, ExplicitVRLittleEndian)
    assoc = ae.associate("127.0.0.1", port, ae_title="RTCHECK")
    assert assoc.is_established
    chunked = _config.STORE_SEND_CHUNKED_DATASET
    _config.STORE_SEND_CHUNKED_DATASET = True
    try:
        return [int(assoc.send_c_store(path).Status) for path in paths]
    finally:
        _config.STORE_SEND_CHUNKED_DATASET = chunked
        assoc.release()


def test_a_data_set_that_does_not_decode_completely_is_refused_before_it_is_acknowledged(tmp_path, listeners):
    store = tmp_path / "store"
    running = listeners(store, tmp_path / "listen.log", protocol=_light(tmp_path))
    rs, rp, rd = _clone_set(SAMPLE, "CUT")
    for ds in (rp, rd):
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    whole_dose, whole_plan = tmp_path / "rd.dcm", tmp_path / "rp.dcm"
    rd.save_as(whole_dose, enforce_file_format=True)
    rp.save_as(whole_plan, enforce_file_format=True)
    cuts = []
    for source, fraction in ((whole_dose, 0.5), (whole_dose, 0.99), (whole_plan, 0.5), (whole_plan, 0.9)):
        data = source.read_bytes()
        cut = tmp_path / f"{source.stem}-{fraction}.dcm"
        cut.write_bytes(data[: int(len(data) * fraction)])  # past the file meta: pynetdicom reads it to send
        cuts.append(cut)
    short_pixels = rd.copy()
    short_pixels.Rows = int(rd.Rows) + 1  # Pixel Data one row short of the image it describes
    short = tmp_path / "short-pixels.dcm"
    short_pixels.save_as(short, enforce_file_format=True)
    cuts.append(short)

    assert _send_files(running.port, cuts) == [0xC210] * len(cuts)
    assert not [p for p in _all_files(store) if p.suffix == ".dcm"]
    refused = running.lines("refused")
    assert len(refused) == len(cuts) and all("status=0xC210" in line for line in refused)
    assert "(7FE0,0010) announces" in refused[0] and "incomplete Pixel Data" in refused[-1]
    assert _send_files(running.port, [whole_plan, whole_dose]) == [0, 0]  # the whole ones are stored


# -- 5. reports retried until written, and the status ----------------------------------------------------------------


def _status(store) -> str:
    done = subprocess.run([sys.executable, "-m", "rtcheck.cli", "listen", "--status", "--store", str(store)],
                          capture_output=True, text=True, timeout=LIMIT_S, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_reports_that_cannot_be_written_are_retried_until_they_are_and_the_status_says_why(tmp_path, listeners):
    store = tmp_path / "store"
    rs, rp, rd = _clone_set(SAMPLE, "RETRY")
    blocker = store / "RETRY" / rp.StudyInstanceUID / f"rtcheck-{rp.SOPInstanceUID}.xml"
    blocker.mkdir(parents=True)  # a folder where the JUnit report goes: every write of it fails, as on a full disk
    running = listeners(store, tmp_path / "listen.log", protocol=_light(tmp_path))
    late = _clone_set(SAMPLE, "LATE")
    assert _send(running.port, [rs, rp, rd, late[0], late[1]]) == [0] * 5
    _wait_for(lambda: len(running.lines("report-retry")) >= 2, "two retries", proc=running.proc)
    assert all(f"plan={rp.SOPInstanceUID}" in line for line in running.lines("report-retry"))
    assert "attempt=2" in running.lines("report-retry")[1]

    status = _status(store)
    [retrying] = [line for line in status.splitlines() if rp.SOPInstanceUID in line]
    assert "state=retrying" in retrying and "reports not written" in retrying and "source=listener" in retrying
    [waiting] = [line for line in status.splitlines() if late[1].SOPInstanceUID in line]
    assert "state=waiting" in waiting and "an RT Dose referencing the plan" in waiting
    assert status.splitlines()[-1] == 'status pending=2 listener=running'

    blocker.rmdir()  # space is back
    [report] = _wait_for(lambda: _reports(store), "the report once it can be written", proc=running.proc)
    assert json.loads(report.read_text(encoding="utf-8"))["verdict"] == "per_protocol"
    _wait_for(lambda: len(_status(store).splitlines()) == 2, "the status to drop the reported plan", proc=running.proc)
    assert running.terminate() == 0
    status = _status(store)  # no listener: the scan alone
    assert "state=waiting" in status and status.splitlines()[-1] == 'status pending=1 listener="not running"'


# -- 6. bounded stop --------------------------------------------------------------------------------------------------

STALLED_SENDER = textwrap.dedent(
    """
    import sys, time
    import pydicom
    from pynetdicom import AE
    from pynetdicom.sop_class import RTDoseStorage
    from pynetdicom.transport import AssociationSocket

    ds = pydicom.dcmread(sys.argv[2])
    send = AssociationSocket.send
    pdata = []

    def send_then_stall(self, data):
        if data[:1] == b"\\x04":  # P-DATA-TF
            pdata.append(1)
            if len(pdata) == 3:  # the command and part of the data set are out: stall inside this PDU, socket open
                self.socket.sendall(bytes(data[: len(data) // 2]))
                print("stalled", flush=True)
                time.sleep(600)
        return send(self, data)

    AssociationSocket.send = send_then_stall
    ae = AE(ae_title="TPS")
    ae.add_requested_context(RTDoseStorage, ds.file_meta.TransferSyntaxUID)
    assoc = ae.associate("127.0.0.1", int(sys.argv[1]), ae_title="RTCHECK")
    assert assoc.is_established
    assoc.send_c_store(ds)
    """
)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_stops_the_listener_in_bounded_time_while_a_sender_stalls(tmp_path, listeners, signum):
    store = tmp_path / "store"
    running = listeners(store, tmp_path / "listen.log")
    rd = _clone_set(SAMPLE, "STALLED")[2]
    dose_file = tmp_path / "rd.dcm"
    rd.save_as(dose_file)
    sender = subprocess.Popen([sys.executable, "-c", STALLED_SENDER, str(running.port), str(dose_file)],
                              stdout=subprocess.PIPE, text=True)
    try:
        ready, _, _ = select.select([sender.stdout], [], [], LIMIT_S)
        assert ready and sender.stdout.readline().strip() == "stalled"
        running.proc.send_signal(signum)
        started = time.monotonic()
        try:
            running.proc.wait(STOP_BOUND_S * 3)  # the documented bound, with a margin for a loaded machine
        except subprocess.TimeoutExpired:
            raise AssertionError(f"still running {STOP_BOUND_S * 3} s after the signal") from None
        assert running.proc.returncode == 0
        assert time.monotonic() - started < STOP_BOUND_S * 3
    finally:
        sender.kill()
        sender.wait()
    assert running.terminate() == 0
    assert not running.lines("stored")
    assert not [p for p in _all_files(store) if p.suffix == ".dcm"] and not _temp_files(tmp_path)
    [stopped] = running.lines("stopped")
    assert int(stopped.split("aborted=")[1].split(" ")[0]) >= 1  # the stalled association (and any port probe)
    assert_one_event_per_line(running.text(), as_json=False)


def test_listening_still_requires_port_protocol_and_arm(tmp_path):
    from click.testing import CliRunner

    from rtcheck.cli import main

    result = CliRunner().invoke(main, ["listen", "--store", str(tmp_path), "--protocol", "escc-induction-icrt-ccrt"])
    assert result.exit_code == 2 and "Missing option '--port' (required unless --status)" in result.output
    result = CliRunner().invoke(main, ["listen", "--store", str(tmp_path), "--status"])
    assert result.exit_code == 0 and result.output == 'status pending=0 listener="not running"\n'
