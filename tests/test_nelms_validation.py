"""The DVH engine on the analytic validation set of Nelms et al., Med Phys 42(8) 2015.

90 cases (structure x 1/2/3 mm dose grid x AP/SI gradient), 9 parameters each
(volume, Dmin, Dmax, Dmean, D99, D95, D5, D1, D0.03cc): 810 comparisons with
the analytic values, read from ../shared/external/nelms-analytic-dvh (not in
this repository; the test skips where it is absent).  The paper's criterion:
a parameter more than 3 % from its analytic value fails.

No parameter may be more than 3 % off; the number more than 1 % off is printed
(36 when this test was written).
"""

import csv
from pathlib import Path

import pytest

from rtcheck.dicom.dose import load_dose
from rtcheck.dicom.io import read_dataset
from rtcheck.dicom.structures import parse_structure_set
from rtcheck.dvh import compute_dvh

PARAMETERS = ("volume_cc", "dmin_cgy", "dmax_cgy", "dmean_cgy", "d99_cgy", "d95_cgy", "d5_cgy", "d1_cgy", "d0.03cc_cgy")
# Parameters allowed beyond 3 %, each with its explanation in the module docstring: none.
PINNED_RESIDUALS: set[tuple[str, str, str, str]] = set()


@pytest.fixture(scope="module")
def nelms_results(request):
    base = Path(__file__).resolve().parents[2] / "shared" / "external" / "nelms-analytic-dvh"
    if not base.is_dir():
        pytest.skip(f"{base} is absent (the Nelms analytic data set is kept outside the repository)")
    with open(base / "expected_values.csv", newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r["dose_voxel_mm"] in ("1", "2", "3")]
    doses = {}
    results = []
    for row in rows:
        gradient = "AntPost" if row["gradient_direction"].startswith("Z") else "SupInf"
        key = (gradient, row["dose_voxel_mm"])
        if key not in doses:
            doses[key] = load_dose(base / "DOSE GRIDS" / f"Linear_{gradient}_{row['dose_voxel_mm']}mm_Aligned.dcm")
        path = base / "STRUCTURES" / f"{row['structure']}.dcm"
        structure_set = parse_structure_set(read_dataset(path), path)
        [roi] = [r for r in structure_set.rois if r.is_volume]
        dvh = compute_dvh(roi, doses[key])
        measured = {
            "volume_cc": dvh.total_volume_cc,
            "dmin_cgy": dvh.min_gy * 100,
            "dmax_cgy": dvh.max_gy * 100,
            "dmean_cgy": dvh.mean_gy * 100,
            "d99_cgy": dvh.dose_at_volume_cc(0.99 * dvh.volume_cc) * 100,
            "d95_cgy": dvh.dose_at_volume_cc(0.95 * dvh.volume_cc) * 100,
            "d5_cgy": dvh.dose_at_volume_cc(0.05 * dvh.volume_cc) * 100,
            "d1_cgy": dvh.dose_at_volume_cc(0.01 * dvh.volume_cc) * 100,
            "d0.03cc_cgy": dvh.dose_at_volume_cc(0.03) * 100,
        }
        for name in PARAMETERS:
            expected = float(row[name])
            error_pct = abs(measured[name] - expected) / expected * 100
            results.append(((row["structure"], row["gradient_direction"], row["dose_voxel_mm"], name), measured[name], expected, error_pct))
    return results


def test_all_810_parameters_are_compared(nelms_results):
    assert len(nelms_results) == 810


def test_no_parameter_beyond_3_percent(nelms_results, capsys):
    failing = {key for key, _, _, error in nelms_results if error > 3.0}
    over_1 = sum(error > 1.0 for *_, error in nelms_results)
    with capsys.disabled():
        print(f"\nNelms analytic set: {len(failing)} of {len(nelms_results)} parameters > 3 %, {over_1} > 1 %")
    assert failing == PINNED_RESIDUALS


def test_more_than_1_percent_stays_rare(nelms_results):
    # 36 of 810 when written; a change of method that doubles it deserves a look.
    assert sum(error > 1.0 for *_, error in nelms_results) <= 60
