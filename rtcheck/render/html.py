"""The check report as one self-contained, printable HTML file.

No external resource: the CSS is inline and the DVH plots are inline SVG
(:mod:`rtcheck.render.plot`).  Statuses are words with a symbol and a row
style of their own, so the report reads in black and white too.  Every text
taken from the inputs (ROI names, labels, notes, file paths) is escaped.

``anonymize`` withholds the patient's name and ID and every date (plan, study
and the report's own) from the header, and replaces the patient ID, the name
and its components (3 characters or more) and the dates wherever they occur in
other texts (notes, messages, file paths, ROI names).  DICOM UIDs are kept:
they identify the objects checked.
"""

from __future__ import annotations

import html
import re
from datetime import datetime, timezone

from rtcheck import __version__
from rtcheck.render.style import STATUS_STYLES, STATUS_WORDS, not_counted_note, tally
from rtcheck.render.terminal import format_value
from rtcheck.results import CheckOutcome, CheckResult, Status

WITHHELD = "withheld (anonymized)"

_CSS_RULES = """
@page { size: A4; margin: 14mm 12mm; }
* { box-sizing: border-box; }
body { font-family: "DejaVu Sans", "Liberation Sans", Arial, "Noto Sans CJK SC", "WenQuanYi Micro Hei", sans-serif; font-size: 10pt; color: #111; margin: 0 auto;
       max-width: 1100px; padding: 12px; line-height: 1.35; }
h1 { font-size: 16pt; margin: 0 0 6px; }
h2 { font-size: 12pt; margin: 16px 0 6px; border-bottom: 1px solid #888; padding-bottom: 2px; }
table { border-collapse: collapse; width: 100%; margin: 4px 0 8px; }
th, td { border: 1px solid #999; padding: 3px 5px; text-align: left; vertical-align: top; }
th { background: #eee; }
thead { display: table-header-group; }
tr { break-inside: avoid; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
table.identity th { width: 22%; }
.uid, .hash, .path { font-family: "DejaVu Sans Mono", monospace; font-size: 8pt; word-break: break-all; }
.status { font-weight: bold; white-space: nowrap; }
.status .symbol { display: inline-block; width: 1.2em; text-align: center; }
tr.per-protocol .status { color: var(--per-protocol); }
tr.variation-acceptable .status { color: var(--variation-acceptable); font-style: italic; }
tr.deviation-unacceptable .status { color: var(--deviation-unacceptable); text-decoration: underline; }
tr.not-evaluated .status { color: var(--not-evaluated); }
tr.variation-acceptable td:first-child { border-left: 4px dashed var(--variation-acceptable); }
tr.deviation-unacceptable td:first-child { border-left: 6px double var(--deviation-unacceptable); }
tr.not-evaluated td:first-child { border-left: 4px dotted var(--not-evaluated); }
tr.deviation-unacceptable { background: #fdecea; }
tr.variation-acceptable { background: #fff5e6; }
tr.not-evaluated { background: #f3eef9; }
.verdict { display: inline-block; border: 3px solid #111; padding: 4px 10px; font-size: 13pt; font-weight: bold; margin: 4px 0; }
.verdict.per-protocol { border-color: var(--per-protocol); color: var(--per-protocol); }
.verdict.variation-acceptable { border-color: var(--variation-acceptable); color: var(--variation-acceptable); border-style: dashed; }
.verdict.deviation-unacceptable { border-color: var(--deviation-unacceptable); color: var(--deviation-unacceptable); border-style: double; border-width: 6px; }
.verdict.not-evaluated { border-color: var(--not-evaluated); color: var(--not-evaluated); border-style: dotted; }
.small { font-size: 8pt; color: #444; }
.plots { display: flex; flex-wrap: wrap; gap: 8px; }
figure.dvh { margin: 0; width: calc(50% - 4px); break-inside: avoid; border: 1px solid #ccc; padding: 4px; }
figure.dvh svg { width: 100%; height: auto; display: block; }
figure.dvh figcaption { font-size: 8pt; }
ul { margin: 4px 0; padding-left: 20px; }
section.plan + section.plan { break-before: page; page-break-before: always; margin-top: 30px; border-top: 4px solid #444; }
footer { font-size: 8pt; color: #444; margin-top: 12px; }
@media print {
  body { max-width: none; padding: 0; font-size: 9pt; }
  section.plan + section.plan { margin-top: 0; border-top: none; }
  h2 { break-after: avoid; }
}
"""
# The status colours are the plots' too (one table), so table rows, verdict and DVH markers agree.
_CSS = ":root { " + " ".join(f"--{style.css_class}: {style.colour};" for style in STATUS_STYLES.values()) + " }\n" + _CSS_RULES


