"""rtcheck: check a radiotherapy plan (DICOM RT Plan, RT Dose, RT Structure Set)
against a clinical-trial protocol.

Doses are in Gy, volumes in cc (cm^3), positions in DICOM patient coordinates (mm).
"""

__version__ = "0.1.0"
