"""The command line: protocols, check (table/JSON, --fail-on, --map), dvh (table/CSV/JSON), on the
shipped sample plans, the dicompyler-core example (a planning system's export) and pydicom's files."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pydicom
import pytest
import yaml
from pydicom.data import get_testdata_file

from cli_helpers import rtcheck, run_process
from rtcheck import __version__
from rtcheck.dicom.plan import parse_plan
from rtcheck.dicom.sop import RTObjectKind

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "sample_plans"
COMPLIANT = SAMPLES / "cr-pr-compliant"
PROTOCOLS = ROOT / "protocols"
PROTOCOL_ID = "escc-induction-icrt-ccrt"
PROTOCOL_FILE = PROTOCOLS / f"{PROTOCOL_ID}.yaml"
CR_PR = ["--protocol", PROTOCOL_ID, "--arm", "cr-pr"]
# The words the table shows for each status (README: "Statuses are words, so they read without colour").
STATUS_WORDS = {
    "per_protocol": "PER PROTOCOL",
    "variation_acceptable": "VARIATION",
    "deviation_unacceptable": "DEVIATION",
    "not_evaluated": "NOT EVALUATED",
}
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def ok(result, code: int = 0):
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr, result.exception)
    assert "Traceback" not in result.stderr
    return result


def shipped_protocols() -> dict[str, dict]:
    """id -> parsed YAML of every protocol file in protocols/."""
    found = {}
    for path in sorted(PROTOCOLS.glob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        found[data["id"]] = data
    return found


def arm_constraint_ids(data: dict, arm: str) -> list[str]:
    """Constraint ids of an arm, with `use:` entries expanded from the constraint sets."""
    ids = []
    for item in data["arms"][arm]["constraints"]:
        if "use" in item:
            ids += [c["id"] for c in data["constraint_sets"][item["use"]]]
        else:
            ids.append(item["id"])
    return ids


def table_rows(stdout: str, check_ids) -> dict[str, str]:
    """The table line of each check id."""
    rows = {}
    for line in stdout.splitlines():
        cells = line.split()
        for check_id in check_ids:
            if check_id in cells:
                rows[check_id] = line
    return rows


# --------------------------------------------------------------------------- version and protocols


def test_version():
    """--version prints the package version."""
    result = ok(rtcheck("--version"))
    assert __version__ in result.stdout and "rtcheck" in result.stdout
    proc = run_process("--version")
    assert proc.returncode == 0 and __version__ in proc.stdout


@pytest.mark.parametrize("args", [["protocols"], ["protocols", "list"]], ids=["protocols", "protocols-list"])
def test_protocols_lists_every_shipped_protocol_with_its_arms(args):
    """`rtcheck protocols` (and `protocols list`) prints each protocol id with its arms."""
    stdout = ok(rtcheck(*args)).stdout
    for protocol_id, data in shipped_protocols().items():
        line = next(line for line in stdout.splitlines() if line.startswith(protocol_id))
        for arm in data["arms"]:
            assert arm in line
        assert data["title"] in line


def test_protocols_list_json():
    """`protocols list --format json`: schema rtcheck.protocols/1, ids, arms, path and the file's sha256."""
    document = json.loads(ok(rtcheck("protocols", "list", "--format", "json")).stdout)
    assert document["schema"] == "rtcheck.protocols/1"
    listed = {p["id"]: p for p in document["protocols"]}
    assert set(listed) >= set(shipped_protocols())
    entry = listed[PROTOCOL_ID]
    assert entry["arms"] == list(shipped_protocols()[PROTOCOL_ID]["arms"])
    assert Path(entry["path"]).resolve() == PROTOCOL_FILE.resolve()
    assert entry["sha256"] == hashlib.sha256(PROTOCOL_FILE.read_bytes()).hexdigest()


