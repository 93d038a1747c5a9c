"""Comparing rtcheck's DVHs with the planning system's own (RT Dose DVHSequence): reading every unit
combination, the tolerance, `rtcheck dvh --compare-tps` and the `tps_comparison` of the check JSON."""

from __future__ import annotations

import copy
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import generate_uid

from cli_helpers import rtcheck
from dicom_factory import Case, RoiShape
from rtcheck.api import check_paths, dvh_statistics
from rtcheck.dicom.planset import build_dvh_set, load_inputs
from rtcheck.dvh import compute_dvh
from rtcheck.dvh.histogram import DoseVolumeHistogram
from rtcheck.dvh.tps import (
    DOSE_TOLERANCE_FLOOR_GY,
    compare_with_tps,
    dose_tolerance_gy,
    read_tps_dvhs,
    stored_statistics_notes,
    volume_tolerance_cc,
)

ROOT = Path(__file__).resolve().parents[1]
COMPLIANT = ROOT / "sample_plans" / "cr-pr-compliant"
CR_PR = ["--protocol", "escc-induction-icrt-ccrt", "--arm", "cr-pr"]

UNIFORM_GY = 10.0
BIN_GY = 0.01
# A cylinder r = 10 mm (64-gon) over 11 planes 2 mm apart, with half-plane end caps: 22 mm tall.
CYLINDER_CC = 32 * 10.0**2 * math.sin(2 * math.pi / 64) * 22.0 / 1000.0


def ok(result, code: int = 0):
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr, result.exception)
    assert "Traceback" not in result.stderr
    return result


def dvh_item(
    roi_number: int,
    volumes: list[float] | np.ndarray,
    *,
    bin_width: float = BIN_GY,
    dvh_type: str = "CUMULATIVE",
    dose_units: str = "GY",
    volume_units: str = "CM3",
    scaling: float = 1.0,
    stored: tuple[float, float, float] | None = None,
) -> Dataset:
    """A DVHSequence item: equal bin widths (in DVH dose units / ``scaling``) and the given volumes."""
    item = Dataset()
    ref = Dataset()
    ref.ReferencedROINumber = roi_number
    ref.DVHROIContributionType = "INCLUDED"
    item.DVHReferencedROISequence = Sequence([ref])
    item.DVHType = dvh_type
    item.DoseUnits = dose_units
    item.DoseType = "PHYSICAL"
    item.DVHDoseScaling = scaling
    item.DVHVolumeUnits = volume_units
    item.DVHNumberOfBins = len(volumes)
    data = []
    for volume in volumes:
        data += [bin_width, float(volume)]
    item.DVHData = data
    if stored is not None:
        item.DVHMinimumDose, item.DVHMaximumDose, item.DVHMeanDose = stored
    return item


def uniform_cumulative(volume_cc: float, dose_gy: float = UNIFORM_GY, bin_gy: float = BIN_GY) -> np.ndarray:
    """Cumulative volumes of a structure that receives exactly ``dose_gy`` everywhere: V(>= lower edge of bin k)."""
    bins = int(round(dose_gy / bin_gy)) + 1
    return np.full(bins, volume_cc)


def uniform_case() -> Case:
    return Case(rois=[RoiShape("PTV", radius_mm=10.0, z_range_mm=(-10.0, 10.0))], dose=lambda x, y, z: np.full_like(x, UNIFORM_GY))


def dose_with(items: list[Dataset], **attributes) -> Dataset:
    ds = Dataset()
    ds.DoseUnits = "GY"
    for key, value in attributes.items():
        setattr(ds, key, value)
    ds.DVHSequence = Sequence(items)
    return ds


# --------------------------------------------------------------------------- reading DVHSequence


def test_uniform_cumulative_gy_cm3():
    """All volume at 10 Gy, 0.01 Gy bins: the cumulative volume of a bin is that receiving its lower edge, so the
    volume spreads over [10.00, 10.01): mean 10.005, D95% 10.0005, D2cc interpolated likewise, max 10.01."""
    volume = 6.0
    [tps] = read_tps_dvhs(dose_with([dvh_item(1, uniform_cumulative(volume))]))
    assert tps.roi_number == 1 and tps.dose_reason is None and tps.volume_reason is None
    assert tps.volume_cc == pytest.approx(volume)
    assert tps.mean_gy == pytest.approx(UNIFORM_GY + BIN_GY / 2)
    assert tps.max_gy == pytest.approx(UNIFORM_GY + BIN_GY)
    assert tps.min_gy == pytest.approx(UNIFORM_GY)
    assert tps.d95_gy == pytest.approx(UNIFORM_GY + 0.05 * BIN_GY)
    assert tps.d2cc_gy == pytest.approx(UNIFORM_GY + (volume - 2.0) / volume * BIN_GY)
    # The dicompyler-core DVH object is kept, in Gy and cm3.
    assert tps.dvh.dose_units == "Gy" and tps.dvh.volume_units == "cm3" and tps.dvh.dvh_type == "cumulative"


