"""Several RT Doses of one plan, read by DoseSummationType as PS3.3 C.8.8.3 defines it (rtcheck.dicom.summation):
PLAN + BEAM doses, setup beams without dose, FRACTION doses of several fraction groups, and the prior course's
dose; pydicom-written cases."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from cli_helpers import rtcheck
from dicom_factory import Case, RoiShape
from rtcheck.dicom.dose import load_dose, resampled_sum

ROOT = Path(__file__).resolve().parents[1]
CR_PR = ["--protocol", "escc-induction-icrt-ccrt", "--arm", "cr-pr"]
ROIS = [RoiShape("PTV", radius_mm=12, z_range_mm=(-12, 12))]


def course(x, y, z):
    """A smooth course dose (Gy): 50 Gy at the origin, falling off sideways."""
    return 50.0 + 0.2 * x - 0.005 * (x**2 + y**2)


def dvh_json(*args) -> dict:
    result = rtcheck("dvh", *args, "--format", "json")
    assert result.exit_code == 0, (result.stderr, result.exception)
    return {row["name"]: row for row in json.loads(result.stdout)["structures"]}


def add_beam(case: Case, number: int, *, delivery: str = "TREATMENT", group: int = 1, beam_dose: float | None = 1.0) -> None:
    """Add beam ``number`` (Treatment Delivery Type ``delivery``) to the plan and to its fraction group ``group``."""
    beam = Dataset()
    beam.BeamNumber = number
    beam.BeamName = f"B{number}"
    beam.BeamType = "STATIC"
    beam.RadiationType = "PHOTON"
    beam.TreatmentDeliveryType = delivery
    case.plan.BeamSequence.append(beam)
    fg = next(g for g in case.plan.FractionGroupSequence if g.FractionGroupNumber == group)
    ref = Dataset()
    ref.ReferencedBeamNumber = number
    if beam_dose is not None:
        ref.BeamDose = beam_dose
    fg.ReferencedBeamSequence.append(ref)
    fg.NumberOfBeams = len(fg.ReferencedBeamSequence)


def dose_of(case: Case, dose, summation: str, *, beams: tuple[int, ...] = (), group: int | None = None, **grid) -> Dataset:
    """An RT Dose of ``case``'s plan and frame holding ``dose`` (a function of x, y, z in mm -> Gy)."""
    other = Case(ROIS, dose=dose, frame_uid=case.frame_uid, **grid)
    ds = other.rt_dose
    ds.ReferencedRTPlanSequence[0].ReferencedSOPInstanceUID = case.plan.SOPInstanceUID
    ds.DoseSummationType = summation
    if group is not None or beams:
        fg = Dataset()
        fg.ReferencedFractionGroupNumber = group or 1
        if beams:
            refs = []
            for number in beams:
                ref = Dataset()
                ref.ReferencedBeamNumber = number
                refs.append(ref)
            fg.ReferencedBeamSequence = Sequence(refs)
        ds.ReferencedRTPlanSequence[0].ReferencedFractionGroupSequence = Sequence([fg])
    return ds


def save(ds: Dataset, path: Path) -> Path:
    ds.save_as(path, enforce_file_format=True)
    return path


# --------------------------------------------------------------------------- PLAN with BEAM doses


def test_plan_dose_with_beam_doses_uses_the_plan_dose_and_reports_the_beam_sum_difference(tmp_path):
    """RayStation/Eclipse export the PLAN dose with per-beam BEAM doses: the PLAN dose is used; the BEAM sum, 0.5 Gy
    too high where x > 20 mm, is reported as its largest and D2 difference in % of the PLAN maximum."""
    case = Case(ROIS, dose=course)
    add_beam(case, 2)
    case.write(tmp_path)
    save(dose_of(case, lambda x, y, z: 0.6 * course(x, y, z), "BEAM", beams=(1,)), tmp_path / "RD_beam1.dcm")
    save(dose_of(case, lambda x, y, z: 0.4 * course(x, y, z) + np.where(x > 20, 0.5, 0.0), "BEAM", beams=(2,)), tmp_path / "RD_beam2.dcm")
    alone = tmp_path / "alone"
    alone.mkdir()
    for name in ("RP.dcm", "RS.dcm", "RD.dcm"):
        shutil.copy(tmp_path / name, alone / name)

    assert dvh_json(tmp_path)["PTV"] == dvh_json(alone)["PTV"]
    result = rtcheck("check", tmp_path, *CR_PR, "--format", "json")
    assert result.exit_code in (0, 1), result.stderr
    document = json.loads(result.stdout)
    [comparison] = document["dose_comparisons"]
    plan_max = float(pydicom.dcmread(tmp_path / "RD.dcm").DoseGridScaling) * 60000
    expected = 0.5 / plan_max * 100
    assert comparison["used"] == "whole-plan" and comparison["compared"] == "BEAM doses"
    assert comparison["max_difference_pct"] == pytest.approx(expected, abs=0.01)
    # x > 20 mm holds 10 of the grid's 41 columns: far more than 2 % of the voxels.
    assert comparison["d2_difference_pct"] == pytest.approx(expected, abs=0.01)
    assert comparison["covered_pct"] == 100.0
    assert sorted(Path(p).name for p in comparison["compared_paths"]) == ["RD_beam1.dcm", "RD_beam2.dcm"]
    assert any("sum of the BEAM doses differs from it by at most" in note for note in document["notes"])
    assert [Path(p).name for p in document["inputs"]] == ["RP.dcm", "RS.dcm", "RD.dcm"]


