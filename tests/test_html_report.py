"""The HTML report (rtcheck check --html): contents, self-containment, anonymisation, escaping,
every sample plan, and what a real browser (headless Chromium) renders of it."""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
import sys
from datetime import datetime, timezone
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pydicom
import pytest
from lxml import html as lxml_html
from pydicom.sequence import Sequence

from cli_helpers import rtcheck
from conftest import require_program
from rtcheck.api import check_paths
from rtcheck.grading import CheckOptions
from rtcheck.render.html import render_html
from rtcheck.render.style import STATUS_WORDS
from rtcheck.results import Status

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "sample_plans"
PROTOCOL = "escc-induction-icrt-ccrt"
# Every sample plan with its arm and the verdict sample_plans/README.md gives it.
SAMPLE_VERDICTS = {
    "cr-pr-compliant": ("cr-pr", Status.PER_PROTOCOL),
    "sd-pd-compliant": ("sd-pd", Status.PER_PROTOCOL),
    "cr-pr-wrong-fractions": ("cr-pr", Status.DEVIATION_UNACCEPTABLE),
    "cr-pr-lung-v20-high": ("cr-pr", Status.DEVIATION_UNACCEPTABLE),
    "sd-pd-pgtv-undercovered": ("sd-pd", Status.DEVIATION_UNACCEPTABLE),
    "cr-pr-no-cord": ("cr-pr", Status.NOT_EVALUATED),
}
FIXED_TIME = datetime(2030, 5, 6, 7, 8, tzinfo=timezone.utc)


def _result(folder: str | Path, arm: str, **kwargs):
    [result] = check_paths([folder], PROTOCOL, arm, **kwargs)
    return result


@functools.cache
def _sample(folder: str):
    """The check of a sample plan, made once per session (tests that change a result use _result)."""
    return _result(SAMPLES / folder, SAMPLE_VERDICTS[folder][0])


def _text(node) -> str:
    return " ".join(node.text_content().split())


