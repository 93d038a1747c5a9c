"""The results store on the sample plans' real checks: SQLite file by default, a real PostgreSQL server in CI."""

import json
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from rtcheck.errors import StoreError
from rtcheck.render.json import render_checks
from rtcheck.store import Decision, Origin, Role, import_reports, open_store, record_check, report_documents
from rtcheck.store import cohort, queries, signoff, users
from rtcheck.store.models import Base, Check

PROTOCOL = "escc-induction-icrt-ccrt"
T0 = datetime(2026, 1, 5, 8, 0, tzinfo=timezone.utc)


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    if request.param == "sqlite":
        opened = open_store(str(tmp_path / "results.sqlite"))
    else:
        opened = open_store(request.getfixturevalue("postgres_url"))
    yield opened
    opened.close()


def fill(store, sample_checks):
    """Record the six sample checks, one day apart, and a reviewer."""
    ids = {}
    for n, (folder, _result, record) in enumerate(sample_checks):
        ids[folder] = record_check(store, record, Origin.CHECK, checked_at=T0 + timedelta(days=n)).check_id
    users.add_user(store, "rev", "correct horse battery", Role.REVIEWER)
    users.add_user(store, "view", "correct horse battery", Role.VIEWER)
    return ids


def test_migrated_schema_is_the_models_schema(store):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    with store.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert differences == []
    # Opening again runs the migrations again: nothing to do, nothing lost.
    again = open_store(store.engine.url.render_as_string(hide_password=False))
    with again.engine.connect() as connection:
        assert connection.execute(text("SELECT version_num FROM alembic_version")).scalar() == "r0001"
    again.close()


def test_a_check_is_stored_as_written_and_again_is_idempotent(store, sample_checks):
    ids = fill(store, sample_checks)
    for folder, result, record in sample_checks:
        assert record_check(store, record, Origin.LISTEN).created is False
        check = queries.load_check(store, ids[folder])
        assert check.document == render_checks([result])  # the bytes rtcheck writes
        assert check.verdict == result.verdict.value and check.plan_uid == result.plan_sop_instance_uid
        assert [(i.criterion, i.status, i.value) for i in check.items] == [
            (c["id"], c["status"], c["value"]) for c in json.loads(check.document)["checks"]
        ]
        assert [i.path for i in check.inputs] == result.input_files and all(len(i.sha256) == 64 for i in check.inputs)
        # The stored DVH gives back the check's cumulative DVH at every kept bin edge.
        for curve in check.curves:
            dvh = result.dvhs_by_structure[curve.structure]
            from rtcheck.store.record import CurveRecord

            kept = CurveRecord(curve.structure, curve.roi_name, curve.bin_width_gy, curve.first_bin, curve.differential_cc,
                               curve.volume_cc, curve.outside_volume_cc, curve.min_gy, curve.max_gy, curve.mean_gy).histogram()
            edges = kept.bin_width_gy * np.arange(curve.first_bin + 1, kept.differential_cc.size, 97)
            np.testing.assert_allclose([kept.volume_at_dose_cc(d) for d in edges], [dvh.volume_at_dose_cc(d) for d in edges],
                                       rtol=1e-9, atol=1e-9)
        assert {c.structure for c in check.curves} == set(result.dvhs_by_structure)
    with store.session() as session:
        assert session.query(Check).count() == len(sample_checks)


def test_the_same_files_checked_from_another_path_are_the_same_check(store, sample_checks, tmp_path):
    import shutil

    from rtcheck.api import check_paths
    from rtcheck.store.record import build_record

    folder, _result, record = sample_checks[0]
    first = record_check(store, record, Origin.CHECK)
    copy = shutil.copytree(sample_checks[0][1].input_files[0].rsplit("/", 1)[0], tmp_path / "copy")
    [again] = check_paths([str(copy)], PROTOCOL, "cr-pr")
    assert record_check(store, build_record(again), Origin.CHECK) == type(first)(first.check_id, False)
    # Another option (a structure mapped otherwise) is another result: stored beside it.
    from rtcheck.grading import CheckOptions

    [mapped] = check_paths([str(copy)], PROTOCOL, "cr-pr", options=CheckOptions(structure_map=(("Heart", "Lungs"),)))
    assert record_check(store, build_record(mapped), Origin.CHECK).created


