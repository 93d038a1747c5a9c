"""DICOM input: reading files, recognising RT objects and building the domain model
(plan, structure set, dose grid) linked by UID references."""
