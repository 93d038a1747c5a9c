"""Two RT Doses of one beam are refused, never summed (issue 12: a doubled beam dose turned an
under-covered plan, PGTV D95 87 %, into a pass)."""

import copy

import numpy as np
import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import generate_uid

from rtcheck.api import check_paths
from rtcheck.dicom.references import Lacking, gaps, link, read_references
from rtcheck.errors import LinkError
from tests.cli_helpers import rtcheck
from tests.dicom_factory import Case, RoiShape


def _beam_case(tmp_path, dose_beams):
    """A plan of two beams (1, 2) and one BEAM dose per entry of ``dose_beams``, each half the total."""
    case = Case([RoiShape("PTV", radius_mm=12.0)], dose=lambda x, y, z: np.full_like(x, 50.4))
    case.plan.BeamSequence = Sequence()
    for number in (1, 2):
        beam = Dataset()
        beam.BeamNumber, beam.BeamName, beam.BeamType, beam.RadiationType = number, f"B{number}", "STATIC", "PHOTON"
        case.plan.BeamSequence.append(beam)
    case.write(tmp_path)
    (tmp_path / "RD.dcm").unlink()
    paths = []
    for index, number in enumerate(dose_beams):
        dose = copy.deepcopy(case.rt_dose)
        dose.SOPInstanceUID = dose.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        dose.DoseSummationType = "BEAM"
        dose.DoseGridScaling = float(dose.DoseGridScaling) / 2
        ref, group = Dataset(), Dataset()
        ref.ReferencedBeamNumber = number
        group.ReferencedFractionGroupNumber = 1
        group.ReferencedBeamSequence = Sequence([ref])
        dose.ReferencedRTPlanSequence[0].ReferencedFractionGroupSequence = Sequence([group])
        path = tmp_path / f"RD{index}.dcm"
        dose.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def test_one_dose_per_beam_is_summed(tmp_path):
    _beam_case(tmp_path, [1, 2])
    [result] = check_paths([tmp_path], "escc-induction-icrt-ccrt", "cr-pr")
    assert result.dose_uids and len(result.dose_uids) == 2


def test_two_doses_of_one_beam_are_a_gap_no_file_can_fill(tmp_path):
    paths = _beam_case(tmp_path, [1, 2, 2])
    [linked] = link(r for r in (read_references(p) for p in sorted(tmp_path.glob("*.dcm"))) if r is not None).sets
    [gap] = gaps(linked)
    assert gap.lacking is Lacking.DOUBLED_BEAM_DOSE and gap.awaited == "" and gap.error is LinkError
    assert gap.path == paths[2] and str(paths[1]) in gap.reason and "beam 2" in gap.reason


def test_check_refuses_two_doses_of_one_beam_in_one_line(tmp_path):
    paths = _beam_case(tmp_path, [1, 2, 2])
    with pytest.raises(LinkError, match="both BEAM doses of beam 2"):
        check_paths([tmp_path], "escc-induction-icrt-ccrt", "cr-pr")
    result = rtcheck("check", tmp_path, "--protocol", "escc-induction-icrt-ccrt", "--arm", "cr-pr")
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1 and str(paths[2]) in result.stderr
