"""Running the command line from tests, in-process or as a real process."""

from __future__ import annotations

import json
import subprocess
import sys

from click.testing import CliRunner

from rtcheck.cli import main


def rtcheck(*args):
    """Run the command line in-process; stdout and stderr are kept apart."""
    try:
        runner = CliRunner(mix_stderr=False)  # click < 8.2
    except TypeError:
        runner = CliRunner()
    return runner.invoke(main, [str(a) for a in args])


def run_process(*args, **kwargs) -> subprocess.CompletedProcess:
    """``python -m rtcheck.cli ARGS`` as a separate process (text output, 120 s limit)."""
    return subprocess.run([sys.executable, "-m", "rtcheck.cli", *map(str, args)], capture_output=True, text=True, timeout=120, **kwargs)


def check_json(*args) -> dict:
    """``rtcheck check ARGS --format json`` (exit 0 or 1) as a document."""
    result = rtcheck("check", *args, "--format", "json")
    assert result.exit_code in (0, 1), (result.stderr, result.exception)
    return json.loads(result.stdout)


def by_id(document: dict) -> dict[str, dict]:
    """The checks of a check document by id."""
    return {c["id"]: c for c in document["checks"]}
