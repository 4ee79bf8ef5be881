"""The data-health findings on the catalog report page: each finding placed in its heatmap cell
(a marker over the cell, a line in the cell's hover), a sortable table below, and the links
between them — a table row highlights its cell, a click on a cell shows only its findings.

Links are URL fragments, so a view can be shared and the page tested without clicking:
``#finding-3`` highlights finding 3's cell; ``#cell=cov-0|2024-05-09|AAPL.NASDAQ`` lists the
findings of one cell.
"""

from __future__ import annotations

import bisect
import html
from collections import Counter
from dataclasses import dataclass
from typing import Any

from ntrader.quality.coverage import Column
from ntrader.quality.findings import Finding

MAX_LISTED = 2_000  # table rows; the summary counts all of them


@dataclass(frozen=True)
class Placed:
    """A finding and where it is drawn: figure id, cell column label (None: not a session of
    the matrix), instrument."""

    number: int
    finding: Finding
    figure: str
    x: str | None
    y: str


def place(findings: list[Finding], specs: list[str], cols: list[Column]) -> list[Placed]:
    """Each finding's cell: the figure of its bar spec, the column holding its session."""
    firsts = [c.first for c in cols]
    out = []
    for n, f in enumerate(findings):
        i = bisect.bisect_right(firsts, f.session) - 1
        x = cols[i].label if i >= 0 and cols[i].first <= f.session <= cols[i].last else None
        out.append(Placed(n, f, f"cov-{specs.index(f.spec)}", x, f.instrument_id))
    return out


def by_cell(placed: list[Placed], figure: str) -> dict[tuple[str, str], list[Placed]]:
    cells: dict[tuple[str, str], list[Placed]] = {}
    for p in placed:
        if p.figure == figure and p.x is not None:
            cells.setdefault((p.x, p.y), []).append(p)
    return cells


def cell_text(found: list[Placed]) -> str:
    """A cell's hover line: its findings by kind."""
    if not found:
        return ""
    kinds = Counter()  # type: Counter[str]
    for p in found:
        kinds[p.finding.kind] += p.finding.count
    return "findings: " + ", ".join(f"{k} {n:,}" for k, n in kinds.items())


def overlay(cells: dict[tuple[str, str], list[Placed]]) -> dict[str, Any]:
    """A marker trace over the cells that have findings (hover: what they are)."""
    keys = sorted(cells)
    return {
        "type": "scatter",
        "mode": "markers",
        "name": "data-health findings",
        "x": [x for x, _ in keys],
        "y": [y for _, y in keys],
        "text": [cell_text(cells[k]) for k in keys],
        "hovertemplate": "%{y} · %{x}<br>%{text}<extra></extra>",
        "marker": {"symbol": "x-thin", "size": 9, "line": {"width": 2, "color": "#111"}},
        "showlegend": False,
    }


def table(placed: list[Placed], limit: int = MAX_LISTED) -> str:
    """The findings table (sortable by any column; a row links to its cell)."""
    if not placed:
        return "<p id='no-findings'>No data-health findings.</p>"
    heads = ("bar_type", "session", "cell", "kind", "count", "detail")
    out = ["<p id='findings-filter' hidden></p><table id='findings' class='sortable'><thead><tr>"]
    out += [f"<th data-key='{h}'>{h}</th>" for h in heads]
    out.append("</tr></thead><tbody>")
    for p in placed[:limit]:
        f = p.finding
        attrs = {
            "id": f"finding-{p.number}",
            "data-figure": p.figure,
            "data-x": p.x or "",
            "data-y": p.y,
        }
        quoted = " ".join(f"{k}='{html.escape(v, quote=True)}'" for k, v in attrs.items())
        out.append(f"<tr {quoted}>")
        cells = (f.bar_type, f.session.isoformat(), p.x or "(not a session)", f.kind)
        for key, value in zip(heads, cells, strict=False):
            out.append(f"<td data-key='{key}'>{html.escape(value)}</td>")
        out.append(f"<td data-key='count' data-sort='{f.count}'>{f.count:,}</td>")
        out.append(f"<td data-key='detail'>{html.escape(f.detail)}</td></tr>")
    out.append("</tbody></table>")
    if len(placed) > limit:
        out.append(
            f"<p id='findings-more'>… and {len(placed) - limit:,} more findings: "
            "<code>make check SYMBOL=…</code> lists a bar type's.</p>"
        )
    return "".join(out)


SCRIPT = """
function sortBy(th) {
  const table = th.closest('table'), body = table.tBodies[0];
  const i = [...th.parentNode.children].indexOf(th);
  const asc = th.dataset.order !== 'asc';
  table.querySelectorAll('th').forEach(h => delete h.dataset.order);
  th.dataset.order = asc ? 'asc' : 'desc';
  const key = r => { const c = r.children[i]; return c.dataset.sort ?? c.textContent; };
  const rows = [...body.rows].sort((a, b) => {
    const x = key(a), y = key(b), nx = Number(x), ny = Number(y);
    const c = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : x.localeCompare(y);
    return asc ? c : -c;
  });
  rows.forEach(r => body.appendChild(r));
}
document.querySelectorAll('table.sortable th').forEach(th =>
  th.addEventListener('click', () => sortBy(th)));
function cellShape(el, x, y) {
  const xs = el.data[0].x, ys = el.data[0].y, i = xs.indexOf(x), j = ys.indexOf(y);
  if (i < 0 || j < 0) return [];
  return [{type: 'rect', xref: 'x', yref: 'y', x0: i - 0.5, x1: i + 0.5, y0: j - 0.5,
           y1: j + 0.5, line: {color: '#000', width: 3}}];
}
function highlight(row) {
  document.querySelectorAll('#findings tr.selected').forEach(r => r.classList.remove('selected'));
  row.classList.add('selected');
  const el = document.getElementById(row.dataset.figure);
  if (!el || !row.dataset.x) return;
  Plotly.relayout(el, {shapes: cellShape(el, row.dataset.x, row.dataset.y)});
  el.dataset.highlight = JSON.stringify({x: row.dataset.x, y: row.dataset.y});
  el.scrollIntoView({block: 'center'});
}
function showCell(figure, x, y) {
  let shown = 0;
  document.querySelectorAll('#findings tbody tr').forEach(r => {
    r.hidden = !(r.dataset.figure === figure && r.dataset.x === x && r.dataset.y === y);
    shown += r.hidden ? 0 : 1;
  });
  const note = document.getElementById('findings-filter');
  if (!note) return;
  note.hidden = false;
  note.dataset.cell = JSON.stringify({figure, x, y, shown});
  note.textContent = shown + ' finding(s) of ' + y + ' in ' + x + ' · ';
  const all = document.createElement('a');
  all.href = '#findings'; all.textContent = 'show all';
  all.onclick = () => {
    document.querySelectorAll('#findings tbody tr').forEach(r => { r.hidden = false; });
    note.hidden = true;
  };
  note.appendChild(all);
  note.scrollIntoView({block: 'start'});
}
document.querySelectorAll('#findings tbody tr').forEach(r =>
  r.addEventListener('click', () => { location.hash = r.id; }));
function route() {
  const h = decodeURIComponent(location.hash.slice(1));
  if (h.startsWith('finding-')) {
    const row = document.getElementById(h);
    if (row) highlight(row);
  } else if (h.startsWith('cell=')) {
    const [figure, x, y] = h.slice(5).split('|');
    showCell(figure, x, y);
  }
}
window.addEventListener('hashchange', route);
"""