def test_interpolation_on_a_linear_cumulative_dvh():
    """A cumulative curve falling linearly from 100 cc at 0 Gy to 0 at 20 Gy (1 Gy bins): D95% = 1 Gy,
    D2cc = 19.6 Gy, mean 10 Gy exactly; never the nearest bin."""
    volumes = 100.0 - 5.0 * np.arange(20)  # V(>= k Gy) for k = 0..19; V(>= 20) = 0
    [tps] = read_tps_dvhs(dose_with([dvh_item(3, volumes, bin_width=1.0)]))
    assert tps.volume_cc == pytest.approx(100.0)
    assert tps.mean_gy == pytest.approx(10.0)
    assert tps.d95_gy == pytest.approx(1.0)
    assert tps.d2cc_gy == pytest.approx(19.6)
    assert tps.dose_at_volume_fraction_gy(0.5) == pytest.approx(10.0)
    assert tps.dose_at_volume_cc_gy(37.5) == pytest.approx(12.5)
    assert (tps.min_gy, tps.max_gy) == (0.0, 20.0)


def test_differential_cgy_and_dose_scaling_give_the_same_dvh():
    """DIFFERENTIAL volumes are accumulated; CGY bins are divided by 100; DVHDoseScaling multiplies the widths."""
    volume = 6.0
    differential = np.zeros(1001)
    differential[-1] = volume  # all of it in the bin [10.00, 10.01)
    items = [
        dvh_item(1, differential, dvh_type="DIFFERENTIAL"),
        dvh_item(2, uniform_cumulative(volume), bin_width=1.0, dose_units="CGY"),
        dvh_item(3, uniform_cumulative(volume), bin_width=2.0, scaling=0.005),
    ]
    dvhs = read_tps_dvhs(dose_with(items))
    assert [d.roi_number for d in dvhs] == [1, 2, 3]
    for tps in dvhs:
        assert tps.volume_cc == pytest.approx(volume), tps.source
        assert tps.mean_gy == pytest.approx(UNIFORM_GY + BIN_GY / 2), tps.source
        assert tps.d95_gy == pytest.approx(UNIFORM_GY + 0.05 * BIN_GY), tps.source


def test_relative_doses_are_converted_only_when_the_reference_is_known():
    """RELATIVE doses: % of DVHNormalizationDoseValue (RT Dose in GY); else of the plan's single prescription,
    said in a note; else not comparable, with the reason. Volumes stay comparable."""
    # 10 Gy is 50 % of 20 Gy: bins of 0.05 % are 0.01 Gy.
    item = dvh_item(1, uniform_cumulative(6.0), bin_width=0.05, dose_units="RELATIVE")
    [normalised] = read_tps_dvhs(dose_with([item], DVHNormalizationDoseValue=20.0))
    assert normalised.mean_gy == pytest.approx(UNIFORM_GY + BIN_GY / 2)
    assert any("DVHNormalizationDoseValue (20 Gy)" in note for note in normalised.notes)

    [by_rx] = read_tps_dvhs(dose_with([item]), rx_gy=20.0)
    assert by_rx.mean_gy == pytest.approx(UNIFORM_GY + BIN_GY / 2)
    assert any("plan's prescription (20 Gy)" in note for note in by_rx.notes)

    [unknown] = read_tps_dvhs(dose_with([item]))
    assert unknown.mean_gy is None and unknown.d95_gy is None and unknown.d2cc_gy is None
    assert "cannot be converted to Gy" in unknown.dose_reason
    assert unknown.volume_cc == pytest.approx(6.0)

    ours = DoseVolumeHistogram("PTV", 0.001, np.eye(1, 10_001, 10_000).ravel() * 6.0, 6.0, 10.0, 10.0, 10.0)
    comparison = compare_with_tps(ours, unknown, rx_gy=50.0)
    assert comparison.quantities["volume_cc"].difference == pytest.approx(0.0)
    for name in ("mean_gy", "d95_gy", "d2cc_gy"):
        q = comparison.quantities[name]
        assert q.tps is None and q.difference is None and not q.flagged
        assert "cannot be converted to Gy" in q.reason


