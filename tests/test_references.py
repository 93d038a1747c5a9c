"""The one linker (rtcheck.dicom.references) on files written with pydicom: grouping, completeness,
plans listing several structure sets, and `check`, `batch` and `listen` linking through it, once."""

from __future__ import annotations

import copy
import threading
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import generate_uid

from dicom_factory import RT_STRUCT, Case, RoiShape
from rtcheck.api import check_paths
from rtcheck.batch.discovery import discover
from rtcheck.dicom import planset
from rtcheck.dicom.identity import ImageSlice
from rtcheck.dicom.references import Lacking, describe, gaps, link, read_references
from rtcheck.errors import DamagedFileError, LinkError, MissingObjectError
from rtcheck.net.catalog import Catalog, describe_instance

PROTOCOL = "escc-induction-icrt-ccrt"


def _case(label: str = "TESTPLAN") -> Case:
    rois = [RoiShape("PTV", radius_mm=10, z_range_mm=(-10, 10))]
    return Case(rois, dose=lambda x, y, z: np.full_like(x, 50.4), plan_label=label)


def _save(ds: Dataset, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def _new_instance(ds: Dataset) -> Dataset:
    other = copy.deepcopy(ds)
    other.SOPInstanceUID = other.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    return other


def _refer_to_structure_sets(plan: Dataset, *structure_sets: Dataset) -> None:
    items = []
    for ss in structure_sets:
        item = Dataset()
        item.ReferencedSOPClassUID = RT_STRUCT
        item.ReferencedSOPInstanceUID = ss.SOPInstanceUID
        items.append(item)
    plan.ReferencedStructureSetSequence = Sequence(items)


def _beam_plan(case: Case, beams: int) -> None:
    """Give the plan ``beams`` beams (numbers 1..beams)."""
    case.plan.BeamSequence = Sequence()
    for number in range(1, beams + 1):
        beam = Dataset()
        beam.BeamNumber = number
        beam.BeamName = f"B{number}"
        case.plan.BeamSequence.append(beam)


def _beam_dose(case: Case, beam: int | None) -> Dataset:
    """A BEAM dose of the case's plan, referencing ``beam`` (None: no Referenced Beam Sequence)."""
    dose = _new_instance(case.rt_dose)
    dose.DoseSummationType = "BEAM"
    if beam is not None:
        ref, group = Dataset(), Dataset()
        ref.ReferencedBeamNumber = beam
        group.ReferencedFractionGroupNumber = 1
        group.ReferencedBeamSequence = Sequence([ref])
        dose.ReferencedRTPlanSequence[0].ReferencedFractionGroupSequence = Sequence([group])
    return dose


def _linking_of(root: Path):
    return link(r for r in (read_references(p) for p in sorted(root.rglob("*.dcm"))) if r is not None)


# ---------------------------------------------------------------------------------------------- reading


def test_the_header_reader_describes_what_a_full_read_describes(tmp_path):
    case = _case()
    paths = case.write(tmp_path)
    for path in paths.values():
        header_only = read_references(path)
        assert header_only == describe(pydicom.dcmread(path), path)
    plan = read_references(paths["plan"])
    assert plan.structure_set_uids == (case.structure_set.SOPInstanceUID,) and plan.beam_numbers == (1,)
    assert plan.plan_label == "TESTPLAN" and plan.frame_of_reference_uid == case.frame_uid
    dose = read_references(paths["dose"])
    assert dose.plan_uids == (case.plan.SOPInstanceUID,) and dose.summation_type == "PLAN"


def test_a_truncated_plan_is_damaged_and_a_ct_is_described_as_an_image(tmp_path):
    paths = _case().write(tmp_path)
    data = paths["plan"].read_bytes()
    uid_at = data.index(b"\x08\x00\x18\x00UI") + 8
    cut = tmp_path / "cut.dcm"
    cut.write_bytes(data[: uid_at + 10])
    with pytest.raises(DamagedFileError, match=r"\(0008,0018\).*"):
        read_references(cut)
    ct = Dataset()
    ct.file_meta = pydicom.dataset.FileMetaDataset()
    ct.SOPClassUID = ct.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    ct.SOPInstanceUID = ct.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ct.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    image = read_references(_save(ct, tmp_path / "ct.dcm"))
    assert isinstance(image, ImageSlice) and image.sop_instance_uid == ct.SOPInstanceUID and image.z_mm is None
    # The structure set references no series: the CT belongs to no set, and is said to be unreferenced.
    linking = link([*(read_references(p) for p in paths.values()), image])
    assert linking.sets[0].images == () and linking.unreferenced_images == [image]
    capture = copy.deepcopy(ct)
    capture.SOPClassUID = capture.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"  # Secondary Capture
    assert read_references(_save(capture, tmp_path / "sc.dcm")) is None


# ---------------------------------------------------------------------------------------------- grouping


def test_objects_are_grouped_by_uid_wherever_they_lie(tmp_path):
    first, second = _case("FIRST"), _case("SECOND")
    # Files of both sets mixed across folders, named against their content.
    p1 = _save(first.plan, tmp_path / "a" / "RD.dcm")
    s1 = _save(first.structure_set, tmp_path / "b" / "RP.dcm")
    d1 = _save(first.rt_dose, tmp_path / "b" / "x.dcm")
    p2 = _save(second.plan, tmp_path / "b" / "y.dcm")
    s2 = _save(second.structure_set, tmp_path / "a" / "z.dcm")
    d2 = _save(second.rt_dose, tmp_path / "c" / "RS.dcm")
    orphan = _new_instance(first.rt_dose)
    orphan.ReferencedRTPlanSequence[0].ReferencedSOPInstanceUID = absent_plan = generate_uid()
    orphan_path = _save(orphan, tmp_path / "c" / "orphan.dcm")
    lonely = _save(_new_instance(first.structure_set), tmp_path / "c" / "lonely.dcm")

    linking = _linking_of(tmp_path)
    by_label = {s.plan.plan_label: s for s in linking.sets}
    assert by_label["FIRST"].paths == [p1, s1, d1] and by_label["SECOND"].paths == [p2, s2, d2]
    assert not by_label["FIRST"].error and not gaps(by_label["FIRST"])
    assert [d.path for d in linking.orphan_doses] == [orphan_path] and linking.orphan_doses[0].plan_uids == (absent_plan,)
    assert [s.path for s in linking.unreferenced_structure_sets] == [lonely]


def test_copies_of_one_uid_are_used_once_when_identical_and_refused_when_they_differ(tmp_path):
    case = _case()
    paths = case.write(tmp_path / "one")
    copy_path = _save(case.rt_dose, tmp_path / "two" / "RD.dcm")
    [linked] = _linking_of(tmp_path).sets
    assert linked.doses[0].path == paths["dose"] and "2 identical files" in linked.notes[0]
    [result] = check_paths([tmp_path], PROTOCOL, "cr-pr")
    assert "2 identical files" in result.notes[0]  # which copy was checked is said

    case.rt_dose.DoseComment = "changed"
    _save(case.rt_dose, copy_path)
    [linked] = _linking_of(tmp_path).sets
    assert "several files that differ" in linked.error and [g.lacking for g in gaps(linked)][0] is Lacking.LINK
    with pytest.raises(LinkError, match="several files that differ"):
        check_paths([tmp_path], PROTOCOL, "cr-pr")


# ---------------------------------------------------------------------------------------------- completeness


def test_what_a_set_lacks(tmp_path):
    case = _case()
    _save(case.plan, tmp_path / "RP.dcm")
    [linked] = _linking_of(tmp_path).sets
    assert [(g.lacking, g.awaited) for g in gaps(linked)] == [
        (Lacking.STRUCTURE_SET, f"RT Structure Set {case.structure_set.SOPInstanceUID}"),
        (Lacking.DOSE, "an RT Dose referencing the plan"),
    ]
    _save(case.structure_set, tmp_path / "RS.dcm")
    _save(case.rt_dose, tmp_path / "RD.dcm")
    assert gaps(_linking_of(tmp_path).sets[0]) == []

    del case.plan.ReferencedStructureSetSequence
    _save(case.plan, tmp_path / "RP.dcm")
    [gap] = gaps(_linking_of(tmp_path).sets[0])
    assert gap.lacking is Lacking.STRUCTURE_SET_REFERENCE and gap.awaited == "" and gap.error is LinkError


@pytest.mark.parametrize(
    "dose_beams, awaited",
    [
        ([1, 2, 3], None),  # every beam referenced: complete
        ([1, 3], "BEAM doses of beams 2"),  # beam 2's dose is still to come
        ([None, None, None], None),  # no beam referenced: counted, three for three
        ([None, None], "BEAM doses (2 of 3 beams)"),
        ([None, None, None, None], ""),  # more doses than beams: nothing can arrive to fix it
    ],
)
def test_beam_doses_must_cover_every_beam(tmp_path, dose_beams, awaited):
    case = _case()
    _beam_plan(case, 3)
    case.write(tmp_path)
    (tmp_path / "RD.dcm").unlink()
    for index, beam in enumerate(dose_beams):
        _save(_beam_dose(case, beam), tmp_path / f"RD{index}.dcm")
    [linked] = _linking_of(tmp_path).sets
    found = gaps(linked)
    if awaited is None:
        assert found == []
        return
    [gap] = found
    assert gap.lacking is Lacking.BEAM_DOSES and gap.awaited == awaited and gap.error is MissingObjectError
    # The check refuses the set with the same rule, naming a dose file.
    with pytest.raises(MissingObjectError, match="BEAM doses") as raised:
        check_paths([tmp_path], PROTOCOL, "cr-pr")
    assert str(tmp_path) in str(raised.value)
    # The listener waits for what may come, and checks (to report the error) when nothing can.
    catalog = Catalog()
    for path in sorted(tmp_path.glob("*.dcm")):
        catalog.add(describe_instance(pydicom.dcmread(path, stop_before_pixels=True), path))
    assert catalog.plan_files(case.plan.SOPInstanceUID).missing == awaited


# ---------------------------------------------------------------------------------------------- several structure sets


def _plan_with_two_structure_sets(tmp_path: Path, *, present: int) -> tuple[Case, Dataset, Path]:
    """A plan listing its own structure set and another one; ``present`` of the two are written."""
    case = _case()
    other = _new_instance(case.structure_set)
    _refer_to_structure_sets(case.plan, other, case.structure_set)
    paths = case.write(tmp_path / "set")
    if present == 0:
        paths["structure_set"].unlink()
    if present == 2:
        _save(other, tmp_path / "set" / "RS_other.dcm")
    return case, other, paths["plan"]


def test_several_structure_sets_one_present_links_to_it_with_a_note(tmp_path):
    case, other, plan_path = _plan_with_two_structure_sets(tmp_path, present=1)
    [linked] = _linking_of(tmp_path).sets
    assert linked.structure_set.sop_instance_uid == case.structure_set.SOPInstanceUID
    assert not linked.error and gaps(linked) == []
    assert str(plan_path) in linked.notes[0] and "the one among the inputs" in linked.notes[0]
    [result] = check_paths([tmp_path], PROTOCOL, "cr-pr")
    assert result.structure_set_uid == case.structure_set.SOPInstanceUID and linked.notes[0] in result.notes


def test_several_structure_sets_present_are_refused_naming_the_plan(tmp_path):
    case, other, plan_path = _plan_with_two_structure_sets(tmp_path, present=2)
    [linked] = _linking_of(tmp_path).sets
    assert linked.structure_set is None and str(plan_path) in linked.error and "\n" not in linked.error
    with pytest.raises(LinkError) as raised:
        check_paths([tmp_path], PROTOCOL, "cr-pr")
    message = str(raised.value)
    assert message.startswith(str(plan_path)) and "2 of them are among the inputs" in message and "\n" not in message
    [found] = discover([tmp_path]).sets
    assert found.error == linked.error


def test_several_structure_sets_none_present_are_awaited(tmp_path):
    case, other, plan_path = _plan_with_two_structure_sets(tmp_path, present=0)
    [linked] = _linking_of(tmp_path).sets
    [gap] = gaps(linked)
    assert gap.lacking is Lacking.STRUCTURE_SET and gap.path == plan_path
    assert gap.awaited == f"RT Structure Set {other.SOPInstanceUID} or {case.structure_set.SOPInstanceUID}"
    with pytest.raises(MissingObjectError, match="none of which is among the inputs"):
        check_paths([tmp_path], PROTOCOL, "cr-pr")


# ---------------------------------------------------------------------------------------------- one grouping, used once


def test_batch_and_listen_link_the_same_sets(tmp_path):
    """Discovery (headers only) and the listener's catalogue (received data sets) give the same linked set."""
    case, other, plan_path = _plan_with_two_structure_sets(tmp_path, present=1)
    _save(_new_instance(case.rt_dose), tmp_path / "set" / "RD_second.dcm")
    from_batch = discover([tmp_path]).sets[0].linked
    catalog = Catalog()
    for path in sorted((tmp_path / "set").glob("*.dcm")):
        catalog.add(describe_instance(pydicom.dcmread(path), path))
    from_listen = catalog.plan_files(case.plan.SOPInstanceUID).linked
    assert from_batch.plan == from_listen.plan and from_batch.structure_set == from_listen.structure_set
    assert sorted(from_batch.doses, key=str) == sorted(from_listen.doses, key=str)
    assert from_batch.notes == from_listen.notes


def test_batch_and_listen_check_each_set_as_linked_without_linking_again(tmp_path, monkeypatch):
    from rtcheck.batch import run_batch
    from rtcheck.net.reports import PlanChecker

    _case().write(tmp_path / "in")
    calls = []
    real_link = planset.link
    monkeypatch.setattr(planset, "link", lambda objects: calls.append(1) or real_link(objects))

    outcome = run_batch([tmp_path / "in"], PROTOCOL, "cr-pr", tmp_path / "out", jobs=1)
    assert [(r.error, bool(r.report_json)) for r in outcome.rows] == [("", True)] and calls == []

    catalog = Catalog()
    for path in sorted((tmp_path / "in").glob("*.dcm")):
        catalog.add(describe_instance(pydicom.dcmread(path, stop_before_pixels=True), path))
    [plan] = catalog.plans()
    PlanChecker(PROTOCOL, "cr-pr", threading.Lock(), threading.Event(), html=False)(catalog.plan_files(plan.sop_instance_uid))
    assert calls == [] and (tmp_path / "in" / f"rtcheck-{plan.sop_instance_uid}.json").is_file()

    check_paths([tmp_path / "in"], PROTOCOL, "cr-pr")
    assert calls == [1]  # check links what it reads, once
