"""The fetch benchmark of ``bench/run.py`` (:func:`bench_fetch`): IB pacing on a simulated clock,
against the simulator.

:func:`fetch` runs the TWS simulator (``Faults(pacing=True)``, IB's historical-data pacing rules
enforced on ``clock=fake.now``) and the project's :class:`~ntrader.ibkr.Fetcher` (real ib_async
client, its :class:`~ntrader.ibkr.PacingGuard` on the same :class:`~ntrader.ibkr.FakeClock`)
on ONE event loop whose time is that fake clock, talking over real loopback sockets. Whenever
every task waits, the loop jumps to the next timer, so the guard's 10-minute waits cost nothing
and the fake clock at the end is the wall time the fetch would take against IB's real limits
(IB's own answer latency excluded: the simulator answers at once).

The loop is ``FakeClock.run``'s, with one guard added (:class:`_SettlingSelector`): before
jumping, it polls the sockets again for up to ``SETTLE_S`` of real time, so a loopback send whose
delivery the kernel deferred (softirq under load) is read instead of being overtaken by a time
jump (which would fire ib_async's request timeout). ``FetchRun.settled`` counts how often that
mattered: 0 in every run so far (2 cpus, load ~2-3), and the plain ``FakeClock.run`` gave the same
requests, retries (0) and simulated time.

ib_async's own message throttle (45 messages per second, ``Client.MaxRequests``) is off while
the fetcher runs here: it retries at ``first + 1 s`` and only releases when ``now - first > 1 s``,
so on a clock that stands still while no task waits (a burst of 45 messages: the qualify and
bar requests of ~20 symbols in one fake instant) it reschedules itself at "now" forever. It is
unrelated to IB's pacing (below 1 s per 45 messages of real time) and the simulator does not
limit message rates.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import selectors
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from ib_async.client import Client as IbClient

from bench.harness import Context, Row, clock_time, progress, secs
from ntrader.catalog import Catalog
from ntrader.ibkr import (
    FakeClock,
    Fetcher,
    FetchTarget,
    IbkrSettings,
    PacingGuard,
    missing_sessions,
)
from ntrader.ibkr.pacing import (
    PacingRules,
    _VirtualSelector,  # private: the bench extends FakeClock.run's loop (see module docstring)
    _VirtualTimeLoop,
    count_violations,
)
from ntrader.ibkr.plan import default_chunk_sessions, ib_bar_size, optimal_request_count
from ntrader.ibkr.sim import Faults, TwsSimulator, ground_truth
from ntrader.instruments import bar_type_for, resolve_instrument_id
from ntrader.sessions import calendar_for_venue

SPEC = "1-MINUTE-LAST"
SETTLE_S = 0.001  # real seconds the loop re-polls the sockets before each time jump
MINUTE_NS = 60_000_000_000


class _SettlingSelector(_VirtualSelector):
    """``FakeClock.run``'s selector, re-polling the sockets (real time) before a time jump."""

    def __init__(self, clock: FakeClock, settle_s: float) -> None:
        super().__init__(clock)
        self.settle_s = settle_s
        self.jumps = 0  # times the clock jumped (every task waited)
        self.settled = 0  # ... would have jumped, but a socket became ready while settling

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready = self._inner.select(0)
        if ready or timeout == 0:
            return ready
        deadline = time.monotonic() + (1.0 if timeout is None else self.settle_s)
        while True:  # nothing ready: wait for in-flight loopback data before moving time
            ready = self._inner.select(self.settle_s)
            if ready:
                self.settled += 1
                return ready
            if time.monotonic() >= deadline:
                break
        if timeout is None:
            raise RuntimeError("FakeClock loop deadlock: every task waits and no timer is due")
        self.jumps += 1
        self._clock.advance(timeout)
        return []


class _SettlingLoop(_VirtualTimeLoop):
    """``FakeClock.run``'s loop (its ``time()`` is the fake clock) with a settling selector."""

    def __init__(self, clock: FakeClock, settle_s: float = SETTLE_S) -> None:
        self.clock = clock
        self.selector = _SettlingSelector(clock, settle_s)
        asyncio.SelectorEventLoop.__init__(self, self.selector)


@dataclass
class FetchRun:
    """One fetch of ``symbol`` over ``start..end`` into a fresh catalog, and what it did."""

    symbol: str
    start: dt.date
    end: dt.date
    chunk_sessions: int
    sessions: int  # missing before the fetch (all of them: empty catalog)
    optimal: int  # optimal_request_count for the chunk size
    requests: int  # the fetcher's report
    retries: int
    bars: int
    sessions_fetched: int
    server_requests: int  # historical requests the simulator received
    server_outcomes: dict[str, int]
    server_pacing: int  # of them answered 162 "pacing violation"
    guard_sends: int
    guard_violations: int  # count_violations(guard.history, IB's rules, no safety margin)
    guard_waited_s: float
    simulated_s: float  # fake clock from Fetcher.run's start to its end
    real_s: float  # perf_counter over the same span
    jumps: int
    settled: int
    root: Path
    bar_type: str


