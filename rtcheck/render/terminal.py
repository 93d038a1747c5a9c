"""Human-readable terminal tables.  Statuses are words, so they read without colour."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from rtcheck import __version__
from rtcheck.render.style import STATUS_WORDS, not_counted_note, tally
from rtcheck.results import CheckResult, Status

Painter = Callable[[str, Status], str]
"""``paint(text, status)``: the text of a status word as the terminal should show it (coloured, say)."""


def format_value(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "fx":
        return f"{value:.0f} fx"
    return f"{value:.2f} {unit}"


def table(headers: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    return lines


def render_check(result: CheckResult, style: Painter | None = None) -> str:
    """Plain text of one plan's check; ``style(text, status)`` may colour status words."""
    paint: Painter = style or (lambda text, status: text)
    out = [
        f"rtcheck {__version__}",
        f"Plan     {result.plan_label or '(no label)'}  {result.plan_sop_instance_uid}  patient {result.patient_id or '-'}",
        f"Protocol {result.protocol_id}  arm {result.arm}: {result.arm_title}",
        f"         sha256 {result.protocol_sha256}",
        "",
        "Plan prescriptions (as read from the RT Plan):",
    ]
    for t in result.targets:
        dose = f"{t.dose_gy:.2f} Gy" if t.dose_gy is not None else "? Gy"
        fractions = f"{t.fractions} fx" if t.fractions is not None else "? fx"
        per = f"{t.dose_per_fraction_gy:.3f} Gy/fx" if t.dose_per_fraction_gy is not None else "? Gy/fx"
        out.append(f"  {t.name}: {dose} in {fractions} ({per}); dose from {t.sources.get('total_dose_gy', '?')}")
    if not result.targets:
        out.append("  none found")
    out.append("")
    rows = []
    for c in result.checks:
        structure = c.structure + (f" ({c.roi_name})" if c.roi_name and c.roi_name != c.structure else "")
        rows.append(
            [
                STATUS_WORDS[c.status] + (f" ({note})" if (note := not_counted_note(c)) else ""),
                c.id,
                structure,
                c.metric,
                format_value(c.value, c.unit),
                c.per_protocol,
                c.variation_acceptable or "-",
            ]
        )
    lines = table(["STATUS", "CHECK", "STRUCTURE (ROI)", "METRIC", "VALUE", "PER PROTOCOL", "VARIATION OK"], rows)
    out += lines[:2]
    for line, check in zip(lines[2:], result.checks):
        word = STATUS_WORDS[check.status]
        out.append(paint(word, check.status) + line[len(word):])
    biological = [c for c in result.checks if c.biology]
    if biological:
        out += ["", "EQD2/BED checks (linear-quadratic model, per voxel; thresholds in EQD2/BED Gy):"]
        for c in biological:
            physical = f"; physical dose of the current course: {format_value(c.physical_value, c.unit)}" if c.physical_value is not None else ""
            out.append(f"  {c.id}: {format_value(c.value, c.unit)} ({c.biology}){physical}")
    not_evaluated = [c for c in result.checks if c.status is Status.NOT_EVALUATED]
    if not_evaluated:
        out += ["", "Not evaluated:"]
        out += [f"  {c.id}: " + (f"({note}, not counted) " if (note := not_counted_note(c)) else "") + c.message for c in not_evaluated]
    if result.tps_comparison:
        from rtcheck.dvh.tps import TOLERANCE_TEXT as TPS_TOLERANCE_TEXT

        out += ["", "Planning system DVHs (RT Dose DVHSequence) against rtcheck's:"]
        flagged = [(comparison, comparison.quantities[name]) for comparison in result.tps_comparison for name in comparison.flagged]
        for comparison, q in flagged:
            relative = f", {q.relative_difference_pct:+.1f} %" if q.relative_difference_pct is not None else ""
            out.append(
                f"  {comparison.structure} ({comparison.roi_name}) {q.name}: rtcheck {q.rtcheck:.2f} {q.unit}, planning system {q.tps:.2f} {q.unit}, "
                f"difference {q.difference:+.2f} {q.unit}{relative} exceeds {q.tolerance:.2f} {q.unit}"
            )
        if not flagged:
            names = ", ".join(f"{t.structure} ({t.roi_name})" if t.roi_name != t.structure else t.structure for t in result.tps_comparison)
            out.append(f"  agree within tolerance: {names}")
        out.append(f"  tolerance: {TPS_TOLERANCE_TEXT}")
    if result.notes:
        out += ["", "Notes:"] + [f"  {n}" for n in result.notes]
    out += ["", "Verdict: " + paint(STATUS_WORDS[result.verdict], result.verdict) + f"  ({tally(result)})"]
    return "\n".join(out)


def render_checks_text(results: Sequence[CheckResult], style: Painter | None = None) -> str:
    """:func:`render_check` of every plan, a blank line between them."""
    return "\n\n".join(render_check(r, style) for r in results)
