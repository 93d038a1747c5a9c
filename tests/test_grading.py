"""The grading package: the typed outcome builder, the one DVH cache (each DVH computed once per
(structure, dose grid)), and the check's identity read into the model by the DICOM loader."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from dicom_factory import Case, RoiShape
import rtcheck.grading.dvh_cache as dvh_cache
from rtcheck.api import check_paths, dvh_statistics
from rtcheck.dvh import shape_key
from rtcheck.grading import CheckOptions, CheckSpec
from rtcheck.radiobiology.reirradiation import PriorCourse
from rtcheck.protocol.model import ConstraintKind
from rtcheck.results import CheckKind, DvhMarker, MarkerAxis, Status

ROOT = Path(__file__).resolve().parents[1]
REIRRADIATION = ROOT / "sample_plans" / "reirradiation-cord-cumulative"


def test_the_builder_states_a_check_once_and_grades_or_declines_it():
    spec = CheckSpec(
        id="cord-max", kind=CheckKind.DVH, structure="SpinalCord", roi_name="Cord", metric="D0.03cc[Gy]", unit="Gy",
        per_protocol="<= 45 Gy", variation_acceptable="<= 47 Gy", constraint_kind=ConstraintKind.INFORMATIONAL, source="trial p. 12",
    )
    marker = DvhMarker("SpinalCord", 44.0, 0.1, MarkerAxis.DOSE, {"per_protocol": 45.0})
    graded = spec.graded(44.0, Status.PER_PROTOCOL, "matched by name", marker)
    declined = spec.not_evaluated("structure missing")
    for outcome in (graded, declined):
        stated = (outcome.id, outcome.kind, outcome.structure, outcome.roi_name, outcome.metric, outcome.unit,
                  outcome.per_protocol, outcome.variation_acceptable, outcome.counts, outcome.source)
        assert stated == ("cord-max", CheckKind.DVH, "SpinalCord", "Cord", "D0.03cc[Gy]", "Gy", "<= 45 Gy", "<= 47 Gy", False, "trial p. 12")
    assert (graded.value, graded.status, graded.message, graded.marker) == (44.0, Status.PER_PROTOCOL, "matched by name", marker)
    assert (declined.value, declined.status, declined.message, declined.marker) == (None, Status.NOT_EVALUATED, "structure missing", None)


def test_coded_strings_are_enums_that_read_and_serialise_as_their_values():
    [result] = check_paths([REIRRADIATION], "escc-regional-recurrence", "re-irradiation")
    kinds = Counter(c.kind for c in result.checks)
    assert set(kinds) == {CheckKind.PRESCRIPTION, CheckKind.DVH, CheckKind.INTEGRITY}
    for kind in kinds:
        assert kind == kind.value and f"{kind}" == kind.value and json.dumps(kind) == f'"{kind.value}"'
    axes = {c.marker.free_axis for c in result.checks if c.marker is not None}
    assert axes and axes <= set(MarkerAxis) and all(json.dumps(a) == f'"{a.value}"' for a in axes)


@pytest.fixture
def computed(monkeypatch):
    """Every DVH the cache computes, as (shape key, dose grid)."""
    calls: list[tuple[object, int]] = []
    real = dvh_cache.compute_dvh

    def spy(shape, grid, **kwargs):
        calls.append((shape_key(shape), id(grid)))
        return real(shape, grid, **kwargs)

    monkeypatch.setattr(dvh_cache, "compute_dvh", spy)
    return calls


def test_a_check_computes_each_dvh_once_per_structure_and_grid(computed):
    """Re-irradiation: the cord has physical, EQD2, BED, cumulative and prior-course (EQD2 share, BED) constraints, and
    the cord PRV is mapped onto the cord ROI too; each (ROI, grid) pair is computed once, the cord on
    six different grids."""
    prior = PriorCourse(REIRRADIATION / "prior" / "RD.dcm", 30)
    options = CheckOptions(prior=prior, structure_map=(("SpinalCord_PRV05", "SpinalCord"),))
    [result] = check_paths([REIRRADIATION], "escc-regional-recurrence", "re-irradiation", options=options)
    prv = next(c for c in result.checks if c.structure == "SpinalCord_PRV05")
    assert prv.roi_name == "SpinalCord" and prv.status is not Status.NOT_EVALUATED
    assert computed and len(computed) == len(set(computed))
    cord = next(s.roi_number for s in result.structures if s.structure == "SpinalCord")
    cord_grids = {grid for key, grid in computed if key == cord}
    assert len(cord_grids) == 6  # physical, current EQD2, current BED, cumulative EQD2, prior EQD2, prior BED
    cord_checks = [c for c in result.checks if c.structure == "SpinalCord" and c.status is not Status.NOT_EVALUATED]
    # cord-max, and the physical values of the EQD2 and BED checks, read one physical DVH of the cord.
    # The prior course's BED alone has none: the current course's physical dose is not the prior's.
    assert len(cord_checks) >= 3
    assert all((c.physical_value is None) == (c.id == "reirradiation-prior-course") for c in cord_checks if c.biology)


def test_dvh_statistics_compute_each_dvh_once_per_roi_and_grid(tmp_path, computed):
    case = Case(
        [RoiShape("PTV", radius_mm=12.0), RoiShape("Cord", radius_mm=5.0, centre_xy_mm=(0.0, 20.0))],
        dose=lambda x, y, z: 2.0 + 0.5 * np.abs(x), fractions=10,
    )
    case.write(tmp_path)
    metrics = ["Max[EQD2Gy(a/b=2)]", "Mean[EQD2Gy(a/b=2)]", "D50%[Gy]", "Mean[BEDGy(a/b=3)]"]
    rows, _ = dvh_statistics([tmp_path], metrics=metrics)
    assert len(rows) == 2 and all(None not in row.metrics.values() for row in rows)
    assert len(computed) == len(set(computed)) == 2 * 3  # per ROI: physical, EQD2 (a/b 2), BED (a/b 3)


def test_the_result_takes_dates_and_dose_uids_from_the_model(tmp_path):
    case = Case([RoiShape("PTV", radius_mm=12.0)], dose=lambda x, y, z: np.full_like(x, 50.4))
    case.plan.RTPlanDate, case.plan.StudyDate = "20240131", "20240115"
    case.write(tmp_path)
    [result] = check_paths([tmp_path], "escc-induction-icrt-ccrt", "cr-pr")
    assert (result.plan_date, result.study_date, result.dose_uids) == ("20240131", "20240115", [case.rt_dose.SOPInstanceUID])
