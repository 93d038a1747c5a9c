"""The listener's settle timer and checking thread: each settled arrival is checked exactly once."""

from __future__ import annotations

import threading
import time

import pydicom

from conftest import ROOT
from rtcheck.net.arrivals import ArrivalWorker
from rtcheck.net.catalog import Catalog, PlanFiles, describe_instance

SAMPLE = ROOT / "sample_plans" / "sd-pd-compliant"
LIMIT_S = 60.0  # safety net only


def _catalog() -> tuple[Catalog, str]:
    catalog = Catalog()
    for name in ("RS.dcm", "RP.dcm", "RD.dcm"):
        catalog.add(describe_instance(pydicom.dcmread(SAMPLE / name, stop_before_pixels=True), SAMPLE / name))
    return catalog, str(pydicom.dcmread(SAMPLE / "RP.dcm", stop_before_pixels=True).SOPInstanceUID)


def _idle(worker: ArrivalWorker) -> None:
    """Wait until nothing is pending or being checked."""
    deadline = time.monotonic() + LIMIT_S
    while worker.pending() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert worker.pending() == []


class Recorder:
    """A check that records its calls and, while ``hold`` is clear, blocks inside the check."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.inside = threading.Event()
        self.hold = threading.Event()
        self.hold.set()
        self.changed = threading.Condition()

    def __call__(self, files: PlanFiles) -> None:
        self.inside.set()
        assert self.hold.wait(LIMIT_S)
        with self.changed:
            self.calls.append(files.plan.sop_instance_uid)
            self.changed.notify_all()

    def wait_for(self, count: int) -> None:
        with self.changed:
            assert self.changed.wait_for(lambda: len(self.calls) >= count, LIMIT_S), self.calls


def test_arrivals_within_the_settle_time_make_one_check():
    catalog, plan = _catalog()
    check = Recorder()
    worker = ArrivalWorker(catalog, check, settle_s=0.3)
    worker.start()
    try:
        for _ in range(5):  # a plan, its structure set and doses arriving one after the other
            worker.arrived([plan])
        check.wait_for(1)
        _idle(worker)  # nothing left to check: no second call can come
        assert check.calls == [plan]
    finally:
        assert worker.stop(LIMIT_S)


def test_a_re_export_during_the_check_is_checked_after_it():
    catalog, plan = _catalog()
    check = Recorder()
    check.hold.clear()
    worker = ArrivalWorker(catalog, check, settle_s=0.0)
    worker.start()
    try:
        worker.arrived([plan])
        assert check.inside.wait(LIMIT_S)  # the first check is running (and held)
        worker.arrived([plan])  # the plan is exported again meanwhile
        assert worker.pending() == [plan, plan]  # once waiting, once being checked
        check.hold.set()
        check.wait_for(2)
        _idle(worker)
        assert check.calls == [plan, plan]
    finally:
        assert worker.stop(LIMIT_S)


def test_an_incomplete_set_is_not_checked_until_what_it_lacks_arrives(tmp_path):
    catalog = Catalog()
    plan = pydicom.dcmread(SAMPLE / "RP.dcm", stop_before_pixels=True)
    catalog.add(describe_instance(plan, tmp_path / "rp"))
    catalog.add(describe_instance(pydicom.dcmread(SAMPLE / "RS.dcm", stop_before_pixels=True), tmp_path / "rs"))
    check = Recorder()
    worker = ArrivalWorker(catalog, check, settle_s=0.0)
    worker.start()
    try:
        worker.arrived([plan.SOPInstanceUID])
        _idle(worker)  # taken off the list: found incomplete
        assert check.calls == []
        dose = pydicom.dcmread(SAMPLE / "RD.dcm", stop_before_pixels=True)
        worker.arrived(catalog.add(describe_instance(dose, tmp_path / "rd")))
        check.wait_for(1)
        assert check.calls == [plan.SOPInstanceUID]
    finally:
        assert worker.stop(LIMIT_S)