def test_protocols_show_table():
    """`protocols show ID` prints every arm, prescription and constraint with its source."""
    data = shipped_protocols()[PROTOCOL_ID]
    stdout = ok(rtcheck("protocols", "show", PROTOCOL_ID)).stdout
    assert hashlib.sha256(PROTOCOL_FILE.read_bytes()).hexdigest() in stdout
    for arm in data["arms"]:
        assert arm in stdout
        for constraint_id in arm_constraint_ids(data, arm):
            assert f"{constraint_id}:" in stdout
    for constraint in data["constraint_sets"]["organs-at-risk"]:
        assert constraint["metric"] in stdout and constraint["per_protocol"] in stdout
    assert "50.4 Gy" in stdout and "59.92 Gy" in stdout
    assert "KN975" in stdout  # sources are shown


def test_protocols_show_json():
    """`protocols show ID --format json` gives arms with prescriptions and expanded constraints as in the YAML."""
    data = shipped_protocols()[PROTOCOL_ID]
    document = json.loads(ok(rtcheck("protocols", "show", PROTOCOL_ID, "--format", "json")).stdout)
    assert document["id"] == PROTOCOL_ID and document["schema"].startswith("rtcheck.")
    assert document["sha256"] == hashlib.sha256(PROTOCOL_FILE.read_bytes()).hexdigest()
    arms = {arm["id"]: arm for arm in document["arms"]}
    assert set(arms) == set(data["arms"])
    for arm_id, arm in arms.items():
        assert [c["id"] for c in arm["constraints"]] == arm_constraint_ids(data, arm_id)
        expected_rx = {(rx["target"], rx["total_dose_gy"], rx["fractions"]) for rx in data["arms"][arm_id]["prescriptions"]}
        assert {(rx["target"], rx["total_dose_gy"], rx["fractions"]) for rx in arm["prescriptions"]} == expected_rx
    lungs_v20 = next(c for c in arms["cr-pr"]["constraints"] if c["id"] == "lungs-v20")
    assert (lungs_v20["metric"], lungs_v20["per_protocol"], lungs_v20["variation_acceptable"]) == ("V20Gy[%]", "< 25 %", "<= 35 %")


def test_protocols_show_unknown_id():
    """`protocols show` of an unknown id: exit 2 listing the known ids."""
    result = rtcheck("protocols", "show", "no-such-trial")
    assert result.exit_code == 2
    assert result.stderr.startswith("rtcheck: error: ") and PROTOCOL_ID in result.stderr


def test_protocols_validate_shipped_files():
    """`protocols validate protocols/*.yaml` reports each file valid and exits 0 (also as JSON)."""
    files = sorted(PROTOCOLS.glob("*.yaml"))
    stdout = ok(rtcheck("protocols", "validate", *files)).stdout
    for path in files:
        assert f"{path}: valid" in stdout
    document = json.loads(ok(rtcheck("protocols", "validate", *files, "--format", "json")).stdout)
    assert [r["valid"] for r in document["files"]] == [True] * len(files)


def test_protocols_validate_broken_copy(tmp_path):
    """A copy with a prescription whose total is not fractions x dose per fraction: exit 2 naming the entry;
    the good file next to it is still reported valid."""
    data = yaml.safe_load(PROTOCOL_FILE.read_text(encoding="utf-8"))
    data["arms"]["sd-pd"]["prescriptions"][0]["dose_per_fraction_gy"] = 2.0  # 28 x 2.0 != 59.92
    broken = tmp_path / "broken.yaml"
    broken.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")

    result = rtcheck("protocols", "validate", PROTOCOL_FILE, broken)
    assert result.exit_code == 2
    assert f"{PROTOCOL_FILE}: valid" in result.stdout
    errors = result.stderr.strip().splitlines()
    assert len(errors) == 1
    assert errors[0].startswith(f"rtcheck: error: {broken}: arms.sd-pd.prescriptions[0]")
    assert "59.92" in errors[0]

    document = json.loads(rtcheck("protocols", "validate", broken, "--format", "json").stdout)
    [report] = document["files"]
    assert report["valid"] is False and "arms.sd-pd.prescriptions[0]" in report["error"]


# --------------------------------------------------------------------------- check: table output


def _json_checks(folder: Path, *extra) -> tuple[int, dict]:
    result = rtcheck("check", folder, *extra, "--format", "json")
    assert result.exit_code in (0, 1), (result.stderr, result.exception)
    return result.exit_code, json.loads(result.stdout)


