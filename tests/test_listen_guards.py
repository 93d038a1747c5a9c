"""The listener's guards in process: connection gate, one object per SOP Instance UID, complete decoding, retries."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import pydicom
import pytest

from conftest import ROOT
from rtcheck.dicom.io import read_received_dataset
from rtcheck.errors import InputError
from rtcheck.net import arrivals
from rtcheck.net.arrivals import ArrivalWorker
from rtcheck.net.catalog import Catalog, describe_instance
from rtcheck.net.gate import ConnectionGate, ConnectionLimits
from rtcheck.net.instances import Identity, InstanceIndex

SAMPLE = ROOT / "sample_plans" / "sd-pd-compliant"
LIMIT_S = 60.0  # safety net only


@pytest.fixture
def pairs():
    """Connected socket pairs: the gate holds one end, the test reads the other to see whether it was closed."""
    made: list[tuple[socket.socket, socket.socket]] = []

    def make() -> tuple[socket.socket, socket.socket]:
        made.append(socket.socketpair())
        return made[-1]

    yield make
    for ours, theirs in made:
        ours.close()
        theirs.close()


def _closed(peer: socket.socket) -> bool:
    peer.settimeout(LIMIT_S)
    return peer.recv(1) == b""


class _Assoc:
    """Stands for a pynetdicom Association (the gate only compares identities)."""


def test_the_gate_makes_room_by_closing_silent_connections_and_refuses_when_all_have_associated(pairs):
    gate = ConnectionGate(ConnectionLimits(request_timeout_s=5, max_per_address=2, max_connections=3))
    a1, a2, a3, a4, a5, b1, c1 = (pairs() for _ in range(7))
    assert gate.admit(a1[0], "10.0.0.1") and gate.admit(a2[0], "10.0.0.1")
    assert gate.admit(a3[0], "10.0.0.1")  # the address is full: its oldest silent connection goes
    assert _closed(a1[1])
    talking = _Assoc()
    gate.opened(talking, a2[0])
    gate.requested(talking)  # a2 has sent its A-ASSOCIATE request: it stays
    assert gate.admit(a4[0], "10.0.0.1") and _closed(a3[1])
    late = _Assoc()
    gate.opened(late, a4[0])
    gate.requested(late)
    assert not gate.admit(a5[0], "10.0.0.1")  # both of the address's connections are associated
    assert gate.admit(b1[0], "10.0.0.2")  # another address: 3 open in all
    assert gate.admit(c1[0], "10.0.0.3") and _closed(b1[1])  # all full: the silent one of another address goes
    assert gate.open_count() == 3
    gate.closed(talking)
    assert gate.open_count() == 2
    gate.close_all()
    assert _closed(a4[1]) and _closed(c1[1])
    assert not gate.admit(pairs()[0], "10.0.0.4")  # stopping: nothing more


def _identity(**changes) -> Identity:
    values = {"sop_class_uid": "1.2.840.10008.5.1.4.1.1.481.5", "patient_id": "P", "study_uid": "1.2", "path": Path("a")}
    return Identity(**{**values, **changes})


def test_a_uid_may_be_stored_again_only_as_the_same_object():
    index = InstanceIndex()
    index.record("1.2.3", _identity())
    with index.storing("1.2.3", _identity()) as (conflict, replaced):
        assert conflict == "" and replaced is None
    with index.storing("1.2.3", _identity(path=Path("b"))) as (conflict, replaced):
        assert conflict == "" and replaced == Path("a")  # same object under another Modality: the old file goes
    for changes, word in (({"sop_class_uid": "1.2.840.10008.5.1.4.1.1.2"}, "SOP Class"), ({"patient_id": "Q"}, "patient"),
                          ({"study_uid": "1.3"}, "study")):
        with index.storing("1.2.3", _identity(**changes)) as (conflict, _):
            assert word in conflict and "already stored" in conflict
    with index.storing("9.9", _identity()) as (conflict, replaced):
        assert conflict == "" and replaced is None


def test_stores_of_one_uid_wait_for_each_other():
    index = InstanceIndex()
    inside = threading.Event()
    release = threading.Event()
    order: list[str] = []

    def first() -> None:
        with index.storing("1.2.3", _identity()):
            inside.set()
            assert release.wait(LIMIT_S)
            order.append("first")
            index.record("1.2.3", _identity())

    def second() -> None:
        with index.storing("1.2.3", _identity(sop_class_uid="1.2.840.10008.5.1.4.1.1.2")) as (conflict, _):
            order.append("second conflict" if conflict else "second free")

    threads = [threading.Thread(target=first)]
    threads[0].start()
    assert inside.wait(LIMIT_S)
    threads.append(threading.Thread(target=second))
    threads[1].start()
    time.sleep(0.05)
    assert order == []  # the second waits for the first
    release.set()
    for thread in threads:
        thread.join(LIMIT_S)
    assert order == ["first", "second conflict"]  # and then sees what the first stored


@pytest.mark.parametrize("name", ["RP.dcm", "RS.dcm", "RD.dcm"])
def test_a_data_set_cut_inside_any_element_is_refused_and_the_whole_one_accepted(name):
    """Cut in the middle of each top-level element's value, and inside each element's header.

    (A cut exactly between two elements leaves a shorter but well-formed data set: nothing in the bytes tells
    it apart; the listener then refuses it for what it lacks, e.g. its SOP Class UID.)
    """
    from io import BytesIO

    from pydicom.dataelem import RawDataElement

    data = (SAMPLE / name).read_bytes()
    assert read_received_dataset(data, name).SOPInstanceUID
    raws = [e for e in pydicom.dcmread(BytesIO(data))._dict.values() if isinstance(e, RawDataElement)]
    cuts = [e.value_tell + e.length // 2 for e in raws if e.length >= 2] + [e.value_tell - 1 for e in raws]
    assert len(cuts) > 2 * 10
    for cut in cuts:
        with pytest.raises(InputError):
            read_received_dataset(data[:cut], name)


def test_pixel_data_shorter_than_its_image_is_refused():
    ds = pydicom.dcmread(SAMPLE / "RD.dcm")
    ds.NumberOfFrames = int(ds.NumberOfFrames) + 1
    from io import BytesIO

    buffer = BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    with pytest.raises(InputError, match="incomplete Pixel Data"):
        read_received_dataset(buffer.getvalue(), "RD.dcm")


def test_a_check_whose_reports_cannot_be_written_is_retried_with_backoff_until_they_are(monkeypatch):
    monkeypatch.setattr(arrivals, "RETRY_FIRST_S", 0.01)
    catalog = Catalog()
    for name in ("RS.dcm", "RP.dcm", "RD.dcm"):
        catalog.add(describe_instance(pydicom.dcmread(SAMPLE / name, stop_before_pixels=True), SAMPLE / name))
    plan = str(pydicom.dcmread(SAMPLE / "RP.dcm", stop_before_pixels=True).SOPInstanceUID)
    attempts: list[float] = []
    statuses: list[list] = []
    done = threading.Event()

    def check(files) -> None:
        attempts.append(time.monotonic())
        if len(attempts) < 4:
            raise OSError(28, "No space left on device", "rtcheck-x.json")
        done.set()

    worker = ArrivalWorker(catalog, check, settle_s=0.0)
    worker.on_status(statuses.append)
    worker.start()
    try:
        worker.arrived([plan])
        assert done.wait(LIMIT_S)
        deadline = time.monotonic() + LIMIT_S
        while worker.status() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert worker.status() == []
    finally:
        assert worker.stop(LIMIT_S)
    gaps = [b - a for a, b in zip(attempts, attempts[1:])]
    assert len(attempts) == 4 and gaps[0] >= 0.01 and gaps[1] >= 0.02 and gaps[2] >= 0.04  # doubling
    retrying = [s for states in statuses for s in states if s.state in ("retrying", "checking") and s.attempts]
    assert retrying and "No space left on device: rtcheck-x.json" in retrying[0].reason


def test_a_plan_falling_due_while_an_instance_is_catalogued_is_checked_once_with_it(tmp_path):
    """The worker takes no plan between cataloguing an instance and marking its plans (the race that checked a set
    twice under load: once seeing the new dose, once more because of it)."""
    catalog = Catalog()
    names = ("RS.dcm", "RP.dcm", "RD.dcm")
    headers = {n: pydicom.dcmread(SAMPLE / n, stop_before_pixels=True) for n in names}
    for name in names[:2]:
        catalog.add(describe_instance(headers[name], SAMPLE / name))
    plan = str(headers["RP.dcm"].SOPInstanceUID)
    checked: list[list[Path]] = []
    worker = ArrivalWorker(catalog, lambda files: checked.append(files.paths), settle_s=0.05)
    worker.start()
    try:
        worker.arrived([plan])  # falls due 0.05 s from now: while the dose below is being catalogued

        def add_dose() -> list[str]:
            time.sleep(0.3)
            assert worker.status()[0].state == "settling"  # not taken meanwhile
            return catalog.add(describe_instance(headers["RD.dcm"], SAMPLE / "RD.dcm"))

        worker.stored(add_dose)
        deadline = time.monotonic() + LIMIT_S
        while (worker.pending() or not checked) and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.2)  # four settle times: a second check would have begun
    finally:
        assert worker.stop(LIMIT_S)
    assert len(checked) == 1 and SAMPLE / "RD.dcm" in checked[0]
