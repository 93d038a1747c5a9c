"""An arm whose course has phases (``phases:``, e.g. a sequential boost), checked against one RT Plan with several
fraction groups or a plan sum of several RT Plans: paired phase by phase, graded per phase and for the course;
a part of the plan with no phase, or a phase with no part of the plan, is a deviation (pydicom-written plans)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from cli_helpers import by_id, check_json, rtcheck
from dicom_factory import Case, RoiShape
from rtcheck.errors import ProtocolError
from rtcheck.protocol.schema import parse_protocol

PROTOCOL = str(Path(__file__).resolve().parent / "data" / "protocols" / "test-sequential-boost.yaml")
SEQUENTIAL = ["--protocol", PROTOCOL, "--arm", "sequential"]
ROIS = [RoiShape("PTV", radius_mm=12, z_range_mm=(-12, 12)), RoiShape("Cord", centre_xy_mm=(0, -30), radius_mm=4)]


def course(x, y, z):
    """A flat 51 Gy course dose (D95 % of the 50.4 Gy course is 101 %)."""
    return 51.0 + 0.0 * x


def group(number: int, fractions: int, dose_reference: int | None) -> Dataset:
    item = Dataset()
    item.FractionGroupNumber = number
    item.NumberOfFractionsPlanned = fractions
    item.NumberOfBeams = 0
    item.NumberOfBrachyApplicationSetups = 0
    if dose_reference is not None:
        ref = Dataset()
        ref.ReferencedDoseReferenceNumber = dose_reference
        item.ReferencedDoseReferenceSequence = Sequence([ref])
    return item


def grouped_plan(folder: Path, groups: list[tuple[int, float]]) -> Path:
    """One RT Plan with a fraction group per (fractions, Gy to the PTV), each naming its own dose reference."""
    case = Case(ROIS, dose=course, prescriptions=[("PTV", gy) for _, gy in groups], fractions=groups[0][0])
    first = case.plan.FractionGroupSequence[0]
    ref = Dataset()
    ref.ReferencedDoseReferenceNumber = 1
    first.ReferencedDoseReferenceSequence = Sequence([ref])
    for number, (fractions, _) in enumerate(groups[1:], start=2):
        case.plan.FractionGroupSequence.append(group(number, fractions, number))
    case.write(folder)
    return folder


def test_two_fraction_groups_pass_a_two_phase_arm(tmp_path):
    document = check_json(grouped_plan(tmp_path, [(25, 45.0), (3, 5.4)]), *SEQUENTIAL)
    checks = by_id(document)
    for phase, gy, fx in ((1, 45.0, 25), (2, 5.4, 3)):
        total = checks[f"rx-phase{phase}-ptv-total-dose"]
        assert total["value"] == pytest.approx(gy) and total["status"] == "per_protocol"
        assert f"phase {phase} " in total["message"] and f"is fraction group {phase}" in total["message"] and "by its fractions" in total["message"]
        assert checks[f"rx-phase{phase}-ptv-fractions"]["value"] == fx
        assert checks[f"rx-phase{phase}-ptv-dose-per-fraction"]["value"] == pytest.approx(1.8)
    # The course: both dose references of the PTV added up; dose per fraction is graded per phase only.
    assert checks["rx-ptv-total-dose"]["value"] == pytest.approx(50.4) and checks["rx-ptv-total-dose"]["status"] == "per_protocol"
    assert checks["rx-ptv-fractions"]["value"] == 28
    assert "rx-ptv-dose-per-fraction" not in checks
    assert not [c for c in checks if "unlisted" in c or "missing" in c]
    assert document["verdict"] == "per_protocol"


def test_a_plan_sum_of_two_plans_passes_a_two_phase_arm(tmp_path):
    folder = tmp_path / "course"
    phase1 = Case(ROIS, dose=lambda x, y, z: course(x, y, z) * 45 / 50.4, prescriptions=[("PTV", 45.0)], fractions=25, plan_label="PHASE1")
    boost = Case(ROIS, dose=lambda x, y, z: course(x, y, z) * 5.4 / 50.4, prescriptions=[("PTV", 5.4)], fractions=3,
                 plan_label="BOOST", frame_uid=phase1.frame_uid, study_uid=phase1.study_uid)
    boost.plan.ReferencedStructureSetSequence[0].ReferencedSOPInstanceUID = phase1.structure_set.SOPInstanceUID
    phase1.write(folder)
    boost.plan.save_as(folder / "RP_boost.dcm", enforce_file_format=True)
    boost.rt_dose.save_as(folder / "RD_boost.dcm", enforce_file_format=True)
    document = check_json(folder, *SEQUENTIAL, "--sum")
    checks = by_id(document)
    assert checks["rx-phase1-ptv-total-dose"]["value"] == pytest.approx(45.0)
    assert "is plan PHASE1" in checks["rx-phase1-ptv-total-dose"]["message"]
    assert checks["rx-phase2-ptv-total-dose"]["value"] == pytest.approx(5.4)
    assert "is plan BOOST" in checks["rx-phase2-ptv-total-dose"]["message"]
    assert checks["rx-ptv-total-dose"]["value"] == pytest.approx(50.4) and checks["rx-ptv-fractions"]["value"] == 28
    assert document["verdict"] == "per_protocol"
    # Without --sum each plan alone is a course missing a phase.
    separate = json.loads(rtcheck("check", folder, *SEQUENTIAL, "--format", "json").stdout)
    assert [d["verdict"] for d in separate] == ["deviation_unacceptable", "deviation_unacceptable"]
    assert all(any(c["id"].endswith("-missing") for c in d["checks"]) for d in separate)


def test_a_phase_without_fraction_group_is_a_deviation(tmp_path):
    document = check_json(grouped_plan(tmp_path, [(25, 45.0)]), *SEQUENTIAL)
    checks = by_id(document)
    missing = checks["rx-phase2-missing"]
    assert missing["status"] == "deviation_unacceptable" and missing["counts"] and missing["value"] == 0
    assert "phase 2 (boost): 5.4 Gy in 3 fx to PTV" in missing["message"] and "which the plan does not" in missing["message"]
    assert checks["rx-phase1-ptv-total-dose"]["status"] == "per_protocol"
    assert checks["rx-ptv-total-dose"]["status"] == "deviation_unacceptable"
    assert document["verdict"] == "deviation_unacceptable"


def test_a_fraction_group_without_phase_is_a_deviation(tmp_path):
    document = check_json(grouped_plan(tmp_path, [(25, 45.0), (3, 5.4), (2, 3.6)]), *SEQUENTIAL)
    checks = by_id(document)
    extra = checks["rx-unlisted-fraction-group-3"]
    assert extra["status"] == "deviation_unacceptable" and extra["value"] == 2 and extra["unit"] == "fx"
    assert "the plan prescribes fraction group 3 (2 fx: 3.6 Gy in 2 fx to 'PTV')" in extra["message"]
    assert "which arm sequential does not" in extra["message"]
    assert checks["rx-phase1-ptv-total-dose"]["status"] == checks["rx-phase2-ptv-total-dose"]["status"] == "per_protocol"
    assert document["verdict"] == "deviation_unacceptable"


def test_fraction_groups_in_another_order_are_paired_by_fractions(tmp_path):
    """The boost written as fraction group 1: the groups are paired by their fractions, not their order."""
    document = check_json(grouped_plan(tmp_path, [(3, 5.4), (25, 45.0)]), *SEQUENTIAL)
    checks = by_id(document)
    assert "phase 1 (elective) is fraction group 2 (paired by its fractions)" in checks["rx-phase1-ptv-total-dose"]["message"]
    assert checks["rx-phase1-ptv-total-dose"]["value"] == pytest.approx(45.0)
    assert document["verdict"] == "per_protocol"


def test_one_dose_reference_of_both_groups_states_no_dose_per_phase(tmp_path):
    """One PTV dose reference (50.4 Gy) named by both groups: each phase's dose is not stated by the plan (not
    evaluated, saying why), the fractions per phase and the course total are graded."""
    case = Case(ROIS, dose=course, prescriptions=[("PTV", 50.4)], fractions=25)
    first = case.plan.FractionGroupSequence[0]
    ref = Dataset()
    ref.ReferencedDoseReferenceNumber = 1
    first.ReferencedDoseReferenceSequence = Sequence([ref])
    case.plan.FractionGroupSequence.append(group(2, 3, 1))
    case.write(tmp_path)
    checks = by_id(check_json(tmp_path, *SEQUENTIAL))
    total = checks["rx-phase2-ptv-total-dose"]
    assert total["status"] == "not_evaluated" and "delivered by fraction groups 1, 2" in total["message"]
    assert checks["rx-phase2-ptv-fractions"]["value"] == 3 and checks["rx-phase2-ptv-fractions"]["status"] == "per_protocol"
    assert checks["rx-ptv-total-dose"]["value"] == pytest.approx(50.4) and checks["rx-ptv-total-dose"]["status"] == "per_protocol"


def test_arm_auto_chooses_an_arm_with_phases(tmp_path):
    document = check_json(grouped_plan(tmp_path, [(25, 45.0), (3, 5.4)]), "--protocol", PROTOCOL, "--arm", "auto")
    assert document["protocol"]["arm"] == "sequential"
    assert any("arm sequential chosen automatically" in n for n in document["notes"])
    missing = rtcheck("check", grouped_plan(tmp_path / "one", [(25, 45.0)]), "--protocol", PROTOCOL, "--arm", "auto")
    assert missing.exit_code == 2 and "rx-phase2-missing" in missing.stderr


# --------------------------------------------------------------------------- the protocol file


def document(arm: dict) -> dict:
    return {
        "schema": "rtcheck.protocol/1", "id": "t", "title": "t", "source": {"notes": "test"},
        "structures": {"PTV": {"role": "target", "aliases": ["PTV"]}},
        "arms": {"a": {"title": "a", "constraints": [], **arm}},
    }


def rx(gy: float, fractions: int, **more) -> dict:
    return {"target": "PTV", "total_dose_gy": gy, "fractions": fractions, "dose_per_fraction_gy": gy / fractions, "source": "s", **more}


def test_phases_are_read_with_course_prescriptions():
    arm = parse_protocol(document({"phases": [{"name": "one", "prescriptions": [rx(45, 25)]}, {"prescriptions": [rx(5.4, 3)]}]}), "f.yaml").arms["a"]
    assert [p.label for p in arm.phases] == ["phase 1 (one)", "phase 2"]
    assert [(p.total_dose_gy, p.fractions) for p in arm.prescriptions] == [(pytest.approx(50.4), 28)]
    assert parse_protocol(document({"prescriptions": [rx(50.4, 28)]}), "f.yaml").arms["a"].phases == ()


@pytest.mark.parametrize("arm, entry, words", [
    ({"phases": [{"prescriptions": [rx(45, 25)]}]}, "arms.a.phases", "two or more phases"),
    ({"prescriptions": [rx(45, 25)], "phases": [{"prescriptions": [rx(45, 25)]}] * 2}, "arms.a.phases", "not both"),
    ({"phases": [{"prescriptions": [rx(45, 25)]}, {"prescriptions": [], "name": "b"}]}, "arms.a.phases[1].prescriptions", "non-empty"),
    ({"phases": [{"prescriptions": [rx(45, 25)]}, {"prescriptions": [rx(5.4, 3)], "when": 2}]}, "arms.a.phases[1]", "unknown key(s): when"),
    ({"phases": [{"prescriptions": [rx(45, 25)]}, {"prescriptions": [rx(5.4, 3, target="GTV")]}]}, "arms.a.phases[1].prescriptions[0].target", "unknown structure"),
])
def test_bad_phases_name_the_entry(arm, entry, words):
    with pytest.raises(ProtocolError) as caught:
        parse_protocol(document(arm), "f.yaml")
    assert f"f.yaml: {entry}:" in str(caught.value) and words in str(caught.value)


# --------------------------------------------------------------------------- batch --sum


def course_plans(folder: Path, patient_id: str, labels: list[tuple[str, float, int, str]]) -> list[Case]:
    """Plans of one patient on one structure set: (label, Gy to the PTV, fractions, RTPlanDate) each; the dose of
    each is its share of the flat course dose.  Files are named so that their order is not the plans' dates."""
    cases: list[Case] = []
    for n, (label, gy, fractions, date) in enumerate(labels):
        first = cases[0] if cases else None
        case = Case(ROIS, dose=lambda x, y, z, gy=gy: course(x, y, z) * gy / 50.4, prescriptions=[("PTV", gy)], fractions=fractions,
                    plan_label=label, **({"frame_uid": first.frame_uid, "study_uid": first.study_uid} if first else {}))
        for ds in (case.plan, case.structure_set, case.rt_dose):
            ds.PatientID = patient_id
        case.plan.RTPlanDate, case.plan.RTPlanTime = date, "120000"
        if first is not None:
            case.plan.ReferencedStructureSetSequence[0].ReferencedSOPInstanceUID = first.structure_set.SOPInstanceUID
        else:
            case.structure_set.save_as(folder / "RS.dcm", enforce_file_format=True)
        folder.mkdir(parents=True, exist_ok=True)
        case.plan.save_as(folder / f"RP_{9 - n}.dcm", enforce_file_format=True)
        case.rt_dose.save_as(folder / f"RD_{9 - n}.dcm", enforce_file_format=True)
        cases.append(case)
    return cases


