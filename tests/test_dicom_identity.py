"""The DICOM loader reads into the model what reports show besides the grading: the plan's dates,
each RT Dose's SOP Instance UID and summation type, and the planning system's stored DVHs."""

from __future__ import annotations

import numpy as np
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from dicom_factory import Case, RoiShape
from rtcheck.dicom.planset import build_plan_set, load_inputs


def _plan_set(folder):
    inputs = load_inputs([folder])
    [linked] = inputs.linking.sets
    return build_plan_set(linked, inputs)


def test_dates_and_dose_identity_are_model_data(tmp_path):
    case = Case([RoiShape("PTV", radius_mm=12.0)], dose=lambda x, y, z: np.full_like(x, 50.4))
    case.plan.RTPlanDate, case.plan.StudyDate = "20240131", "20240115"
    case.write(tmp_path)
    plan_set = _plan_set(tmp_path)
    assert (plan_set.plan.plan_date, plan_set.plan.study_date) == ("20240131", "20240115")
    [file] = plan_set.dose.files
    assert (file.path, file.sop_instance_uid, file.summation_type) == (tmp_path / "RD.dcm", case.rt_dose.SOPInstanceUID, "PLAN")
    assert file.stored_dvhs is None  # no DVHSequence written


def test_absent_dates_are_empty_and_stored_dvhs_keep_only_their_elements(tmp_path):
    case = Case([RoiShape("PTV", radius_mm=12.0)], dose=lambda x, y, z: np.full_like(x, 50.4))
    item = Dataset()
    item.DVHType, item.DoseUnits, item.DVHVolumeUnits, item.DVHDoseScaling = "CUMULATIVE", "GY", "CM3", 1.0
    item.DVHNumberOfBins, item.DVHData = 2, [10.0, 5.0, 10.0, 0.0]
    case.rt_dose.DVHSequence = Sequence([item])
    case.rt_dose.DVHNormalizationDoseValue = 50.4
    case.write(tmp_path)
    plan_set = _plan_set(tmp_path)
    assert (plan_set.plan.plan_date, plan_set.plan.study_date) == ("", "")
    stored = plan_set.dose.files[0].stored_dvhs
    assert stored is not None
    assert {e.keyword for e in stored} == {"DVHSequence", "DoseUnits", "DVHNormalizationDoseValue"}
    assert [float(v) for v in stored.DVHSequence[0].DVHData] == [10.0, 5.0, 10.0, 0.0]
