"""Plan integrity checks (rtcheck.grading.integrity) on pydicom-built plan sets, one fixture per rule,
on mutated copies of a compliant sample plan, and on real planning-system exports (no false alarm)."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
import yaml
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import generate_uid

from cli_helpers import rtcheck
from dicom_factory import Case, RoiShape
from rtcheck.api import check_paths
from rtcheck.errors import ProtocolError
from rtcheck.grading import CheckOptions
from rtcheck.grading.options import CheckSelection
from rtcheck.protocol.library import load_protocol_file
from rtcheck.protocol.schema import parse_protocol
from rtcheck.results import CheckKind, Status

ROOT = Path(__file__).resolve().parents[1]
COMPLIANT = ROOT / "sample_plans" / "cr-pr-compliant"

RULES = [
    {"id": "grid", "rule": "dose_grid", "max_mm": 3, "source": "test"},
    {"id": "hetero", "rule": "heterogeneity_correction", "source": "test"},
    {"id": "dose-type", "rule": "dose_type", "allowed": ["PHYSICAL"], "source": "test"},
    {"id": "radiation", "rule": "radiation_type", "allowed": ["PHOTON"], "source": "test"},
    {"id": "energy", "rule": "beam_energy", "allowed": [6, 10], "source": "test"},
    {"id": "technique", "rule": "technique", "allowed": ["VMAT", "IMRT"], "source": "test"},
    {"id": "isocentres", "rule": "isocentres", "max": 1, "source": "test"},
    {"id": "machine", "rule": "treatment_machine", "source": "test"},
    {"id": "mu", "rule": "mu_per_gy", "min": 100, "max": 400, "source": "test"},
    {"id": "approval", "rule": "approval", "allowed": ["APPROVED"], "source": "test"},
    {"id": "containment", "rule": "target_containment", "inner": "CTV", "outer": "PTV", "max_outside_cc": 0.1, "source": "test"},
    {"id": "margin", "rule": "margin", "inner": "CTV", "outer": "PTV", "min_mm": 4, "max_mm": 6, "source": "test"},
    {"id": "side", "rule": "laterality", "structures": ["Lung_L", "Lung_R"], "source": "test"},
    {"id": "gaps", "rule": "contour_gaps", "structures": ["Heart"], "source": "test"},
    {"id": "crossing", "rule": "self_intersection", "structures": ["Heart"], "source": "test"},
    {"id": "volume", "rule": "organ_volume", "structures": ["Heart"], "ranges": {"Heart": {"min_cc": 1, "max_cc": 50}}, "source": "test"},
]


def _protocol(rules: list[dict] = RULES) -> dict:
    names = {"PTV": "target", "CTV": "target", "Lung_L": "oar", "Lung_R": "oar", "Heart": "oar", "BODY": "other"}
    return {
        "schema": "rtcheck.protocol/1", "id": "integrity-test", "title": "integrity test", "source": {"notes": "test"},
        "structures": {n: {"role": role, "aliases": [n]} for n, role in names.items()},
        "arms": {"a": {"title": "A", "prescriptions": [
            {"target": "PTV", "total_dose_gy": 50.4, "fractions": 28, "dose_per_fraction_gy": 1.8, "source": "test"}],
            "constraints": [], "plan_rules": copy.deepcopy(rules)}},
    }


PROTOCOL = parse_protocol(_protocol(), "test")


def _shapes(**changes) -> list[RoiShape]:
    shapes = {
        "BODY": RoiShape("BODY", radius_mm=(38.0, 30.0), z_range_mm=(-24.0, 24.0), interpreted_type="EXTERNAL"),
        "PTV": RoiShape("PTV", radius_mm=13.0, z_range_mm=(-13.0, 13.0), interpreted_type="PTV"),
        "CTV": RoiShape("CTV", radius_mm=8.0, z_range_mm=(-8.0, 8.0), interpreted_type="CTV"),
        "Lung_L": RoiShape("Lung_L", centre_xy_mm=(25.0, 0.0), radius_mm=6.0, z_range_mm=(-10.0, 10.0)),
        "Lung_R": RoiShape("Lung_R", centre_xy_mm=(-25.0, 0.0), radius_mm=6.0, z_range_mm=(-10.0, 10.0)),
        "Heart": RoiShape("Heart", centre_xy_mm=(0.0, -20.0), radius_mm=6.0, z_range_mm=(-10.0, 10.0)),
    }
    shapes.update(changes)
    return list(shapes.values())


def _control_point(index: int, gantry: float, leaves: float, weight: float) -> Dataset:
    cp = Dataset()
    cp.ControlPointIndex = index
    cp.GantryAngle = gantry
    cp.NominalBeamEnergy = 6
    cp.IsocenterPosition = [0.0, 0.0, 0.0]
    cp.CumulativeMetersetWeight = weight
    mlc = Dataset()
    mlc.RTBeamLimitingDeviceType = "MLCX"
    mlc.LeafJawPositions = [-leaves] * 4 + [leaves] * 4
    cp.BeamLimitingDevicePositionSequence = Sequence([mlc])
    return cp


def compliant_case(**changes) -> Case:
    """A VMAT plan that meets every rule of RULES: 2 mm grid, IMAGE heterogeneity, 6 MV, one isocentre,
    211 MU per 1.8 Gy, approved, PTV = CTV + 5 mm."""
    case = Case(_shapes(**changes), dose=lambda x, y, z: 50.0 + 0 * x, grid_spacing_mm=(2.0, 2.0, 2.0))
    case.plan.ApprovalStatus = "APPROVED"
    beam = case.plan.BeamSequence[0]
    beam.BeamType = "DYNAMIC"
    beam.TreatmentMachineName = "LINAC1"
    beam.TreatmentDeliveryType = "TREATMENT"
    beam.PrimaryDosimeterUnit = "MU"
    beam.ControlPointSequence = Sequence([_control_point(i, 181.0 + i * 60.0, 5.0 + i, i / 3) for i in range(4)])
    beam.NumberOfControlPoints = 4
    case.plan.FractionGroupSequence[0].ReferencedBeamSequence[0].BeamMeterset = 380.0
    case.rt_dose.TissueHeterogeneityCorrection = ["IMAGE", "ROI_OVERRIDE"]
    for ds in (case.plan, case.structure_set, case.rt_dose):
        ds.StudyDate = "20260105"
    case.structure_set.StructureSetDate = "20260106"
    case.plan.RTPlanDate, case.plan.RTPlanTime = "20260107", "101500"
    case.rt_dose.ContentDate, case.rt_dose.ContentTime = "20260107", "101501"
    return case


def _check(folder: Path, protocol=PROTOCOL, arm: str = "a", **options):
    [result] = check_paths([folder], protocol, arm, options=CheckOptions(**options))
    return result, {c.id: c for c in result.checks if c.kind == CheckKind.INTEGRITY}


def _write_ct(case: Case, folder: Path, z_values, series_uid: str | None = None) -> str:
    return case.write_ct(folder, z_values, series_uid=series_uid)


def test_a_compliant_pydicom_plan_meets_every_rule(tmp_path):
    case = compliant_case()
    _write_ct(case, tmp_path, np.arange(-24.0, 24.1, 2.0))
    result, checks = _check(tmp_path)
    wrong = {cid: (c.status, c.message) for cid, c in checks.items() if c.status is not Status.PER_PROTOCOL and cid != "objects-birth-date"}
    assert not wrong
    assert checks["technique"].message.startswith("VMAT")
    assert checks["mu"].value == pytest.approx(380.0 / 1.8)
    assert checks["margin"].value == pytest.approx(5.0, abs=0.3)
    assert checks["side.Lung_L"].value == pytest.approx(25.0, abs=0.5)
    assert result.verdict is Status.PER_PROTOCOL


def _second_beam(case: Case, isocentre: list[float], machine: str = "LINAC1") -> None:
    beam = copy.deepcopy(case.plan.BeamSequence[0])
    beam.BeamNumber, beam.BeamName, beam.TreatmentMachineName = 2, "arc 2", machine
    beam.ControlPointSequence[0].IsocenterPosition = isocentre
    case.plan.BeamSequence.append(beam)
    ref = copy.deepcopy(case.plan.FractionGroupSequence[0].ReferencedBeamSequence[0])
    ref.ReferencedBeamNumber = 2
    case.plan.FractionGroupSequence[0].ReferencedBeamSequence.append(ref)


@pytest.mark.parametrize(
    "mutate, check_id, status, words",
    [
        (lambda c: setattr(c, "_grid", 4.0), "grid", Status.DEVIATION_UNACCEPTABLE, "4.00 mm exceeds 3 mm"),
        (lambda c: setattr(c.rt_dose, "TissueHeterogeneityCorrection", "WATER"), "hetero", Status.DEVIATION_UNACCEPTABLE, "WATER"),
        (lambda c: delattr(c.rt_dose, "TissueHeterogeneityCorrection"), "hetero", Status.NOT_EVALUATED, "no TissueHeterogeneityCorrection"),
        (lambda c: [setattr(cp, "NominalBeamEnergy", 18) for cp in c.plan.BeamSequence[0].ControlPointSequence], "energy",
         Status.DEVIATION_UNACCEPTABLE, "18 MV"),
        (lambda c: setattr(c.rt_dose, "PatientID", "SOMEONE-ELSE"), "objects-patient-id", Status.DEVIATION_UNACCEPTABLE, "RT Dose RD.dcm differs"),
        (lambda c: setattr(c.plan, "ApprovalStatus", "UNAPPROVED"), "approval", Status.DEVIATION_UNACCEPTABLE, "UNAPPROVED"),
        (lambda c: delattr(c.plan, "ApprovalStatus"), "approval", Status.NOT_EVALUATED, "no ApprovalStatus"),
        (lambda c: setattr(c.plan.FractionGroupSequence[0].ReferencedBeamSequence[0], "BeamMeterset", 900.0), "mu",
         Status.DEVIATION_UNACCEPTABLE, "500.0 MU/Gy"),
        (lambda c: setattr(c.plan.BeamSequence[0], "ControlPointSequence", Sequence([_control_point(0, 0.0, 5.0, 0.0), _control_point(1, 0.0, 5.0, 1.0)])),
         "technique", Status.DEVIATION_UNACCEPTABLE, "3D"),
        (lambda c: _second_beam(c, [30.0, 0.0, 0.0]), "isocentres", Status.DEVIATION_UNACCEPTABLE, "2 isocentre(s)"),
        (lambda c: _second_beam(c, [0.0, 0.0, 0.2], machine="LINAC2"), "machine", Status.DEVIATION_UNACCEPTABLE, "2 machines"),
    ],
)
def test_each_dose_beam_and_object_rule_fails_on_its_fixture(tmp_path, mutate, check_id, status, words):
    case = compliant_case()
    mutate(case)
    if getattr(case, "_grid", None):
        case = Case(case.rois, case.dose, grid_spacing_mm=(4.0, 4.0, 4.0))
        case.rt_dose.TissueHeterogeneityCorrection = "IMAGE"
    case.write(tmp_path)
    result, checks = _check(tmp_path)
    assert checks[check_id].status is status, checks[check_id].message
    assert words in checks[check_id].message
    if status is not Status.PER_PROTOCOL:
        assert result.verdict is not Status.PER_PROTOCOL


def test_setup_beams_are_imaging_only(tmp_path):
    case = compliant_case()
    setup = copy.deepcopy(case.plan.BeamSequence[0])
    setup.BeamNumber, setup.BeamName, setup.TreatmentDeliveryType = 2, "kV setup", "SETUP"
    setup.ControlPointSequence[0].NominalBeamEnergy = 18  # not a treatment energy: ignored
    setup.ControlPointSequence[0].IsocenterPosition = [50.0, 0.0, 0.0]
    case.plan.BeamSequence.append(setup)
    case.write(tmp_path)
    _, checks = _check(tmp_path)
    for check_id in ("energy", "isocentres", "mu"):
        assert checks[check_id].status is Status.PER_PROTOCOL, checks[check_id].message
        assert "1 setup beam(s)" in checks[check_id].message


@pytest.mark.parametrize(
    "changes, check_id, status",
    [
        # The CTV pokes 6 mm out of the PTV: volume outside and a negative smallest margin.
        ({"CTV": RoiShape("CTV", centre_xy_mm=(11.0, 0.0), radius_mm=8.0, z_range_mm=(-8.0, 8.0), interpreted_type="CTV")}, "containment", Status.DEVIATION_UNACCEPTABLE),
        ({"CTV": RoiShape("CTV", centre_xy_mm=(11.0, 0.0), radius_mm=8.0, z_range_mm=(-8.0, 8.0), interpreted_type="CTV")}, "margin", Status.DEVIATION_UNACCEPTABLE),
        # Left and right lungs swapped.
        ({"Lung_L": RoiShape("Lung_L", centre_xy_mm=(-25.0, 0.0), radius_mm=6.0, z_range_mm=(-10.0, 10.0))}, "side.Lung_L", Status.DEVIATION_UNACCEPTABLE),
        # An implausible heart (the test range is 1-50 cc): a variation, never a silent pass.
        ({"Heart": RoiShape("Heart", centre_xy_mm=(0.0, -20.0), radius_mm=25.0, z_range_mm=(-20.0, 20.0))}, "volume.Heart", Status.VARIATION_ACCEPTABLE),
    ],
)
def test_each_contour_rule_fails_on_its_fixture(tmp_path, changes, check_id, status):
    compliant_case(**changes).write(tmp_path)
    _, checks = _check(tmp_path)
    assert checks[check_id].status is status, checks[check_id].message


def test_a_missing_plane_and_a_crossing_contour(tmp_path):
    case = compliant_case()
    heart = next(rc for rc in case.structure_set.ROIContourSequence if rc.ReferencedROINumber == case.roi_number("Heart"))
    del heart.ContourSequence[5]  # z = 0 of planes -10..10 every 2 mm
    bowtie = [[-5, -5], [5, 5], [5, -5], [-5, 5]]
    heart.ContourSequence[0].ContourData = [v for x, y in bowtie for v in (x, y - 20.0, -10.0)]
    heart.ContourSequence[0].NumberOfContourPoints = 4
    case.write(tmp_path)
    _, checks = _check(tmp_path)
    assert checks["gaps.Heart"].status is Status.DEVIATION_UNACCEPTABLE and checks["gaps.Heart"].value == 1
    assert "between z -2.0 and 2.0 mm" in checks["gaps.Heart"].message
    assert checks["crossing.Heart"].status is Status.DEVIATION_UNACCEPTABLE and checks["crossing.Heart"].value == 1


def test_ct_of_another_series_is_a_deviation(tmp_path):
    case = compliant_case()
    _write_ct(case, tmp_path, np.arange(-24.0, 24.1, 2.0), series_uid=generate_uid())
    result, checks = _check(tmp_path)
    assert checks["images-series"].status is Status.DEVIATION_UNACCEPTABLE
    assert "not the series the structure set was drawn on" in checks["images-series"].message
    assert result.verdict is Status.DEVIATION_UNACCEPTABLE


def test_ct_that_does_not_cover_the_contours(tmp_path):
    case = compliant_case()
    _write_ct(case, tmp_path, np.arange(-10.0, 10.1, 2.0))
    _, checks = _check(tmp_path)
    assert checks["images-series"].status is Status.PER_PROTOCOL
    assert checks["images-coverage"].status is Status.DEVIATION_UNACCEPTABLE
    assert "BODY" in checks["images-coverage"].message and "images cover z -11.0 to 11.0 mm" in checks["images-coverage"].message


def test_absent_information_is_never_a_pass(tmp_path):
    """The factory's plain plan: a beam without control points, no heterogeneity element, no approval, no CT."""
    Case(_shapes(), dose=lambda x, y, z: 50.0 + 0 * x).write(tmp_path)
    result, checks = _check(tmp_path)
    for check_id in ("hetero", "energy", "technique", "isocentres", "machine", "mu", "approval", "images-series", "images-coverage"):
        assert checks[check_id].status is Status.NOT_EVALUATED, check_id
    assert "IsocenterPosition" in checks["isocentres"].message
    assert "ControlPointSequence" in checks["technique"].message
    assert result.verdict is Status.NOT_EVALUATED  # required rules without their elements count


