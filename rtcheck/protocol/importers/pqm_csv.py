"""PQM CSV: the "plan quality metric" sheets of open ESAPI plan checkers.

One row per DVH objective, e.g. (the layout of LDClark/PlanCheck's ConstraintTemplates)::

    Structure IDs,Structure Codes,IDAliases,CodeAliases,DVH Objective,Evaluation Point,Variation,Priority,Met,Achieved
    Bladder,15900,,,D50%[cGy],<=6500,6825,1,,

``DVH Objective`` is written in the TG-263 grammar rtcheck uses; ``Evaluation Point``
is the per-protocol limit (operator and number, in the objective's output unit);
``Variation`` the variation-acceptable limit (a number, same direction);
``Structure Codes`` and ``CodeAliases`` FMA IDs separated by ``|``; ``IDAliases``
other names separated by ``|``.  ``Priority`` 1 is graded (``kind: required``), 2
is reported without counting (``kind: informational``, rtcheck's convention: PQM
files give priorities no documented meaning); others are refused.  ``Met`` and
``Achieved`` are results of an earlier evaluation and are not read.
"""

from __future__ import annotations

import csv
import io

from rtcheck.errors import ProtocolImportError
from rtcheck.protocol.importers._common import (
    DocumentBuilder,
    Exported,
    absolute_constraints,
    export_arm,
    number_text,
    operator_losses,
    parse_codes,
    parse_operator_value,
)
from rtcheck.protocol.model import Protocol

FORMAT_TITLE = "PQM CSV"
# Header spellings seen in PQM files -> the column's meaning.
_COLUMNS = {
    "structure ids": "structure",
    "structure id": "structure",
    "structure codes": "codes",
    "structure code": "codes",
    "idaliases": "aliases",
    "id aliases": "aliases",
    "codealiases": "code_aliases",
    "code aliases": "code_aliases",
    "dvh objective": "objective",
    "evaluation point": "limit",
    "variation": "variation",
    "priority": "priority",
    "met": "result",
    "achieved": "result",
}
_REQUIRED = {"structure": "Structure IDs", "objective": "DVH Objective", "limit": "Evaluation Point"}
_PRIORITY_REQUIRED = {"1": "required", "2": "informational"}
HEADER = ["Structure IDs", "Structure Codes", "IDAliases", "CodeAliases", "DVH Objective", "Evaluation Point", "Variation", "Priority", "Met", "Achieved"]


def import_pqm(data: bytes, file_name: str, *, protocol_id: str | None = None) -> dict:
    """The protocol document of a PQM CSV file (``file_name`` is used in sources and messages)."""
    builder = DocumentBuilder(file_name, data, FORMAT_TITLE, title=f"Plan quality metrics of {file_name}")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ProtocolImportError(file_name, None, "not UTF-8 text") from None
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        raise builder.fail(None, "empty file")
    columns = _header(rows[0], builder)
    for number, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        location = f"row {number}"
        if len(row) > len(columns):
            raise builder.fail(location, f"{len(row)} cells, the header has {len(columns)} columns")
        cells = {columns[i]: cell.strip() for i, cell in enumerate(row)}
        _row(cells, builder, location)
    return builder.build(protocol_id)


def _header(header: list[str], builder: DocumentBuilder) -> list[str]:
    columns = []
    for i, name in enumerate(header):
        meaning = _COLUMNS.get(name.strip().lower())
        if meaning is None:
            raise builder.fail(
                f"row 1, column {i + 1}",
                f"unknown column {name.strip()!r}; a PQM file has: {', '.join(HEADER)}",
            )
        columns.append(meaning if meaning != "result" else f"result{i}")
    missing = [_REQUIRED[m] for m in _REQUIRED if m not in columns]
    if missing:
        raise builder.fail("row 1", f"missing column(s): {', '.join(missing)}")
    return columns


def _row(cells: dict[str, str], builder: DocumentBuilder, location: str) -> None:
    codes = parse_codes(cells.get("codes", ""), builder, f"{location}, Structure Codes")
    codes += [c for c in parse_codes(cells.get("code_aliases", ""), builder, f"{location}, CodeAliases") if c not in codes]
    aliases = [a for a in cells.get("aliases", "").split("|") if a.strip()]
    structure = builder.structure(cells.get("structure", ""), aliases, codes, location)
    metric = builder.metric(cells["objective"], f"{location}, DVH Objective")
    limit = parse_operator_value(cells["limit"])
    if limit is None:
        raise builder.fail(
            f"{location}, Evaluation Point",
            f"expected an operator and a number in {metric.output_unit} such as <=6500, got {cells['limit']!r}",
        )
    operator, value = limit
    variation = None
    if cells.get("variation"):
        try:
            variation = float(cells["variation"])
        except ValueError:
            raise builder.fail(f"{location}, Variation", f"expected a number in {metric.output_unit}, got {cells['variation']!r}") from None
    priority = cells.get("priority", "") or "1"
    if priority not in _PRIORITY_REQUIRED:
        raise builder.fail(
            f"{location}, Priority",
            f"priority {priority!r}: rtcheck reads 1 (graded) and 2 (reported, not counted) only",
        )
    builder.constraint(structure, metric, operator, value, variation, kind=_PRIORITY_REQUIRED[priority], location=location)


def export_pqm(protocol: Protocol, arm_id: str | None = None) -> Exported:
    """One arm of ``protocol`` as a PQM CSV file (doses in % of a prescription written in Gy)."""
    arm = export_arm(protocol, arm_id)
    rows, losses = absolute_constraints(protocol, arm)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADER)
    for r in rows:
        spec = r.structure
        aliases = [a for a in spec.aliases if a != spec.name]
        writer.writerow([
            spec.name,
            "|".join(str(c) for c in spec.fma_codes),
            "|".join(aliases),
            "",
            r.metric.text,
            f"{r.operator}{number_text(r.per_protocol)}",
            "" if r.variation is None else number_text(r.variation),
            "2" if r.constraint.kind == "informational" else "1",
            "",
            "",
        ])
    losses.extend(operator_losses(rows, inclusive=False))
    losses.append("the constraints' ids and sources are not written: a PQM file has no column for them")
    if any(r.constraint.kind == "graded-if-contoured" for r in rows):
        losses.append("graded-if-contoured constraints are written as priority 1 (graded): a PQM file has no such kind")
    return Exported(out.getvalue().encode("utf-8"), losses)
