"""The CT a structure set was drawn on, among the inputs: its slice positions give the thickness each contour plane
stands for (issue 12, "Geometry as drawn"), and check, batch and listen find it the same way (the one linker).

Built with pydicom (tests/dicom_factory.py): CT headers at chosen z positions and a structure set referencing
their series.
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
import yaml
from pydicom.uid import generate_uid

from cli_helpers import by_id, check_json, rtcheck
from dicom_factory import Case, RoiShape
from rtcheck.api import check_paths, dvh_statistics
from rtcheck.net.catalog import Catalog, describe_instance
from rtcheck.protocol.schema import parse_protocol
from rtcheck.results import Status

GRID = dict(grid_spacing_mm=(2.0, 2.0, 1.0), grid_min_mm=(-40.0, -40.0, -20.0), grid_max_mm=(40.0, 40.0, 24.0))
# A CT sliced every 2 mm with one extra slice at z = 5 mm.
CT_Z = (*np.arange(-20.0, 4.01, 2.0), 5.0, *np.arange(6.0, 24.01, 2.0))
# Contoured every 2 mm, on CT slices, passing over the slice at 5 mm: the CT says the node is not there.
NODE_PLANES = (0.0, 2.0, 4.0, 6.0, 8.0, 10.0)
AREA_MM2 = 64 / 2 * 12.0**2 * math.sin(2 * math.pi / 64)  # the factory's 64-gon of radius 12 mm


def _case() -> Case:
    shapes = [
        RoiShape("PTV", radius_mm=20.0, planes_mm=tuple(np.arange(-10.0, 12.01, 2.0))),
        RoiShape("Node", centre_xy_mm=(0.0, 0.0), radius_mm=12.0, planes_mm=NODE_PLANES),
    ]
    return Case(shapes, dose=lambda x, y, z: 50.4 + 0 * x, **GRID)


def _protocol_document() -> dict:
    # The node is no organ at risk (role other): the contour completeness rule, for organs, does not apply in this uniform dose.
    return {
        "schema": "rtcheck.protocol/1", "id": "ct-slices-test", "title": "CT slices test", "source": {"notes": "test"},
        "structures": {"PTV": {"role": "target", "aliases": ["PTV"]}, "Node": {"role": "other", "aliases": ["Node"]}},
        "arms": {"a": {"title": "A", "prescriptions": [
            {"target": "PTV", "total_dose_gy": 50.4, "fractions": 28, "dose_per_fraction_gy": 1.8, "source": "test"}],
            "constraints": [{"id": "node-volume", "structure": "Node", "metric": "V0Gy[cc]", "per_protocol": "<= 100 cc", "source": "test"}]}},
    }


@pytest.fixture
def protocol_file(tmp_path) -> Path:
    path = tmp_path / "ct-slices-test.yaml"
    path.write_text(yaml.safe_dump(_protocol_document()), encoding="utf-8")
    return path


def _node_volume_cc(document: dict) -> float:
    return by_id(document)["node-volume"]["value"]


def _batch_report(root: Path, protocol: Path, out: Path) -> dict:
    result = rtcheck("batch", root, "--protocol", protocol, "--arm", "a", "--out", out)
    assert result.exit_code in (0, 1), (result.stderr, result.exception)
    [row] = json.loads((out / "summary.json").read_text(encoding="utf-8"))["plans"]
    assert row["report_json"], row
    return json.loads((out / row["report_json"]).read_text(encoding="utf-8"))


def test_a_roi_whose_contours_skip_a_ct_slice_is_split_there(tmp_path, protocol_file):
    with_ct, without_ct = tmp_path / "with-ct", tmp_path / "without-ct"
    _case().write_ct(with_ct, CT_Z)
    _case().write(without_ct)
    split = check_json(with_ct, "--protocol", protocol_file, "--arm", "a")
    joined = check_json(without_ct, "--protocol", protocol_file, "--arm", "a")
    # Its own planes alone: 2 mm apart throughout, one part from -1 to 11 mm.
    assert _node_volume_cc(joined) == pytest.approx(AREA_MM2 * 12.0 / 1000, rel=1e-2)
    # With the CT: two parts, -1 to 4.5 mm and 5.5 to 11 mm (each ends half-way to the slice at 5 mm).
    assert _node_volume_cc(split) == pytest.approx(AREA_MM2 * 11.0 / 1000, rel=1e-2)
    assert any("slice positions of CT series" in n and f"({len(CT_Z)} images" in n for n in split["notes"]), split["notes"]
    assert not any("slice positions" in n for n in joined["notes"])


def test_check_and_batch_give_identical_json_for_the_same_files(tmp_path, protocol_file):
    folder = tmp_path / "plan"
    _case().write_ct(folder, CT_Z)
    checked = check_json(folder, "--protocol", protocol_file, "--arm", "a")
    batched = _batch_report(folder, protocol_file, tmp_path / "out")
    assert batched == checked
    assert _node_volume_cc(batched) == pytest.approx(AREA_MM2 * 11.0 / 1000, rel=1e-2)


def test_image_checks_are_evaluated_in_batch(tmp_path, protocol_file):
    folder = tmp_path / "plan"
    _case().write_ct(folder, CT_Z)
    checks = by_id(_batch_report(folder, protocol_file, tmp_path / "out"))
    assert checks["images-series"]["status"] == Status.PER_PROTOCOL.value
    assert f"{len(CT_Z)} images among the inputs" in checks["images-series"]["message"]
    assert checks["images-coverage"]["status"] == Status.PER_PROTOCOL.value


def test_ct_of_another_series_is_not_used_for_slice_positions(tmp_path, protocol_file):
    folder = tmp_path / "plan"
    _case().write_ct(folder, CT_Z, series_uid=generate_uid())
    for document in (check_json(folder, "--protocol", protocol_file, "--arm", "a"), _batch_report(folder, protocol_file, tmp_path / "out")):
        assert _node_volume_cc(document) == pytest.approx(AREA_MM2 * 12.0 / 1000, rel=1e-2)  # its own planes, as without CT
        assert not any("slice positions" in n for n in document["notes"])
        assert by_id(document)["images-series"]["status"] == Status.DEVIATION_UNACCEPTABLE.value


TILTED = (1.0, 0.0, 0.0, 0.0, math.cos(0.2), -math.sin(0.2))  # a gantry tilt of 11 degrees


@pytest.mark.parametrize(
    ("how", "why"),
    [
        (dict(orientation=TILTED), "is not axial"),
        (dict(orientation=(0.0, 1.0, 0.0, 0.0, 0.0, -1.0)), "is not axial"),  # sagittal
        (dict(frame_uid=generate_uid()), "is in Frame of Reference"),
        (dict(listed=len(CT_Z) + 5), f"{len(CT_Z)} of the {len(CT_Z) + 5} images the structure set lists"),
    ],
    ids=["tilted", "sagittal", "other-frame", "incomplete"],
)
def test_unusable_slice_positions_are_not_used_and_say_why(tmp_path, how, why):
    _case().write_ct(tmp_path, CT_Z, **how)
    [result] = check_paths([tmp_path], parse_protocol(_protocol_document(), "test"), "a")
    volume = next(c.value for c in result.checks if c.id == "node-volume")
    assert volume == pytest.approx(AREA_MM2 * 12.0 / 1000, rel=1e-2)
    [note] = [n for n in result.notes if "slice positions" in n]
    assert "not used" in note and why in note, note


def test_two_images_at_one_position_are_not_used(tmp_path):
    _case().write_ct(tmp_path, (*CT_Z, 5.0))
    [result] = check_paths([tmp_path], parse_protocol(_protocol_document(), "test"), "a")
    [note] = [n for n in result.notes if "slice positions" in n]
    assert "not used" in note and "both lie at z 5.000 mm" in note


def test_an_image_without_a_finite_position_is_not_used(tmp_path):
    _case().write_ct(tmp_path, CT_Z)
    image = pydicom.dcmread(tmp_path / "CT003.dcm")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom warns that NaN is not a valid DS: the point of the test
        image.ImagePositionPatient = [-40.0, -40.0, "NaN"]
        image.save_as(tmp_path / "CT003.dcm")
    [result] = check_paths([tmp_path], parse_protocol(_protocol_document(), "test"), "a")
    [note] = [n for n in result.notes if "slice positions" in n]
    assert "not used" in note and "CT003.dcm has no usable ImagePositionPatient" in note


def test_the_listener_catalogue_links_the_ct_to_its_plan(tmp_path):
    _case().write_ct(tmp_path, CT_Z)
    catalog = Catalog()
    files = sorted(tmp_path.glob("*.dcm"))
    concerned = {p.name: catalog.add(describe_instance(pydicom.dcmread(p, stop_before_pixels=True), p)) for p in files}
    plan_uid = pydicom.dcmread(tmp_path / "RP.dcm").SOPInstanceUID
    assert concerned["CT000.dcm"] == []  # before its structure set: no plan known to be drawn on it
    assert concerned["RS.dcm"] == [plan_uid]
    assert catalog.add(describe_instance(pydicom.dcmread(files[0]), files[0])) == [plan_uid]  # stored again: its plan re-settles
    stored = catalog.plan_files(plan_uid)
    assert stored is not None and not stored.missing and len(stored.linked.images) == len(CT_Z)
    assert set(stored.paths) == set(files)  # a report older than a CT image is stale


def test_dvh_uses_the_slice_positions_with_or_without_a_plan(tmp_path):
    _case().write_ct(tmp_path, CT_Z)
    with_plan, notes = dvh_statistics([tmp_path], structures=["Node"])
    assert any("slice positions of CT series" in n for n in notes)
    (tmp_path / "RP.dcm").unlink()
    without_plan, notes = dvh_statistics([tmp_path], structures=["Node"])
    assert any("slice positions of CT series" in n for n in notes)
    assert with_plan[0].volume_cc == without_plan[0].volume_cc == pytest.approx(AREA_MM2 * 11.0 / 1000, rel=1e-2)
