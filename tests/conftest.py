import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
SHARED_EXTERNAL = ROOT.parent / "shared" / "external"
sys.path.insert(0, str(TESTS))


@pytest.fixture
def external_dir():
    """../shared/external, present in CI and developers' checkouts, absent on users' machines."""
    if not SHARED_EXTERNAL.is_dir():
        pytest.skip(f"{SHARED_EXTERNAL} is absent (public test data kept outside the repository)")
    return SHARED_EXTERNAL


def require_program(name: str, package: str) -> str:
    """Path of an external program a test talks to (Chromium, dcmtk's storescu...).

    On a user's machine without it the test skips and says which Debian package
    provides it; under CI (``RTCHECK_REQUIRE_PEERS=1``, set by ``.ci/run``, which
    installs the packages) a missing program fails the test instead of skipping it.
    """
    import os
    import shutil

    found = shutil.which(name)
    if found:
        return found
    reason = f"{name} is not installed (Debian package {package})"
    if os.environ.get("RTCHECK_REQUIRE_PEERS"):
        pytest.fail(f"{reason}, but RTCHECK_REQUIRE_PEERS is set: CI must install it")
    pytest.skip(reason)


# --- Results store (rtcheck.store): a real PostgreSQL server, and the sample plans' checks once per run. ---

POSTGRES_ENV = "RTCHECK_TEST_POSTGRES_URL"


@pytest.fixture
def postgres_url():
    """URL of a new, empty PostgreSQL database, dropped after the test.

    ``RTCHECK_TEST_POSTGRES_URL`` names a role allowed to create databases (``.ci/run``
    installs Debian's postgresql, starts it and sets it); without it the test skips,
    and under ``RTCHECK_REQUIRE_PEERS=1`` it fails.
    """
    import os
    import uuid

    base = os.environ.get(POSTGRES_ENV)
    if not base:
        reason = f"{POSTGRES_ENV} is not set (a PostgreSQL server, Debian package postgresql; see .ci/run)"
        if os.environ.get("RTCHECK_REQUIRE_PEERS"):
            pytest.fail(f"{reason}, but RTCHECK_REQUIRE_PEERS is set: CI must start PostgreSQL")
        pytest.skip(reason)
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from rtcheck.store.database import database_url

    admin_url = make_url(database_url(base))
    name = f"rtcheck_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f"CREATE DATABASE {name}"))
    try:
        yield admin_url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


SAMPLE_ARMS = {
    "cr-pr-compliant": "cr-pr", "cr-pr-lung-v20-high": "cr-pr", "cr-pr-wrong-fractions": "cr-pr", "cr-pr-no-cord": "cr-pr",
    "sd-pd-compliant": "sd-pd", "sd-pd-pgtv-undercovered": "sd-pd",
}


@pytest.fixture(scope="session")
def sample_checks():
    """(folder, CheckResult, CheckRecord) of six sample plans against escc-induction-icrt-ccrt, checked once."""
    from rtcheck.api import check_paths
    from rtcheck.store.record import build_record

    checked = []
    for folder, arm in SAMPLE_ARMS.items():
        [result] = check_paths([str(ROOT / "sample_plans" / folder)], "escc-induction-icrt-ccrt", arm)
        checked.append((folder, result, build_record(result)))
    return checked
