"""Fetch missing sessions from IBKR into the catalog: plan → pace → request → persist per chunk.

Only sessions the catalog lacks (and IB has not already said "no data" for) are requested, in
the fewest requests the chunk size allows; a rerun over a covered range makes zero requests.
Every chunk is written to the catalog as it arrives, so a killed fetch loses at most the chunk
in flight and a rerun completes the job.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
from ib_async import BarData, Contract
from loguru import logger
from nautilus_trader.model.data import BarType
from nautilus_trader.model.instruments import Equity
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt
from tenacity.wait import wait_exponential_jitter
from tqdm import tqdm

from ntrader.catalog.barframe import BarFrame
from ntrader.catalog.catalog import Catalog
from ntrader.errors import CatalogBusy, ConnectionFailure
from ntrader.ibkr import nodata
from ntrader.ibkr.client import (
    Disconnected,
    IbkrSession,
    IbkrSettings,
    NoDataForPeriod,
    PacingViolation,
    RetryableIbError,
    bar_open_ns,
)
from ntrader.ibkr.pacing import Clock, PacingGuard, RealClock
from ntrader.ibkr.plan import PlannedRequest, ib_bar_size, plan, what_to_show
from ntrader.instruments import bar_step
from ntrader.sessions import calendar_for_venue, calendar_timezone, local_dates, sessions_between


@dataclass(frozen=True)
class FetchTarget:
    bar_type: BarType
    start: dt.date
    end: dt.date


@dataclass
class FetchReport:
    bar_type: str
    requests: int = 0
    retries: int = 0
    bars: int = 0
    sessions_missing: int = 0
    sessions_fetched: int = 0
    nodata_sessions: int = 0
    seconds: float = 0.0
    nodata: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def missing_sessions(catalog: Catalog, target: FetchTarget, calendar: str) -> list[dt.date]:
    """Sessions in [start, end] with no bar in the catalog and no recorded "no data" answer."""
    sessions = sessions_between(calendar, target.start, target.end)
    if not len(sessions):
        return []
    tz = calendar_timezone(calendar)
    lo = int(pd.Timestamp(target.start, tz=tz).value) + 1
    hi = int((pd.Timestamp(target.end, tz=tz) + pd.Timedelta(days=1)).value)
    frame = catalog.read(target.bar_type, lo, hi)
    have = set(local_dates(frame.ts_event - 1, tz).tolist()) if len(frame) else set()
    skip = nodata.load(catalog, str(target.bar_type))
    days = [d for d in sessions.date_list() if d not in have and d not in skip]
    return days


@contextlib.contextmanager
def fetch_lock(catalog: Catalog) -> Iterator[None]:
    """One fetch at a time per catalog; a second one is refused at once."""
    lock = catalog.store.lock("fetch")
    try:
        lock.acquire(timeout=0)
    except CatalogBusy:
        raise CatalogBusy(
            f"a fetch is already running on catalog {catalog.url} ({lock.holder()})",
            hint="wait for it to finish (or stop it); its progress is in its run folder",
        ) from None
    try:
        yield
    finally:
        lock.release()


def to_frame(
    bars: list[BarData], bar_type: BarType, equity: Equity, sessions: set[dt.date], tz: str
) -> BarFrame:
    """IB bars (stamped at the OPEN) -> BarFrame with ts_event = bar CLOSE, inside ``sessions``."""
    step = bar_step(bar_type)
    p = int(equity.price_precision)
    if not bars:
        return BarFrame.empty(p, 0)
    opens = np.array([bar_open_ns(b) for b in bars], dtype=np.int64)
    if step.daily:
        local = pd.DatetimeIndex(opens, tz="UTC").tz_convert(tz).normalize()
        shifted = (local + pd.Timedelta(days=step.calendar_days)).tz_convert("UTC")
        ts = shifted.tz_localize(None).to_numpy().view(np.int64)
    else:
        ts = opens + step.interval_ns
    o, h, lo, c = (
        np.round(np.array([getattr(b, name) for b in bars], dtype=np.float64), p)
        for name in ("open", "high", "low", "close")
    )
    vol = np.round(np.array([float(b.volume) for b in bars], dtype=np.float64), 0)
    frame = BarFrame(ts, o, h, lo, c, vol, p, 0)
    keep = np.isin(local_dates(ts - 1, tz), np.array(sorted(sessions), dtype="datetime64[D]"))
    frame = frame.take(keep)
    order = np.argsort(frame.ts_event, kind="stable")
    frame = frame.take(order)
    if len(frame) > 1:  # IB may repeat a bar at a chunk edge: keep the last copy
        last = np.r_[frame.ts_event[1:] != frame.ts_event[:-1], True]
        frame = frame.take(last)
    return frame


class Fetcher:
    def __init__(
        self,
        catalog: Catalog,
        settings: IbkrSettings,
        *,
        use_rth: bool = True,
        chunk_sessions: int | None = None,
        clock: Clock | None = None,
        guard: PacingGuard | None = None,
        pacing_pause_s: float = 15.0,
        show_progress: bool | None = None,
    ) -> None:
        self.catalog = catalog
        self.settings = settings
        self.use_rth = use_rth
        self.chunk_sessions = chunk_sessions
        self.clock = clock or RealClock()
        self.guard = guard or PacingGuard(self.clock)
        self.pacing_pause_s = pacing_pause_s
        self.session = IbkrSession(settings)
        self.show_progress = sys.stderr.isatty() if show_progress is None else show_progress

    async def run(self, targets: list[FetchTarget]) -> list[FetchReport]:
        """Fetch every target's missing sessions; reports in target order."""
        work: list[tuple[FetchTarget, str, list[PlannedRequest], FetchReport]] = []
        for t in targets:
            cal = calendar_for_venue(t.bar_type.instrument_id.venue.value)
            missing = missing_sessions(self.catalog, t, cal)
            bar_size = ib_bar_size(str(t.bar_type.spec))
            requests = plan(
                missing,
                calendar=cal,
                bar_size=bar_size,
                use_rth=self.use_rth,
                chunk_sessions=self.chunk_sessions,
            )
            report = FetchReport(str(t.bar_type), sessions_missing=len(missing))
            work.append((t, cal, requests, report))
            logger.info(
                f"{t.bar_type}: {len(missing)} missing session(s) in {t.start}..{t.end} -> "
                f"{len(requests)} request(s)"
            )
        total = sum(len(w[2]) for w in work)
        if total:
            await self.session.connect()
        try:
            with tqdm(total=total, unit="req", desc="fetch", disable=not self.show_progress) as bar:
                done = 0
                for t, cal, requests, report in work:
                    if requests:
                        done = await self._fetch_target(t, cal, requests, report, bar, done, total)
        finally:
            self.session.close()
        return [w[3] for w in work]

    async def _fetch_target(
        self,
        t: FetchTarget,
        cal: str,
        requests: list[PlannedRequest],
        report: FetchReport,
        bar: tqdm,
        done: int,
        total: int,
    ) -> int:
        t0 = time.perf_counter()
        contract, equity = await self._with_retries(
            report, lambda: self.session.qualify(t.bar_type.instrument_id)
        )
        tz = calendar_timezone(cal)
        what = what_to_show(str(t.bar_type.spec))
        bt = str(t.bar_type)
        for req in requests:
            key = (
                contract.conId,
                req.end_utc.isoformat(),
                req.duration,
                req.bar_size,
                what,
                req.use_rth,
            )
            try:
                bars = await self._with_retries(
                    report, lambda req=req, key=key: self._request(contract, req, what, key)
                )
            except NoDataForPeriod:
                bars = []
            frame = to_frame(bars, t.bar_type, equity, set(req.sessions), tz)
            got = set(local_dates(frame.ts_event - 1, tz).tolist()) if len(frame) else set()
            empty = [d for d in req.sessions if d not in got]
            if len(frame):
                self.catalog.write_bars(t.bar_type, frame, mode="merge", instrument=equity)
            if empty:
                nodata.add(self.catalog, bt, empty)
                report.nodata += [d.isoformat() for d in empty]
            report.requests += 1
            report.bars += len(frame)
            report.sessions_fetched += len(got)
            report.nodata_sessions += len(empty)
            done += 1
            bar.update(1)
            span = f"{req.sessions[0]}" + (f"..{req.sessions[-1]}" if len(req.sessions) > 1 else "")
            logger.log(
                "DEBUG" if self.show_progress else "INFO",
                f"{bt} {span}: {len(frame):,} bars"
                + (f", no data for {len(empty)} session(s)" if empty else "")
                + f" ({done}/{total} requests)",
            )
        report.seconds = round(time.perf_counter() - t0, 3)
        return done

    async def _request(
        self, contract: Contract, req: PlannedRequest, what: str, key: tuple
    ) -> list[BarData]:
        await self.guard.acquire(str(contract.conId), key)
        try:
            return await self.session.bars(contract, req, what)
        finally:
            self.guard.release()

    async def _with_retries(self, report: FetchReport, call):
        def before_sleep(state: RetryCallState) -> None:
            report.retries += 1
            exc = state.outcome.exception() if state.outcome else None
            if isinstance(exc, PacingViolation):
                self.guard.penalize(self.pacing_pause_s)
            logger.warning(
                f"{type(exc).__name__}: {exc}; retry {state.attempt_number}/"
                f"{self.settings.retries - 1}"
            )

        retrying = AsyncRetrying(
            stop=stop_after_attempt(max(1, self.settings.retries)),
            wait=wait_exponential_jitter(initial=1, max=60, jitter=1),
            retry=retry_if_exception_type(RetryableIbError),
            sleep=self.clock.sleep,
            before_sleep=before_sleep,
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    return await call()
        except Disconnected as exc:
            raise ConnectionFailure(
                f"lost the connection to IBKR at {self.settings.endpoint} and could not "
                f"reconnect: {exc}",
                hint="check IB Gateway/TWS; rerun the same command: completed chunks are saved",
            ) from exc
        except RetryableIbError as exc:
            raise ConnectionFailure(
                f"IBKR request failed {self.settings.retries} times: {exc}",
                hint="rerun later (completed chunks are saved); raise ibkr.request_timeout or "
                "ibkr.retries if IB is slow",
            ) from exc
        raise AssertionError("unreachable")


def fetch_ranges(
    catalog: Catalog,
    settings: IbkrSettings,
    ranges: list[tuple[BarType, dt.date, dt.date]],
    *,
    use_rth: bool = True,
    chunk_sessions: int | None = None,
    pacing_pause_s: float = 15.0,
) -> list[FetchReport]:
    """Fetch the missing sessions of each (bar type, first, last) range, holding the fetch lock."""
    targets = [FetchTarget(bt, a, b) for bt, a, b in ranges]
    with fetch_lock(catalog):
        fetcher = Fetcher(
            catalog,
            settings,
            use_rth=use_rth,
            chunk_sessions=chunk_sessions,
            pacing_pause_s=pacing_pause_s,
        )
        return asyncio.run(fetcher.run(targets))
