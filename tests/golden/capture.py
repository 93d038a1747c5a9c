"""Outputs of `check`, `batch` and `listen` on every sample plan, for comparison across refactors.

``python tests/golden/capture.py OUT_DIR`` runs ``rtcheck.cli.main`` under
``sys.executable`` and writes into OUT_DIR:

- ``check/<sample>.json`` and ``check/<sample>.xml``: ``rtcheck check --format json --junit``;
- ``batch/summary.csv`` and ``batch/summary.json`` and every report ``batch`` writes;
- ``listen/<sample>.json`` and ``.xml``: the reports ``rtcheck listen`` writes when the
  sample's three files arrive over C-STORE.

Paths of the temporary folders are replaced by ``<ROOT>``, so that two captures made in
different folders compare byte for byte. ``tests/test_golden_outputs.py`` compares a fresh
capture with the one stored in ``tests/golden/expected`` (made before the consolidation of
the linker, the writers, the protocol library and the grading package).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "sample_plans"
PROTOCOL = "escc-induction-icrt-ccrt"
CLI = "import sys; from rtcheck.cli import main; sys.argv[0] = 'rtcheck'; main()"


def sample_sets() -> list[tuple[str, str]]:
    """(sample folder name, arm) for every shipped sample plan."""
    names = sorted(p.name for p in SAMPLES.iterdir() if (p / "RP.dcm").exists())
    return [(name, "sd-pd" if name.startswith("sd-pd") else "cr-pr") for name in names]


def _rtcheck(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", CLI, *args], capture_output=True, text=True, cwd=cwd, timeout=600)


def _normalise(text: str, *roots: Path) -> str:
    for root in roots:
        for form in {str(root), str(root.resolve())}:
            text = text.replace(form, "<ROOT>")
    return text


def _copy_samples(into: Path) -> Path:
    target = into / "samples"
    for name, _ in sample_sets():
        shutil.copytree(SAMPLES / name, target / name)
    return target


def capture_check(out: Path, work: Path) -> None:
    samples = _copy_samples(work / "check")
    (out / "check").mkdir(parents=True)
    for name, arm in sample_sets():
        junit = work / "check" / f"{name}.xml"
        done = _rtcheck("check", str(samples / name), "--protocol", PROTOCOL, "--arm", arm, "--format", "json",
                        "--junit", str(junit), cwd=work)
        if done.returncode not in (0, 1):
            raise RuntimeError(f"check {name}: exit {done.returncode}: {done.stderr}")
        (out / "check" / f"{name}.json").write_text(_normalise(done.stdout, work))
        (out / "check" / f"{name}.xml").write_text(_normalise(junit.read_text(), work))


def capture_batch(out: Path, work: Path) -> None:
    samples = _copy_samples(work / "batch")
    reports = work / "batch-out"
    done = _rtcheck("batch", str(samples), "--protocol", PROTOCOL, "--arm", "auto", "--out", str(reports),
                    "--jobs", "1", cwd=work)
    if done.returncode not in (0, 1, 2):
        raise RuntimeError(f"batch: exit {done.returncode}: {done.stderr}")
    for path in sorted(p for p in reports.rglob("*") if p.is_file()):
        target = out / "batch" / path.relative_to(reports)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(_normalise(path.read_text(), work))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def capture_listen(out: Path, work: Path) -> None:
    import pydicom
    from pynetdicom import AE, StoragePresentationContexts

    store = work / "store"
    port = _free_port()
    (out / "listen").mkdir(parents=True)
    for name, arm in sample_sets():
        proc = subprocess.Popen(
            [sys.executable, "-c", CLI, "listen", "--port", str(port), "--store", str(store / name),
             "--protocol", PROTOCOL, "--arm", arm, "--settle", "0.2", "--no-html"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=work,
        )
        try:
            ae = AE(ae_title="TPS")
            ae.requested_contexts = StoragePresentationContexts[:127]
            deadline = time.monotonic() + 60
            while True:
                assoc = ae.associate("127.0.0.1", port, ae_title="RTCHECK")
                if assoc.is_established:
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError("listener did not start")
                time.sleep(0.2)
            for file in ("RS.dcm", "RP.dcm", "RD.dcm"):
                status = assoc.send_c_store(pydicom.dcmread(SAMPLES / name / file))
                if int(status.Status) != 0:
                    raise RuntimeError(f"C-STORE {name}/{file}: status {status.Status:#06x}")
            assoc.release()
            deadline = time.monotonic() + 120
            while not list((store / name).rglob("rtcheck-*.json")):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"no listen report for {name}")
                time.sleep(0.2)
            time.sleep(0.5)
        finally:
            proc.terminate()
            proc.wait(timeout=60)
        for suffix in (".json", ".xml"):
            [report] = list((store / name).rglob(f"rtcheck-*{suffix}"))
            (out / "listen" / f"{name}{suffix}").write_text(_normalise(report.read_text(), work))


def capture(out: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="rtcheck-golden-") as tmp:
        work = Path(tmp)
        capture_check(out, work)
        capture_batch(out, work)
        capture_listen(out, work)


if __name__ == "__main__":
    target = Path(sys.argv[1])
    if target.exists():
        shutil.rmtree(target)
    capture(target)