@pytest.mark.parametrize("units, scale", [("PERCENT", 100.0), ("PER_U", 1.0)])
def test_relative_volumes_compare_doses_but_not_cc(units, scale):
    """PERCENT (or PER_U, a fraction) volumes have no total volume: mean and D95% are compared, volume and D2cc are not."""
    [tps] = read_tps_dvhs(dose_with([dvh_item(1, uniform_cumulative(scale), volume_units=units)]))
    assert tps.volume_cc is None and tps.d2cc_gy is None
    assert units in tps.volume_reason
    assert tps.mean_gy == pytest.approx(UNIFORM_GY + BIN_GY / 2)
    assert tps.d95_gy == pytest.approx(UNIFORM_GY + 0.05 * BIN_GY)

    ours = DoseVolumeHistogram("PTV", 0.001, np.eye(1, 10_001, 10_000).ravel() * 6.0, 6.0, 10.0, 10.0, 10.0)
    comparison = compare_with_tps(ours, tps)
    assert comparison.quantities["volume_cc"].tps is None and "not comparable" in comparison.quantities["volume_cc"].reason
    assert comparison.quantities["d2cc_gy"].tps is None
    assert comparison.quantities["mean_gy"].difference == pytest.approx(-BIN_GY / 2)
    assert comparison.flagged == []


def test_unreadable_and_multi_roi_items():
    """An item without DVHType or for several ROIs is not compared; no DVHSequence is an empty list, not an error."""
    assert read_tps_dvhs(Dataset()) == []
    broken = dvh_item(1, uniform_cumulative(6.0))
    del broken.DVHType
    two = dvh_item(2, uniform_cumulative(6.0))
    extra = Dataset()
    extra.ReferencedROINumber = 3
    two.DVHReferencedROISequence.append(extra)
    ds = dose_with([broken, two])
    [tps] = read_tps_dvhs(ds)
    assert tps.roi_number == 1 and tps.mean_gy is None and "DVHType" in tps.dose_reason
    assert any("1 DVHSequence item(s) for several or excluded ROIs" in n for n in stored_statistics_notes(ds, [tps]))


def test_dvh_data_written_as_un_is_read():
    """pydicom writes a DVHData over 64 kB in explicit VR as UN (raw text): it is still read."""
    item = dvh_item(1, [6.0, 6.0])
    del item.DVHData
    item.add_new(0x30040058, "UN", b"5\\6.0\\5\\6.0 ")
    [tps] = read_tps_dvhs(dose_with([item]))
    assert tps.volume_cc == pytest.approx(6.0) and tps.mean_gy == pytest.approx(7.5)


def test_stored_statistics_in_percent_of_the_prescription_are_recognised():
    """Some systems write DVHMinimum/Maximum/MeanDose in % of the prescription whatever DoseUnits says:
    the curve is used and a note says so."""
    item = dvh_item(1, uniform_cumulative(6.0), stored=(50.0, 50.05, 50.025))  # % of 20 Gy
    ds = dose_with([item])
    dvhs = read_tps_dvhs(ds)
    assert dvhs[0].mean_gy == pytest.approx(10.005)
    [note] = stored_statistics_notes(ds, dvhs, source="RD", rx_gy=20.0)
    assert "in % of the 20 Gy prescription although DoseUnits is GY" in note
    consistent = dose_with([dvh_item(1, uniform_cumulative(6.0), stored=(10.0, 10.01, 10.005))])
    assert stored_statistics_notes(consistent, read_tps_dvhs(consistent), rx_gy=20.0) == []


# --------------------------------------------------------------------------- tolerance and comparison


def test_tolerances():
    assert volume_tolerance_cc(100.0) == pytest.approx(3.0)
    assert volume_tolerance_cc(5.0) == pytest.approx(0.5)
    assert dose_tolerance_gy(50.4) == pytest.approx(1.008)
    assert dose_tolerance_gy(14.0) == pytest.approx(DOSE_TOLERANCE_FLOOR_GY)
    assert dose_tolerance_gy(None) == pytest.approx(DOSE_TOLERANCE_FLOOR_GY)


def write_with_dvhs(case: Case, folder: Path, items: list[Dataset]) -> dict[str, Path]:
    case.rt_dose.DVHSequence = Sequence(items)
    return case.write(folder)


