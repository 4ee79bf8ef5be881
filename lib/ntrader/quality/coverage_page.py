"""The catalog report (``make report``): one self-contained HTML page (plotly inlined: it opens
without a network) and a PNG of the same coverage, written into the run folder.

Per bar spec a heatmap of instruments × sessions (weeks or months when wide; see
``ntrader.quality.coverage``), coloured complete / partial / missing / IB had no data, weekends and
holidays never cells; hovering a cell shows its numbers and, when it is not complete, the
``make fetch`` that fills it. Then a table per bar type — first, last, rows, files, bytes (the
numbers ``make scan FORMAT=json`` prints, from the same listing) and its sessions by status — and
the catalog's totals. With the health checks on, the data-health findings are marked in their
cells and listed in a sortable table linked to them (``ntrader.quality.findings_page``).
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from ntrader.quality.checkup import fill_command
from ntrader.quality.coverage import (
    COMPLETE,
    MISSING,
    NODATA,
    NOT_SESSION,
    OUTSIDE,
    PARTIAL,
    STATUS,
    Coverage,
)
from ntrader.quality.findings import Finding
from ntrader.quality.findings_page import SCRIPT, Placed, by_cell, cell_text, overlay, place, table

COLOURS = {
    OUTSIDE: "#e5e5e5",
    MISSING: "#d62728",
    NODATA: "#8c6bb1",
    PARTIAL: "#ff9f1c",
    COMPLETE: "#2ca02c",
}
_CODES = [OUTSIDE, MISSING, NODATA, PARTIAL, COMPLETE]


@dataclass
class Written:
    html: Path
    png: Path
    unit: str  # session | week | month
    counts: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"html": str(self.html), "png": str(self.png), "cell": self.unit, **self.counts}

    def _health(self) -> str:
        c = self.counts
        if "findings" not in c:
            return "  health:  not checked (report_health=false)\n"
        kinds = ", ".join(
            f"{k.removeprefix('findings_')} {n:,}"
            for k, n in c.items()
            if k.startswith("findings_")
        )
        return f"  health:  {c['findings']:,} finding(s){': ' + kinds if kinds else ''}\n"

    def render(self) -> str:
        """What ``make report`` prints."""
        c = self.counts
        return (
            f"Catalog report of {c['bar_types']:,} bar type(s)"
            + (f" (and {c['not_stored']:,} not in the catalog)" if c["not_stored"] else "")
            + f" over {c['sessions']:,} session(s), "
            f"one cell per {self.unit}: {c['complete']:,} complete, {c['partial']:,} partial, "
            f"{c['missing']:,} missing, {c['nodata']:,} IB had no data\n"
            + self._health()
            + f"  page:    {self.html} ({c['page_bytes'] / 1e6:.1f} MB, opens without a network)\n"
            f"  picture: {self.png}"
        )


def _colourscale() -> list[list[Any]]:
    """A stepped scale over z = OUTSIDE .. COMPLETE (zmin/zmax at ±0.5): one colour per code."""
    n = len(_CODES)
    scale: list[list[Any]] = []
    for i, code in enumerate(_CODES):
        scale += [[i / n, COLOURS[code]], [(i + 1) / n, COLOURS[code]]]
    return scale


def _figure(
    cov: Coverage,
    spec: str,
    unit: str,
    cols: list,
    cells: list,
    url: str,
    marks: dict[tuple[str, str], list[Placed]],
) -> dict:
    rows = [i for i, r in enumerate(cov.rows) if r.spec == spec]
    y = [cov.rows[i].instrument_id for i in rows]
    z: list[list[int | None]] = []
    custom: list[list[list[Any]]] = []
    for i in rows:
        zr, cr = [], []
        for col, cell in zip(cols, cells[i], strict=True):
            code = cell["code"]
            zr.append(None if code == NOT_SESSION else code)
            fill = ""
            if code in (MISSING, PARTIAL):
                fill = fill_command(y[len(z)], col.first, col.last, spec, url)
            cr.append(
                [
                    cell["present"],
                    cell["expected"],
                    cell["complete"],
                    cell["sessions"],
                    STATUS.get(code, "not a session"),
                    fill,
                    cell_text(marks.get((col.label, y[len(z)]), [])),
                ]
            )
        z.append(zr)
        custom.append(cr)
    hover = (
        "%{y} · %{x}<br>%{customdata[4]}<br>bars %{customdata[0]:,} of %{customdata[1]:,}"
        "<br>sessions complete %{customdata[2]} of %{customdata[3]}<br>%{customdata[5]}"
        "<br>%{customdata[6]}"
        "<extra></extra>"
    )
    return {
        "data": [
            {
                "type": "heatmap",
                "x": [c.label for c in cols],
                "y": y,
                "z": z,
                "customdata": custom,
                "hovertemplate": hover,
                "zmin": OUTSIDE - 0.5,
                "zmax": COMPLETE + 0.5,
                "colorscale": _colourscale(),
                "showscale": False,
                "xgap": 1,
                "ygap": 1,
            },
            *([overlay(marks)] if marks else []),
        ],
        "layout": {
            "title": {"text": f"{spec}: {len(y)} instrument(s) × {len(cols)} {unit}(s)"},
            "height": min(4000, 160 + 18 * len(y)),
            "margin": {"l": 140, "r": 20, "t": 50, "b": 80},
            "yaxis": {"autorange": "reversed", "type": "category"},
            "xaxis": {"type": "category"},
        },
    }


def _legend() -> str:
    items = "".join(
        f'<span class="key"><i style="background:{COLOURS[c]}"></i>{html.escape(STATUS[c])}</span>'
        for c in reversed(_CODES)
    )
    return f'<p class="legend">{items}<span class="key">blank: not a session</span></p>'


def _table(records: list[dict[str, Any]], cov: Coverage) -> str:
    tally = {r.bar_type: r.code for r in cov.rows}
    head = ("bar_type", "first", "last", "rows", "files", "bytes")
    heads = [*head, "complete", "partial", "missing", "no data at IB"]
    out = ["<table id='bar-types'><thead><tr>"]
    out += [f"<th>{html.escape(h)}</th>" for h in heads]
    out.append("</tr></thead><tbody>")
    for rec in records:
        codes = tally.get(rec["bar_type"], np.array([], dtype=np.int8))
        counts = [int((codes == c).sum()) for c in (COMPLETE, PARTIAL, MISSING, NODATA)]
        cells = [rec[h] for h in head] + counts
        out.append(f"<tr data-bar-type='{html.escape(rec['bar_type'], quote=True)}'>")
        for key, value in zip(heads, cells, strict=True):
            text = f"{value:,}" if isinstance(value, int) else str(value)
            out.append(f"<td data-key='{html.escape(key)}'>{html.escape(text)}</td>")
        out.append("</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def render_page(
    cov: Coverage,
    records: list[dict[str, Any]],
    url: str,
    max_columns: int = 120,
    findings: list[Finding] | None = None,
) -> tuple[str, str, dict[str, dict]]:
    """The page's HTML, its cell unit and the figure of each bar spec; ``findings``: the
    data-health findings (None: not checked)."""
    import plotly.offline

    unit, cols = cov.columns(max_columns)
    cells = cov.cells(cols)
    specs = sorted({r.spec for r in cov.rows})  # findings are of stored bar types: rows
    placed = place(findings or [], specs, cols)
    figures = {
        s: _figure(cov, s, unit, cols, cells, url, by_cell(placed, f"cov-{n}"))
        for n, s in enumerate(specs)
    }
    totals = {
        "bar types": len(records),
        "rows": sum(r["rows"] for r in records),
        "files": sum(r["files"] for r in records),
        "bytes": sum(r["bytes"] for r in records),
    }
    span = f"{cov.dates[0]} .. {cov.dates[-1]}" if cov.dates.size else "no sessions"
    divs, calls = [], []
    for n, (spec, fig) in enumerate(figures.items()):
        divs.append(f"<h2>{html.escape(spec)}</h2><div id='cov-{n}' class='coverage'></div>")
        calls.append(f"draw('cov-{n}', {json.dumps(fig)});")
    health = (
        "<p id='health-off'>Not checked (<code>report_health=false</code>).</p>"
        if findings is None
        else table(placed)
    )
    total_html = "".join(f"<td data-key='{html.escape(k)}'>{v:,}</td>" for k, v in totals.items())
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>ntrader catalog report</title>
<style>
body {{ font: 14px system-ui, sans-serif; margin: 24px; color: #222; }}
table {{ border-collapse: collapse; margin: 12px 0; }}
td, th {{ border: 1px solid #ccc; padding: 3px 8px; text-align: right; }}
td:first-child, th:first-child {{ text-align: left; }}
table.sortable th {{ cursor: pointer; }} #findings td, #findings th {{ text-align: left; }}
#findings tr {{ cursor: pointer; }} #findings tr.selected {{ background: #fff3c4; }}
.legend .key {{ margin-right: 16px; }} .legend i {{ display: inline-block; width: 12px;
height: 12px; margin-right: 4px; vertical-align: middle; }}
</style>
<script>{plotly.offline.get_plotlyjs()}</script></head>
<body>
<h1>Catalog report</h1>
<p>catalog <code id="catalog">{html.escape(url)}</code> · sessions {html.escape(span)} ·
cells: one per {unit} · written {datetime.now(UTC):%Y-%m-%d %H:%M} UTC</p>
<table id="totals"><tr>{"".join(f"<th>{html.escape(k)}</th>" for k in totals)}</tr>
<tr>{total_html}</tr></table>
{_legend()}
{"".join(divs) or "<p>The catalog holds no bars.</p>"}
<h2>Bar types</h2>
{_table(records, cov)}
<h2 id="health">Data health</h2>
{health}
<script>
{SCRIPT}
const drawn = [];
function draw(id, fig) {{
  const el = document.getElementById(id);
  drawn.push(Plotly.newPlot(el, fig.data, fig.layout, {{displaylogo: false, responsive: true}})
    .then(gd => {{
      el.dataset.rendered = JSON.stringify({{x: gd.data[0].x, y: gd.data[0].y, z: gd.data[0].z}});
      gd.on('plotly_click', ev => {{ const p = ev.points[0];
        location.hash = 'cell=' + [id, p.x, p.y].join('|'); }});
    }}));
}}
{"".join(calls)}
Promise.all(drawn).then(route);
</script>
</body></html>
"""
    return page, unit, figures


