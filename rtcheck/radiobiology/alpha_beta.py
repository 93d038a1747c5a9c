"""Default alpha/beta ratios [Gy] per structure class, and why.

Convention (the usual choices of the linear-quadratic model in clinical
practice, e.g. Joiner & van der Kogel, *Basic Clinical Radiobiology*, and the
values quoted for esophageal re-irradiation in ``protocol-facts.md``):

* targets and tumour (early-responding tissue): 10 Gy;
* spinal cord, its PRV, brainstem, cauda equina (central nervous system,
  late-responding with a low ratio; the usual 2 Gy for cord myelopathy,
  as in Nieder et al. 2006's cumulative cord BED): 2 Gy;
* every other organ at risk (late-responding normal tissue: lung, heart,
  stomach, liver, kidney, bowel...): 3 Gy.

These are rtcheck defaults, not values of a trial: a protocol constraint
overrides them with ``biology: {alpha_beta_gy: ...}`` (or the metric text
``...EQD2Gy(a/b=...)``), and ``rtcheck dvh --metric`` takes the ratio in the
metric.
"""

from __future__ import annotations

import re
import unicodedata

TUMOUR_ALPHA_BETA_GY = 10.0
CNS_ALPHA_BETA_GY = 2.0
LATE_ALPHA_BETA_GY = 3.0

# Normalised names (lower case, letters and digits only) marking central nervous tissue.
_CNS_PATTERN = re.compile(r"(cord|brainstem|caudaequina|spinalcanal|脊髓|脑干)")
_TARGET_TYPES = {"PTV", "CTV", "GTV", "ITV"}
_TARGET_PATTERN = re.compile(r"^(p?gtv|ptv|ctv|itv)")


def _normalise(name: str) -> str:
    return re.sub(r"[\W_]+", "", unicodedata.normalize("NFKC", name).lower())


def default_alpha_beta_gy(names: list[str] | tuple[str, ...], *, is_target: bool) -> tuple[float, str]:
    """(alpha/beta [Gy], reason) of a structure known by ``names`` (protocol name, TG-263 name, ROI name).

    ``is_target``: the structure is a target (protocol role ``target``, or an
    ROI interpreted as PTV/CTV/GTV/ITV).
    """
    if is_target:
        return TUMOUR_ALPHA_BETA_GY, "rtcheck default for targets (tumour): 10 Gy"
    if any(_CNS_PATTERN.search(_normalise(n)) for n in names if n):
        return CNS_ALPHA_BETA_GY, "rtcheck default for spinal cord / brainstem: 2 Gy"
    return LATE_ALPHA_BETA_GY, "rtcheck default for late-responding organs: 3 Gy"


def structure_alpha_beta_gy(spec) -> tuple[float, str]:
    """Default (alpha/beta [Gy], reason) of a protocol StructureSpec: its names and its role."""
    return default_alpha_beta_gy([spec.name, spec.tg263, *spec.aliases], is_target=spec.role == "target")


def roi_alpha_beta_gy(roi_name: str, interpreted_type: str) -> tuple[float, str]:
    """Default (alpha/beta [Gy], reason) of an ROI without a protocol: from its RT ROI Interpreted Type and name."""
    is_target = interpreted_type.upper() in _TARGET_TYPES or bool(_TARGET_PATTERN.match(_normalise(roi_name)))
    return default_alpha_beta_gy([roi_name], is_target=is_target)
