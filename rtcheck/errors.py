"""Exception classes of rtcheck.

Every error a user can cause (bad input file, unknown protocol, malformed
metric) derives from :class:`RtcheckError`; the command line turns those into
a one-line message and exit code 2.  Anything else is a bug.
"""

from __future__ import annotations

from pathlib import Path


class RtcheckError(Exception):
    """Base class of every error caused by the user's input."""


class InputError(RtcheckError):
    """A DICOM input cannot be used; the message names the file."""

    def __init__(self, path: str | Path | None, message: str) -> None:
        self.path = None if path is None else str(path)
        self.reason = message
        super().__init__(f"{self.path}: {message}" if self.path else message)


class NotDicomError(InputError):
    """The file is not a DICOM file (no preamble/DICM prefix, no parsable data set)."""


class UnreadableError(InputError):
    """The operating system refuses to read a file or folder (permission, I/O error); a plan may lie in it."""


class DamagedFileError(InputError):
    """A DICOM file (by its DICM prefix or file meta) whose data set cannot be read to the elements needed."""


class TruncatedFileError(DamagedFileError):
    """The file ends before the data set it announces.

    ``sop_class_uid`` is the SOP Class UID read before the damage ("" if unknown).
    """

    sop_class_uid: str = ""


class UnsupportedObjectError(InputError):
    """A DICOM object of a supported class uses a feature rtcheck cannot evaluate honestly
    (RELATIVE dose, non-axial dose grid, missing pixel data...)."""


class MissingObjectError(InputError):
    """A plan set lacks an object (no RT Plan, no RT Dose, structure set absent...)."""


class LinkError(InputError):
    """UID references between objects do not resolve or contradict each other
    (dangling reference, mismatched Frame of Reference)."""


class SelectionError(RtcheckError):
    """``--plan`` or ``--structure`` selects nothing, or selects ambiguously."""


class ProtocolError(RtcheckError):
    """A protocol file is malformed; the message names the file and the entry."""

    def __init__(self, source: str, entry: str | None, message: str) -> None:
        self.source = source
        self.entry = entry
        self.reason = message
        where = f"{source}: {entry}" if entry else source
        super().__init__(f"{where}: {message}")


class UnknownProtocolError(RtcheckError):
    """No protocol with that id (the message lists the known ones)."""


class UnknownArmError(RtcheckError):
    """The protocol has no arm with that id (the message lists the valid ones)."""


class NoRadiotherapyError(RtcheckError):
    """The protocol (or arm) gives no radiotherapy, so there is no plan to check against it."""


class ArmSelectionError(RtcheckError):
    """``--arm auto`` found no arm, or several, whose prescriptions match the plan (the message lists them)."""


class MetricSyntaxError(RtcheckError):
    """A DVH metric does not follow the TG-263 grammar.

    ``position`` is the 0-based index of the offending character; the one-line
    message gives it (1-based) and the text before it.
    """

    def __init__(self, text: str, position: int, message: str) -> None:
        self.text = text
        self.position = position
        self.reason = message
        after = f", after {text[:position]!r}" if position else ""
        super().__init__(f"invalid metric {text!r}: {message} at character {position + 1}{after}")


class MetricUndefinedError(RtcheckError):
    """A metric cannot be computed for a structure (e.g. % of prescription with no prescription)."""


class MissingDependencyError(RtcheckError):
    """An optional feature needs a package that is not installed (the message says which extra to install)."""


class BatchError(RtcheckError):
    """``rtcheck batch`` cannot run as asked (output folder overlapping the inputs, Dask unavailable...)."""


class ListenerError(RtcheckError):
    """``rtcheck listen`` cannot start: the port cannot be bound, the store folder cannot be written..."""


class UnsafeIdentifierError(RtcheckError, ValueError):
    """A UID (or other path component) received over the network cannot be used in a file path."""


class ProtocolImportError(ProtocolError):
    """A file of another protocol format cannot be imported: the message names the file,
    the row or item, and why (an unknown column, unit, metric type or level)."""


class ProtocolExportError(RtcheckError):
    """A protocol cannot be written in the format asked for (the message says what the format cannot hold)."""


class OutputError(RtcheckError):
    """An output (report, summary) cannot be written where asked; the message names the file or folder."""

    def __init__(self, where: str | Path, message: str) -> None:
        self.where = str(where)
        self.reason = message
        super().__init__(f"{self.where}: {message}")


class OverwritesInputError(OutputError):
    """The output would replace an input: a path given, or a DICOM file inside a folder given."""


class InsideInputsError(OutputError):
    """The output would lie among the inputs where outputs must stay apart from them (``rtcheck batch --out``)."""


class OutputFolderError(OutputError):
    """The output folder cannot be used: not a folder, or it cannot be created."""


class WriteFailedError(OutputError):
    """The operating system refused the write (no space, no permission, no such folder...)."""


class StoreError(RtcheckError):
    """The results database cannot be opened or used, or a request to it is refused
    (an unknown user, a sign-off without its reasons)."""
