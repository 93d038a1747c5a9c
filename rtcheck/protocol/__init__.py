"""Trial protocols: data files validated on load, structure-name matching, thresholds."""

from rtcheck.protocol.model import Arm, Constraint, Prescription, Protocol, StructureSpec, Threshold
from rtcheck.protocol.loader import find_protocol, list_protocols, load_protocol_file

__all__ = [
    "Arm",
    "Constraint",
    "Prescription",
    "Protocol",
    "StructureSpec",
    "Threshold",
    "find_protocol",
    "list_protocols",
    "load_protocol_file",
]
