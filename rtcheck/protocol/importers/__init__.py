"""Protocols in other formats: one module per format, each a pure function from a file's bytes
to an rtcheck document (and, where the format can hold a protocol, back).

:data:`FORMATS` is the registry ``rtcheck protocols import/export`` and the protocol
library use: a new format is one module and one line here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from rtcheck.errors import ProtocolExportError, ProtocolImportError, UnknownProtocolError
from rtcheck.protocol.importers._common import Exported, read_json
from rtcheck.protocol.importers.plan_score_card import export_plan_score_card, import_plan_score_card
from rtcheck.protocol.importers.pqm_csv import export_pqm, import_pqm
from rtcheck.protocol.importers.proknow import import_proknow, export_proknow
from rtcheck.protocol.importers.tg263 import NOMENCLATURE_SCHEMA, apply_nomenclature, import_tg263, resolve_nomenclature
from rtcheck.protocol.model import Protocol

__all__ = [
    "FORMATS",
    "Exported",
    "ProtocolFormat",
    "apply_nomenclature",
    "export_protocol",
    "import_document",
    "is_nomenclature",
    "read_foreign",
    "resolve_nomenclature",
]


@dataclass(frozen=True)
class ProtocolFormat:
    """A foreign format: ``read`` gives a protocol document (``kind`` "protocol") or a
    nomenclature dictionary (``kind`` "nomenclature"); ``write`` is None when the format
    cannot hold a protocol."""

    name: str
    title: str
    kind: str
    read: Callable[[bytes, str], dict[str, Any]]
    write: Callable[[Protocol, str | None], Exported] | None
    suffix: str


FORMATS: dict[str, ProtocolFormat] = {
    f.name: f
    for f in (
        ProtocolFormat("pqm-csv", "PQM CSV (plan quality metrics of open ESAPI plan checkers)", "protocol", import_pqm, export_pqm, ".csv"),
        ProtocolFormat("proknow", "ProKnow DS scorecard template (JSON)", "protocol", import_proknow, export_proknow, ".json"),
        ProtocolFormat("plan-score-card", "Varian Plan Score Card template (JSON)", "protocol", import_plan_score_card, export_plan_score_card, ".json"),
        ProtocolFormat("tg263-csv", "AAPM TG-263 nomenclature table (CSV)", "nomenclature", import_tg263, None, ".csv"),
    )
}


def _format(name: str) -> ProtocolFormat:
    try:
        return FORMATS[name]
    except KeyError:
        raise UnknownProtocolError(f"unknown protocol format {name!r}; formats: {', '.join(FORMATS)}") from None


def import_document(data: bytes, format_name: str, file_name: str) -> dict[str, Any]:
    """The rtcheck document (protocol or nomenclature) of a file in ``format_name``; not yet validated."""
    return _format(format_name).read(data, file_name)


def export_protocol(protocol: Protocol, format_name: str, arm_id: str | None = None) -> Exported:
    """``protocol`` (one arm: ``arm_id``, or its only arm) written in ``format_name``, with what the format lost."""
    fmt = _format(format_name)
    if fmt.write is None:
        raise ProtocolExportError(f"format {format_name} ({fmt.title}) cannot hold a protocol: there is no exporter")
    return fmt.write(protocol, arm_id)


def is_nomenclature(document: Any) -> bool:
    """Whether a document read from a protocol folder is a nomenclature dictionary, not a protocol."""
    return isinstance(document, dict) and document.get("schema") == NOMENCLATURE_SCHEMA


def read_foreign(data: bytes, file_name: str) -> dict[str, Any]:
    """The document of a .csv or .json file the protocol library meets, its format recognised by its
    content: a CSV with a ``DVH Objective`` column is a PQM sheet, one with ``TG263-Primary Name`` a
    TG-263 table; JSON with ``computed`` a ProKnow scorecard, with ``ScoreTemplates`` a Plan Score Card."""
    if file_name.lower().endswith(".json"):
        doc = read_json(data, file_name)
        if isinstance(doc, dict) and "computed" in doc:
            return import_proknow(data, file_name)
        if isinstance(doc, dict) and "ScoreTemplates" in doc:
            return import_plan_score_card(data, file_name)
        raise ProtocolImportError(file_name, None, "neither a ProKnow scorecard template (computed) nor a Plan Score Card template (ScoreTemplates)")
    header = data.decode("utf-8-sig", errors="replace").splitlines()[:1]
    first = header[0].lower() if header else ""
    if "tg263-primary name" in first:
        return import_tg263(data, file_name)
    if "dvh objective" in first:
        return import_pqm(data, file_name)
    raise ProtocolImportError(file_name, "row 1", "neither a PQM sheet (a DVH Objective column) nor a TG-263 table (a TG263-Primary Name column)")
