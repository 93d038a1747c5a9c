"""EQD2/BED (linear-quadratic model): formulas, metric grammar, per-voxel conversion,
DVH metrics on converted doses, alpha/beta defaults and overrides, re-irradiation sums
(resampling, Frame of Reference, recovery credit, coverage), all against hand calculations."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from cli_helpers import rtcheck
from dicom_factory import Case, RoiShape
from rtcheck.api import check_paths, dvh_statistics
from rtcheck.dicom.dose import DoseGrid
from rtcheck.errors import InputError, MetricSyntaxError, ProtocolError, SelectionError
from rtcheck.grading import CheckOptions
from rtcheck.metrics.grammar import Biology, parse_metric
from rtcheck.protocol.library import load_protocol_file
from rtcheck.radiobiology.alpha_beta import default_alpha_beta_gy, roi_alpha_beta_gy
from rtcheck.radiobiology.dose import biological_grid
from rtcheck.radiobiology.lq import bed_from_dose_per_fraction_gy, bed_gy, bed_to_eqd2_gy, eqd2_from_dose_per_fraction_gy, eqd2_gy, eqd2_to_bed_gy
from rtcheck.radiobiology.recovery import RecoveryCredit, RecoveryStep
from rtcheck.radiobiology.reirradiation import PriorCourse, resample_onto
from rtcheck.results import Status


# --------------------------------------------------------------------------- LQ formulas


@pytest.mark.parametrize(
    "total, n, ab, eqd2, bed",
    [
        (60.0, 30, 10.0, 60.0, 72.0),  # 2 Gy/fx: EQD2 is the physical dose
        (30.0, 10, 2.0, 37.5, 75.0),  # 3 Gy/fx to the cord: 30 (3 + 2) / 4; 30 (1 + 3/2)
        (50.4, 28, 10.0, 50.4 * 11.8 / 12, 50.4 * 1.18),
        (20.0, 5, 3.0, 28.0, 46.6666667),  # 4 Gy/fx: 20 (4 + 3) / 5; 20 (1 + 4/3)
    ],
)
def test_eqd2_and_bed_of_uniform_courses(total, n, ab, eqd2, bed):
    assert eqd2_gy(total, n, ab) == pytest.approx(eqd2)
    assert bed_gy(total, n, ab) == pytest.approx(bed)
    assert eqd2_from_dose_per_fraction_gy(total, total / n, ab) == pytest.approx(eqd2)
    assert bed_from_dose_per_fraction_gy(total, total / n, ab) == pytest.approx(bed)
    assert eqd2_to_bed_gy(eqd2, ab) == pytest.approx(bed)
    assert bed_to_eqd2_gy(bed, ab) == pytest.approx(eqd2)
    assert isinstance(eqd2_gy(total, n, ab), float)


def test_lq_accepts_arrays_elementwise():
    doses = np.array([0.0, 30.0, 60.0])
    assert np.allclose(eqd2_gy(doses, 10, 2.0), [0.0, 37.5, 60 * (6 + 2) / 4])
    assert np.allclose(bed_gy(doses, 10, np.array([2.0, 2.0, 3.0])), [0.0, 75.0, 60 * (1 + 6 / 3)])


@pytest.mark.parametrize("n, ab", [(0, 3.0), (10, 0.0), (10, -2.0)])
def test_lq_refuses_impossible_parameters(n, ab):
    with pytest.raises(ValueError):
        eqd2_gy(30.0, n, ab)


# --------------------------------------------------------------------------- grammar


@pytest.mark.parametrize(
    "text, model, ab, kind_output, physical",
    [
        ("D0.03cc[EQD2Gy(a/b=2)]", "EQD2", 2.0, "Gy", "D0.03cc[Gy]"),
        ("Max[BEDGy(a/b=3)]", "BED", 3.0, "Gy", "Max[Gy]"),
        ("Mean[EQD2Gy]", "EQD2", None, "Gy", "Mean[Gy]"),
        ("V50EQD2Gy(a/b=3)[%]", "EQD2", 3.0, "%", "V50Gy[%]"),
        ("CV20.5BEDGy(a/b=10)[cc]", "BED", 10.0, "cc", "CV20.5Gy[cc]"),
        ("DC2cc[EQD2Gy(a/b=2.5)]", "EQD2", 2.5, "Gy", "DC2cc[Gy]"),
    ],
)
def test_radiobiological_metrics_parse(text, model, ab, kind_output, physical):
    metric = parse_metric(text)
    assert metric.biology == Biology(model, ab)
    assert metric.output_unit == kind_output
    assert not metric.needs_prescription
    assert metric.physical().text == physical
    assert metric.physical().biology is None
    assert parse_metric(physical).with_biology(Biology(model, ab)).text == text


@pytest.mark.parametrize(
    "text, position",
    [
        ("Max[EQD2]", 9),  # Gy missing after the model
        ("Max[EQD2Gy(a/b=0)]", 16),  # alpha/beta must be positive
        ("Max[EQD2Gy(ab=2)]", 12),
        ("V20EQD2Gy(a/b=3[%]", 16),
        ("Max[EQD2Gy(a/b=2)]x", 19),
        ("Max[eqd2Gy(a/b=2)]", 5),  # case-sensitive
    ],
)
def test_malformed_radiobiological_metrics_point_at_the_character(text, position):
    with pytest.raises(MetricSyntaxError) as info:
        parse_metric(text)
    assert f"at character {position}" in str(info.value)


@pytest.mark.parametrize("text", ["D2cc[%]", "V95%[%]", "Max[cGy]", "V2000cGy[cc]"])
def test_eqd2_needs_doses_in_gy(text):
    with pytest.raises(MetricSyntaxError, match="needs its dose in Gy"):
        parse_metric(text).with_biology(Biology("EQD2", 3.0))


# --------------------------------------------------------------------------- per-voxel conversion


def _grid(values: np.ndarray, origin=(0.0, 0.0, 0.0), spacing=(2.0, 2.0, 2.0), frame="1.2.3") -> DoseGrid:
    nz, ny, nx = values.shape
    return DoseGrid(
        dose_gy=values.astype(float),
        x_mm=origin[0] + spacing[0] * np.arange(nx),
        y_mm=origin[1] + spacing[1] * np.arange(ny),
        z_mm=origin[2] + spacing[2] * np.arange(nz),
        frame_of_reference_uid=frame,
    )


def test_each_voxel_uses_its_own_dose_per_fraction():
    rng = np.random.default_rng(7)
    dose = rng.uniform(0.0, 70.0, size=(3, 4, 5))
    grid = _grid(dose)
    n, ab = 25, 3.0
    eqd2 = biological_grid(grid, n, "EQD2", ab)
    bed = biological_grid(grid, n, "BED", ab)
    # The hand formulas of the brief, voxel by voxel.
    assert np.allclose(eqd2.dose_gy, dose * (dose / n + ab) / (2 + ab))
    assert np.allclose(bed.dose_gy, dose * (1 + dose / (n * ab)))
    assert eqd2.dose_gy is not grid.dose_gy and np.array_equal(grid.dose_gy, dose)  # the physical grid is untouched
    assert np.array_equal(eqd2.x_mm, grid.x_mm) and eqd2.frame_of_reference_uid == grid.frame_of_reference_uid
    # A voxel at 2 Gy per fraction keeps its dose in EQD2, whatever alpha/beta.
    two = _grid(np.full((2, 2, 2), 2.0 * n))
    assert np.allclose(biological_grid(two, n, "EQD2", 2.0).dose_gy, 2.0 * n)


# --------------------------------------------------------------------------- DVH metrics in EQD2/BED


def _linear_case(fractions: int) -> Case:
    """Dose 20 + 0.5 (x + 40) Gy, linear along x; an organ: cylinder r = 10 mm about the z axis."""
    return Case(
        [RoiShape("Organ", radius_mm=10.0, z_range_mm=(-20, 20), points=128)],
        dose=lambda x, y, z: 20.0 + 0.5 * (x + 40.0),
        prescriptions=[(None, 40.0)],
        fractions=fractions,
    )


def _disc_fraction_beyond(a_mm: float, r_mm: float) -> float:
    """Fraction of a disc of radius r lying at x >= a."""
    return (r_mm**2 * math.acos(a_mm / r_mm) - a_mm * math.sqrt(r_mm**2 - a_mm**2)) / (math.pi * r_mm**2)


def test_dvh_metrics_in_eqd2_of_a_linear_dose_match_hand_values(tmp_path):
    _linear_case(10).write(tmp_path)
    metrics = ["Max[EQD2Gy(a/b=3)]", "D50%[EQD2Gy(a/b=3)]", "Mean[EQD2Gy(a/b=3)]", "Max[BEDGy(a/b=3)]", "V60EQD2Gy(a/b=3)[%]", "Mean[Gy]"]
    [row], _ = dvh_statistics([tmp_path], metrics=metrics)
    n, ab = 10, 3.0
    # Physical dose over the disc: 35..45 Gy, median and mean 40 Gy.
    assert row.metrics["Mean[Gy]"] == pytest.approx(40.0, abs=0.01)
    # EQD2 rises with dose, so its maximum and median are those of the physical dose converted.
    assert row.metrics["Max[EQD2Gy(a/b=3)]"] == pytest.approx(45.0 * (4.5 + 3.0) / 5.0, abs=0.01)  # 67.5
    assert row.metrics["Max[BEDGy(a/b=3)]"] == pytest.approx(45.0 * (1 + 4.5 / 3.0), abs=0.02)  # 112.5
    assert row.metrics["D50%[EQD2Gy(a/b=3)]"] == pytest.approx(40.0 * (4.0 + 3.0) / 5.0, abs=0.02)  # 56
    # Mean EQD2 = (ab mean(D) + mean(D^2) / n) / (2 + ab); over a disc mean(x^2) = r^2 / 4.
    mean_d2 = 40.0**2 + 0.5**2 * 10.0**2 / 4.0
    assert row.metrics["Mean[EQD2Gy(a/b=3)]"] == pytest.approx((ab * 40.0 + mean_d2 / n) / (2 + ab), abs=0.01)  # 56.125
    # V60 in EQD2: the physical dose D with D (D/10 + 3) / 5 = 60, reached at x = (D - 40) / 0.5.
    d60 = (-3.0 + math.sqrt(9.0 + 4 * 0.1 * 300.0)) / (2 * 0.1)
    assert row.metrics["V60EQD2Gy(a/b=3)[%]"] == pytest.approx(100 * _disc_fraction_beyond((d60 - 40.0) / 0.5, 10.0), abs=0.3)


def test_fractions_come_from_the_plan_or_the_option(tmp_path):
    _linear_case(10).write(tmp_path)
    [from_plan], _ = dvh_statistics([tmp_path], metrics=["Max[EQD2Gy(a/b=3)]"])
    [given], _ = dvh_statistics([tmp_path], metrics=["Max[EQD2Gy(a/b=3)]"], fractions=5)
    assert from_plan.metrics["Max[EQD2Gy(a/b=3)]"] == pytest.approx(45.0 * (4.5 + 3) / 5, abs=0.01)
    assert given.metrics["Max[EQD2Gy(a/b=3)]"] == pytest.approx(45.0 * (9.0 + 3) / 5, abs=0.02)


def test_uniform_dose_gives_the_formula_exactly(tmp_path):
    Case([RoiShape("Organ", radius_mm=8.0)], dose=lambda x, y, z: np.full_like(x, 30.0), fractions=10).write(tmp_path)
    metrics = ["Max[EQD2Gy(a/b=2)]", "Min[EQD2Gy(a/b=2)]", "Mean[BEDGy(a/b=2)]", "D95%[EQD2Gy(a/b=10)]"]
    [row], _ = dvh_statistics([tmp_path], metrics=metrics)
    assert row.metrics["Max[EQD2Gy(a/b=2)]"] == pytest.approx(37.5, abs=1e-3)
    assert row.metrics["Min[EQD2Gy(a/b=2)]"] == pytest.approx(37.5, abs=1e-3)
    assert row.metrics["Mean[BEDGy(a/b=2)]"] == pytest.approx(75.0, abs=1e-3)
    assert row.metrics["D95%[EQD2Gy(a/b=10)]"] == pytest.approx(30.0 * 13 / 12, abs=2e-3)


def test_dvh_without_plan_fractions_asks_for_them(tmp_path):
    paths = _linear_case(10).write(tmp_path)
    paths["plan"].unlink()
    with pytest.raises(SelectionError, match="--fractions"):
        dvh_statistics([tmp_path], metrics=["Max[EQD2Gy(a/b=3)]"])
    result = rtcheck("dvh", tmp_path, "--metric", "Max[EQD2Gy(a/b=3)]", "--fractions", "10", "--format", "json")
    assert result.exit_code == 0, result.output
    import json

    [row] = json.loads(result.stdout)["structures"]
    assert row["metrics"]["Max[EQD2Gy(a/b=3)]"] == pytest.approx(67.5, abs=0.01)


# --------------------------------------------------------------------------- alpha/beta defaults


@pytest.mark.parametrize(
    "names, is_target, expected",
    [
        (["PTV"], True, 10.0),
        (["SpinalCord"], False, 2.0),
        (["SpinalCord_PRV05", "Cord+"], False, 2.0),
        (["Brainstem"], False, 2.0),
        (["脊髓"], False, 2.0),
        (["Lungs"], False, 3.0),
        (["Heart"], False, 3.0),
    ],
)
def test_default_alpha_beta_by_structure_class(names, is_target, expected):
    value, reason = default_alpha_beta_gy(names, is_target=is_target)
    assert value == expected and "rtcheck default" in reason


def test_roi_defaults_read_the_interpreted_type():
    assert roi_alpha_beta_gy("Boost", "PTV")[0] == 10.0
    assert roi_alpha_beta_gy("PGTV", "ORGAN")[0] == 10.0
    assert roi_alpha_beta_gy("Spinal Cord", "ORGAN")[0] == 2.0
    assert roi_alpha_beta_gy("Esophagus", "ORGAN")[0] == 3.0


def test_dvh_uses_the_roi_default_and_says_so(tmp_path):
    Case(
        [RoiShape("SpinalCord", radius_mm=5.0), RoiShape("Heart", centre_xy_mm=(20, 0), radius_mm=6.0)],
        dose=lambda x, y, z: np.full_like(x, 30.0),
        fractions=10,
    ).write(tmp_path)
    rows, _ = dvh_statistics([tmp_path], metrics=["Max[EQD2Gy]"])
    by_name = {r.name: r for r in rows}
    assert by_name["SpinalCord"].metrics["Max[EQD2Gy]"] == pytest.approx(37.5, abs=1e-3)  # a/b 2
    assert by_name["Heart"].metrics["Max[EQD2Gy]"] == pytest.approx(30 * 6 / 5, abs=1e-3)  # a/b 3
    assert any("α/β 2 Gy" in note for note in by_name["SpinalCord"].notes)


# --------------------------------------------------------------------------- protocols with biology


def _protocol(tmp_path: Path, constraints: list[dict], name: str = "p.yaml") -> Path:
    doc = {
        "schema": "rtcheck.protocol/1",
        "id": "test-reirradiation",
        "title": "test",
        "source": {"notes": "test"},
        "structures": {
            "PTV": {"role": "target", "aliases": ["PTV"]},
            "SpinalCord": {"aliases": ["SpinalCord"]},
            "Heart": {"aliases": ["Heart"]},
        },
        "arms": {
            "reirr": {
                "title": "re-irradiation",
                "prescriptions": [{"target": "PTV", "total_dose_gy": 30.0, "fractions": 10, "dose_per_fraction_gy": 3.0, "source": "test"}],
                "constraints": constraints,
            }
        },
    }
    path = tmp_path / name
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return path


CREDIT = {"steps": [{"after_months": 6, "credit_pct": 25}, {"after_months": 12, "credit_pct": 50}], "source": "test rule"}


def test_alpha_beta_defaults_and_overrides_in_a_protocol(tmp_path):
    path = _protocol(
        tmp_path,
        [
            {"id": "cord", "structure": "SpinalCord", "metric": "Max[Gy]", "biology": {"model": "EQD2"}, "per_protocol": "<= 50 Gy", "source": "t"},
            {"id": "ptv", "structure": "PTV", "metric": "D50%[EQD2Gy]", "per_protocol": ">= 10 Gy", "source": "t"},
            {"id": "heart", "structure": "Heart", "metric": "Mean[BEDGy]", "per_protocol": "<= 90 Gy", "source": "t"},
            {"id": "heart5", "structure": "Heart", "metric": "Mean[Gy]", "biology": {"model": "BED", "alpha_beta_gy": 5, "source": "local"},
             "per_protocol": "<= 90 Gy", "source": "t"},
        ],
    )
    arm = load_protocol_file(path).arm("reirr")
    texts = {c.id: (c.metric.text, c.alpha_beta_note) for c in arm.constraints}
    assert texts["cord"][0] == "Max[EQD2Gy(a/b=2)]" and "rtcheck default" in texts["cord"][1]
    assert texts["ptv"][0] == "D50%[EQD2Gy(a/b=10)]"
    assert texts["heart"][0] == "Mean[BEDGy(a/b=3)]"
    assert texts["heart5"] == ("Mean[BEDGy(a/b=5)]", "from the protocol: local")


@pytest.mark.parametrize(
    "constraint, entry, message",
    [
        ({"metric": "Max[Gy]", "cumulative": True}, "(c).cumulative", "needs an EQD2 or BED metric"),
        ({"metric": "Max[EQD2Gy(a/b=2)]", "recovery_credit": CREDIT}, "(c).recovery_credit", "only for a cumulative constraint"),
        ({"metric": "Max[Gy]", "biology": {"model": "LQL"}}, "(c).biology.model", "expected EQD2 or BED"),
        ({"metric": "Max[EQD2Gy(a/b=2)]", "biology": {"model": "EQD2"}}, "(c).biology", "already names its model"),
        ({"metric": "Max[%]", "biology": {"model": "EQD2"}}, "(c).metric", "needs its dose in Gy"),
        ({"metric": "Max[Gy]", "biology": {"model": "EQD2", "alpha_beta_gy": 0}}, "(c).biology.alpha_beta_gy", "positive"),
        ({"metric": "Max[Gy]", "biology": {"model": "EQD2", "ab": 2}}, "(c).biology", "unknown key(s): ab"),
        ({"metric": "Max[EQD2Gy(a/b=2)]", "cumulative": True,
          "recovery_credit": {"steps": [{"after_months": 12, "credit_pct": 50}, {"after_months": 6, "credit_pct": 25}], "source": "x"}},
         "(c).recovery_credit.steps[1]", "increasing after_months"),
        ({"metric": "Max[EQD2Gy(a/b=2)]", "cumulative": True,
          "recovery_credit": {"steps": [{"after_months": 6, "credit_pct": 100}], "source": "x"}},
         "(c).recovery_credit.steps[0]", "0 < credit_pct < 100"),
    ],
)
def test_biology_fields_are_validated_with_entry_pointing_errors(tmp_path, constraint, entry, message):
    body = {"id": "c", "structure": "SpinalCord", "per_protocol": "<= 50 Gy", "source": "t", **constraint}
    if constraint["metric"].endswith("[%]"):
        body["per_protocol"] = "<= 50 %"
    path = _protocol(tmp_path, [body])
    with pytest.raises(ProtocolError) as info:
        load_protocol_file(path)
    assert str(path) in str(info.value)
    assert f"arms.reirr.constraints[0] {entry}" in str(info.value)
    assert message in str(info.value)


def test_recovery_credit_schedule():
    credit = RecoveryCredit((RecoveryStep(6, 25), RecoveryStep(12, 50)), "rule")
    assert [credit.credit_pct(m) for m in (0, 5.9, 6, 11.9, 12, 40)] == [0, 0, 25, 25, 50, 50]


# --------------------------------------------------------------------------- re-irradiation


def test_prior_dose_is_resampled_trilinearly_onto_an_offset_grid():
    # A linear field is reproduced exactly by trilinear interpolation.
    def field(x, y, z):
        return 10.0 + 0.3 * x - 0.2 * y + 0.1 * z + 40.0

    pz, py, px = np.meshgrid(np.arange(-15.0, 16, 5.0), np.arange(-12.5, 13, 5.0), np.arange(-17.5, 18, 5.0), indexing="ij")
    prior = DoseGrid(field(px, py, pz), np.arange(-17.5, 18, 5.0), np.arange(-12.5, 13, 5.0), np.arange(-15.0, 16, 5.0), "1.2.3")
    cx, cy, cz = np.arange(-24.0, 25, 3.0), np.arange(-16.0, 17, 2.0), np.arange(-20.0, 21, 4.0)
    current = DoseGrid(np.zeros((cz.size, cy.size, cx.size)), cx, cy, cz, "1.2.3")
    values, covered = resample_onto(prior, current)
    zz, yy, xx = np.meshgrid(cz, cy, cx, indexing="ij")
    # Covered: centres within the prior grid's outermost centres plus half a prior voxel (2.5 mm).
    inside = (np.abs(xx) <= 20.0) & (np.abs(yy) <= 15.0) & (np.abs(zz) <= 17.5)
    assert np.array_equal(covered, inside)
    strictly = (np.abs(xx) <= 17.5) & (np.abs(yy) <= 12.5) & (np.abs(zz) <= 15.0)
    assert np.allclose(values[strictly], field(xx, yy, zz)[strictly])
    assert np.all(values[~covered] == 0.0)
    # In the half-voxel band the edge value is used (the DVH engine's convention).
    band = covered & ~strictly
    assert np.allclose(values[band], field(np.clip(xx, -17.5, 17.5), np.clip(yy, -12.5, 12.5), np.clip(zz, -15, 15))[band])


def test_a_different_frame_of_reference_is_refused():
    prior = _grid(np.ones((2, 2, 2)), frame="1.2.3")
    current = _grid(np.ones((2, 2, 2)), frame="9.9.9")
    with pytest.raises(InputError, match="registration is not supported"):
        resample_onto(prior, current)


CORD = RoiShape("SpinalCord", centre_xy_mm=(0, 25), radius_mm=4.0, z_range_mm=(-20, 20))
ROIS = [RoiShape("PTV", radius_mm=10.0, interpreted_type="PTV"), CORD, RoiShape("Heart", centre_xy_mm=(0, -25), radius_mm=6.0)]


def _reirradiation_case(tmp_path: Path, *, prior_z=(-30.0, 30.0), prior_frame: str | None = None) -> tuple[Path, Path]:
    """Current course: uniform 30 Gy / 10 fx over the contoured length (|z| <= 20 mm; none beyond, so the organs'
    contours are complete where the dose is); prior: uniform 20 Gy on a 3 mm grid offset by 1.5 mm."""
    current = Case(ROIS, dose=lambda x, y, z: np.where(np.abs(z) <= 20.0, 30.0, 0.0), prescriptions=[("PTV", 30.0)], fractions=10)
    current.write(tmp_path / "current")
    prior = Case(
        ROIS, dose=lambda x, y, z: np.full_like(x, 20.0), fractions=10,
        grid_spacing_mm=(3.0, 3.0, 3.0), grid_min_mm=(-40.5, -40.5, prior_z[0]), grid_max_mm=(40.5, 40.5, prior_z[1]),
        frame_uid=prior_frame or current.frame_uid,
    )
    prior_path = tmp_path / "prior.dcm"
    prior.rt_dose.save_as(prior_path, enforce_file_format=True)
    return tmp_path / "current", prior_path


CUMULATIVE = {
    "id": "cord-cum", "structure": "SpinalCord", "metric": "D0.03cc[Gy]", "biology": {"model": "EQD2", "alpha_beta_gy": 2},
    "cumulative": True, "per_protocol": "<= 50 Gy", "source": "test limit", "recovery_credit": CREDIT,
}


def test_cumulative_eqd2_adds_both_courses_each_with_its_own_fractions(tmp_path):
    folder, prior = _reirradiation_case(tmp_path)
    protocol = load_protocol_file(_protocol(tmp_path, [CUMULATIVE]))
    [result] = check_paths([folder], protocol, "reirr", options=CheckOptions(prior=PriorCourse(prior, 10)))
    check = next(c for c in result.checks if c.id == "cord-cum")
    # Current 30 Gy / 10 fx: 30 (3 + 2) / 4 = 37.5; prior 20 Gy / 10 fx: 20 (2 + 2) / 4 = 20.
    assert check.value == pytest.approx(57.5, abs=1e-3)
    assert check.status is Status.DEVIATION_UNACCEPTABLE
    assert check.physical_value == pytest.approx(30.0, abs=1e-3)
    assert "cumulative EQD2" in check.biology and "α/β = 2 Gy" in check.biology
    assert "not applied" in check.biology and "--prior-interval-months" in check.biology
    assert str(prior) in result.input_files


@pytest.mark.parametrize("months, value, words", [(3, 57.5, "no recovery credit after 3 months"), (6, 52.5, "25 %"), (12, 47.5, "50 %")])
def test_recovery_credit_applies_only_with_the_interval(tmp_path, months, value, words):
    folder, prior = _reirradiation_case(tmp_path)
    protocol = load_protocol_file(_protocol(tmp_path, [CUMULATIVE]))
    [result] = check_paths([folder], protocol, "reirr", options=CheckOptions(prior=PriorCourse(prior, 10, months)))
    check = next(c for c in result.checks if c.id == "cord-cum")
    assert check.value == pytest.approx(value, abs=1e-3)
    assert words in check.biology
    assert ("recovery credit applied" in check.biology) == (months >= 6)
    assert check.status is (Status.PER_PROTOCOL if value <= 50 else Status.DEVIATION_UNACCEPTABLE)


def test_no_credit_without_a_protocol_statement(tmp_path):
    folder, prior = _reirradiation_case(tmp_path)
    constraint = {k: v for k, v in CUMULATIVE.items() if k != "recovery_credit"}
    protocol = load_protocol_file(_protocol(tmp_path, [constraint]))
    [result] = check_paths([folder], protocol, "reirr", options=CheckOptions(prior=PriorCourse(prior, 10, 24)))
    check = next(c for c in result.checks if c.id == "cord-cum")
    assert check.value == pytest.approx(57.5, abs=1e-3)
    assert "the protocol states none" in check.biology


def test_cumulative_without_prior_is_not_evaluated_never_passed(tmp_path):
    folder, _ = _reirradiation_case(tmp_path)
    protocol = load_protocol_file(_protocol(tmp_path, [{**CUMULATIVE, "per_protocol": "<= 500 Gy"}]))
    [result] = check_paths([folder], protocol, "reirr")
    check = next(c for c in result.checks if c.id == "cord-cum")
    assert check.status is Status.NOT_EVALUATED and check.value is None
    assert "--prior-dose" in check.message
    assert result.verdict is Status.NOT_EVALUATED


def test_structure_beyond_the_prior_grid_is_not_evaluated(tmp_path):
    folder, prior = _reirradiation_case(tmp_path, prior_z=(-9.0, 9.0))  # the cord runs z -20..20
    protocol = load_protocol_file(_protocol(tmp_path, [CUMULATIVE, {**CUMULATIVE, "id": "heart-cum", "structure": "Heart"}]))
    [result] = check_paths([folder], protocol, "reirr", options=CheckOptions(prior=PriorCourse(prior, 10)))
    check = next(c for c in result.checks if c.id == "cord-cum")
    assert check.status is Status.NOT_EVALUATED
    assert "beyond the prior dose grid" in check.message and "not assumed 0" in check.message
    assert any("covers" in note for note in result.notes)


def test_prior_in_another_frame_of_reference_is_an_input_error(tmp_path):
    folder, prior = _reirradiation_case(tmp_path, prior_frame="1.2.826.0.1.3680043.8.498.1")
    protocol = _protocol(tmp_path, [CUMULATIVE])
    result = rtcheck("check", folder, "--protocol", protocol, "--arm", "reirr", "--prior-dose", prior, "--prior-fractions", "10")
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"rtcheck: error: {prior}: registration is not supported")


def test_single_course_biological_check_reports_physical_value(tmp_path):
    folder, _ = _reirradiation_case(tmp_path)
    constraint = {"id": "cord-bed", "structure": "SpinalCord", "metric": "D0.03cc[BEDGy(a/b=2)]", "per_protocol": "<= 98 Gy", "source": "t"}
    [result] = check_paths([folder], load_protocol_file(_protocol(tmp_path, [constraint])), "reirr")
    check = next(c for c in result.checks if c.id == "cord-bed")
    assert check.value == pytest.approx(75.0, abs=1e-3)  # 30 (1 + 3 / 2)
    assert check.physical_value == pytest.approx(30.0, abs=1e-3)
    assert check.status is Status.PER_PROTOCOL
    assert check.biology.startswith("BED of the current course (10 fx")


def test_a_constraint_built_in_python_gets_the_alpha_beta_the_loader_would_give():
    """Without a/b in the metric, a constraint made through the API on a derived target structure is graded
    with the target default (10 Gy), as the loader would resolve it from the structure's role."""
    import dataclasses

    from rtcheck.api import check_paths
    from rtcheck.metrics.grammar import parse_metric
    from rtcheck.protocol.library import find_protocol
    from rtcheck.protocol.model import Constraint, ConstraintKind, Threshold

    protocol = find_protocol("escc-induction-icrt-ccrt")
    arm = protocol.arm("sd-pd")
    ring = dataclasses.replace(protocol.structures["PTV-PGTV"], role="target")  # derived: PTV minus PGTV
    extra = Constraint(
        id="ring-eqd2-max", structure="PTV-PGTV", metric=parse_metric("Max[EQD2Gy]"),
        per_protocol=Threshold("<=", 100.0, "Gy"), variation_acceptable=None, kind=ConstraintKind.INFORMATIONAL, source="test",
    )
    changed = dataclasses.replace(
        protocol,
        structures={**protocol.structures, "PTV-PGTV": ring},
        arms={**protocol.arms, "sd-pd": dataclasses.replace(arm, constraints=(*arm.constraints, extra))},
    )
    samples = Path(__file__).resolve().parents[1] / "sample_plans"
    [result] = check_paths([samples / "sd-pd-compliant"], changed, "sd-pd")
    check = next(c for c in result.checks if c.id == "ring-eqd2-max")
    assert "α/β = 10 Gy" in check.biology
    assert check.value == pytest.approx(eqd2_gy(check.physical_value, 28, 10.0), rel=1e-3)
