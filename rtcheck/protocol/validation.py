"""Every error of a protocol file, each with its line (``rtcheck protocols validate``).

The schema stops at the first problem; to report the others, the offending entry
is set aside (a constraint or prescription removed, a structure reduced to its
name) and the document validated again, until it passes or nothing more can be
set aside.  An error naming something set aside (``unknown structure 'X'``
after X was reduced, ``prescribes none to PTV`` after PTV's prescription was
removed) is taken as its consequence and not reported again.  The entry an error names,
e.g. ``arms.cr-pr.constraints[3] (ptv-d2).per_protocol``, is found in the YAML
text to give its line.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import yaml

from rtcheck.errors import ProtocolError

MAX_ERRORS = 100
_LINE = re.compile(r"^line (\d+), column \d+$")
PathPart = str | int


@dataclass(frozen=True)
class Finding:
    """One error: the file, its 1-based line (None when no line can be named), the entry and what is expected."""

    file: str
    line: int | None
    entry: str | None
    message: str

    def __str__(self) -> str:
        text = f"{self.file}: {self.entry}: {self.message}" if self.entry else f"{self.file}: {self.message}"
        return f"{text} (line {self.line})" if self.line else text


def entry_path(node: yaml.Node, entry: str) -> tuple[list[PathPart], yaml.Node]:
    """The path (keys and indices) an error's entry names in the composed YAML, as far as it
    resolves, and the deepest node found.  Keys are matched greedily, so names with dots work."""
    path: list[PathPart] = []
    rest = entry
    while rest:
        rest = rest.lstrip(".")
        if isinstance(node, yaml.MappingNode):
            keys = sorted(((k, v) for k, v in node.value if isinstance(k, yaml.ScalarNode)), key=lambda kv: -len(str(kv[0].value)))
            found = None
            for key, value in keys:
                name = str(key.value)
                if rest.startswith(name) and (len(rest) == len(name) or rest[len(name)] in ".[ "):
                    found = (name, value)
                    break
            if found is None:
                break
            path.append(found[0])
            node, rest = found[1], rest[len(found[0]):]
        elif isinstance(node, yaml.SequenceNode):
            index = re.match(r"^\[(\d+)\]( \([^)]*\))?", rest)
            by_id = re.match(r"^ \(([^)]*)\)", rest)
            if index and int(index.group(1)) < len(node.value):
                path.append(int(index.group(1)))
                node, rest = node.value[int(index.group(1))], rest[index.end():]
            elif by_id:
                hit = next((i for i, item in enumerate(node.value) if _scalar(item, "id") == by_id.group(1)), None)
                if hit is None:
                    break
                path.append(hit)
                node, rest = node.value[hit], rest[by_id.end():]
            else:
                break
        else:
            break
    return path, node


def _scalar(node: yaml.Node, key: str) -> str | None:
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            if isinstance(k, yaml.ScalarNode) and k.value == key and isinstance(v, yaml.ScalarNode):
                return str(v.value)
    return None


def collect_errors(text: str, document: Any, source: str, parse: Callable[[Any, str], Any]) -> list[Finding]:
    """All errors ``parse`` finds in ``document`` (parsed from ``text``), each with its line."""
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    findings: list[Finding] = []
    doc = copy.deepcopy(document)
    set_aside: list[str] = []
    while len(findings) < MAX_ERRORS:
        try:
            parse(doc, source)
            break
        except ProtocolError as exc:
            path, node = entry_path(root, exc.entry or "") if root is not None else ([], None)
            consequence = any(re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", exc.reason) for name in set_aside if name)
            if not consequence:
                line = node.start_mark.line + 1 if node is not None and path else None
                findings.append(Finding(source, line, exc.entry, exc.reason))
            removed = _set_aside(doc, path)
            if removed is None:
                if consequence:  # nothing more can be set aside: report it after all
                    findings.append(Finding(source, None, exc.entry, exc.reason))
                break
            set_aside.append(removed)
    return findings


def _set_aside(doc: Any, path: list[PathPart]) -> str | None:
    """Remove (or reduce) the entry at ``path`` so validation can go on; its name, or None when impossible."""
    if len(path) >= 2 and path[0] == "structures" and isinstance(doc.get("structures"), dict):
        name = path[1]
        minimal = {"aliases": [str(name)]}
        if doc["structures"].get(name) == minimal:
            return None
        doc["structures"][name] = minimal
        return str(name)
    # The deepest list item (a constraint, a prescription) on the path.
    for depth in range(len(path) - 1, 0, -1):
        index = path[depth]
        if isinstance(index, int):
            container = _walk(doc, path[:depth])
            if isinstance(container, list) and index < len(container):
                item = container.pop(index)
                # A constraint by its id, a prescription by its target (errors naming them are consequences).
                return str(item.get("id") or item.get("target") or "") if isinstance(item, dict) else ""
    if len(path) >= 2 and path[0] in ("arms", "constraint_sets"):
        container = doc.get(path[0])
        if isinstance(container, dict) and path[1] in container and len(container) > 1:
            del container[path[1]]
            return str(path[1])
    return None


def _walk(doc: Any, path: list[PathPart]) -> Any:
    for part in path:
        try:
            doc = doc[part]
        except (KeyError, IndexError, TypeError):
            return None
    return doc


def validate_protocol_file(path: Path, parse: Callable[[Any, str], Any], read: Callable[[Path], tuple[bytes, Any]]) -> list[Finding]:
    """Every error of the protocol file at ``path`` (empty when valid).

    ``read`` gives the file's bytes and YAML content (raising ProtocolError on bad YAML);
    ``parse`` validates a document (raising ProtocolError naming the entry).
    """
    try:
        raw, document = read(path)
    except ProtocolError as exc:
        match = _LINE.match(exc.entry or "")
        return [Finding(str(path), int(match.group(1)) if match else None, None if match else exc.entry, exc.reason)]
    return collect_errors(raw.decode("utf-8"), document, str(path), parse)
