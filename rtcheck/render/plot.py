"""DVH plots for reports: one structure's cumulative DVH with its checks drawn on it, as inline SVG.

Axes: dose in Gy (x), volume in % of the structure's volume inside the dose grid
(y).  Each graded check is drawn where the evaluation placed it
(:class:`rtcheck.results.DvhMarker`), in its status colour and with a marker
shape of its own, so the plot also reads in black and white: the value as a
point (Mean/Max/Min, which have no volume: a point in a band above 100 % and
a dotted vertical line), the per-protocol threshold as a solid tick and the
variation-acceptable threshold as a dashed one.

matplotlib is imported inside :func:`dvh_svg` only, so checks without a report
do not pay for it; the figure is drawn on matplotlib's SVG canvas, never on a
display.
"""

from __future__ import annotations

import io
import re

import numpy as np

from rtcheck.dvh.histogram import DoseVolumeHistogram
from rtcheck.render.style import STATUS_STYLES
from rtcheck.results import CheckOutcome, DvhMarker
_TOP_Y = 118.0  # the y axis runs to here: above 100 % is the band for Mean/Max/Min
_BAND_Y = 110.0
_CURVE_POINTS = 600  # display resolution of the curve; the checks' values come from the full DVH


def _display_curve(dvh: DoseVolumeHistogram) -> tuple[np.ndarray, np.ndarray]:
    """The cumulative DVH (Gy, % of volume) at display resolution, keeping its exact ends."""
    dose, volume_cc = dvh.cumulative()
    volume = volume_cc / dvh.volume_cc * 100.0 if dvh.volume_cc > 0 else np.zeros_like(volume_cc)
    if dose.size > _CURVE_POINTS:
        grid = np.linspace(dose[0], dose[-1], _CURVE_POINTS)
        volume = np.interp(grid, dose, volume)
        dose = grid
    # From 0 Gy, where the whole structure receives at least the dose.
    return np.concatenate(([0.0], dose)), np.concatenate(([volume[0]], volume))


