"""Grading a plan set against a protocol arm: prescriptions (trial- and site-set), DVH constraints,
biological (EQD2/BED, cumulative) constraints, and the CheckResult built from them.

``check_plan_set`` is the entry; ``choose_arm`` picks the arm for ``--arm auto``.
DVHs come from one ``DvhCache`` per check, keyed by (structure shape, dose grid);
outcomes are built through ``CheckSpec``.
"""

from rtcheck.grading.arms import choose_arm
from rtcheck.grading.check import check_plan_set
from rtcheck.grading.dvh_cache import DvhCache
from rtcheck.grading.options import CheckOptions
from rtcheck.grading.outcome import CheckSpec

__all__ = ["CheckOptions", "CheckSpec", "DvhCache", "check_plan_set", "choose_arm"]
