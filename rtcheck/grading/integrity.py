"""The plan's integrity checks (kind ``integrity``): rtcheck's own checks that the objects belong together,
the plan's approval, and the arm's plan rules (``plan_rules``, :mod:`rtcheck.protocol.plan_rules`).

Every rule reads the DICOM itself; where the files do not carry what a rule needs, its outcome is
``not_evaluated`` naming the absent element, never a pass.
"""

from __future__ import annotations

from rtcheck.dicom.planset import PlanSet
from rtcheck.grading.dvh_cache import DvhCache
from rtcheck.grading.integrity_beams import BEAM_RULES, DOSE_RULES, beam_rule_outcome, dose_rule_outcome
from rtcheck.grading.integrity_contours import contour_rule_outcomes
from rtcheck.grading.integrity_objects import approval_outcome, object_outcomes
from rtcheck.protocol.matching import StructureMatch, resolve_structure
from rtcheck.protocol.model import Arm, Protocol
from rtcheck.protocol.plan_rules import PlanRule, RuleKind
from rtcheck.results import CheckOutcome

__all__ = ["integrity_checks", "rule_structures"]


def rule_structures(rules: tuple[PlanRule, ...]) -> list[str]:
    """The protocol structures the rules name, in order."""
    names: list[str] = []
    for rule in rules:
        names += [n for n in (rule.inner, rule.outer, *rule.structures) if n is not None]
    return list(dict.fromkeys(names))


def integrity_checks(
    plan_set: PlanSet,
    protocol: Protocol,
    arm: Arm,
    cache: DvhCache,
    matches: dict[str, StructureMatch],
    overrides: dict[str, str] | None = None,
) -> list[CheckOutcome]:
    """The integrity outcomes of a plan set against ``arm``: the object checks and approval first, then each
    plan rule in the protocol's order.  ``matches`` holds the structures resolved already; the others the
    rules name are resolved here, with the same ``overrides``."""
    matches = dict(matches)
    for name in rule_structures(arm.plan_rules):
        if name not in matches:
            matches[name] = resolve_structure(name, protocol.structures, plan_set.structure_set, overrides or {})
    approval = next((r for r in arm.plan_rules if r.kind is RuleKind.APPROVAL), None)
    outcomes = [*object_outcomes(plan_set), approval_outcome(plan_set, approval)]
    for rule in arm.plan_rules:
        if rule.kind in DOSE_RULES:
            outcomes.append(dose_rule_outcome(rule, plan_set))
        elif rule.kind in BEAM_RULES:
            outcomes.append(beam_rule_outcome(rule, plan_set))
        elif rule.kind is not RuleKind.APPROVAL:
            outcomes += contour_rule_outcomes(rule, plan_set, protocol, matches, cache)
    return outcomes
