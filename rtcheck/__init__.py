"""rtcheck: check a radiotherapy plan (DICOM RT Plan, RT Dose, RT Structure Set)
against a clinical-trial protocol.

Doses are in Gy, volumes in cc (cm^3), positions in DICOM patient coordinates (mm).

Everything the command line does is callable from here::

    import rtcheck
    [result] = rtcheck.check_paths(["sample_plans/cr-pr-compliant"], "escc-induction-icrt-ccrt", "cr-pr")
    result.verdict                      # <Status.PER_PROTOCOL: 'per_protocol'>
    rtcheck.Rendering([result]).text("junit")

The names below are loaded on first use, so that ``import rtcheck`` (which every module does for
``__version__``) loads no stage of the pipeline.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# Public name -> the module that defines it.
_EXPORTS: dict[str, str] = {
    # checking plans
    "check_paths": "rtcheck.api",
    "check_linked_set": "rtcheck.api",
    "checkable_protocol": "rtcheck.api",
    "dvh_statistics": "rtcheck.api",
    "CheckOptions": "rtcheck.grading",
    "PriorCourse": "rtcheck.radiobiology.reirradiation",
    "run_batch": "rtcheck.batch",
    # linking DICOM files into plan sets
    "link": "rtcheck.dicom.references",
    "read_references": "rtcheck.dicom.references",
    "LinkedSet": "rtcheck.dicom.references",
    # protocols
    "find_protocol": "rtcheck.protocol.library",
    "list_protocols": "rtcheck.protocol.library",
    "load_protocol_file": "rtcheck.protocol.library",
    "Protocol": "rtcheck.protocol.model",
    # results
    "Status": "rtcheck.results",
    "CheckKind": "rtcheck.results",
    "CheckOutcome": "rtcheck.results",
    "CheckResult": "rtcheck.results",
    "StructureStatistics": "rtcheck.results",
    # reports
    "FORMATS": "rtcheck.render.outputs",
    "Rendering": "rtcheck.render.outputs",
    "RenderOptions": "rtcheck.render.outputs",
    # errors (exit 2 on the command line; anything else is a bug, exit 3)
    "RtcheckError": "rtcheck.errors",
    "InputError": "rtcheck.errors",
    "ProtocolError": "rtcheck.errors",
}

__all__ = ["__version__", *_EXPORTS]

if TYPE_CHECKING:
    from rtcheck.api import check_linked_set, check_paths, checkable_protocol, dvh_statistics
    from rtcheck.batch import run_batch
    from rtcheck.dicom.references import LinkedSet, link, read_references
    from rtcheck.errors import InputError, ProtocolError, RtcheckError
    from rtcheck.grading import CheckOptions
    from rtcheck.protocol.library import find_protocol, list_protocols, load_protocol_file
    from rtcheck.protocol.model import Protocol
    from rtcheck.radiobiology.reirradiation import PriorCourse
    from rtcheck.render.outputs import FORMATS, RenderOptions, Rendering
    from rtcheck.results import CheckKind, CheckOutcome, CheckResult, Status, StructureStatistics


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'rtcheck' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
