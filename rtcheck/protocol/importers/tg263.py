"""The AAPM TG-263 nomenclature table (CSV saved from the report's worksheet) as an alias/code dictionary.

The worksheet's columns: ``Target Type``, ``Major Category``, ``Minor Category``,
``Anatomic Group``, ``N Characters`` (or ``Number of characters``),
``TG263-Primary Name``, ``TG-263-Reverse Order Name``, ``Description``, ``FMAID``,
and in later versions ``SNOMED-CT Code``, ``SNOMEDCT Term``, ``Qualifiers``.
Comma- or semicolon-separated.  Any other column is refused.

The dictionary is a document ``{"schema": "rtcheck.nomenclature/1", "source": ...,
"structures": {primary name: {"reverse_order_name", "fma", ...}}}``.  A protocol
names it with ``nomenclature: FILE`` (a .csv table or a .yaml dictionary,
relative to the protocol); :func:`apply_nomenclature` then gives every structure
whose TG-263 name is in the table the primary and reverse-order names as
aliases and the FMA ID as its code, so ``Lung_L`` matches ``L_Lung`` and FMA 7310
without a hand-written alias list.
"""

from __future__ import annotations

import copy
import csv
import hashlib
import io
from pathlib import Path, PurePath
from typing import Any, Callable

from rtcheck.errors import ProtocolError, ProtocolImportError

NOMENCLATURE_SCHEMA = "rtcheck.nomenclature/1"
FORMAT_TITLE = "TG-263 nomenclature table"
_PRIMARY = "tg263-primary name"
_COLUMNS = {
    "target type": "target_type",
    "major category": "major_category",
    "minor category": "minor_category",
    "anatomic group": "anatomic_group",
    "n characters": None,
    "number of characters": None,
    _PRIMARY: "primary",
    "tg-263-reverse order name": "reverse_order_name",
    "description": "description",
    "fmaid": "fma",
    "snomed-ct code": "snomed_ct",
    "snomedct term": "snomed_ct_term",
    "qualifiers": "qualifiers",
}


