# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Line charts as inline SVG, written by hand: no library, no network, and the same model gives
the same bytes (every number is formatted with a fixed precision).

A chart has a plot area filled with :data:`PLOT_BACKGROUND`, one polyline per series (colour per
version), its time axis marked with the weight steps (grey dashed lines, labelled ``10%``...) and
the rollbacks (red lines, labelled ``rollback``).
"""

from __future__ import annotations

import html

WIDTH = 600
HEIGHT = 260
MARGIN_LEFT = 64
MARGIN_RIGHT = 16
MARGIN_TOP = 34
MARGIN_BOTTOM = 34
PLOT_BACKGROUND = "#eef3fb"
SERIES_COLOURS = ("#1f5fbf", "#e8730c", "#2a9d3a", "#8e44ad", "#7f7f7f")
ROLLBACK_COLOUR = "#d0021b"
STEP_COLOUR = "#6b7280"


def _number(value: float) -> str:
    text = "%.2f" % value
    return text.rstrip("0").rstrip(".") if "." in text else text


def _label(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 100:
        return "%.0f" % value
    if abs(value) >= 1:
        return _number(value)
    return ("%.4f" % value).rstrip("0").rstrip(".")


def series_colour(index: int) -> str:
    return SERIES_COLOURS[index % len(SERIES_COLOURS)]


def line_chart(title, unit, series, start, end, steps=(), rollbacks=(), colours=None) -> str:
    """An SVG line chart. ``series``: name to ``[[t, value], ...]``; ``steps``: ``(t, label)`` of weight
    changes; ``rollbacks``: times of rollbacks; ``colours``: name to colour (else by order)."""
    plot_width = WIDTH - MARGIN_LEFT - MARGIN_RIGHT
    plot_height = HEIGHT - MARGIN_TOP - MARGIN_BOTTOM
    span = max(end - start, 1e-9)
    values = [value for points in series.values() for unused_moment, value in points]
    top = max(values) if values else 1.0
    top = top * 1.1 if top > 0 else 1.0

    def x_of(moment):
        return MARGIN_LEFT + (min(max(moment, start), end) - start) / span * plot_width

    def y_of(value):
        return MARGIN_TOP + plot_height - (value / top) * plot_height

    parts = [
        '<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" role="img" '
        'aria-label="%s">' % (WIDTH, HEIGHT, WIDTH, HEIGHT, html.escape(title)),
        '<rect x="0" y="0" width="%d" height="%d" fill="#ffffff"/>' % (WIDTH, HEIGHT),
        '<text x="%d" y="20" font-size="14" font-weight="bold" fill="#111">%s (%s)</text>'
        % (MARGIN_LEFT, html.escape(title), html.escape(unit)),
        '<rect class="plot" x="%d" y="%d" width="%d" height="%d" fill="%s"/>'
        % (MARGIN_LEFT, MARGIN_TOP, plot_width, plot_height, PLOT_BACKGROUND),
    ]
    for fraction in (0.0, 0.25, 0.5, 0.75, 1.0):
        y = MARGIN_TOP + plot_height - fraction * plot_height
        parts.append(
            '<line x1="%d" y1="%s" x2="%d" y2="%s" stroke="#cfd8e6" stroke-width="1"/>'
            % (MARGIN_LEFT, _number(y), MARGIN_LEFT + plot_width, _number(y))
        )
        parts.append(
            '<text x="%d" y="%s" font-size="11" text-anchor="end" fill="#333">%s</text>'
            % (MARGIN_LEFT - 6, _number(y + 4), _label(fraction * top))
        )
    for moment, label in steps:
        x = _number(x_of(moment))
        parts.append(
            '<line class="step" x1="%s" y1="%d" x2="%s" y2="%d" stroke="%s" stroke-width="1" stroke-dasharray="4 3"/>'
            % (x, MARGIN_TOP, x, MARGIN_TOP + plot_height, STEP_COLOUR)
        )
        parts.append(
            '<text x="%s" y="%d" font-size="10" fill="%s">%s</text>'
            % (x, MARGIN_TOP - 3, STEP_COLOUR, html.escape(label))
        )
    for moment in rollbacks:
        x = _number(x_of(moment))
        parts.append(
            '<line class="rollback" x1="%s" y1="%d" x2="%s" y2="%d" stroke="%s" stroke-width="2"/>'
            % (x, MARGIN_TOP, x, MARGIN_TOP + plot_height, ROLLBACK_COLOUR)
        )
        parts.append(
            '<text x="%s" y="%d" font-size="10" fill="%s">rollback</text>' % (x, MARGIN_TOP + 12, ROLLBACK_COLOUR)
        )
    legend_x = MARGIN_LEFT
    for index, (name, points) in enumerate(sorted(series.items())):
        colour = (colours or {}).get(name) or series_colour(index)
        if len(points) == 1:
            moment, value = points[0]
            parts.append(
                '<circle class="series" cx="%s" cy="%s" r="3" fill="%s"/>'
                % (_number(x_of(moment)), _number(y_of(value)), colour)
            )
        elif points:
            coordinates = " ".join("%s,%s" % (_number(x_of(moment)), _number(y_of(value))) for moment, value in points)
            parts.append(
                '<polyline class="series" fill="none" stroke="%s" stroke-width="2.5" points="%s"/>'
                % (colour, coordinates)
            )
        parts.append(
            '<rect x="%d" y="%d" width="12" height="4" fill="%s"/><text x="%d" y="%d" font-size="11" fill="#111">%s</text>'
            % (legend_x, HEIGHT - 14, colour, legend_x + 16, HEIGHT - 9, html.escape(name))
        )
        legend_x += 24 + 7 * len(name)
    if not values:
        parts.append(
            '<text x="%d" y="%d" font-size="13" text-anchor="middle" fill="#555">no data</text>'
            % (MARGIN_LEFT + plot_width // 2, MARGIN_TOP + plot_height // 2)
        )
    parts.append(
        '<text x="%d" y="%d" font-size="10" text-anchor="end" fill="#333">+%s s</text>'
        % (MARGIN_LEFT + plot_width, HEIGHT - 22, _number(span))
    )
    parts.append("</svg>")
    return "\n".join(parts)