def test_sign_off_needs_a_reason_per_failing_check_and_is_append_only(store, sample_checks):
    ids = fill(store, sample_checks)
    reviewer = next(u for u in users.list_users(store) if u.username == "rev")
    viewer = next(u for u in users.list_users(store) if u.username == "view")
    deviating = queries.load_check(store, ids["cr-pr-wrong-fractions"])
    failing = signoff.failing_items(deviating)
    # 50 Gy planned: the PTV near-minimum against the protocol's 50.4 Gy (92.3 %) also misses SCOPE1's 93 %.
    assert [i.criterion for i in failing] == ["rx-ptv-fractions", "rx-ptv-dose-per-fraction", "ptv-near-min"]
    with pytest.raises(StoreError, match="missing for rx-ptv-dose-per-fraction"):
        signoff.sign_off(store, deviating.id, reviewer.id, Decision.ACCEPTED, "", {failing[0].id: "trial office agreed 25 fx"})
    with pytest.raises(StoreError, match="only an active reviewer"):
        signoff.sign_off(store, deviating.id, viewer.id, Decision.ACCEPTED, "", {i.id: "ok" for i in failing})
    other = queries.load_check(store, ids["cr-pr-compliant"])
    with pytest.raises(StoreError, match="not in this plan"):
        signoff.sign_off(store, deviating.id, reviewer.id, Decision.REJECTED, "", {other.items[0].id: "x"})
    first = signoff.sign_off(store, deviating.id, reviewer.id, Decision.ACCEPTED, "re-planned elsewhere",
                             {failing[0].id: "trial office agreed 25 fx", failing[1].id: "2 Gy/fx per amendment 3",
                              failing[2].id: "near-minimum of the 50 Gy plan"})
    assert signoff.sign_off(store, other.id, reviewer.id, Decision.ACCEPTED, "", {}) > first  # nothing failing: no reason needed
    rows = signoff.audit_rows(store)
    assert [(r.check_id, r.decision, r.criterion, r.reason) for r in rows] == [
        (deviating.id, "accepted", "rx-ptv-fractions", "trial office agreed 25 fx"),
        (deviating.id, "accepted", "rx-ptv-dose-per-fraction", "2 Gy/fx per amendment 3"),
        (deviating.id, "accepted", "ptv-near-min", "near-minimum of the 50 Gy plan"),
        (other.id, "accepted", "", ""),
    ]
    assert rows[0].username == "rev" and rows[0].document_sha256 == deviating.document_sha256
    document = json.loads(signoff.audit_json(rows))
    assert document["schema"] == "rtcheck.audit/1" and document["sign_offs"][1]["reason"] == "2 Gy/fx per amendment 3"
    assert signoff.audit_csv(rows).splitlines()[0].startswith("sign_off_id,signed_at,username,decision,check_id")
    # The database itself refuses to change or remove a sign-off or a reason.
    for statement in ("UPDATE sign_offs SET comment = 'edited'", "DELETE FROM sign_offs", "UPDATE sign_off_reasons SET reason = ''",
                      "DELETE FROM sign_off_reasons"):
        with pytest.raises(DBAPIError, match="append-only"):
            with store.engine.begin() as connection:
                connection.execute(text(statement))
    assert [r.reason for r in signoff.audit_rows(store)] == [r.reason for r in rows]


def test_audit_csv_neutralises_formulas(store, sample_checks):
    ids = fill(store, sample_checks)
    reviewer = next(u for u in users.list_users(store) if u.username == "rev")
    signoff.sign_off(store, ids["cr-pr-compliant"], reviewer.id, Decision.REJECTED, "=HYPERLINK(\"x\")", {})
    assert "'=HYPERLINK" in signoff.audit_csv(signoff.audit_rows(store))


def test_accounts(store):
    users.add_user(store, "alice", "a long enough pass", Role.ADMIN)
    with pytest.raises(StoreError, match="exists already"):
        users.add_user(store, "alice", "a long enough pass", Role.VIEWER)
    with pytest.raises(StoreError, match="at least 10"):
        users.add_user(store, "bob", "short", Role.VIEWER)
    with pytest.raises(StoreError, match="user name"):
        users.add_user(store, "bob smith", "a long enough pass", Role.VIEWER)
    assert users.authenticate(store, "alice", "a long enough pass").role == "admin"
    assert users.authenticate(store, "alice", "wrong password!") is None
    assert users.authenticate(store, "nobody", "a long enough pass") is None
    stored = users.list_users(store)[0].password_hash
    assert stored.startswith("$argon2id$") and "a long enough pass" not in stored
    users.disable_user(store, "alice")
    assert users.authenticate(store, "alice", "a long enough pass") is None


