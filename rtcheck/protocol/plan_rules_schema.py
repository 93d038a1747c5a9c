"""Reading an arm's ``plan_rules`` (and the protocol's ``plan_rule_sets``) into the model of
:mod:`rtcheck.protocol.plan_rules`; every problem names the entry (see rtcheck.protocol.schema)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from rtcheck.errors import ProtocolError
from rtcheck.protocol.model import StructureSpec
from rtcheck.protocol.organ_volumes import DEFAULT_ORGAN_VOLUMES, OrganRange
from rtcheck.protocol.plan_rules import Counts, OnFailure, PlanRule, RuleKind, side_of

__all__ = ["parse_plan_rule", "parse_plan_rules"]


class Validating(Protocol):
    """What the parser needs of rtcheck.protocol.schema.Validator (named here so the two modules do not import each other)."""

    def fail(self, entry: str | None, message: str) -> ProtocolError: ...
    def mapping(self, value: Any, entry: str | None, *, required: Any, optional: Any = ...) -> dict: ...
    def text(self, value: Any, entry: str) -> str: ...
    def number(self, value: Any, entry: str, *, positive: bool = True) -> float: ...
    def integer(self, value: Any, entry: str) -> int: ...
    def boolean(self, value: Any, entry: str) -> bool: ...
    def identifier(self, value: Any, entry: str) -> str: ...


_COMMON = {"id", "rule", "source", "rtcheck_default", "counts", "on_failure"}
# Per kind: (required keys, optional keys) besides the common ones.
_KEYS: dict[RuleKind, tuple[set[str], set[str]]] = {
    RuleKind.DOSE_GRID: ({"max_mm"}, set()),
    RuleKind.HETEROGENEITY_CORRECTION: (set(), set()),
    RuleKind.DOSE_TYPE: ({"allowed"}, set()),
    RuleKind.CALCULATION_ALGORITHM: ({"allowed"}, set()),
    RuleKind.RADIATION_TYPE: ({"allowed"}, set()),
    RuleKind.BEAM_ENERGY: ({"allowed"}, set()),
    RuleKind.TECHNIQUE: ({"allowed"}, set()),
    RuleKind.ISOCENTRES: ({"max"}, set()),
    RuleKind.TREATMENT_MACHINE: (set(), {"allowed"}),
    RuleKind.MU_PER_GY: ({"min", "max"}, set()),
    RuleKind.APPROVAL: ({"allowed"}, set()),
    RuleKind.TARGET_CONTAINMENT: ({"inner", "outer", "max_outside_cc"}, set()),
    RuleKind.MARGIN: ({"inner", "outer", "min_mm", "max_mm"}, {"tolerance_mm"}),
    RuleKind.LATERALITY: ({"structures"}, set()),
    RuleKind.CONTOUR_GAPS: ({"structures"}, {"max_missing_planes"}),
    RuleKind.SELF_INTERSECTION: ({"structures"}, set()),
    RuleKind.ORGAN_VOLUME: ({"structures"}, {"ranges"}),
}
_TECHNIQUES = ("3D", "IMRT", "VMAT", "conformal arc", "ion scanning", "ion passive")
_RADIATION_TYPES = ("PHOTON", "ELECTRON", "NEUTRON", "PROTON", "ION")
_DOSE_TYPES = ("PHYSICAL", "EFFECTIVE")
_APPROVAL = ("APPROVED", "UNAPPROVED", "REJECTED")
# rtcheck's default allowance (mm) for the smallest margin: contours are drawn on planes a few mm apart
# and polygons approximate the expanded surface, so a margin drawn exactly reads up to about 1 mm smaller.
DEFAULT_MARGIN_TOLERANCE_MM = 1.0


def _words(v: Validating, raw: Any, entry: str, choices: tuple[str, ...] | None = None, *, upper: bool = False) -> tuple[str, ...]:
    if not isinstance(raw, list) or not raw:
        raise v.fail(entry, "expected a non-empty list")
    words = []
    for item in raw:
        if isinstance(item, bool) or not isinstance(item, (str, int, float)) or not str(item).strip():
            raise v.fail(entry, f"expected names or numbers, got {item!r}")
        word = str(item).strip()
        word = word.upper() if upper else word
        if choices is not None and word not in choices:
            raise v.fail(entry, f"unknown value {word!r}; expected one of {', '.join(choices)}")
        words.append(word)
    return tuple(words)


def _structure_list(v: Validating, raw: Any, entry: str, structures: Mapping[str, StructureSpec]) -> tuple[str, ...]:
    names = _words(v, raw, entry)
    for name in names:
        if name not in structures:
            raise v.fail(entry, f"unknown structure {name!r}; defined: {', '.join(structures)}")
    return names


def _ranges(v: Validating, raw: Any, entry: str, names: tuple[str, ...], structures: Mapping[str, StructureSpec]) -> tuple[tuple[str, OrganRange], ...]:
    given = raw or {}
    if not isinstance(given, dict):
        raise v.fail(entry, "expected a mapping of structure -> {min_cc, max_cc} or {min_area_mm2, max_area_mm2}")
    for name in given:
        if name not in names:
            raise v.fail(f"{entry}.{name}", f"{name!r} is not among the rule's structures ({', '.join(names)})")
    found = []
    for name in names:
        if name in given:
            body = given[name]
            keys = ("min_area_mm2", "max_area_mm2") if isinstance(body, dict) and "min_area_mm2" in body else ("min_cc", "max_cc")
            body = v.mapping(body, f"{entry}.{name}", required=set(keys))
            low, high = v.number(body[keys[0]], f"{entry}.{name}.{keys[0]}"), v.number(body[keys[1]], f"{entry}.{name}.{keys[1]}")
            if high <= low:
                raise v.fail(f"{entry}.{name}", f"{keys[1]} {high:g} is not above {keys[0]} {low:g}")
            found.append((name, OrganRange(low, high, "area_mm2" if "area" in keys[0] else "cc", "")))
            continue
        default = DEFAULT_ORGAN_VOLUMES.get(structures[name].tg263)
        if default is None:
            raise v.fail(
                f"{entry.rsplit('.', 1)[0]}.structures",
                f"rtcheck has no default volume range for {name} (TG-263 {structures[name].tg263}); state one under ranges "
                f"(defaults exist for {', '.join(DEFAULT_ORGAN_VOLUMES)})",
            )
        found.append((name, default))
    return tuple(found)


def parse_plan_rule(v: Validating, raw: Any, entry: str, structures: Mapping[str, StructureSpec]) -> PlanRule:
    """One rule of an arm's ``plan_rules`` (``entry`` says where, e.g. ``arms.cr-pr.plan_rules[0]``)."""
    if not isinstance(raw, dict) or "rule" not in raw:
        raise v.fail(entry, f"expected a mapping with rule: one of {', '.join(k.value for k in RuleKind)}")
    if raw["rule"] not in {k.value for k in RuleKind}:
        raise v.fail(f"{entry}.rule", f"unknown rule {raw['rule']!r}; expected one of {', '.join(k.value for k in RuleKind)}")
    kind = RuleKind(raw["rule"])
    required, optional = _KEYS[kind]
    body = v.mapping(raw, entry, required={"id", "rule", "source", *required}, optional=(_COMMON - {"id", "rule", "source"}) | optional)
    rid = v.identifier(body["id"], f"{entry}.id")
    entry = f"{entry} ({rid})"
    default = v.boolean(body.get("rtcheck_default", False), f"{entry}.rtcheck_default")
    counts_raw = body.get("counts", (Counts.INFORMATIONAL if default else Counts.REQUIRED).value)
    if counts_raw not in {c.value for c in Counts}:
        raise v.fail(f"{entry}.counts", f"expected one of {', '.join(c.value for c in Counts)}, got {counts_raw!r}")
    failure_raw = body.get("on_failure", OnFailure.DEVIATION.value)
    if kind is RuleKind.ORGAN_VOLUME and "on_failure" not in body:
        failure_raw = OnFailure.VARIATION.value  # an implausible volume is flagged, not failed (issue 14)
    if failure_raw not in {f.value for f in OnFailure}:
        raise v.fail(f"{entry}.on_failure", f"expected one of {', '.join(f.value for f in OnFailure)}, got {failure_raw!r}")
    fields: dict[str, Any] = {}
    if kind is RuleKind.HETEROGENEITY_CORRECTION:
        pass  # no parameter: the dose must be calculated with the image's heterogeneity
    elif kind is RuleKind.DOSE_GRID:
        fields["max_value"] = v.number(body["max_mm"], f"{entry}.max_mm")
    elif kind is RuleKind.ISOCENTRES:
        fields["max_value"] = float(v.integer(body["max"], f"{entry}.max"))
    elif kind is RuleKind.MU_PER_GY:
        low, high = v.number(body["min"], f"{entry}.min"), v.number(body["max"], f"{entry}.max")
        if high <= low:
            raise v.fail(entry, f"max {high:g} MU/Gy is not above min {low:g} MU/Gy")
        fields.update(min_value=low, max_value=high)
    elif kind is RuleKind.DOSE_TYPE:
        fields["allowed"] = _words(v, body["allowed"], f"{entry}.allowed", _DOSE_TYPES, upper=True)
    elif kind is RuleKind.RADIATION_TYPE:
        fields["allowed"] = _words(v, body["allowed"], f"{entry}.allowed", _RADIATION_TYPES, upper=True)
    elif kind is RuleKind.APPROVAL:
        fields["allowed"] = _words(v, body["allowed"], f"{entry}.allowed", _APPROVAL, upper=True)
    elif kind is RuleKind.TECHNIQUE:
        fields["allowed"] = _words(v, body["allowed"], f"{entry}.allowed", _TECHNIQUES)
    elif kind is RuleKind.BEAM_ENERGY:
        energies = _words(v, body["allowed"], f"{entry}.allowed")
        for energy in energies:
            try:
                if float(energy) <= 0:
                    raise ValueError
            except ValueError:
                raise v.fail(f"{entry}.allowed", f"expected positive nominal energies (MV or MeV), got {energy!r}") from None
        fields["allowed"] = tuple(f"{float(e):g}" for e in energies)
    elif kind in (RuleKind.CALCULATION_ALGORITHM, RuleKind.TREATMENT_MACHINE):
        fields["allowed"] = _words(v, body["allowed"], f"{entry}.allowed") if "allowed" in body else ()
    elif kind in (RuleKind.TARGET_CONTAINMENT, RuleKind.MARGIN):
        for key in ("inner", "outer"):
            if body[key] not in structures:
                raise v.fail(f"{entry}.{key}", f"unknown structure {body[key]!r}; defined: {', '.join(structures)}")
            fields[key] = body[key]
        if body["inner"] == body["outer"]:
            raise v.fail(entry, "inner and outer are the same structure")
        if kind is RuleKind.TARGET_CONTAINMENT:
            fields["max_value"] = v.number(body["max_outside_cc"], f"{entry}.max_outside_cc", positive=False)
        else:
            low, high = v.number(body["min_mm"], f"{entry}.min_mm", positive=False), v.number(body["max_mm"], f"{entry}.max_mm")
            if high < low:
                raise v.fail(entry, f"max_mm {high:g} is below min_mm {low:g}")
            fields.update(min_value=low, max_value=high)
            fields["tolerance_mm"] = v.number(body.get("tolerance_mm", DEFAULT_MARGIN_TOLERANCE_MM), f"{entry}.tolerance_mm", positive=False)
    else:  # structure rules
        names = _structure_list(v, body["structures"], f"{entry}.structures", structures)
        fields["structures"] = names
        if kind is RuleKind.CONTOUR_GAPS:
            fields["max_value"] = v.number(body.get("max_missing_planes", 0), f"{entry}.max_missing_planes", positive=False)
        if kind is RuleKind.ORGAN_VOLUME:
            fields["volume_ranges"] = _ranges(v, body.get("ranges"), f"{entry}.ranges", names, structures)
        if kind is RuleKind.LATERALITY:
            for name in names:
                if side_of(structures[name].tg263) is None:
                    raise v.fail(f"{entry}.structures", f"{name} (TG-263 {structures[name].tg263}) names no side: expected a TG-263 name ending _L or _R")
    return PlanRule(
        id=rid, kind=kind, source=v.text(body["source"], f"{entry}.source"), counts=Counts(counts_raw),
        on_failure=OnFailure(failure_raw), rtcheck_default=default, **fields,
    )


def parse_plan_rules(
    v: Validating, raw: Any, entry: str, structures: Mapping[str, StructureSpec], sets: Mapping[str, tuple[PlanRule, ...]] | None = None
) -> tuple[PlanRule, ...]:
    """An arm's ``plan_rules`` list (an item ``{use: name}`` takes the rules of ``plan_rule_sets.name``);
    rule ids are unique within it."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise v.fail(entry, "expected a list of plan rules")
    found: list[PlanRule] = []
    for i, item in enumerate(raw):
        if isinstance(item, dict) and "use" in item and sets is not None:
            v.mapping(item, f"{entry}[{i}]", required={"use"})
            if item["use"] not in sets:
                raise v.fail(f"{entry}[{i}].use", f"unknown plan rule set {item['use']!r}; defined: {', '.join(sets) or 'none'}")
            found.extend(sets[item["use"]])
        else:
            found.append(parse_plan_rule(v, item, f"{entry}[{i}]", structures))
    rules = tuple(found)
    ids = [r.id for r in rules]
    for rid in ids:
        if ids.count(rid) > 1:
            raise v.fail(entry, f"plan rule id {rid!r} appears twice")
    return rules
