"""Site overlays: a department's changes to a trial protocol, merged, validated, and traced to their file."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pydicom
import pytest
import yaml

from cli_helpers import rtcheck
from rtcheck.api import check_paths
from rtcheck.errors import ProtocolError
from rtcheck.protocol import find_protocol, load_protocol_file
from rtcheck.protocol.model import ConstraintKind

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "sample_plans"
SEED = ROOT / "protocols" / "escc-induction-icrt-ccrt.yaml"
ADEBRELIMAB = ROOT / "protocols" / "escc-adebrelimab-apatinib-2l.yaml"


def write_overlay(folder: Path, name: str = "site.yaml", **body) -> Path:
    doc = {"schema": "rtcheck.overlay/1", "id": "site-overlay", "extends": "escc-induction-icrt-ccrt", "source": {"site": "test hospital"}}
    doc.update(body)
    path = folder / name
    path.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def checks_of(result) -> dict[str, dict]:
    return {c["id"]: c for c in json.loads(result.stdout)["checks"]}


def test_threshold_override_changes_the_verdict_of_a_sample_plan(tmp_path):
    base = rtcheck("check", SAMPLES / "cr-pr-compliant", "--protocol", "escc-induction-icrt-ccrt", "--arm", "cr-pr", "--format", "json")
    assert base.exit_code == 0 and json.loads(base.stdout)["verdict"] == "per_protocol"
    v20 = checks_of(base)["lungs-v20"]["value"]
    # Limits on either side of the plan's own V20Gy: below it, the same plan deviates.
    overlay = write_overlay(
        tmp_path,
        constraints={"lungs-v20": {"per_protocol": f"< {v20 - 3:.1f} %", "variation_acceptable": f"<= {v20 - 1:.1f} %", "source": "site lung policy"}},
    )
    result = rtcheck("check", SAMPLES / "cr-pr-compliant", "--protocol", overlay, "--arm", "cr-pr", "--format", "json")
    assert result.exit_code == 1, result.output
    doc = json.loads(result.stdout)
    lungs = checks_of(result)["lungs-v20"]
    assert lungs["value"] == v20 and lungs["status"] == "deviation_unacceptable"
    assert lungs["per_protocol"] == f"< {v20 - 3:.1f} %"
    assert lungs["source"].startswith(f"site overlay {overlay}: site lung policy (base: SCOPE1")
    assert doc["verdict"] == "deviation_unacceptable"
    # The overlay has its own id and sha256; the notes name the base file and its sha256.
    assert doc["protocol"]["id"] == "site-overlay"
    assert doc["protocol"]["sha256"] == hashlib.sha256(overlay.read_bytes()).hexdigest()
    seed_sha = hashlib.sha256(SEED.read_bytes()).hexdigest()
    assert any("site overlay" in n and seed_sha in n for n in doc["notes"])
    # A looser variation band than the plan's value: variation acceptable.
    looser = write_overlay(tmp_path, "looser.yaml", constraints={"lungs-v20": {"per_protocol": f"< {v20 - 3:.1f} %", "variation_acceptable": f"<= {v20 + 1:.1f} %", "source": "s"}})
    assert checks_of(rtcheck("check", SAMPLES / "cr-pr-compliant", "--protocol", looser, "--arm", "cr-pr", "--format", "json"))["lungs-v20"]["status"] == "variation_acceptable"


def test_alias_override_maps_a_renamed_roi(tmp_path):
    folder = tmp_path / "renamed"
    shutil.copytree(SAMPLES / "cr-pr-compliant", folder)
    rs = pydicom.dcmread(folder / "RS.dcm")
    [cord] = [r for r in rs.StructureSetROISequence if r.ROIName == "SpinalCord"]
    cord.ROIName = "MEDULLA_SP"
    rs.save_as(folder / "RS.dcm")
    original = checks_of(rtcheck("check", SAMPLES / "cr-pr-compliant", "--protocol", "escc-induction-icrt-ccrt", "--arm", "cr-pr", "--format", "json"))["cord-max"]
    without = checks_of(rtcheck("check", folder, "--protocol", "escc-induction-icrt-ccrt", "--arm", "cr-pr", "--format", "json"))["cord-max"]
    assert without["status"] == "not_evaluated"
    overlay = write_overlay(tmp_path, structures={"SpinalCord": {"add_aliases": ["MEDULLA_SP"], "source": "our planning system's template"}})
    result = rtcheck("check", folder, "--protocol", overlay, "--arm", "cr-pr", "--format", "json")
    assert result.exit_code == 0, result.output
    cord_max = checks_of(result)["cord-max"]
    assert cord_max["roi_name"] == "MEDULLA_SP" and cord_max["status"] == "per_protocol"
    assert cord_max["value"] == original["value"]
    assert "SpinalCord" in find_protocol(str(overlay)).structures["SpinalCord"].aliases  # added, not replaced


def test_show_prints_the_merged_protocol_and_where_each_value_came_from(tmp_path):
    overlay = write_overlay(
        tmp_path,
        structures={"Heart": {"aliases": ["HEART_SITE"], "source": "template"}},
        add_structures={"Esophagus": {"aliases": ["Esophagus"], "role": "oar"}},
        constraints={"cord-max": {"per_protocol": "<= 40 Gy", "source": "site cord policy"}},
        arms={"sd-pd": {
            "constraints": {"heart-mean": {"per_protocol": "<= 20 Gy", "source": "site heart policy for SIB"}},
            "add_constraints": [{"id": "esophagus-mean", "structure": "Esophagus", "metric": "Mean[Gy]", "per_protocol": "<= 34 Gy", "source": "site"}],
        }},
    )
    text = rtcheck("protocols", "show", overlay)
    assert text.exit_code == 0, text.output
    lines = text.stdout.splitlines()
    seed_sha = hashlib.sha256(SEED.read_bytes()).hexdigest()
    assert f"  extends protocol escc-induction-icrt-ccrt: {SEED} (sha256 {seed_sha})" in lines
    assert f"  Heart [oar, TG-263 Heart] <- HEART_SITE [aliases from {overlay}]" in lines
    assert any(line.startswith("  Esophagus [oar") and line.endswith(f"[from {overlay}]") for line in lines)
    assert f"  cord-max: SpinalCord D0.03cc[Gy] <= 40 Gy [per_protocol, source from {overlay}]" in lines
    # An organ's constraint without a kind is graded if contoured, and says so.
    assert f"  esophagus-mean: Esophagus Mean[Gy] <= 34 Gy [graded-if-contoured] [from {overlay}]" in lines
    assert "  lungs-v20: Lungs V20Gy[%] < 25 %; variation <= 35 %" in lines  # unchanged: no mark
    # The per-arm change applies to its arm only.
    heart = [line for line in lines if line.startswith("  heart-mean:")]
    assert heart == ["  heart-mean: Heart Mean[Gy] <= 25 Gy", f"  heart-mean: Heart Mean[Gy] <= 20 Gy [per_protocol, source from {overlay}]"]

    doc = json.loads(rtcheck("protocols", "show", overlay, "--format", "json").stdout)
    assert doc["id"] == "site-overlay" and doc["sha256"] == hashlib.sha256(overlay.read_bytes()).hexdigest()
    assert doc["extends"] == [{"kind": "protocol", "id": "escc-induction-icrt-ccrt", "title": find_protocol("escc-induction-icrt-ccrt").title, "path": str(SEED), "sha256": seed_sha}]
    arms = {a["id"]: {c["id"]: c for c in a["constraints"]} for a in doc["arms"]}
    assert arms["cr-pr"]["cord-max"]["origin"] == {"entry": str(SEED), "values": {"per_protocol": str(overlay), "source": str(overlay)}}
    assert arms["cr-pr"]["lungs-v20"]["origin"] == {"entry": str(SEED), "values": {}}
    assert arms["cr-pr"]["heart-mean"]["per_protocol"] == "<= 25 Gy"
    assert arms["sd-pd"]["heart-mean"]["per_protocol"] == "<= 20 Gy"
    assert arms["sd-pd"]["esophagus-mean"]["origin"]["entry"] == str(overlay)
    assert "esophagus-mean" not in arms["cr-pr"]
    structures = {s["name"]: s for s in doc["structures"]}
    assert structures["Heart"]["aliases"] == ["HEART_SITE"]
    assert structures["Heart"]["origin"] == {"entry": str(SEED), "values": {"aliases": str(overlay)}}


def test_site_sets_the_dose_of_a_site_set_prescription(tmp_path):
    fixed = write_overlay(
        tmp_path, extends="escc-adebrelimab-apatinib-2l",
        arms={"rt-cohort": {"prescriptions": {"PTV": {
            "total_dose_gy": 50.4, "fractions": 28, "dose_per_fraction_gy": 1.8,
            "tolerance": {"per_protocol_pct": 1, "variation_acceptable_pct": 5, "source": "site"}, "source": "site standard schedule"}}}},
    )
    [result] = check_paths([SAMPLES / "cr-pr-compliant"], str(fixed), "rt-cohort")
    rx = {c.id: c for c in result.checks if c.kind == "prescription"}
    assert set(rx) == {"rx-ptv-total-dose", "rx-ptv-fractions", "rx-ptv-dose-per-fraction"}
    assert all(c.status.value == "per_protocol" and c.message.startswith("the site's prescription") for c in rx.values())
    assert result.verdict.value == "per_protocol"
    # The site's own EQD2 window: inside it is per protocol, outside a deviation.
    eqd2 = 50.4 * (1.8 + 10) / 12
    for low, high, status in ((eqd2 - 1, eqd2 + 1, "per_protocol"), (eqd2 + 1, eqd2 + 5, "deviation_unacceptable")):
        window = write_overlay(
            tmp_path, f"window-{status}.yaml", extends=str(ADEBRELIMAB),
            arms={"rt-cohort": {"prescriptions": {"PTV": {"window": {"eqd2_gy": {"min": round(low, 2), "max": round(high, 2)}, "alpha_beta_gy": 10, "source": "site policy"}, "source": "site"}}}},
        )
        [result] = check_paths([SAMPLES / "cr-pr-compliant"], str(window), "rt-cohort")
        check = next(c for c in result.checks if c.id == "rx-ptv-eqd2")
        assert check.status.value == status and "site's window" in check.message
        assert check.value == pytest.approx(eqd2, abs=1e-6)


def test_overlay_of_an_overlay_by_id_through_the_protocol_path(tmp_path, monkeypatch):
    write_overlay(tmp_path, "first.yaml", id="site-first", constraints={"cord-max": {"per_protocol": "<= 40 Gy", "source": "first"}})
    second = write_overlay(tmp_path, "second.yaml", id="site-second", extends="site-first",
                           constraints={"heart-mean": {"per_protocol": "<= 20 Gy", "source": "second"}})
    monkeypatch.setenv("RTCHECK_PROTOCOL_PATH", str(tmp_path))
    protocol = find_protocol("site-second")
    assert [b["id"] for b in protocol.bases] == ["escc-induction-icrt-ccrt", "site-first"]
    assert protocol.bases[1]["sha256"] == hashlib.sha256((tmp_path / "first.yaml").read_bytes()).hexdigest()
    cord = next(c for c in protocol.arm("cr-pr").constraints if c.id == "cord-max")
    heart = next(c for c in protocol.arm("cr-pr").constraints if c.id == "heart-mean")
    assert (str(cord.per_protocol), str(heart.per_protocol)) == ("<= 40 Gy", "<= 20 Gy")
    assert protocol.provenance["arms.cr-pr.constraints.cord-max.per_protocol"] == str(tmp_path / "first.yaml")
    assert protocol.provenance["arms.cr-pr.constraints.heart-mean.per_protocol"] == str(second)
    listing = rtcheck("protocols")
    assert "(site overlay of site-first)" in listing.stdout
    result = rtcheck("check", SAMPLES / "cr-pr-compliant", "--protocol", "site-second", "--arm", "cr-pr")
    assert result.exit_code == 0, result.output


def test_cycles_are_refused(tmp_path, monkeypatch):
    write_overlay(tmp_path, "a.yaml", id="site-a", extends="site-b")
    write_overlay(tmp_path, "b.yaml", id="site-b", extends="site-a")
    monkeypatch.setenv("RTCHECK_PROTOCOL_PATH", str(tmp_path))
    with pytest.raises(ProtocolError, match="cycle") as excinfo:
        load_protocol_file(tmp_path / "a.yaml")
    assert excinfo.value.entry == "extends"
    result = rtcheck("protocols", "validate", tmp_path / "a.yaml")
    assert result.exit_code == 2 and "extend each other in a cycle" in result.stderr
    # By path too, and an overlay extending itself.
    write_overlay(tmp_path, "c.yaml", id="site-c", extends="d.yaml")
    write_overlay(tmp_path, "d.yaml", id="site-d", extends="c.yaml")
    with pytest.raises(ProtocolError, match="cycle"):
        load_protocol_file(tmp_path / "c.yaml")
    write_overlay(tmp_path, "self.yaml", id="site-self", extends="self.yaml")
    with pytest.raises(ProtocolError, match="cycle"):
        load_protocol_file(tmp_path / "self.yaml")


@pytest.mark.parametrize(
    "body, entry, words",
    [
        ({"constraints": {"lungs-v99": {"per_protocol": "< 10 %", "source": "s"}}}, "constraints.lungs-v99", "unknown constraint id 'lungs-v99'"),
        ({"constraints": {"lungs-v20": {"per_protocol": "< 10 Gy", "source": "s"}}}, "constraints.lungs-v20 (lungs-v20).per_protocol", "output unit %"),
        ({"constraints": {"lungs-v20": {"per_protocol": "< 10 %"}}}, "constraints.lungs-v20", "missing key(s): source"),
        ({"constraints": {"lungs-v20": {"metric": "V30Gy[%]", "source": "s"}}}, "constraints.lungs-v20", "unknown key(s): metric"),
        ({"constraints": {"cord-max": {"kind": "informational", "source": "s"}}}, "constraints.cord-max.kind", "needs a reason"),
        ({"structures": {"Medulla": {"aliases": ["M"], "source": "s"}}}, "structures.Medulla", "unknown structure 'Medulla'"),
        ({"structures": {"Heart": {"aliases": "Heart", "source": "s"}}}, "structures.Heart.aliases", "list of ROI names"),
        ({"add_structures": {"Heart": {"aliases": ["H"]}}}, "add_structures.Heart", "already defines"),
        ({"arms": {"cr-pr-2": {"constraints": {}}}}, "arms.cr-pr-2", "unknown arm 'cr-pr-2'"),
        ({"arms": {"cr-pr": {"constraints": {"pgtv-d95": {"per_protocol": ">= 90 %", "source": "s"}}}}}, "arms.cr-pr.constraints.pgtv-d95", "not in arm cr-pr"),
        ({"arms": {"cr-pr": {"prescriptions": {"PGTV": {"source": "s"}}}}}, "arms.cr-pr.prescriptions.PGTV", "prescribes nothing to 'PGTV'"),
        ({"arms": {"cr-pr": {"prescriptions": {"PTV": {"total_dose_gy": 50, "fractions": 25, "dose_per_fraction_gy": 2, "source": "s"}}}}},
         "arms.cr-pr.prescriptions.PTV.dose_per_fraction_gy", "the trial fixes this prescription's dose"),
        ({"arms": {"cr-pr": {"add_constraints": [{"id": "cord-max", "structure": "SpinalCord", "metric": "Max[Gy]", "per_protocol": "<= 40 Gy", "source": "s"}]}}},
         "arms.cr-pr.add_constraints[0]", "already has constraint 'cord-max'"),
        ({"arms": {"cr-pr": {"add_constraints": [{"id": "eso", "structure": "Esophagus", "metric": "Mean[Gy]", "per_protocol": "<= 34 Gy", "source": "s"}]}}},
         "arms.cr-pr.add_constraints[0] (eso).structure", "unknown structure 'Esophagus'"),
        ({"id": "escc-induction-icrt-ccrt"}, "id", "its own id"),
        ({"extends": "no-such-trial"}, "extends", "unknown protocol 'no-such-trial'"),
        ({"extends": "missing.yaml"}, "extends", "does not exist"),
        ({"extends_sha256": "0" * 64}, "extends_sha256", "not the one this overlay was written for"),
        ({"schema": "rtcheck.protocol/1"}, "schema", "rtcheck.overlay/1"),
        ({"extends": "escc-ql1706-lenvatinib-2l", "arms": {"ql1706-lenvatinib": {"add_constraints": []}}}, "arms", "cannot add radiotherapy"),
        ({"extends": "escc-adebrelimab-apatinib-2l", "arms": {"no-rt-cohort": {"prescriptions": {}}}}, "arms.no-rt-cohort", "cannot add radiotherapy"),
        ({"radiotherapy": "none"}, None, "unknown key(s): radiotherapy"),
    ],
)
def test_bad_overlay_entries_name_the_file_and_the_entry(tmp_path, body, entry, words):
    overlay = write_overlay(tmp_path, **body)
    with pytest.raises(ProtocolError) as excinfo:
        load_protocol_file(overlay)
    assert excinfo.value.source == str(overlay)
    assert excinfo.value.entry == entry
    assert words in excinfo.value.reason
    result = rtcheck("check", SAMPLES / "cr-pr-compliant", "--protocol", overlay, "--arm", "cr-pr")
    assert result.exit_code == 2
    assert result.stderr.strip() == f"rtcheck: error: {excinfo.value}"


def test_an_optional_constraint_needs_a_reason_and_says_it(tmp_path):
    overlay = write_overlay(tmp_path, constraints={"cord-max": {"kind": "informational", "reason": "cord assessed on the PRV", "source": "site QA"}})
    constraint = next(c for c in load_protocol_file(overlay).arm("cr-pr").constraints if c.id == "cord-max")
    assert constraint.kind is ConstraintKind.INFORMATIONAL
    assert "informational at this site: cord assessed on the PRV" in constraint.source
    # Removing the band of a constraint is explicit (null), and traced.
    overlay = write_overlay(tmp_path, "band.yaml", constraints={"lungs-v20": {"variation_acceptable": None, "source": "no minor band here"}})
    protocol = load_protocol_file(overlay)
    lungs = next(c for c in protocol.arm("cr-pr").constraints if c.id == "lungs-v20")
    assert lungs.variation_acceptable is None
    assert protocol.provenance["arms.cr-pr.constraints.lungs-v20.variation_acceptable"] == str(overlay)


def test_base_files_are_not_modified(tmp_path):
    before = {p: p.read_bytes() for p in (SEED, ADEBRELIMAB)}
    write_overlay(tmp_path, constraints={"lungs-v20": {"per_protocol": "< 10 %", "source": "s"}}, structures={"Heart": {"aliases": ["H"], "source": "s"}})
    load_protocol_file(tmp_path / "site.yaml")
    assert find_protocol("escc-induction-icrt-ccrt").structures["Heart"].aliases != ("H",)
    assert {p: p.read_bytes() for p in before} == before


def test_a_site_may_add_a_recovery_credit_to_a_cumulative_constraint(tmp_path):
    credit = {"steps": [{"after_months": 6, "credit_pct": 25}, {"after_months": 12, "credit_pct": 50}], "source": "site re-irradiation policy"}
    overlay = write_overlay(
        tmp_path, extends="escc-regional-recurrence",
        constraints={"cord-cumulative-eqd2": {"recovery_credit": credit, "source": "site applies the 6/12-month cord recovery rule"}},
    )
    protocol = load_protocol_file(overlay)
    [arm] = [a for a in protocol.arms.values() if any(c.id == "cord-cumulative-eqd2" for c in a.constraints)]
    cord = next(c for c in arm.constraints if c.id == "cord-cumulative-eqd2")
    base = next(c for c in find_protocol("escc-regional-recurrence").arm(arm.id).constraints if c.id == "cord-cumulative-eqd2")
    assert base.recovery_credit is None and cord.recovery_credit is not None
    assert protocol.provenance[f"arms.{arm.id}.constraints.cord-cumulative-eqd2.recovery_credit"] == str(overlay)
    # The credit is only for cumulative constraints: elsewhere the overlay entry is refused.
    bad = write_overlay(tmp_path, "bad.yaml", extends="escc-regional-recurrence",
                        constraints={"heart-mean": {"recovery_credit": credit, "source": "s"}})
    with pytest.raises(ProtocolError) as excinfo:
        load_protocol_file(bad)
    assert excinfo.value.entry.startswith("constraints.heart-mean")
