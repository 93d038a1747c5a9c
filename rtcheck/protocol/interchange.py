"""Files in, files checked: importing a foreign file as protocol YAML, validating protocol files
with every error and its line.  What ``rtcheck protocols import/validate`` call; nothing here prints.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from rtcheck.errors import ProtocolError
from rtcheck.protocol.importers import FORMATS, import_document
from rtcheck.protocol.importers.proknow import import_proknow
from rtcheck.protocol.importers.tg263 import resolve_nomenclature
from rtcheck.protocol.library import load_protocol_file, read_document
from rtcheck.protocol.schema import is_overlay, parse_protocol
from rtcheck.protocol.model import Protocol
from rtcheck.protocol.validation import Finding, entry_path, validate_protocol_file


@dataclass(frozen=True)
class Imported:
    """An imported document (validated when it is a protocol), its YAML text, and what the file
    held that is not imported (display-only metrics, custom metrics)."""

    document: dict[str, Any]
    yaml_text: str
    not_imported: list[str]


def import_file(path: str | Path, format_name: str, *, protocol_id: str | None = None, levels: dict[str, str] | None = None) -> Imported:
    """Read ``path`` in ``format_name`` and return the rtcheck document, refusing what cannot be mapped."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ProtocolError(str(path), None, f"cannot read ({exc.strerror or exc})") from None
    if levels is not None:
        document = import_proknow(data, path.name, levels=levels)
    else:
        document = import_document(data, format_name, path.name)
    kind = FORMATS[format_name].kind
    if protocol_id and kind == "protocol":
        document["id"] = protocol_id
    if kind == "protocol":
        parse_protocol(document, f"{path} (imported)")
    source = document.get("source", {})
    header = (
        f"# Imported by rtcheck from {path.name} ({FORMATS[format_name].title}, sha256 {source.get('sha256', '')}).\n"
        "# Each constraint's source names the row or item it comes from. Review every value, and\n"
        "# give the prescriptions the imported file does not state, before grading plans with it.\n"
    )
    text = header + yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=120)
    return Imported(document, text, list(source.get("not_imported", [])))


def validate_file(path: str | Path) -> tuple[Protocol | None, list[Finding]]:
    """The protocol in ``path`` when valid, else every error found, each with its line when known."""
    path = Path(path)
    try:
        _, document = read_document(path)
    except ProtocolError:
        document = None
    if is_overlay(document):
        return _validate_overlay(path)
    findings = validate_protocol_file(path, lambda doc, source: parse_protocol(resolve_nomenclature(doc, path, read_document), source), read_document)
    if findings:
        return None, findings
    return load_protocol_file(path), []


def _validate_overlay(path: Path) -> tuple[Protocol | None, list[Finding]]:
    """An overlay is merged with its base before it can be validated: its first error, located when it is in this file."""
    try:
        return load_protocol_file(path), []
    except ProtocolError as exc:
        line = None
        if exc.source == str(path) and exc.entry:
            raw = path.read_bytes().decode("utf-8", errors="replace")
            root = yaml.compose(raw, Loader=yaml.SafeLoader)
            if root is not None:
                found, node = entry_path(root, exc.entry)
                line = node.start_mark.line + 1 if found else None
        return None, [Finding(exc.source, line, exc.entry, exc.reason)]
