"""Readers while a writer commits continuously: every read sees one committed state, none fails.

One writer process merges overlapping ranges and appends, without pause, and logs each committed
state (row count, close-price checksum, last bar). Reader processes loop over the read paths of
the scripts — ``list_catalog`` (scan), ``quality.check_bar_type`` (check), ``Catalog.read`` and
``Catalog.read_bars`` (backtest load) — and a plain ``ParquetDataCatalog(root).bars()``. Each
runs in its own process, so an abort (a Rust panic, SIGABRT) is seen as such.

ntrader's readers: no failure, no abort, every read equal to a committed state. A plain Nautilus
reader cannot be protected the same way: NautilusTrader 1.231 aborts the process (a panic in
``persistence/src/backend/session.rs``) when a file it listed is removed before it opens it, and
nothing the catalog does can keep a removed file under its live name without showing it to new
readers. Those aborts are counted and printed; any other abort (a file changed under a name:
"Unexpected PageType") fails, and so does a successful plain read that is not a committed state
(local exchange commits).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from .conftest import REPO
from .s3_fixtures import s3 as s3

BT = "AAPL.NASDAQ-1-MINUTE-LAST-EXTERNAL"
NTRADER_KINDS = ("scan", "check", "read", "read_bars")
DURATION_S = float(os.environ.get("NTRADER_READERS_S") or 15)


# ------------------------------------------------------------------ child processes
def _wait_go(work: Path, name: str) -> float:
    (work / f"ready.{name}").touch()
    while not (work / "go").exists():
        time.sleep(0.02)
    time.sleep(0.01)
    return float((work / "go").read_text())


def _checksum(closes) -> int:
    import numpy as np

    return int(np.rint(np.asarray(closes, dtype=float) * 100).astype(np.int64).sum())


def writer_main(root: str, work: str, appends_only: bool = False) -> None:
    """Seed, then commit without pause until the deadline (merges over overlapping ranges and
    appends, or appends only); log every committed state."""
    import numpy as np

    from ntrader.catalog.catalog import Catalog
    from ntrader.instruments import make_equity, resolve_instrument_id

    from .conftest import MINUTE, T0, frame

    w = Path(work)
    # Appends only: no automatic compaction either (it removes files, like a merge does).
    c = Catalog(root, compact_threshold=0) if appends_only else Catalog(root)
    eq = make_equity(resolve_instrument_id("AAPL"), 2)
    close = np.full(200_000, np.nan)

    def commit(minutes: range, price: float) -> None:
        f = frame(minutes, price)
        c.write_bars(BT, f, mode="merge", instrument=eq)
        close[np.asarray(minutes)] = f.close
        have = np.flatnonzero(~np.isnan(close))
        state = {"n": len(have), "sum": _checksum(close[have]), "last": T0 + int(have[-1]) * MINUTE}
        with open(w / "states.jsonl", "a") as log:
            log.write(json.dumps(state) + "\n")

    end = 2000
    for i in range(4):  # a few files to begin with
        commit(range(i * 500, i * 500 + 480), 100.0)
    commit(range(0, end), 100.0)
    deadline = _wait_go(w, "writer")
    rng = np.random.default_rng(7)
    i = 0
    while time.time() < deadline:
        i += 1
        if appends_only or i % 4 == 0:
            commit(range(end, end + 60), 100.0 + (i % 997) * 0.01)
            end += 60
        else:
            a = int(rng.integers(0, end - 400))
            commit(range(a, a + int(rng.integers(50, 400))), 100.0 + (i % 997) * 0.01)
    _exit_done()


def reader_main(root: str, work: str, kind: str, name: str) -> None:
    """Read in a loop until the deadline; log each read (state or error)."""
    w = Path(work)
    opts = json.loads(os.environ.get("NTRADER_TEST_NAUTILUS_OPTS") or "{}")
    deadline = _wait_go(w, name)
    with open(w / f"reads.{name}.jsonl", "a", buffering=1) as log:
        _read_loop(root, kind, opts, deadline, log)
    _exit_done()


def _exit_done() -> None:
    """Every read/commit is logged and flushed: exit 0 without the interpreter's teardown, as
    the scripts do (``ntrader.runs.exit_now``: Arrow's thread pools can SIGABRT at exit,
    apache/arrow#34314 — seen once here as a reader "dying" after its last read). A crash while
    reading still shows: it never gets here."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _read_loop(root: str, kind: str, opts: dict, deadline: float, log) -> None:
    import datetime as dt

    from nautilus_trader.model.data import BarType
    from nautilus_trader.persistence.catalog import ParquetDataCatalog

    from ntrader.catalog.catalog import Catalog
    from ntrader.catalog.inventory import list_catalog
    from ntrader.quality import check_bar_type

    plain_root = os.environ.get("NTRADER_TEST_PLAIN_ROOT") or root
    while time.time() < deadline:
        t0 = time.perf_counter()
        try:
            if kind == "scan":
                a = next(x for x in list_catalog(Catalog(root)) if x.bar_type == BT)
                out = {"n": a.rows, "last": a.last_ns}
            elif kind == "check":
                rep = check_bar_type(Catalog(root), BarType.from_str(BT), start=dt.date(2024, 1, 2))
                out = {"n": rep.availability.rows, "last": rep.availability.last_ns}
            elif kind == "read":
                f = Catalog(root).read(BT)
                out = {"n": len(f), "sum": _checksum(f.close), "last": int(f.ts_event[-1])}
            else:
                if kind == "read_bars":
                    bars = Catalog(root).read_bars(BT)
                else:
                    bars = ParquetDataCatalog(plain_root, **opts).bars([BT])
                closes = [b.close.as_double() for b in bars]
                out = {"n": len(bars), "sum": _checksum(closes), "last": bars[-1].ts_event}
            out["ok"] = True
        except Exception as exc:
            out = {"ok": False, "err": f"{type(exc).__name__}: {exc}"[:500]}
        out["ms"] = round((time.perf_counter() - t0) * 1000, 1)
        log.write(json.dumps(out) + "\n")


# ------------------------------------------------------------------ harness
def _spawn(work: Path, env: dict, call: str, name: str) -> subprocess.Popen:
    code = f"import tests.test_catalog_readers as m; m.{call}"
    with open(work / f"stderr.{name}", "ab") as err:  # the child keeps its own descriptor
        return subprocess.Popen([sys.executable, "-c", code], cwd=REPO, env=env, stderr=err)


def run_readers(
    root: str, work: Path, duration: float, env_extra: dict, appends_only: bool = False
) -> dict:
    """Writer + one reader process per kind for ``duration`` s; returns what happened."""
    env = {**os.environ, **env_extra}
    work.mkdir(parents=True, exist_ok=True)
    call = f"writer_main({root!r}, {str(work)!r}, {appends_only!r})"
    writer = _spawn(work, env, call, "writer")
    kinds = [*NTRADER_KINDS, "plain"]
    procs = {
        k: _spawn(work, env, f"reader_main({root!r}, {str(work)!r}, {k!r}, {k!r})", k)
        for k in kinds
    }
    names = ["writer", *kinds]
    t0 = time.time()
    while not all((work / f"ready.{n}").exists() for n in names):
        assert writer.poll() is None, (work / "stderr.writer").read_text()[-3000:]
        assert time.time() - t0 < 300, "children did not start"
        time.sleep(0.05)
    deadline = time.time() + duration
    (work / "go").write_text(str(deadline))
    aborts: Counter[str] = Counter()
    exits: dict[str, int] = {}
    restarts = 0
    while procs:
        time.sleep(0.05)
        for k, p in list(procs.items()):
            rc = p.poll()
            if rc is None:
                continue
            if k == "plain" and rc != 0 and time.time() < deadline - 2:
                aborts[_abort_kind(work / f"stderr.{k}")] += 1
                restarts += 1
                procs[k] = _spawn(
                    work, env, f"reader_main({root!r}, {str(work)!r}, 'plain', 'plain')", k
                )
                continue
            if k == "plain" and rc != 0:
                aborts[_abort_kind(work / f"stderr.{k}")] += 1
            exits[k] = rc
            del procs[k]
    assert writer.wait(120) == 0, (work / "stderr.writer").read_text()[-3000:]
    states = [json.loads(x) for x in (work / "states.jsonl").read_text().splitlines()]
    reads = {k: _reads(work / f"reads.{k}.jsonl") for k in kinds}
    return {"states": states, "reads": reads, "exits": exits, "plain_aborts": aborts}


def _reads(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def _abort_kind(stderr: Path) -> str:
    text = stderr.read_text(errors="replace")[-20000:]
    stderr.write_text("")
    if "No such file or directory" in text or "not found" in text:
        return "vanished"
    return "other: " + text[-400:]


def check_outcome(out: dict, *, plain_strict: bool, min_commits: int = 20) -> str:
    """Assert the contract; returns a summary line for the log."""
    states = out["states"]
    full = {(s["n"], s["sum"], s["last"]) for s in states}
    short = {(s["n"], s["last"]) for s in states}
    lines = [f"{len(states)} committed states"]
    for kind, reads in out["reads"].items():
        ok = [r for r in reads if r["ok"]]
        bad = [r for r in reads if not r["ok"]]
        wrong = [
            r
            for r in ok
            if (
                (r["n"], r["sum"], r["last"]) not in full
                if "sum" in r
                else (r["n"], r["last"]) not in short
            )
        ]
        ms = sorted(r["ms"] for r in ok) or [0]
        lines.append(
            f"{kind}: {len(reads)} reads, {len(bad)} failed, {len(wrong)} not a committed state, "
            f"median {ms[len(ms) // 2]:.0f} ms"
        )
        if kind in NTRADER_KINDS:
            assert out["exits"][kind] == 0, f"{kind} reader died ({out['exits'][kind]})"
            assert reads, f"no {kind} read completed"
            assert not bad, f"{kind}: {bad[:3]}"
            assert not wrong, f"{kind}: {wrong[:3]}"
        else:
            others = {k: v for k, v in out["plain_aborts"].items() if k != "vanished"}
            assert not others, f"plain Nautilus aborted for another reason: {others}"
            if plain_strict:
                assert not wrong and not bad and not out["plain_aborts"], (wrong, bad, out)
            vanished = out["plain_aborts"].get("vanished", 0)
            errors = [r["err"][:120] for r in bad[:3]]
            lines.append(f"plain aborts (a listed file removed before it was opened): {vanished}")
            lines.append(f"plain errors (first 3): {errors}")
    assert len(states) >= min_commits, f"the writer committed only {len(states)} times"
    summary = " | ".join(lines)
    print(summary)
    return summary


@pytest.mark.parametrize("commit", ["exchange", "journal"])
def test_readers_during_continuous_commits(tmp_path, commit):
    env = {"NTRADER_COMMIT": commit} if commit == "journal" else {}
    out = run_readers(str(tmp_path / "catalog"), tmp_path / "work", DURATION_S, env)
    check_outcome(out, plain_strict=False)


def test_plain_nautilus_readers_are_safe_while_commits_only_add_files(tmp_path):
    """Appends (a daily fetch or import): nothing a listing saw ever disappears, so plain
    Nautilus readers too see a committed state every time and never fail."""
    out = run_readers(str(tmp_path / "catalog"), tmp_path / "work", DURATION_S / 2, {}, True)
    check_outcome(out, plain_strict=True)


def test_readers_during_continuous_commits_on_s3(tmp_path, s3):
    bucket = s3.fresh_bucket()
    opts = s3.nautilus_options()
    env = {
        **s3.env,
        "NTRADER_TEST_NAUTILUS_OPTS": json.dumps(opts),
        "NTRADER_TEST_PLAIN_ROOT": f"{bucket}/catalog",
    }
    out = run_readers(f"s3://{bucket}/catalog", tmp_path / "work", DURATION_S, env)
    check_outcome(out, plain_strict=False, min_commits=10)


@pytest.mark.slow
@pytest.mark.parametrize("commit", ["exchange", "journal"])
def test_readers_during_continuous_commits_soak(tmp_path, commit):
    env = {"NTRADER_COMMIT": commit} if commit == "journal" else {}
    out = run_readers(str(tmp_path / "catalog"), tmp_path / "work", max(DURATION_S, 150), env)
    check_outcome(out, plain_strict=False)
