"""Hydra callback for sweeps: ``sweep_summary.csv`` and ``leaderboard.md`` at the multirun root.

Each job writes its own ``summary.json`` (also when it fails); this gathers them once the sweep
ends, so one failing job shows up with its error and exit code instead of stopping the sweep.
Whatever the launcher (basic, joblib, Ray, submitit), the job folders are read from where they end
up: the local sweep folder, or the store when the runs root is a URL (``NTRADER_RUNS=s3://…``);
the summary is written next to them.
"""

from __future__ import annotations

import csv
import io
import json
import math
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from ntrader import runs
from ntrader.errors import SYSTEM_ERROR
from ntrader.runs import store as run_store
from ntrader.secrets import redact, scrub_files

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


class Folder:
    """A folder read and written through fsspec: a local path or a URL (``s3://…``)."""

    def __init__(self, where: str | Path) -> None:
        self.where = str(where).rstrip("/")
        self.fs, self.path = run_store.filesystem(self.where)
        self.name = self.path.rstrip("/").rsplit("/", 1)[-1]

    def child(self, name: str) -> Folder:
        return Folder(f"{self.where}/{name}")

    def read_text(self, name: str) -> str | None:
        try:
            return bytes(self.fs.cat_file(f"{self.path}/{name}")).decode()
        except FileNotFoundError:
            return None

    def write_text(self, name: str, text: str) -> str:
        self.fs.pipe_file(f"{self.path}/{name}", text.encode())
        return f"{self.where}/{name}"

    def job_folders(self) -> list[Folder]:
        """The numbered job folders, in job order."""
        self.fs.invalidate_cache(self.path)
        try:
            entries = self.fs.ls(self.path, detail=True)
        except FileNotFoundError:
            return []
        names = [
            str(e["name"]).rstrip("/").rsplit("/", 1)[-1]
            for e in entries
            if e.get("type") == "directory"
        ]
        return [self.child(n) for n in sorted((n for n in names if n.isdigit()), key=int)]


def _job_row(job: Folder) -> dict[str, Any]:
    overrides_text = job.read_text(".hydra/overrides.yaml")
    overrides = yaml.safe_load(overrides_text) if overrides_text is not None else []
    row: dict[str, Any] = {"job": int(job.name), "overrides": " ".join(overrides or [])}
    row["run_dir"] = job.where
    summary_text = job.read_text("summary.json")
    if summary_text is None:
        row.update(status="crashed", exit_code=None, error="no summary.json (job killed?)")
        return row
    s = json.loads(summary_text)
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


def collect(
    sweep_dir: str | Path, leftovers: Path | None = None, expected: list[str] | None = None
) -> list[dict[str, Any]]:
    """One row per job folder of ``sweep_dir`` (a path or a URL).

    ``leftovers``: the local staging folder of a sweep on object storage; a job whose upload
    failed kept its folder there and is read from it. ``expected``: the overrides of every job
    launched (see :func:`launched_jobs`); a job without a folder gets a ``missing`` row.
    """
    jobs = {int(j.name): j for j in Folder(sweep_dir).job_folders()}
    if leftovers is not None and leftovers.is_dir():
        for d in leftovers.iterdir():
            if d.is_dir() and d.name.isdigit() and int(d.name) not in jobs:
                jobs[int(d.name)] = Folder(d)
    rows = {n: _job_row(job) for n, job in jobs.items()}
    for n, overrides in enumerate(expected or []):
        rows.setdefault(
            n,
            {
                "job": n,
                "overrides": overrides,
                "status": "missing",
                "exit_code": None,
                "error": "no job folder: the job was lost, or wrote it on another machine "
                "(a sweep on a cluster needs RUNS=s3://… or a shared filesystem)",
            },
        )
    return [rows[n] for n in sorted(rows)]


def launched_jobs(config: DictConfig) -> list[str] | None:
    """The overrides of each job Hydra's basic sweeper launched, in job order (None: another
    sweeper, whose jobs cannot be listed here)."""
    try:
        from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
        from hydra.core.override_parser.overrides_parser import OverridesParser

        if not str(config.hydra.sweeper.get("_target_", "")).endswith(".BasicSweeper"):
            return None
        params = config.hydra.sweeper.get("params") or {}
        args = [f"{k}={v}" for k, v in params.items()] + list(config.hydra.overrides.task)
        parsed = OverridesParser.create().parse_overrides(args)
        (batch,) = BasicSweeper.split_arguments(parsed, None)
        return [" ".join(job) for job in batch]
    except Exception:  # hydra internals moved: list the folders found, as before
        return None


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