class _Resources(HTMLParser):
    """Every URL-bearing attribute of the document (src, href, srcset, data, poster, action, xlink:href) and @import/url() in CSS."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.styles: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name in ("src", "href", "srcset", "data", "poster", "action", "xlink:href", "background") and value is not None:
                self.urls.append(value)
        self._in_style = tag == "style"

    def handle_endtag(self, tag):
        self._in_style = False

    def handle_data(self, data):
        if self._in_style:
            self.styles.append(data)


# --------------------------------------------------------------------------- every sample plan


@pytest.mark.parametrize("folder", sorted(SAMPLE_VERDICTS))
def test_report_of_every_sample_plan(folder, tmp_path):
    """Each sample plan's report names its identity and protocol, lists every check with its status word
    in a row of the status's class, gives the verdict the README states, and one DVH plot per evaluated
    structure with the graded checks drawn in it."""
    verdict = SAMPLE_VERDICTS[folder][1]
    result = _sample(folder)
    assert result.verdict is verdict
    document = render_html([result], generated_at=FIXED_TIME)
    tree = lxml_html.fromstring(document)
    text = _text(tree)

    assert "Verdict: " in text and STATUS_WORDS[verdict] in _text(tree.xpath("//*[contains(@class,'verdict')]")[0])
    for expected in (result.patient_id, result.plan_label, result.plan_sop_instance_uid, result.structure_set_uid,
                     *result.dose_uids, result.protocol_id, result.protocol_sha256, result.arm, "2030-05-06", "2026-01-01"):
        assert expected and expected in text, expected
    # The patient name as written in DICOM (family^given) appears.
    assert result.patient_name and result.patient_name in text

    rows = {}
    for row in tree.xpath("//tr[td[contains(@class,'status')]]"):
        cells = [_text(td) for td in row.xpath("./td")]
        rows[cells[1]] = (row.get("class"), cells)
    assert set(rows) == {c.id for c in result.checks}
    for check in result.checks:
        css, cells = rows[check.id]
        assert css == check.status.value.replace("_", "-")
        assert STATUS_WORDS[check.status] in cells[0]
        if check.value is None:
            assert "-" == cells[4]
        else:
            number = float(re.match(r"[-0-9.]+", cells[4]).group())
            decimals = 0 if check.unit == "fx" else 2
            assert number == pytest.approx(check.value, abs=0.6 * 10**-decimals), (check.id, cells)

    figures = tree.xpath("//figure[contains(@class,'dvh')]")
    assert len(figures) == len(result.dvhs_by_structure) > 0
    for figure, structure in zip(figures, result.dvhs_by_structure):
        assert structure in _text(figure.xpath("./figcaption")[0])
        svg = figure.xpath(".//*[local-name()='svg']")
        assert len(svg) == 1
        # One annotation per check with a value: the check ids are written next to their markers.
        svg_text = " ".join(t.text_content() for t in svg[0].xpath(".//*[local-name()='text']"))
        for check in result.checks:
            if check.kind == "dvh" and check.structure == structure and check.value is not None:
                assert check.id in svg_text



def test_cli_writes_one_report_of_every_sample_plan(tmp_path):
    """`rtcheck check FOLDERS... --arm ARM --html FILE` for each arm's sample plans: one section per plan,
    each with its plan's verdict."""
    by_uid = {_sample(folder).plan_sop_instance_uid: folder for folder in SAMPLE_VERDICTS}
    seen = set()
    for arm in ("cr-pr", "sd-pd"):
        folders = [folder for folder, (a, _) in SAMPLE_VERDICTS.items() if a == arm]
        out = tmp_path / f"{arm}.html"
        cli = rtcheck("check", *(SAMPLES / f for f in folders), "--protocol", PROTOCOL, "--arm", arm, "--html", out)
        assert cli.exit_code == 1, cli.stderr
        sections = lxml_html.fromstring(out.read_text(encoding="utf-8")).xpath("//section[contains(@class,'plan')]")
        assert len(sections) == len(folders)
        for section in sections:
            [uid] = [u for u in by_uid if u in _text(section)]
            verdict = SAMPLE_VERDICTS[by_uid[uid]][1]
            assert STATUS_WORDS[verdict] in _text(section.xpath(".//*[contains(@class,'verdict')]")[0])
            seen.add(by_uid[uid])
    assert seen == set(SAMPLE_VERDICTS)


def test_not_evaluated_section_gives_the_reason():
    result = _sample("cr-pr-no-cord")
    missing = [c for c in result.checks if c.status is Status.NOT_EVALUATED]
    assert any(c.structure == "SpinalCord" and c.counts for c in missing)
    tree = lxml_html.fromstring(render_html([result]))
    heading = tree.xpath("//h2[normalize-space()='Not evaluated']")
    assert len(heading) == 1
    items = [_text(li) for li in heading[0].getnext().xpath("./li")]
    assert len(items) == len(missing)
    for check, item in zip(missing, items):
        assert item.startswith(check.id) and check.message in item
    assert any(item.startswith("cord-max") and "SpinalCord" in item for item in items)
    # With the cord contoured, cord-max is graded and leaves the section.
    complete = _sample("cr-pr-compliant")
    complete_tree = lxml_html.fromstring(render_html([complete]))
    [cord_row] = [r for r in complete_tree.xpath("//tr[td[contains(@class,'status')]]") if _text(r.xpath("./td")[1]) == "cord-max"]
    assert cord_row.get("class") == "per-protocol"
    complete_heading = complete_tree.xpath("//h2[normalize-space()='Not evaluated']")[0]
    assert not any(_text(li).startswith("cord-max") for li in complete_heading.getnext().xpath("./li"))


