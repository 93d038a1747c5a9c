"""The command line of the results store: --db on check/batch/listen, `db import`, `users`, `serve`."""

import pydicom

from cli_helpers import rtcheck
from conftest import ROOT
from rtcheck.store import open_store
from rtcheck.store.queries import list_checks
from rtcheck.store.users import authenticate
from test_listen import SAMPLE, _send, _wait_for, listeners  # noqa: F401 - the listeners fixture

PROTOCOL = "escc-induction-icrt-ccrt"
PASSWORD = "correct horse battery"


def test_check_db_records_once(tmp_path):
    db = tmp_path / "s.sqlite"
    args = ["check", ROOT / "sample_plans" / "cr-pr-lung-v20-high", "--protocol", PROTOCOL, "--arm", "cr-pr", "--db", db]
    first = rtcheck(*args)
    assert first.exit_code == 1 and "1 check(s) added, 0 already stored" in first.stderr
    again = rtcheck(*args)
    assert again.exit_code == 1 and "0 check(s) added, 1 already stored" in again.stderr
    [row] = list_checks(open_store(str(db)))
    assert row.verdict == "deviation_unacceptable" and row.origin == "check"


def test_batch_db_then_db_import_counts(tmp_path):
    db, out = tmp_path / "s.sqlite", tmp_path / "out"
    roots = [ROOT / "sample_plans" / f for f in ("cr-pr-compliant", "cr-pr-no-cord")]
    batch = rtcheck("batch", *roots, "--protocol", PROTOCOL, "--arm", "cr-pr", "--out", out, "--jobs", "1", "--db", db)
    assert batch.exit_code == 1 and "results store: 2 check(s) added, 0 already stored" in batch.stdout
    imported = rtcheck("db", "import", out, "--db", db)
    assert imported.exit_code == 0, imported.stderr
    assert "4 JSON file(s): 0 check(s) added, 2 already stored, 2 not a check report, 0 unreadable" in imported.stdout
    (out / "broken.json").write_text("{", encoding="utf-8")
    fresh = rtcheck("db", "import", out, "--db", tmp_path / "fresh.sqlite")
    assert fresh.exit_code == 2 and "2 check(s) added" in fresh.stdout and "broken.json" in fresh.stderr


def test_users_add_and_disable(tmp_path):
    db = tmp_path / "s.sqlite"
    from click.testing import CliRunner

    from rtcheck.cli import main

    runner = CliRunner()
    added = runner.invoke(main, ["users", "add", "ana", "--role", "reviewer", "--password-stdin", "--db", str(db)], input=PASSWORD + "\n")
    assert added.exit_code == 0 and "user ana added (reviewer)" in added.output
    again = runner.invoke(main, ["users", "add", "ana", "--role", "viewer", "--password-stdin", "--db", str(db)], input=PASSWORD + "\n")
    assert again.exit_code == 2 and "exists already" in again.output
    short = runner.invoke(main, ["users", "add", "bo", "--role", "viewer", "--password-stdin", "--db", str(db)], input="short\n")
    assert short.exit_code == 2 and "at least 10" in short.output
    store = open_store(str(db))
    assert authenticate(store, "ana", PASSWORD) is not None
    assert runner.invoke(main, ["users", "disable", "ana", "--db", str(db)]).exit_code == 0
    assert authenticate(store, "ana", PASSWORD) is None
    assert "ana\treviewer\tdisabled" in runner.invoke(main, ["users", "list", "--db", str(db)]).output


def test_serve_needs_a_store_and_a_bad_store_is_one_line(tmp_path):
    assert rtcheck("serve").exit_code == 2
    bad = rtcheck("users", "list", "--db", tmp_path / "no" / "such" / "s.sqlite")
    assert bad.exit_code == 2 and "does not exist" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1


def test_listen_db_records_each_arrival(tmp_path, listeners):  # noqa: F811
    db = tmp_path / "s.sqlite"
    running = listeners(tmp_path / "store", tmp_path / "listen.log", "--db", str(db))
    datasets = [pydicom.dcmread(SAMPLE / n) for n in ("RS.dcm", "RP.dcm", "RD.dcm")]
    assert _send(running.port, datasets) == [0, 0, 0]
    store = open_store(str(db))
    [row] = _wait_for(lambda: list_checks(store), "the check in the store", proc=running.proc)
    assert row.origin == "listen" and row.verdict == "per_protocol" and row.plan_uid == datasets[1].SOPInstanceUID
    assert running.terminate() == 0
