"""What the integrity checks read of a plan set besides plan, contours and dose: each object's identity,
the plan's beams and the image series among the inputs."""

from __future__ import annotations

from dataclasses import dataclass, field

from rtcheck.dicom.beams import BeamSet
from rtcheck.dicom.identity import ImageSeries, ObjectIdentity

__all__ = ["PlanSetFacts"]


@dataclass
class PlanSetFacts:
    """``plan`` / ``structure_set`` identities (None when the set has none), one identity per RT Dose file,
    the plan's ``beams``; ``images`` the image series of the set among the inputs: those the structure set
    references, then those of the plan's patient that no structure set references (see
    :func:`rtcheck.dicom.references.link`)."""

    plan: ObjectIdentity | None = None
    structure_set: ObjectIdentity | None = None
    doses: list[ObjectIdentity] = field(default_factory=list)
    beams: BeamSet | None = None
    images: list[ImageSeries] = field(default_factory=list)
    # The RT Plans of the other phases of a plan sum (--sum): their objects must belong together too.
    other_plans: list[ObjectIdentity] = field(default_factory=list)

    @classmethod
    def of_phases(cls, phases: list["PlanSetFacts"]) -> "PlanSetFacts":
        """The facts of a course made of several plans (a plan sum): the first phase's plan and structure set,
        the other phases' plans, every dose and the beams of every phase."""
        first = phases[0]
        return cls(
            plan=first.plan,
            structure_set=first.structure_set,
            doses=[d for p in phases for d in p.doses],
            beams=BeamSet(beams=[b for p in phases if p.beams for b in p.beams.beams],
                          patient_positions=tuple(x for p in phases if p.beams for x in p.beams.patient_positions),
                          is_ion=any(p.beams.is_ion for p in phases if p.beams)),
            images=first.images,
            other_plans=[p.plan for p in phases[1:] if p.plan is not None],
        )
