"""A sweep's summary as text: its job rows as ``sweep_summary.csv``, ``leaderboard.md`` and the
console lines, with a column per swept key holding each job's value.

``ntrader.backtest.sweep`` (the Hydra callback) collects the rows; this only renders them.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ntrader.secrets import redact

if TYPE_CHECKING:
    from ntrader.backtest.sweep_fetch import Prefetch

COLUMNS = (
    "job",
    "overrides",
    "status",
    "exit_code",
    "return_pct",
    "pnl",
    "sharpe",
    "max_drawdown_pct",
    "win_rate",
    "orders",
    "fills",
    "positions",
    "bars",
    "duration_s",
    "error",
    "run_dir",
)


def column(key: str) -> str:
    """A swept key's column: the key itself, ``sweep.<key>`` where a result column has its name
    (``bars=minute,daily`` sweeps a config group, ``bars`` counts bars)."""
    return f"sweep.{key}" if key in COLUMNS else key


def describe(row: dict[str, Any]) -> str:
    """A job by its swept values (``symbol=MSFT dates=2024q2``), else by all its overrides."""
    values = row.get("swept") or {}
    return " ".join(f"{k}={v}" for k, v in values.items()) or str(row.get("overrides") or "")


def _rank_key(rank_by: str) -> Callable[[dict[str, Any]], tuple[int, float]]:
    def key(row: dict[str, Any]) -> tuple[int, float]:
        v = row.get(rank_by)
        if row.get("status") == "ok" and isinstance(v, int | float) and not math.isnan(v):
            return (0, -float(v))
        return (1, 0.0)

    return key


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.4g}" if abs(v) < 1000 else f"{v:,.0f}"
    return str(v).replace("|", "\\|")


def render(rows: list[dict[str, Any]], rank_by: str, title: str) -> tuple[str, str, list[dict]]:
    """The CSV text (job order), the leaderboard markdown (best ``rank_by`` first) and the rows,
    best first, each with its swept values (``row["swept"]``) as columns after ``job``."""
    keys = list(dict.fromkeys(k for r in rows for k in r.get("swept") or {}))
    swept = [column(k) for k in keys]
    rows = [{**r, **{column(k): v for k, v in (r.get("swept") or {}).items()}} for r in rows]
    buf = io.StringIO(newline="")
    w = csv.DictWriter(buf, fieldnames=["job", *swept, *COLUMNS[1:]], extrasaction="ignore")
    w.writeheader()
    w.writerows(rows)
    ranked = sorted(rows, key=_rank_key(rank_by))
    cols = ["rank", "job", *swept, *[c for c in COLUMNS[1:] if c not in ("run_dir",)]]
    ok = sum(r.get("status") == "ok" for r in rows)
    lines = [
        f"# Sweep leaderboard — {title}",
        "",
        f"{len(rows)} jobs, {ok} ok, {len(rows) - ok} failed; ranked by `{rank_by}` (best first).",
        "",
        "| " + " | ".join(cols) + " |",
        "|" + "---|" * len(cols),
    ]
    for i, r in enumerate(ranked, 1):
        rank = str(i) if r.get("status") == "ok" else "-"
        lines.append("| " + " | ".join([rank, *(_fmt(r.get(c)) for c in cols[1:])]) + " |")
    return redact(buf.getvalue()), redact("\n".join(lines) + "\n"), ranked


def report(
    ranked: list[dict], csv_path: str, md_path: str, rank_by: str, fetched: Prefetch | None
) -> None:
    """The sweep's last console lines: counts, what was fetched for it, the best and the failed."""
    failed = [r for r in ranked if r.get("status") != "ok"]
    csv_name = csv_path.rsplit("/", 1)[-1]
    print(f"\nSweep: {len(ranked)} jobs, {len(failed)} failed -> {md_path} and {csv_name}")
    if fetched is not None:
        n = len(fetched.errors)
        print(
            f"  fetched once for {fetched.jobs} job(s) before launching them: {fetched.bars:,} "
            f"bars in {fetched.requests:,} requests from IBKR"
            + (f", {n} error{'s' if n > 1 else ''}" if n else "")
            + f" ({fetched.log})"
        )
    for r in ranked[:5]:
        if r.get("status") == "ok":
            print(redact(f"  {_fmt(r.get(rank_by)):>10}  {describe(r)}"))
    for r in failed:
        print(redact(f"  FAILED (exit {r.get('exit_code')})  {describe(r)}: {r.get('error')}"))