def test_prescription_table_compares_plan_and_protocol():
    result = _sample("cr-pr-wrong-fractions")
    tree = lxml_html.fromstring(render_html([result]))
    heading = tree.xpath("//h2[normalize-space()='Prescription and fractionation']")[0]
    section = []
    node = heading.getnext()
    while node is not None and node.tag != "h2":
        section.append(node)
        node = node.getnext()
    tables = [n for n in section if n.tag == "table"]
    assert len(tables) == 2
    plan_rows = [[_text(td) for td in tr.xpath("./td")] for tr in tables[0].xpath(".//tbody/tr")]
    assert plan_rows[0][1] == "50.00 Gy" and plan_rows[0][2] == "25 fx" and plan_rows[0][3] == "2.000 Gy"
    rows = {(_text(tr.xpath("./td")[1])): tr for tr in tables[1].xpath(".//tbody/tr")}
    fractions = rows["rx-ptv-fractions"]
    assert fractions.get("class") == "deviation-unacceptable"
    cells = [_text(td) for td in fractions.xpath("./td")]
    assert "DEVIATION" in cells[0] and cells[4] == "25 fx" and cells[5] == "= 28"


def test_plot_marks_sit_on_the_curve():
    """A V metric's point is drawn at (its dose, its value) and a D metric's at (its value, its volume):
    the markers the evaluation placed agree with the DVH the plot draws."""
    result = _sample("cr-pr-lung-v20-high")
    v20 = next(c for c in result.checks if c.id == "lungs-v20")
    assert v20.status is Status.DEVIATION_UNACCEPTABLE
    assert (v20.marker.dose_gy, v20.marker.free_axis) == (20.0, "volume")
    assert v20.marker.volume_pct == pytest.approx(v20.value)
    lungs = result.dvhs_by_structure["Lungs"]
    assert lungs.volume_at_dose_cc(20.0) / lungs.volume_cc * 100 == pytest.approx(v20.marker.volume_pct, rel=1e-9)
    assert v20.marker.thresholds == {"per_protocol": 25.0, "variation_acceptable": 35.0}
    for check in result.checks:
        marker = check.marker
        if marker is None or marker.volume_pct is None:
            continue
        dvh = result.dvhs_by_structure[check.structure]
        on_curve = dvh.volume_at_dose_cc(marker.dose_gy) / dvh.volume_cc * 100
        assert on_curve == pytest.approx(marker.volume_pct, abs=0.05), check.id


# --------------------------------------------------------------------------- self-contained, escaped, anonymized


def test_no_external_resources():
    results = [_sample("sd-pd-pgtv-undercovered"), _sample("cr-pr-no-cord")]
    document = render_html(results)
    parser = _Resources()
    parser.feed(document)
    # Only in-document references (#id, inside the SVGs) are allowed.
    assert parser.urls and all(url.startswith("#") for url in parser.urls), [u for u in parser.urls if not u.startswith("#")]
    css = " ".join(parser.styles)
    assert "@import" not in css and not re.search(r"url\((?!#)", css)
    assert not re.search(r"<(script|link|iframe|object|embed|img)\b", document, re.I)
    # Two plans: two sections, the second starting a new printed page.
    tree = lxml_html.fromstring(document)
    assert len(tree.xpath("//section[contains(@class,'plan')]")) == 2
    assert "section.plan + section.plan { break-before: page" in css
    # SVG ids are unique across the page.
    ids = tree.xpath("//@id")
    assert len(ids) == len(set(ids))


def _copy(folder: str, tmp_path: Path) -> Path:
    target = tmp_path / folder
    shutil.copytree(SAMPLES / folder, target)
    return target


