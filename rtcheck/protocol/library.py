"""The protocol library: finding, listing and loading protocol files, and resolving overlay bases.

Where files are looked for: the folders of ``$RTCHECK_PROTOCOL_PATH`` (``os.pathsep``-separated),
then the built-in protocols.  A file is turned into a document (a plain mapping) by the importer
registered for its suffix; rtcheck's own format is YAML (``.yaml``, ``.yml``), and a file named
explicitly with any other suffix is read as YAML too.  Another format is one importer module (a
function from the file's bytes to a document) plus one line in ``_IMPORTERS`` below, or a call of
:func:`register_importer` at run time.  The document is
validated by rtcheck.protocol.schema; a site overlay is merged with its base by
rtcheck.protocol.overlay.  A protocol's ``path`` and ``sha256`` (of the file's bytes) are set here.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import yaml

from rtcheck.errors import ProtocolError, UnknownProtocolError
from rtcheck.protocol.model import Protocol
from rtcheck.protocol.overlay import merge_overlay, overlay_extends
from rtcheck.protocol.schema import is_overlay, parse_protocol

__all__ = [
    "PROTOCOL_PATH_ENV",
    "Importer",
    "find_protocol",
    "list_protocols",
    "load_protocol_file",
    "protocol_dirs",
    "protocol_files",
    "read_document",
    "register_importer",
]

PROTOCOL_PATH_ENV = "RTCHECK_PROTOCOL_PATH"

# An importer turns a file's bytes into a protocol or overlay document; ``source`` (the file)
# is for its ProtocolError messages.
Importer = Callable[[bytes, str], Any]


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate mapping keys (PyYAML keeps the last one silently)."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _read_yaml(raw: bytes, source: str) -> Any:
    """rtcheck's own format: a YAML document (UTF-8, no duplicate keys)."""
    try:
        return yaml.load(raw.decode("utf-8"), Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except UnicodeDecodeError:
        raise ProtocolError(source, None, "not UTF-8 text") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise ProtocolError(source, where, f"invalid YAML: {problem}") from None


def _read_foreign(raw: bytes, source: str) -> Any:
    """A file of another format (PQM CSV, ProKnow or Plan Score Card JSON), recognised by its content;
    a TG-263 table gives its nomenclature dictionary (see rtcheck.protocol.importers)."""
    from rtcheck.protocol.importers import read_foreign

    return read_foreign(raw, source)


# File suffix -> importer; the protocol folders are searched for files with these suffixes.
_IMPORTERS: dict[str, Importer] = {".yaml": _read_yaml, ".yml": _read_yaml, ".csv": _read_foreign, ".json": _read_foreign}


def register_importer(suffix: str, importer: Importer) -> None:
    """Read files ending in ``suffix`` (e.g. ``".csv"``) with ``importer``; they are then found in the protocol folders too."""
    if not suffix.startswith("."):
        raise ValueError(f"a file suffix starts with '.', got {suffix!r}")
    _IMPORTERS[suffix] = importer


def _names_a_file(text: str) -> bool:
    """Whether a protocol reference (``--protocol``, ``extends:``) is a file rather than an id."""
    return Path(text).suffix in _IMPORTERS or "/" in text or os.sep in text


def read_document(path: Path) -> tuple[bytes, Any]:
    """The bytes of a protocol or overlay file and the document its importer makes of them."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ProtocolError(str(path), None, f"cannot read ({exc.strerror or exc})") from None
    return raw, _IMPORTERS.get(path.suffix, _read_yaml)(raw, str(path))


def protocol_dirs() -> list[Path]:
    """Folders searched for protocols: those in $RTCHECK_PROTOCOL_PATH, then the built-in ones."""
    dirs = [Path(p) for p in os.environ.get(PROTOCOL_PATH_ENV, "").split(os.pathsep) if p]
    package = Path(__file__).resolve().parent.parent
    # Installed wheel: rtcheck/builtin_protocols; source checkout or editable install: ../protocols.
    for builtin in (package / "builtin_protocols", package.parent / "protocols"):
        if builtin.is_dir():
            dirs.append(builtin)
            break
    return dirs


def protocol_files() -> list[Path]:
    """Every protocol file of the protocol folders, folder by folder (each folder's files sorted)."""
    files: list[Path] = []
    for folder in protocol_dirs():
        if folder.is_dir():
            files.extend(sorted(f for suffix in _IMPORTERS for f in folder.glob("*" + suffix)))
    return files


class _Found(NamedTuple):
    path: Path
    raw: bytes
    document: Any


def _file_with_id(protocol_id: str, skip: Path | None = None) -> _Found | None:
    """The first protocol file whose document has this id (files named after it are tried first).

    A file that cannot be read is passed over here; listing the protocols reports it.
    """
    skipped = skip.resolve() if skip is not None else None
    for candidate in sorted(protocol_files(), key=lambda f: f.stem != protocol_id):
        if candidate.resolve() == skipped:
            continue
        try:
            raw, document = read_document(candidate)
        except ProtocolError:
            continue
        if isinstance(document, dict) and document.get("id") == protocol_id:
            return _Found(candidate, raw, document)
    return None


# Overlay files being resolved in this thread, outermost first: a file met again is a cycle.
_loading = threading.local()


def _refuse_cycle(source: Path, met: Path) -> None:
    stack: list[Path] = getattr(_loading, "stack", [])
    resolved = met.resolve()
    if resolved in stack:
        chain = " -> ".join(str(p) for p in [*stack[stack.index(resolved):], resolved])
        raise ProtocolError(str(source), "extends", f"overlays extend each other in a cycle: {chain}")


def _load(found: _Found) -> tuple[Protocol, dict]:
    """The protocol in a file and the document it was built from (for an overlay: merged with its bases)."""
    path, raw, document = found
    if not is_overlay(document):
        from rtcheck.protocol.importers import resolve_nomenclature

        document = resolve_nomenclature(document, path, read_document)
        protocol = parse_protocol(document, str(path))
        provenance: dict[str, str] = {}
        bases: list[dict] = []
    else:
        _refuse_cycle(path, path)
        stack: list[Path] = getattr(_loading, "stack", [])
        _loading.stack = [*stack, path.resolve()]
        try:
            base, base_document = _load(_base_file(path, overlay_extends(document, str(path))))
        finally:
            _loading.stack = stack
        document, provenance = merge_overlay(base_document, base, document, str(path))
        protocol = parse_protocol(document, str(path))
        kind = "overlay" if base.bases else "protocol"
        bases = [*base.bases, {"kind": kind, "id": base.id, "title": base.title, "path": str(base.path), "sha256": base.sha256}]
    protocol.path = path
    protocol.sha256 = hashlib.sha256(raw).hexdigest()
    protocol.bases = bases
    protocol.provenance = provenance
    return protocol, document


def _base_file(overlay_path: Path, extends: str) -> _Found:
    """The file an overlay extends: a path relative to the overlay, or the id of a protocol in the folders."""
    if _names_a_file(extends):
        base = Path(extends) if Path(extends).is_absolute() else overlay_path.parent / extends
        if not base.is_file():
            raise ProtocolError(str(overlay_path), "extends", f"protocol file {base} does not exist")
        return _Found(base, *read_document(base))
    found = _file_with_id(extends, skip=overlay_path)
    if found is None:
        raise ProtocolError(str(overlay_path), "extends", f"unknown protocol {extends!r} (searched the protocol folders)")
    _refuse_cycle(overlay_path, found.path)
    return found


def load_protocol_file(path: str | Path) -> Protocol:
    """Read, validate and return the protocol in ``path`` (with its sha256); a site overlay is merged with its base."""
    path = Path(path)
    return _load(_Found(path, *read_document(path)))[0]


def list_protocols() -> list[Protocol]:
    """Every protocol found, first occurrence of an id winning (user folders before built-ins)."""
    from rtcheck.protocol.importers import is_nomenclature

    found: dict[str, Protocol] = {}
    for path in protocol_files():
        file = _Found(path, *read_document(path))
        if is_nomenclature(file.document):  # a TG-263 dictionary beside the protocols naming it
            continue
        protocol = _load(file)[0]
        found.setdefault(protocol.id, protocol)
    return list(found.values())


def find_protocol(id_or_path: str) -> Protocol:
    """The protocol with this id, or the protocol file at this path."""
    if _names_a_file(id_or_path):
        candidate = Path(id_or_path)
        if candidate.is_file():
            return load_protocol_file(candidate)
        raise UnknownProtocolError(f"protocol file {id_or_path} does not exist")
    found = _file_with_id(id_or_path)
    if found is not None:
        return _load(found)[0]
    known = ", ".join(p.id for p in list_protocols()) or "none"
    raise UnknownProtocolError(f"unknown protocol {id_or_path!r}; known protocols: {known}")
