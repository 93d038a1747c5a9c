"""Re-irradiation end to end: the shipped sample `reirradiation-cord-cumulative` against the
protocol `escc-regional-recurrence`, through the command line, with the verdicts and cumulative
EQD2 values sample_plans/README.md promises."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from cli_helpers import rtcheck, run_process
from rtcheck.api import check_paths
from rtcheck.grading import CheckOptions
from rtcheck.protocol.library import find_protocol, load_protocol_file
from rtcheck.radiobiology.lq import eqd2_gy
from rtcheck.radiobiology.reirradiation import PriorCourse
from rtcheck.results import Status

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "sample_plans" / "reirradiation-cord-cumulative"
PRIOR = SAMPLE / "prior" / "RD.dcm"
PROTOCOL = "escc-regional-recurrence"
PROTOCOL_FILE = ROOT / "protocols" / f"{PROTOCOL}.yaml"
README = (ROOT / "sample_plans" / "README.md").read_text(encoding="utf-8")


def promised() -> list[tuple[str, str, str]]:
    """(options, verdict, cumulative EQD2 cell) rows of the README's re-irradiation table."""
    section = README[README.index("## Re-irradiation"):]
    rows = re.findall(r"^\| (no `--prior-dose`|`[^`]+`) \| `([a-z_]+)` \| ([^|]+) \|$", section, re.M)
    assert len(rows) == 3
    return rows


def cli_options(cell: str) -> list[str]:
    if cell.startswith("no "):
        return []
    return cell.strip("`").replace("prior/RD.dcm", str(PRIOR)).split()


def readme_value(label: str, column: int) -> float:
    """A number of the README's cord-values table (column 1 rtcheck, 2 independent)."""
    row = next(line for line in README.splitlines() if line.startswith(f"| {label}"))
    return float(row.split("|")[column + 1].strip(" *").split()[0])


@pytest.mark.parametrize("options, verdict, cumulative", promised())
def test_sample_gives_the_promised_verdict_and_cumulative_eqd2(options, verdict, cumulative):
    result = rtcheck("check", SAMPLE, "--protocol", PROTOCOL, "--arm", "re-irradiation", "--format", "json", *cli_options(options))
    assert result.exit_code == 1, result.output  # neither verdict passes
    document = json.loads(result.stdout)
    assert document["verdict"] == verdict
    check = next(c for c in document["checks"] if c["id"] == "cord-cumulative-eqd2")
    assert check["metric"] == "D0.03cc[EQD2Gy(a/b=2)]"
    assert check["biology"].startswith("cumulative EQD2")
    if cumulative.startswith("not evaluated"):
        assert check["status"] == "not_evaluated" and check["value"] is None
        assert "--prior-dose" in check["message"]
    else:
        assert check["status"] == "deviation_unacceptable"
        assert check["value"] == pytest.approx(float(cumulative.split()[0]), abs=0.05)
        # Physical dose of the current course beside it, and each course's share in the text.
        assert check["physical_value"] == pytest.approx(readme_value("current course, physical", 1), abs=0.05)
        assert "each course alone" in check["biology"]
        assert str(PRIOR) in document["inputs"]


def test_cumulative_values_agree_with_the_independent_calculation():
    [result] = check_paths([SAMPLE], PROTOCOL, "re-irradiation", options=CheckOptions(prior=PriorCourse(PRIOR, 30)))
    checks = {c.id: c for c in result.checks}
    cumulative = checks["cord-cumulative-eqd2"]
    # Within 0.3 Gy of the independent point sampling (the README's second column).
    assert cumulative.value == pytest.approx(readme_value("both courses, cumulative EQD2", 2), abs=0.3)
    assert checks["reirradiation-current-course"].value == pytest.approx(readme_value("current course, BED", 2), abs=0.3)
    assert checks["cord-max"].value == pytest.approx(readme_value("current course, physical", 2), abs=0.3)
    # The cumulative value can only exceed each course's own EQD2 maximum (D0.03cc).
    current_eqd2 = eqd2_gy(cumulative.physical_value, 25, 2.0)
    assert cumulative.value > current_eqd2 + 30