def dvh_svg(title: str, dvh: DoseVolumeHistogram, checks: list[CheckOutcome], *, labels: dict[str, str] | None = None, id_prefix: str = "plot") -> str:
    """An ``<svg>`` element (text, no XML prolog) of ``dvh`` with ``checks`` drawn on it.

    ``title`` is shown above the plot; ``labels`` maps check ids to the text written
    next to their markers (default the id).  Checks without a marker (not evaluated,
    prescription checks) are not drawn.  ``id_prefix`` prefixes the SVG's internal ids, so
    that several plots can share one HTML page.
    """
    import matplotlib
    from matplotlib.backends.backend_svg import FigureCanvasSVG
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    labels = labels or {}
    drawn: list[tuple[CheckOutcome, DvhMarker]] = [(c, c.marker) for c in checks if c.marker is not None and c.value is not None]
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "rtcheck", "font.size": 8}):
        figure = Figure(figsize=(5.2, 3.6))
        FigureCanvasSVG(figure)
        axes = figure.add_subplot()
        dose, volume = _display_curve(dvh)
        axes.plot(dose, volume, color="#222222", linewidth=1.4)
        top_dose = max([dvh.max_gy, *(m.dose_gy for _, m in drawn), *(t for _, m in drawn if m.free_axis == "dose" for t in m.thresholds.values())])
        span = max(top_dose, 1.0) * 1.05
        tick_x, tick_y = span * 0.018, 3.0
        for check, marker in drawn:
            style = STATUS_STYLES[check.status]
            colour = style.colour
            text = labels.get(check.id, check.id)
            styles = {"per_protocol": "-", "variation_acceptable": "--"}
            # Labels of points in the right quarter go to their left, inside the axes.
            side, align = (-1, "right") if marker.dose_gy > 0.75 * span else (1, "left")
            if marker.volume_pct is None:
                # A dose statistic has no volume: a dotted line across, its marker and limits in the band above 100 %.
                axes.axvline(marker.dose_gy, ymax=_BAND_Y / _TOP_Y, color=colour, linewidth=1.0, linestyle=":")
                for name, position in marker.thresholds.items():
                    axes.plot([position, position], [_BAND_Y - 4.0, _BAND_Y + 4.0], color=colour, linewidth=2.0, linestyle=styles[name])
                axes.plot([marker.dose_gy], [_BAND_Y], marker=style.marker, color=colour, markersize=6,
                          markeredgecolor="white", markeredgewidth=0.5, linestyle="none")
                axes.annotate(text, (marker.dose_gy, _BAND_Y), xytext=(5 * side, -9), textcoords="offset points", color=colour,
                              fontsize=6.5, ha=align)
                continue
            for name, position in marker.thresholds.items():
                if marker.free_axis == "volume":
                    axes.plot([marker.dose_gy - tick_x, marker.dose_gy + tick_x], [position, position], color=colour, linewidth=2.0, linestyle=styles[name])
                    axes.plot([marker.dose_gy, marker.dose_gy], [marker.volume_pct, position], color=colour, linewidth=0.6, linestyle=":")
                else:
                    axes.plot([position, position], [marker.volume_pct - tick_y, marker.volume_pct + tick_y], color=colour, linewidth=2.0, linestyle=styles[name])
                    axes.plot([marker.dose_gy, position], [marker.volume_pct, marker.volume_pct], color=colour, linewidth=0.6, linestyle=":")
            axes.plot([marker.dose_gy], [marker.volume_pct], marker=style.marker, color=colour, markersize=6,
                      markeredgecolor="white", markeredgewidth=0.5, linestyle="none")
            axes.annotate(text, (marker.dose_gy, marker.volume_pct), xytext=(5 * side, 4), textcoords="offset points", color=colour,
                          fontsize=6.5, ha=align)
        axes.set_xlim(0.0, span)
        axes.set_ylim(0.0, _TOP_Y)
        axes.set_yticks([0, 20, 40, 60, 80, 100])
        axes.set_xlabel("Dose [Gy]")
        axes.set_ylabel("Volume [% of structure]")
        axes.set_title(title, fontsize=9)
        axes.grid(True, color="#dddddd", linewidth=0.5)
        shown = [style for s, style in STATUS_STYLES.items() if style.marker and any(c.status is s for c, _ in drawn)]
        handles = [Line2D([], [], color=style.colour, marker=style.marker, linestyle="none", label=style.phrase) for style in shown]
        if drawn:
            handles += [
                Line2D([], [], color="#555555", linestyle="-", linewidth=2.0, label="per-protocol limit"),
                Line2D([], [], color="#555555", linestyle="--", linewidth=2.0, label="variation limit"),
            ]
            # Below the axes, so that it hides no part of the curve or of a marker.
            axes.legend(handles=handles, fontsize=6, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=len(handles), frameon=False)
        # Fixed margins (tight_layout would draw the figure once more, doubling the cost).
        figure.subplots_adjust(left=0.115, right=0.98, top=0.92, bottom=0.24)
        buffer = io.StringIO()
        figure.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    return _inline(buffer.getvalue(), id_prefix)


def _inline(svg: str, prefix: str) -> str:
    """The ``<svg>`` element alone, fit to be one of several in an HTML page.

    The XML prolog, DOCTYPE and the tool's RDF metadata go; every id (and each
    reference to one) gets ``prefix`` so that the ids of several plots do not clash.
    """
    svg = svg[svg.index("<svg"):]
    svg = re.sub(r"<metadata>.*?</metadata>\s*", "", svg, flags=re.S)
    tag = re.sub(r"[^A-Za-z0-9_-]", "_", prefix) or "plot"
    svg = re.sub(r'\bid="([^"]+)"', lambda m: f'id="{tag}-{m.group(1)}"', svg)
    svg = re.sub(r'url\(#([^)]+)\)', lambda m: f"url(#{tag}-{m.group(1)})", svg)
    return re.sub(r'xlink:href="#([^"]+)"', lambda m: f'xlink:href="#{tag}-{m.group(1)}"', svg)