@pytest.mark.parametrize("folder", ["cr-pr-compliant", "cr-pr-lung-v20-high", "cr-pr-no-cord"])
def test_check_table_shows_each_check_status_in_words(folder):
    """The table names plan and arm, has one row per check (as in the JSON) whose first word is its status,
    and ends with the verdict in words."""
    _, document = _json_checks(SAMPLES / folder, *CR_PR)
    result = rtcheck("check", SAMPLES / folder, *CR_PR)
    assert result.exit_code == (0 if document["verdict"] == "per_protocol" else 1)
    stdout = result.stdout
    assert not ANSI.search(stdout)
    assert document["plan"]["label"] in stdout and "ESO_CRPR" in stdout
    assert "cr-pr" in stdout and PROTOCOL_ID in stdout
    rows = table_rows(stdout, [c["id"] for c in document["checks"]])
    assert set(rows) == {c["id"] for c in document["checks"]}
    for check in document["checks"]:
        assert rows[check["id"]].startswith(STATUS_WORDS[check["status"]]), (check["id"], rows[check["id"]])
    assert re.search(rf"^Verdict: {STATUS_WORDS[document['verdict']]}\b", stdout, re.M)


def test_check_table_words_for_each_status():
    """PER PROTOCOL, DEVIATION and NOT EVALUATED appear where the sample plans promise them."""
    compliant = ok(rtcheck("check", COMPLIANT, *CR_PR)).stdout
    assert table_rows(compliant, ["ptv-d95"])["ptv-d95"].startswith("PER PROTOCOL")
    assert re.search(r"^Verdict: PER PROTOCOL", compliant, re.M)

    lungs = ok(rtcheck("check", SAMPLES / "cr-pr-lung-v20-high", *CR_PR), 1).stdout
    assert table_rows(lungs, ["lungs-v20"])["lungs-v20"].startswith("DEVIATION")
    assert re.search(r"^Verdict: DEVIATION", lungs, re.M)

    no_cord = ok(rtcheck("check", SAMPLES / "cr-pr-no-cord", *CR_PR), 1).stdout
    assert table_rows(no_cord, ["cord-max"])["cord-max"].startswith("NOT EVALUATED")
    assert re.search(r"^Verdict: NOT EVALUATED", no_cord, re.M)
    assert "cord-max: structure missing" in no_cord  # the reason is printed


def _tty_output(args) -> str:
    """stdout of a real process whose stdout is a terminal (a pseudo-terminal)."""
    pty = pytest.importorskip("pty")
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "rtcheck.cli", *map(str, args)], stdout=slave, stderr=subprocess.PIPE)
    os.close(slave)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO once the process has closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    proc.wait(timeout=120)
    os.close(master)
    return b"".join(chunks).decode("utf-8", "replace")


def test_colour_only_on_a_terminal():
    """Piped output has no ANSI colour codes; on a terminal the status words are coloured."""
    piped = run_process("check", SAMPLES / "cr-pr-no-cord", *CR_PR)
    assert piped.returncode == 1
    assert "NOT EVALUATED" in piped.stdout and not ANSI.search(piped.stdout)
    assert "Traceback" not in piped.stderr

    on_terminal = _tty_output(["check", SAMPLES / "cr-pr-no-cord", *CR_PR])
    assert "NOT EVALUATED" in ANSI.sub("", on_terminal)
    assert ANSI.search(on_terminal)


# --------------------------------------------------------------------------- check: --fail-on variation, --map


