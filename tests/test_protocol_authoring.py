"""`rtcheck protocols new / validate / diff / import / export`: authoring help and interchange on the command line."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from cli_helpers import rtcheck

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT / "protocols" / "escc-induction-icrt-ccrt.yaml"
DATA = Path(__file__).parent / "data" / "interchange"


def test_new_writes_a_commented_skeleton_that_validates_and_never_replaces_a_file(tmp_path):
    target = tmp_path / "my-trial.yaml"
    result = rtcheck("protocols", "new", "--id", "my-trial", "-o", target)
    assert result.exit_code == 0, result.output
    text = target.read_text(encoding="utf-8")
    assert text.startswith("# ") and "PLACEHOLDER" in text and "rtcheck protocols validate my-trial.yaml" in text
    validated = rtcheck("protocols", "validate", target)
    assert validated.exit_code == 0 and f"{target}: valid (my-trial, arms arm-a)" in validated.stdout
    again = rtcheck("protocols", "new", "-o", target)
    assert again.exit_code == 2 and "exists" in again.stderr
    assert target.read_text(encoding="utf-8") == text


def test_validate_reports_every_error_with_its_line_and_what_is_expected(tmp_path):
    lines = SEED.read_text(encoding="utf-8").splitlines()
    edits = {
        "    role: oar": "    role: organ",  # first occurrence: Lungs
        '      per_protocol: "<= 75 %"': '      per_protocol: "<= 75 Gy"',  # lungs-v5
        "        fractions: 28": "        fractions: 27",  # cr-pr prescription
    }
    broken_lines, done = [], set()
    for line in lines:
        if line in edits and line not in done:
            done.add(line)
            line = edits[line]
        broken_lines.append(line)
    broken = tmp_path / "broken.yaml"
    broken.write_text("\n".join(broken_lines) + "\n", encoding="utf-8")
    line_of = {text: i + 1 for i, text in reversed(list(enumerate(broken_lines)))}
    role, v5, rx = line_of["    role: organ"], line_of['      per_protocol: "<= 75 Gy"'], line_of["      - target: PTV"]

    result = rtcheck("protocols", "validate", broken)
    assert result.exit_code == 2
    errors = result.stderr.strip().splitlines()
    assert errors == [
        f"rtcheck: error: {broken}: structures.Lungs.role: expected one of target, oar, other, got 'organ' (line {role})",
        f"rtcheck: error: {broken}: constraint_sets.organs-at-risk[1] (lungs-v5).per_protocol: unit Gy does not match the metric V5Gy[%]'s "
        f"output unit % (line {v5})",
        f"rtcheck: error: {broken}: arms.cr-pr.prescriptions[0]: 27 x 1.8 Gy = 48.6 Gy, not the total 50.4 Gy "
        f"(line {rx})",
    ]
    report = json.loads(rtcheck("protocols", "validate", broken, "--format", "json").stdout)["files"][0]
    assert report["valid"] is False
    assert [e["line"] for e in report["errors"]] == [role, v5, rx]


def test_validate_gives_the_line_of_a_yaml_syntax_error(tmp_path):
    broken = tmp_path / "syntax.yaml"
    broken.write_text("schema: rtcheck.protocol/1\nid: [unclosed\n", encoding="utf-8")
    result = rtcheck("protocols", "validate", broken)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"rtcheck: error: {broken}: invalid YAML") and "(line 3)" in result.stderr


def test_diff_lists_values_sources_and_arms(tmp_path):
    data = yaml.safe_load(SEED.read_text(encoding="utf-8"))
    data["constraint_sets"]["organs-at-risk"][0]["per_protocol"] = "< 20 %"
    data["constraint_sets"]["organs-at-risk"][0]["source"] = "site lung policy"
    del data["arms"]["sd-pd"]
    changed = tmp_path / "changed.yaml"
    changed.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    result = rtcheck("protocols", "diff", SEED, changed)
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert "~ arms.cr-pr.constraints.lungs-v20.per_protocol: < 25 % -> < 20 %" in lines
    assert any(line.startswith("~ arms.cr-pr.constraints.lungs-v20.source: SCOPE1") and line.endswith("-> site lung policy") for line in lines)
    assert any(line.startswith("- arms.sd-pd: SD+PD after induction") for line in lines)
    same = rtcheck("protocols", "diff", SEED, "escc-induction-icrt-ccrt")
    assert same.exit_code == 0 and "no difference" in same.stdout
    document = json.loads(rtcheck("protocols", "diff", SEED, changed, "--format", "json").stdout)
    assert {"where": "arms.cr-pr.constraints.lungs-v20.per_protocol", "change": "changed", "a": "< 25 %", "b": "< 20 %"} in document["differences"]


def test_import_writes_validated_yaml_that_checks_plans(tmp_path):
    out = tmp_path / "imported.yaml"
    result = rtcheck("protocols", "import", DATA / "esophagus-pqm.csv", "--format", "pqm-csv", "--id", "site-esophagus", "-o", out)
    assert result.exit_code == 0, result.output
    validated = rtcheck("protocols", "validate", out)
    assert validated.exit_code == 0 and "valid (site-esophagus, arms main)" in validated.stdout
    checked = rtcheck("check", ROOT / "sample_plans" / "cr-pr-compliant", "--protocol", out, "--arm", "main", "--format", "json")
    document = json.loads(checked.stdout)
    heart = next(c for c in document["plans"][0]["checks"] if c["structure"] == "Heart") if "plans" in document else next(c for c in document["checks"] if c["structure"] == "Heart")
    assert heart["source"] == "esophagus-pqm.csv row 4"


def test_import_refuses_with_file_row_and_reason(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("Structure IDs,DVH Objective,Evaluation Point,Colour\nHeart,Mean[Gy],<=25,red\n", encoding="utf-8")
    result = rtcheck("protocols", "import", bad, "--format", "pqm-csv")
    assert result.exit_code == 2
    assert result.stderr.strip() == f"rtcheck: error: bad.csv: row 1, column 4: unknown column 'Colour'; a PQM file has: " \
        "Structure IDs, Structure Codes, IDAliases, CodeAliases, DVH Objective, Evaluation Point, Variation, Priority, Met, Achieved"


def test_import_never_writes_over_its_input(tmp_path):
    copy = tmp_path / "x.csv"
    copy.write_bytes((DATA / "esophagus-pqm.csv").read_bytes())
    result = rtcheck("protocols", "import", copy, "--format", "pqm-csv", "-o", copy)
    assert result.exit_code == 2 and "is one of the inputs" in result.stderr
    assert copy.read_bytes() == (DATA / "esophagus-pqm.csv").read_bytes()


def test_export_writes_the_format_and_warns_what_it_loses(tmp_path):
    out = tmp_path / "card.json"
    result = rtcheck("protocols", "export", "escc-induction-icrt-ccrt", "--format", "proknow", "--arm", "cr-pr", "-o", out)
    assert result.exit_code == 0, result.output
    card = json.loads(out.read_text(encoding="utf-8"))
    heart = next(m for m in card["computed"] if m["roi_name"] == "Heart" and m["type"] == "MEAN_DOSE_ROI")
    assert heart["objectives"][0] == {"label": "PER PROTOCOL", "color": [18, 191, 0], "max": 25.0}
    assert "rtcheck: warning: not exported: prescription of PTV (50.4 Gy in 28 fx)" in result.stderr
    refused = rtcheck("protocols", "export", "escc-induction-icrt-ccrt", "--format", "tg263-csv", "--arm", "cr-pr")
    assert refused.exit_code == 2
