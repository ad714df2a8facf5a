"""Charts drawn as inline SVG: the live training curves and the regression scatter.

Plain strings, no plotting library: they are redrawn cheaply at every progress tick, scale to
the page, carry a title for screen readers and a tooltip per point, and escape every name.
"""

from __future__ import annotations

import html
import math

import pandas as pd


def esc(value) -> str:
    return html.escape(str(value), quote=True)

SERIES_COLORS = ("#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#b279a2")


def _nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    if high <= low:
        high = low + (abs(low) or 1.0) * 0.1
    raw = (high - low) / max(1, count - 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = min((m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw), default=raw)
    start = math.floor(low / step) * step
    ticks, value = [], start
    while len(ticks) < 12:  # up to the first tick at or past the highest value
        ticks.append(round(value, 10))
        if value >= high - step * 1e-9:
            break
        value += step
    return ticks


def band_chart(points: list[tuple[float, float, float]], fit: list[tuple[float, float]],
               title: str, x_label: str, y_label: str = "score", width: int = 560,
               height: int = 260) -> str:
    """Measured points (x, y, ± band) joined by a line inside a shaded band, and a dashed fit
    line (a learning curve); an inline SVG like `line_chart`."""
    if not points:
        return line_chart(None, title)
    left, right, top, bottom = 52, 12, 30, 34
    xs = [p[0] for p in points] + [f[0] for f in fit]
    ys = [p[1] + p[2] for p in points] + [p[1] - p[2] for p in points] + [f[1] for f in fit]
    x_ticks = _nice_ticks(0.0, max(xs), 6)
    y_ticks = _nice_ticks(max(0.0, min(ys)), min(1.0, max(ys)) if max(ys) <= 1 else max(ys), 5)
    x0, x1, y0, y1 = x_ticks[0], x_ticks[-1], y_ticks[0], y_ticks[-1]

    def px(x: float) -> float:
        return left + (x - x0) / ((x1 - x0) or 1.0) * (width - left - right)

    def py(y: float) -> float:
        y = min(max(y, y0), y1)
        return height - bottom - (y - y0) / ((y1 - y0) or 1.0) * (height - top - bottom)

    parts = [f"<svg viewBox='0 0 {width} {height}' width='100%' role='img' "
             f"aria-label='{esc(title)}' style='max-width:{width}px;font:11px sans-serif'>"]
    for y in y_ticks:
        parts.append(f"<line x1='{left}' x2='{width - right}' y1='{py(y):.1f}' y2='{py(y):.1f}'"
                     f" stroke='#e5e5e5'/><text x='{left - 4}' y='{py(y) + 4:.1f}' "
                     f"text-anchor='end' fill='#555'>{y:.4g}</text>")
    for x in x_ticks:
        parts.append(f"<text x='{px(x):.1f}' y='{height - bottom + 14}' text-anchor='middle' "
                     f"fill='#555'>{x:,.0f}</text>")
    parts.append(f"<text x='{(left + width - right) / 2}' y='{height - 4}' "
                 f"text-anchor='middle' fill='#555'>{esc(x_label)}</text>")
    color, fit_color = SERIES_COLORS[0], SERIES_COLORS[3]
    upper = [f"{px(x):.1f},{py(y + b):.1f}" for x, y, b in points]
    lower = [f"{px(x):.1f},{py(y - b):.1f}" for x, y, b in reversed(points)]
    parts.append(f"<polygon class='ft-band' points='{' '.join(upper + lower)}' fill='{color}' "
                 "fill-opacity='0.15' stroke='none'><title>noise of the validation size"
                 "</title></polygon>")
    if fit:
        line = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in fit)
        parts.append(f"<polyline class='ft-fit' fill='none' stroke='{fit_color}' "
                     f"stroke-width='2' stroke-dasharray='5 4' points='{line}'>"
                     "<title>saturating fit</title></polyline>")
    line = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y, _ in points)
    parts.append(f"<polyline fill='none' stroke='{color}' stroke-width='2' points='{line}'>"
                 f"<title>{esc(y_label)}</title></polyline>")
    parts += [f"<circle cx='{px(x):.1f}' cy='{py(y):.1f}' r='3' fill='{color}'><title>"
              f"{x:,.0f} {esc(x_label)}: {y:.4f} ± {b:.4f}</title></circle>"
              for x, y, b in points]
    legend = [(color, y_label, ""), (color, "noise band", "0.15"),
              (fit_color, "fit, one doubling ahead", "")]
    lx = left
    for c, name, opacity in legend if fit else legend[:2]:
        fill = f"fill-opacity='{opacity}'" if opacity else ""
        parts.append(f"<rect x='{lx}' y='10' width='12' height='{8 if opacity else 4}' "
                     f"fill='{c}' {fill}/><text x='{lx + 16}' y='16' fill='#333'>"
                     f"{esc(name)}</text>")
        lx += 28 + 6 * len(name)
    parts.append("</svg>")
    return f"<div class='ft-chart'><div><b>{esc(title)}</b></div>{''.join(parts)}</div>"