class _Redactor:
    """Escapes text for HTML; with anonymize, first replaces patient identifiers and dates in it."""

    def __init__(self, result: CheckResult, anonymize: bool) -> None:
        self.anonymize = anonymize
        tokens: set[str] = set()
        if anonymize:
            name = result.patient_name or ""
            tokens.update(t for t in (result.patient_id, name, name.replace("^", " ").strip()) if t)
            tokens.update(part for part in re.split(r"[\^\s,]+", name) if len(part) >= 3)
            for date in (result.plan_date, result.study_date):
                if len(date) == 8 and date.isdigit():
                    tokens.update({date, f"{date[:4]}-{date[4:6]}-{date[6:]}", f"{date[:4]}/{date[4:6]}/{date[6:]}"})
        ordered = sorted((t for t in tokens if t.strip()), key=len, reverse=True)
        # Whole tokens only: a short ID or a date must not eat into numbers and UIDs ("5" in "50.40 Gy").
        alternatives = "|".join(re.escape(t) for t in ordered)
        self._pattern = re.compile(rf"(?<![A-Za-z0-9])(?:{alternatives})(?![A-Za-z0-9])", re.IGNORECASE) if ordered else None

    def text(self, value: object) -> str:
        """``value`` as escaped HTML text, with identifiers replaced when anonymizing."""
        plain = "" if value is None else str(value)
        if self._pattern is not None:
            plain = self._pattern.sub("[anonymized]", plain)
        return html.escape(plain)

    @staticmethod
    def exact(value: object) -> str:
        """``value`` escaped but never redacted: UIDs, hashes, numbers (identifiers are not in them)."""
        return html.escape("" if value is None else str(value))

    def plain(self, value: object) -> str:
        """Like :meth:`text` but not escaped (for the SVG plots, whose writer escapes)."""
        plain = "" if value is None else str(value)
        return self._pattern.sub("[anonymized]", plain) if self._pattern is not None else plain


def _date(value: str) -> str:
    """A DICOM DA (YYYYMMDD) as YYYY-MM-DD; anything else as written."""
    return f"{value[:4]}-{value[4:6]}-{value[6:]}" if len(value) == 8 and value.isdigit() else value


def _status_cell(status: Status, note: str = "") -> str:
    optional = f' <span class="small">({note})</span>' if note else ""
    style = STATUS_STYLES[status]
    return f'<td class="status"><span class="symbol">{style.symbol}</span> {style.word}{optional}</td>'


def _row(status: Status, cells: list[str], note: str = "") -> str:
    return f'<tr class="{STATUS_STYLES[status].css_class}">{_status_cell(status, note)}{"".join(cells)}</tr>'


def _value_cell(check: CheckOutcome, esc: _Redactor) -> str:
    text = esc.exact(format_value(check.value, check.unit))
    biology = getattr(check, "biology", None)
    physical = getattr(check, "physical_value", None)
    if biology:
        extra = esc.text(biology)
        if physical is not None:
            extra += f"; physical {esc.exact(format_value(physical, check.unit))}"
        text += f'<br><span class="small">{extra}</span>'
    return f'<td class="num">{text}</td>'


