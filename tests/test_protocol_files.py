"""Protocol files: the shipped ones validate; malformed ones are refused with the entry named."""

from pathlib import Path

import pytest
import yaml

from rtcheck.dicom.structures import Roi, StructureSet
from rtcheck.errors import ProtocolError, UnknownArmError, UnknownProtocolError
from rtcheck.protocol import find_protocol, list_protocols, load_protocol_file
from rtcheck.protocol.matching import match_structure

ROOT = Path(__file__).resolve().parents[1]
SEED = ROOT / "protocols" / "escc-induction-icrt-ccrt.yaml"


def test_every_shipped_protocol_validates():
    files = sorted((ROOT / "protocols").glob("*.yaml"))
    assert files
    for path in files:
        protocol = load_protocol_file(path)
        assert protocol.id == path.stem
        assert len(protocol.sha256) == 64


def test_seed_protocol_arms_and_prescriptions():
    protocol = find_protocol("escc-induction-icrt-ccrt")
    assert set(protocol.arms) == {"cr-pr", "sd-pd"}
    cr_pr = protocol.arm("cr-pr")
    assert [(rx.target, rx.total_dose_gy, rx.fractions, rx.dose_per_fraction_gy) for rx in cr_pr.prescriptions] == [("PTV", 50.4, 28, 1.8)]
    sd_pd = protocol.arm("sd-pd")
    assert {(rx.target, rx.total_dose_gy, rx.fractions) for rx in sd_pd.prescriptions} == {("PTV", 50.4, 28), ("PGTV", 59.92, 28)}
    assert sd_pd.prescription_for("PGTV").dose_per_fraction_gy == 2.14
    # Every constraint says where its value comes from.
    assert all(c.source for arm in protocol.arms.values() for c in arm.constraints)
    # The shared organ-at-risk set is written once and used by both arms.
    assert {c.id for c in cr_pr.constraints} & {c.id for c in sd_pd.constraints} >= {"lungs-v20", "cord-max", "heart-mean"}
    # Each target is graded against its own prescription in the SIB arm.
    pgtv_d95 = next(c for c in sd_pd.constraints if c.id == "pgtv-d95")
    assert sd_pd.reference_prescription(pgtv_d95).total_dose_gy == 59.92
    ptv_d95 = next(c for c in sd_pd.constraints if c.id == "ptv-d95")
    assert sd_pd.reference_prescription(ptv_d95).total_dose_gy == 50.4


def test_unknown_protocol_and_arm_list_the_valid_ones():
    with pytest.raises(UnknownProtocolError, match="escc-induction-icrt-ccrt"):
        find_protocol("no-such-trial")
    with pytest.raises(UnknownArmError, match="cr-pr, sd-pd"):
        find_protocol("escc-induction-icrt-ccrt").arm("cr")


def test_protocol_path_environment_adds_folders(tmp_path, monkeypatch):
    data = yaml.safe_load(SEED.read_text(encoding="utf-8"))
    data["id"] = "site-copy"
    (tmp_path / "site-copy.yaml").write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    monkeypatch.setenv("RTCHECK_PROTOCOL_PATH", str(tmp_path))
    assert {p.id for p in list_protocols()} >= {"site-copy", "escc-induction-icrt-ccrt"}
    assert find_protocol("site-copy").path == tmp_path / "site-copy.yaml"


