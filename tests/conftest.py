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