def line_chart(frame: pd.DataFrame, title: str, width: int = 560, height: int = 250,
               x_label: str = "step", legend_values: bool | str = True) -> str:
    """An inline SVG line chart of frame[step, value, series]; redrawn cheaply every tick."""
    if frame is None or frame.empty:
        return (f"<div class='ft-chart' role='img' aria-label='{esc(title)}: no data yet'>"
                f"<b>{esc(title)}</b><p style='color:#777'>Waiting for the first numbers…</p>"
                "</div>")
    left, right, top, bottom = 52, 12, 30, 34
    xs, ys = frame["step"].astype(float), frame["value"].astype(float)
    x_ticks = _nice_ticks(float(xs.min()), float(xs.max()), 6)
    y_ticks = _nice_ticks(float(ys.min()), float(ys.max()), 5)
    x0, x1, y0, y1 = x_ticks[0], x_ticks[-1], y_ticks[0], y_ticks[-1]
    span_x, span_y = (x1 - x0) or 1.0, (y1 - y0) or 1.0

    def px(x: float) -> float:
        return left + (x - x0) / span_x * (width - left - right)

    def py(y: float) -> float:
        return height - bottom - (y - y0) / span_y * (height - top - bottom)

    parts = [f"<svg viewBox='0 0 {width} {height}' width='100%' role='img' "
             f"aria-label='{esc(title)}' style='max-width:{width}px;font:11px sans-serif'>"]
    for y in y_ticks:
        parts.append(f"<line x1='{left}' x2='{width - right}' y1='{py(y):.1f}' y2='{py(y):.1f}'"
                     " stroke='#e5e5e5'/><text x='{0}' y='{1:.1f}' text-anchor='end' "
                     "fill='#555'>{2}</text>".format(left - 4, py(y) + 4, f"{y:.4g}"))
    for x in x_ticks:
        parts.append(f"<text x='{px(x):.1f}' y='{height - bottom + 14}' text-anchor='middle' "
                     f"fill='#555'>{x:.4g}</text>")
    parts.append(f"<text x='{(left + width - right) / 2}' y='{height - 4}' "
                 f"text-anchor='middle' fill='#555'>{esc(x_label)}</text>")
    legend_x = left
    for i, (name, group) in enumerate(frame.groupby("series", sort=False)):
        color = SERIES_COLORS[i % len(SERIES_COLORS)]
        group = group.sort_values("step")
        points = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in zip(group["step"],
                                                                      group["value"]))
        parts.append(f"<polyline fill='none' stroke='{color}' stroke-width='2' "
                     f"points='{points}'><title>{esc(name)}</title></polyline>")
        if len(group) <= 40:
            parts += [f"<circle cx='{px(x):.1f}' cy='{py(y):.1f}' r='2.5' fill='{color}'>"
                      f"<title>{esc(name)} at step {x}: {y:.4f}</title></circle>"
                      for x, y in zip(group["step"], group["value"])]
        # the legend's number: the last point, or (legend_values="best") the best one, as
        # the table beside a comparison shows it
        shown = (f" (best {group['value'].max():.3f})" if legend_values == "best" else
                 f" ({group.iloc[-1]['value']:.3f})" if legend_values else "")
        parts.append(f"<rect x='{legend_x}' y='10' width='12' height='4' fill='{color}'/>"
                     f"<text x='{legend_x + 16}' y='16' fill='#333'>{esc(name)}{shown}</text>")
        legend_x += 22 + 7 * (len(str(name)) + 8)
    parts.append("</svg>")
    return f"<div class='ft-chart'><div><b>{esc(title)}</b></div>{''.join(parts)}</div>"




def scatter_html(rows: list[dict], width: int = 420, height: int = 420,
                 limit: int = 2000) -> str:
    """Regression: predicted (y) against true (x) for the test rows, with the diagonal a
    perfect model would follow (an inline SVG; at most `limit` points are drawn)."""
    points = [(float(r["true"]), float(r["predicted"])) for r in rows
              if isinstance(r.get("true"), (int, float)) and
              isinstance(r.get("predicted"), (int, float))][:limit]
    if not points:
        return ""
    values = [v for p in points for v in p]
    ticks = _nice_ticks(min(values), max(values), 5)
    low, high = ticks[0], ticks[-1]
    span = (high - low) or 1.0
    left, right, top, bottom = 52, 12, 12, 40

    def px(x: float) -> float:
        return left + (x - low) / span * (width - left - right)

    def py(y: float) -> float:
        return height - bottom - (y - low) / span * (height - top - bottom)

    parts = [f"<svg viewBox='0 0 {width} {height}' width='100%' role='img' "
             "aria-label='predicted against true values on the test split' "
             f"style='max-width:{width}px;font:11px sans-serif'>"]
    for t in ticks:
        parts.append(f"<line x1='{left}' x2='{width - right}' y1='{py(t):.1f}' "
                     f"y2='{py(t):.1f}' stroke='#eee'/><text x='{left - 4}' y='{py(t) + 4:.1f}' "
                     f"text-anchor='end' fill='#555'>{t:.4g}</text><text x='{px(t):.1f}' "
                     f"y='{height - bottom + 14}' text-anchor='middle' fill='#555'>{t:.4g}</text>")
    parts.append(f"<line x1='{px(low):.1f}' y1='{py(low):.1f}' x2='{px(high):.1f}' "
                 f"y2='{py(high):.1f}' stroke='#999' stroke-dasharray='4 3'>"
                 "<title>perfect predictions</title></line>")
    parts += [f"<circle class='ft-point' cx='{px(x):.1f}' cy='{py(y):.1f}' r='2.5' "
              f"fill='#4c78a8' fill-opacity='0.6'><title>true {x:.4g}, predicted {y:.4g}"
              "</title></circle>" for x, y in points]
    parts.append(f"<text x='{(left + width - right) / 2}' y='{height - 6}' text-anchor='middle'"
                 " fill='#555'>true value</text>")
    parts.append(f"<text x='12' y='{(top + height - bottom) / 2}' text-anchor='middle' "
                 f"fill='#555' transform='rotate(-90 12 {(top + height - bottom) / 2})'>"
                 "predicted</text></svg>")
    return ("<div class='ft-chart ft-scatter'><div><b>Predicted against true value (test "
            f"split, {len(points):,} rows): points on the dashed line are exact</b></div>"
            + "".join(parts) + "</div>")
