"""rtcheck check --junit FILE: JUnit XML that CI systems load (one testsuite per plan)."""

import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from cli_helpers import rtcheck

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "sample_plans"
CR_PR = ["--protocol", "escc-induction-icrt-ccrt", "--arm", "cr-pr"]
XSD = Path(__file__).resolve().parent / "data" / "junit.xsd"


def validate(path: Path) -> None:
    etree = pytest.importorskip("lxml.etree")
    schema = etree.XMLSchema(etree.parse(str(XSD)))
    document = etree.parse(str(path))
    assert schema.validate(document), schema.error_log


def test_junit_mirrors_the_checks_of_every_plan(tmp_path):
    report = tmp_path / "rtcheck.xml"
    result = rtcheck("check", SAMPLES / "cr-pr-no-cord", SAMPLES / "cr-pr-lung-v20-high", *CR_PR, "--format", "json", "--junit", report)
    assert result.exit_code == 1, result.stderr
    documents = json.loads(result.stdout)
    validate(report)
    root = ET.parse(report).getroot()
    suites = root.findall("testsuite")
    assert len(suites) == len(documents) == 2
    for suite, document in zip(suites, documents):
        properties = {p.get("name"): p.get("value") for p in suite.find("properties")}
        assert properties["verdict"] == document["verdict"]
        assert properties["protocol_sha256"] == document["protocol"]["sha256"]
        cases = suite.findall("testcase")
        assert len(cases) == len(document["checks"]) == int(suite.get("tests"))
        for case, check in zip(cases, document["checks"]):
            assert case.get("name").startswith(check["id"] + " ")
            failure, error, skipped = case.find("failure"), case.find("error"), case.find("skipped")
            # Failures and errors are exactly the checks that make the verdict; the others are skipped.
            assert (failure is not None) == (check["status"] == "deviation_unacceptable" and check["counts"])
            assert (error is not None) == (check["status"] == "not_evaluated" and check["counts"])
            assert (skipped is not None) == (not check["counts"])
            if check["status"] == "variation_acceptable":
                assert f"variation:{check['id']}" in properties
        assert int(suite.get("failures")) == sum(c["status"] == "deviation_unacceptable" and c["counts"] for c in document["checks"])
        assert int(suite.get("errors")) == sum(c["status"] == "not_evaluated" and c["counts"] for c in document["checks"])
    assert root.get("failures") == str(sum(int(s.get("failures")) for s in suites))
    # The lung V20 deviation of the second set is a failure naming its value and threshold.
    failing = [c for c in suites[1].findall("testcase") if c.find("failure") is not None]
    assert [c.get("name") for c in failing] == ["lungs-v20 V20Gy[%]"]
    assert "< 25 %" in failing[0].find("failure").text and "<= 35 %" in failing[0].find("failure").text
    # The missing cord of the first set is an error with its reason.
    errors = [c for c in suites[0].findall("testcase") if c.find("error") is not None and "(optional)" not in c.get("name")]
    assert [c.get("name") for c in errors] == ["cord-max D0.03cc[Gy]"]
    assert "structure missing" in errors[0].find("error").get("message")


def test_junit_marks_variations_as_passing_with_a_property(tmp_path):
    data = yaml.safe_load((ROOT / "protocols" / "escc-induction-icrt-ccrt.yaml").read_text(encoding="utf-8"))
    data["constraint_sets"]["organs-at-risk"][0]["per_protocol"] = "< 10 %"  # lungs-v20: ~15 % becomes a variation
    protocol = tmp_path / "strict.yaml"
    protocol.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    report = tmp_path / "out.xml"
    result = rtcheck("check", SAMPLES / "cr-pr-compliant", "--protocol", protocol, "--arm", "cr-pr", "--junit", report)
    assert result.exit_code == 0, result.stderr
    validate(report)
    suite = ET.parse(report).getroot().find("testsuite")
    case = next(c for c in suite.findall("testcase") if c.get("name").startswith("lungs-v20"))
    assert case.find("failure") is None and case.find("error") is None
    assert "variation_acceptable" in case.find("system-out").text
    assert any(p.get("name") == "variation:lungs-v20" for p in suite.find("properties"))


def test_junit_never_overwrites_an_input(tmp_path):
    folder = tmp_path / "plan"
    shutil.copytree(SAMPLES / "cr-pr-compliant", folder)
    target = folder / "RP.dcm"
    before = target.read_bytes()
    result = rtcheck("check", target, folder / "RS.dcm", folder / "RD.dcm", *CR_PR, "--junit", target)
    assert result.exit_code == 2
    assert "is one of the inputs" in result.stderr
    assert target.read_bytes() == before


@pytest.mark.parametrize("option", ["--junit", "--html", "--pdf"])
def test_no_report_replaces_a_dicom_file_inside_an_input_folder(tmp_path, option):
    folder = tmp_path / "plan"
    shutil.copytree(SAMPLES / "cr-pr-compliant", folder)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    result = rtcheck("check", folder, *CR_PR, option, folder / "RP.dcm")
    assert result.exit_code == 2 and "is one of the inputs" in result.stderr
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    # A new report beside the plan, and rewriting that report on a second run, are fine.
    for _ in range(2):
        assert rtcheck("check", folder, *CR_PR, "--junit", folder / "report.xml").exit_code == 0
    assert (folder / "report.xml").read_bytes().startswith(b"<?xml")
