"""rtcheck batch --dask-scheduler: the same tasks on a Dask cluster give the same summary and reports."""

from __future__ import annotations

import json
import shutil
import socket

import pytest

from cli_helpers import rtcheck
from test_batch import PROTOCOL, SAMPLES, copy_as_new_patient, fingerprint, read_summary

distributed = pytest.importorskip("distributed", reason="Dask distributed is not installed (extra 'dask')")


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=None, processes=True
    ) as local:
        yield local


def test_dask_run_equals_local_run(cluster, tmp_path):
    root = tmp_path / "in"
    for folder in ("cr-pr-compliant", "sd-pd-pgtv-undercovered", "cr-pr-no-cord"):
        shutil.copytree(SAMPLES / folder, root / folder)
    copy_as_new_patient(SAMPLES / "cr-pr-compliant", root / "broken", "dask-truncated", "BROKEN")
    dose = root / "broken" / "RD.dcm"
    dose.write_bytes(dose.read_bytes()[:-1000])
    before = fingerprint(root)

    local = rtcheck("batch", root, "--protocol", PROTOCOL, "--arm", "auto", "--out", tmp_path / "local", "--jobs", "1")
    remote = rtcheck("batch", root, "--protocol", PROTOCOL, "--arm", "auto", "--out", tmp_path / "dask",
                     "--dask-scheduler", cluster.scheduler_address)
    assert local.exit_code == remote.exit_code == 2, remote.output
    assert fingerprint(root) == before
    local_rows, local_doc = read_summary(tmp_path / "local")
    dask_rows, dask_doc = read_summary(tmp_path / "dask")
    assert dask_rows == local_rows and dask_doc == local_doc
    assert {row["verdict"] for row in dask_rows} == {"per_protocol", "deviation_unacceptable", "not_evaluated", "error"}
    for row in dask_rows:
        if row["report_json"]:
            ours = json.loads((tmp_path / "dask" / row["report_json"]).read_text(encoding="utf-8"))
            assert ours == json.loads((tmp_path / "local" / row["report_json"]).read_text(encoding="utf-8"))
    # The checks really ran on the cluster: its scheduler (in this process) counted the tasks.
    prefix = cluster.scheduler.task_prefixes.get("check_plan_files")
    assert prefix is not None and prefix.state_counts["memory"] == len(dask_rows) == 4


def test_unreachable_scheduler_is_a_one_line_error(tmp_path):
    with socket.socket() as probe:  # a port nothing listens on once the probe is closed
        probe.bind(("127.0.0.1", 0))
        address = f"tcp://127.0.0.1:{probe.getsockname()[1]}"
    result = rtcheck("batch", SAMPLES / "cr-pr-compliant", "--protocol", PROTOCOL, "--arm", "cr-pr",
                     "--out", tmp_path / "out", "--dask-scheduler", address)
    assert result.exit_code == 2 and "cannot connect" in result.stderr and address in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not list((tmp_path / "out").glob("**/*.json"))
