"""A sweep's picture: ``sweep.html`` at the multirun root, next to ``sweep_summary.csv`` and
``leaderboard.md`` — a heatmap of the ranking metric over the first two swept keys (one panel per
combination of the others' values, or, past ``MAX_PANELS`` of them, one heatmap with a drop-down
per key), and the equity curves of the top jobs. Local sweeps and sweeps in a store (``s3://``)
alike: the sweep callback passes its ``ntrader.runs.store.Folder`` (this module does not import
``ntrader.runs``).

Every number comes from the rows ``sweep_summary.csv`` holds (a failed job is an empty cell
saying so) and from each job's ``equity.csv``, the daily marked-to-market curve its
``summary.json`` metrics were computed from. Self-contained: plotly.js is inlined.
"""

from __future__ import annotations

import csv
import html
import io
import json
import math
from collections.abc import Callable, Sequence
from itertools import product
from pathlib import Path
from typing import Any, Protocol

MAX_PANELS = 12


def _number(value: Any) -> float | None:
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def _axes(rows: list[dict[str, Any]], swept: Sequence[str]) -> list[tuple[str, list[str]]]:
    """The swept keys that vary, with their values in order: numerically when all are numbers,
    else as the jobs were launched (rows come best first; ``job`` is the launch order)."""
    launched = sorted(rows, key=lambda r: _number(r.get("job")) or 0.0)
    out = []
    for key in swept:
        values = list(dict.fromkeys(str(r.get(key, "")) for r in launched))
        if len(values) > 1:
            if all(_number(v) is not None for v in values):
                values.sort(key=lambda v: _number(v) or 0.0)
            out.append((key, values))
    return out


def heatmaps(rows: list[dict[str, Any]], swept: Sequence[str], metric: str) -> list[dict]:
    """The figures: x = first swept key, y = second (or none), one per combination of the
    values of the rest (its ``fixed``: key → value), in the order they were swept."""
    axes = _axes(rows, swept)
    if not axes:
        return []
    (xkey, xs), rest = axes[0], axes[1:]
    ykey, ys = rest[0] if rest else ("", [""])
    facets = rest[1:]
    figures = []
    for combo in product(*[vals for _, vals in facets]):
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
                "fixed": fixed,
            }
        )
    return figures


def equity_figure(
    rows: list[dict[str, Any]],
    top: int,
    swept: Sequence[str] = (),
    read_equity: Callable[[str], str | None] = lambda run: None,
) -> dict | None:
    """The top ``top`` ok jobs' equity (rows are best first), from their ``equity.csv``
    (``read_equity(run_dir)``: its text, None when there is none)."""
    traces = []
    for row in [r for r in rows if r.get("status") == "ok"][:top]:
        text = read_equity(str(row.get("run_dir", "")))
        if text is None:
            continue
        points = list(csv.DictReader(io.StringIO(text)))
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


def facet_keys(rows: list[dict[str, Any]], swept: Sequence[str]) -> list[tuple[str, list[str]]]:
    """The swept keys beyond the first two (the heatmaps' facets), with their values."""
    return _axes(rows, swept)[2:]


def _selector(facets: list[tuple[str, list[str]]]) -> str:
    """One drop-down per facet key: the heatmap shown is the combination picked."""
    out = ["<p id='selector'>"]
    for key, values in facets:
        opts = "".join(f"<option>{html.escape(v)}</option>" for v in values)
        out.append(
            f"<label>{html.escape(key)} <select data-key='{html.escape(key, quote=True)}'>"
            f"{opts}</select></label> "
        )
    out.append("</p><div id='heatmap-selected' class='heatmap'></div>")
    return "".join(out)


SCRIPT = """
function draw(id, fig) {
  const el = document.getElementById(id);
  return Plotly.react(el, fig.data, fig.layout, {displaylogo: false, responsive: true}).then(gd => {
    const shown = gd.data.map(t => ({x: t.x, y: t.y, z: t.z, name: t.name}));
    el.dataset.rendered = JSON.stringify(shown);
    if (fig.fixed) el.dataset.fixed = JSON.stringify(fig.fixed);
  });
}
function pick() {
  const want = {};
  document.querySelectorAll('#selector select').forEach(s => { want[s.dataset.key] = s.value; });
  const fig = HEATMAPS.find(f => Object.entries(want).every(([k, v]) => f.fixed[k] === v));
  if (fig) draw('heatmap-selected', fig);
}
function fromHash() {  // #key=value&key=value picks a combination (a link to one view)
  const params = new URLSearchParams(location.hash.slice(1));
  document.querySelectorAll('#selector select').forEach(s => {
    if (params.has(s.dataset.key)) s.value = params.get(s.dataset.key);
  });
  pick();
}
"""


