"""`check`, `batch` and `listen` write the same bytes as the outputs stored in tests/golden/expected.

The stored outputs were captured (``python tests/golden/capture.py tests/golden/expected``) before the
linker, the writers, the protocol library and the grading package were consolidated; a change that is
meant to change an output regenerates them in the same commit and says why.
"""

from __future__ import annotations

from pathlib import Path

from golden.capture import capture

EXPECTED = Path(__file__).parent / "golden" / "expected"


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_check_batch_and_listen_outputs_are_byte_identical_to_the_stored_ones(tmp_path):
    capture(tmp_path / "now")
    expected, now = _files(EXPECTED), _files(tmp_path / "now")
    assert sorted(now) == sorted(expected)
    differing = [name for name in expected if now[name] != expected[name]]
    assert not differing, f"outputs differ from tests/golden/expected: {differing}"