def _broken(tmp_path, mutate) -> Path:
    data = yaml.safe_load(SEED.read_text(encoding="utf-8"))
    mutate(data)
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "mutate, entry, words",
    [
        (lambda d: d["constraint_sets"]["organs-at-risk"][0].update(metric="V20Gy[Gy]"), "constraint_sets.organs-at-risk[0] (lungs-v20).metric", "character 7"),
        (lambda d: d["constraint_sets"]["organs-at-risk"][0].update(per_protocol="< 25 Gy"), "(lungs-v20).per_protocol", "output unit %"),
        (lambda d: d["constraint_sets"]["organs-at-risk"][0].update(per_protocol="about 25 %"), "(lungs-v20).per_protocol", "expected '<'"),
        (lambda d: d["constraint_sets"]["organs-at-risk"][0].update(variation_acceptable="<= 20 %"), "(lungs-v20).variation_acceptable", "stricter"),
        (lambda d: d["constraint_sets"]["organs-at-risk"][0].update(structure="Lung_X"), "(lungs-v20).structure", "unknown structure 'Lung_X'"),
        (lambda d: d["constraint_sets"]["organs-at-risk"][0].pop("source"), "constraint_sets.organs-at-risk[0]", "missing key(s): source"),
        (lambda d: d["constraint_sets"]["organs-at-risk"][0].update(treshold=3), "constraint_sets.organs-at-risk[0]", "unknown key(s): treshold"),
        (lambda d: d["arms"]["cr-pr"]["prescriptions"][0].update(fractions=25), "arms.cr-pr.prescriptions[0]", "not the total 50.4 Gy"),
        (lambda d: d["arms"]["cr-pr"]["prescriptions"][0].update(fractions="28"), "arms.cr-pr.prescriptions[0].fractions", "positive whole number"),
        (lambda d: d["arms"]["cr-pr"]["constraints"].append({"use": "nothing"}), "arms.cr-pr.constraints[5].use", "unknown constraint set"),
        (lambda d: d["arms"]["cr-pr"]["constraints"].append({"use": "ptv-coverage"}), "arms.cr-pr.constraints", "appears twice"),
        (lambda d: d.update(schema="rtcheck.protocol/9"), "schema", "expected 'rtcheck.protocol/1'"),
        (lambda d: d["structures"]["Heart"].update(aliases=[]), "structures.Heart.aliases", "non-empty unless the structure is derived"),
    ],
)
def test_malformed_protocol_names_file_and_entry(tmp_path, mutate, entry, words):
    path = _broken(tmp_path, mutate)
    with pytest.raises(ProtocolError) as info:
        load_protocol_file(path)
    message = str(info.value)
    assert message.startswith(str(path))
    assert entry in message
    assert words in message
    assert "\n" not in message


def test_invalid_yaml_and_duplicate_keys_are_located(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("id: a\nid: b\n", encoding="utf-8")
    with pytest.raises(ProtocolError, match="line 2.*duplicate key 'id'"):
        load_protocol_file(path)
    path.write_text("arms: [\n", encoding="utf-8")
    with pytest.raises(ProtocolError, match="invalid YAML"):
        load_protocol_file(path)


def _structure_set(*names: str) -> StructureSet:
    rois = [Roi(number=i, name=n, interpreted_type="ORGAN", frame_of_reference_uid="1.2") for i, n in enumerate(names, 1)]
    return StructureSet(Path("rs.dcm"), "1.2.3", "", {"1.2"}, rois)


@pytest.mark.parametrize(
    "structure, roi_names, expected",
    [
        ("Lungs", ["lung-total", "Heart"], "lung-total"),
        ("Lungs", ["双肺"], "双肺"),
        ("SpinalCord", ["Spinal  Cord"], "Spinal  Cord"),
        ("SpinalCord", ["ＣＯＲＤ"], "ＣＯＲＤ"),  # full-width letters as some Chinese systems export
        ("Heart", ["zHeart", "心脏"], "心脏"),  # z-prefixed ROIs are not for evaluation
        ("Lungs", ["Lung_L", "Lung_R"], None),  # no ROI matches; the union is made by resolve_structure
        ("PTV", ["PTV", "ptv "], "PTV"),  # several match: the exact name is chosen before an alias (the other named)
        ("PTV", ["ptv", "PTV "], None),  # several match, none exactly: ambiguous
    ],
)
def test_structure_matching(structure, roi_names, expected):
    protocol = find_protocol("escc-induction-icrt-ccrt")
    match = match_structure(protocol.structures[structure], _structure_set(*roi_names))
    assert (match.roi.name if match.roi else None) == expected
    if expected is None:
        assert match.reason


def test_explicit_map_overrides_aliases():
    protocol = find_protocol("escc-induction-icrt-ccrt")
    match = match_structure(protocol.structures["Lungs"], _structure_set("Lung_L", "Lungs_custom"), override="Lungs_custom")
    assert match.roi.name == "Lungs_custom"
    missing = match_structure(protocol.structures["Lungs"], _structure_set("Lung_L"), override="Nope")
    assert missing.roi is None and "Nope" in missing.reason
