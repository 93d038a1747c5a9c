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
