"""Trial protocols: data files validated on load, structure-name matching, thresholds.

``model`` (what a protocol means), ``schema`` (document -> model, validation), ``overlay``
(a site overlay merged into its base's document), ``library`` (finding and loading files),
``matching`` (ROI names -> protocol structures).
"""

from rtcheck.protocol.library import find_protocol, list_protocols, load_protocol_file, register_importer
from rtcheck.protocol.model import (
    Arm,
    Comparison,
    Constraint,
    ConstraintKind,
    Derivation,
    DoseSetBy,
    Eqd2Window,
    Operation,
    Prescription,
    Protocol,
    Role,
    StructureSpec,
    Threshold,
)

__all__ = [
    "Arm",
    "Comparison",
    "Constraint",
    "ConstraintKind",
    "Derivation",
    "DoseSetBy",
    "Eqd2Window",
    "Operation",
    "Prescription",
    "Protocol",
    "Role",
    "StructureSpec",
    "Threshold",
    "find_protocol",
    "list_protocols",
    "load_protocol_file",
    "register_importer",
]