def write_summary(
    sweep_dir: str | Path,
    rank_by: str = "sharpe",
    leftovers: Path | None = None,
    expected: list[str] | None = None,
) -> tuple[str, str, list[dict]]:
    """Write ``sweep_summary.csv`` and ``leaderboard.md`` into ``sweep_dir`` (a path or a URL);
    returns where they are and the rows, best first."""
    folder = Folder(sweep_dir)
    rows = collect(sweep_dir, leftovers, expected)
    buf = io.StringIO(newline="")
    w = csv.DictWriter(buf, fieldnames=list(COLUMNS), extrasaction="ignore")
    w.writeheader()
    w.writerows(rows)
    csv_path = folder.write_text("sweep_summary.csv", redact(buf.getvalue()))
    ranked = sorted(rows, key=_rank_key(rank_by))
    cols = ["rank", *[c for c in COLUMNS if c not in ("run_dir",)]]
    ok = sum(r.get("status") == "ok" for r in rows)
    lines = [
        f"# Sweep leaderboard — {folder.name}",
        "",
        f"{len(rows)} jobs, {ok} ok, {len(rows) - ok} failed; ranked by `{rank_by}` (best first).",
        "",
        "| " + " | ".join(cols) + " |",
        "|" + "---|" * len(cols),
    ]
    for i, r in enumerate(ranked, 1):
        rank = str(i) if r.get("status") == "ok" else "-"
        lines.append("| " + " | ".join([rank, *(_fmt(r.get(c)) for c in cols[1:])]) + " |")
    md_path = folder.write_text("leaderboard.md", redact("\n".join(lines) + "\n"))
    return csv_path, md_path, ranked


class SweepSummary(Callback):
    """``hydra.callbacks.sweep_summary`` in conf/backtest.yaml."""

    def __init__(self, rank_by: str = "sharpe") -> None:
        self.rank_by = rank_by

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        if not sweep_dir.exists():
            return
        # until the summary is written (Hydra only warns on raise); ``runs.entry`` exits with it
        runs.set_multirun_exit_code(SYSTEM_ERROR)
        url = run_store.store_url(sweep_dir)
        expected = launched_jobs(config)
        if url is None:
            csv_path, md_path, ranked = write_summary(sweep_dir, self.rank_by, expected=expected)
        else:
            try:
                csv_path, md_path, ranked = _summarise_in_store(
                    sweep_dir, url, self.rank_by, expected
                )
            except Exception as exc:
                print(
                    f"system error: the sweep summary could not be written to {url}: "
                    f"{redact(f'{type(exc).__name__}: {exc}')}\nwhat to do: check the bucket and "
                    f"the AWS_* variables; what the jobs left locally is summarised in {sweep_dir}",
                    file=sys.stderr,
                )
                csv_path, md_path, ranked = write_summary(sweep_dir, self.rank_by, None, expected)
                _report(ranked, csv_path, md_path, self.rank_by)
                return  # the exit code stays 4
        codes = [r.get("exit_code") for r in ranked]
        runs.set_multirun_exit_code(
            max([c if isinstance(c, int) else SYSTEM_ERROR for c in codes] + [0])
        )
        _report(ranked, csv_path, md_path, self.rank_by)


def _summarise_in_store(
    sweep_dir: Path, url: str, rank_by: str, expected: list[str] | None
) -> tuple[str, str, list[dict]]:
    """Jobs uploaded their folders; add ``multirun.yaml``, summarise from the store, tidy up."""
    scrub_files(sweep_dir, "multirun.yaml")
    run_store.upload(sweep_dir, url, top_level_only=True)
    result = write_summary(url, rank_by, leftovers=sweep_dir, expected=expected)
    for f in sweep_dir.iterdir():
        if f.is_file():
            f.unlink()
    if not any(sweep_dir.iterdir()):  # else: job folders whose upload failed stay
        shutil.rmtree(sweep_dir, ignore_errors=True)
    return result


def _report(ranked: list[dict], csv_path: str, md_path: str, rank_by: str) -> None:
    failed = [r for r in ranked if r.get("status") != "ok"]
    csv_name = csv_path.rsplit("/", 1)[-1]
    print(f"\nSweep: {len(ranked)} jobs, {len(failed)} failed -> {md_path} and {csv_name}")
    for r in ranked[:5]:
        if r.get("status") == "ok":
            print(f"  {_fmt(r.get(rank_by)):>10}  {r['overrides']}")
    for r in failed:
        print(f"  FAILED (exit {r.get('exit_code')})  {r['overrides']}: {r.get('error')}")
