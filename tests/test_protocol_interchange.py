"""Importers and exporters of foreign protocol formats (rtcheck.protocol.importers).

The example files in tests/data/interchange were written for these tests from the
formats' public descriptions (proknow-python's ScorecardTemplates, MAAS-PlanScoreCard's
template model, the PQM sheets of LDClark/PlanCheck, the TG-263 worksheet columns).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rtcheck.errors import ProtocolExportError, ProtocolImportError
from rtcheck.protocol.importers import FORMATS, apply_nomenclature, export_protocol, import_document
from rtcheck.protocol.library import find_protocol
from rtcheck.protocol.schema import parse_protocol

DATA = Path(__file__).parent / "data" / "interchange"
EXAMPLES = {
    "pqm-csv": DATA / "esophagus-pqm.csv",
    "proknow": DATA / "esophagus-proknow.json",
    "plan-score-card": DATA / "esophagus-plan-score-card.json",
}


def _import(fmt: str, data: bytes, name: str = "file") -> dict:
    return import_document(data, fmt, name)


def _constraints(doc: dict) -> list[tuple]:
    return [
        (c["structure"], c["metric"], c["per_protocol"], c.get("variation_acceptable"), c["kind"])
        for c in doc["arms"]["main"]["constraints"]
    ]


@pytest.mark.parametrize("fmt", EXAMPLES)
def test_example_imports_into_a_valid_protocol_with_sourced_constraints(fmt):
    path = EXAMPLES[fmt]
    doc = _import(fmt, path.read_bytes(), path.name)
    protocol = parse_protocol(doc, path.name)
    constraints = protocol.arm("main").constraints
    assert constraints
    for c in constraints:
        assert c.source.startswith(path.name + " "), c.source
        assert ("row " in c.source) or ("[" in c.source)
    assert doc["source"]["imported_from"] == path.name


def test_pqm_rows_become_constraints_with_tiers_codes_and_priorities():
    doc = _import("pqm-csv", EXAMPLES["pqm-csv"].read_bytes(), "esophagus-pqm.csv")
    assert doc["structures"]["Lungs"] == {"role": "oar", "aliases": ["Lungs", "Lung_Total", "Total Lung"], "fma": 68877}
    rows = _constraints(doc)
    assert rows[0] == ("Lungs", "V20Gy[%]", "< 25 %", "< 35 %", "required")
    assert rows[1] == ("Lungs", "Mean[cGy]", "<= 1900 cGy", None, "required")
    assert ("Stomach", "D100%[Gy]", "< 45 Gy", None, "informational") in rows  # priority 2
    assert ("Liver", "CV3000cGy[cc]", ">= 700 cc", ">= 665 cc", "informational") in rows
    sources = [c["source"] for c in doc["arms"]["main"]["constraints"]]
    assert sources[0] == "esophagus-pqm.csv row 2"


@pytest.mark.parametrize(
    "csv_text, where, reason",
    [
        ("Structure IDs,DVH Objective,Evaluation Point,Colour\nHeart,Mean[Gy],<=25,red\n", "row 1, column 4", "unknown column 'Colour'"),
        ("Structure IDs,DVH Objective,Evaluation Point\nHeart,Mean[Sv],<=25\n", "row 2, DVH Objective", "invalid metric 'Mean[Sv]'"),
        ("Structure IDs,DVH Objective,Evaluation Point\nBody,GI50%[%],<=5\n", "row 2, DVH Objective", "invalid metric"),
        ("Structure IDs,DVH Objective,Evaluation Point\nPTV,V95%[%],>=95\n", "row 2", "relative to a prescription"),
        ("Structure IDs,DVH Objective,Evaluation Point\nHeart,Mean[Gy],25\n", "row 2, Evaluation Point", "operator and a number"),
        ("Structure IDs,DVH Objective,Evaluation Point,Variation\nHeart,Mean[Gy],<=25,20\n", "row 2", "stricter than the limit"),
        ("Structure IDs,DVH Objective,Evaluation Point,Priority\nHeart,Mean[Gy],<=25,3\n", "row 2, Priority", "priority '3'"),
        ("Structure IDs,Structure Codes,DVH Objective,Evaluation Point\nTarget,PTV_High,Max[Gy],<=70\n", "row 2, Structure Codes", "not an FMA ID"),
        ("Structure IDs,Structure Codes,DVH Objective,Evaluation Point\nHeart,7088,Max[Gy],<=70\nHeart,7089,Mean[Gy],<=25\n", "row 3", "other aliases or codes than at row 2"),
    ],
)
def test_pqm_refuses_what_it_cannot_map_with_file_row_and_reason(csv_text, where, reason):
    with pytest.raises(ProtocolImportError) as info:
        _import("pqm-csv", csv_text.encode(), "site.csv")
    message = str(info.value)
    assert message.startswith(f"site.csv: {where}: "), message
    assert reason in message


def test_proknow_levels_map_onto_statuses_in_both_directions():
    doc = _import("proknow", EXAMPLES["proknow"].read_bytes(), "esophagus-proknow.json")
    rows = _constraints(doc)
    # IDEAL/GOOD (max 20, 25) per protocol, ACCEPTABLE/MARGINAL (to 35) variation, UNACCEPTABLE beyond.
    assert rows[0] == ("Lungs", "V20Gy[%]", "<= 25 %", "<= 35 %", "required")
    assert rows[3] == ("PTV", "D95%[Gy]", ">= 47.88 Gy", ">= 45.36 Gy", "required")
    assert doc["source"]["not_imported"] == ["computed[4] (VOLUME of PTV): no objectives (displayed, never graded)"]


def _proknow(objectives, kind="MAX_DOSE_ROI", arg=None):
    return json.dumps({"name": "t", "computed": [{"type": kind, "roi_name": "Cord", "arg_1": arg, "arg_2": None, "objectives": objectives}], "custom": []}).encode()


def test_proknow_boundary_owned_by_the_worse_level_gives_a_strict_limit():
    doc = _import("proknow", _proknow([{"label": "UNACCEPTABLE", "min": 45}, {"label": "IDEAL", "max": 45}]))
    assert _constraints(doc)[0][2] == "< 45 Gy"


@pytest.mark.parametrize(
    "objectives, kind, reason",
    [
        ([{"label": "IDEAL", "max": 45}, {"label": "SO-SO"}], "MAX_DOSE_ROI", "label 'SO-SO' has no rtcheck status"),
        ([{"label": "UNACCEPTABLE", "max": 40}, {"label": "IDEAL", "max": 45}, {"label": "UNACCEPTABLE"}], "MAX_DOSE_ROI", "not one-sided"),
        ([{"label": "IDEAL", "max": 45}, {"label": "ACCEPTABLE"}], "MAX_DOSE_ROI", "no level maps to a deviation"),
        ([{"label": "IDEAL", "max": 45}, {"label": "UNACCEPTABLE"}], "INTEGRAL_DOSE_ROI", "metric type 'INTEGRAL_DOSE_ROI' has no rtcheck metric"),
        ([{"label": "IDEAL", "max": 40}, {"label": "UNACCEPTABLE", "min": 45}], "MAX_DOSE_ROI", "gap"),
        ([{"label": "IDEAL", "max": 45, "weight": 2}, {"label": "UNACCEPTABLE"}], "MAX_DOSE_ROI", "unknown key(s) weight"),
    ],
)
def test_proknow_refuses_levels_it_cannot_map(objectives, kind, reason):
    with pytest.raises(ProtocolImportError) as info:
        _import("proknow", _proknow(objectives, kind), "card.json")
    assert str(info.value).startswith("card.json: computed[0]")
    assert reason in str(info.value)


def test_proknow_level_mapping_can_be_given():
    from rtcheck.protocol.importers.proknow import import_proknow

    data = _proknow([{"label": "Green", "max": 45}, {"label": "Red"}])
    doc = import_proknow(data, "card.json", levels={"green": "per_protocol", "red": "deviation_unacceptable"})
    assert _constraints(doc)[0][2] == "<= 45 Gy"


def test_plan_score_card_levels_units_and_comments():
    doc = _import("plan-score-card", EXAMPLES["plan-score-card"].read_bytes(), "card.json")
    rows = _constraints(doc)
    assert rows == [
        ("Lungs", "V20Gy[%]", "<= 25 %", "<= 35 %", "required"),
        ("SpinalCord", "D0.03cc[cGy]", "<= 4500 cGy", None, "required"),  # direction from the falling score
        ("Heart", "Mean[Gy]", "<= 25 Gy", None, "required"),
    ]
    assert doc["arms"]["main"]["constraints"][0]["source"] == "card.json ScoreTemplates[0] (VolumeAtDose of Lungs): SCOPE1 QA grading"
    assert "DosePerFraction 1.8" in doc["source"]["notes"]


@pytest.mark.parametrize(
    "change, reason",
    [
        ({"OutputUnit": "%"}, "got '%'"),
        ({"MetricType": "ConformityIndex"}, "metric type 'ConformityIndex'"),
        ({"FailLevel": 4800.0}, "no status for the band"),
        ({"AcceptableLevel": None}, "no AcceptableLevel"),
        ({"ScorePoints": []}, "upper or a lower limit"),
        ({"Weight": 1}, "unknown key(s) Weight"),
    ],
)
def test_plan_score_card_refuses_what_it_cannot_map(change, reason):
    doc = json.loads(EXAMPLES["plan-score-card"].read_text())
    doc["ScoreTemplates"][1].update(change)
    with pytest.raises(ProtocolImportError) as info:
        _import("plan-score-card", json.dumps(doc).encode(), "card.json")
    assert str(info.value).startswith("card.json: ScoreTemplates[1]")
    assert reason in str(info.value)


@pytest.mark.parametrize("fmt", EXAMPLES)
def test_round_trip_import_export_import_gives_the_same_protocol(fmt):
    path = EXAMPLES[fmt]
    first = _import(fmt, path.read_bytes(), path.name)
    exported = export_protocol(parse_protocol(first, path.name), fmt)
    again = _import(fmt, exported.data, "again" + path.suffix)
    assert again["structures"] == first["structures"] if fmt == "pqm-csv" else True
    assert _constraints(again) == _constraints(first)
    assert [c["id"] for c in again["arms"]["main"]["constraints"]] == [c["id"] for c in first["arms"]["main"]["constraints"]]


def test_export_needs_an_arm_when_the_protocol_has_several():
    protocol = find_protocol("escc-induction-icrt-ccrt")
    with pytest.raises(ProtocolExportError, match="choose one with --arm"):
        export_protocol(protocol, "pqm-csv")


def test_export_converts_prescription_percentages_and_lists_what_it_loses():
    protocol = find_protocol("escc-induction-icrt-ccrt")
    exported = export_protocol(protocol, "pqm-csv", "sd-pd")
    text = exported.data.decode()
    # PGTV D95% >= 95 % of its own 59.92 Gy, PTV D95% >= 95 % of 50.4 Gy.
    assert "PGTV,,PGTVp|PTV_5992|PTV59.92|PTV_59.92|PTV_High|PTV5992|PGTV5992,,D95%[Gy],>=56.924,,1,," in text
    assert ",D95%[Gy],>=47.88,,1,," in text
    assert any("prescription of PGTV (59.92 Gy in 28 fx)" in loss for loss in exported.losses)
    assert any(loss.startswith("structure PTV-PGTV: written by its names only; the derivation PTV - PGTV") for loss in exported.losses)


def test_tg263_table_gives_aliases_and_codes():
    table = _import("tg263-csv", (DATA / "tg263-excerpt.csv").read_bytes(), "tg263.csv")
    assert table["structures"]["Lung_L"] == {
        "target_type": "Anatomic", "major_category": "Lung", "anatomic_group": "Thorax",
        "reverse_order_name": "L_Lung", "description": "Left lung", "fma": 7310,
    }
    protocol_doc = {"structures": {"LeftLung": {"tg263": "Lung_L", "aliases": ["Lung Lt"]}, "Other": {"aliases": ["X"]}}}
    applied = apply_nomenclature(protocol_doc, table, "p.yaml")
    assert applied["structures"]["LeftLung"] == {"tg263": "Lung_L", "aliases": ["Lung Lt", "Lung_L", "L_Lung"], "fma": 7310}
    assert applied["structures"]["Other"] == {"aliases": ["X"]}
    assert protocol_doc["structures"]["LeftLung"]["aliases"] == ["Lung Lt"]  # the input is not changed


def test_tg263_refuses_unknown_columns_and_bad_codes():
    with pytest.raises(ProtocolImportError, match=r"t.csv: row 1, column 2: unknown column 'Colour'"):
        _import("tg263-csv", b"TG263-Primary Name,Colour\nHeart,red\n", "t.csv")
    with pytest.raises(ProtocolImportError, match=r"t.csv: row 2, FMAID: expected an FMA ID"):
        _import("tg263-csv", b"TG263-Primary Name;FMAID\nHeart;x7088\n", "t.csv")


def test_protocol_file_references_a_nomenclature(tmp_path):
    from rtcheck.protocol.library import load_protocol_file

    (tmp_path / "tg263.csv").write_bytes((DATA / "tg263-excerpt.csv").read_bytes())
    (tmp_path / "p.yaml").write_text(
        "schema: rtcheck.protocol/1\nid: p\ntitle: t\nsource: {notes: test}\nnomenclature: tg263.csv\n"
        "structures:\n  Lung_L: {aliases: [Lung Lt]}\n"
        "arms:\n  a:\n    title: a\n    prescriptions: []\n    constraints:\n"
        "      - {id: l, structure: Lung_L, metric: 'Mean[Gy]', per_protocol: '<= 20 Gy', source: s}\n"
    )
    protocol = load_protocol_file(tmp_path / "p.yaml")
    assert protocol.structures["Lung_L"].aliases == ("Lung Lt", "Lung_L", "L_Lung")
    assert protocol.structures["Lung_L"].fma_codes == (7310,)
    assert protocol.source["nomenclature"].startswith("tg263.csv (sha256 ")


def test_registry_lists_every_format_once():
    assert set(FORMATS) == {"pqm-csv", "proknow", "plan-score-card", "tg263-csv"}
    assert FORMATS["tg263-csv"].write is None


# --- the seed protocol through each format grades the sample plans as the seed does -------------

SAMPLES = Path(__file__).resolve().parent.parent / "sample_plans"
CASES = [("cr-pr-compliant", "cr-pr"), ("cr-pr-lung-v20-high", "cr-pr"), ("sd-pd-compliant", "sd-pd"), ("sd-pd-pgtv-undercovered", "sd-pd")]


@pytest.fixture(scope="module")
def seed_results():
    from rtcheck.api import check_paths

    seed = find_protocol("escc-induction-icrt-ccrt")
    return seed, {case: check_paths([SAMPLES / case[0]], seed, case[1])[0] for case in CASES}


@pytest.mark.parametrize("fmt", EXAMPLES)
def test_seed_exported_and_reimported_grades_the_sample_plans_identically(fmt, seed_results):
    from rtcheck.api import check_paths
    from rtcheck.protocol.importers._common import absolute_constraints

    seed, expected_results = seed_results
    for (folder, arm_id), expected in expected_results.items():
        exported = export_protocol(seed, fmt, arm_id)
        reimported = parse_protocol(_import(fmt, exported.data, f"seed-{arm_id}{EXAMPLES[fmt].suffix}"), "reimported")
        rows, _ = absolute_constraints(seed, seed.arm(arm_id))
        # A metric the format cannot compute (e.g. DC0.03cc in a Plan Score Card) is left out and said in the losses.
        rows = [r for r in rows if not any(loss.startswith(f"constraint {r.constraint.id} (") and "computes it" in loss
                                           for loss in exported.losses)]
        assert len(reimported.arm("main").constraints) == len(rows)
        result = check_paths([SAMPLES / folder], reimported, "main")[0]
        original = {c.id: c for c in expected.checks if c.kind == "dvh"}
        graded = [c for c in result.checks if c.kind == "dvh"]
        assert len(graded) == len(rows)
        for row, check in zip(rows, graded):
            before = original[row.constraint.id]
            if before.roi_name and before.message.startswith("derived as"):
                # The format kept the names but not the derivation: said in the losses, and never a pass.
                assert any(loss.startswith(f"structure {row.structure.name}: written by its names only") for loss in exported.losses)
                assert check.status.value == "not_evaluated"
                continue
            assert check.status == before.status, (folder, row.constraint.id, check.message, before.message)
            assert check.roi_name == before.roi_name
            if before.value is not None:
                rx_scale = (row.per_protocol / row.constraint.per_protocol.value) if row.constraint.per_protocol.value else 1.0
                assert check.value == pytest.approx(before.value * rx_scale, rel=1e-9, abs=1e-9), (folder, row.constraint.id)
        # Everything the seed graded and the format could not hold is said in the losses.
        lost = {c.id for c in seed.arm(arm_id).constraints} - {r.constraint.id for r in rows}
        for constraint_id in lost:
            assert any(f"constraint {constraint_id} " in loss for loss in exported.losses)


def test_structures_match_by_fma_code_before_name(tmp_path):
    import pydicom
    from rtcheck.api import check_paths

    folder = tmp_path / "plan"
    folder.mkdir()
    for name in ("RP.dcm", "RD.dcm"):
        (folder / name).write_bytes((SAMPLES / "cr-pr-compliant" / name).read_bytes())
    ds = pydicom.dcmread(SAMPLES / "cr-pr-compliant" / "RS.dcm")
    number = {r.ROIName: int(r.ROINumber) for r in ds.StructureSetROISequence}
    for roi in ds.StructureSetROISequence:
        if roi.ROIName == "Heart":
            roi.ROIName = "Organ 7"  # no alias matches this name
    for obs in ds.RTROIObservationsSequence:
        if int(obs.ReferencedROINumber) in (number["Heart"], number["Esophagus"]):
            code = pydicom.Dataset()
            code.CodeValue = "7088" if int(obs.ReferencedROINumber) == number["Heart"] else "7131"
            code.CodingSchemeDesignator = "FMA"
            code.CodeMeaning = "Heart" if code.CodeValue == "7088" else "Esophagus"
            obs.RTROIIdentificationCodeSequence = pydicom.Sequence([code])
    ds.save_as(folder / "RS.dcm")
    doc = _import("pqm-csv", (
        "Structure IDs,Structure Codes,DVH Objective,Evaluation Point\n"
        "Heart,7088,Mean[Gy],<=25\n"
        "Cord,7647,Max[Gy],<=45\n"
        "Esophagus_Wall,7131,Max[Gy],<=80\n"
    ).encode(), "coded.csv")
    result = check_paths([folder], parse_protocol(doc, "coded.csv"), "main")[0]
    by_structure = {c.structure: c for c in result.checks}
    assert by_structure["Heart"].roi_name == "Organ 7"
    assert "matches by its code FMA 7088 (before any name)" in by_structure["Heart"].message
    assert by_structure["Esophagus_Wall"].roi_name == "Esophagus"
    # No code written for the cord ROI: the name decides, as before.
    assert by_structure["Cord"].status.value == "not_evaluated"


def test_protocol_library_reads_foreign_files_by_content(tmp_path, monkeypatch):
    from rtcheck.protocol.library import find_protocol as find, list_protocols

    folder = tmp_path / "protocols"
    folder.mkdir()
    for path in (*EXAMPLES.values(), DATA / "tg263-excerpt.csv"):
        (folder / path.name).write_bytes(path.read_bytes())
    monkeypatch.setenv("RTCHECK_PROTOCOL_PATH", str(folder))
    ids = {p.id for p in list_protocols()}
    # The three protocol files are listed by the id their importer gives; the TG-263 table is a dictionary, not listed.
    assert {"esophagus-pqm", "esophagus-proknow", "esophagus-plan-score-card"} <= ids
    assert not any("tg263" in i for i in ids)
    protocol = find("esophagus-proknow")
    assert protocol.path == folder / "esophagus-proknow.json" and protocol.sha256
    assert find(str(folder / "esophagus-pqm.csv")).arm("main").constraints[0].source == "esophagus-pqm.csv row 2"
    (folder / "other.json").write_text('{"rules": []}', encoding="utf-8")
    with pytest.raises(ProtocolImportError, match="other.json: neither a ProKnow scorecard template"):
        find(str(folder / "other.json"))
