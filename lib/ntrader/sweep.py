"""Hydra callback for sweeps: ``sweep_summary.csv`` and ``leaderboard.md`` at the multirun root.

Each job writes its own ``summary.json`` (also when it fails); this gathers them once the sweep
ends, so one failing job shows up with its error and exit code instead of stopping the sweep.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

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


def _job_row(job_dir: Path) -> dict[str, Any]:
    overrides_file = job_dir / ".hydra" / "overrides.yaml"
    overrides = yaml.safe_load(overrides_file.read_text()) if overrides_file.exists() else []
    row: dict[str, Any] = {"job": int(job_dir.name), "overrides": " ".join(overrides or [])}
    row["run_dir"] = str(job_dir)
    summary_file = job_dir / "summary.json"
    if not summary_file.exists():
        row.update(status="crashed", exit_code=None, error="no summary.json (job killed?)")
        return row
    s = json.loads(summary_file.read_text())
    result = s.get("result") or {}
    row.update(status=s.get("status"), exit_code=s.get("exit_code"), duration_s=s.get("duration_s"))
    for key in COLUMNS:
        if key in result:
            row[key] = result[key]
    err = s.get("error")
    if err:
        message = " ".join(str(err.get("message", "")).split())
        row["error"] = f"{err.get('kind')}: {message[:300]}"
    return row


def collect(sweep_dir: Path) -> list[dict[str, Any]]:
    jobs = [d for d in sweep_dir.iterdir() if d.is_dir() and d.name.isdigit()]
    return [_job_row(d) for d in sorted(jobs, key=lambda d: int(d.name))]


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


def write_summary(sweep_dir: Path, rank_by: str = "sharpe") -> tuple[Path, Path, list[dict]]:
    rows = collect(sweep_dir)
    csv_path = sweep_dir / "sweep_summary.csv"
    with open(csv_path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(COLUMNS), extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    ranked = sorted(rows, key=_rank_key(rank_by))
    cols = ["rank", *[c for c in COLUMNS if c not in ("run_dir",)]]
    ok = sum(r.get("status") == "ok" for r in rows)
    lines = [
        f"# Sweep leaderboard — {sweep_dir.name}",
        "",
        f"{len(rows)} jobs, {ok} ok, {len(rows) - ok} failed; ranked by `{rank_by}` (best first).",
        "",
        "| " + " | ".join(cols) + " |",
        "|" + "---|" * len(cols),
    ]
    for i, r in enumerate(ranked, 1):
        rank = str(i) if r.get("status") == "ok" else "-"
        lines.append("| " + " | ".join([rank, *(_fmt(r.get(c)) for c in cols[1:])]) + " |")
    md_path = sweep_dir / "leaderboard.md"
    md_path.write_text("\n".join(lines) + "\n")
    return csv_path, md_path, ranked


WORST_EXIT_CODE = 0  # of the last sweep in this process; ``runs.entry`` exits with it


class SweepSummary(Callback):
    """``hydra.callbacks.sweep_summary`` in conf/backtest.yaml."""

    def __init__(self, rank_by: str = "sharpe") -> None:
        self.rank_by = rank_by

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        if not sweep_dir.exists():
            return
        global WORST_EXIT_CODE
        csv_path, md_path, ranked = write_summary(sweep_dir, self.rank_by)
        failed = [r for r in ranked if r.get("status") != "ok"]
        codes = [r.get("exit_code") for r in ranked]
        WORST_EXIT_CODE = max([c if isinstance(c, int) else 4 for c in codes] + [0])
        print(f"\nSweep: {len(ranked)} jobs, {len(failed)} failed -> {md_path} and {csv_path.name}")
        for r in ranked[:5]:
            if r.get("status") == "ok":
                print(f"  {_fmt(r.get(self.rank_by)):>10}  {r['overrides']}")
        for r in failed:
            print(f"  FAILED (exit {r.get('exit_code')})  {r['overrides']}: {r.get('error')}")
