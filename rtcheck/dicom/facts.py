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
    the plan's ``beams``; ``images`` the image series among the inputs and ``images_scanned`` whether the
    inputs were searched for images at all (a set linked by batch or the listener holds only RT objects)."""

    plan: ObjectIdentity | None = None
    structure_set: ObjectIdentity | None = None
    doses: list[ObjectIdentity] = field(default_factory=list)
    beams: BeamSet | None = None
    images: list[ImageSeries] = field(default_factory=list)
    images_scanned: bool = False
