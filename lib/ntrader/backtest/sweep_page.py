"""A sweep's picture: ``sweep.html`` at the multirun root, next to ``sweep_summary.csv`` and
``leaderboard.md`` — a heatmap of the ranking metric over the first two swept keys (one panel per
value of the others), and the equity curves of the top jobs.

Every number comes from the rows ``sweep_summary.csv`` holds (a failed job is an empty cell
saying so) and from each job's ``equity.csv``, the daily marked-to-market curve its
``summary.json`` metrics were computed from. Self-contained: plotly.js is inlined.
"""

from __future__ import annotations

import csv
import html
import json
import math
from collections.abc import Sequence
from itertools import product
from pathlib import Path
from typing import Any

MAX_PANELS = 12


def _number(value: Any) -> float | None:
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def _axes(rows: list[dict[str, Any]], swept: Sequence[str]) -> list[tuple[str, list[str]]]:
    """The swept keys with their values in first-seen order (keys that vary only)."""
    out = []
    for key in swept:
        values = list(dict.fromkeys(str(r.get(key, "")) for r in rows))
        if len(values) > 1:
            out.append((key, values))
    return out


def heatmaps(rows: list[dict[str, Any]], swept: Sequence[str], metric: str) -> list[dict]:
    """The figures: x = first swept key, y = second (or none), a panel per value of the rest."""
    axes = _axes(rows, swept)
    if not axes:
        return []
    (xkey, xs), rest = axes[0], axes[1:]
    ykey, ys = rest[0] if rest else ("", [""])
    facets = rest[1:]
    figures = []
    for combo in list(product(*[vals for _, vals in facets]))[:MAX_PANELS]:
        fixed = dict(zip([k for k, _ in facets], combo, strict=True))
        z: list[list[float | None]] = []
        text: list[list[str]] = []
        for y in ys:
            zr, tr = [], []
            for x in xs:
                match = [
                    r
                    for r in rows
                    if str(r.get(xkey, "")) == x
                    and (not ykey or str(r.get(ykey, "")) == y)
                    and all(str(r.get(k, "")) == v for k, v in fixed.items())
                ]
                row = match[0] if match else None
                value = _number(row.get(metric)) if row and row.get("status") == "ok" else None
                zr.append(value)
                if row is None:
                    tr.append("not run")
                elif row.get("status") != "ok":
                    tr.append(
                        f"job {row.get('job')}: {row.get('status')} (exit {row.get('exit_code')})"
                    )
                else:
                    tr.append(f"job {row.get('job')}: {metric} {row.get(metric)}")
            z.append(zr)
            text.append(tr)
        over = f"{xkey} × {ykey}" if ykey else xkey
        title = " · ".join([over, *(f"{k}={v}" for k, v in fixed.items())])
        figures.append(
            {
                "data": [
                    {
                        "type": "heatmap",
                        "x": xs,
                        "y": ys,
                        "z": z,
                        "text": text,
                        "texttemplate": "%{z:.3f}",
                        "hovertemplate": "%{text}<extra></extra>",
                        "colorscale": [[0, "#d62728"], [0.5, "#f7f7d0"], [1, "#2ca02c"]],
                        "colorbar": {"title": {"text": metric}},
                    }
                ],
                "layout": {
                    "title": {"text": f"{metric} over {title}"},
                    "xaxis": {"title": {"text": xkey}, "type": "category"},
                    "yaxis": {"title": {"text": ykey}, "type": "category"},
                    "height": 160 + 60 * len(ys),
                },
            }
        )
    return figures


def equity_figure(rows: list[dict[str, Any]], top: int, swept: Sequence[str] = ()) -> dict | None:
    """The top ``top`` ok jobs' equity (rows are best first), from their ``equity.csv``."""
    traces = []
    for row in [r for r in rows if r.get("status") == "ok"][:top]:
        path = Path(str(row.get("run_dir", ""))) / "equity.csv"
        if not path.is_file():
            continue
        with path.open(newline="") as fh:
            points = list(csv.DictReader(fh))
        traces.append(
            {
                "type": "scatter",
                "mode": "lines",
                "name": f"job {row.get('job')}: "
                + (" ".join(f"{k}={row.get(k)}" for k in swept) or str(row.get("overrides", "")))[
                    :80
                ],
                "x": [p["ts"] for p in points],
                "y": [float(p["equity"]) for p in points],
            }
        )
    if not traces:
        return None
    layout = {"title": {"text": f"equity of the top {len(traces)} job(s)"}, "height": 420}
    return {"data": traces, "layout": layout}


def write_sweep_page(
    sweep_dir: Path,
    rows: list[dict[str, Any]],
    swept: Sequence[str] | None,
    metric: str,
    top: int = 5,
) -> Path:
    """Write ``sweep.html`` into ``sweep_dir`` (a local folder); rows best first."""
    import plotly.offline

    figures = heatmaps(rows, list(swept or []), metric)
    curve = equity_figure(rows, top, list(swept or []))
    panels = [("heatmap", f) for f in figures] + ([("equity", curve)] if curve else [])
    divs = "".join(
        f"<div id='{kind}-{n}' class='{kind}'></div>" for n, (kind, _) in enumerate(panels)
    )
    calls = "".join(
        f"draw('{kind}-{n}', {json.dumps(fig)});" for n, (kind, fig) in enumerate(panels)
    )
    ok = sum(1 for r in rows if r.get("status") == "ok")
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>ntrader sweep {html.escape(sweep_dir.name)}</title>
<style>body {{ font: 14px system-ui, sans-serif; margin: 24px; }}</style>
<script>{plotly.offline.get_plotlyjs()}</script></head><body>
<h1>Sweep {html.escape(sweep_dir.name)}</h1>
<p>{len(rows)} job(s), {ok} ok · ranked by <code>{html.escape(metric)}</code> · the numbers are
<code>sweep_summary.csv</code>'s; the curves each job's <code>equity.csv</code></p>
{divs or "<p>Nothing swept varies: no heatmap.</p>"}
<script>
function draw(id, fig) {{
  const el = document.getElementById(id);
  Plotly.newPlot(el, fig.data, fig.layout, {{displaylogo: false, responsive: true}}).then(gd => {{
    const shown = gd.data.map(t => ({{x: t.x, y: t.y, z: t.z, name: t.name}}));
    el.dataset.rendered = JSON.stringify(shown);
  }});
}}
{calls}
</script></body></html>
"""
    path = sweep_dir / "sweep.html"
    path.write_text(page, encoding="utf-8")
    return path


def write_or_warn(
    sweep_dir: Path, rows: list[dict[str, Any]], swept: Sequence[str] | None, metric: str
) -> Path | None:
    """:func:`write_sweep_page`, a failure of which is printed, never the sweep's."""
    try:
        return write_sweep_page(sweep_dir, rows, swept, metric)
    except Exception as exc:
        import sys

        print(f"warning: sweep.html not written: {type(exc).__name__}: {exc}", file=sys.stderr)
        return None