def test_synthetic_plan_agrees_and_a_wrong_volume_is_flagged(tmp_path):
    """A uniform 10 Gy cylinder: the planning system's right DVH agrees; one with a wrong volume is flagged in
    volume only; an ROI the dose has no DVH of gets none."""
    case = Case(
        rois=[RoiShape("PTV", radius_mm=10.0, z_range_mm=(-10.0, 10.0)), RoiShape("Wrong", radius_mm=10.0, z_range_mm=(-10.0, 10.0)),
              RoiShape("Other", radius_mm=5.0, z_range_mm=(-4.0, 4.0))],
        dose=lambda x, y, z: np.full_like(x, UNIFORM_GY),
    )
    write_with_dvhs(case, tmp_path, [dvh_item(1, uniform_cumulative(CYLINDER_CC)), dvh_item(2, uniform_cumulative(1.5 * CYLINDER_CC))])
    rows, notes = dvh_statistics([tmp_path], compare_tps=True)
    by_name = {r.name: r for r in rows}

    right = by_name["PTV"].tps
    assert right is not None and right.flagged == []
    assert right.quantities["volume_cc"].rtcheck == pytest.approx(CYLINDER_CC, rel=0.01)
    assert right.quantities["volume_cc"].tps == pytest.approx(CYLINDER_CC)
    assert right.quantities["mean_gy"].rtcheck == pytest.approx(UNIFORM_GY, abs=1e-3)
    assert right.quantities["mean_gy"].tps == pytest.approx(UNIFORM_GY + BIN_GY / 2)
    assert right.quantities["d95_gy"].difference == pytest.approx(0.0, abs=0.01)
    assert right.quantities["d2cc_gy"].difference == pytest.approx(0.0, abs=0.01)
    assert right.quantities["mean_gy"].tolerance == pytest.approx(1.008)  # 2 % of 50.4 Gy

    wrong = by_name["Wrong"].tps
    assert wrong.flagged == ["volume_cc"]
    volume = wrong.quantities["volume_cc"]
    assert volume.difference == pytest.approx(-0.5 * CYLINDER_CC, rel=0.02)
    assert volume.relative_difference_pct == pytest.approx(-100 / 3, abs=1.0)

    assert by_name["Other"].tps is None

    # The command line: JSON fields, the table's second section, CSV columns.
    document = json.loads(ok(rtcheck("dvh", tmp_path, "--compare-tps", "--format", "json")).stdout)
    rows_json = {r["name"]: r for r in document["structures"]}
    assert rows_json["Wrong"]["tps_flagged"] == ["volume_cc"]
    assert rows_json["PTV"]["tps_flagged"] == []
    assert rows_json["PTV"]["tps"]["mean_gy"] == pytest.approx(10.005)
    assert set(rows_json["PTV"]["tps_difference"]) == {"volume_cc", "mean_gy", "d95_gy", "d2cc_gy"}
    assert rows_json["Other"]["tps"] is None and rows_json["Other"]["tps_flagged"] is None
    plain = json.loads(ok(rtcheck("dvh", tmp_path, "--format", "json")).stdout)
    assert "tps" not in plain["structures"][0]  # the document is unchanged without --compare-tps

    table = ok(rtcheck("dvh", tmp_path, "--compare-tps")).stdout
    assert "Planning system DVHs" in table and "Tolerance:" in table
    wrong_line = next(line for line in table.splitlines() if line.startswith("Wrong") and "/" in line)
    assert "!" in wrong_line and wrong_line.rstrip().endswith("volume_cc")

    csv_text = ok(rtcheck("dvh", tmp_path, "--compare-tps", "--format", "csv")).stdout
    header, *lines = csv_text.splitlines()
    assert header.endswith("tps_volume_cc,diff_volume_cc,tps_mean_gy,diff_mean_gy,tps_d95_gy,diff_d95_gy,tps_d2cc_gy,diff_d2cc_gy,tps_flagged")
    assert next(line for line in lines if line.startswith("Wrong,")).endswith(",volume_cc")


def test_dose_without_dvhs_says_so(tmp_path):
    uniform_case().write(tmp_path)
    rows, notes = dvh_statistics([tmp_path], compare_tps=True)
    assert all(r.tps is None for r in rows)
    assert any("no planning-system DVHs (DVHSequence)" in note for note in notes)
    assert dvh_statistics([tmp_path])[1] == []


