"""The task wrapper every script goes through: run folder, logging, ``summary.json`` (written on
success AND on failure), exceptions mapped to exit codes in one place (``ntrader.errors``).

Each run gets ``runs/<script>/<YYYY-MM-DD_HH-MM-SS>[_<tag>]/`` (Hydra's run dir) with ``.hydra/``,
``<script>.log`` and ``summary.json``. A multirun job's console output comes as one block at its
end, headed by the job and its swept values (``job 3/6 (folder 2): symbol=MSFT dates=2024q2``),
so parallel jobs' results do not interleave. With the runs root on object storage
(``NTRADER_RUNS=s3://…``) the folder is staged locally and uploaded when the run ends, whatever
its outcome (``ntrader.runs.store``).

Start-up (``entry`` -> :func:`prepare_hydra`): Hydra's plugin scan skips the launcher plugins no
``hydra/launcher=…`` override names, and its mode probe is answered without composing the config
(``ntrader.runs.startup``).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from loguru import logger
from omegaconf import DictConfig
from omegaconf.errors import OmegaConfBaseException

from ntrader.errors import INPUT_ERROR, SYSTEM_ERROR, InputError, NtraderError, exit_code_for
from ntrader.runs import notify, provenance, startup
from ntrader.runs import store as run_store
from ntrader.runs.folders import unique_run_dir
from ntrader.runs.logs import setup_logging
from ntrader.secrets import redact, scrub_files
from ntrader.tabular import write_json_atomic

RUN_ID_ENV = "NTRADER_RUN_ID"  # read by ntrader.catalog.commitlog (runs may not import catalog)

_JOB_STARTED = False
_MULTIRUN_EXIT_CODE = 0  # the worst job's exit code of the last multirun, set by its summary
_JOB_LABEL: str | None = None  # the next multirun job's console heading, set by a sweep callback


def set_multirun_exit_code(code: int) -> None:
    """Called by a multirun's end-of-sweep callback: :func:`entry` exits with ``code``."""
    global _MULTIRUN_EXIT_CODE
    _MULTIRUN_EXIT_CODE = code


def set_job_label(label: str | None) -> None:
    """Called by a sweep callback's ``on_job_start`` (in the job's process): the line that names
    the multirun job about to run and heads its console block, e.g.
    ``job 3/6 (folder 2): symbol=MSFT dates=2024q2``. Without one a job is named by its number
    and overrides."""
    global _JOB_LABEL
    _JOB_LABEL = label


def _take_job_label(run_dir: Path, overrides: list[str]) -> str:
    global _JOB_LABEL
    label, _JOB_LABEL = _JOB_LABEL, None
    if label:
        return label
    num = int(run_dir.name) + 1 if run_dir.name.isdigit() else "?"
    return f"job {num} (folder {run_dir.name}): {' '.join(overrides)}".rstrip(": ")


def _print_job_block(label: str, output: str, summary: dict[str, Any], code: int) -> None:
    """A multirun job's console output in one write: its label, what it printed, how it failed."""
    lines = [label, output.rstrip("\n")] if output.strip() else [label]
    if code:
        err = summary.get("error") or {}
        message = " ".join(str(err.get("message", "")).split())
        lines.append(f"  failed with exit code {code}: {err.get('kind', 'error')}: {message[:300]}")
    sys.stdout.write(redact("\n".join(lines)) + "\n")
    sys.stdout.flush()


@dataclass
class RunContext:
    """What a script's body gets besides its config: the run folder, id, timings and counts."""

    script: str
    run_dir: Path
    run_id: str
    timings: dict[str, float] = field(default_factory=dict)
    counts: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    manifest: dict[str, Any] = field(default_factory=dict)  # the data read (manifest.json)

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        """Time a named step; it lands in ``summary.json`` under ``timings``."""
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = round(time.perf_counter() - t0, 4)


