"""How fast `rtcheck listen` stores instances and reports on a plan.

Starts `rtcheck listen` as a real process on a free loopback port (store in a
temporary folder), then measures

1. report latency: for a copy of sample_plans/sd-pd-compliant (new UIDs), the
   time from the last C-STORE response to the JSON report appearing, minus the
   settle time (goal: under 2 s), repeated ``--repeat`` times, with the HTML
   report and (a second listener) without it (``--no-html``), and the time
   the listener's log gives for the check and its reports;
2. storage throughput: ``--instances`` CT images (512 x 512, 16 bit, about
   0.5 MB each) sent over ``--associations`` concurrent associations; instances
   per second from the first association request to the last response.  CT is
   stored and not checked, so this measures receiving and durable writing
   (fsync) alone.

Times in seconds.  Exits 0 unless something crashed.

    python benchmarks/listen_speed.py [--settle 1] [--repeat 3] [--instances 200] [--associations 4]
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "sample_plans" / "sd-pd-compliant"
LATENCY_GOAL_S = 2.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_listener(store: Path, settle_s: float, log: Path, html: bool = True) -> tuple[subprocess.Popen, int]:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen(
        [sys.executable, "-m", "rtcheck.cli", "listen", "--port", str(port), "--store", str(store),
         "--protocol", "escc-induction-icrt-ccrt", "--arm", "sd-pd", "--settle", str(settle_s),
         "--html" if html else "--no-html"],
        stdout=subprocess.DEVNULL, stderr=open(log, "wb"), env=env,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return proc, port
        except OSError:
            if proc.poll() is not None:
                raise SystemExit(f"listener exited: see {log}")
            time.sleep(0.05)
    raise SystemExit("listener did not start within 60 s")


def plan_copy() -> list[Dataset]:
    rs, rp, rd = (pydicom.dcmread(SAMPLE / n) for n in ("RS.dcm", "RP.dcm", "RD.dcm"))
    study = generate_uid()
    for ds in (rs, rp, rd):
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.StudyInstanceUID = study
    rp.ReferencedStructureSetSequence[0].ReferencedSOPInstanceUID = rs.SOPInstanceUID
    rd.ReferencedRTPlanSequence[0].ReferencedSOPInstanceUID = rp.SOPInstanceUID
    return [rs, rp, rd]


def ct_slice(study: str, series: str, index: int, pixels: bytes) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.Modality = "CT"
    ds.PatientID = "BENCH"
    ds.StudyInstanceUID = study
    ds.SeriesInstanceUID = series
    ds.InstanceNumber = index
    ds.ImagePositionPatient = [0.0, 0.0, float(index)]
    ds.Rows = ds.Columns = 512
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1
    ds.PixelData = pixels
    return ds


def associate(port: int):
    from pynetdicom import AE
    from pynetdicom.sop_class import CTImageStorage, RTDoseStorage, RTPlanStorage, RTStructureSetStorage

    ae = AE(ae_title="BENCH")
    for uid in (CTImageStorage, RTDoseStorage, RTPlanStorage, RTStructureSetStorage):
        ae.add_requested_context(uid, ExplicitVRLittleEndian)
    assoc = ae.associate("127.0.0.1", port, ae_title="RTCHECK")
    if not assoc.is_established:
        raise SystemExit("association rejected")
    return assoc


def send(port: int, datasets: list[Dataset]) -> None:
    assoc = associate(port)
    try:
        for ds in datasets:
            status = assoc.send_c_store(ds)
            if int(status.Status) != 0:
                raise SystemExit(f"C-STORE failed with status 0x{int(status.Status):04X}")
    finally:
        assoc.release()


def measure_latency(port: int, store: Path, settle_s: float) -> float:
    datasets = plan_copy()
    plan = datasets[1]
    send(port, datasets)  # returns after the last C-STORE response (and the release)
    last_response = time.monotonic()
    report = store / str(plan.PatientID) / str(plan.StudyInstanceUID) / f"rtcheck-{plan.SOPInstanceUID}.json"
    while not report.exists():
        time.sleep(0.01)
        if time.monotonic() - last_response > 120:
            raise SystemExit("no report within 120 s")
    return time.monotonic() - last_response - settle_s


def measure_throughput(port: int, instances: int, associations: int) -> float:
    rng = np.random.default_rng(0)
    pixels = rng.integers(-1000, 2000, size=(512, 512), dtype=np.int16).tobytes()
    study, series = generate_uid(), generate_uid()
    slices = [ct_slice(study, series, i, pixels) for i in range(instances)]
    shares = [slices[i::associations] for i in range(associations)]
    threads = [threading.Thread(target=send, args=(port, share)) for share in shares]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return instances / (time.monotonic() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--settle", type=float, default=1.0, help="settle time of the listener (s)")
    parser.add_argument("--repeat", type=int, default=3, help="plans sent one after the other for the latency")
    parser.add_argument("--instances", type=int, default=200, help="CT instances for the throughput")
    parser.add_argument("--associations", type=int, default=4, help="concurrent associations for the throughput")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rtcheck-listen-bench-") as tmp:
        for html in (True, False):
            store = Path(tmp) / f"store-{html}"
            log = Path(tmp) / f"listen-{html}.log"
            proc, port = start_listener(store, args.settle, log, html)
            try:
                latencies = [measure_latency(port, store, args.settle) for _ in range(args.repeat)]
                rate = measure_throughput(port, args.instances, args.associations) if not html else None
            finally:
                proc.send_signal(signal.SIGINT)
                proc.wait(60)
            check_s = [float(word.split("=", 1)[1]) for line in log.read_text().splitlines() if " checked " in line
                       for word in line.split(" ") if word.startswith("seconds=")]
            median = statistics.median(latencies)
            print(f"report latency after the last C-STORE beyond the {args.settle:g} s settle time, sd-pd-compliant copy, "
                  f"{'JSON + JUnit + HTML' if html else 'JSON + JUnit (--no-html)'}: "
                  + ", ".join(f"{t:.2f}" for t in latencies)
                  + f" s; median {median:.2f} s (goal < {LATENCY_GOAL_S:g} s: {'met' if median < LATENCY_GOAL_S else 'NOT met'})")
            print("  of which the check and its reports (the listener's log, seconds=): "
                  + ", ".join(f"{t:.2f}" for t in check_s) + " s")
            if rate is not None:
                print(f"storage throughput: {rate:.0f} instances/s ({args.instances} CT images of 0.5 MB over "
                      f"{args.associations} associations, each fsynced before its response; {rate * 0.524:.0f} MB/s)")
            print(f"  listener exit code: {proc.returncode}")
        try:
            print(f"load average (1 min) at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        except OSError:
            pass

if __name__ == "__main__":
    main()
