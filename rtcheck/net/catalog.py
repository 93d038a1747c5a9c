"""What the listener has stored, and when a plan's set is complete.

The stored objects are linked by the one linker (:mod:`rtcheck.dicom.references`),
as ``rtcheck check`` and ``rtcheck batch`` link them: told apart by SOP Class UID,
linked by UID, file and folder names playing no part.  A plan's set is complete
when nothing it lacks can still arrive (:func:`rtcheck.dicom.references.gaps`):
its RT Structure Set, an RT Dose referencing the plan and, for per-beam doses
(DoseSummationType ``BEAM``), a dose of every beam.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

from rtcheck.dicom.references import InputObject, LinkedSet, ObjectReferences, describe_input, gaps, link, plans_concerned
from rtcheck.dicom.sop import PLAN_KINDS

__all__ = ["Catalog", "PlanFiles", "describe_instance"]

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

    def plan_files(self, plan_uid: str) -> PlanFiles | None:
        """The set of a stored plan (None if the plan itself is not stored), ``missing`` saying what it awaits."""
        with self._lock:
            stored = sorted(self._by_uid.values(), key=lambda i: i.sop_instance_uid)  # doses in UID order
        linked = link(stored).set_of(plan_uid)
        if linked is None:
            return None
        return PlanFiles(linked, "; ".join(g.awaited for g in gaps(linked) if g.awaited))