def test_table_output_shows_the_cumulative_eqd2_and_the_physical_dose():
    result = rtcheck("check", SAMPLE, "--protocol", PROTOCOL, "--arm", "re-irradiation", "--prior-dose", PRIOR, "--prior-fractions", "30")
    assert result.exit_code == 1
    out = result.stdout
    row = next(line for line in out.splitlines() if line.startswith("DEVIATION") and "cord-cumulative-eqd2" in line)
    value = readme_value("both courses, cumulative EQD2", 1)
    assert "D0.03cc[EQD2Gy(a/b=2)]" in row and f"{value:.2f} Gy" in row and "<= 67.75 Gy" in row
    assert "EQD2/BED checks" in out
    assert re.search(r"cord-cumulative-eqd2: \d+\.\d\d Gy \(cumulative EQD2 \(prior course RD\.dcm in 30 fx \+ current course in 25 fx\)", out)
    assert "physical dose of the current course: 37." in out
    assert "Verdict: DEVIATION" in out


def test_recovery_credit_from_a_protocol_that_states_it(tmp_path):
    text = PROTOCOL_FILE.read_text(encoding="utf-8")
    anchor = '        cumulative: true\n        per_protocol: "<= 67.75 Gy"\n'
    assert anchor in text
    credit = "        recovery_credit: {steps: [{after_months: 6, credit_pct: 25}, {after_months: 12, credit_pct: 50}], source: test rule}\n"
    path = tmp_path / "with-credit.yaml"
    path.write_text(text.replace(anchor, anchor.replace("cumulative: true\n", "cumulative: true\n" + credit)), encoding="utf-8")
    protocol = load_protocol_file(path)
    values = {}
    for months in (None, 6, 12):
        [result] = check_paths([SAMPLE], protocol, "re-irradiation", options=CheckOptions(prior=PriorCourse(PRIOR, 30, months)))
        check = next(c for c in result.checks if c.id == "cord-cumulative-eqd2")
        values[months] = check.value
        assert ("recovery credit applied" in check.biology) == (months is not None)
    row = next(line for line in README.splitlines() if line.startswith("| both, if a protocol credited"))
    with_25, with_50 = (float(v) for v in re.findall(r"\d+\.\d", row.split("|")[2]))
    assert values[6] == pytest.approx(with_25, abs=0.05)
    assert values[12] == pytest.approx(with_50, abs=0.05)
    assert values[None] > values[6] > values[12]
    # Credit on the prior EQD2 only: the drop is 25 % / 50 % of the prior's share at the hottest point.
    assert values[None] - values[12] == pytest.approx(2 * (values[None] - values[6]), abs=0.05)


def test_the_interval_without_a_protocol_credit_changes_nothing():
    result = rtcheck(
        "check", SAMPLE, "--protocol", PROTOCOL, "--arm", "re-irradiation", "--format", "json",
        "--prior-dose", PRIOR, "--prior-fractions", "30", "--prior-interval-months", "24",
    )
    check = next(c for c in json.loads(result.stdout)["checks"] if c["id"] == "cord-cumulative-eqd2")
    assert "no recovery credit (the protocol states none" in check["biology"]
    assert check["value"] == pytest.approx(readme_value("both courses, cumulative EQD2", 1), abs=0.05)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--prior-fractions", "30"], "--prior-fractions and --prior-interval-months need --prior-dose"),
        (["--prior-dose", str(PRIOR)], "--prior-dose needs --prior-fractions"),
        (["--prior-dose", str(PRIOR), "--prior-fractions", "0"], "--prior-fractions"),
    ],
)
def test_prior_options_are_checked(args, message):
    result = rtcheck("check", SAMPLE, "--protocol", PROTOCOL, "--arm", "re-irradiation", *args)
    assert result.exit_code == 2
    assert message in result.stderr


def test_prior_dose_errors_name_the_file(tmp_path):
    not_dicom = tmp_path / "prior.dcm"
    not_dicom.write_text("not a dose")
    other_frame = ROOT / "sample_plans" / "cr-pr-compliant" / "RD.dcm"
    plan_file = SAMPLE / "RP.dcm"
    for path, words in ((not_dicom, "not a DICOM file"), (other_frame, "registration is not supported"), (plan_file, "must be an RT Dose")):
        result = run_process("check", SAMPLE, "--protocol", PROTOCOL, "--arm", "re-irradiation", "--prior-dose", path, "--prior-fractions", "30")
        assert result.returncode == 2, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"rtcheck: error: {path}: ")
        assert words in lines[0]
        assert "Traceback" not in result.stderr


