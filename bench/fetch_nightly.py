"""The nightly cron fetch with the split-scale check (issue 14 benchmark), part of the fetch area.

N synthetic symbols hold five stored sessions (2024-06-03 .. 06-07, written from the simulator's
ground truth); the nightly fetch asks for the next session (2024-06-10) against the pacing
simulator on the fake clock of :mod:`bench.fetch_bench`, with ``corporate_actions.verify=session``
(the default) and ``off``, side by side. Reported: requests per symbol, the requests the check
cost, and the wall time the run implies at IB's pacing (simulated clock) — target: at most one
extra request per symbol and no extra pacing wait. A third run has a 4:1 split in one symbol: the
check finds it and the repair costs one daily request. A fourth refreshes the dividend factors
too (``corporate_actions.dividends=true``: two daily requests per symbol) and shows the pacing
wait that would cost every night.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from bench.fetch_bench import SPEC, drive_fetcher
from bench.harness import Context, Row, clock_time, progress
from ntrader.catalog import BarFrame, Catalog
from ntrader.ibkr import FetchTarget
from ntrader.ibkr.sim import ground_truth
from ntrader.ibkr.sim.corporate import Split
from ntrader.ibkr.sim.market import synthetic_symbol
from ntrader.ibkr.verify import CorporateActionPolicy
from ntrader.instruments import bar_type_for, make_equity, resolve_instrument_id

STORED = (dt.date(2024, 6, 3), dt.date(2024, 6, 7))
NIGHT = dt.date(2024, 6, 10)
MINUTE_NS = 60_000_000_000


@dataclass
class Nightly:
    symbols: int
    requests: int
    verify_requests: int  # the split check's and the dividend factors' requests
    splits: int
    simulated_s: float
    real_s: float
    guard_waited_s: float
    server_pacing: int


def _names(n: int) -> list[str]:
    return [f"NGT{i:03d}" for i in range(n)]


def _prefill(root: Path, names: list[str]) -> None:
    catalog = Catalog(root)
    infos = {s: synthetic_symbol(s) for s in names}
    for s in names:
        iid = resolve_instrument_id(f"{s}.NASDAQ")
        t = ground_truth(s, *STORED, symbols=infos)
        frame = BarFrame(
            t["ts_open_ns"] + MINUTE_NS,
            t["open"],
            t["high"],
            t["low"],
            t["close"],
            t["volume"].astype(np.float64),
            2,
            0,
        )
        catalog.write_bars(bar_type_for(iid, SPEC), frame, instrument=make_equity(iid, 2))


def nightly(
    root: Path, n: int, verify: str, *, split: bool = False, dividends: bool = False
) -> Nightly:
    """One nightly fetch of ``n`` symbols' next session into a catalog holding five sessions."""
    names = _names(n)
    _prefill(root, names)
    targets = [
        FetchTarget(bar_type_for(resolve_instrument_id(f"{s}.NASDAQ"), SPEC), NIGHT, NIGHT)
        for s in names
    ]
    actions = [Split(names[0], NIGHT, Fraction(4))] if split else []
    drive = drive_fetcher(
        Catalog(root),
        targets,
        sim_options={"extra_symbols": names, "corporate_actions": actions},
        corporate_actions=CorporateActionPolicy(verify=verify, dividends=dividends),
    )
    reports = drive.reports
    return Nightly(
        n,
        sum(r.requests for r in reports),
        sum(r.verify_requests + r.factor_requests for r in reports),
        sum(len(r.corporate_actions) for r in reports),
        drive.spans["simulated"],
        drive.spans["real"],
        drive.guard.waited_s,
        sum(r.outcome == "pacing" for r in drive.sim.requests),
    )


def bench_nightly(ctx: Context, n: int) -> None:
    progress(f"fetch: nightly cron fetch of {n} symbols, split-scale check on vs off")
    nightly(ctx.fresh_dir("nightly-warm"), 2, "session")  # imports and first connection
    on = nightly(ctx.fresh_dir("nightly-on"), n, "session")
    off = nightly(ctx.fresh_dir("nightly-off"), n, "off")
    extra = (on.requests - off.requests) / n
    what = f"nightly cron fetch, {n} symbols x next session (5 stored)"
    ctx.add(
        Row(
            "fetch",
            f"fetch: requests per symbol, {what}, corporate_actions.verify=session vs off",
            f"{on.requests / n:.2f} ({on.verify_requests} for the check)",
            f"{off.requests / n:.2f} (verify=off)",
            f"+{extra:.2f} per symbol",
            "≤ +1 per symbol",
            extra <= 1.0,
            {"on": vars(on), "off": vars(off)},
        )
    )
    ctx.add(
        Row(
            "fetch",
            f"fetch: implied wall time at IB's pacing, {what}, verify=session vs off",
            f"{clock_time(on.simulated_s)} (waited {clock_time(on.guard_waited_s)})",
            f"{clock_time(off.simulated_s)} (waited {clock_time(off.guard_waited_s)})",
            f"real {on.real_s:.2f} s vs {off.real_s:.2f} s",
            "no extra pacing wait",
            on.guard_waited_s <= off.guard_waited_s + 1.0 and on.server_pacing == 0,
            {"on_s": on.simulated_s, "off_s": off.simulated_s},
        )
    )
    hit = nightly(ctx.fresh_dir("nightly-split"), n, "session", split=True)
    ctx.add(
        Row(
            "fetch",
            f"fetch: requests, {what}, one symbol split 4:1 since the last fetch",
            f"{hit.requests} ({hit.verify_requests} for the check and repair)",
            f"{on.requests} without the split",
            f"+{hit.requests - on.requests}",
            "+1 (one daily request finds the old-scale sessions)",
            hit.requests - on.requests == 1 and hit.splits == 1,
            vars(hit),
        )
    )
    div = nightly(ctx.fresh_dir("nightly-dividends"), n, "session", dividends=True)
    ctx.add(
        Row(
            "fetch",
            f"fetch: {what}, + corporate_actions.dividends=true (why it is not nightly by default)",
            f"{div.requests / n:.2f} req/symbol, {clock_time(div.simulated_s)} at IB's pacing "
            f"(waited {clock_time(div.guard_waited_s)})",
            f"{on.requests / n:.2f} req/symbol, {clock_time(on.simulated_s)}",
            f"+{(div.requests - on.requests) / n:.2f} per symbol",
            "+2 per symbol (ADJUSTED_LAST and TRADES daily)",
            div.requests - on.requests == 2 * n and div.server_pacing == 0,
            vars(div),
        )
    )
    ctx.results.check(
        hit.splits == 1 and on.splits == 0 and off.splits == 0,
        f"fetch nightly: splits repaired {hit.splits} with one 4:1 split, {on.splits} without",
    )