def test_fail_on_variation(tmp_path):
    """A plan whose only miss is within the variation band: verdict variation_acceptable, exit 0;
    with --fail-on variation, exit 1."""
    data = yaml.safe_load(PROTOCOL_FILE.read_text(encoding="utf-8"))
    lungs_v20 = next(c for c in data["constraint_sets"]["organs-at-risk"] if c["id"] == "lungs-v20")
    lungs_v20["per_protocol"] = "< 10 %"  # the compliant sample's Lungs V20Gy is ~15 %, under the 35 % band
    tight = tmp_path / "tight.yaml"
    tight.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    options = ["--protocol", tight, "--arm", "cr-pr"]

    code, document = _json_checks(COMPLIANT, *options)
    assert code == 0
    assert document["verdict"] == "variation_acceptable"
    not_per_protocol = [c for c in document["checks"] if c["counts"] and c["status"] != "per_protocol"]
    assert [(c["id"], c["status"]) for c in not_per_protocol] == [("lungs-v20", "variation_acceptable")]
    assert 10 < next(c["value"] for c in document["checks"] if c["id"] == "lungs-v20") <= 35

    assert rtcheck("check", COMPLIANT, *options).exit_code == 0
    code, document = _json_checks(COMPLIANT, *options, "--fail-on", "variation")
    assert code == 1 and document["verdict"] == "variation_acceptable"
    table = rtcheck("check", COMPLIANT, *options, "--fail-on", "variation")
    assert table.exit_code == 1 and re.search(r"^Verdict: VARIATION", table.stdout, re.M)
    # --fail-on variation changes nothing for a plan per protocol.
    assert rtcheck("check", COMPLIANT, *CR_PR, "--fail-on", "variation").exit_code == 0


@pytest.fixture
def renamed_lungs(tmp_path) -> Path:
    """A copy of cr-pr-compliant whose Lungs ROI is called 'LungsCustom' (no alias matches it)."""
    folder = tmp_path / "renamed"
    shutil.copytree(COMPLIANT, folder)
    rs = pydicom.dcmread(folder / "RS.dcm")
    [item] = [i for i in rs.StructureSetROISequence if i.ROIName == "Lungs"]
    item.ROIName = "LungsCustom"
    rs.save_as(folder / "RS.dcm")
    return folder


def test_map_uses_the_named_roi(renamed_lungs):
    """Without --map the renamed Lungs are missing (not evaluated); --map Lungs=LungsCustom evaluates them
    with the same values as the original sample."""
    _, original = _json_checks(COMPLIANT, *CR_PR)
    lungs_ids = [c["id"] for c in original["checks"] if c["structure"] == "Lungs"]
    assert lungs_ids

    code, document = _json_checks(renamed_lungs, *CR_PR)
    assert code == 1 and document["verdict"] == "not_evaluated"
    for check in (c for c in document["checks"] if c["id"] in lungs_ids):
        assert check["status"] == "not_evaluated" and "structure missing" in check["message"]

    code, mapped = _json_checks(renamed_lungs, *CR_PR, "--map", "Lungs=LungsCustom")
    assert code == 0 and mapped["verdict"] == "per_protocol"
    values = {c["id"]: c["value"] for c in original["checks"]}
    for check in (c for c in mapped["checks"] if c["id"] in lungs_ids):
        assert check["roi_name"] == "LungsCustom"
        assert check["status"] == "per_protocol"
        assert check["value"] == pytest.approx(values[check["id"]], abs=1e-6)
        assert "LungsCustom" in check["message"]


def test_map_to_an_absent_roi_is_not_evaluated():
    """--map to an ROI name the structure set lacks: those checks are not evaluated, saying so."""
    code, document = _json_checks(COMPLIANT, *CR_PR, "--map", "Lungs=NoSuchROI")
    assert code == 1 and document["verdict"] == "not_evaluated"
    for check in (c for c in document["checks"] if c["structure"] == "Lungs"):
        assert check["status"] == "not_evaluated" and "NoSuchROI" in check["message"]


def test_map_syntax_error_is_a_usage_error():
    """--map without '=' is a usage error (exit 2)."""
    result = rtcheck("check", COMPLIANT, *CR_PR, "--map", "Lungs")
    assert result.exit_code == 2 and "STRUCTURE=ROI" in result.stderr


def test_map_of_an_unknown_protocol_structure_is_refused(renamed_lungs):
    """--map Lung=LungsCustom (the protocol's structure is 'Lungs'): exit 2 naming it, not a silent no-op."""
    result = rtcheck("check", renamed_lungs, *CR_PR, "--map", "Lung=LungsCustom")
    assert result.exit_code == 2
    assert "Lung" in result.stderr and "Lungs" in result.stderr


# --------------------------------------------------------------------------- dvh on the sample plan


