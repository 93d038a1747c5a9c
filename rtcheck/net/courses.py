"""``listen --sum``: which stored plans the listener checks together as one course.

The grouping is batch's (:func:`rtcheck.dicom.references.group_courses`): the
plans of one Patient ID, Frame of Reference UID and referenced RT Structure
Set, in phase order (RTPlanDate, RTPlanTime, label, SOP Instance UID).  As
plans arrive one by one, a group is:

- a course (:class:`~rtcheck.net.catalog.CourseFiles`) once it holds as many
  plans as the arm has phases (with ``--arm auto``, as an arm with phases has)
  and every plan's set is complete;
- waiting while it holds fewer plans (``missing`` names the phases still
  awaited), except a plan alone that has several fraction groups: it holds a
  whole course and is checked alone, as ``batch --sum`` checks it;
- an error (``error``) when it holds more plans than any course of the arm
  (which of them form the course is ambiguous) or a plan lacks one of the keys.
"""

from __future__ import annotations

from dataclasses import dataclass

from rtcheck.dicom.references import CourseGroup, group_courses
from rtcheck.net.catalog import Catalog, CheckUnit, CourseFiles, PlanFiles

__all__ = ["CourseRule"]


@dataclass(frozen=True)
class CourseRule:
    """How ``listen --sum`` groups plans: ``phases`` are the numbers of phases of arm ``arm``'s courses
    (:meth:`rtcheck.protocol.model.Protocol.course_phases`)."""

    phases: frozenset[int]
    arm: str

    def unit_of(self, catalog: Catalog, plan_uid: str) -> CheckUnit | None:
        """What to check when stored plan ``plan_uid`` settles: its course, or the plan alone (None when the
        plan is not stored)."""
        for group in group_courses(catalog.linking().sets):
            if any(s.plan.sop_instance_uid == plan_uid for s in group.sets):
                return self.unit(group)
        return None

    def unit(self, group: CourseGroup) -> CheckUnit:
        sets = tuple(PlanFiles.of(linked) for linked in group.sets)
        if group.error:
            return CourseFiles(sets, error=group.error)
        if len(sets) == 1 and sets[0].plan.fraction_groups > 1:
            return sets[0]
        if len(sets) > max(self.phases):
            return CourseFiles(sets, error=group.ambiguity(self.phases, self.arm))
        lacking = [f"{s.missing} (for {s.plan.plan_description})" for s in sets if s.missing]
        if len(sets) not in self.phases:
            wanted = min(n for n in self.phases if n > len(sets))
            more = wanted - len(sets)
            lacking.insert(0, f"the RT Plan of {more} more phase{'s' if more > 1 else ''} (arm {self.arm} has "
                              f"{wanted} phases; received {len(sets)} of {group.where}: {group.description})")
        return CourseFiles(sets, missing="; ".join(lacking))