def import_tg263(data: bytes, file_name: str) -> dict[str, Any]:
    """The nomenclature dictionary of a TG-263 table (``file_name`` for sources and messages)."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ProtocolImportError(file_name, None, "not UTF-8 text (save the worksheet as CSV UTF-8)") from None
    first = text.splitlines()[0] if text.strip() else ""
    delimiter = ";" if first.count(";") > first.count(",") else ","
    rows = list(csv.reader(io.StringIO(text), delimiter=delimiter))
    if not rows:
        raise ProtocolImportError(file_name, None, "empty file")
    header = [h.strip().lower() for h in rows[0]]
    for i, name in enumerate(header):
        if name and name not in _COLUMNS:
            raise ProtocolImportError(file_name, f"row 1, column {i + 1}", f"unknown column {rows[0][i].strip()!r}; a TG-263 table has: {', '.join(_COLUMNS)}")
    if _PRIMARY not in header:
        raise ProtocolImportError(file_name, "row 1", "no 'TG263-Primary Name' column")
    structures: dict[str, dict[str, Any]] = {}
    rows_of: dict[str, int] = {}
    for number, row in enumerate(rows[1:], start=2):
        cells = {header[i]: cell.strip() for i, cell in enumerate(row) if i < len(header) and header[i]}
        if any(cell.strip() for i, cell in enumerate(row) if i >= len(header) or not header[i]):
            raise ProtocolImportError(file_name, f"row {number}", "a value in a column without a header")
        primary = cells.get(_PRIMARY, "")
        if not primary:
            if any(cells.values()):
                raise ProtocolImportError(file_name, f"row {number}", "no TG263-Primary Name")
            continue
        if primary in structures:
            raise ProtocolImportError(file_name, f"row {number}", f"{primary!r} appears twice (also row {rows_of[primary]})")
        entry: dict[str, Any] = {}
        for column, value in cells.items():
            key = _COLUMNS[column]
            if key in (None, "primary") or not value:
                continue
            if key == "fma":
                if not value.isdigit():
                    raise ProtocolImportError(file_name, f"row {number}, FMAID", f"expected an FMA ID (a whole number), got {value!r}")
                entry["fma"] = int(value)
            else:
                entry[key] = value
        structures[primary] = entry
        rows_of[primary] = number
    if not structures:
        raise ProtocolImportError(file_name, None, "no structure names")
    return {
        "schema": NOMENCLATURE_SCHEMA,
        "source": {"imported_from": PurePath(file_name).name, "format": FORMAT_TITLE, "sha256": hashlib.sha256(data).hexdigest()},
        "structures": structures,
    }


def apply_nomenclature(protocol: dict[str, Any], nomenclature: dict[str, Any], source: str) -> dict[str, Any]:
    """A copy of the protocol document whose structures found in the dictionary (by ``tg263``
    name, else by key) carry the TG-263 primary and reverse-order names as aliases and the FMA ID."""
    result = copy.deepcopy(protocol)
    table = nomenclature.get("structures") or {}
    for name, body in (result.get("structures") or {}).items():
        if not isinstance(body, dict):
            continue
        tg263 = body.get("tg263", name)
        entry = table.get(tg263)
        if entry is None:
            continue
        aliases = list(body.get("aliases") or [])
        for alias in (tg263, entry.get("reverse_order_name")):
            if alias and alias not in aliases:
                aliases.append(alias)
        body["aliases"] = aliases
        if "fma" in entry:
            given = body.get("fma")
            codes = given if isinstance(given, list) else [given] if given is not None else []
            if codes and entry["fma"] not in codes:
                raise ProtocolError(source, f"structures.{name}.fma", f"{given} is not TG-263's FMA ID {entry['fma']} for {tg263}")
            body.setdefault("fma", entry["fma"])
    return result


def read_nomenclature(path: Path, read: Callable[[Path], tuple[bytes, Any]]) -> dict[str, Any]:
    """A nomenclature file: a TG-263 CSV table, or a YAML dictionary written by ``rtcheck protocols import``
    (``read``: the protocol library's reader of a file's bytes and document)."""
    if path.suffix.lower() == ".csv":
        try:
            return import_tg263(path.read_bytes(), str(path))
        except OSError as exc:
            raise ProtocolError(str(path), None, f"cannot read the nomenclature ({exc.strerror or exc})") from None
    doc = read(path)[1]
    if not isinstance(doc, dict) or doc.get("schema") != NOMENCLATURE_SCHEMA or not isinstance(doc.get("structures"), dict):
        raise ProtocolError(str(path), "schema", f"expected a nomenclature dictionary (schema {NOMENCLATURE_SCHEMA}) or a TG-263 .csv table")
    return doc


def resolve_nomenclature(document: Any, path: Path, read: Callable[[Path], tuple[bytes, Any]]) -> Any:
    """The protocol document with its ``nomenclature: FILE`` applied (the key replaced by a
    ``source.nomenclature`` note naming the file and its sha256); other documents unchanged.
    ``read`` reads a .yaml dictionary (the protocol library's reader, passed in: no import cycle)."""
    if not isinstance(document, dict) or "nomenclature" not in document:
        return document
    reference = document["nomenclature"]
    if not isinstance(reference, str) or not reference.strip():
        raise ProtocolError(str(path), "nomenclature", "expected the file of a TG-263 table (.csv) or nomenclature dictionary (.yaml)")
    target = Path(reference) if Path(reference).is_absolute() else path.parent / reference
    nomenclature = read_nomenclature(target, read)
    result = apply_nomenclature({k: v for k, v in document.items() if k != "nomenclature"}, nomenclature, str(path))
    if isinstance(result.get("source"), dict):
        sha = hashlib.sha256(target.read_bytes()).hexdigest()
        result["source"] = {**result["source"], "nomenclature": f"{reference} (sha256 {sha})"}
    return result