def test_anonymize_removes_patient_identity_and_dates(tmp_path):
    """Patient ID and name written into the files (also in the folder name and a structure's name) and the
    plan/study dates are nowhere in the anonymized report; they are in the plain one."""
    patient_id, family, given = "PX-7734521", "Wellington", "Beatrix"
    folder = tmp_path / f"export-{patient_id}"
    shutil.copytree(SAMPLES / "cr-pr-compliant", folder)
    for name in ("RP.dcm", "RS.dcm", "RD.dcm"):
        ds = pydicom.dcmread(folder / name)
        ds.PatientID = patient_id
        ds.PatientName = f"{family}^{given}"
        ds.StudyDate = "20240117"
        if name == "RP.dcm":
            ds.RTPlanDate = "20240119"
        if name == "RS.dcm":
            item = next(i for i in ds.StructureSetROISequence if i.ROIName == "Heart")
            item.ROIName = f"Heart {family}"
        ds.save_as(folder / name, enforce_file_format=True)
    options = CheckOptions(structure_map=(("Heart", f"Heart {family}"),))
    result = _result(folder, "cr-pr", options=options)
    assert result.patient_id == patient_id and result.plan_date == "20240119" and result.study_date == "20240117"
    secret = [patient_id, family, given, "20240117", "2024-01-17", "20240119", "2024-01-19", "2030-05-06"]

    plain = render_html([result], generated_at=FIXED_TIME)
    for value in (patient_id, family, given, "2024-01-17", "2024-01-19", "2030-05-06"):
        assert value.lower() in plain.lower(), value

    anonymous = render_html([result], anonymize=True, generated_at=FIXED_TIME)
    for value in secret:
        assert value.lower() not in anonymous.lower(), value
    text = _text(lxml_html.fromstring(anonymous))
    assert "withheld (anonymized)" in text and "[anonymized]" in text
    # Still a full report: the checks, the UIDs and the protocol are there.
    assert result.plan_sop_instance_uid in text and result.protocol_sha256 in text
    assert all(c.id in text for c in result.checks)

    out = tmp_path / "anon.html"
    cli = rtcheck("check", folder, "--protocol", PROTOCOL, "--arm", "cr-pr", "--map", f"Heart=Heart {family}", "--html", out, "--anonymize")
    assert cli.exit_code == 0, cli.stderr
    written = out.read_text(encoding="utf-8")
    for value in secret[:-1]:
        assert value.lower() not in written.lower(), value


def test_malicious_roi_name_is_escaped(tmp_path):
    """An ROI and a plan label carrying markup are shown as text, never as elements or attributes."""
    folder = _copy("cr-pr-compliant", tmp_path)
    evil_roi = '<script>alert("roi")</script><img src=x onerror=alert(1)>'
    evil_label = "<u>ESO</u><hr>"  # an RT Plan Label holds 16 characters
    rs = pydicom.dcmread(folder / "RS.dcm")
    next(i for i in rs.StructureSetROISequence if i.ROIName == "SpinalCord").ROIName = evil_roi
    rs.save_as(folder / "RS.dcm", enforce_file_format=True)
    rp = pydicom.dcmread(folder / "RP.dcm")
    rp.RTPlanLabel = evil_label
    rp.save_as(folder / "RP.dcm", enforce_file_format=True)

    result = _result(folder, "cr-pr", options=CheckOptions(structure_map=(("SpinalCord", evil_roi),)))
    cord = next(c for c in result.checks if c.id == "cord-max")
    assert cord.roi_name == evil_roi and cord.value is not None
    document = render_html([result])
    tree = lxml_html.fromstring(document)
    assert not tree.xpath("//script") and not tree.xpath("//img") and not tree.xpath("//u") and not tree.xpath("//hr")
    assert not tree.xpath("//@onerror")
    text = tree.text_content()
    assert evil_roi in text and evil_label in text
    assert "<script>" not in document and "&lt;script&gt;" in document