def test_if_present_and_informational_rules_do_not_count_when_absent(tmp_path):
    rules = [dict(RULES[1], counts="informational"), dict(RULES[12], counts="if_present")]
    protocol = parse_protocol(_protocol(rules), "test")
    Case([s for s in _shapes() if s.name not in ("Lung_L", "Lung_R")], dose=lambda x, y, z: 50.0 + 0 * x).write(tmp_path)
    result, checks = _check(tmp_path, protocol)
    assert checks["hetero"].status is Status.NOT_EVALUATED and not checks["hetero"].counts
    assert checks["side.Lung_L"].status is Status.NOT_EVALUATED and not checks["side.Lung_L"].counts
    assert result.verdict is Status.PER_PROTOCOL


def test_checks_selection(tmp_path):
    compliant_case().write(tmp_path)
    result, _ = _check(tmp_path, checks=CheckSelection.INTEGRITY)
    assert {c.kind for c in result.checks} == {CheckKind.INTEGRITY}
    result, _ = _check(tmp_path, checks=CheckSelection.DVH)
    assert CheckKind.INTEGRITY not in {c.kind for c in result.checks}


@pytest.mark.parametrize(
    "rule, entry, words",
    [
        ({"id": "g", "rule": "dose_grid", "source": "x"}, "arms.a.plan_rules[0]", "missing key(s): max_mm"),
        ({"id": "g", "rule": "dose_grid", "max_mm": -1, "source": "x"}, "arms.a.plan_rules[0] (g).max_mm", "positive"),
        ({"id": "t", "rule": "technique", "allowed": ["tomo"], "source": "x"}, "arms.a.plan_rules[0] (t).allowed", "unknown value"),
        ({"id": "s", "rule": "laterality", "structures": ["Heart"], "source": "x"}, "arms.a.plan_rules[0] (s).structures", "names no side"),
        ({"id": "v", "rule": "organ_volume", "structures": ["PTV"], "source": "x"}, "arms.a.plan_rules[0] (v).structures", "no default volume range"),
        ({"id": "c", "rule": "target_containment", "inner": "GTV", "outer": "PTV", "max_outside_cc": 0, "source": "x"},
         "arms.a.plan_rules[0] (c).inner", "unknown structure"),
        ({"id": "x", "rule": "colour", "source": "x"}, "arms.a.plan_rules[0].rule", "unknown rule"),
        ({"id": "g", "rule": "dose_grid", "max_mm": 3, "source": "x", "counts": "sometimes"}, "arms.a.plan_rules[0] (g).counts", "expected one of"),
    ],
)
def test_malformed_plan_rules_name_the_entry(rule, entry, words):
    with pytest.raises(ProtocolError) as error:
        parse_protocol(_protocol([rule]), "test.yaml")
    assert entry in str(error.value) and words in str(error.value) and "test.yaml" in str(error.value)