def test_cohort_shares_percentile_and_trend(store, sample_checks):
    ids = fill(store, sample_checks)
    stats = {s.criterion: s for s in cohort.criteria(store, PROTOCOL, "cr-pr", check_id=ids["cr-pr-lung-v20-high"])}
    v20 = stats["lungs-v20"]
    assert v20.statuses == {"per_protocol": 3, "deviation_unacceptable": 1} and v20.share("deviation_unacceptable") == 25.0
    assert v20.this_status == "deviation_unacceptable" and v20.this_percentile == 87.5  # the highest of 4: 3 below + half itself
    assert sum(v20.histogram[0]) == 4 and v20.histogram[1][0] == min(v20.values) and v20.histogram[1][-1] == max(v20.values)
    assert stats["cord-max"].statuses == {"per_protocol": 3, "not_evaluated": 1} and len(stats["cord-max"].values) == 3
    series = cohort.trend(store, PROTOCOL, "cr-pr", "lungs-v20")
    assert [p.check_id for p in series.points] == sorted(ids[f] for f in ids if f.startswith("cr-pr"))  # same plan date: by check
    values = [p.value for p in series.points]
    mean, sigma = np.mean(values), np.mean(np.abs(np.diff(values))) / 1.128
    assert series.limits.mean == pytest.approx(mean) and series.limits.upper == pytest.approx(mean + 3 * sigma)
    assert cohort.control_limits([1.0]) is None
    assert cohort.percentile_rank([1.0, 2.0, 3.0, 4.0], 2.0) == 37.5


def test_db_import_of_a_batch_output_counts_and_is_idempotent(store, tmp_path):
    from rtcheck.batch import run_batch

    from conftest import ROOT

    roots = [str(ROOT / "sample_plans" / f) for f in ("cr-pr-compliant", "cr-pr-no-cord")]
    outcome = run_batch(roots, PROTOCOL, "cr-pr", tmp_path / "out", jobs=1, html=True)
    files = report_documents(tmp_path / "out")
    assert len(files) == 4  # two reports, summary.json and criteria.json
    seen = []
    counts = import_reports(store, files, on_file=seen.append)
    assert (counts.added, counts.already_stored, counts.not_checks, counts.unreadable) == (2, 0, 2, [])
    assert seen == files
    again = import_reports(store, files)
    assert (again.added, again.already_stored) == (0, 2)
    rows = queries.list_checks(store)
    assert sorted(r.verdict for r in rows) == sorted(row.verdict for row in outcome.rows)
    check = queries.load_check(store, rows[0].id)
    assert check.origin == "import" and not check.curves_stored and check.report_html.endswith(".html")


def test_a_damaged_report_is_counted_not_fatal(tmp_path):
    store = open_store(str(tmp_path / "s.sqlite"))
    (tmp_path / "bad.json").write_text("{not json", encoding="utf-8")
    counts = import_reports(store, [tmp_path / "bad.json"])
    assert counts.added == 0 and counts.unreadable and "bad.json" in counts.unreadable[0]


def test_unreachable_or_unwritable_database_is_a_one_line_error(tmp_path):
    with pytest.raises(StoreError, match="does not exist"):
        open_store(str(tmp_path / "missing" / "s.sqlite"))
    with pytest.raises(StoreError, match=r"--db postgresql\+psycopg://u:\*\*\*@127.0.0.1:9/x: cannot open"):
        open_store("postgresql://u:secret@127.0.0.1:9/x")


def test_postgresql_and_sqlite_give_the_same_results(sample_checks, tmp_path, postgres_url):
    outputs = []
    for url in (str(tmp_path / "same.sqlite"), postgres_url):
        s = open_store(url)
        ids = fill(s, sample_checks)
        reviewer = next(u for u in users.list_users(s) if u.username == "rev")
        check = queries.load_check(s, ids["cr-pr-lung-v20-high"])
        signoff.sign_off(s, check.id, reviewer.id, Decision.ACCEPTED, "", {i.id: "accepted: " + i.criterion for i in signoff.failing_items(check)})
        outputs.append({
            "list": queries.list_checks(s),
            "filtered": queries.list_checks(s, queries.CheckFilter(verdict="deviation_unacceptable", arm="cr-pr")),
            "choices": queries.filter_choices(s),
            "criteria": [vars(c) for arm in ("cr-pr", "sd-pd") for c in cohort.criteria(s, PROTOCOL, arm, check_id=check.id)],
            "trend": cohort.trend(s, PROTOCOL, "sd-pd", "ptv-d95"),
            "audit": [r.__dict__ | {"signed_at": ""} for r in signoff.audit_rows(s)],
            "documents": [queries.load_check(s, i).document for i in ids.values()],
            "curves": [[(c.structure, c.differential_cc) for c in queries.load_check(s, i).curves] for i in ids.values()],
        })
        s.close()
    sqlite, postgres = outputs
    assert sqlite == postgres
    assert len(sqlite["list"]) == 6 and len(sqlite["filtered"]) == 2
