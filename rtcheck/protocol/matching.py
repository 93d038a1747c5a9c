"""Matching protocol structure names to the ROIs of a structure set.

Names are compared case-, space-, dash- and underscore-insensitively (after
Unicode NFKC normalisation, so full-width characters in Chinese exports match).
ROIs whose names start with 'z' or '_' are not for evaluation (TG-263).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from rtcheck.dicom.structures import Roi, StructureSet
from rtcheck.protocol.model import StructureSpec

_IGNORED_CHARACTERS = str.maketrans("", "", " -_\t")


def normalise_name(name: str) -> str:
    return unicodedata.normalize("NFKC", name).casefold().translate(_IGNORED_CHARACTERS)


def excluded_from_evaluation(roi_name: str) -> bool:
    return roi_name.startswith(("z", "Z", "_"))


@dataclass
class StructureMatch:
    """The ROI matched to a protocol structure, or why there is none."""

    structure: str
    roi: Roi | None
    reason: str

    @property
    def found(self) -> bool:
        return self.roi is not None


def match_structure(spec: StructureSpec, structure_set: StructureSet, override: str | None = None) -> StructureMatch:
    """Find the ROI for ``spec``: an explicit override (exact ROI name) first, else the first alias that matches.

    Two ROIs matching the same alias are ambiguous and match nothing.
    """
    if override is not None:
        roi = structure_set.roi_by_name(override)
        if roi is None:
            return StructureMatch(spec.name, None, f"mapped to ROI {override!r}, which the structure set does not contain")
        return StructureMatch(spec.name, roi, f"mapped explicitly to ROI {override!r}")
    candidates = [r for r in structure_set.rois if not excluded_from_evaluation(r.name)]
    names = (spec.name, spec.tg263, *spec.aliases)
    for alias in names:
        key = normalise_name(alias)
        hits = [r for r in candidates if normalise_name(r.name) == key]
        if len(hits) == 1:
            return StructureMatch(spec.name, hits[0], f"ROI {hits[0].name!r} matches alias {alias!r}")
        if len(hits) > 1:
            listing = ", ".join(repr(r.name) for r in hits)
            return StructureMatch(spec.name, None, f"ambiguous: ROIs {listing} all match {alias!r}; map one with --map {spec.name}=ROI")
    return StructureMatch(spec.name, None, f"no ROI named {spec.name} or an alias ({', '.join(spec.aliases)})")
