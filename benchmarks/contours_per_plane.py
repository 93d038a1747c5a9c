#!/usr/bin/env python3
"""Cost of many contours on one plane: ``rtcheck dvh`` of an ROI whose planes hold N contours.

The script writes, for each N in ``--counts`` (default 500, 2 000, 4 000, 10 000), a structure set
with one ROI on 3 planes: an outer contour of radius 300 mm holding N small 12-gons (holes, 1.5 mm
radius, 5.17 mm apart) and a uniform RT Dose, as real DICOM (pydicom, via tests/dicom_factory.py; not
timed).  It then times, in this process, reading the inputs and the DVH of the ROI
(``rtcheck.api.dvh_statistics``), ``--repeat`` times (median), and prints the seconds per thousand
contours for each N and the ratio of each to the first N's (the reference measured in the same run).

Budget (issue 12): near-linear cost, the seconds per contour at 10 000 contours at most 2x those at 500.
Before issue 12 the cost grew with the square of the contours (3 000 took 13 s; 10 000 did not finish
in 120 s).  A benchmark, not a test: it exits 0 whatever the figures are.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rtcheck.api import dvh_statistics  # noqa: E402
from tests.dicom_factory import Case, RoiShape  # noqa: E402

PITCH_MM, HOLE_RADIUS_MM, OUTER_RADIUS_MM = 5.17, 1.5, 300.0


def write_case(folder: Path, count: int) -> None:
    side = int(np.ceil(np.sqrt(count)))
    span = (side - 1) * PITCH_MM / 2
    centres = [(float(x), float(y)) for x in np.linspace(-span, span, side) for y in np.linspace(-span, span, side)][:count]
    sieve = RoiShape("Sieve", radius_mm=OUTER_RADIUS_MM, z_range_mm=(-2.0, 2.0), points=12, also=tuple((c, HOLE_RADIUS_MM) for c in centres))
    Case(
        [sieve], dose=lambda x, y, z: np.full_like(x, 20.0), prescriptions=[],
        grid_spacing_mm=(5.0, 5.0, 2.0), grid_min_mm=(-310.0, -310.0, -6.0), grid_max_mm=(310.0, 310.0, 6.0),
    ).write(folder)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--counts", type=int, nargs="+", default=[500, 2000, 4000, 10000], help="contours per plane")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        reference = None
        print(f"{'contours/plane':>15} {'seconds':>9} {'s per 1000':>11} {'ratio to first':>15}")
        for count in args.counts:
            folder = Path(tmp) / str(count)
            write_case(folder, count)
            times = []
            for _ in range(args.repeat):
                start = time.perf_counter()
                dvh_statistics([folder])
                times.append(time.perf_counter() - start)
            seconds = statistics.median(times)
            per_thousand = seconds / count * 1000
            reference = reference or per_thousand
            print(f"{count:>15} {seconds:>9.2f} {per_thousand:>11.3f} {per_thousand / reference:>15.2f}")


if __name__ == "__main__":
    main()