def render_sweep_page(
    name: str,
    rows: list[dict[str, Any]],
    swept: Sequence[str] | None,
    metric: str,
    read_equity: Callable[[str], str | None],
    top: int = 5,
) -> str:
    """``sweep.html`` of sweep ``name`` (rows best first); ``read_equity(run_dir)``: the text of
    a job's ``equity.csv`` (None: it has none). With more than ``MAX_PANELS`` combinations of
    the keys beyond the first two, one heatmap with a drop-down per key instead of a panel
    each."""
    import plotly.offline

    keys = list(swept or [])
    figures = heatmaps(rows, keys, metric)
    facets = facet_keys(rows, keys)
    curve = equity_figure(rows, top, keys, read_equity)
    select = len(figures) > MAX_PANELS
    panels = ([] if select else [("heatmap", f) for f in figures]) + (
        [("equity", curve)] if curve else []
    )
    divs = "".join(
        f"<div id='{kind}-{n}' class='{kind}'></div>" for n, (kind, _) in enumerate(panels)
    )
    calls = "".join(
        f"draw('{kind}-{n}', {json.dumps(fig)});" for n, (kind, fig) in enumerate(panels)
    )
    if select:
        divs = _selector(facets) + divs
        calls += "window.addEventListener('hashchange', fromHash); fromHash();"
        calls += "document.querySelectorAll('#selector select').forEach(s => s.onchange = pick);"
    ok = sum(1 for r in rows if r.get("status") == "ok")
    shown = (
        f"{len(figures)} combinations of {', '.join(k for k, _ in facets)}: pick one"
        if select
        else ""
    )
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>ntrader sweep {html.escape(name)}</title>
<style>body {{ font: 14px system-ui, sans-serif; margin: 24px; }}</style>
<script>{plotly.offline.get_plotlyjs()}</script></head><body>
<h1>Sweep {html.escape(name)}</h1>
<p>{len(rows)} job(s), {ok} ok · ranked by <code>{html.escape(metric)}</code> · the numbers are
<code>sweep_summary.csv</code>'s; the curves each job's <code>equity.csv</code>
{html.escape(shown)}</p>
{divs or "<p>Nothing swept varies: no heatmap.</p>"}
<script>
const HEATMAPS = {json.dumps(figures) if select else "[]"};
{SCRIPT}
{calls}
</script></body></html>
"""


class PageFolder(Protocol):
    """Where a sweep lives: ``ntrader.runs.store.Folder`` (a local folder or a store URL)."""

    name: str

    def write_text(self, name: str, text: str) -> str: ...


class _Local:
    def __init__(self, path: Path) -> None:
        self.path, self.name = path, path.name

    def write_text(self, name: str, text: str) -> str:
        self.path.mkdir(parents=True, exist_ok=True)
        (self.path / name).write_text(text, encoding="utf-8")
        return str(self.path / name)


def _local_equity(run_dir: str) -> str | None:
    path = Path(run_dir) / "equity.csv"
    return path.read_text() if run_dir and path.is_file() else None


def write_sweep_page(
    sweep_dir: Path | PageFolder,
    rows: list[dict[str, Any]],
    swept: Sequence[str] | None,
    metric: str,
    top: int = 5,
    read_equity: Callable[[str], str | None] = _local_equity,
) -> str:
    """Write ``sweep.html`` into ``sweep_dir`` (a local folder, or a :class:`PageFolder` such as
    a store URL's), the equity curves read by ``read_equity(run_dir)`` (default: local job
    folders); returns where it went."""
    folder = _Local(Path(sweep_dir)) if isinstance(sweep_dir, str | Path) else sweep_dir
    page = render_sweep_page(folder.name, rows, swept, metric, read_equity, top)
    return folder.write_text("sweep.html", page)


def write_or_warn(
    sweep_dir: Path | PageFolder,
    rows: list[dict[str, Any]],
    swept: Sequence[str] | None,
    metric: str,
    read_equity: Callable[[str], str | None] = _local_equity,
) -> str | None:
    """:func:`write_sweep_page`, a failure of which is printed, never the sweep's."""
    try:
        return write_sweep_page(sweep_dir, rows, swept, metric, read_equity=read_equity)
    except Exception as exc:
        import sys

        print(f"warning: sweep.html not written: {type(exc).__name__}: {exc}", file=sys.stderr)
        return None
