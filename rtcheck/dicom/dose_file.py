"""What an RT Dose file states besides its dose grid: its identity and the planning system's DVHs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydicom.dataset import Dataset

from rtcheck.dicom.identity import ObjectIdentity, identity_of

__all__ = ["DoseFile", "describe_dose_file"]

# The elements rtcheck.dvh.tps reads besides the DVHSequence (PS3.3 C.8.8.4, RT DVH Module; DoseUnits of C.8.8.3).
_DVH_CONTEXT = ("DoseUnits", "DVHNormalizationDoseValue")


@dataclass(frozen=True)
class DoseFile:
    """One RT Dose file of a dose grid.

    ``summation_type`` is DoseSummationType as written (upper case, "" when absent), before any
    summing or scaling of the grid.  ``stored_dvhs`` holds the planning system's DVHs as stored
    (the RT DVH Module's DVHSequence with DoseUnits and DVHNormalizationDoseValue), None when the
    file has no DVHSequence; :mod:`rtcheck.dvh.tps` reads them.

    For the integrity checks: ``dose_type`` is DoseType as written ("" when absent);
    ``heterogeneity_correction`` the values of TissueHeterogeneityCorrection (3004,0014), PS3.3 C.8.8.3:
    "Specifies a list of patient heterogeneity characteristics used for calculating dose" (IMAGE,
    ROI_OVERRIDE, WATER), None when the file does not carry the element; ``identity`` its patient,
    study, frame and dates (:mod:`rtcheck.dicom.identity`).
    """

    path: Path
    sop_instance_uid: str
    summation_type: str
    stored_dvhs: Dataset | None = None
    dose_type: str = ""
    heterogeneity_correction: tuple[str, ...] | None = None
    identity: ObjectIdentity | None = None


def describe_dose_file(ds: Dataset, path: Path) -> DoseFile:
    """The DoseFile of RT Dose data set ``ds`` read from ``path`` (only the DVH elements are kept)."""
    stored = None
    if ds.get("DVHSequence"):
        stored = Dataset()
        for keyword in ("DVHSequence", *_DVH_CONTEXT):
            if keyword in ds:
                stored[keyword] = ds[keyword]
    return DoseFile(
        path=path,
        sop_instance_uid=str(ds.get("SOPInstanceUID", "")),
        summation_type=str(ds.get("DoseSummationType", "")).upper(),
        stored_dvhs=stored,
        dose_type=str(ds.get("DoseType", "") or "").upper(),
        heterogeneity_correction=_values(ds, "TissueHeterogeneityCorrection"),
        identity=identity_of(ds, path, "RT Dose"),
    )


def _values(ds: Dataset, keyword: str) -> tuple[str, ...] | None:
    """A multi-valued code string as upper-case values; None when the element is absent."""
    if keyword not in ds:
        return None
    value = ds[keyword].value
    if value is None:
        return ()
    items = [value] if isinstance(value, str) else list(value)
    return tuple(str(v).strip().upper() for v in items if str(v).strip())
