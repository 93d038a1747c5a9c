"""The dashboard's figures as inline SVG: a stored DVH with its checks (drawn by the report's own
:func:`rtcheck.render.plot.dvh_svg`), a criterion's distribution, a criterion's trend with its
control limits.  They draw what :mod:`rtcheck.store.cohort` computed; they compute nothing."""

from __future__ import annotations

import html
import io
import json

from rtcheck.render.plot import dvh_svg
from rtcheck.render.style import STATUS_STYLES
from rtcheck.results import CheckKind, CheckOutcome, DvhMarker, Status
from rtcheck.store.cohort import CriterionView, Trend
from rtcheck.store.models import CheckItem, DvhCurve
from rtcheck.store.record import CurveRecord

__all__ = ["distribution_svg", "stored_dvh_svg", "trend_svg"]


def _outcome(item: CheckItem) -> CheckOutcome:
    marker = DvhMarker(**json.loads(item.marker)) if item.marker else None
    return CheckOutcome(item.criterion, CheckKind(item.kind), item.structure, item.roi_name, item.metric, item.value, item.unit, item.per_protocol,
                        item.variation_acceptable, Status(item.status), item.message,
                        counts=item.required, source=item.source, marker=marker,
                        biology=item.biology, physical_value=item.physical_value)


def stored_dvh_svg(title: str, curve: DvhCurve, items: list[CheckItem], id_prefix: str) -> str:
    """The stored DVH of one structure with its (physical-dose) checks drawn on it, as in the HTML report."""
    histogram = CurveRecord(curve.structure, curve.roi_name, curve.bin_width_gy, curve.first_bin, curve.differential_cc, curve.volume_cc,
                            curve.outside_volume_cc, curve.min_gy, curve.max_gy, curve.mean_gy).histogram()
    # A value in EQD2 would not sit on the physical DVH drawn here.
    drawn = [_outcome(i) for i in items if i.kind == CheckKind.DVH.value and i.structure == curve.structure and not i.biology]
    return dvh_svg(title, histogram, drawn, id_prefix=id_prefix)


def distribution_svg(stats: CriterionView, width: int = 220, height: int = 56) -> str:
    """A small histogram of the cohort's values, this plan's value as a vertical line."""
    if stats.histogram is None:
        return ""
    counts, edges = stats.histogram
    low, high = edges[0], edges[-1]
    span = (high - low) or 1.0
    top = max(counts) or 1
    x = lambda value: 2 + (value - low) / span * (width - 4)  # noqa: E731
    bars = []
    for n, count in enumerate(counts):
        left, right = x(edges[n]), x(edges[n + 1]) if high > low else width - 2
        tall = (height - 14) * count / top
        bars.append(f'<rect x="{left:.1f}" y="{height - 12 - tall:.1f}" width="{max(right - left - 1, 1):.1f}" height="{tall:.1f}" '
                    f'fill="#8a9bb0"><title>{count} plan(s) in [{edges[n]:.4g}, {edges[n + 1]:.4g}] {html.escape(stats.unit)}</title></rect>')
    if stats.this_value is not None:
        colour = STATUS_STYLES[Status(stats.this_status)].colour if stats.this_status else "#000"
        at = x(min(max(stats.this_value, low), high))
        bars.append(f'<line x1="{at:.1f}" x2="{at:.1f}" y1="0" y2="{height - 12}" stroke="{colour}" stroke-width="2">'
                    f'<title>this plan: {stats.this_value:.4g} {html.escape(stats.unit)}</title></line>')
    labels = (f'<text x="2" y="{height - 1}" font-size="9">{low:.4g}</text>'
              f'<text x="{width - 2}" y="{height - 1}" font-size="9" text-anchor="end">{high:.4g} {html.escape(stats.unit)}</text>')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
            f'aria-label="distribution of {html.escape(stats.criterion)}">{"".join(bars)}{labels}</svg>')


def trend_svg(series: Trend, *, dates: bool = True) -> str:
    """The criterion's values in time order, coloured by status, with the mean and the control limits;
    without ``dates`` (anonymized) the points are numbered instead."""
    import matplotlib
    from matplotlib.backends.backend_svg import FigureCanvasSVG
    from matplotlib.figure import Figure

    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "rtcheck", "font.size": 8}):
        figure = Figure(figsize=(8.0, 3.4))
        FigureCanvasSVG(figure)
        axes = figure.add_subplot()
        positions = list(range(len(series.points)))
        axes.plot(positions, [p.value for p in series.points], color="#999999", linewidth=0.8)
        for status in Status:
            chosen = [(n, p.value) for n, p in enumerate(series.points) if p.status == status.value]
            if chosen:
                style = STATUS_STYLES[status]
                axes.plot([c[0] for c in chosen], [c[1] for c in chosen], linestyle="none", marker=style.marker or "D",
                          color=style.colour, markersize=5, label=style.phrase)
        outside = [(n, p.value) for n, p in enumerate(series.points) if p.outside]
        if outside:
            axes.plot([o[0] for o in outside], [o[1] for o in outside], linestyle="none", marker="o", markersize=11,
                      markerfacecolor="none", markeredgecolor="#000000", label="beyond the control limits")
        if series.limits is not None:
            limits = series.limits
            axes.axhline(limits.mean, color="#333333", linewidth=1.0, label=f"mean {limits.mean:.4g}")
            for value, name in ((limits.upper, "upper"), (limits.lower, "lower")):
                axes.axhline(value, color="#333333", linewidth=1.0, linestyle="--")
                axes.annotate(f"{name} control limit {value:.4g}", (0, value), xytext=(2, 2), textcoords="offset points", fontsize=6.5)
        step = max(1, len(positions) // 12)
        labels = [p.when.isoformat() if dates else str(n + 1) for n, p in enumerate(series.points)]
        axes.set_xticks(positions[::step], labels[::step], rotation=30, ha="right")
        axes.set_ylabel(f"{series.metric} [{series.unit}]")
        axes.grid(True, color="#dddddd", linewidth=0.5)
        if series.points:
            axes.legend(fontsize=6.5, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
        figure.subplots_adjust(left=0.08, right=0.76, top=0.95, bottom=0.25)
        buffer = io.StringIO()
        figure.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    svg = buffer.getvalue()
    return svg[svg.index("<svg"):]
