"""A commented skeleton of a protocol file (``rtcheck protocols new``).

The skeleton validates as it is written (one arm, one prescription, one
constraint), so a department can edit it step by step and run
``rtcheck protocols validate`` after each change.  Every value in it is a
placeholder, said so in its source: it is not a protocol anyone should grade with.
"""

from __future__ import annotations

from rtcheck.protocol.importers._common import slug

_SKELETON = """\
# {title}: a new rtcheck protocol.  Every value below is a PLACEHOLDER: replace it
# with the trial's text and say where each value comes from in its `source`.
# Check the file after each change:  rtcheck protocols validate {file_name}
# Reference: README, "Protocol files" (keys, units, derived structures, overlays).

schema: rtcheck.protocol/1
id: {protocol_id}                 # lower-case letters, digits, . _ -  (the file is named after it)
title: {title}
version: "0.1"
source:                            # where the protocol comes from: any keys
  seed: PLACEHOLDER (the trial protocol document, its version and date)
  registry: PLACEHOLDER (e.g. the ClinicalTrials.gov number)

# Optional: a TG-263 table (CSV) or nomenclature dictionary gives each structure its
# TG-263 names as aliases and its FMA code, matched before any name.
# nomenclature: TG263_Nomenclature.csv

structures:                        # the protocol's names for the structures it grades
  PTV:
    tg263: PTV                     # TG-263 name (default: the key)
    role: target                   # target | oar | other
    aliases: [PTV, PTV1]           # ROI names accepted (case, spaces, - and _ ignored)
  SpinalCord:
    tg263: SpinalCord
    role: oar
    aliases: [SpinalCord, Spinal Cord, Cord]
    fma: 7647                      # optional: FMA ID(s); a structure set's RT ROI Identification Code wins over names
  # Lungs:
  #   aliases: [Lungs, Lung_Total]
  #   derived: {{union: [Lung_L, Lung_R]}}   # used when no ROI has one of the aliases

arms:
  arm-a:                           # one entry per arm of the trial
    title: PLACEHOLDER arm title, e.g. 50 Gy / 2 Gy / 25 fx
    prescriptions:
      - target: PTV
        total_dose_gy: 50          # must equal fractions x dose_per_fraction_gy
        fractions: 25
        dose_per_fraction_gy: 2
        tolerance: {{per_protocol_pct: 1.0, variation_acceptable_pct: 5.0, source: PLACEHOLDER (or "rtcheck default")}}
        source: PLACEHOLDER (section of the protocol stating the dose)
    constraints:
      - id: cord-max               # unique in the arm
        structure: SpinalCord
        metric: D0.03cc[Gy]        # TG-263 grammar: D95%[%], V20Gy[%], Mean[Gy], Max[Gy], D2cc[Gy]...
        per_protocol: "<= 45 Gy"   # operator, number, unit (the metric's output unit)
        variation_acceptable: "<= 48 Gy"   # optional, looser, same direction
        kind: required             # or graded-if-contoured (organs' default), informational (never counts)
        source: PLACEHOLDER (section and table of the protocol)
"""


def skeleton(protocol_id: str | None = None, title: str = "PLACEHOLDER trial title", file_name: str = "protocol.yaml") -> str:
    """The commented skeleton of a protocol file with this id (a slug of the title when None)."""
    return _SKELETON.format(protocol_id=protocol_id or slug(title), title=title, file_name=file_name)
