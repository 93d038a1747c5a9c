"""Physical organ limits written for one fractionation, graded in EQD2 when the plan's dose per fraction
differs (rtcheck.grading.fractionation), on plans written with pydicom, against hand calculations."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from dicom_factory import Case, RoiShape
from rtcheck.api import check_paths
from rtcheck.errors import ProtocolError
from rtcheck.protocol.library import load_protocol_file
from rtcheck.results import Status

ROIS = [RoiShape("PTV", centre_xy_mm=(20, 0), radius_mm=6.0, interpreted_type="PTV"), RoiShape("SpinalCord", radius_mm=5.0),
        RoiShape("Heart", centre_xy_mm=(-20, 0), radius_mm=6.0)]
WRITTEN_FOR_2GY = {"dose_per_fraction_gy": 2.0, "source": "conventional 2 Gy fractions (test)"}


def _protocol(tmp_path: Path, constraints: list[dict], written_for: dict | None = WRITTEN_FOR_2GY) -> Path:
    doc = {
        "schema": "rtcheck.protocol/1", "id": "test-fractionation", "title": "test", "source": {"notes": "test"},
        "structures": {"PTV": {"role": "target", "aliases": ["PTV"]}, "SpinalCord": {"aliases": ["SpinalCord"]}, "Heart": {"aliases": ["Heart"]}},
        "arms": {"site": {"title": "site-set dose", "prescriptions": [{"target": "PTV", "dose_set_by": "site", "source": "test",
                                             "window": {"eqd2_gy": {"min": 20, "max": 100}, "alpha_beta_gy": 10, "source": "t"}}],
                          "constraints": constraints}},
    }
    if written_for is not None:
        doc["organ_limits_written_for"] = written_for
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return path


CORD = {"id": "cord", "structure": "SpinalCord", "metric": "Max[Gy]", "per_protocol": "<= 45 Gy", "source": "t"}


def _check(tmp_path: Path, protocol: Path, *, total_gy: float, fractions: int, organ_gy: float):
    folder = tmp_path / "plan"
    Case(ROIS, dose=lambda x, y, z: np.where(np.abs(z) > 21, 0.0, np.where(x > 10, total_gy, organ_gy)), prescriptions=[("PTV", total_gy)], fractions=fractions).write(folder)
    [result] = check_paths([folder], load_protocol_file(protocol), "site")
    return {c.id: c for c in result.checks}


def test_hypofractionated_cord_is_graded_in_eqd2_against_the_converted_limit(tmp_path):
    # The case: cord max 44.5 Gy in 15 fx (plan 45 Gy / 15 fx = 3 Gy/fx), limit 45 Gy written for 2 Gy/fx.
    checks = _check(tmp_path, _protocol(tmp_path, [CORD]), total_gy=45.0, fractions=15, organ_gy=44.5)
    cord = checks["cord"]
    # EQD2 = 44.5 (44.5 / 15 + 2) / (2 + 2) = 55.25 Gy; the limit 45 Gy in 2 Gy fractions is 45 Gy EQD2.
    assert cord.value == pytest.approx(44.5 * (44.5 / 15 + 2) / 4, abs=0.01)
    assert cord.physical_value == pytest.approx(44.5, abs=1e-3)
    assert cord.status is Status.DEVIATION_UNACCEPTABLE
    assert cord.metric == "Max[EQD2Gy(a/b=2)]" and cord.per_protocol == "<= 45 Gy"
    assert "graded in EQD2 (α/β = 2 Gy" in cord.message
    assert "the plan gives 3 Gy/fx, the limit is written for 2 Gy/fx ± 0.1 Gy (rtcheck default)" in cord.message


def test_a_limit_written_for_other_than_2_gy_is_converted(tmp_path):
    # 45 Gy written for 1.8 Gy/fx is 45 (1.8 + 2) / 4 = 42.75 Gy EQD2; the plan's cord: 44.5 Gy in 28 fx at 2.2 Gy/fx.
    path = _protocol(tmp_path, [CORD], {"dose_per_fraction_gy": 1.8, "source": "t"})
    cord = _check(tmp_path, path, total_gy=61.6, fractions=28, organ_gy=44.5)["cord"]
    assert cord.per_protocol == "<= 42.75 Gy"
    assert cord.value == pytest.approx(44.5 * (44.5 / 28 + 2) / 4, abs=0.01)  # 39.93: within the converted limit
    assert cord.status is Status.PER_PROTOCOL


@pytest.mark.parametrize("total_gy, tolerance, graded_in_eqd2", [(50.4, 0.2, False), (50.4, None, True), (56.0, None, False)])
def test_within_the_tolerance_the_physical_limit_is_graded_as_written(tmp_path, total_gy, tolerance, graded_in_eqd2):
    written_for = dict(WRITTEN_FOR_2GY, **({"tolerance_gy": tolerance} if tolerance is not None else {}))
    cord = _check(tmp_path, _protocol(tmp_path, [CORD], written_for), total_gy=total_gy, fractions=28, organ_gy=44.5)["cord"]
    assert ("graded in EQD2" in cord.message) is graded_in_eqd2
    if graded_in_eqd2:  # 1.8 Gy/fx: 44.5 (44.5 / 28 + 2) / 4
        assert cord.value == pytest.approx(44.5 * (44.5 / 28 + 2) / 4, abs=0.01) and cord.metric == "Max[EQD2Gy(a/b=2)]"
    else:
        assert cord.value == pytest.approx(44.5, abs=1e-3) and cord.metric == "Max[Gy]"
    assert cord.status is Status.PER_PROTOCOL


def test_a_volume_metric_converts_its_dose_level(tmp_path):
    heart = {"id": "heart", "structure": "Heart", "metric": "V40Gy[%]", "per_protocol": "<= 50 %", "source": "t"}
    path = _protocol(tmp_path, [heart], {"dose_per_fraction_gy": 1.8, "source": "t"})
    # Heart 32 Gy in 10 fx (plan 3.2 Gy/fx): EQD2 (a/b 3) 32 (3.2 + 3) / 5 = 39.68 Gy >= 40 (1.8 + 3) / 5 = 38.4 Gy.
    check = _check(tmp_path, path, total_gy=32.0, fractions=10, organ_gy=32.0)["heart"]
    assert check.metric == "V38.4EQD2Gy(a/b=3)[%]"
    # Not quite 100 %: the dose falls to 0 beyond the organ's ends, interpolated across the last slice.
    assert check.value > 90.0 and check.physical_value == pytest.approx(0.0, abs=1e-6)
    assert check.status is Status.DEVIATION_UNACCEPTABLE
    assert "α/β = 3 Gy" in check.message


def test_target_and_biological_constraints_are_left_alone(tmp_path):
    constraints = [
        {"id": "ptv", "structure": "PTV", "metric": "D95%[Gy]", "per_protocol": ">= 40 Gy", "source": "t"},
        {"id": "cord-eqd2", "structure": "SpinalCord", "metric": "Max[EQD2Gy]", "per_protocol": "<= 50 Gy", "source": "t"},
    ]
    arm = load_protocol_file(_protocol(tmp_path, constraints)).arm("site")
    assert all(c.written_for is None for c in arm.constraints)


@pytest.mark.parametrize(
    "extra, entry, message",
    [
        ({"metric": "Max[EQD2Gy]", "written_for": WRITTEN_FOR_2GY}, "(cord).written_for", "for physical limits"),
        ({"written_for": {"dose_per_fraction_gy": 2.0}}, "(cord).written_for", "missing key(s): source"),
        ({"written_for": {"dose_per_fraction_gy": 2.0, "tolerance_gy": -1, "source": "t"}}, "(cord).written_for.tolerance_gy", ">= 0"),
    ],
)
def test_written_for_is_validated(tmp_path, extra, entry, message):
    path = _protocol(tmp_path, [dict(CORD, **extra)], None)
    with pytest.raises(ProtocolError) as info:
        load_protocol_file(path)
    assert f"arms.site.constraints[0] {entry}" in str(info.value) and message in str(info.value)