def run_task(
    cfg: DictConfig, script: str, body: Callable[[DictConfig, RunContext], dict[str, Any] | None]
) -> int:
    """Run a script body inside its run folder; always write ``summary.json``; return exit code.

    In a single run the process exits with that code; in a Hydra multirun the code is returned so
    the sweep goes on (the sweep callback reads each job's ``summary.json``). A staged run folder
    (runs root on object storage) is uploaded at the very end; if that fails the local copy stays,
    its ``summary.json`` says so and the code becomes 4.
    """
    global _JOB_STARTED
    _JOB_STARTED = True
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    hc = HydraConfig.get()
    run_dir = Path(hc.runtime.output_dir)
    multirun = hc.mode != RunMode.RUN
    scrub_files(run_dir / ".hydra")  # a DSN with a password given as an override
    if multirun:
        scrub_files(run_dir.parent, "multirun.yaml")
    run_id = f"{script}/{run_dir.name}"
    if multirun:  # multirun job folders are numbers under the sweep folder
        run_id = f"{script}/{run_dir.parent.name}/{run_dir.name}"
    file_sink = setup_logging(run_dir, script, run_id, str(cfg.get("log_level", "INFO")))
    os.environ[RUN_ID_ENV] = run_id  # the catalog's commit log names the writing run
    label = _take_job_label(run_dir, [str(o) for o in hc.overrides.task]) if multirun else ""
    if label:
        logger.info(label)
    # a multirun job's stdout is printed at its end, as one block headed by its label
    output = io.StringIO()
    capture = contextlib.redirect_stdout(output) if multirun else contextlib.nullcontext()
    ctx = RunContext(script, run_dir, run_id)
    started = datetime.now(UTC)
    t0 = time.perf_counter()
    where = run_store.location(run_dir)  # the store URL of a staged folder, else the local path
    summary: dict[str, Any] = {"script": script, "run_id": run_id, "run_dir": where}
    code = 0
    alerts = notify.NotifySpec()  # a sweep alerts once, at its end (ntrader.backtest.sweep)
    try:
        try:
            if not multirun:
                alerts = _alerts(cfg, run_dir)
            with capture:
                summary.update(body(cfg, ctx) or {})
        except OmegaConfBaseException as exc:  # e.g. a mandatory ??? value left unset
            raise InputError(
                f"configuration: {str(exc).splitlines()[0]}",
                hint=f"set it on the command line (see `make help`) or in conf/{script}.yaml",
            ) from exc
        summary["status"] = "ok"
    except NtraderError as exc:
        code = exc.exit_code
        summary.update(getattr(exc, "result", None) or {})  # what an incomplete run produced
        summary["status"] = getattr(exc, "status", "failed")
        if getattr(exc, "problems", None):
            summary["problems"] = exc.problems  # type: ignore[attr-defined]
        summary["error"] = {"kind": exc.kind, "message": str(exc), "hint": exc.hint}
        logger.error(f"{exc.kind}: {exc}")
        if exc.hint:
            logger.error(f"what to do: {exc.hint}")
    except KeyboardInterrupt:
        code = exit_code_for(KeyboardInterrupt())
        summary["status"] = "interrupted"
        logger.error("interrupted; the catalog holds only completed writes — rerun to finish")
    except Exception as exc:  # a bug or an unexpected system failure
        code = exit_code_for(exc)
        summary["status"] = "failed"
        summary["error"] = {
            "kind": "system error",
            "message": f"{type(exc).__name__}: {exc}",
            "hint": f"unexpected failure; the traceback is in {run_dir / (script + '.log')}",
        }
        logger.error(f"system error: {type(exc).__name__}: {exc}")
        logger.debug(traceback.format_exc())
        logger.error(f"what to do: see the traceback in {run_dir / (script + '.log')}")
    finally:
        t_manifest = time.perf_counter()
        try:
            manifest = provenance.manifest(cfg, ctx.run_id, ctx.manifest)
        except Exception as exc:  # never costs the summary
            manifest = {"format": 1, "run_id": run_id, "error": f"{type(exc).__name__}: {exc}"}
            logger.warning(f"manifest.json is incomplete: {manifest['error']}")
        manifest["code_s"] = round(time.perf_counter() - t_manifest, 4)  # git, versions, hash
        summary["exit_code"] = code
        summary["started"] = started.isoformat()
        summary["finished"] = datetime.now(UTC).isoformat()
        summary["duration_s"] = round(time.perf_counter() - t0, 4)
        summary["timings"] = ctx.timings
        summary["counts"] = ctx.counts
        if sent := notify.send(alerts, summary):
            summary["notify"] = sent
        write_json_atomic(run_dir / "summary.json", summary)
        write_json_atomic(run_dir / "manifest.json", manifest)
        logger.info(f"run folder: {where}")
        logger.remove(file_sink)  # the log is complete: close it before the upload
        if (published := _publish(run_dir, summary, code)) != code and alerts.urls:
            notify.send(alerts, summary)  # the upload failed: that is news too
        code = published
        _heartbeat(run_dir.parents[2] if multirun else run_dir.parent, summary)
        if multirun:
            _print_job_block(label, output.getvalue(), summary, code)
    if hc.mode == RunMode.RUN:
        exit_now(code)
    return code


def _alerts(cfg: DictConfig, run_dir: Path) -> notify.NotifySpec:
    """The run's ``notify`` settings, checked (an unusable URL: exit 2 before any work) and
    masked in the ``.hydra/`` files."""
    try:
        spec = notify.NotifySpec.of(cfg.get("notify"))
    except OmegaConfBaseException as exc:
        raise InputError(f"notify: {str(exc).splitlines()[0]}") from exc
    notify.scrub(run_dir / ".hydra", spec)
    spec.check()
    return spec


HEARTBEAT = ("script", "run_id", "run_dir", "status", "exit_code", "started", "finished")