def test_prior_dose_is_read_only():
    before = (PRIOR.stat().st_mtime_ns, PRIOR.read_bytes())
    rtcheck("check", SAMPLE, "--protocol", PROTOCOL, "--arm", "re-irradiation", "--prior-dose", PRIOR, "--prior-fractions", "30")
    assert (PRIOR.stat().st_mtime_ns, PRIOR.read_bytes()) == before


# --------------------------------------------------------------------------- the protocol


def test_protocol_validates_and_lists_both_arms():
    result = rtcheck("protocols", "validate", PROTOCOL_FILE)
    assert result.exit_code == 0, result.output
    protocol = find_protocol(PROTOCOL)
    assert set(protocol.arms) == {"first-course", "re-irradiation"}
    reirr = {c.id: c for c in protocol.arm("re-irradiation").constraints}
    assert reirr["cord-cumulative-eqd2"].cumulative and reirr["cord-cumulative-eqd2"].recovery_credit is None
    assert reirr["cord-cumulative-eqd2"].metric.text == "D0.03cc[EQD2Gy(a/b=2)]"
    assert reirr["reirradiation-current-course"].metric.biology.model == "BED" and not reirr["reirradiation-current-course"].cumulative
    assert all(c.source for arm in protocol.arms.values() for c in arm.constraints)
    for arm in protocol.arms.values():
        [rx] = arm.prescriptions
        assert rx.dose_set_by == "site" and rx.total_dose_gy is None and rx.window.is_default


def test_first_course_arm_on_a_sample_plan():
    [result] = check_paths([ROOT / "sample_plans" / "cr-pr-compliant"], PROTOCOL, "first-course")
    checks = {c.id: c for c in result.checks}
    # The site sets the dose: inside the rtcheck default window is at best a variation.
    assert checks["rx-ptv-eqd2"].status is Status.VARIATION_ACCEPTABLE
    assert result.verdict is Status.VARIATION_ACCEPTABLE
    cord = checks["cord-max-eqd2"]
    assert not cord.counts and cord.status is Status.PER_PROTOCOL
    # EQD2 rises with dose: the D0.03cc in EQD2 is the physical D0.03cc converted (28 fx, a/b 2), to interpolation.
    assert cord.physical_value == pytest.approx(checks["cord-max"].value, abs=1e-9)
    assert cord.value == pytest.approx(eqd2_gy(cord.physical_value, 28, 2.0), abs=0.1)
    assert cord.value < cord.physical_value  # below 2 Gy per fraction EQD2 is lower


def test_reirradiation_arm_without_cumulative_constraint_notes_an_unused_prior():
    # The first-course arm has no cumulative constraint: the prior dose is read (errors would show) but changes nothing.
    [with_prior] = check_paths([SAMPLE], PROTOCOL, "first-course", options=CheckOptions(prior=PriorCourse(PRIOR, 30)))
    [without] = check_paths([SAMPLE], PROTOCOL, "first-course")
    assert [(c.id, c.value, c.status) for c in with_prior.checks] == [(c.id, c.value, c.status) for c in without.checks]
    assert without.verdict is Status.VARIATION_ACCEPTABLE  # as sample_plans/README.md says: the window is an rtcheck default
    assert any("no cumulative constraint" in n for n in with_prior.notes)


def test_a_site_overlay_can_state_a_recovery_credit(tmp_path):
    # The protocol's header says a site wanting the 25 %/50 % rule adds it in an overlay: that works.
    overlay = tmp_path / "site-reirr.yaml"
    overlay.write_text(
        "schema: rtcheck.overlay/1\n"
        "id: site-reirr\n"
        f"extends: {PROTOCOL}\n"
        "source: {site: test}\n"
        "constraints:\n"
        "  cord-cumulative-eqd2:\n"
        "    recovery_credit: {steps: [{after_months: 6, credit_pct: 25}, {after_months: 12, credit_pct: 50}], source: site rule}\n"
        "    source: site re-irradiation policy\n",
        encoding="utf-8",
    )
    base = {}
    for protocol in (PROTOCOL, str(overlay)):
        result = rtcheck(
            "check", SAMPLE, "--protocol", protocol, "--arm", "re-irradiation", "--format", "json",
            "--prior-dose", PRIOR, "--prior-fractions", "30", "--prior-interval-months", "12",
        )
        document = json.loads(result.stdout)
        base[protocol] = next(c for c in document["checks"] if c["id"] == "cord-cumulative-eqd2")
    with_credit = base[str(overlay)]
    assert "recovery credit applied: 50 %" in with_credit["biology"] and "site rule" in with_credit["biology"]
    assert with_credit["status"] == "per_protocol"
    assert base[PROTOCOL]["status"] == "deviation_unacceptable"
    assert with_credit["value"] < base[PROTOCOL]["value"]


