"""Where a plan's prescriptions come from, and what the arm does not describe: no prescription made up from beam
doses at several points, every fraction group and prescription of the plan graded (real exports and pydicom cases)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from cli_helpers import by_id, check_json, rtcheck
from dicom_factory import Case, RoiShape
from rtcheck.dicom.planset import load_inputs

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT.parent / "shared" / "external" / "real-exports"
SRS = REAL / "pps-raystation-srs-imrt"
PROTON = REAL / "aptg-raystation-sobp"
CR_PR = ["--protocol", "escc-induction-icrt-ccrt", "--arm", "cr-pr"]


def need(folder: Path) -> Path:
    if not folder.is_dir():
        pytest.skip(f"{folder} is absent (the shared real exports live beside the project, in ../shared)")
    return folder


def plateau(x, y, z):
    return 51.0 + 0.0 * x


def drop_dose_references(case: Case) -> None:
    del case.plan.DoseReferenceSequence


def add_beam(case: Case, number: int, beam_dose: float, point: list[float] | None) -> None:
    beam = Dataset()
    beam.BeamNumber = number
    beam.BeamName = f"B{number}"
    beam.BeamType = "STATIC"
    beam.RadiationType = "PHOTON"
    beam.TreatmentDeliveryType = "TREATMENT"
    case.plan.BeamSequence.append(beam)
    group = case.plan.FractionGroupSequence[0]
    ref = Dataset()
    ref.ReferencedBeamNumber = number
    ref.BeamDose = beam_dose
    if point is not None:
        ref.BeamDoseSpecificationPoint = point
    group.ReferencedBeamSequence.append(ref)
    group.NumberOfBeams = len(group.ReferencedBeamSequence)


# --------------------------------------------------------------------------- beam-dose prescriptions


def test_real_three_isocentre_plan_has_no_prescription_made_up():
    """RayStation SRS, 13 treatment beams at 3 isocentres, no dose reference: their BeamDose sum (70 Gy in 5 fx,
    above the 61.7 Gy hottest voxel) is no prescription: prescription checks not evaluated saying why; a % metric
    of rtcheck dvh needs --rx-gy."""
    plan = next(iter(load_inputs([need(SRS)]).plans.values()))
    assert plan.targets == []
    assert "3 different points" in plan.prescription_gap
    # PTV_1 is no longer taken silently out of PTV_1..PTV_5 and PTV_ALL.
    assert by_id(check_json(SRS, *CR_PR))["ptv-d95"]["status"] == "not_evaluated"
    checks = by_id(check_json(SRS, *CR_PR, "--map", "PTV=PTV_ALL"))
    for suffix in ("total-dose", "fractions", "dose-per-fraction"):
        check = checks[f"rx-ptv-{suffix}"]
        assert check["status"] == "not_evaluated"
        assert "no readable prescription" in check["message"] and "3 different points" in check["message"]
    # The arm's prescription is what a % in a check refers to, and the check says so.
    assert "% of PTV prescription 50.4 Gy" in checks["ptv-d95"]["message"]
    result = rtcheck("dvh", SRS, "--structure", "PTV_ALL", "--metric", "D95%[%]")
    assert result.exit_code == 2 and "--rx-gy" in result.stderr and "3 different points" in result.stderr
    result = rtcheck("dvh", SRS, "--structure", "PTV_ALL", "--metric", "D95%[%]", "--rx-gy", 30, "--format", "json")
    assert result.exit_code == 0 and "the prescription given with --rx-gy" in result.stderr


def test_real_single_beam_proton_plan_reads_its_beam_dose_as_prescription():
    plan = next(iter(load_inputs([need(PROTON)]).plans.values()))
    [target] = plan.targets
    assert target.total_dose_gy == pytest.approx(1.822963) and target.fractions == 1
    assert "(0.00, 0.00, 0.00) mm" in target.sources["total_dose_gy"]


@pytest.mark.parametrize(
    "points, prescribed",
    [
        ([[0, 0, 0], [0, 0, 0]], True),  # one point: the beam doses add up there
        ([[0, 0, 0], [60, 0, 0]], False),  # two isocentres
        ([None, None], False),  # points not named (a VMAT export's arcs)
    ],
    ids=["one-point", "two-isocentres", "no-points"],
)
def test_beam_doses_make_a_prescription_only_at_one_point(tmp_path, points, prescribed):
    case = Case([RoiShape("PTV")], dose=plateau)
    drop_dose_references(case)
    first = case.plan.FractionGroupSequence[0].ReferencedBeamSequence[0]
    first.BeamDose = 1.0
    if points[0] is not None:
        first.BeamDoseSpecificationPoint = points[0]
    add_beam(case, 2, 0.8, points[1])
    case.write(tmp_path)
    checks = by_id(check_json(tmp_path, *CR_PR))
    total = checks["rx-ptv-total-dose"]
    if prescribed:
        assert total["value"] == pytest.approx(1.8 * 28) and total["status"] == "per_protocol"
    else:
        assert total["status"] == "not_evaluated" and total["value"] is None
        assert "no readable prescription" in total["message"]


# --------------------------------------------------------------------------- parts the arm does not describe


def test_a_second_target_dose_reference_is_a_deviation(tmp_path):
    """50.4 Gy to PTV and 60 Gy to a boost PTV in the 50.4 Gy arm: the 60 Gy prescription is graded, not ignored."""
    case = Case([RoiShape("PTV"), RoiShape("PTV_boost", radius_mm=5)], dose=plateau, prescriptions=[("PTV", 50.4), ("PTV_boost", 60.0)])
    case.write(tmp_path)
    document = check_json(tmp_path, *CR_PR)
    unlisted = by_id(document)["rx-unlisted-prescription-2"]
    assert unlisted["status"] == "deviation_unacceptable" and unlisted["counts"]
    assert unlisted["value"] == 60.0 and unlisted["unit"] == "Gy"
    assert "60 Gy in 28 fx to 'PTV_boost'" in unlisted["message"] and "arm cr-pr does not" in unlisted["message"]
    assert document["verdict"] == "deviation_unacceptable"
    assert by_id(document)["rx-ptv-total-dose"]["status"] == "per_protocol"


def test_a_sequential_boost_fraction_group_is_a_deviation(tmp_path):
    """28 fx to the PTV (dose reference 1, group 1) and a 5-fraction boost group without a dose reference: 33
    fractions never pass a 28-fx arm; --arm auto says why it fits no arm."""
    case = Case([RoiShape("PTV")], dose=plateau)
    group = case.plan.FractionGroupSequence[0]
    ref = Dataset()
    ref.ReferencedDoseReferenceNumber = 1
    group.ReferencedDoseReferenceSequence = Sequence([ref])
    boost = Dataset()
    boost.FractionGroupNumber = 2
    boost.NumberOfFractionsPlanned = 5
    boost.NumberOfBeams = 0
    boost.NumberOfBrachyApplicationSetups = 0
    case.plan.FractionGroupSequence.append(boost)
    case.write(tmp_path)
    document = check_json(tmp_path, *CR_PR)
    assert document["plan"]["fractions"] == 33
    unlisted = by_id(document)["rx-unlisted-fraction-group-2"]
    assert unlisted["status"] == "deviation_unacceptable" and unlisted["value"] == 5 and unlisted["unit"] == "fx"
    assert document["verdict"] == "deviation_unacceptable"
    auto = rtcheck("check", tmp_path, "--protocol", "escc-induction-icrt-ccrt", "--arm", "auto")
    assert auto.exit_code == 2 and "fraction group 2 (5 fx)" in auto.stderr
