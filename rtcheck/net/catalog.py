"""What the listener has stored, and when a plan's set is complete.

The stored objects are linked by the one linker (:mod:`rtcheck.dicom.references`),
as ``rtcheck check`` and ``rtcheck batch`` link them: told apart by SOP Class UID,
linked by UID, file and folder names playing no part.  A plan's set is complete
when nothing it lacks can still arrive (:func:`rtcheck.dicom.references.gaps`):
its RT Structure Set, an RT Dose referencing the plan and, for per-beam doses
(DoseSummationType ``BEAM``), a dose of every beam.  With ``listen --sum`` the
plan sets of one course are checked together (:class:`CourseFiles`, grouped by
:mod:`rtcheck.net.courses`).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

from rtcheck.dicom.references import InputObject, LinkedSet, Linking, ObjectReferences, describe_input, gaps, link, plans_concerned
from rtcheck.dicom.sop import PLAN_KINDS

__all__ = ["Catalog", "CheckUnit", "CourseFiles", "PlanFiles", "describe_instance"]

# The links of a received or stored data set (header attributes only): an RT object's references, an image's
# description (CT, MR, PET: the images a structure set is drawn on); None for other objects stored.
describe_instance = describe_input


@dataclass
class PlanFiles:
    """The linked set of one stored plan, and what it still awaits (``missing``, "" when complete)."""

    linked: LinkedSet
    missing: str = ""

    @property
    def plan(self) -> ObjectReferences:
        return self.linked.plan

    @property
    def structure_set(self) -> ObjectReferences | None:
        return self.linked.structure_set

    @property
    def doses(self) -> list[ObjectReferences]:
        return list(self.linked.doses)

    @property
    def paths(self) -> list[Path]:
        """Every file of the set, its images included (a report older than one of them is stale)."""
        return [*self.linked.paths, *self.linked.image_paths]

    @property
    def plan_uids(self) -> tuple[str, ...]:
        return (self.linked.plan.sop_instance_uid,)

    @classmethod
    def of(cls, linked: LinkedSet) -> PlanFiles:
        """The set with what it awaits (:func:`rtcheck.dicom.references.gaps`)."""
        return cls(linked, "; ".join(g.awaited for g in gaps(linked) if g.awaited))


@dataclass
class CourseFiles:
    """The plan sets of one course (``listen --sum``), in phase order, checked as one.

    ``missing`` ("" when nothing) is what the course still awaits: the plan of a
    phase, an object of one of its sets; ``error`` (one line) is why its plans
    cannot be one course (more plans than the arm has phases, a plan without a
    key of the grouping rule).  Its reports are named after its first plan.
    """

    sets: tuple[PlanFiles, ...]
    missing: str = ""
    error: str = ""

    @property
    def plan(self) -> ObjectReferences:
        """The first plan (the course's reports lie beside it and take its UID)."""
        return self.sets[0].plan

    @property
    def plan_uids(self) -> tuple[str, ...]:
        return tuple(s.plan.sop_instance_uid for s in self.sets)

    @property
    def linked_sets(self) -> tuple[LinkedSet, ...]:
        return tuple(s.linked for s in self.sets)

    @property
    def paths(self) -> list[Path]:
        """Every file of every set, once (a structure set is shared by the phases)."""
        return list(dict.fromkeys(p for s in self.sets for p in s.paths))


# What the listener checks at once: one plan set, or the sets of one course.
CheckUnit = PlanFiles | CourseFiles


class Catalog:
    """The stored RT objects and images by SOP Instance UID (thread-safe; the newest store of a UID wins)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_uid: dict[str, InputObject] = {}

    def add(self, instance: InputObject | None) -> list[str]:
        """Record an instance; returns the UIDs of the plans whose set it belongs to."""
        if instance is None:
            return []
        with self._lock:
            self._by_uid[instance.sop_instance_uid] = instance
            return plans_concerned(instance, self._by_uid.values())

    def plans(self) -> list[ObjectReferences]:
        with self._lock:
            return [i for i in self._by_uid.values() if isinstance(i, ObjectReferences) and i.kind in PLAN_KINDS]

    def linking(self) -> Linking:
        """What the one linker makes of everything stored (doses in UID order)."""
        with self._lock:
            stored = sorted(self._by_uid.values(), key=lambda i: i.sop_instance_uid)
        return link(stored)

    def plan_files(self, plan_uid: str) -> PlanFiles | None:
        """The set of a stored plan (None if the plan itself is not stored), ``missing`` saying what it awaits."""
        linked = self.linking().set_of(plan_uid)
        return None if linked is None else PlanFiles.of(linked)