def test_protocols_show_says_which_constraints_are_cumulative_and_their_credit(tmp_path):
    overlay = tmp_path / "site-credit.yaml"
    overlay.write_text(
        "schema: rtcheck.overlay/1\nid: site-credit\n"
        f"extends: {PROTOCOL}\nsource: {{site: test}}\n"
        "constraints:\n  cord-cumulative-eqd2:\n"
        "    recovery_credit: {steps: [{after_months: 6, credit_pct: 25}], source: site rule}\n"
        "    source: site policy\n",
        encoding="utf-8",
    )
    text = rtcheck("protocols", "show", PROTOCOL).stdout
    [line] = [l for l in text.splitlines() if l.strip().startswith("cord-cumulative-eqd2:")]
    assert "[cumulative with the prior course]" in line
    [course_line] = [l for l in text.splitlines() if l.strip().startswith("reirradiation-current-course:")]
    assert "cumulative" not in course_line
    document = json.loads(rtcheck("protocols", "show", str(overlay), "--format", "json").stdout)
    constraints = {c["id"]: c for arm in document["arms"] for c in arm["constraints"]}
    assert constraints["cord-cumulative-eqd2"]["cumulative"] is True
    assert constraints["cord-cumulative-eqd2"]["recovery_credit"] == {
        "steps": [{"after_months": 6, "credit_pct": 25}], "source": "site rule"}
    assert "recovery credit: 25 % after 6 months (source: site rule)" in rtcheck("protocols", "show", str(overlay)).stdout


def test_a_plan_with_zero_fractions_leaves_eqd2_checks_not_evaluated(tmp_path):
    import shutil

    import pydicom

    case = tmp_path / "zero-fractions"
    shutil.copytree(SAMPLE, case, ignore=shutil.ignore_patterns("prior"))
    plan = pydicom.dcmread(case / "RP.dcm")
    plan.FractionGroupSequence[0].NumberOfFractionsPlanned = 0
    plan.save_as(case / "RP.dcm")
    result = rtcheck("check", case, "--protocol", PROTOCOL, "--arm", "re-irradiation", "--format", "json",
                     "--prior-dose", PRIOR, "--prior-fractions", "30")
    assert result.exit_code == 1 and "Traceback" not in result.stderr, result.stderr
    checks = {c["id"]: c for c in json.loads(result.stdout)["checks"]}
    for check_id in ("cord-cumulative-eqd2", "reirradiation-current-course"):
        assert checks[check_id]["status"] == "not_evaluated"
        assert "no valid number of fractions" in checks[check_id]["message"]
    dvh = rtcheck("dvh", case, "--metric", "Max[EQD2Gy(a/b=2)]")
    assert dvh.exit_code == 2 and "--fractions" in dvh.stderr and "Traceback" not in dvh.stderr


# --------------------------------------------------------------------------- Nieder's conditions


def _nieder_checks(*args: str) -> tuple[str, dict]:
    result = rtcheck("check", SAMPLE, "--protocol", PROTOCOL, "--arm", "re-irradiation", "--format", "json", *args)
    assert "Traceback" not in result.stderr, result.stderr
    document = json.loads(result.stdout)
    return document["verdict"], {c["id"]: c for c in document["checks"]}


def test_protocol_states_nieders_conditions_with_their_source():
    conditions = find_protocol(PROTOCOL).arm("re-irradiation").reirradiation
    assert conditions is not None and conditions.structure == "SpinalCord"
    assert conditions.min_interval_months == 6 and conditions.per_course.value == 98
    assert conditions.metric.text == "D0.03cc[BEDGy(a/b=2)]"
    assert "IJROBP 2005;61:851-855" in conditions.source and "2006;66:1446-1449" in conditions.source
    assert find_protocol(PROTOCOL).arm("first-course").reirradiation is None


def test_an_interval_under_six_months_is_a_deviation():
    verdict, checks = _nieder_checks("--prior-dose", str(PRIOR), "--prior-fractions", "30", "--prior-interval-months", "3")
    interval = checks["reirradiation-interval"]
    assert interval["status"] == "deviation_unacceptable" and interval["value"] == 3 and interval["unit"] == "months"
    assert interval["counts"] and verdict == "deviation_unacceptable"
    # The prior course alone: 60 Gy / 30 fx at the cord's hottest point, BED = 2 x EQD2 (a/b 2) of the prior share.
    prior = checks["reirradiation-prior-course"]
    assert prior["status"] == "per_protocol" and prior["value"] < 98
    assert prior["physical_value"] is None and prior["biology"].startswith("BED of the prior course alone")
    cumulative = checks["cord-cumulative-eqd2"]
    prior_eqd2 = float(re.search(r"prior (\d+\.\d+) Gy EQD2", cumulative["biology"]).group(1))
    assert prior["value"] == pytest.approx(2 * prior_eqd2, abs=0.02)


def test_the_interval_absent_is_not_evaluated_and_counts():
    verdict, checks = _nieder_checks("--prior-dose", str(PRIOR), "--prior-fractions", "30")
    interval = checks["reirradiation-interval"]
    assert interval["status"] == "not_evaluated" and interval["value"] is None and interval["counts"]
    assert "--prior-interval-months" in interval["message"]
    assert verdict != "per_protocol"
    # Without the prior dose the prior course's BED is not evaluated either (counting), never a pass.
    _, without = _nieder_checks()
    assert without["reirradiation-prior-course"]["status"] == "not_evaluated" and without["reirradiation-prior-course"]["counts"]
    assert "--prior-dose" in without["reirradiation-prior-course"]["message"]


def test_an_interval_of_six_months_or_more_passes_the_interval_check():
    _, checks = _nieder_checks("--prior-dose", str(PRIOR), "--prior-fractions", "30", "--prior-interval-months", "6")
    assert checks["reirradiation-interval"]["status"] == "per_protocol"


def test_a_prior_course_above_98_gy2_bed_is_a_deviation():
    # The same prior dose delivered in 10 fractions: the cord's hottest point far above 98 Gy BED (a/b 2).
    _, checks = _nieder_checks("--prior-dose", str(PRIOR), "--prior-fractions", "10", "--prior-interval-months", "12")
    prior = checks["reirradiation-prior-course"]
    assert prior["status"] == "deviation_unacceptable" and prior["value"] > 98
    _, in_30 = _nieder_checks("--prior-dose", str(PRIOR), "--prior-fractions", "30", "--prior-interval-months", "12")
    # BED = D (1 + d / (a/b)): same physical maximum D, so BED(10 fx) - D = 3 x (BED(30 fx) - D).
    d = (-1 + (1 + 4 * in_30["reirradiation-prior-course"]["value"] / (2 * 30)) ** 0.5) / (2 / (2 * 30))
    assert prior["value"] == pytest.approx(d * (1 + d / 10 / 2), rel=2e-3)
    assert checks["reirradiation-interval"]["status"] == "per_protocol"
    assert checks["reirradiation-current-course"]["status"] == "per_protocol"


@pytest.mark.parametrize(
    "change, entry, words",
    [
        ({"min_interval_months": -1}, "reirradiation_conditions.min_interval_months", "positive number"),
        ({"metric": "D0.03cc[Gy]"}, "reirradiation_conditions.metric", "EQD2 or BED"),
        ({"per_course": ">= 98 Gy"}, "reirradiation_conditions.per_course", "upper limit"),
        ({"structure": "Spleen"}, "reirradiation_conditions.structure", "unknown structure"),
        ({"interval": 6}, "reirradiation_conditions", "unknown key(s): interval"),
    ],
)
def test_bad_reirradiation_conditions_name_the_entry(tmp_path, change, entry, words):
    import yaml

    from rtcheck.errors import ProtocolError

    document = yaml.safe_load(PROTOCOL_FILE.read_text(encoding="utf-8"))
    document["arms"]["re-irradiation"]["reirradiation_conditions"].update(change)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ProtocolError) as raised:
        load_protocol_file(path)
    assert f"arms.re-irradiation.{entry}" in str(raised.value) and words in str(raised.value)