def _header(result: CheckResult, esc: _Redactor, anonymize: bool, generated_at: datetime) -> str:
    def row(label: str, value: str, css: str = "") -> str:
        cell = f'<td class="{css}">' if css else "<td>"
        return f"<tr><th>{label}</th>{cell}{value}</td></tr>"

    patient_id = WITHHELD if anonymize else esc.text(result.patient_id or "-")
    patient_name = WITHHELD if anonymize else esc.text(result.patient_name or "-")
    plan_date = WITHHELD if anonymize else esc.text(_date(result.plan_date) or "-")
    study_date = WITHHELD if anonymize else esc.text(_date(result.study_date) or "-")
    report_date = WITHHELD if anonymize else esc.text(generated_at.strftime("%Y-%m-%d %H:%M %Z").strip())
    rows = [
        row("Patient ID", patient_id),
        row("Patient name", patient_name),
        row("Plan label", esc.text(result.plan_label or "(no label)")),
        row("Plan SOP Instance UID", esc.exact(result.plan_sop_instance_uid), "uid"),
        row("Plan date / study date", f"{plan_date} / {study_date}"),
        row("Structure set UID", esc.exact(result.structure_set_uid or "-"), "uid"),
        row("Dose UID(s)", "<br>".join(esc.exact(u) for u in result.dose_uids) or "-", "uid"),
        row("Protocol", f"{esc.text(result.protocol_id)}: {esc.text(result.protocol_title)}"),
        row("Arm", f"{esc.text(result.arm)}: {esc.text(result.arm_title)}"),
        row("Protocol file sha256", esc.exact(result.protocol_sha256), "hash"),
        row("rtcheck version", esc.exact(__version__)),
        row("Report date", report_date),
    ]
    return '<table class="identity">' + "".join(rows) + "</table>"


def _verdict(result: CheckResult) -> str:
    v = result.verdict
    return (
        f'<p><span class="verdict {STATUS_STYLES[v].css_class}">Verdict: {STATUS_STYLES[v].symbol} {STATUS_STYLES[v].word}</span></p>'
        f'<p class="small">{html.escape(tally(result))}</p>'
    )


def _prescriptions(result: CheckResult, esc: _Redactor) -> str:
    out = ["<h2>Prescription and fractionation</h2>"]
    out.append("<p>As read from the RT Plan:</p>")
    if result.targets:
        out.append("<table><thead><tr><th>Plan target</th><th>Total dose</th><th>Fractions</th><th>Dose per fraction</th><th>Source</th></tr></thead><tbody>")
        for t in result.targets:
            out.append(
                f"<tr><td>{esc.text(t.name)}</td><td class=\"num\">{esc.exact(format_value(t.dose_gy, 'Gy'))}</td>"
                f"<td class=\"num\">{esc.exact(format_value(t.fractions, 'fx'))}</td>"
                f"<td class=\"num\">{esc.exact('-' if t.dose_per_fraction_gy is None else f'{t.dose_per_fraction_gy:.3f} Gy')}</td>"
                f"<td class=\"small\">{esc.text('; '.join(f'{k}: {v}' for k, v in t.sources.items()))}</td></tr>"
            )
        out.append("</tbody></table>")
    else:
        out.append("<p>No prescription found in the RT Plan.</p>")
    checks = [c for c in result.checks if c.kind == "prescription"]
    if checks:
        out.append("<p>Plan against protocol:</p>")
        out.append(_check_table(checks, esc, prescription=True))
    return "".join(out)


def _check_table(checks: list[CheckOutcome], esc: _Redactor, *, prescription: bool = False) -> str:
    first = "Target" if prescription else "Structure (ROI)"
    head = (
        f"<table><thead><tr><th>Status</th><th>Check</th><th>{first}</th><th>{'Quantity' if prescription else 'Metric'}</th>"
        "<th>Plan value</th><th>Per protocol</th><th>Variation acceptable</th></tr></thead><tbody>"
    )
    rows = []
    for c in checks:
        structure = esc.text(c.structure)
        if c.roi_name and c.roi_name != c.structure:
            structure += f' <span class="small">({esc.text(c.roi_name)})</span>'
        rows.append(
            _row(
                c.status,
                [
                    f"<td>{esc.text(c.id)}</td>",
                    f"<td>{structure}</td>",
                    f"<td>{esc.text(c.metric)}</td>",
                    _value_cell(c, esc),
                    f"<td>{esc.text(c.per_protocol)}</td>",
                    f"<td>{esc.text(c.variation_acceptable or '-')}</td>",
                ],
                not_counted_note(c),
            )
        )
    return head + "".join(rows) + "</tbody></table>"


