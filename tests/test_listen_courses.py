"""`rtcheck listen --sum`: the phase plans of one course (a plan and its sequential boost, sent as two RT Plans)
are checked as one course once every phase has arrived and settled, grouped as `batch --sum` groups them.

The listener runs as a real process on loopback and pynetdicom sends pydicom-written plans (tests/test_phases.py's
fixtures); every wait is bounded by test_listen's safety limit.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pydicom
import pytest

from cli_helpers import by_id, run_process
from rtcheck.net.catalog import Catalog, CourseFiles, PlanFiles, describe_instance
from rtcheck.net.courses import CourseRule
from test_listen import _all_files, _reports, _send, _wait_for, listeners  # noqa: F401 - listeners is a fixture
from test_phases import PROTOCOL, course_plans, grouped_plan

PHASES = [("PHASE1", 45.0, 25, "20240101"), ("BOOST", 5.4, 3, "20240201")]


def _course(folder: Path, patient: str, labels=PHASES) -> list[list[pydicom.Dataset]]:
    """Per plan, the data sets to send (the structure set with the first plan only)."""
    folder.mkdir(parents=True)
    cases = course_plans(folder, patient, labels)
    return [[*([case.structure_set] if n == 0 else []), case.plan, case.rt_dose] for n, case in enumerate(cases)]


def _start(listeners, tmp_path: Path, *args: str, settle: float = 0.5):
    return listeners(tmp_path / "store", tmp_path / "listen.log", "--sum", *args, protocol=PROTOCOL, arm="sequential", settle=settle)


def _status(store: Path) -> str:
    done = run_process("listen", "--status", "--store", store)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize("boost_first", [False, True], ids=["phase1-first", "boost-first"])
def test_two_phase_plans_in_either_order_give_one_course_report(tmp_path, listeners, boost_first):
    running = _start(listeners, tmp_path)
    store = running.store
    phase1, boost = _course(tmp_path / "files", "COURSE")
    if boost_first:  # the structure set travels with whichever plan comes first
        phase1, boost = phase1[1:], [phase1[0], *boost]
    first, second = (boost, phase1) if boost_first else (phase1, boost)
    assert _send(running.port, first) == [0] * len(first)
    [waiting] = _wait_for(lambda: running.lines("waiting"), "the lone phase to wait for the other", proc=running.proc)
    assert "the RT Plan of 1 more phase (arm sequential has 2 phases" in waiting
    assert not _reports(store)  # a phase alone is not reported
    assert _send(running.port, second) == [0] * len(second)

    [checked] = _wait_for(lambda: running.lines("checked"), "the course's check", proc=running.proc)
    plan1, plan2 = (ds.SOPInstanceUID for ds in (phase1[-2], boost[-2]))
    assert f"plan={plan1}" in checked and f"course={plan1}+{plan2}" in checked and "verdict=per_protocol" in checked
    [report] = _reports(store)
    assert report.name == f"rtcheck-course-{plan1}.json"
    assert report.parent == store / "COURSE" / phase1[-2].StudyInstanceUID  # beside the first phase's plan
    assert [p.name for p in _reports(store, ".xml")] == [f"rtcheck-course-{plan1}.xml"]
    document = json.loads(report.read_text(encoding="utf-8"))
    checks = by_id(document)
    assert document["verdict"] == "per_protocol"
    assert checks["rx-phase1-ptv-total-dose"]["value"] == pytest.approx(45.0) and "is plan PHASE1" in checks["rx-phase1-ptv-total-dose"]["message"]
    assert checks["rx-phase2-ptv-total-dose"]["value"] == pytest.approx(5.4) and "is plan BOOST" in checks["rx-phase2-ptv-total-dose"]["message"]
    assert checks["rx-ptv-total-dose"]["value"] == pytest.approx(50.4) and checks["rx-ptv-fractions"]["value"] == 28
    assert "pending=0" in _status(store)
    assert running.terminate() == 0
    assert len(running.lines("checked")) == 1


def test_a_lone_phase_is_listed_as_waiting_for_the_other(tmp_path, listeners):
    running = _start(listeners, tmp_path)
    [phase1, _boost] = _course(tmp_path / "files", "HALF")
    assert _send(running.port, phase1) == [0, 0, 0]
    plan = phase1[1].SOPInstanceUID
    _wait_for(lambda: running.lines("waiting"), "the lone phase to wait", proc=running.proc)
    status = _wait_for(lambda: text if "1 more phase" in (text := _status(running.store)) else "", "the status to say why")
    [line] = [line for line in status.splitlines() if line.startswith("pending ")]
    assert f"plan_uid={plan}" in line and "state=waiting" in line
    assert "lacks the RT Plan of 1 more phase (arm sequential has 2 phases; received 1 of patient 'HALF'" in line
    assert "pending=1" in status and "listener=running" in status
    assert not _reports(running.store)
    assert running.terminate() == 0


def test_three_plans_for_a_two_phase_arm_get_an_error_report_saying_why(tmp_path, listeners):
    running = _start(listeners, tmp_path)
    sets = _course(tmp_path / "files", "REPLAN", [*PHASES, ("REPLAN", 5.4, 3, "20240202")])
    assert _send(running.port, [ds for s in sets for ds in s]) == [0] * 7
    [failed] = _wait_for(lambda: running.lines("check-failed"), "the course's error", proc=running.proc)
    uids = [s[-2].SOPInstanceUID for s in sets]
    [report] = _reports(running.store)
    assert report.name == f"rtcheck-course-{uids[0]}.json"
    document = json.loads(report.read_text(encoding="utf-8"))
    assert document["schema"] == "rtcheck.listen-error/1" and document["verdict"] is None
    assert document["course"]["plan_uids"] == uids
    assert "3 RT Plans of patient 'REPLAN'" in document["error"] and "arm sequential has 2 phases" in document["error"]
    assert "ambiguous" in document["error"] and f"course={'+'.join(uids)}" in failed
    assert not _reports(running.store, ".xml")
    assert running.terminate() == 0


def test_a_course_stored_before_a_stop_is_checked_once_after_the_restart(tmp_path, listeners):
    first = _start(listeners, tmp_path, settle=600)  # never settles while this one runs
    sets = _course(tmp_path / "files", "RESTART")
    assert _send(first.port, [ds for s in sets for ds in s]) == [0] * 5
    assert first.terminate() == 0
    assert "pending_plans=2" in first.lines("stopped")[0] and not _reports(first.store)

    second = _start(listeners, tmp_path)
    assert "to_check=2" in second.lines("resumed")[-1]
    _wait_for(lambda: second.lines("checked"), "the course's check after the restart", proc=second.proc)
    assert [p.name for p in _reports(second.store)] == [f"rtcheck-course-{sets[0][1].SOPInstanceUID}.json"]
    assert second.terminate() == 0
    assert len(second.lines("checked")) == 1

    third = _start(listeners, tmp_path)  # the course report is current: nothing to do
    assert "to_check=0" in third.lines("resumed")[-1]
    assert third.terminate() == 0


def test_listen_sum_against_an_arm_without_phases_is_a_usage_error(tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    done = run_process("listen", "--port", port, "--store", tmp_path / "s", "--protocol", "escc-induction-icrt-ccrt",
                       "--arm", "sd-pd", "--sum")
    assert done.returncode == 2
    assert "--sum: arm sd-pd of escc-induction-icrt-ccrt has no phases; plans are grouped into courses only" in done.stderr
    assert not (tmp_path / "s").exists()


# --------------------------------------------------------------------------- the grouping, without the network


def _catalog(*folders: Path) -> Catalog:
    catalog = Catalog()
    for folder in folders:
        for path in sorted(folder.glob("*.dcm")):
            catalog.add(describe_instance(pydicom.dcmread(path, stop_before_pixels=True), path))
    return catalog


def test_course_rule_units(tmp_path):
    rule = CourseRule(frozenset({2}), "sequential")
    grouped = grouped_plan(tmp_path / "grouped", [(25, 45.0), (3, 5.4)])  # the whole course in one plan
    [plan] = _catalog(grouped).plans()
    alone = rule.unit_of(_catalog(grouped), plan.sop_instance_uid)
    assert isinstance(alone, PlanFiles) and alone.missing == ""  # checked alone, as batch --sum does

    (tmp_path / "course").mkdir()
    cases = course_plans(tmp_path / "course", "U", PHASES)
    catalog = _catalog(tmp_path / "course")
    unit = rule.unit_of(catalog, cases[1].plan.SOPInstanceUID)
    assert isinstance(unit, CourseFiles) and unit.missing == "" and unit.error == ""
    assert unit.plan_uids == (cases[0].plan.SOPInstanceUID, cases[1].plan.SOPInstanceUID)  # phase order by RTPlanDate
    assert rule.unit_of(catalog, "1.2.3") is None

    (tmp_path / "course" / "RD_8.dcm").unlink()  # the boost's dose
    lacking = rule.unit_of(_catalog(tmp_path / "course"), cases[0].plan.SOPInstanceUID)
    assert isinstance(lacking, CourseFiles) and "an RT Dose referencing the plan (for plan BOOST" in lacking.missing

    three = CourseRule(frozenset({3}), "three-phase")
    unit = three.unit_of(catalog, cases[0].plan.SOPInstanceUID)
    assert isinstance(unit, CourseFiles) and "the RT Plan of 1 more phase (arm three-phase has 3 phases; received 2" in unit.missing

    no_frame = tmp_path / "noframe"
    no_frame.mkdir()
    [case] = course_plans(no_frame, "V", PHASES[:1])
    ds = pydicom.dcmread(no_frame / "RP_9.dcm")
    del ds.FrameOfReferenceUID
    ds.save_as(no_frame / "RP_9.dcm")
    unit = rule.unit_of(_catalog(no_frame), case.plan.SOPInstanceUID)
    assert isinstance(unit, CourseFiles) and "lacks a Frame of Reference UID: it cannot be grouped into a course" in unit.error