def test_plan_dose_with_beam_doses_of_some_beams_only_says_they_are_not_compared(tmp_path):
    case = Case(ROIS, dose=course)
    add_beam(case, 2)
    case.write(tmp_path)
    save(dose_of(case, course, "BEAM", beams=(1,)), tmp_path / "RD_beam1.dcm")
    result = rtcheck("check", tmp_path, *CR_PR, "--format", "json")
    document = json.loads(result.stdout)
    [comparison] = document["dose_comparisons"]
    assert comparison["max_difference_pct"] is None
    assert "treatment beams [2] have no dose" in comparison["reason"]


def test_a_setup_beam_needs_no_dose(tmp_path):
    """A kV setup beam (Treatment Delivery Type SETUP) beside the treatment beams: BEAM doses of the treatment
    beams are the plan's whole dose; a treatment beam without its dose is still refused."""
    case = Case(ROIS, dose=course)
    add_beam(case, 2)
    add_beam(case, 99, delivery="SETUP", beam_dose=None)
    case.write(tmp_path / "plan")
    (tmp_path / "plan" / "RD.dcm").unlink()
    save(dose_of(case, lambda x, y, z: 0.7 * course(x, y, z), "BEAM", beams=(1,)), tmp_path / "plan" / "RD1.dcm")
    save(dose_of(case, lambda x, y, z: 0.3 * course(x, y, z), "BEAM", beams=(2,)), tmp_path / "plan" / "RD2.dcm")
    whole = Case(ROIS, dose=course)
    whole.write(tmp_path / "whole")
    summed, single = dvh_json(tmp_path / "plan")["PTV"], dvh_json(tmp_path / "whole")["PTV"]
    for key in ("mean_gy", "min_gy", "max_gy"):
        assert summed[key] == pytest.approx(single[key], abs=0.01)
    (tmp_path / "plan" / "RD2.dcm").unlink()
    result = rtcheck("dvh", tmp_path / "plan")
    assert result.exit_code == 2
    assert "treatment beams [2] have no dose" in result.stderr and "99]" not in result.stderr


# --------------------------------------------------------------------------- fraction groups


def two_group_case() -> Case:
    """A plan of 25 fx (group 1, beam 1) and a sequential boost of 3 fx (group 2, beam 2)."""
    case = Case(ROIS, dose=course, fractions=25)
    boost = Dataset()
    boost.FractionGroupNumber = 2
    boost.NumberOfFractionsPlanned = 3
    boost.NumberOfBeams = 0
    boost.NumberOfBrachyApplicationSetups = 0
    boost.ReferencedBeamSequence = Sequence()
    case.plan.FractionGroupSequence.append(boost)
    add_beam(case, 2, group=2)
    return case


def test_fraction_doses_of_two_fraction_groups_are_summed(tmp_path):
    case = two_group_case()
    plan = tmp_path / "plan"
    case.write(plan)
    (plan / "RD.dcm").unlink()
    save(dose_of(case, course, "FRACTION", group=1), plan / "RD_group1.dcm")
    boost = save(dose_of(case, lambda x, y, z: np.full_like(x, 6.0), "FRACTION", group=2), plan / "RD_group2.dcm")
    reference = tmp_path / "reference"
    Case(ROIS, dose=lambda x, y, z: course(x, y, z) + 6.0).write(reference)
    summed, expected = dvh_json(plan)["PTV"], dvh_json(reference)["PTV"]
    for key in ("mean_gy", "min_gy", "max_gy"):
        assert summed[key] == pytest.approx(expected[key], abs=0.01)
    assert "summed the doses of fraction groups 1, 2" in rtcheck("dvh", plan).stderr
    boost.unlink()
    result = rtcheck("dvh", plan)
    assert result.exit_code == 2 and "fraction group(s) 2" in result.stderr and "have no RT Dose" in result.stderr


