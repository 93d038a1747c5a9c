"""Reading DICOM files read-only and sorting them by SOP class.

rtcheck never writes to, moves or deletes an input; files are opened for
reading only.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.errors import InvalidDicomError
from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from rtcheck.dicom.identity import IMAGE_SOP_CLASSES
from rtcheck.dicom.sop import SOP_CLASS_KINDS, RTObjectKind
from rtcheck.dicom.walk import walk_inputs
from rtcheck.errors import DamagedFileError, InputError, NotDicomError, TruncatedFileError, UnreadableError

_UNDEFINED_LENGTH = 0xFFFFFFFF


def _check_complete(ds: Dataset, path: Path) -> None:
    """Raise TruncatedFileError when an element holds fewer bytes than its header announces.

    pydicom silently keeps what it could read at the end of a truncated file, so
    the raw (not yet converted) top-level elements are compared with their lengths.
    """
    for raw in ds._dict.values():  # noqa: SLF001 - raw elements are only reachable here
        if not isinstance(raw, RawDataElement) or raw.length == _UNDEFINED_LENGTH:
            continue
        if isinstance(raw.value, (bytes, bytearray)) and len(raw.value) < raw.length:
            error = TruncatedFileError(
                path,
                f"truncated DICOM file: element {raw.tag} announces {raw.length} bytes "
                f"but only {len(raw.value)} remain",
            )
            error.sop_class_uid = str(ds.get("SOPClassUID", "")) if raw.tag != 0x00080016 else ""
            raise error


def read_dataset(path: str | Path, *, stop_before_pixels: bool = False) -> Dataset:
    """Read one DICOM file (read-only), raising NotDicomError / TruncatedFileError.

    Files without the 128-byte preamble (legal in old exports) are accepted when
    a forced read yields a data set with a SOP Class UID.
    """
    path = Path(path)
    # pydicom warns (to stderr) about oddities it reads past; rtcheck reports problems itself, on one line.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _read_dataset(path, stop_before_pixels)


def _read_dataset(path: Path, stop_before_pixels: bool) -> Dataset:
    try:
        with open(path, "rb") as fp:
            try:
                ds = pydicom.dcmread(fp, stop_before_pixels=stop_before_pixels)
            except InvalidDicomError:
                fp.seek(0)
                ds = pydicom.dcmread(fp, force=True, stop_before_pixels=stop_before_pixels)
                if "SOPClassUID" not in ds:
                    raise NotDicomError(path, "not a DICOM file (no DICM prefix and no SOP Class UID)") from None
            _infer_transfer_syntax(ds)
            _check_complete(ds, path)
            # Convert every element now, while errors can still be attributed to this file.
            _convert_all(ds, path)
    except IsADirectoryError:
        raise InputError(path, "is a directory where a file was expected") from None
    except FileNotFoundError:
        raise InputError(path, "no such file") from None
    except PermissionError:
        raise UnreadableError(path, "cannot be read (permission denied)") from None
    except InputError:
        raise
    except OSError as exc:  # an I/O error, a loop of links: the system's, not the file's content
        raise UnreadableError(path, f"cannot be read ({exc.strerror or exc})") from None
    except EOFError as exc:
        raise TruncatedFileError(path, f"truncated DICOM file ({exc})") from None
    except Exception as exc:  # pydicom raises many types on garbage bytes
        raise NotDicomError(path, f"not a readable DICOM file ({type(exc).__name__}: {exc})") from None
    return ds


# The transfer syntax of a data set read without file meta, as pydicom found its encoding: (implicit VR, little endian).
_ENCODINGS = {
    (True, True): ImplicitVRLittleEndian,
    (False, True): ExplicitVRLittleEndian,
    (False, False): ExplicitVRBigEndian,
}


def _infer_transfer_syntax(ds: Dataset) -> None:
    """A file without file meta (PS3.10 Part 10 header; e.g. Monaco's RT Plan and RT Dose) says nothing of its
    transfer syntax: pydicom found the encoding while reading, and the uncompressed syntax of that encoding is
    recorded in the file meta, so the pixel data can be decoded; :func:`inferred_transfer_syntax` tells it."""
    meta = getattr(ds, "file_meta", None)
    if meta is not None and "TransferSyntaxUID" in meta:
        return
    syntax = _ENCODINGS.get(tuple(getattr(ds, "original_encoding", (None, None))))
    if syntax is None:
        return
    if meta is None:
        meta = ds.file_meta = FileMetaDataset()
    meta.TransferSyntaxUID = syntax
    meta._rtcheck_inferred = syntax.name  # a Python attribute, not an element: never written anywhere


def inferred_transfer_syntax(ds: Dataset) -> str | None:
    """The name of the transfer syntax rtcheck inferred for ``ds`` (read without file meta), else None."""
    return getattr(getattr(ds, "file_meta", None), "_rtcheck_inferred", None)


def file_meta_notes(ds: Dataset, path: Path) -> list[str]:
    """The note for a data set read without file meta (its transfer syntax inferred), else none."""
    syntax = inferred_transfer_syntax(ds)
    return [f"{path}: no file meta (no DICM preamble); read as {syntax}, the encoding found in the file"] if syntax else []


def read_header(path: str | Path, tags: Sequence[str]) -> Dataset:
    """Only the elements ``tags`` (and the file meta) of a DICOM file, read-only; pixel data is never read.

    NotDicomError for a file that is not DICOM, InputError when it cannot be opened;
    TruncatedFileError when it ends inside an element read (its ``sop_class_uid`` is the data
    set's, else the file meta's MediaStorageSOPClassUID); DamagedFileError when a file with the
    DICM prefix cannot be parsed.
    """
    path = Path(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # oddities are reported by the check itself, on one line
        try:
            with open(path, "rb") as fp:
                try:
                    ds = pydicom.dcmread(fp, stop_before_pixels=True, specific_tags=list(tags))
                except InvalidDicomError:
                    fp.seek(0)
                    ds = pydicom.dcmread(fp, force=True, stop_before_pixels=True, specific_tags=list(tags))
                    if "SOPClassUID" not in ds:
                        raise NotDicomError(path, "not a DICOM file") from None
        except InputError:
            raise
        except OSError as exc:
            raise UnreadableError(path, f"cannot be read ({exc.strerror or exc})") from None
        except EOFError as exc:
            raise TruncatedFileError(path, f"truncated DICOM file ({exc})") from None
        except Exception as exc:  # pydicom raises many types on garbage bytes
            if _has_dicom_prefix(path):
                raise DamagedFileError(path, f"damaged DICOM file ({type(exc).__name__}: {exc})") from None
            raise NotDicomError(path, f"not a readable DICOM file ({type(exc).__name__})") from None
        try:
            # A file cut inside an element leaves a short value (a wrong UID) and no error from pydicom.
            _check_complete(ds, path)
        except TruncatedFileError as exc:
            meta = getattr(ds, "file_meta", None)
            exc.sop_class_uid = exc.sop_class_uid or (str(meta.get("MediaStorageSOPClassUID", "")) if meta is not None else "")
            raise
    return ds


def _has_dicom_prefix(path: Path) -> bool:
    with open(path, "rb") as handle:
        return handle.read(132)[128:] == b"DICM"


CONTOUR_DATA = 0x30060050


def _convert_all(ds: Dataset, path: Path) -> None:
    """Convert every element, except ContourData, which ``contour_coordinates`` parses in bulk.

    Converting ContourData value by value (one DSfloat object per coordinate) was
    most of the time spent reading a structure set.
    """
    for tag in list(ds.keys()):
        if tag == CONTOUR_DATA:
            continue
        element = ds[tag]
        if element.VR == "SQ":
            for item in element.value:
                _convert_all(item, path)


def contour_coordinates(item: Dataset) -> np.ndarray | None:
    """ContourData of a ContourSequence item as float64 [mm], or None when absent.

    Parsed in one numpy call from the raw Decimal String bytes when the element is
    still raw; otherwise from pydicom's values. ValueError when a value is not a number.
    """
    if CONTOUR_DATA not in item:
        return None
    raw = item.get_item(CONTOUR_DATA)
    value = raw.value
    if isinstance(value, (bytes, bytearray)):
        text = bytes(value).strip(b" \0")
        if not text:
            return np.empty(0)
        return np.array(text.split(b"\\"), dtype=np.float64)
    if value is None:
        return np.empty(0)
    if isinstance(value, (str, float, int)):
        value = [value]
    return np.array([float(v) for v in value], dtype=np.float64)


@dataclass
class DicomObject:
    """A recognised RT object: its kind, file and header (pixel data not loaded)."""

    kind: RTObjectKind
    path: Path
    dataset: Dataset

    @property
    def sop_instance_uid(self) -> str:
        return str(self.dataset.get("SOPInstanceUID", ""))


@dataclass
class Inventory:
    """What a scan of the inputs found, by kind; ``skipped`` says why files were passed over;
    ``image_headers`` the CT/MR/PET images met (file and header, pixel data not read), for the linker to describe
    (:func:`rtcheck.dicom.references.describe_input`)."""

    objects: list[DicomObject] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    image_headers: list[tuple[Path, Dataset]] = field(default_factory=list)

    def of_kind(self, *kinds: RTObjectKind) -> list[DicomObject]:
        return [o for o in self.objects if o.kind in kinds]


def is_dicom_file(path: str | Path) -> bool:
    """True when ``path`` reads as DICOM (a damaged DICOM file included): such a file is never overwritten."""
    try:
        read_dataset(path, stop_before_pixels=True)
    except TruncatedFileError:
        return True
    except InputError:
        return False
    return True


def scan(paths: list[str | Path]) -> Inventory:
    """Read the given files and folders (recursively) and sort RT objects by SOP class.

    A file named explicitly must be DICOM (else NotDicomError); a non-DICOM file
    found in a folder is skipped and noted in ``Inventory.skipped``, as are special
    files, link loops and what the system refuses to read (:mod:`rtcheck.dicom.walk`).
    Images (CT, MR, PET) are kept as ``Inventory.image_headers``; other classes are
    ignored.  Pixel data is not loaded here.
    """
    inventory = Inventory()
    walk = walk_inputs(paths)
    inventory.skipped.extend(walk.notes)
    inventory.skipped.extend(f"{path}: skipped, {reason}" for path, reason in walk.unreadable)
    for walked in walk.files:
        path, explicit = walked.path, walked.explicit
        try:
            ds = read_dataset(path, stop_before_pixels=True)
        except TruncatedFileError as exc:
            # A damaged RT object may be the plan or dose asked for: never skip it silently.
            if explicit or exc.sop_class_uid in SOP_CLASS_KINDS or not exc.sop_class_uid:
                raise
            inventory.skipped.append(f"{path}: skipped, {exc.reason}")
            continue
        except InputError as exc:
            if explicit:
                raise
            inventory.skipped.append(f"{path}: skipped, {exc.reason}")
            continue
        sop_class = str(ds.get("SOPClassUID", ""))
        kind = SOP_CLASS_KINDS.get(sop_class)
        if kind is None:
            if sop_class in IMAGE_SOP_CLASSES:
                inventory.image_headers.append((path, ds))
            continue
        inventory.objects.append(DicomObject(kind, path, ds))
    return inventory


def read_received_dataset(data: bytes, name: str) -> Dataset:
    """Decode a DICOM file image received over the network completely, or raise TruncatedFileError/NotDicomError.

    Stricter than :func:`read_dataset`, since nothing may be acknowledged that is
    not whole: every element of every sequence item is checked against the length
    its header announces and converted, and native Pixel Data must hold
    Rows x Columns x NumberOfFrames x SamplesPerPixel x BitsAllocated / 8 bytes
    (PS3.5 8.1.1, padded to an even length).  ``name`` stands for the file in messages.
    """
    from io import BytesIO

    path = Path(name)
    try:
        ds = pydicom.dcmread(BytesIO(data))
        if "SOPClassUID" not in ds or "SOPInstanceUID" not in ds:  # Type 1 in the SOP Common Module (PS3.3 C.12.1)
            raise TruncatedFileError(path, "data set without SOP Class UID or SOP Instance UID (cut short?)")
        _check_no_partial_element_at_end(ds, len(data), path)
        _check_complete_nested(ds, path)
        _check_pixel_data_length(ds, path)
    except InputError:
        raise
    except EOFError as exc:
        raise TruncatedFileError(path, f"truncated data set ({exc})") from None
    except Exception as exc:  # pydicom raises many types on garbage bytes
        raise NotDicomError(path, f"data set cannot be decoded ({type(exc).__name__}: {exc})") from None
    return ds


def _check_no_partial_element_at_end(ds: Dataset, size: int, path: Path) -> None:
    """pydicom stops silently at an element header cut short: the bytes after the last whole element betray it."""
    raws = [raw for raw in ds._dict.values() if isinstance(raw, RawDataElement)]  # noqa: SLF001 - as above
    if not raws:
        return
    last = max(raws, key=lambda raw: raw.value_tell)
    if last.length != _UNDEFINED_LENGTH and last.value_tell + last.length < size:
        left = size - last.value_tell - last.length
        raise TruncatedFileError(path, f"truncated data set: {left} bytes after element {last.tag} are not a whole element")


def _check_complete_nested(ds: Dataset, path: Path) -> None:
    """:func:`_check_complete` on ``ds`` and, recursively, on every item of its sequences, converting each element."""
    _check_complete(ds, path)
    for tag in list(ds.keys()):
        if tag == CONTOUR_DATA:  # its length was checked above; converting it value by value is slow
            continue
        element = ds[tag]
        if element.VR == "SQ":
            for item in element.value:
                _check_complete_nested(item, path)


def _check_pixel_data_length(ds: Dataset, path: Path) -> None:
    if "PixelData" not in ds or ds.file_meta.get("TransferSyntaxUID", "") not in _NATIVE_SYNTAXES:
        return
    try:
        frames = int(ds.get("NumberOfFrames", 1) or 1)
        expected_bits = int(ds.Rows) * int(ds.Columns) * frames * int(ds.get("SamplesPerPixel", 1) or 1) * int(ds.BitsAllocated)
    except (AttributeError, TypeError, ValueError) as exc:
        raise TruncatedFileError(path, f"Pixel Data without a usable image size ({exc})") from None
    expected = (expected_bits + 7) // 8
    if len(ds.PixelData) < expected:
        raise TruncatedFileError(path, f"incomplete Pixel Data: {len(ds.PixelData)} bytes, the image needs {expected}")


_NATIVE_SYNTAXES = ("1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.2")
