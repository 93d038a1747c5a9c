"""Matching protocol structure names to the ROIs of a structure set.

Names are compared case-, space-, dash- and underscore-insensitively (after
Unicode NFKC normalisation, so full-width characters in Chinese exports match).
ROIs whose names start with 'z' or '_' are not for evaluation (TG-263).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from rtcheck.dicom.structures import Roi, StructureSet
from rtcheck.dvh.engine import Combination
from rtcheck.protocol.model import StructureSpec

_IGNORED_CHARACTERS = str.maketrans("", "", " -_\t")


def normalise_name(name: str) -> str:
    return unicodedata.normalize("NFKC", name).casefold().translate(_IGNORED_CHARACTERS)


def excluded_from_evaluation(roi_name: str) -> bool:
    return roi_name.startswith(("z", "Z", "_"))


@dataclass
class StructureMatch:
    """The ROI matched to a protocol structure, or the structure derived from matched ROIs,
    or why there is neither."""

    structure: str
    roi: Roi | None
    reason: str
    combination: Combination | None = None
    # Not found although the structure set has a candidate (several ROIs match, or an explicit
    # --map names an absent ROI): unlike a structure that is not contoured, this never excuses a check.
    unresolved: bool = False

    @property
    def found(self) -> bool:
        return self.roi is not None or self.combination is not None

    @property
    def shape(self) -> Roi | Combination | None:
        """What the DVH engine evaluates: the ROI or the derived combination."""
        return self.roi if self.roi is not None else self.combination

    @property
    def label(self) -> str | None:
        """The ROI name, or the derivation written with ROI names (e.g. ``Lung_L | Lung_R``)."""
        if self.roi is not None:
            return self.roi.name
        return self.combination.name if self.combination is not None else None


_SYMBOLS = {"union": " | ", "intersection": " & ", "subtract": " - "}


def resolve_structure(
    name: str, specs: dict[str, StructureSpec], structure_set: StructureSet, overrides: dict[str, str] | None = None
) -> StructureMatch:
    """Match ``name`` to an ROI; failing that, derive it from its operands when the protocol says how."""
    overrides = overrides or {}
    spec = specs[name]
    direct = match_structure(spec, structure_set, overrides.get(name))
    if direct.found or spec.derived is None or name in overrides:
        return direct
    operands = [resolve_structure(o, specs, structure_set, overrides) for o in spec.derived.operands]
    missing = [m for m in operands if not m.found]
    if missing:
        reasons = "; ".join(f"{m.structure}: {m.reason}" for m in missing)
        unresolved = direct.unresolved or any(m.unresolved for m in missing)
        return StructureMatch(name, None, f"{direct.reason}, and it cannot be derived as {spec.derived} ({reasons})", unresolved=unresolved)
    parts = tuple(m.shape for m in operands)
    label = _SYMBOLS[spec.derived.operation].join(
        f"({m.label})" if m.combination is not None else str(m.label) for m in operands
    )
    combination = Combination(label, spec.derived.operation, parts)  # type: ignore[arg-type]
    return StructureMatch(name, None, f"derived as {label} ({spec.derived})", combination)


FMA_SCHEME = "FMA"


def match_structure(spec: StructureSpec, structure_set: StructureSet, override: str | None = None) -> StructureMatch:
    """Find the ROI for ``spec``: an explicit override (``--map``, exact ROI name) first; then the ROI whose
    RT ROI Identification Code is one of the structure's FMA codes; else every ROI whose name matches the
    structure's name, TG-263 name or an alias.

    One such ROI: it is matched.  Several: rtcheck does not choose silently.  Two ROIs with the same code
    match nothing.  Among names, the one documented rule that decides is *exact name before alias*: a single
    ROI named exactly as the protocol's structure (or its TG-263 name), character for character, is chosen,
    and the message names the ROIs not chosen.  Otherwise nothing is matched and the reason lists the
    candidates and the ``--map`` that resolves it.
    """
    if override is not None:
        roi = structure_set.roi_by_name(override)
        if roi is None:
            return StructureMatch(spec.name, None, f"mapped to ROI {override!r}, which the structure set does not contain", unresolved=True)
        return StructureMatch(spec.name, roi, f"mapped explicitly to ROI {override!r}")
    candidates = [r for r in structure_set.rois if not excluded_from_evaluation(r.name)]
    if spec.fma_codes:
        wanted = {str(c) for c in spec.fma_codes}
        coded = [r for r in candidates if r.identification_code and r.identification_code[0].upper() == FMA_SCHEME and r.identification_code[1] in wanted]
        if len(coded) == 1:
            roi = coded[0]
            return StructureMatch(spec.name, roi, f"ROI {roi.name!r} matches by its code FMA {roi.identification_code[1]} (before any name)")  # type: ignore[index]
        if len(coded) > 1:
            listing = ", ".join(f"{r.name!r}" for r in coded)
            return StructureMatch(
                spec.name, None, f"ambiguous: ROIs {listing} all carry FMA code(s) {', '.join(sorted(wanted))}; map one with --map {spec.name}=ROI",
                unresolved=True,
            )
    names = list(dict.fromkeys((spec.name, spec.tg263, *spec.aliases)))
    keys = {normalise_name(n): n for n in reversed(names)}  # the first name giving each key
    hits = [r for r in candidates if normalise_name(r.name) in keys]
    if len(hits) == 1:
        return StructureMatch(spec.name, hits[0], f"ROI {hits[0].name!r} matches alias {keys[normalise_name(hits[0].name)]!r}")
    if hits:
        listing = ", ".join(repr(r.name) for r in hits)
        exact = [r for r in hits if r.name in (spec.name, spec.tg263)]
        if len(exact) == 1:
            others = ", ".join(repr(r.name) for r in hits if r is not exact[0])
            return StructureMatch(
                spec.name, exact[0],
                f"ROI {exact[0].name!r} is named exactly {spec.name!r} (exact name before alias); also matching, not chosen: {others}",
            )
        return StructureMatch(
            spec.name, None,
            f"ambiguous: ROIs {listing} all match {spec.name!r} or its aliases; choose one with --map {spec.name}=ROI",
            unresolved=True,
        )
    aliases = f" or an alias ({', '.join(spec.aliases)})" if spec.aliases else ""
    return StructureMatch(spec.name, None, f"no ROI named {spec.name}{aliases}")
