"""Trial protocols: data files validated on load, structure-name matching, thresholds.

``model`` (what a protocol means), ``schema`` (document -> model, validation), ``overlay``
(a site overlay merged into its base's document), ``library`` (finding and loading files),
``matching`` (ROI names -> protocol structures).
"""

from rtcheck.protocol.library import find_protocol, list_protocols, load_protocol_file, register_importer
from rtcheck.protocol.model import (
    Arm,
    Constraint,
    Derivation,
    Eqd2Window,
    Prescription,
    Protocol,
    StructureSpec,
    Threshold,
)

__all__ = [
    "Arm",
    "Constraint",
    "Derivation",
    "Eqd2Window",
    "Prescription",
    "Protocol",
    "StructureSpec",
    "Threshold",
    "find_protocol",
    "list_protocols",
    "load_protocol_file",
    "register_importer",
]