# ------------------------------------------------------------------ mutated copies of a compliant sample


def _sample_copy(tmp_path: Path) -> Path:
    folder = tmp_path / "sample"
    shutil.copytree(COMPLIANT, folder)
    return folder


def _edit(path: Path, change) -> None:
    ds = pydicom.dcmread(path)
    change(ds)
    ds.save_as(path)


def _roi_contours(ds: Dataset, name: str) -> Dataset:
    number = next(r.ROINumber for r in ds.StructureSetROISequence if r.ROIName == name)
    return next(rc for rc in ds.ROIContourSequence if rc.ReferencedROINumber == number)


def test_the_compliant_sample_meets_the_seed_protocols_plan_rules(tmp_path):
    result, checks = _check(COMPLIANT, "escc-induction-icrt-ccrt", "cr-pr")
    assert result.verdict is Status.PER_PROTOCOL
    counted = [c for c in checks.values() if c.counts]
    assert counted and all(c.status is Status.PER_PROTOCOL for c in counted)
    assert checks["dose-grid"].status is Status.VARIATION_ACCEPTABLE and not checks["dose-grid"].counts  # 4 mm, an rtcheck default


def _move_gtv(ds: Dataset) -> None:
    for contour in _roi_contours(ds, "GTV").ContourSequence:
        data = np.array(contour.ContourData, dtype=float).reshape(-1, 3)
        data[:, 0] += 40.0  # out of the PTV (semi-axis 28 mm)
        contour.ContourData = [round(float(v), 3) for v in data.ravel()]