def _heartbeat(script_dir: Path, summary: dict[str, Any]) -> None:
    """``<runs>/<script>/latest.json``: the script's last run — status, exit code, times, the
    error message — for external monitors (replaced in one rename; uploaded next to the run
    folders when they live in a store). Never fails the run."""
    beat = {k: summary.get(k) for k in HEARTBEAT}
    beat["message"] = (summary.get("error") or {}).get("message")
    try:
        script_dir.mkdir(parents=True, exist_ok=True)
        tmp = script_dir / f".latest.json.{uuid.uuid4().hex}.tmp"  # jobs of a sweep race here
        tmp.write_text(redact(json.dumps(beat, indent=2, default=str)) + "\n")
        os.replace(tmp, script_dir / "latest.json")
        url = run_store.store_url(script_dir)
        if url:  # staged: it belongs next to the uploaded run folders
            fs, path = run_store.filesystem(f"{url}/latest.json")
            fs.put_file(str(script_dir / "latest.json"), path)
            (script_dir / "latest.json").unlink()
    except Exception as exc:
        logger.warning(f"could not write the heartbeat {script_dir / 'latest.json'}: {exc}")


def _publish(run_dir: Path, summary: dict[str, Any], code: int) -> int:
    """Upload a staged run folder to the store; on failure keep it and record why (exit 4)."""
    if run_store.store_url(run_dir) is None:
        return code
    try:
        run_store.publish(run_dir)
        return code
    except Exception as exc:
        message = redact(f"{type(exc).__name__}: {exc}")
        logger.error(f"system error: could not upload the run folder to {summary['run_dir']}")
        logger.error(message)
        logger.error(f"what to do: the run folder is kept at {run_dir}; check the store access")
        summary.update(status="failed", exit_code=max(code, SYSTEM_ERROR), run_dir=str(run_dir))
        summary["error"] = {
            "kind": "system error",
            "message": f"upload to {run_store.store_url(run_dir)} failed: {message}",
            "hint": "check the bucket and the AWS credentials / endpoint (AWS_* variables)",
        }
        write_json_atomic(run_dir / "summary.json", summary)
        return max(code, SYSTEM_ERROR)


def exit_now(code: int) -> None:
    """End a finished single run with ``code``, skipping native libraries' teardown.

    Arrow's C++ thread pools can abort the interpreter at exit ("terminate called without an
    active exception", SIGABRT; apache/arrow#34314 — seen here once in ~90 runs), which would turn a
    finished run's exit code into -6. Everything is written and flushed by now."""
    logger.complete()
    logger.remove()  # closes the run folder's log file
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _write_prejob_summary(error: InputError | None = None) -> None:
    """Hydra (or, given ``error``, a Make variable) rejected the config before the job started:
    still leave a run folder + summary."""
    script = Path(sys.argv[0]).stem
    stamp = datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    run_dir = Path(unique_run_dir(f"{run_store.local_root()}/{script}/{stamp}"))
    now = datetime.now(UTC).isoformat()
    summary = {
        "script": script,
        "run_id": f"{script}/{run_dir.name}",
        "run_dir": run_store.location(run_dir),
        "status": "failed",
        "exit_code": INPUT_ERROR,
        "error": {
            "kind": "input error",
            "message": "invalid configuration or override (Hydra's message is on stderr)",
            "hint": "check the override names against conf/*.yaml and `make help`",
        }
        if error is None
        else {"kind": error.kind, "message": error.message, "hint": error.hint},
        "overrides": sys.argv[1:],
        "started": now,
        "finished": now,
    }
    try:  # the config never composed: only the environment can name where alerts go
        alerts = notify.NotifySpec.of({"url": os.environ.get(notify.URL_ENV)})
        if sent := notify.send(alerts, summary):
            summary["notify"] = sent
    except InputError:
        pass
    write_json_atomic(run_dir / "summary.json", summary)
    _publish(run_dir, summary, INPUT_ERROR)


def entry(hydra_main: Callable[[], Any]) -> None:
    """Call a ``@hydra.main`` function; Hydra's own config errors exit 2 (input error), not 1.

    Run by ``make <target>`` (``NTRADER_MAKE_TARGET`` set), the Make variables become the
    overrides first (``ntrader.runs.make_args``); a bad one exits 2 the same way."""
    from ntrader.runs import make_args  # not at the top: `python -m ntrader.runs.make_args`

    if os.environ.get(make_args.TARGET):
        try:
            make_args.apply()
        except InputError as exc:
            _write_prejob_summary(exc)
            make_args.report(exc)
            raise SystemExit(INPUT_ERROR) from None
    startup.prepare_hydra()  # skip the launcher plugins and the mode probe a run does not need
    try:
        hydra_main()
    except SystemExit as exc:
        if exc.code == 1 and not _JOB_STARTED:
            _write_prejob_summary()
            print(
                "input error: the configuration or an override is invalid (see above)\n"
                "what to do: check the override names against `make help` and README "
                "'Configuration'; `python scripts/<script>.py --cfg job` prints the config",
                file=sys.stderr,
            )
            raise SystemExit(INPUT_ERROR) from None
        raise
    if _MULTIRUN_EXIT_CODE:  # a multirun returns here: exit with its worst job's code
        raise SystemExit(_MULTIRUN_EXIT_CODE)