@dataclass
class Driven:
    """A :class:`Fetcher` run against a pacing simulator on one fake-clock loop."""

    reports: list
    sim: TwsSimulator
    guard: PacingGuard
    loop: _SettlingLoop
    spans: dict[str, float]  # real and simulated seconds of Fetcher.run


def drive_fetcher(
    catalog: Catalog,
    targets: list[FetchTarget],
    *,
    client_id: int = 17,
    sim_options: dict[str, Any] | None = None,
    **fetcher_options: Any,
) -> Driven:
    """Run a Fetcher of ``targets`` against a fresh ``Faults(pacing=True)`` simulator, both on
    one FakeClock loop (see the module doc)."""
    fake = FakeClock(0.0)
    loop = _SettlingLoop(fake)
    guard = PacingGuard(fake)
    sim = TwsSimulator("127.0.0.1", 0, Faults(pacing=True), clock=fake.now, **(sim_options or {}))
    spans: dict[str, float] = {}

    async def main() -> list:
        await sim.start()
        try:
            fetcher = Fetcher(
                catalog,
                IbkrSettings(port=sim.port, client_id=client_id),
                clock=fake,
                guard=guard,
                show_progress=False,
                **fetcher_options,
            )
            t0, f0 = time.perf_counter(), fake.now()
            reports = await fetcher.run(targets)
            spans["real"], spans["simulated"] = time.perf_counter() - t0, fake.now() - f0
            return reports
        finally:
            await sim.stop()

    throttle = IbClient.MaxRequests
    IbClient.MaxRequests = 0  # see the module doc: ib_async's throttle spins on a frozen clock
    try:
        reports = asyncio.run(main(), loop_factory=lambda: loop)
    finally:
        IbClient.MaxRequests = throttle
    return Driven(reports, sim, guard, loop, spans)


def fetch(
    root: Path,
    start: dt.date,
    end: dt.date,
    *,
    symbol: str = "AAPL",
    chunk_sessions: int | None = None,
    client_id: int = 17,
) -> FetchRun:
    """Fetch ``symbol``'s RTH 1-minute bars over ``start..end`` from a fresh simulator."""
    iid = resolve_instrument_id(f"{symbol}.NASDAQ")
    bar_type = bar_type_for(iid, SPEC)
    catalog = Catalog(root)
    target = FetchTarget(bar_type, start, end)
    calendar = calendar_for_venue(iid.venue.value)
    missing = missing_sessions(catalog, target, calendar)
    chunk = chunk_sessions or default_chunk_sessions(ib_bar_size(SPEC))
    optimal = optimal_request_count(missing, calendar=calendar, chunk_sessions=chunk)

    drive = drive_fetcher(catalog, [target], client_id=client_id, chunk_sessions=chunk_sessions)
    (report,) = drive.reports
    sim, guard, loop, spans = drive.sim, drive.guard, drive.loop, drive.spans
    requests = sim.requests
    outcomes = Counter(r.outcome for r in requests)
    return FetchRun(
        symbol=symbol,
        start=start,
        end=end,
        chunk_sessions=chunk,
        sessions=len(missing),
        optimal=optimal,
        requests=report.requests,
        retries=report.retries,
        bars=report.bars,
        sessions_fetched=report.sessions_fetched,
        server_requests=len(requests),
        server_outcomes=dict(outcomes),
        server_pacing=outcomes.get("pacing", 0),
        guard_sends=len(guard.history),
        guard_violations=count_violations(guard.history, PacingRules()),
        guard_waited_s=guard.waited_s,
        simulated_s=spans["simulated"],
        real_s=spans["real"],
        jumps=loop.selector.jumps,
        settled=loop.selector.settled,
        root=root,
        bar_type=str(bar_type),
    )


def rerun_requests(run: FetchRun) -> int:
    """Requests a second fetch of the same range makes on the filled catalog (target: 0)."""
    again = fetch(
        run.root, run.start, run.end, symbol=run.symbol, chunk_sessions=run.chunk_sessions
    )
    return again.requests + again.server_requests


def pacing_bound_s(n: int, rules: PacingRules | None = None) -> float:
    """Least time from the first to the last of ``n`` sends of one contract under IB's rules.

    Send i may go no earlier than ``max_requests`` sends after send i - max_requests plus the
    window, nor ``per_contract_max`` sends after i - per_contract_max plus its 2 s window
    (distinct requests, answers taking no time, no safety margin).
    """
    rules = rules or PacingRules()
    t = [0.0] * n
    for i in range(n):
        if i >= rules.max_requests:
            t[i] = max(t[i], t[i - rules.max_requests] + rules.window_s)
        if i >= rules.per_contract_max:
            t[i] = max(t[i], t[i - rules.per_contract_max] + rules.per_contract_window_s)
    return t[-1] if n else 0.0


