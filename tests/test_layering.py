"""The package reads one way: dicom -> dvh -> metrics -> grading -> results -> render, with batch, net,
cli and api on top.  No module of rtcheck imports (even lazily or for type checking) a module of a later
stage, asserted from the modules' own import statements."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "rtcheck"

# Stage of each top-level module or subpackage of rtcheck; a module may import stages <= its own.
# radiobiology (linear-quadratic physics on dose grids) and protocol (the protocol model, whose
# metrics and biology fields it validates) feed grading.  results holds the types grading builds,
# so it shares grading's stage; it imports nothing of grading.
STAGES = {
    "rtcheck": 0,  # the package root: its version (see test_root_imports_only_its_version)
    "errors": 0,
    "codes": 0,
    "dicom": 1,
    "files": 1,  # input trees and the safe writer: it recognises DICOM files to protect them
    "dvh": 2,
    "metrics": 3,
    "radiobiology": 4,
    "protocol": 5,
    "grading": 6,
    "results": 6,
    "render": 7,
    "cohort": 7,  # statistics of graded checks over plans, for batch's cohort test and the dashboard
    "api": 8,
    "batch": 8,
    "net": 8,
    "cli": 8,
    # The results store records results (with their rendered JSON); the dashboard reads the store.
    "store": 8,
    "web": 8,
}


def _stage_of(module: str) -> tuple[str, int]:
    parts = module.split(".")
    name = parts[1] if len(parts) > 1 else parts[0]
    assert name in STAGES, f"rtcheck.{name} has no stage: add it to STAGES in {Path(__file__).name}"
    return name, STAGES[name]


def _imports(module: str, source: str, is_package: bool = False) -> list[tuple[int, str]]:
    """(line, module) of every rtcheck import in the ``source`` of ``module``, relative imports resolved."""
    package = module if is_package else module.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "rtcheck"]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                anchor = parts[: len(parts) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            if base.split(".")[0] == "rtcheck":
                found.append((node.lineno, base))
    return found


def _violations(module: str, source: str, is_package: bool = False) -> list[str]:
    name, stage = _stage_of(module)
    return [
        f"{module}:{line} ({name}, stage {stage}) imports {target} (stage {_stage_of(target)[1]})"
        for line, target in _imports(module, source, is_package)
        if _stage_of(target)[1] > stage
    ]


def _modules() -> list[tuple[str, str, bool]]:
    """(module name, source, is a package) of every module of rtcheck."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        is_package = parts[-1] == "__init__"
        found.append((".".join(parts[:-1] if is_package else parts), path.read_text(encoding="utf-8"), is_package))
    return found


def test_no_module_imports_a_later_stage():
    modules = _modules()
    assert len(modules) > 40
    # The root is read for __version__ by every stage, and re-exports the public API on first use (above all
    # stages); test_the_root_loads_no_stage_when_imported asserts it imports nothing when loaded.
    wrong = [v for module, source, is_package in modules if module != "rtcheck" for v in _violations(module, source, is_package)]
    assert not wrong, "imports against the flow:\n" + "\n".join(wrong)


def test_results_import_nothing_of_grading():
    source = (PACKAGE / "results.py").read_text(encoding="utf-8")
    assert not [m for _, m in _imports("rtcheck.results", source) if _stage_of(m)[0] == "grading"]


def _module_level_imports(source: str) -> list[str]:
    """The rtcheck modules a module imports when it is imported itself: not inside functions, not for type checking."""
    found = []
    for node in ast.parse(source).body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        for sub in ast.walk(node) if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) else []:
            if isinstance(sub, ast.Import):
                found += [a.name for a in sub.names if a.name.split(".")[0] == "rtcheck"]
            elif isinstance(sub, ast.ImportFrom) and (sub.module or "").split(".")[0] == "rtcheck":
                found.append(sub.module or "")
    return found


def test_the_root_loads_no_stage_when_imported():
    """Every module reads ``rtcheck.__version__``: the root re-exports the public API lazily (on first use)."""
    assert _module_level_imports((PACKAGE / "__init__.py").read_text(encoding="utf-8")) == []


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every loop a depth-first walk of ``graph`` meets, as the modules around it."""
    cycles: list[list[str]] = []
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(path[path.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt)
        path.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return cycles


def test_no_import_cycle():
    """No two modules of rtcheck import each other, directly or around a loop, even lazily.

    The root is left out: its exports are loaded on first use, and modules import it for ``__version__`` only.
    """
    modules = _modules()
    names = {module for module, _, _ in modules}
    graph: dict[str, set[str]] = {}
    for module, source, is_package in modules:
        if module == "rtcheck":
            continue
        targets = set()
        for _, target in _imports(module, source, is_package):
            # "from rtcheck.dvh import engine" names the package; the module is what the loop is about
            while target not in names and "." in target:
                target = target.rsplit(".", 1)[0]
            if target != "rtcheck" and target != module:
                targets.add(target)
        graph[module] = targets

    cycles = _cycles(graph)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_the_check_sees_lazy_and_relative_backward_imports():
    source = "from rtcheck.dicom.dose import DoseGrid\nfrom . import histogram\n\ndef f():\n    from ..grading import check\n    import rtcheck.render.json\n"
    assert _violations("rtcheck.dvh.engine", source) == [
        "rtcheck.dvh.engine:5 (dvh, stage 2) imports rtcheck.grading (stage 6)",
        "rtcheck.dvh.engine:6 (dvh, stage 2) imports rtcheck.render.json (stage 7)",
    ]


def test_the_cycle_check_sees_a_loop():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c", "a"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []
