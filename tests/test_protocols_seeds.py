"""Every seed trial has a protocol; site-set prescriptions and protocols without radiotherapy.

The trials in ../shared/seeds/ and their protocols: the induction trial
(escc-induction-icrt-ccrt), adebrelimab + apatinib (escc-adebrelimab-apatinib-2l,
radiotherapy dose set by the site), QL1706 + lenvatinib (escc-ql1706-lenvatinib-2l,
no radiotherapy), regional recurrence (escc-regional-recurrence).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pydicom
import pytest
import yaml

from cli_helpers import rtcheck
from rtcheck.api import check_paths
from rtcheck.errors import NoRadiotherapyError, ProtocolError
from rtcheck.protocol import find_protocol, load_protocol_file

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "sample_plans"
ADEBRELIMAB = ROOT / "protocols" / "escc-adebrelimab-apatinib-2l.yaml"
SEED_PROTOCOLS = {
    "seeds/trial-induction-icrt-then-ccrt.txt": "escc-induction-icrt-ccrt",
    "seeds/trial-adebrelimab-apatinib-2l.txt": "escc-adebrelimab-apatinib-2l",
    "seeds/trial-ql1706-lenvatinib-2l.txt": "escc-ql1706-lenvatinib-2l",
    "seeds/trial-regional-recurrence-eligibility.txt": "escc-regional-recurrence",
}


def eqd2(total_gy: float, fractions: int, alpha_beta_gy: float) -> float:
    """By hand: D (D/n + a/b) / (2 + a/b)."""
    return total_gy * (total_gy / fractions + alpha_beta_gy) / (2.0 + alpha_beta_gy)


def test_every_seed_trial_has_a_listed_protocol_that_validates():
    result = rtcheck("protocols", "--format", "json")
    assert result.exit_code == 0, result.output
    listed = {p["id"]: p for p in json.loads(result.stdout)["protocols"]}
    for seed, protocol_id in SEED_PROTOCOLS.items():
        assert protocol_id in listed, f"no protocol for {seed}"
        protocol = load_protocol_file(listed[protocol_id]["path"])
        assert seed in str(protocol.source.get("seed", "")), f"{protocol_id} does not name its seed {seed}"
    files = [listed[i]["path"] for i in SEED_PROTOCOLS.values()]
    validated = rtcheck("protocols", "validate", *files, "--format", "json")
    assert validated.exit_code == 0, validated.output
    assert all(r["valid"] for r in json.loads(validated.stdout)["files"])
    assert listed["escc-ql1706-lenvatinib-2l"]["radiotherapy"] is False
    assert listed["escc-adebrelimab-apatinib-2l"]["arms_without_radiotherapy"] == ["no-rt-cohort"]
    assert listed["escc-induction-icrt-ccrt"]["arms_without_radiotherapy"] == []


def test_adebrelimab_protocol_sets_no_dose_and_sources_every_value():
    protocol = find_protocol("escc-adebrelimab-apatinib-2l")
    assert set(protocol.arms) == {"rt-cohort", "no-rt-cohort"}
    rt = protocol.arm("rt-cohort")
    [rx] = rt.prescriptions
    # The trial states no dose: none is invented, the window is marked as an rtcheck default.
    assert (rx.dose_set_by, rx.total_dose_gy, rx.fractions, rx.dose_per_fraction_gy) == ("site", None, None, None)
    assert rx.window.is_default and "not from the trial" in rx.window.source
    assert rx.window.min_gy < eqd2(50.4, 28, 10) < eqd2(59.92, 28, 10) < rx.window.max_gy
    assert all(c.source for c in rt.constraints)
    assert {"lungs-v20", "heart-mean", "cord-max", "ptv-d95"} <= {c.id for c in rt.constraints}
    no_rt = protocol.arm("no-rt-cohort")
    assert (no_rt.radiotherapy, no_rt.prescriptions, no_rt.constraints) == (False, (), ())


def test_cr_pr_sample_against_the_rt_cohort_is_at_best_a_variation():
    result = rtcheck("check", SAMPLES / "cr-pr-compliant", "--protocol", "escc-adebrelimab-apatinib-2l", "--arm", "rt-cohort", "--format", "json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    checks = {c["id"]: c for c in doc["checks"]}
    [target] = doc["plan"]["targets"]
    rx = checks["rx-ptv-eqd2"]
    assert rx["value"] == pytest.approx(eqd2(target["dose_gy"], target["fractions"], 10.0), abs=1e-4)
    assert rx["unit"] == "Gy" and rx["kind"] == "prescription"
    # Inside the default window is not "per protocol": the window is not the trial's.
    assert rx["status"] == "variation_acceptable"
    assert "dose set by the site" in rx["message"] and "not a trial requirement" in rx["message"]
    assert "rtcheck default window" in rx["variation_acceptable"]
    assert doc["verdict"] == "variation_acceptable"
    # Coverage in % refers to the plan's own prescription, since the site sets it.
    assert checks["ptv-d95"]["status"] == "per_protocol"
    assert f"{target['dose_gy']:g} Gy (the plan's: the dose is set by the site)" in checks["ptv-d95"]["message"]
    assert any("set by the site" in n and "not a trial requirement" in n for n in doc["notes"])
    # The organ-at-risk values are the same DVH numbers as against the induction trial's arm.
    seed = json.loads(rtcheck("check", SAMPLES / "cr-pr-compliant", "--protocol", "escc-induction-icrt-ccrt", "--arm", "cr-pr", "--format", "json").stdout)
    seed_values = {c["id"]: c["value"] for c in seed["checks"]}
    for cid in ("lungs-v20", "heart-mean", "cord-max", "ptv-d95"):
        assert checks[cid]["value"] == seed_values[cid]
    table = rtcheck("check", SAMPLES / "cr-pr-compliant", "--protocol", "escc-adebrelimab-apatinib-2l", "--arm", "rt-cohort")
    assert "rtcheck default window" in table.stdout and "set by the site" in table.stdout
    assert "Verdict: VARIATION" in table.stdout


def _replanned(tmp_path: Path, total_gy: float, fractions: int) -> Path:
    """A copy of the cr-pr sample whose RT Plan prescribes ``total_gy`` in ``fractions`` (the dose grid is unchanged)."""
    folder = tmp_path / "replanned"
    shutil.copytree(SAMPLES / "cr-pr-compliant", folder)
    plan = pydicom.dcmread(folder / "RP.dcm")
    old_per_fraction = float(plan.DoseReferenceSequence[0].TargetPrescriptionDose) / int(plan.FractionGroupSequence[0].NumberOfFractionsPlanned)
    plan.DoseReferenceSequence[0].TargetPrescriptionDose = total_gy
    group = plan.FractionGroupSequence[0]
    group.NumberOfFractionsPlanned = fractions
    for beam in group.ReferencedBeamSequence:
        beam.BeamDose = round(float(beam.BeamDose) * (total_gy / fractions) / old_per_fraction, 6)
    plan.save_as(folder / "RP.dcm")
    return folder


def test_outside_the_default_window_is_a_deviation_that_names_the_default(tmp_path):
    folder = _replanned(tmp_path, 30.0, 10)  # a palliative 30 Gy / 10 fx: EQD2 32.5 Gy with a/b 10
    result = rtcheck("check", folder, "--protocol", "escc-adebrelimab-apatinib-2l", "--arm", "rt-cohort", "--format", "json")
    assert result.exit_code == 1
    rx = next(c for c in json.loads(result.stdout)["checks"] if c["id"] == "rx-ptv-eqd2")
    assert rx["value"] == pytest.approx(eqd2(30.0, 10, 10.0), abs=1e-4)
    assert rx["status"] == "deviation_unacceptable"
    assert "outside rtcheck's default window" in rx["message"] and "not a trial requirement" in rx["message"]


def test_arm_auto_skips_the_cohort_without_radiotherapy():
    [result] = check_paths([SAMPLES / "cr-pr-compliant"], "escc-adebrelimab-apatinib-2l", "auto")
    assert result.arm == "rt-cohort"
    assert any("chosen automatically" in n for n in result.notes)


@pytest.mark.parametrize(
    "protocol, arm, words",
    [
        ("escc-ql1706-lenvatinib-2l", "ql1706-lenvatinib", "protocol escc-ql1706-lenvatinib-2l has no radiotherapy component"),
        ("escc-ql1706-lenvatinib-2l", "auto", "protocol escc-ql1706-lenvatinib-2l has no radiotherapy component"),
        ("escc-adebrelimab-apatinib-2l", "no-rt-cohort", "arm no-rt-cohort has no radiotherapy component"),
    ],
)
@pytest.mark.parametrize("sample", ["cr-pr-compliant", "sd-pd-compliant"])
def test_a_plan_against_no_radiotherapy_is_a_usage_error_never_a_pass(protocol, arm, words, sample):
    result = rtcheck("check", SAMPLES / sample, "--protocol", protocol, "--arm", arm, "--format", "json")
    assert result.exit_code == 2
    assert result.stdout == ""
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("rtcheck: error: ") and words in line
    with pytest.raises(NoRadiotherapyError, match="no radiotherapy component"):
        check_paths([SAMPLES / sample], protocol, arm)


@pytest.mark.parametrize("arm", ["ql1706-lenvatinib", "auto"])
def test_no_radiotherapy_is_refused_before_any_file_is_read(tmp_path, arm):
    missing = tmp_path / "not-there"
    result = rtcheck("check", missing, "--protocol", "escc-ql1706-lenvatinib-2l", "--arm", arm)
    assert result.exit_code == 2
    assert "no radiotherapy component" in result.stderr and "not-there" not in result.stderr


def test_protocols_list_and_show_say_there_is_no_radiotherapy():
    listing = rtcheck("protocols").stdout
    assert "[ql1706-lenvatinib (no radiotherapy)]" in listing
    assert "no-rt-cohort (no radiotherapy)" in listing
    shown = rtcheck("protocols", "show", "escc-ql1706-lenvatinib-2l")
    assert shown.exit_code == 0 and "radiotherapy: none" in shown.stdout
    doc = json.loads(rtcheck("protocols", "show", "escc-adebrelimab-apatinib-2l", "--format", "json").stdout)
    arms = {a["id"]: a for a in doc["arms"]}
    assert arms["no-rt-cohort"]["radiotherapy"] is False
    [rx] = arms["rt-cohort"]["prescriptions"]
    assert rx["dose_set_by"] == "site" and rx["total_dose_gy"] is None
    assert rx["eqd2_window"]["is_rtcheck_default"] is True and rx["eqd2_window"]["alpha_beta_gy"] == 10
    text = rtcheck("protocols", "show", "escc-adebrelimab-apatinib-2l").stdout
    assert "Rx PTV: dose set by the site (the trial states none); EQD2 44.6-66.7 Gy (α/β 10 Gy, rtcheck default window)" in text


def _broken(tmp_path: Path, mutate) -> Path:
    data = yaml.safe_load(ADEBRELIMAB.read_text(encoding="utf-8"))
    mutate(data)
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def _rx(data: dict) -> dict:
    return data["arms"]["rt-cohort"]["prescriptions"][0]


@pytest.mark.parametrize(
    "mutate, entry, words",
    [
        (lambda d: _rx(d).update(total_dose_gy=50.4), "arms.rt-cohort.prescriptions[0].default_window", "either a dose or an EQD2 window"),
        (lambda d: _rx(d).update(window=_rx(d)["default_window"]), "arms.rt-cohort.prescriptions[0]", "needs one EQD2 window"),
        (lambda d: _rx(d).pop("default_window"), "arms.rt-cohort.prescriptions[0]", "needs one EQD2 window"),
        (lambda d: _rx(d).update(dose_set_by="trial"), "arms.rt-cohort.prescriptions[0].default_window", "dose set by the site"),
        (lambda d: _rx(d).update(dose_set_by="physicist"), "arms.rt-cohort.prescriptions[0].dose_set_by", "expected trial or site"),
        (lambda d: _rx(d)["default_window"]["eqd2_gy"].update(max=40), "arms.rt-cohort.prescriptions[0].default_window.eqd2_gy", "not above min"),
        (lambda d: _rx(d)["default_window"].pop("source"), "arms.rt-cohort.prescriptions[0].default_window", "missing key(s): source"),
        (lambda d: _rx(d)["default_window"].update(alpha_beta_gy=0), "arms.rt-cohort.prescriptions[0].default_window.alpha_beta_gy", "positive number"),
        (lambda d: _rx(d).update(tolerance={"per_protocol_pct": 1}), "arms.rt-cohort.prescriptions[0].tolerance", "not to an EQD2 window"),
        (lambda d: d["arms"]["no-rt-cohort"].update(constraints=[{"use": "organs-at-risk"}]), "arms.no-rt-cohort.constraints", "no prescriptions or constraints"),
        (lambda d: d["arms"]["no-rt-cohort"].update(radiotherapy="no"), "arms.no-rt-cohort.radiotherapy", "expected none"),
        (lambda d: d["arms"]["rt-cohort"].pop("prescriptions"), "arms.rt-cohort", "missing key(s): prescriptions"),
    ],
)
def test_malformed_site_set_prescription_or_radiotherapy_names_the_entry(tmp_path, mutate, entry, words):
    path = _broken(tmp_path, mutate)
    with pytest.raises(ProtocolError) as excinfo:
        load_protocol_file(path)
    assert excinfo.value.source == str(path)
    assert excinfo.value.entry == entry
    assert words in excinfo.value.reason


def test_a_protocol_without_radiotherapy_needs_no_structures_but_refuses_arm_contents(tmp_path):
    path = tmp_path / "no-rt.yaml"
    base = {"schema": "rtcheck.protocol/1", "id": "no-rt", "title": "t", "source": {"seed": "s"}, "radiotherapy": "none"}
    path.write_text(yaml.safe_dump({**base, "arms": {"a": {"title": "drug only"}}}), encoding="utf-8")
    assert load_protocol_file(path).radiotherapy is False
    path.write_text(yaml.safe_dump({**base, "arms": {"a": {"title": "x", "radiotherapy": "none"}}}), encoding="utf-8")
    with pytest.raises(ProtocolError, match=r"arms\.a\.radiotherapy: the protocol already says radiotherapy: none"):
        load_protocol_file(path)