def test_a_session_dose_per_fraction_group_is_scaled_by_its_own_fractions(tmp_path):
    case = two_group_case()
    plan = tmp_path / "plan"
    case.write(plan)
    (plan / "RD.dcm").unlink()
    save(dose_of(case, lambda x, y, z: course(x, y, z) / 25, "FRACTION_SESSION", group=1), plan / "RD_group1.dcm")
    save(dose_of(case, lambda x, y, z: np.full_like(x, 2.0), "FRACTION_SESSION", group=2), plan / "RD_group2.dcm")
    reference = tmp_path / "reference"
    Case(ROIS, dose=lambda x, y, z: course(x, y, z) + 6.0).write(reference)
    assert dvh_json(plan)["PTV"]["mean_gy"] == pytest.approx(dvh_json(reference)["PTV"]["mean_gy"], abs=0.01)


def test_doses_on_different_grids_are_added_where_both_are_known(tmp_path):
    """resampled_sum: the second grid (shifted 1 mm, narrower) is resampled with the one sampler onto the first's
    centres, which are kept only where the second grid covers them."""
    first = Case(ROIS, dose=lambda x, y, z: np.full_like(x, 10.0))
    second = Case(ROIS, dose=lambda x, y, z: 3.0 + 0.1 * x, frame_uid=first.frame_uid,
                  grid_min_mm=(-21.0, -41.0, -31.0), grid_max_mm=(21.0, 41.0, 31.0))
    paths = [save(first.rt_dose, tmp_path / "a.dcm"), save(second.rt_dose, tmp_path / "b.dcm")]
    total, notes = resampled_sum([load_dose(p) for p in paths])
    assert total.x_mm[0] == -22.0 and total.x_mm[-1] == 22.0  # the centres on or within its extent, [-22, 22] mm
    assert total.y_mm.size == 41 and total.z_mm.size == 31
    np.testing.assert_allclose(total.dose_gy[0, 0, 1:-1], 13.0 + 0.1 * total.x_mm[1:-1], atol=1e-3)
    assert total.dose_gy[0, 0, 0] == pytest.approx(13.0 - 2.1, abs=1e-3)  # the edge voxel's value (21 mm), no extrapolation
    assert any("resampled" in n for n in notes) and any("covers" in n for n in notes)


# --------------------------------------------------------------------------- the prior course's dose


SAMPLE = ROOT / "sample_plans" / "reirradiation-cord-cumulative"
REIRRADIATION = ["--protocol", "escc-regional-recurrence", "--arm", "re-irradiation"]


def _cumulative(sample: Path, prior: Path, fractions: int = 30):
    result = rtcheck("check", sample, *REIRRADIATION, "--prior-dose", prior, "--prior-fractions", fractions, "--format", "json")
    assert result.exit_code in (0, 1), result.stderr
    document = json.loads(result.stdout)
    return next(c for c in document["checks"] if c["id"] == "cord-cumulative-eqd2"), document["notes"]


def test_prior_session_dose_is_multiplied_by_the_prior_fractions(tmp_path):
    """The sample's prior course (30 fx) rewritten as one session's dose gives the same cumulative EQD2."""
    prior = SAMPLE / "prior" / "RD.dcm"
    ds = pydicom.dcmread(prior)
    ds.DoseSummationType = "FRACTION_SESSION"
    ds.DoseGridScaling = f"{float(ds.DoseGridScaling) / 30:.10g}"
    session = save(ds, tmp_path / "RD_session.dcm")
    expected, _ = _cumulative(SAMPLE, prior)
    found, notes = _cumulative(SAMPLE, session)
    assert found["value"] == pytest.approx(expected["value"], abs=0.01)
    assert any("FRACTION_SESSION (one session) x 30 fractions (--prior-fractions)" in n for n in notes)


@pytest.mark.parametrize("summation", ["BEAM", "BEAM_SESSION", "CONTROL_POINT", "RECORD"])
def test_prior_dose_of_some_beams_or_not_a_course_is_refused(tmp_path, summation):
    ds = pydicom.dcmread(SAMPLE / "prior" / "RD.dcm")
    ds.DoseSummationType = summation
    prior = save(ds, tmp_path / "RD.dcm")
    result = rtcheck("check", SAMPLE, *REIRRADIATION, "--prior-dose", prior, "--prior-fractions", 30)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"rtcheck: error: {prior}: ") and summation in result.stderr


# --------------------------------------------------------------------------- two plans as one course (--sum)