def _drop_heart_plane(ds: Dataset) -> None:
    contours = _roi_contours(ds, "Heart").ContourSequence
    del contours[len(contours) // 2]


def _split_lungs(ds: Dataset) -> None:
    """Rename the two-contour Lungs ROI's left-hand contours... into a Lung_R on the patient's left (a swap)."""
    lungs = _roi_contours(ds, "Lungs")
    left = Sequence([c for c in lungs.ContourSequence if c.ContourData[0] > 0])
    lungs.ContourSequence = Sequence([c for c in lungs.ContourSequence if c.ContourData[0] <= 0])
    item = copy.deepcopy(next(r for r in ds.StructureSetROISequence if r.ROIName == "Lungs"))
    item.ROINumber, item.ROIName = 99, "Lung_R"
    ds.StructureSetROISequence.append(item)
    rc = Dataset()
    rc.ReferencedROINumber, rc.ContourSequence = 99, left
    ds.ROIContourSequence.append(rc)


@pytest.mark.parametrize(
    "file, change, check_id, status",
    [
        ("RD.dcm", lambda ds: setattr(ds, "PatientID", "OTHER"), "objects-patient-id", Status.DEVIATION_UNACCEPTABLE),
        ("RD.dcm", lambda ds: setattr(ds, "StudyInstanceUID", generate_uid()), "objects-study", Status.DEVIATION_UNACCEPTABLE),
        ("RD.dcm", lambda ds: setattr(ds, "DoseType", "EFFECTIVE"), "dose-type", Status.DEVIATION_UNACCEPTABLE),
        ("RD.dcm", lambda ds: setattr(ds, "TissueHeterogeneityCorrection", "WATER"), "heterogeneity-correction", Status.VARIATION_ACCEPTABLE),
        ("RD.dcm", lambda ds: (setattr(ds, "ContentDate", "20251231"), setattr(ds, "InstanceCreationDate", "20251231")), "dates-dose-after-plan",
         Status.DEVIATION_UNACCEPTABLE),
        ("RP.dcm", lambda ds: setattr(ds.BeamSequence[0], "RadiationType", "ELECTRON"), "radiation-type", Status.VARIATION_ACCEPTABLE),
        ("RS.dcm", _move_gtv, "ptv-contains-gtv", Status.DEVIATION_UNACCEPTABLE),
        ("RS.dcm", _drop_heart_plane, "contour-gaps.Heart", Status.VARIATION_ACCEPTABLE),
        ("RS.dcm", _split_lungs, "laterality.Lung_R", Status.DEVIATION_UNACCEPTABLE),
    ],
)
def test_a_mutated_copy_of_the_compliant_sample_per_rule(tmp_path, file, change, check_id, status):
    folder = _sample_copy(tmp_path)
    _edit(folder / file, change)
    result, checks = _check(folder, "escc-induction-icrt-ccrt", "cr-pr")
    assert checks[check_id].status is status, checks[check_id].message
    if checks[check_id].counts and status is Status.DEVIATION_UNACCEPTABLE:
        assert result.verdict is Status.DEVIATION_UNACCEPTABLE


# ------------------------------------------------------------------ real exports: no false alarm


REAL = {
    "pps-raystation-srs-imrt": (["PHOTON"], [6], ["IMRT"], 3, [("GTV_1", "PTV_1"), ("GTV_2", "PTV_2"), ("GTV_3", "PTV_3")]),
    "aptg-raystation-sobp": (["PROTON"], [149.9], ["ion scanning"], 1, []),
    "pps-gammaplan-gk": (["PHOTON"], [1.25], ["3D"], 1, []),
}


def _real_protocol(folder: Path, radiation, energies, techniques, isocentres, pairs) -> dict:
    from rtcheck.dicom.io import read_dataset

    ss = next(read_dataset(p, stop_before_pixels=True) for p in folder.glob("*.dcm") if read_dataset(p, stop_before_pixels=True).Modality == "RTSTRUCT")
    names = {str(r.ROIName) for r in ss.StructureSetROISequence}
    structures = {n: {"aliases": [n], "tg263": "ROI"} for n in names}
    rules = [
        {"id": "grid", "rule": "dose_grid", "max_mm": 3, "source": "test"},
        {"id": "hetero", "rule": "heterogeneity_correction", "source": "test", "counts": "if_present"},
        {"id": "dose-type", "rule": "dose_type", "allowed": ["PHYSICAL"], "source": "test"},
        {"id": "radiation", "rule": "radiation_type", "allowed": radiation, "source": "test"},
        {"id": "energy", "rule": "beam_energy", "allowed": energies, "source": "test", "counts": "if_present"},
        {"id": "technique", "rule": "technique", "allowed": techniques, "source": "test", "counts": "if_present"},
        {"id": "isocentres", "rule": "isocentres", "max": isocentres, "source": "test"},
        {"id": "machine", "rule": "treatment_machine", "source": "test"},
        {"id": "gaps", "rule": "contour_gaps", "structures": sorted(n for n in names if "PTV" in n.upper() and "ALL" not in n.upper() and "AND" not in n.upper()) or sorted(names), "source": "test"},
        {"id": "crossing", "rule": "self_intersection", "structures": sorted(names), "source": "test"},
        *({"id": f"contains-{i}", "rule": "target_containment", "inner": inner, "outer": outer, "max_outside_cc": 0.05, "source": "test"}
          for i, (inner, outer) in enumerate(pairs)),
    ]
    return {"schema": "rtcheck.protocol/1", "id": "real", "title": "real", "source": {"notes": "test"}, "structures": structures,
            "arms": {"a": {"title": "A", "prescriptions": [], "constraints": [], "plan_rules": rules}}}


@pytest.mark.parametrize("name", sorted(REAL))
def test_real_exports_raise_no_false_alarm(external_dir, name):
    folder = external_dir / "real-exports" / name
    protocol = parse_protocol(_real_protocol(folder, *REAL[name]), "real")
    result, checks = _check(folder, protocol)
    alarms = {cid: c.message for cid, c in checks.items() if c.status is Status.DEVIATION_UNACCEPTABLE}
    assert not alarms
    for check_id in ("objects-patient-id", "objects-study", "objects-frame", "dose-type", "machine"):
        assert checks[check_id].status is Status.PER_PROTOCOL, (check_id, checks[check_id].message)
    assert checks["plan-approval"].message.startswith("ApprovalStatus UNAPPROVED")


def test_real_raystation_srs_reads_its_beams(external_dir):
    folder = external_dir / "real-exports" / "pps-raystation-srs-imrt"
    protocol = parse_protocol(_real_protocol(folder, *REAL["pps-raystation-srs-imrt"]), "real")
    _, checks = _check(folder, protocol)
    assert checks["isocentres"].value == 3 and "9 setup beam(s)" in checks["isocentres"].message
    assert checks["technique"].status is Status.PER_PROTOCOL and checks["technique"].message.startswith("IMRT")
    assert checks["grid"].value == pytest.approx(3.0)
    assert checks["hetero"].status is Status.NOT_EVALUATED and not checks["hetero"].counts
    for i in range(3):
        assert checks[f"contains-{i}"].status is Status.PER_PROTOCOL, checks[f"contains-{i}"].message


def test_real_proton_export_reads_heterogeneity_and_scanning(external_dir):
    folder = external_dir / "real-exports" / "aptg-raystation-sobp"
    protocol = parse_protocol(_real_protocol(folder, *REAL["aptg-raystation-sobp"]), "real")
    _, checks = _check(folder, protocol)
    assert checks["hetero"].status is Status.PER_PROTOCOL and "IMAGE" in checks["hetero"].message
    assert checks["technique"].status is Status.PER_PROTOCOL and checks["radiation"].status is Status.PER_PROTOCOL


def test_dicompyler_example_ct_is_the_referenced_series_but_incomplete(external_dir):
    result, checks = _check(external_dir / "dicompyler-core-example", "escc-induction-icrt-ccrt", "cr-pr")
    assert checks["images-series"].status is Status.PER_PROTOCOL
    assert checks["images-coverage"].status is Status.NOT_EVALUATED and "1 of the 98 images" in checks["images-coverage"].message
    assert not any(c.status is Status.DEVIATION_UNACCEPTABLE for c in checks.values() if c.id.startswith(("objects", "images", "dates")))


def test_seed_protocols_state_rules_with_sources():
    for path in sorted((ROOT / "protocols").glob("*.yaml")):
        protocol = load_protocol_file(path)
        for arm in protocol.arms.values():
            for rule in arm.plan_rules:
                assert rule.source_text.strip()
            if arm.radiotherapy:
                assert arm.plan_rules, (path.name, arm.id)
        assert yaml.safe_load(path.read_text())  # readable as plain YAML


def test_cli_checks_switch(tmp_path):
    result = rtcheck("check", COMPLIANT, "--protocol", "escc-induction-icrt-ccrt", "--arm", "cr-pr", "--checks", "integrity", "--format", "json")
    assert result.exit_code == 0, result.stderr
    kinds = {c["kind"] for c in json.loads(result.stdout)["checks"]}
    assert kinds == {"integrity"}


def test_unreadable_leaf_positions_leave_the_technique_not_evaluated_not_an_internal_error(tmp_path):
    """Regression from the fuzz campaign (case 32 of seed 12: flipped bits turned a LeafJawPositions value
    into '-67>0'): rtcheck raised ValueError, exit 3."""
    case = compliant_case()
    cp = case.plan.BeamSequence[0].ControlPointSequence[1]
    cp.BeamLimitingDevicePositionSequence[0].LeafJawPositions = [-67.25, 5.0]
    case.write(tmp_path)
    plan_file = next(p for p in tmp_path.glob("*.dcm") if b"-67.25" in p.read_bytes())
    plan_file.write_bytes(plan_file.read_bytes().replace(b"-67.25", b"-67>25"))  # damaged as the fuzz case was
    result, checks = _check(tmp_path)
    assert checks["technique"].status is Status.NOT_EVALUATED
    assert "LeafJawPositions unreadable" in checks["technique"].message