def test_tps_comparison_section(tmp_path):
    """A dose with a DVHSequence: the report has the planning-system section with the flagged quantity;
    a dose without one has no such section."""
    from test_tps_compare import dvh_item, tps_curve_of

    from rtcheck.dicom.planset import build_dvh_set, load_inputs
    from rtcheck.dvh import compute_dvh

    folder = _copy("cr-pr-compliant", tmp_path)
    plan_set = build_dvh_set(load_inputs([folder]))
    rois = {roi.name: roi for roi in plan_set.structure_set.rois}
    heart = compute_dvh(rois["Heart"], plan_set.dose)
    ds = pydicom.dcmread(folder / "RD.dcm")
    ds.DVHSequence = Sequence([dvh_item(rois["Heart"].number, tps_curve_of(heart, 0.1, volume_factor=1.25), bin_width=0.1)])
    ds.save_as(folder / "RD.dcm", enforce_file_format=True)

    result = _result(folder, "cr-pr")
    assert [t.structure for t in result.tps_comparison] == ["Heart"]
    tree = lxml_html.fromstring(render_html([result]))
    heading = tree.xpath("//h2[normalize-space()='Planning system DVHs']")
    assert len(heading) == 1
    table = heading[0].getnext()
    while table.tag != "table":
        table = table.getnext()
    rows = [[_text(td) for td in tr.xpath("./td")] for tr in table.xpath(".//tbody/tr")]
    assert {r[1] for r in rows} == {"volume_cc [cc]", "mean_gy [Gy]", "d95_gy [Gy]", "d2cc_gy [Gy]"}
    volume = next(r for r in rows if r[1].startswith("volume_cc"))
    assert volume[0] == "Heart" and "ABOVE TOLERANCE" in volume[6]
    q = result.tps_comparison[0].quantities["volume_cc"]
    assert float(volume[3]) == pytest.approx(q.tps, abs=0.006) and float(volume[4]) == pytest.approx(q.difference, abs=0.006)
    assert "within tolerance" in next(r for r in rows if r[1].startswith("mean_gy"))[6]

    plain = lxml_html.fromstring(render_html([_sample("cr-pr-compliant")]))
    assert not plain.xpath("//h2[normalize-space()='Planning system DVHs']")


def test_biology_fields_are_shown_when_present():
    """A check carrying an EQD2 value (fields the radiobiology option adds) shows both values, and is not
    drawn on the physical DVH."""
    result = _result(SAMPLES / "cr-pr-compliant", "cr-pr")
    check = next(c for c in result.checks if c.id == "cord-max")
    check.biology = "EQD2, \u03b1/\u03b2 = 2 Gy"
    check.physical_value = check.value
    check.value = 12.3456
    tree = lxml_html.fromstring(render_html([result]))
    row = next(r for r in tree.xpath("//tr[td[contains(@class,'status')]]") if _text(r.xpath("./td")[1]) == "cord-max")
    cell = _text(row.xpath("./td")[4])
    assert cell.startswith("12.35 Gy") and "EQD2, \u03b1/\u03b2 = 2 Gy" in cell and f"physical {check.physical_value:.2f} Gy" in cell
    figure = next(f for f in tree.xpath("//figure") if _text(f.xpath("./figcaption")[0]).startswith("SpinalCord"))
    assert "not drawn" in _text(figure.xpath("./figcaption")[0])


def test_cli_refuses_to_overwrite_an_input_and_anonymize_needs_a_report(tmp_path):
    folder = _copy("cr-pr-compliant", tmp_path)
    before = (folder / "RP.dcm").read_bytes()
    refused = rtcheck("check", folder / "RP.dcm", folder / "RS.dcm", folder / "RD.dcm", "--protocol", PROTOCOL, "--arm", "cr-pr",
                      "--html", folder / "RP.dcm")
    assert refused.exit_code == 2 and "is one of the inputs" in refused.stderr
    assert (folder / "RP.dcm").read_bytes() == before
    alone = rtcheck("check", folder, "--protocol", PROTOCOL, "--arm", "cr-pr", "--anonymize")
    assert alone.exit_code == 2 and "--anonymize" in alone.stderr