def test_per_beam_dvhs_are_not_compared(tmp_path):
    """Two BEAM doses, each with its own (per-beam) DVH: summed for the DVH, and a note says the TPS DVHs are not comparable."""
    case = uniform_case()
    group = case.plan.FractionGroupSequence[0]
    group.NumberOfBeams = 2
    second_ref = copy.deepcopy(group.ReferencedBeamSequence[0])
    second_ref.ReferencedBeamNumber = 2
    group.ReferencedBeamSequence.append(second_ref)
    second_beam = copy.deepcopy(case.plan.BeamSequence[0])
    second_beam.BeamNumber = 2
    case.plan.BeamSequence.append(second_beam)
    case.rt_dose.DoseSummationType = "BEAM"
    case.rt_dose.DVHSequence = Sequence([dvh_item(1, uniform_cumulative(CYLINDER_CC))])
    paths = case.write(tmp_path)
    doses = []
    for beam in (1, 2):
        ds = pydicom.dcmread(paths["dose"])
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        beam_ref = Dataset()
        beam_ref.ReferencedBeamNumber = beam
        group_ref = Dataset()
        group_ref.ReferencedFractionGroupNumber = 1
        group_ref.ReferencedBeamSequence = Sequence([beam_ref])
        ds.ReferencedRTPlanSequence[0].ReferencedFractionGroupSequence = Sequence([group_ref])
        doses.append(ds)
    paths["dose"].unlink()
    for beam, ds in enumerate(doses, start=1):
        ds.save_as(tmp_path / f"RD{beam}.dcm", enforce_file_format=True)
    rows, notes = dvh_statistics([tmp_path], compare_tps=True)
    [row] = rows
    assert row.mean_gy == pytest.approx(2 * UNIFORM_GY, abs=1e-3)  # the sum
    assert row.tps is None
    assert any("per beam" in note and "not compared" in note for note in notes)


def test_session_dose_dvhs_are_scaled_to_the_course(tmp_path):
    """A FRACTION_SESSION dose (one session) is multiplied by the fractions, and so are the doses of its DVHs."""
    case = uniform_case()
    case.rt_dose.DoseSummationType = "FRACTION_SESSION"
    write_with_dvhs(case, tmp_path, [dvh_item(1, uniform_cumulative(CYLINDER_CC))])
    [row], notes = dvh_statistics([tmp_path], compare_tps=True)
    mean = row.tps.quantities["mean_gy"]
    assert mean.rtcheck == pytest.approx(UNIFORM_GY * case.fractions, abs=0.01)
    assert mean.tps == pytest.approx((UNIFORM_GY + BIN_GY / 2) * case.fractions)
    assert row.tps.flagged == []
    assert any(f"multiplied by {case.fractions}" in note for note in row.notes)


# --------------------------------------------------------------------------- check JSON


def test_check_json_without_dvhs_has_an_empty_tps_comparison():
    result = rtcheck("check", COMPLIANT, *CR_PR, "--format", "json")
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["tps_comparison"] == []
    assert "Planning system DVHs" not in ok(rtcheck("check", COMPLIANT, *CR_PR)).stdout


def tps_curve_of(dvh: DoseVolumeHistogram, bin_gy: float, *, volume_factor: float = 1.0) -> np.ndarray:
    """rtcheck's cumulative DVH sampled at the lower edges of ``bin_gy`` bins (what a planning system would store)."""
    edges = np.arange(0.0, dvh.max_gy + bin_gy, bin_gy)
    return np.round(np.array([dvh.volume_at_dose_cc(d) for d in edges]) * volume_factor, 4)