def compare_with_truth(run: FetchRun) -> tuple[bool, str]:
    """The catalog's bars vs ``ground_truth``: ts_event = ts_open + 60 s, OHLCV equal."""
    frame = Catalog(run.root).read(run.bar_type)
    truth = ground_truth(run.symbol, run.start, run.end)
    n, m = len(frame), len(truth["ts_open_ns"])
    same_n = n == m
    same_ts = same_n and bool(np.array_equal(frame.ts_event, truth["ts_open_ns"] + MINUTE_NS))
    same_px = same_n and all(
        np.array_equal(getattr(frame, c), truth[c]) for c in ("open", "high", "low", "close")
    )
    same_vol = same_n and bool(np.array_equal(frame.volume, truth["volume"].astype(np.float64)))
    ok = same_n and same_ts and same_px and same_vol
    return ok, (
        f"catalog {n:,} bars vs ground_truth {m:,}; ts_event = ts_open + 60 s: {same_ts}; "
        f"OHLC equal: {same_px}; volume equal: {same_vol}"
    )


# ------------------------------------------------------------------------------------ benchmark


def bench_fetch(ctx: Context) -> None:
    """Fetcher vs TWS simulator with IB's pacing, both on one FakeClock loop."""
    first, last = ctx.sizes.fetch_range
    symbol = "AAPL"
    span = f"{first.year}" if (first.month, last.month) == (1, 12) else f"{first}..{last}"
    progress("fetch: warming up on one week (simulator + fetcher on a simulated clock)")
    fetch(ctx.fresh_dir("fetch-warm"), dt.date(2024, 1, 2), dt.date(2024, 1, 8))
    for chunk in (None, 5):
        root = ctx.fresh_dir("fetch")
        progress(f"fetch: {span} RTH 1-min {symbol}, chunk_sessions={chunk}, 1 run")
        run = fetch(root, first, last, symbol=symbol, chunk_sessions=chunk)
        n = run.chunk_sessions
        label = f"{n} session{'s' if n > 1 else ''}/request"
        label += ", default" if chunk is None else ""
        what = f"{span} RTH 1-min {symbol} ({run.sessions} sessions), {label}"
        data = {k: str(v) if isinstance(v, Path) else v for k, v in asdict(run).items()}

        def probe(chunk: int | None = chunk) -> Any:
            return fetch(ctx.fresh_dir("probe-fetch"), first, last, chunk_sessions=chunk)

        ctx.add(
            Row(
                "fetch",
                f"fetch: requests made (received by the simulator, retries included), {what}",
                f"{run.server_requests}",
                f"{run.optimal} (optimal)",
                f"{run.server_requests / max(1, run.optimal):.2f}x optimal",
                "= optimal",
                run.server_requests == run.optimal,
                data,
                probe=probe,
            )
        )
        ctx.add(
            Row(
                "fetch",
                f"fetch: pacing violations, simulator 162s · guard-history audit, {label}",
                f"{run.server_pacing} · {run.guard_violations}",
                f"{run.server_requests} requests checked on the simulated clock",
                "",
                "0 · 0",
                run.server_pacing == 0 and run.guard_violations == 0,
                {"server_pacing": run.server_pacing, "guard": run.guard_violations},
                probe=probe,
            )
        )
        bound = pacing_bound_s(run.server_requests)
        ctx.add(
            Row(
                "fetch",
                f"fetch: implied wall time at IB's limits (simulated clock), {label}",
                f"{clock_time(run.simulated_s)} simulated ({secs(run.real_s)} real, 1 run)",
                f"{clock_time(bound)} (pacing lower bound, 0-latency answers)",
                f"{run.simulated_s / bound:.3f}x bound" if bound else "",
                "—",
                None,
                {"simulated_s": run.simulated_s, "real_s": run.real_s, "bound_s": bound},
            )
        )
        ok, text = compare_with_truth(run)
        ctx.results.check(ok, f"fetch ({label}): {text}")
        outcomes = ", ".join(f"{k} {v}" for k, v in sorted(run.server_outcomes.items()))
        ctx.results.check(
            run.requests == run.server_requests == run.guard_sends
            and run.server_outcomes == {"ok": run.requests}
            and run.retries == 0
            and run.sessions_fetched == run.sessions,
            f"fetch ({label}): fetcher {run.requests} requests = simulator received "
            f"{run.server_requests} ({outcomes}) = guard sends {run.guard_sends}; retries "
            f"{run.retries}; sessions fetched {run.sessions_fetched}/{run.sessions}; "
            f"{run.bars:,} bars; loop: {run.jumps} time jumps, {run.settled} deferred for "
            "late socket data",
        )
        if chunk is None:
            again = rerun_requests(run)
            ctx.results.check(
                again == 0, f"fetch: a rerun over the filled catalog made {again} requests"
            )
    from bench.fetch_nightly import bench_nightly  # it imports this module

    bench_nightly(ctx, ctx.sizes.nightly_symbols)