def readme_volumes() -> dict[str, float]:
    """ROI name -> approximate volume (cc) from the Structures table of sample_plans/README.md."""
    text = (SAMPLES / "README.md").read_text(encoding="utf-8")
    return {name: float(cc) for name, cc in re.findall(r"^\|\s*\d+\s*\|\s*`([^`]+)`\s*\|.*\|\s*([0-9.]+) cc\s*\|\s*$", text, re.M)}


def readme_value(metric_label: str) -> float:
    """The cr-pr-compliant column of a row of the 'Approximate values' table of sample_plans/README.md."""
    text = (SAMPLES / "README.md").read_text(encoding="utf-8")
    row = next(line for line in text.splitlines() if line.startswith(f"| {metric_label} "))
    return float(row.split("|")[2])


METRICS = ["--metric", "D95%[Gy]", "--metric", "V20Gy[%]"]


def test_dvh_formats_agree_and_match_the_sample_readme():
    """dvh table, CSV and JSON list every ROI of RS.dcm with the same numbers, close to the README's
    independently computed volumes, PTV D95% and Lungs V20Gy."""
    rs = pydicom.dcmread(COMPLIANT / "RS.dcm")
    roi_names = [item.ROIName for item in rs.StructureSetROISequence]

    document = json.loads(ok(rtcheck("dvh", COMPLIANT, *METRICS, "--format", "json")).stdout)
    assert document["schema"] == "rtcheck.dvh/1"
    rows = document["structures"]
    assert [r["name"] for r in rows] == roi_names
    for row in rows:
        assert {"name", "roi_number", "volume_cc", "min_gy", "mean_gy", "max_gy", "metrics"} <= set(row)
        assert set(row["metrics"]) == {"D95%[Gy]", "V20Gy[%]"}
        assert row["min_gy"] <= row["mean_gy"] <= row["max_gy"]
    by_name = {r["name"]: r for r in rows}

    volumes = readme_volumes()
    assert len(volumes) >= 6
    for name, cc in volumes.items():
        if name in by_name:
            assert by_name[name]["volume_cc"] == pytest.approx(cc, rel=0.03), name
    # README: target doses within 0.3 % of the prescription, volume percentages within 1 point.
    assert by_name["PTV"]["metrics"]["D95%[Gy]"] == pytest.approx(readme_value("PTV D95%") / 100 * 50.4, abs=0.01 * 50.4)
    assert by_name["Lungs"]["metrics"]["V20Gy[%]"] == pytest.approx(readme_value("Lungs V20Gy"), abs=1.0)
    assert by_name["Lungs"]["mean_gy"] == pytest.approx(readme_value("Lungs mean"), abs=0.2)

    csv_text = ok(rtcheck("dvh", COMPLIANT, *METRICS, "--format", "csv")).stdout
    records = list(csv.reader(io.StringIO(csv_text)))
    header, body = records[0], records[1:]
    assert header[:3] == ["structure", "roi_number", "volume_cc"]
    assert header[-2:] == ["D95%[Gy]", "V20Gy[%]"]
    assert [r[0] for r in body] == roi_names
    for record in body:
        row = by_name[record[0]]
        values = dict(zip(header, record))
        assert int(values["roi_number"]) == row["roi_number"]
        assert float(values["volume_cc"]) == pytest.approx(row["volume_cc"], abs=1e-3)
        assert float(values["mean_gy"]) == pytest.approx(row["mean_gy"], abs=1e-3)
        assert float(values["V20Gy[%]"]) == pytest.approx(row["metrics"]["V20Gy[%]"], abs=1e-3)

    table = ok(rtcheck("dvh", COMPLIANT, *METRICS)).stdout
    assert "D95%[Gy]" in table.splitlines()[0]
    for name in roi_names:
        line = next(line for line in table.splitlines() if line.split()[0] == name)
        assert f"{by_name[name]['volume_cc']:.2f}" in line


def test_dvh_structure_option_restricts_the_rows():
    """--structure limits the output to the ROIs named (case-insensitive match); an unknown one is exit 2."""
    document = json.loads(ok(rtcheck("dvh", COMPLIANT, "--structure", "PTV", "--structure", "heart", "--format", "json")).stdout)
    assert sorted(r["name"] for r in document["structures"]) == ["Heart", "PTV"]
    result = rtcheck("dvh", COMPLIANT, "--structure", "Liver")
    assert result.exit_code == 2 and "Liver" in result.stderr and "PTV" in result.stderr