def test_plain_check_and_version_do_not_import_matplotlib_or_weasyprint():
    """Start-up pays only for what is used: `rtcheck --version` and `rtcheck check` without a report import
    neither matplotlib nor WeasyPrint; with --html matplotlib is imported (the plots)."""
    probe = (
        "import sys, runpy\n"
        "sys.argv = ['rtcheck'] + sys.argv[1:]\n"
        "try:\n"
        "    runpy.run_module('rtcheck.cli', run_name='__main__')\n"
        "except SystemExit:\n"
        "    pass\n"
        "print('LOADED', sorted(m for m in ('matplotlib', 'weasyprint', 'pynetdicom', 'dask') if m in sys.modules), file=sys.stderr)\n"
    )
    sample = str(SAMPLES / "cr-pr-compliant")

    def loaded(*args: str) -> str:
        run = subprocess.run([sys.executable, "-c", probe, *args], capture_output=True, text=True, timeout=300, cwd=ROOT)
        return [line for line in run.stderr.splitlines() if line.startswith("LOADED")][-1]

    assert loaded("--version") == "LOADED []"
    assert loaded("check", sample, "--protocol", PROTOCOL, "--arm", "cr-pr") == "LOADED []"
    assert loaded("check", sample, "--protocol", PROTOCOL, "--arm", "cr-pr", "--format", "json") == "LOADED []"


# --------------------------------------------------------------------------- a real browser


def _chromium(chromium: str, profile: Path, *args: str) -> subprocess.CompletedProcess:
    command = [
        chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
        f"--user-data-dir={profile}", *args,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=300)


def test_chromium_renders_the_report(tmp_path):
    """Headless Chromium loads the report file: the DOM it renders holds the verdict, every check with its
    status and the plots; a screenshot is not blank and shows the status colours."""
    chromium = require_program("chromium", "chromium")
    result = _sample("sd-pd-pgtv-undercovered")
    report = tmp_path / "report.html"
    report.write_text(render_html([result], generated_at=FIXED_TIME), encoding="utf-8")

    dom = _chromium(chromium, tmp_path / "profile-dom", "--dump-dom", report.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    tree = lxml_html.fromstring(dom.stdout)
    text = _text(tree)
    assert "Verdict: \u2717 DEVIATION" in text
    rows = {_text(r.xpath("./td")[1]): _text(r.xpath("./td")[0]) for r in tree.xpath("//tr[td[contains(@class,'status')]]")}
    assert rows == {c.id: rows[c.id] for c in result.checks}
    for check in result.checks:
        assert STATUS_WORDS[check.status] in rows[check.id]
    assert len(tree.xpath("//figure//*[local-name()='svg']")) == len(result.dvhs_by_structure)

    png = tmp_path / "shot.png"
    shot = _chromium(chromium, tmp_path / "profile-shot", f"--screenshot={png}", "--window-size=1200,2000",
                     "--hide-scrollbars", report.as_uri())
    assert shot.returncode == 0 and png.is_file(), shot.stderr[-2000:]
    from matplotlib import image

    pixels = image.imread(png)[..., :3]
    assert pixels.shape[0] >= 1900 and pixels.shape[1] >= 1100
    non_white = (pixels < 0.9).any(axis=2).mean()
    assert 0.02 < non_white < 0.8, non_white
    assert pixels.std() > 0.05
    # The deviation rows' red (#c0171d) is on the page: colour is rendered, not only text.
    red = (np.abs(pixels - np.array([0xC0, 0x17, 0x1D]) / 255.0) < 0.08).all(axis=2).sum()
    assert red > 50, red


def test_anonymize_replaces_whole_identifiers_only(tmp_path):
    """A short patient ID must not eat into doses, UIDs or the protocol hash; standalone it is withheld."""
    result = _result(SAMPLES / "cr-pr-compliant", "cr-pr")
    result.patient_id = "5"
    result.notes.append("exported for patient 5 on 2026-01-01")
    page = render_html([result], anonymize=True, generated_at=FIXED_TIME)
    assert "exported for patient [anonymized] on [anonymized]" in page
    assert "[anonymized]0" not in page and "0[anonymized]" not in page
    for intact in (result.plan_sop_instance_uid, result.structure_set_uid, result.protocol_sha256, "50.40 Gy"):
        assert intact in page
