"""The protocol package's parts: schema (document -> model), overlay (a pure merge), library (files)."""

from __future__ import annotations

import ast
import builtins
import copy
import hashlib
import json
import pathlib
from pathlib import Path

import pytest
import yaml

from rtcheck.errors import ProtocolError, UnknownProtocolError
from rtcheck.protocol import Comparison, DoseSetBy, Operation, Role, library
from rtcheck.protocol.overlay import merge_overlay, overlay_extends
from rtcheck.protocol.schema import parse_protocol

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "rtcheck" / "protocol"
SEED = ROOT / "protocols" / "escc-induction-icrt-ccrt.yaml"
SEED_ID = "escc-induction-icrt-ccrt"


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports, at its top or inside a function."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _package_graph() -> dict[str, set[str]]:
    modules = {f"rtcheck.protocol.{p.stem}": p for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    return {name: {m for m in _imports(path) if m in modules and m != name} for name, path in modules.items()}


def test_no_import_cycle_inside_the_protocol_package():
    graph = _package_graph()
    assert {"rtcheck.protocol.schema", "rtcheck.protocol.library", "rtcheck.protocol.overlay"} <= set(graph)
    assert "rtcheck.protocol.loader" not in graph
    done: set[str] = set()

    def visit(module: str, path: tuple[str, ...]) -> None:
        assert module not in path, f"import cycle: {' -> '.join((*path, module))}"
        if module not in done:
            for imported in sorted(graph[module]):
                visit(imported, (*path, module))
            done.add(module)

    for module in sorted(graph):
        visit(module, ())
    # The flow inside the package: model <- schema <- overlay <- library.
    assert "rtcheck.protocol.library" not in graph["rtcheck.protocol.overlay"] | graph["rtcheck.protocol.schema"]
    assert "rtcheck.protocol.overlay" not in graph["rtcheck.protocol.schema"]


def test_overlay_and_schema_read_no_files():
    for module in ("overlay", "schema"):
        imported = _imports(PACKAGE / f"{module}.py")
        assert not imported & {"os", "io", "pathlib", "yaml", "threading", "hashlib", "rtcheck.protocol.library"}, module


def _seed() -> tuple[dict, object]:
    document = yaml.safe_load(SEED.read_text(encoding="utf-8"))
    base = parse_protocol(copy.deepcopy(document), str(SEED))
    base.sha256 = hashlib.sha256(SEED.read_bytes()).hexdigest()
    return document, base


def test_overlay_merge_is_pure_documents_in_document_out(monkeypatch):
    base_document, base = _seed()
    overlay = {
        "schema": "rtcheck.overlay/1", "id": "site-x", "extends": SEED_ID, "source": {"site": "test"},
        "structures": {"Heart": {"add_aliases": ["COEUR"], "source": "our template"}},
        "constraints": {"lungs-v20": {"per_protocol": "< 22 %", "source": "site lung policy"}},
        "arms": {"cr-pr": {"add_constraints": [
            {"id": "site-heart-v35", "structure": "Heart", "metric": "V35Gy[%]", "per_protocol": "< 30 %", "source": "site"}]}},
    }
    inputs_before = copy.deepcopy((base_document, overlay))

    def no_files(*args, **kwargs):
        raise AssertionError("the overlay merge touched a file")

    try:
        for name in ("read_bytes", "read_text", "is_file", "exists", "open"):
            monkeypatch.setattr(pathlib.Path, name, no_files)
        monkeypatch.setattr(builtins, "open", no_files)
        extends = overlay_extends(overlay, "not/a/file.yaml")
        merged, provenance = merge_overlay(base_document, base, overlay, "not/a/file.yaml")
    finally:
        monkeypatch.undo()
    assert extends == SEED_ID

    assert (base_document, overlay) == inputs_before  # the inputs are unchanged
    assert isinstance(merged, dict) and merged["id"] == "site-x" and merged["schema"] == "rtcheck.protocol/1"
    assert "COEUR" in merged["structures"]["Heart"]["aliases"]
    assert provenance == {
        "structures.Heart.aliases": "not/a/file.yaml",
        **{f"arms.{arm}.constraints.lungs-v20.{key}": "not/a/file.yaml" for arm in ("cr-pr", "sd-pd") for key in ("per_protocol", "source")},
        "arms.cr-pr.constraints.site-heart-v35": "not/a/file.yaml",
    }
    # The merged document is a protocol document like any other.
    protocol = parse_protocol(merged, "merged")
    lungs = next(c for c in protocol.arm("cr-pr").constraints if c.id == "lungs-v20")
    assert str(lungs.per_protocol) == "< 22 %"
    assert lungs.source.startswith("site overlay not/a/file.yaml: site lung policy (base: ")
    assert [c.id for c in protocol.arm("cr-pr").constraints][-1] == "site-heart-v35"
    # The merged document holds no mapping of the overlay: changing it leaves the overlay as it was.
    merged["arms"]["cr-pr"]["constraints"][-1]["per_protocol"] = "< 1 %"
    assert overlay == inputs_before[1]


def test_overlay_merge_errors_name_the_overlay_and_the_entry():
    base_document, base = _seed()
    overlay = {"schema": "rtcheck.overlay/1", "id": "site-x", "extends": SEED_ID, "source": {"site": "test"},
               "arms": {"cr-pr": {"constraints": {"cord-max": {"per_protocol": "<= 40 %", "source": "s"}}}}}
    with pytest.raises(ProtocolError) as info:
        merge_overlay(base_document, base, overlay, "site.yaml")
    assert (info.value.source, info.value.entry) == ("site.yaml", "arms.cr-pr.constraints.cord-max (cord-max).per_protocol")
    assert "output unit Gy" in info.value.reason
    with pytest.raises(ProtocolError) as info:
        overlay_extends({**overlay, "extends": ""}, "site.yaml")
    assert (info.value.source, info.value.entry) == ("site.yaml", "extends")


@pytest.mark.parametrize(
    "mutate, entry, words",
    [
        (lambda d: d["structures"]["Heart"].update(role="organ"), "structures.Heart.role", "expected one of target, oar, other, got 'organ'"),
        (lambda d: d["structures"]["Heart"].update(derived={"xor": ["Lungs", "PTV"]}), "structures.Heart.derived",
         "expected one of union, intersection, subtract"),
        (lambda d: d["arms"]["cr-pr"]["prescriptions"][0].update(dose_set_by="sponsor"), "arms.cr-pr.prescriptions[0].dose_set_by",
         "expected trial or site, got 'sponsor'"),
        (lambda d: d["arms"]["sd-pd"]["constraints"].append({"id": "x", "structure": "Heart", "metric": "Mean[Gy]", "per_protocol": "=< 3 Gy", "source": "s"}),
         "arms.sd-pd.constraints[20] (x).per_protocol", "expected '<', '<=', '>' or '>='"),
    ],
)
def test_validation_of_a_document_names_the_source_and_the_entry(mutate, entry, words):
    document, _ = _seed()
    mutate(document)
    with pytest.raises(ProtocolError) as info:
        parse_protocol(document, "trial.yaml")
    assert (info.value.source, info.value.entry) == ("trial.yaml", entry)
    assert words in info.value.reason
    assert str(info.value) == f"trial.yaml: {entry}: {info.value.reason}"


def test_coded_words_are_str_enums_that_read_as_the_file_says():
    protocol = library.find_protocol(SEED_ID)
    assert protocol.structures["PTV"].role is Role.TARGET and protocol.structures["Heart"].role == "oar"
    rx = protocol.arm("cr-pr").prescriptions[0]
    assert rx.dose_set_by is DoseSetBy.TRIAL and rx.dose_set_by == "trial"
    lungs = next(c for c in protocol.arm("cr-pr").constraints if c.id == "lungs-v20")
    assert lungs.per_protocol.operator in (Comparison.LESS, Comparison.LESS_OR_EQUAL) and lungs.per_protocol.is_upper_limit
    derived = {name: s.derived for name, s in protocol.structures.items() if s.derived}
    assert derived["Lungs"].operation is Operation.UNION and str(derived["Lungs"]) == "Lung_L | Lung_R"
    # What reports print: the word itself, in text, f-strings and JSON.
    assert (str(Role.TARGET), f"{Operation.SUBTRACT}", f"[{DoseSetBy.SITE}]") == ("target", "subtract", "[site]")
    assert json.dumps({Operation.UNION: [Role.OAR, Comparison.LESS_OR_EQUAL]}) == '{"union": ["oar", "<="]}'


def _copy_of_seed(folder: Path, name: str, protocol_id: str) -> Path:
    document = yaml.safe_load(SEED.read_text(encoding="utf-8"))
    document["id"] = protocol_id
    path = folder / name
    path.write_text(yaml.safe_dump(document, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def test_library_finds_lists_and_loads(tmp_path, monkeypatch):
    user = _copy_of_seed(tmp_path, "zz-other-name.yml", "site-trial")  # a file not named after its id, .yml
    shadow = _copy_of_seed(tmp_path, f"{SEED_ID}.yaml", SEED_ID)  # same id as a built-in: the user's folder wins
    (tmp_path / "notes.txt").write_text("not a protocol", encoding="utf-8")
    monkeypatch.setenv("RTCHECK_PROTOCOL_PATH", str(tmp_path))
    assert library.protocol_dirs()[0] == tmp_path
    files = library.protocol_files()
    assert files[:2] == [shadow, user] and SEED in files and tmp_path / "notes.txt" not in files

    found = library.find_protocol("site-trial")
    assert found.path == user and found.sha256 == hashlib.sha256(user.read_bytes()).hexdigest()
    assert library.find_protocol(SEED_ID).path == shadow
    listed = {p.id: p for p in library.list_protocols()}
    assert listed[SEED_ID].path == shadow and listed["site-trial"].path == user
    assert library.load_protocol_file(SEED).path == SEED  # a file named explicitly is read wherever it is
    assert library.find_protocol(str(SEED)).sha256 == hashlib.sha256(SEED.read_bytes()).hexdigest()

    # A file that cannot be read does not hide a protocol found by its id; listing reports it.
    (tmp_path / "broken.yaml").write_text("id: [\n", encoding="utf-8")
    assert library.find_protocol("site-trial").path == user
    with pytest.raises(ProtocolError, match="broken.yaml.*invalid YAML"):
        library.list_protocols()
    with pytest.raises(ProtocolError, match="broken.yaml"):
        library.find_protocol("no-such-trial")
    (tmp_path / "broken.yaml").unlink()
    with pytest.raises(UnknownProtocolError, match="known protocols: .*site-trial"):
        library.find_protocol("no-such-trial")
    with pytest.raises(UnknownProtocolError, match="does not exist"):
        library.find_protocol(str(tmp_path / "absent.yaml"))


def test_an_importer_of_another_format_returns_a_document(tmp_path, monkeypatch):
    """The hook for foreign formats: one function from bytes to a document, registered by suffix."""
    monkeypatch.setattr(library, "_IMPORTERS", dict(library._IMPORTERS))
    read: list[str] = []

    def import_json(raw: bytes, source: str) -> object:
        read.append(source)
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise ProtocolError(source, None, f"invalid JSON: {exc}") from None

    library.register_importer(".json", import_json)
    document = yaml.safe_load(SEED.read_text(encoding="utf-8"))
    document["id"] = "json-trial"
    path = tmp_path / "exported.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    monkeypatch.setenv("RTCHECK_PROTOCOL_PATH", str(tmp_path))

    protocol = library.find_protocol("json-trial")
    assert protocol.path == path and protocol.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert read and read[-1] == str(path)
    assert set(protocol.arms) == set(library.find_protocol(SEED_ID).arms)
    assert library.find_protocol(str(path)).id == "json-trial"  # a path with a registered suffix is a file
    path.write_text("{", encoding="utf-8")
    with pytest.raises(ProtocolError, match="exported.json: invalid JSON"):
        library.load_protocol_file(path)
    with pytest.raises(ValueError, match="starts with '.'"):
        library.register_importer("json", import_json)