def test_percent_of_prescription_needs_a_plan_or_rx_gy(tmp_path):
    """D95%[%] without an RT Plan and without --rx-gy: exit 2 asking for --rx-gy; with it (or with the
    plan's 50.4 Gy) the value is D95%[Gy] / Rx."""
    folder = tmp_path / "no-plan"
    folder.mkdir()
    for name in ("RS.dcm", "RD.dcm"):
        shutil.copy(COMPLIANT / name, folder / name)

    result = rtcheck("dvh", folder, "--structure", "PTV", "--metric", "D95%[%]")
    assert result.exit_code == 2 and "--rx-gy" in result.stderr and "D95%[%]" in result.stderr
    # A volume in % needs no prescription.
    ok(rtcheck("dvh", folder, "--structure", "PTV", "--metric", "D95%[Gy]"))

    def ptv(*args):
        rows = json.loads(ok(rtcheck("dvh", *args, "--structure", "PTV", "--metric", "D95%[%]", "--metric", "D95%[Gy]", "--format", "json")).stdout)
        return rows["structures"][0]["metrics"]

    with_rx = ptv(folder, "--rx-gy", "50.4")
    assert with_rx["D95%[%]"] == pytest.approx(with_rx["D95%[Gy]"] / 50.4 * 100, abs=1e-3)
    assert 95 < with_rx["D95%[%]"] < 101
    assert ptv(COMPLIANT)["D95%[%]"] == pytest.approx(with_rx["D95%[%]"], abs=1e-4)  # the plan's 50.4 Gy
    assert ptv(folder, "--rx-gy", "25.2")["D95%[%]"] == pytest.approx(2 * with_rx["D95%[%]"], abs=1e-3)
    assert rtcheck("dvh", folder, "--rx-gy", "0").exit_code == 2


# --------------------------------------------------------------------------- a planning system's export (dicompyler-core example)


def tps_dvhs(example: Path) -> tuple[float, dict[str, dict]]:
    """(prescription Gy, ROI name -> the planning system's own DVH summary) from the example's files.

    The RT Dose's DVHSequence stores doses in % of the 14 Gy prescription although it says GY:
    the BODY maximum (104.86) is 100 x the grid's maximum dose / 14 Gy (asserted below).
    """
    plan = pydicom.dcmread(example / "rtplan.dcm")
    [rx] = [float(r.TargetPrescriptionDose) for r in plan.DoseReferenceSequence
            if r.DoseReferenceType == "TARGET" and r.DoseReferenceStructureType not in ("POINT", "COORDINATES")]
    names = {int(i.ROINumber): i.ROIName for i in pydicom.dcmread(example / "rtss.dcm").StructureSetROISequence}
    dose = pydicom.dcmread(example / "rtdose.dcm")
    grid_max_gy = float(dose.pixel_array.max()) * float(dose.DoseGridScaling)
    summaries = {}
    for dvh in dose.DVHSequence:
        name = names[int(dvh.DVHReferencedROISequence[0].ReferencedROINumber)]
        summaries[name] = {
            "volume_cc": float(dvh.DVHData[1]),  # cumulative: the volume receiving >= 0
            "mean_gy": float(dvh.DVHMeanDose) / 100 * rx,
            "max_gy": float(dvh.DVHMaximumDose) / 100 * rx,
        }
    assert summaries["BODY"]["max_gy"] == pytest.approx(grid_max_gy, rel=0.002)
    return rx, summaries