def course_plans(tmp_path: Path) -> tuple[Path, Case, Case]:
    """Phase 1 (PTV 45 Gy / 25 fx) and a boost plan (PTV 5.4 Gy / 3 fx) on one structure set: 50.4 Gy / 28 fx."""
    rois = [RoiShape("PTV", radius_mm=12, z_range_mm=(-12, 12))]
    phase1 = Case(rois, dose=lambda x, y, z: course(x, y, z) * 45 / 50.4, prescriptions=[("PTV", 45.0)], fractions=25, plan_label="PHASE1")
    phase2 = Case(rois, dose=lambda x, y, z: course(x, y, z) * 5.4 / 50.4, prescriptions=[("PTV", 5.4)], fractions=3,
                  plan_label="BOOST", frame_uid=phase1.frame_uid, study_uid=phase1.study_uid)
    phase2.plan.ReferencedStructureSetSequence[0].ReferencedSOPInstanceUID = phase1.structure_set.SOPInstanceUID
    folder = tmp_path / "course"
    phase1.write(folder)
    save(phase2.plan, folder / "RP_boost.dcm")
    save(phase2.rt_dose, folder / "RD_boost.dcm")
    return folder, phase1, phase2


def test_two_plans_are_checked_as_one_course_with_sum(tmp_path):
    folder, _, _ = course_plans(tmp_path)
    single = tmp_path / "single"
    Case(ROIS, dose=course).write(single)
    result = rtcheck("check", folder, *CR_PR, "--sum", "--format", "json")
    assert result.exit_code in (0, 1), result.stderr
    document = json.loads(result.stdout)
    checks = {c["id"]: c for c in document["checks"]}
    assert checks["rx-ptv-total-dose"]["value"] == pytest.approx(50.4) and checks["rx-ptv-total-dose"]["status"] == "per_protocol"
    assert checks["rx-ptv-fractions"]["value"] == 28 and checks["rx-ptv-fractions"]["status"] == "per_protocol"
    assert "phase 1 (PHASE1)" in checks["rx-ptv-total-dose"]["message"] and "phase 2 (BOOST)" in checks["rx-ptv-total-dose"]["message"]
    assert document["plan"]["fractions"] == 28
    summed = next(s for s in document["structures"] if s["structure"] == "PTV")
    alone = dvh_json(single)["PTV"]
    assert summed["mean_gy"] == pytest.approx(alone["mean_gy"], abs=0.01)
    assert summed["max_gy"] == pytest.approx(alone["max_gy"], abs=0.01)
    assert any("the sum of the 2 plans' doses" in n for n in document["notes"])
    # Without --sum each plan is checked alone, and neither is the course.
    separate = json.loads(rtcheck("check", folder, *CR_PR, "--format", "json").stdout)
    assert [d["verdict"] for d in separate] == ["deviation_unacceptable", "deviation_unacceptable"]


def test_a_multi_plan_dose_of_both_plans_is_the_course_dose(tmp_path):
    folder, phase1, phase2 = course_plans(tmp_path)
    (folder / "RD.dcm").unlink()
    (folder / "RD_boost.dcm").unlink()
    multi = dose_of(phase1, course, "MULTI_PLAN")
    second = Dataset()
    second.ReferencedSOPClassUID = phase2.plan.SOPClassUID
    second.ReferencedSOPInstanceUID = phase2.plan.SOPInstanceUID
    multi.ReferencedRTPlanSequence.append(second)
    save(multi, folder / "RD_multi.dcm")
    document = json.loads(rtcheck("check", folder, *CR_PR, "--sum", "--format", "json").stdout)
    assert any("MULTI_PLAN dose of every plan is the course dose" in n for n in document["notes"])
    checks = {c["id"]: c for c in document["checks"]}
    assert checks["rx-ptv-total-dose"]["status"] == checks["rx-ptv-fractions"]["status"] == "per_protocol"
    summed = next(s for s in document["structures"] if s["structure"] == "PTV")
    single = tmp_path / "single"
    Case(ROIS, dose=course).write(single)
    assert summed["mean_gy"] == pytest.approx(dvh_json(single)["PTV"]["mean_gy"], abs=0.01)


def test_sum_refuses_plans_of_another_frame_of_reference(tmp_path):
    folder, _, _ = course_plans(tmp_path)
    other = Case(ROIS, dose=course, plan_label="OTHER")
    save(other.plan, folder / "RP_other.dcm")
    save(other.rt_dose, folder / "RD_other.dcm")
    save(other.structure_set, folder / "RS_other.dcm")
    result = rtcheck("check", folder, *CR_PR, "--sum")
    assert result.exit_code == 2 and "--sum" in result.stderr and "Frame of Reference" in result.stderr
