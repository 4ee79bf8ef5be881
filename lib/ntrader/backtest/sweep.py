"""Hydra callback for sweeps: ``sweep_summary.csv`` and ``leaderboard.md`` at the multirun root.

Before the launcher starts any job (``on_multirun_start``), each job's config is composed from its
overrides and checked against the catalog the way the job itself will check it; whatever the jobs
would auto-fetch from IBKR (``ibkr.auto_fetch``) is fetched once, in one connection: the union of
their (bar type, session range) needs (``fetch.log`` at the sweep root). Parallel jobs then find
their data in the catalog instead of racing for the fetch lock. Each job's console block is headed
by its swept values (``job 3/6 (folder 2): symbol=MSFT dates=2024q2``; printed by the task
wrapper, ``ntrader.runs.task``, from what ``on_job_start`` tells it).

Each job writes its own ``summary.json`` (also when it fails); this gathers them once the sweep
ends, so one failing job shows up with its error and exit code instead of stopping the sweep.
The table has one column per swept key (``symbol``, ``dates``, ``strategy.params.fast_ema_period``
…) holding that job's value, besides the job's full ``overrides``. Whatever the launcher (basic,
joblib, Ray, submitit), the job folders are read from where they end up: the local sweep folder,
or the store when the runs root is a URL (``NTRADER_RUNS=s3://…``); the summary is written next
to them.
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Iterator, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.experimental.callback import Callback
from loguru import logger
from omegaconf import DictConfig

from ntrader import runs
from ntrader.backtest import sweep_fetch, sweep_page
from ntrader.backtest.sweep_fetch import Prefetch
from ntrader.backtest.sweep_table import COLUMNS, render, report
from ntrader.errors import SYSTEM_ERROR
from ntrader.runs import notify
from ntrader.runs import store as run_store
from ntrader.runs.logs import setup_logging
from ntrader.runs.store import Folder
from ntrader.runs.task import set_job_label
from ntrader.secrets import redact, scrub_files

# ---------------------------------------------------------------- overrides and swept keys


@cache
def _parser() -> OverridesParser:
    return OverridesParser.create()


def _key(o: Override) -> str:
    """An override's key as its column is named: ``strategy.params.fast_ema_period``, ``dates``
    (a config group), ``group@package``; without a ``+`` / ``~`` prefix."""
    return o.key_or_group + (f"@{o.package}" if o.package else "")


def _value(o: Override) -> str:
    """An override's value as a person reads it, without Hydra's quotes: ``MSFT``, ``5``."""
    if o.is_delete():
        return "~"
    v = o.value()
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "null"
    if isinstance(v, int | float):
        return str(v)
    return o.get_value_element_as_str()


def job_values(overrides: Sequence[str], keys: Sequence[str] | None = None) -> dict[str, str]:
    """The value of each of ``keys`` in one job's overrides (``""`` where the job sets none);
    ``keys=None``: every override of the job."""
    found: dict[str, str] = {}
    for text in overrides:
        try:
            o = _parser().parse_override(str(text))
        except Exception:  # not Hydra syntax: nothing to show for it
            continue
        found[_key(o)] = _value(o)
    return found if keys is None else {k: found.get(k, "") for k in keys}


def _sweep_arguments(config: DictConfig) -> list[str]:
    """What Hydra's sweeper expands: ``hydra.sweeper.params``, then the command line's."""
    params = config.hydra.sweeper.get("params") or {}
    return [f"{k}={v}" for k, v in params.items()] + [str(o) for o in config.hydra.overrides.task]


def swept_keys(config: DictConfig) -> list[str] | None:
    """The keys a sweep varies (a comma list, range … on the command line or in
    ``hydra.sweeper.params``), in the order given; None when they cannot be read."""
    try:
        parsed = _parser().parse_overrides(_sweep_arguments(config))
    except Exception:
        return None
    return list(dict.fromkeys(_key(o) for o in parsed if o.is_sweep_override()))


def _launched(config: DictConfig) -> list[list[str]] | None:
    """Each job's overrides as Hydra's basic sweeper launches them, in job order."""
    try:
        from hydra._internal.core_plugins.basic_sweeper import BasicSweeper

        if not str(config.hydra.sweeper.get("_target_", "")).endswith(".BasicSweeper"):
            return None
        parsed = _parser().parse_overrides(_sweep_arguments(config))
        (batch,) = BasicSweeper.split_arguments(parsed, None)
        return [list(job) for job in batch]
    except Exception:  # hydra internals moved: list the folders found, as before
        return None


def launched_jobs(config: DictConfig) -> list[str] | None:
    """The overrides of each job Hydra's basic sweeper launched, in job order (None: another
    sweeper, whose jobs cannot be listed here)."""
    jobs = _launched(config)
    return None if jobs is None else [" ".join(job) for job in jobs]


def _varying_keys(jobs: Sequence[Sequence[str]]) -> list[str]:
    """The override keys whose value differs between ``jobs`` (when the sweep is unknown)."""
    values = [job_values(job) for job in jobs]
    keys = dict.fromkeys(k for v in values for k in v)
    return [k for k in keys if len({v.get(k) for v in values}) > 1]


# ---------------------------------------------------------------- the summary


def _job_row(job: Folder) -> dict[str, Any]:
    overrides_text = job.read_text(".hydra/overrides.yaml")
    overrides = yaml.safe_load(overrides_text) if overrides_text is not None else []
    listed = [str(o) for o in overrides or []]
    row: dict[str, Any] = {"job": int(job.name), "overrides": " ".join(listed), "_job": listed}
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
    sweep_dir: str | Path,
    leftovers: Path | None = None,
    expected: Sequence[str | Sequence[str]] | None = None,
    swept: Sequence[str] | None = None,
) -> list[dict[str, Any]]:
    """One row per job folder of ``sweep_dir`` (a path or a URL).

    ``leftovers``: the local staging folder of a sweep on object storage; a job whose upload
    failed kept its folder there and is read from it. ``expected``: the overrides of every job
    launched (see :func:`launched_jobs`: a string per job, or its list of overrides); a job
    without a folder gets a ``missing`` row. ``swept``: the keys the sweep varies (see
    :func:`swept_keys`; None: the keys whose value differs between the jobs); each row's
    ``swept`` maps them to that job's value.
    """
    jobs = {int(j.name): j for j in Folder(sweep_dir).job_folders()}
    if leftovers is not None and leftovers.is_dir():
        for d in leftovers.iterdir():
            if d.is_dir() and d.name.isdigit() and int(d.name) not in jobs:
                jobs[int(d.name)] = Folder(d)
    rows = {n: _job_row(job) for n, job in jobs.items()}
    for n, overrides in enumerate(expected or []):
        listed = overrides.split() if isinstance(overrides, str) else [str(o) for o in overrides]
        rows.setdefault(
            n,
            {
                "job": n,
                "overrides": " ".join(listed),
                "_job": listed,
                "status": "missing",
                "exit_code": None,
                "error": "no job folder: the job was lost, or wrote it on another machine "
                "(a sweep on a cluster needs RUNS=s3://… or a shared filesystem)",
            },
        )
    ordered = [rows[n] for n in sorted(rows)]
    keys = list(swept) if swept is not None else _varying_keys([r["_job"] for r in ordered])
    for r in ordered:
        r["swept"] = job_values(r.pop("_job"), keys)
    return ordered


def write_summary(
    sweep_dir: str | Path,
    rank_by: str = "sharpe",
    leftovers: Path | None = None,
    expected: Sequence[str | Sequence[str]] | None = None,
    swept: Sequence[str] | None = None,
) -> tuple[str, str, list[dict]]:
    """Write ``sweep_summary.csv`` and ``leaderboard.md`` into ``sweep_dir`` (a path or a URL):
    a row per job, a column per swept key (see :func:`collect`) after ``job``; returns where
    they are and the rows, best first."""
    folder = Folder(sweep_dir)
    csv_text, md_text, ranked = render(
        collect(sweep_dir, leftovers, expected, swept), rank_by, folder.name
    )
    csv_path = folder.write_text("sweep_summary.csv", csv_text)
    md_path = folder.write_text("leaderboard.md", md_text)
    return csv_path, md_path, ranked


# ---------------------------------------------------------------- one fetch for every job


def _job_configs(config: DictConfig, jobs: Sequence[Sequence[str]]) -> Iterator[tuple[int, Any]]:
    """Each job's config, composed from its overrides as its launcher will (a job whose
    overrides do not compose is left out: it reports that itself)."""
    from hydra.core.global_hydra import GlobalHydra

    if not GlobalHydra.instance().is_initialized():
        return
    loader = GlobalHydra.instance().config_loader()
    for n, overrides in enumerate(jobs):
        try:
            yield n, loader.load_sweep_config(config, list(overrides))
        except Exception:
            continue


def prefetch(config: DictConfig, jobs: Sequence[Sequence[str]]) -> Prefetch | None:
    """Fetch from IBKR, once, what ``jobs`` (each job's overrides) would each auto-fetch
    (:mod:`ntrader.backtest.sweep_fetch`); None when no job would fetch anything. Logs to the
    console and ``<sweep dir>/fetch.log``."""
    wanted = sweep_fetch.needs(_job_configs(config, jobs))
    if not wanted:
        return None
    sweep_dir = Path(str(config.hydra.sweep.dir))
    sweep_dir.mkdir(parents=True, exist_ok=True)
    run_id = f"{config.hydra.job.name}/{sweep_dir.name}/fetch"
    setup_logging(sweep_dir, "fetch", run_id, str(config.get("log_level") or "INFO"))
    try:
        result = sweep_fetch.fetch(wanted, len(jobs))
    finally:
        logger.remove()  # the console and fetch.log sinks: each job sets up its own
    result.log = run_store.location(sweep_dir / "fetch.log")
    return result


# ---------------------------------------------------------------- the callback


class SweepSummary(Callback):
    """``hydra.callbacks.sweep_summary`` in conf/backtest.yaml: fetches what the jobs need
    before they start, labels each job with its swept values, summarises the sweep at the end.

    What ``on_multirun_start`` learns (the jobs, the swept keys) travels with this object to
    each job's process (every launcher pickles the callbacks with the job)."""

    def __init__(self, rank_by: str = "sharpe") -> None:
        self.rank_by = rank_by
        self.jobs: list[list[str]] | None = None
        self.swept: list[str] | None = None
        self.prefetched: Prefetch | None = None

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self.jobs = _launched(config)
        self.swept = swept_keys(config)
        if not self.jobs:
            return
        try:
            self.prefetched = prefetch(config, self.jobs)
        except Exception as exc:  # never in the way of the sweep: each job fetches for itself
            logger.remove()
            print(
                "system error: fetching the sweep's data before launching its jobs failed: "
                f"{redact(f'{type(exc).__name__}: {exc}')}\nwhat to do: nothing; each job "
                "fetches what it lacks itself",
                file=sys.stderr,
            )

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        from hydra.types import RunMode

        try:
            if config.hydra.mode != RunMode.MULTIRUN:
                return
            overrides = [str(o) for o in config.hydra.overrides.task]
            num = int(config.hydra.job.num)
            folder = Path(str(config.hydra.runtime.output_dir)).name
        except Exception:  # the task wrapper labels the job with its overrides
            return
        total = f"/{len(self.jobs)}" if self.jobs else ""
        values = job_values(overrides, self.swept)
        text = " ".join(f"{k}={v}" for k, v in values.items())
        set_job_label(f"job {num + 1}{total} (folder {folder})" + (f": {text}" if text else ""))

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        if not sweep_dir.exists():
            return
        # until the summary is written (Hydra only warns on raise); ``runs.entry`` exits with it
        runs.set_multirun_exit_code(SYSTEM_ERROR)
        url = run_store.store_url(sweep_dir)
        expected = _launched(config)
        swept = swept_keys(config)
        if url is None:
            csv_path, md_path, ranked = write_summary(
                sweep_dir, self.rank_by, expected=expected, swept=swept
            )
        else:
            try:
                csv_path, md_path, ranked = _summarise_in_store(
                    sweep_dir, url, self.rank_by, expected, swept
                )
            except Exception as exc:
                print(
                    f"system error: the sweep summary could not be written to {url}: "
                    f"{redact(f'{type(exc).__name__}: {exc}')}\nwhat to do: check the bucket and "
                    f"the AWS_* variables; what the jobs left locally is summarised in {sweep_dir}",
                    file=sys.stderr,
                )
                csv_path, md_path, ranked = write_summary(
                    sweep_dir, self.rank_by, None, expected, swept
                )
                report(ranked, csv_path, md_path, self.rank_by, self.prefetched)
                codes = [r.get("exit_code") for r in ranked] + [SYSTEM_ERROR]  # the upload
                notify.sweep_ended(config.get("notify"), str(sweep_dir), codes, str(md_path))
                return  # the exit code stays 4
        page = sweep_page.write_or_warn(
            Folder(url or sweep_dir), ranked, swept, self.rank_by, _equity_csv
        )
        codes = [r.get("exit_code") for r in ranked]
        runs.set_multirun_exit_code(
            max([c if isinstance(c, int) else SYSTEM_ERROR for c in codes] + [0])
        )
        report(ranked, csv_path, md_path, self.rank_by, self.prefetched)
        if page is not None:
            print(f"sweep page: {page}")
        notify.sweep_ended(config.get("notify"), url or str(sweep_dir), codes, str(md_path))


def _equity_csv(run_dir: str) -> str | None:
    """A job's ``equity.csv`` (local or in the store), for the sweep page."""
    return Folder(run_dir).read_text("equity.csv") if run_dir else None


def _summarise_in_store(
    sweep_dir: Path,
    url: str,
    rank_by: str,
    expected: Sequence[Sequence[str]] | None,
    swept: Sequence[str] | None,
) -> tuple[str, str, list[dict]]:
    """Jobs uploaded their folders; add ``multirun.yaml`` (and ``fetch.log``), summarise from
    the store, tidy up."""
    scrub_files(sweep_dir, "multirun.yaml")
    run_store.upload(sweep_dir, url, top_level_only=True)
    result = write_summary(url, rank_by, leftovers=sweep_dir, expected=expected, swept=swept)
    for f in sweep_dir.iterdir():
        if f.is_file():
            f.unlink()
    if not any(sweep_dir.iterdir()):  # else: job folders whose upload failed stay
        shutil.rmtree(sweep_dir, ignore_errors=True)
    return result