def test_dicompyler_example_dvh(external_dir):
    """dvh on a real export lists every ROI; volumes and mean doses agree with the planning system's own
    DVHs; the contourless 'Areola' is listed with volume 0, not an error."""
    example = external_dir / "dicompyler-core-example"
    result = ok(rtcheck("dvh", example, "--format", "json"))
    rows = {r["name"]: r for r in json.loads(result.stdout)["structures"]}
    names = [i.ROIName for i in pydicom.dcmread(example / "rtss.dcm").StructureSetROISequence]
    assert list(rows) == names
    assert 400 <= rows["Heart"]["volume_cc"] <= 480

    areola = rows["Areola"]
    assert areola["volume_cc"] == 0 and areola["mean_gy"] is None
    assert any("no contours" in note for note in areola["notes"])

    _, tps = tps_dvhs(example)
    compared = 0
    for name, summary in tps.items():
        if not 10 <= summary["volume_cc"] <= 5000:  # small ROIs differ by contour-end conventions
            continue
        compared += 1
        assert rows[name]["volume_cc"] == pytest.approx(summary["volume_cc"], rel=0.04), name
        assert rows[name]["mean_gy"] == pytest.approx(summary["mean_gy"], rel=0.02, abs=0.01), name
    assert compared >= 5

    table = ok(rtcheck("dvh", example)).stdout  # the table too: Areola listed with a note
    assert re.search(r"^Areola\s+2\s+0\.00\s", table, re.M)
    assert "Areola: ROI has no contours" in table


def test_dicompyler_example_check(external_dir):
    """Checking a breast boost against the ESCC protocol: exit 1; Lungs, SpinalCord and PTV are missing and
    their checks not evaluated; no check of a missing structure passes; the plan reads 14 Gy in 7 fx."""
    example = external_dir / "dicompyler-core-example"
    result = rtcheck("check", example, *CR_PR, "--format", "json")
    assert result.exit_code == 1, result.stderr
    document = json.loads(result.stdout)
    assert document["verdict"] != "per_protocol"

    [target] = document["plan"]["targets"]
    assert (target["dose_gy"], target["fractions"]) == (14.0, 7)
    assert target["dose_per_fraction_gy"] == pytest.approx(2.0)
    assert document["plan"]["label"] == "B1" and document["plan"]["fractions"] == 7

    checks = document["checks"]
    for structure in ("Lungs", "SpinalCord", "PTV"):
        dvh_checks = [c for c in checks if c["structure"] == structure and c["kind"] == "dvh"]
        assert dvh_checks, structure
        for check in dvh_checks:
            assert check["status"] == "not_evaluated" and check["value"] is None
            assert "structure missing" in check["message"]
    for check in checks:
        if check["roi_name"] is None and check["kind"] != "integrity":  # integrity checks are about objects, not ROIs
            assert check["status"] != "per_protocol", check
    # 14 Gy / 7 fx is far from 50.4 Gy / 28 fx: never a pass.
    for check_id in ("rx-ptv-total-dose", "rx-ptv-fractions", "rx-ptv-dose-per-fraction"):
        assert next(c for c in checks if c["id"] == check_id)["status"] == "deviation_unacceptable"
    # The Heart is contoured and evaluated.
    heart_mean = next(c for c in checks if c["id"] == "heart-mean")
    assert heart_mean["roi_name"] == "Heart" and heart_mean["status"] == "per_protocol"


# --------------------------------------------------------------------------- pydicom's beam-dose-only plan


def test_beam_dose_only_plan_gives_a_target_from_beam_doses():
    """pydicom's rtplan.dcm has no volume prescription: its target comes from BeamDose x fractions (30)."""
    path = Path(get_testdata_file("rtplan.dcm"))
    ds = pydicom.dcmread(path)
    plan = parse_plan(ds, path, RTObjectKind.PLAN)
    assert plan.fractions == 30
    [target] = plan.targets
    group = ds.FractionGroupSequence[0]
    beam_dose = sum(float(b.BeamDose) for b in group.ReferencedBeamSequence)
    assert target.fractions == int(group.NumberOfFractionsPlanned) == 30
    assert target.dose_per_fraction_gy == pytest.approx(beam_dose)
    assert target.total_dose_gy == pytest.approx(30 * beam_dose)
    assert "BeamDose" in target.sources["total_dose_gy"]
    assert "BeamDose" in target.sources["dose_per_fraction_gy"]
    # The file's TARGET point dose reference (not used as a prescription) agrees with it and is noted.
    [point] = [r for r in ds.DoseReferenceSequence if r.DoseReferenceType == "TARGET"]
    assert target.total_dose_gy == pytest.approx(float(point.TargetPrescriptionDose), rel=1e-6)
    assert any("point" in note for note in plan.notes)
