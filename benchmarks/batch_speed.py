#!/usr/bin/env python3
"""Batch throughput: ``rtcheck batch --jobs 1`` against ``--jobs 2`` on generated plans.

The script

1. writes N plans (default 60) as real DICOM with ``sample_plans/generate.py``:
   the five sample cases ``--arm auto`` can place (both arms, compliant and
   deviating), each copy with its own UIDs and patient ID and its beams turned
   by a few degrees, so no two doses are alike (not timed);
2. runs ``rtcheck batch ROOT --arm auto --jobs J`` as a whole process for each
   J in ``--jobs`` (default 1 and 2), ``--repeat`` times each, alternating, and
   takes the median wall time;
3. prints plans per second for each J and the speed-up of the last J over the
   first (goal: at least 1.7x on 2 cores), the CPU time of the batch process
   and its workers (equal CPU times mean the parallel run wastes nothing; a
   speed-up below J then means the CPUs were busy with other work: the load
   average is printed before and after, and before each round the speed-up two
   processes of a pure-Python loop get, the machine's ceiling at that moment),
   checks that every run wrote the same summary, and with ``--profile`` where
   the time of one plan goes.

Times in seconds.  It is a benchmark, not a test: it exits 0 whatever the
figures are, 1 when a batch failed or runs disagree.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
PROTOCOL = "escc-induction-icrt-ccrt"
GOAL_SPEEDUP = 1.7
# Sample cases whose prescription matches one arm (cr-pr-wrong-fractions matches none: --arm auto refuses it).
CASE_FOLDERS = ("cr-pr-compliant", "sd-pd-compliant", "cr-pr-lung-v20-high", "sd-pd-pgtv-undercovered", "cr-pr-no-cord")


def load_generator():
    spec = importlib.util.spec_from_file_location("rtcheck_sample_generator", REPO_ROOT / "sample_plans" / "generate.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def generate(root: Path, count: int) -> None:
    """``count`` plan sets under ``root``, one folder each, varied as the module docstring says."""
    gen = load_generator()
    bases = [c for c in gen.CASES if c.folder in CASE_FOLDERS]
    for i in range(count):
        base = bases[i % len(bases)]
        turn = 2.0 * (i // len(bases))  # degrees
        folder = f"bench-{i:03d}-{base.folder}"
        if (root / folder / "RD.dcm").is_file():  # kept from an earlier run (--keep): the output is deterministic
            continue
        case = dataclasses.replace(
            base,
            folder=folder,  # the UIDs derive from the folder name
            patient_id=f"BENCH-{i:03d}",
            beams=tuple(dataclasses.replace(b, gantry_deg=(b.gantry_deg + turn) % 360.0) for b in base.beams),
        )
        gen.write_case(case, root)


def run_batch(root: Path, out: Path, jobs: int) -> tuple[float, float]:
    """Wall time of one ``rtcheck batch`` process (start-up included) and the CPU time of it and its workers."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]))
    command = [sys.executable, "-m", "rtcheck.cli", "batch", str(root), "--protocol", PROTOCOL, "--arm", "auto",
               "--out", str(out), "--jobs", str(jobs)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode not in (0, 1):
        sys.exit(f"batch --jobs {jobs} failed (exit {done.returncode}):\n{done.stderr}")
    return elapsed, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _spin(iterations: int) -> float:
    start = time.perf_counter()
    total = 0
    for i in range(iterations):
        total += i * i
    return time.perf_counter() - start


def machine_ceiling(iterations: int = 3_000_000) -> float:
    """The speed-up two processes get right now on a pure-Python loop: what the machine allows, other work included."""
    from concurrent.futures import ProcessPoolExecutor

    alone = _spin(iterations)
    with ProcessPoolExecutor(2) as pool:
        list(pool.map(_spin, [1000, 1000]))  # start both workers first
        start = time.perf_counter()
        list(pool.map(_spin, [iterations, iterations]))
        together = time.perf_counter() - start
    return 2 * alone / together


def startup_time() -> float:
    """Wall time of ``rtcheck --version``: the interpreter and the CLI's own imports."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "rtcheck.cli", "--version"], capture_output=True, check=True)
    return time.perf_counter() - start


def profile_one(root: Path) -> None:
    """Where one plan's time goes, in this process (imports already paid)."""
    import cProfile
    import pstats

    sys.path.insert(0, str(REPO_ROOT))
    from rtcheck.batch.discovery import discover
    from rtcheck.batch.tasks import BatchSettings, check_plan_files
    from rtcheck.protocol.library import find_protocol

    start = time.perf_counter()
    found = discover([root])
    print(f"discovery (headers only): {len(found.sets)} sets in {time.perf_counter() - start:.2f} s")
    settings = BatchSettings(protocol=find_protocol(PROTOCOL), arm="auto")
    check_plan_files(found.sets[0], settings)  # warm up: imports
    profiler = cProfile.Profile()
    start = time.perf_counter()
    profiler.enable()
    for plan_set in found.sets[:5]:
        check_plan_files(plan_set, settings)
    profiler.disable()
    print(f"one plan, checked and rendered in-process: {(time.perf_counter() - start) / 5:.3f} s (mean of 5)")
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(18)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--plans", type=int, default=60, help="plans to generate (default 60)")
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2], help="--jobs values to compare (default 1 2)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per --jobs value; the median is reported (default 3)")
    parser.add_argument("--keep", type=Path, help="write the plans and reports here instead of a temporary folder "
                        "(plans already there are reused)")
    parser.add_argument("--profile", action="store_true", help="also profile one plan's check in-process")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="rtcheck-batch-bench-") as scratch:
        work = args.keep or Path(scratch)
        root = work / "plans"
        start = time.perf_counter()
        generate(root, args.plans)
        print(f"generated {args.plans} plans in {time.perf_counter() - start:.1f} s (not timed below)")
        print(f"CPUs available: {len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count()}")
        print(f"rtcheck --version: {startup_time():.2f} s (start-up included in every run below)")

        print(f"load average before: {os.getloadavg()[0]:.2f} (other work on the machine slows every run)")
        times: dict[int, list[float]] = {j: [] for j in args.jobs}
        cpu: dict[int, list[float]] = {j: [] for j in args.jobs}
        ceilings = []
        for _ in range(args.repeat):
            ceilings.append(machine_ceiling())
            for jobs in args.jobs:  # alternating, so a change in the machine's load hits every J alike
                wall, used = run_batch(root, work / f"out-{jobs}", jobs)
                times[jobs].append(wall)
                cpu[jobs].append(used)
        print(f"load average after: {os.getloadavg()[0]:.2f}")
        summaries = {j: (work / f"out-{j}" / "summary.csv").read_text(encoding="utf-8") for j in args.jobs}
        if len(set(summaries.values())) != 1:
            sys.exit("the runs wrote different summaries")

        print(f"\n{'jobs':>4}  {'median s':>8}  {'plans/s':>7}  {'CPU s':>6}  runs (s)")
        for jobs, runs in times.items():
            median = statistics.median(runs)
            print(
                f"{jobs:>4}  {median:8.2f}  {args.plans / median:7.2f}  {statistics.median(cpu[jobs]):6.1f}  "
                f"{', '.join(f'{t:.2f}' for t in runs)}"
            )
        first, last = args.jobs[0], args.jobs[-1]
        speedup = statistics.median(times[first]) / statistics.median(times[last])
        best = min(times[first]) / min(times[last])
        verdict = "met" if speedup >= GOAL_SPEEDUP else "NOT met"
        print(f"\nspeed-up --jobs {last} over --jobs {first}: {speedup:.2f}x of the medians, {best:.2f}x of the best runs "
              f"(goal >= {GOAL_SPEEDUP}x on 2 cores: {verdict})")
        rounds = [a / b for a, b in zip(times[first], times[last])]
        print(f"speed-up within each round: {', '.join(f'{r:.2f}x' for r in rounds)}")
        print(f"what the machine allowed two processes meanwhile (pure-Python loop, 2.00x when idle): "
              f"{', '.join(f'{c:.2f}x' for c in ceilings)}")
        overhead = statistics.median(cpu[last]) / statistics.median(cpu[first])
        print(f"CPU time of --jobs {last} / --jobs {first}: {overhead:.2f} (1.00: parallel work costs no extra CPU)")
        print(f"summary: {summaries[first].count(chr(10)) - 1} rows, identical in every run")
        if args.profile:
            print()
            profile_one(root)


if __name__ == "__main__":
    main()