def test_check_compares_evaluated_structures_with_the_planning_system(tmp_path):
    """A sample plan whose RT Dose gets DVHs: Heart's (volume 20 % too large) is flagged, Lungs' agrees; the
    check's JSON lists both; the table has a 'Planning system DVHs' section naming the flagged difference;
    the verdict does not change."""
    folder = tmp_path / "plan"
    shutil.copytree(COMPLIANT, folder)
    inputs = load_inputs([folder])
    plan_set = build_dvh_set(inputs)
    rois = {roi.name: roi for roi in plan_set.structure_set.rois}
    heart = compute_dvh(rois["Heart"], plan_set.dose)
    lungs = compute_dvh(rois["Lungs"], plan_set.dose)
    dose_path = folder / "RD.dcm"
    ds = pydicom.dcmread(dose_path)
    ds.DVHSequence = Sequence([
        dvh_item(rois["Heart"].number, tps_curve_of(heart, 0.1, volume_factor=1.2), bin_width=0.1),
        dvh_item(rois["Lungs"].number, tps_curve_of(lungs, 0.1), bin_width=0.1),
    ])
    ds.save_as(dose_path, enforce_file_format=True)

    result = rtcheck("check", folder, *CR_PR, "--format", "json")
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["verdict"] == "per_protocol"
    compared = {c["structure"]: c for c in document["tps_comparison"]}
    assert set(compared) == {"Heart", "Lungs"}
    heart_doc = compared["Heart"]
    assert heart_doc["roi_name"] == "Heart" and heart_doc["roi_number"] == rois["Heart"].number
    assert set(heart_doc["quantities"]) == {"volume_cc", "mean_gy", "d95_gy", "d2cc_gy"}
    assert heart_doc["quantities"]["volume_cc"]["flagged"] is True
    assert heart_doc["quantities"]["volume_cc"]["tps"] == pytest.approx(1.2 * heart.total_volume_cc, rel=1e-3)
    assert heart_doc["quantities"]["mean_gy"]["flagged"] is False
    assert not any(q["flagged"] for q in compared["Lungs"]["quantities"].values())
    for q in compared["Lungs"]["quantities"].values():
        assert set(q) >= {"rtcheck", "tps", "difference", "flagged"}
        assert abs(q["difference"]) < 0.05 * max(abs(q["tps"]), 1.0)

    table = ok(rtcheck("check", folder, *CR_PR)).stdout
    section = table.split("Planning system DVHs", 1)[1]
    assert "Heart (Heart) volume_cc" in section and "exceeds" in section

    [api_result] = check_paths([folder], "escc-induction-icrt-ccrt", "cr-pr")
    assert [t.structure for t in api_result.tps_comparison if t.flagged] == ["Heart"]


# --------------------------------------------------------------------------- the dicompyler-core example


def test_dicompyler_example_agreement(external_dir):
    """The example's RT Dose holds the planning system's DVHs for 9 ROIs (curves in Gy and cm3; its stored
    min/max/mean statistics are in % of the 14 Gy prescription): Heart, Lt Lung and Breast agree within tolerance
    in volume and mean dose. Prints the agreement table (pytest -s shows it)."""
    example = external_dir / "dicompyler-core-example"
    result = ok(rtcheck("dvh", example, "--compare-tps", "--format", "json"))
    rows = {r["name"]: r for r in json.loads(result.stdout)["structures"]}
    compared = {name: r for name, r in rows.items() if r["tps"] is not None}
    assert len(compared) == 9 and rows["Areola"]["tps"] is None
    for name in ("Heart", "Lt Lung", "Breast"):
        row = rows[name]
        assert "volume_cc" not in row["tps_flagged"] and "mean_gy" not in row["tps_flagged"], (name, row)
        assert abs(row["tps_relative_difference_pct"]["volume_cc"]) < 3.0, name
    # The planning system's curves are in Gy: its Heart volume is the first cumulative value, its maximum
    # agrees with the dose grid's, and the stored statistics in % are reported.
    dose = pydicom.dcmread(example / "rtdose.dcm")
    heart_item = next(i for i in dose.DVHSequence if int(i.DVHReferencedROISequence[0].ReferencedROINumber) == 5)
    assert rows["Heart"]["tps"]["volume_cc"] == pytest.approx(float(heart_item.DVHData[1]), abs=1e-3)
    grid_max_gy = float(dose.pixel_array.max()) * float(dose.DoseGridScaling)
    [body] = [d for d in read_tps_dvhs(dose) if d.roi_number == 1]
    assert body.max_gy == pytest.approx(grid_max_gy, abs=0.02)  # the curve is in Gy, to within its 0.01 Gy bins
    assert float(body.stored_max) == pytest.approx(grid_max_gy / 14.0 * 100.0, rel=1e-3)  # the stored maximum in %
    assert "in % of the 14 Gy prescription" in result.stderr

    # Shown with `pytest -s` (and on failure): the agreement table of the README.
    print("\n\ndicompyler-core example: rtcheck / planning system (difference)")
    for name, row in compared.items():
        cells = []
        for q in ("volume_cc", "mean_gy", "d95_gy", "d2cc_gy"):
            theirs, difference = row["tps"][q], row["tps_difference"][q]
            if theirs is None or difference is None:
                cells.append(f"{q} -")
            else:
                cells.append(f"{q} {theirs + difference:.2f} / {theirs:.2f} ({difference:+.2f})")
        print(f"  {name:16s} " + "  ".join(cells) + f"  flagged: {row['tps_flagged']}")