def _not_evaluated(result: CheckResult, esc: _Redactor) -> str:
    missing = [c for c in result.checks if c.status is Status.NOT_EVALUATED]
    if not missing:
        return '<h2>Not evaluated</h2><p>Every check was evaluated.</p>'
    items = "".join(
        f"<li><strong>{esc.text(c.id)}</strong> ({esc.text(c.structure)} {esc.text(c.metric)}"
        f"{(', ' + note + ', not counted') if (note := not_counted_note(c)) else ''}): {esc.text(c.message)}</li>"
        for c in missing
    )
    return f'<h2>Not evaluated</h2><ul class="not-evaluated">{items}</ul>'


def _plots(result: CheckResult, esc: _Redactor, plan_index: int) -> str:
    if not result.dvhs_by_structure:
        return "<h2>DVH</h2><p>No structure was evaluated.</p>"
    from rtcheck.render.plot import dvh_svg

    out = [
        "<h2>DVH</h2>",
        '<p class="small">Cumulative DVH of each evaluated structure (volume in % of the part inside the dose grid). '
        "Each check is drawn in its status colour: the value as a point (Mean/Max/Min, which have no volume: in the band "
        "above 100 %, with a dotted vertical line), "
        "the per-protocol limit as a solid tick, the variation limit as a dashed one; "
        "circle = per protocol, square = variation acceptable, cross = deviation unacceptable.</p>",
        '<div class="plots">',
    ]
    roi_names = {s.structure: s.roi_name for s in result.structures}
    volumes = {s.structure: s.volume_cc for s in result.structures}
    for index, (structure, dvh) in enumerate(result.dvhs_by_structure.items()):
        checks = [c for c in result.checks if c.kind == "dvh" and c.structure == structure]
        # A value in EQD2 would not sit on the physical DVH drawn here.
        physical = [c for c in checks if not getattr(c, "biology", None)]
        roi = roi_names.get(structure, "")
        title = esc.plain(structure + (f" ({roi})" if roi and roi != structure else ""))
        svg = dvh_svg(title, dvh, physical, id_prefix=f"p{plan_index}s{index}")
        caption = f"{esc.text(structure)}"
        if roi and roi != structure:
            caption += f" ({esc.text(roi)})"
        if structure in volumes:
            caption += f", {volumes[structure]:.2f} cc"
        states = "; ".join(f"{esc.text(c.id)}: {STATUS_WORDS[c.status]}" for c in checks)
        if states:
            caption += f" &mdash; {states}"
        skipped = [c.id for c in checks if c not in physical]
        if skipped:
            caption += f" (not drawn, biologically weighted: {esc.text(', '.join(skipped))})"
        out.append(f'<figure class="dvh">{svg}<figcaption>{caption}</figcaption></figure>')
    out.append("</div>")
    return "".join(out)


def _structures(result: CheckResult, esc: _Redactor) -> str:
    if not result.structures:
        return ""
    rows = "".join(
        f"<tr><td>{esc.text(s.structure)}</td><td>{esc.text(s.roi_name)}</td><td class=\"num\">{s.volume_cc:.2f}</td>"
        f"<td class=\"num\">{s.outside_dose_grid_pct:.1f}</td><td class=\"num\">{s.min_gy:.2f}</td>"
        f"<td class=\"num\">{s.mean_gy:.2f}</td><td class=\"num\">{s.max_gy:.2f}</td></tr>"
        for s in result.structures
    )
    return (
        "<h2>Structures</h2><table><thead><tr><th>Structure</th><th>ROI</th><th>Volume [cc]</th><th>Outside dose grid [%]</th>"
        f"<th>Min [Gy]</th><th>Mean [Gy]</th><th>Max [Gy]</th></tr></thead><tbody>{rows}</tbody></table>"
    )


