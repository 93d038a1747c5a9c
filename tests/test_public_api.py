"""``import rtcheck`` gives the whole public API, as the README shows, without loading it up front."""

from __future__ import annotations

import subprocess
import sys

import pytest

import rtcheck
from conftest import ROOT

SAMPLES = ROOT / "sample_plans"


@pytest.mark.parametrize("name", [n for n in rtcheck.__all__ if n != "__version__"])
def test_every_exported_name_resolves_to_its_module_definition(name):
    value = getattr(rtcheck, name)
    assert getattr(value, "__name__", name) == name or name.isupper()


def test_importing_rtcheck_loads_no_stage_of_the_pipeline():
    code = "import sys, rtcheck; print(sorted(m for m in sys.modules if m.startswith('rtcheck')))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "['rtcheck']"


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'check_plan'"):
        rtcheck.check_plan  # noqa: B018


def test_readme_example_checks_a_sample_through_the_root():
    [result] = rtcheck.check_paths([SAMPLES / "cr-pr-compliant"], "escc-induction-icrt-ccrt", "cr-pr")
    assert result.verdict is rtcheck.Status.PER_PROTOCOL
    junit = rtcheck.Rendering([result]).text("junit")
    assert "<testsuite" in junit and 'failures="0"' in junit


def _readme_python_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## Python API"):text.index("## Sample plans")]
    return [block.split("```", 1)[0] for block in section.split("```python\n")[1:]]


def test_the_readme_python_examples_run_as_written(tmp_path, monkeypatch):
    """The README's examples, in order, in a folder where ``sample_plans`` is the shipped one."""
    (tmp_path / "sample_plans").symlink_to(SAMPLES)
    monkeypatch.chdir(tmp_path)
    blocks = _readme_python_blocks()
    assert len(blocks) == 3 and all("import rtcheck" in blocks[0] or "rtcheck." in b for b in blocks)
    namespace: dict[str, object] = {}
    for block in blocks:
        exec(compile(block, "README.md", "exec"), namespace)  # noqa: S102 - the README's own examples
    assert (tmp_path / "report.html").stat().st_size > 0 and (tmp_path / "report.pdf").read_bytes()[:4] == b"%PDF"
    assert (tmp_path / "reports" / "summary.csv").exists()
