"""One cohort computation (rtcheck.cohort) behind batch's criteria files and the dashboard's protocol page:
both paths give the same numbers on the sample plans' real checks, and arms sharing check ids are not mixed."""

import json
from datetime import datetime, timedelta, timezone

import pytest

from rtcheck.batch.cohort_report import CRITERIA_JSON, criteria_files
from rtcheck.cohort import cohort_statistics, graded_checks
from rtcheck.store import Origin, open_store, record_check
from rtcheck.store import cohort

PROTOCOL = "escc-induction-icrt-ccrt"


@pytest.fixture
def batch_and_store(sample_checks, tmp_path):
    """(criteria.json of the sample checks as batch writes it, a SQLite store holding the same checks)."""
    documents = [record.document_text for _, _, record in sample_checks]
    written = criteria_files(documents, protocol={"id": PROTOCOL, "title": "", "sha256": ""}, arm="auto")
    store = open_store(str(tmp_path / "cohort.sqlite"))
    for n, (_, _, record) in enumerate(sample_checks):
        record_check(store, record, Origin.CHECK, checked_at=datetime(2026, 1, 5, tzinfo=timezone.utc) + timedelta(days=n))
    yield json.loads(written[CRITERIA_JSON]), store
    store.close()


def test_batch_criteria_and_dashboard_cohort_give_the_same_numbers(batch_and_store, sample_checks):
    document, store = batch_and_store
    arms = sorted({result.arm for _, result, _ in sample_checks})
    assert arms == ["cr-pr", "sd-pd"]
    compared = 0
    for arm in arms:
        from_batch = {c["id"]: c for c in document["criteria"] if c["arm"] == arm}
        from_store = cohort.criteria(store, PROTOCOL, arm)
        assert [v.criterion for v in from_store] == list(from_batch)  # same criteria, in the protocol's order
        for view in from_store:
            written = from_batch[view.criterion]
            assert view.plans == written["plans"] == sum(result.arm == arm for _, result, _ in sample_checks)
            assert {s: view.counts[s] for s in written["counts"]} == written["counts"]
            assert [round(v, 4) for v in view.values] == written["all_values"]
            assert "; ".join(view.per_protocol) == written["per_protocol"]
            assert all(round(view.share(s), 4) == written["share_pct"][s] for s in written["share_pct"])
            compared += 1
    assert compared == len(document["criteria"])


def test_arms_sharing_check_ids_are_kept_apart(sample_checks):
    checks = [c for _, _, record in sample_checks for c in graded_checks(json.loads(record.document_text))]
    stats = {(s.arm, s.id): s for s in cohort_statistics(checks)}
    # ptv-d95 is a criterion of both arms: each arm's plans count once, under their own arm.
    for arm in ("cr-pr", "sd-pd"):
        own = [c for c in checks if c.arm == arm and c.id == "ptv-d95"]
        assert own and stats[(arm, "ptv-d95")].plans == len(own)
        assert stats[(arm, "ptv-d95")].values == sorted(c.value for c in own if c.value is not None and c.status != "not_evaluated")
    # Criteria of one arm only (the PGTV boost of SD/PD) appear under that arm alone.
    assert ("sd-pd", "pgtv-d95") in stats and ("cr-pr", "pgtv-d95") not in stats