def test_batch_sum_groups_the_phase_plans_of_one_patient_into_one_course(tmp_path):
    roots = tmp_path / "in"
    (roots / "a").mkdir(parents=True)
    course_plans(roots / "a", "A", [("PHASE1", 45.0, 25, "20240101"), ("BOOST", 5.4, 3, "20240201")])
    (roots / "b").mkdir()
    course_plans(roots / "b", "B", [("P1", 45.0, 25, "20240101"), ("P2", 5.4, 3, "20240201"), ("REPLAN", 5.4, 3, "20240202")])
    grouped_plan(roots / "c", [(25, 45.0), (3, 5.4)])
    out = tmp_path / "out"
    result = rtcheck("batch", roots, *SEQUENTIAL, "--out", out, "--sum", "--jobs", "1")
    assert result.exit_code == 2, result.output  # patient B's plans cannot be grouped
    rows = {row["patient_id"]: row for row in json.loads((out / "summary.json").read_text())["plans"]}
    assert rows["A"]["plan_label"] == "PHASE1 + BOOST" and rows["A"]["verdict"] == "per_protocol"
    assert any("checked as one course, in this phase order" in n for n in rows["A"]["notes"])
    report = json.loads((out / rows["A"]["report_json"]).read_text())
    assert by_id(report)["rx-phase2-ptv-total-dose"]["value"] == pytest.approx(5.4) and by_id(report)["rx-ptv-fractions"]["value"] == 28
    assert rows["B"]["verdict"] == "error" and "3 RT Plans of patient 'B'" in rows["B"]["error"]
    assert "arm sequential has 2 phases" in rows["B"]["error"] and "ambiguous" in rows["B"]["error"]
    assert rows["TEST-1"]["verdict"] == "per_protocol"  # one plan with two fraction groups, checked alone
    # Without --sum every plan of A is a course missing a phase.
    plain = rtcheck("batch", roots / "a", *SEQUENTIAL, "--out", tmp_path / "plain", "--jobs", "1")
    assert plain.exit_code == 1
    assert rtcheck("batch", roots / "a", "--protocol", "escc-induction-icrt-ccrt", "--arm", "cr-pr", "--out", tmp_path / "x", "--sum").exit_code == 2
