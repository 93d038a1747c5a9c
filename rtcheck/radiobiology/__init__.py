"""Radiobiology: linear-quadratic EQD2/BED and re-irradiation with a prior course.

Modules:

* ``lq``: BED and EQD2 of a uniformly fractionated dose (floats or numpy arrays);
* ``alpha_beta``: default alpha/beta ratio per structure class (documented there);
* ``dose``: per-voxel conversion of a dose grid (each voxel's own dose per fraction);
* ``recovery``: recovery credit of a prior course, when a protocol states one;
* ``reirradiation``: the prior course's RT Dose read, resampled onto the current
  grid and summed with the current course in EQD2/BED;
* ``protocol_fields``: validation of a constraint's ``biology``, ``cumulative``
  and ``recovery_credit`` (used by the protocol loader).

Grading EQD2/BED and cumulative constraints, and the EQD2/BED metrics of
``rtcheck dvh``, live in :mod:`rtcheck.grading` (``biology``, ``statistics``).
"""