def write_png(
    cov: Coverage, path: Path, max_columns: int = 120, findings: list[Finding] | None = None
) -> None:
    """The coverage as a picture (matplotlib, one panel per bar spec), for mail and README;
    the cells with data-health findings marked × as on the page."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import BoundaryNorm, ListedColormap

    unit, cols = cov.columns(max_columns)
    cells = cov.cells(cols)
    specs = sorted({r.spec for r in cov.rows}) or ["(no bars)"]  # as render_page orders them
    heights = [max(1, sum(r.spec == s for r in cov.rows)) for s in specs]
    fig, axes = plt.subplots(
        len(specs),
        1,
        figsize=(12, min(40, 1.5 + 0.25 * sum(heights) + 0.6 * len(specs))),
        squeeze=False,
        gridspec_kw={"height_ratios": heights},
    )
    cmap = ListedColormap([COLOURS[c] for c in _CODES])
    norm = BoundaryNorm([c - 0.5 for c in _CODES] + [COMPLETE + 0.5], cmap.N)
    placed = place(findings or [], specs, cols)
    for n, (ax, spec) in enumerate(zip(axes[:, 0], specs, strict=True)):
        idx = [i for i, r in enumerate(cov.rows) if r.spec == spec]
        z = np.ma.masked_equal(
            np.array([[c["code"] for c in cells[i]] for i in idx] or [[NOT_SESSION]]), NOT_SESSION
        )
        ax.imshow(z, aspect="auto", cmap=cmap, norm=norm, interpolation="nearest")
        marks = by_cell(placed, f"cov-{n}")
        if marks:
            labels = {c.label: k for k, c in enumerate(cols)}
            names = {cov.rows[i].instrument_id: k for k, i in enumerate(idx)}
            ax.scatter(
                [labels[x] for x, _ in marks],
                [names[y] for _, y in marks],
                marker="x",
                s=30,
                c="#111",
                linewidths=1.5,
            )
        ax.set_yticks(range(len(idx)), [cov.rows[i].instrument_id for i in idx], fontsize=7)
        step = max(1, len(cols) // 12)
        ax.set_xticks(range(0, len(cols), step), [c.label for c in cols][::step], fontsize=7)
        ax.set_title(f"{spec} (one cell per {unit})", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