def _tps(result: CheckResult, esc: _Redactor) -> str:
    if not result.tps_comparison:
        return ""
    from rtcheck.dvh.tps import TOLERANCE_TEXT

    def number(value: float | None, signed: bool = False) -> str:
        return "-" if value is None else (f"{value:+.2f}" if signed else f"{value:.2f}")

    rows = []
    for comparison in result.tps_comparison:
        name = esc.text(comparison.structure or comparison.roi_name)
        if comparison.roi_name and comparison.roi_name != comparison.structure:
            name += f' <span class="small">({esc.text(comparison.roi_name)})</span>'
        for q in comparison.quantities.values():
            if q.flagged:
                verdict = '<td class="status"><span class="symbol">!</span> ABOVE TOLERANCE</td>'
            elif q.difference is None:
                verdict = f'<td class="small">not compared: {esc.text(q.reason or "")}</td>'
            else:
                verdict = "<td>within tolerance</td>"
            css = ' class="deviation-unacceptable"' if q.flagged else ""
            rows.append(
                f"<tr{css}><td>{name}</td><td>{esc.text(q.name)} [{esc.text(q.unit)}]</td><td class=\"num\">{number(q.rtcheck)}</td>"
                f"<td class=\"num\">{number(q.tps)}</td><td class=\"num\">{number(q.difference, True)}</td>"
                f"<td class=\"num\">{number(q.tolerance)}</td>{verdict}</tr>"
            )
    notes = "".join(f"<li>{esc.text(n)}</li>" for c in result.tps_comparison for n in c.notes)
    return (
        "<h2>Planning system DVHs</h2>"
        "<p>rtcheck's DVH against the planning system's own (RT Dose DVHSequence). Information for the physicist: "
        "a difference above tolerance does not change the verdict.</p>"
        "<table><thead><tr><th>Structure (ROI)</th><th>Quantity</th><th>rtcheck</th><th>Planning system</th>"
        "<th>Difference</th><th>Tolerance</th><th>Agreement</th></tr></thead><tbody>"
        + "".join(rows)
        + f"</tbody></table><p class=\"small\">Tolerance: {esc.text(TOLERANCE_TEXT)}.</p>"
        + (f"<ul>{notes}</ul>" if notes else "")
    )


def _notes(result: CheckResult, esc: _Redactor) -> str:
    out = []
    if result.notes:
        out.append("<h2>Notes</h2><ul>" + "".join(f"<li>{esc.text(n)}</li>" for n in result.notes) + "</ul>")
    if result.input_files:
        out.append('<h2>Inputs</h2><ul class="path">' + "".join(f"<li>{esc.text(p)}</li>" for p in result.input_files) + "</ul>")
    return "".join(out)


def _plan_section(result: CheckResult, index: int, anonymize: bool, generated_at: datetime) -> str:
    esc = _Redactor(result, anonymize)
    dvh_checks = [c for c in result.checks if c.kind != "prescription"]
    parts = [
        f'<section class="plan" id="plan-{index + 1}">',
        f"<h1>Protocol compliance: plan {esc.text(result.plan_label or '(no label)')}</h1>",
        _verdict(result),
        _header(result, esc, anonymize, generated_at),
        _prescriptions(result, esc),
        "<h2>Constraints</h2>",
        _check_table(dvh_checks, esc) if dvh_checks else "<p>The arm has no DVH constraints.</p>",
        _not_evaluated(result, esc),
        _plots(result, esc, index),
        _structures(result, esc),
        _tps(result, esc),
        _notes(result, esc),
        f'<footer>rtcheck {html.escape(__version__)}. Statuses: '
        + ", ".join(f"{style.symbol} {style.phrase}" for style in STATUS_STYLES.values())
        + ". "
        "A value that could not be computed is never a pass.</footer>",
        "</section>",
    ]
    return "\n".join(parts)


def render_html(results: list[CheckResult], *, anonymize: bool = False, generated_at: datetime | None = None) -> str:
    """One self-contained HTML document reporting ``results`` (one section per plan, page breaks between them).

    ``anonymize`` withholds patient name, ID and dates (see the module's docstring);
    ``generated_at`` is the report date shown (default now, UTC).
    """
    when = generated_at or datetime.now(timezone.utc)
    if len(results) == 1:
        r = results[0]
        title = "rtcheck report: " + _Redactor(r, anonymize).text(f"{r.plan_label or r.plan_sop_instance_uid} [{r.protocol_id} {r.arm}]")
    else:
        title = f"rtcheck report: {len(results)} plans"
    body = "\n".join(_plan_section(r, i, anonymize, when) for i, r in enumerate(results)) or "<p>No plan was checked.</p>"
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{title}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n"
    )


# Public for the review dashboard (rtcheck.web), which withholds identifiers by the report's one rule.
Redactor = _Redactor
