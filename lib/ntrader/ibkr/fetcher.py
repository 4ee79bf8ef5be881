"""Fetch missing sessions from IBKR into the catalog: plan → pace → request → persist per chunk.

Only sessions the catalog lacks bars of in the fetched hours — none at all, or holes inside
them — are requested (a session with holes again as a whole, merged into the catalog), in the
fewest requests the chunk size allows; a rerun over a complete range makes zero requests.
What IB answered "no data" for (a whole session, or the holes its bars left) is remembered
(``ntrader.ibkr.nodata``) and not asked again until the record expires (``nodata_expiry_days``)
or ``retry_nodata`` asks now. Every chunk is written to the catalog as it arrives, so a killed
fetch loses at most the chunk in flight and a rerun completes the job.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import sys
import time
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
from ntrader.catalog.inventory import create_catalog
from ntrader.errors import ConnectionFailure
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
from ntrader.ibkr.fetch_lock import fetch_lock
from ntrader.ibkr.nodata import DEFAULT_EXPIRY_DAYS, NoData
from ntrader.ibkr.pacing import Clock, PacingGuard, RealClock
from ntrader.ibkr.plan import PlannedRequest, ib_bar_size, plan, session_fill, what_to_show
from ntrader.instruments import bar_step
from ntrader.sessions import calendar_for_venue, calendar_timezone, local_dates, sessions_between


@dataclass(frozen=True)
class FetchTarget:
    bar_type: BarType
    start: dt.date
    end: dt.date


@dataclass
class FetchReport:
    """What a fetch did for one bar type (``summary.json`` ``instruments``) and what remains."""

    bar_type: str
    requests: int = 0
    retries: int = 0
    bars: int = 0
    sessions_missing: int = 0  # sessions requested: no bar in the catalog, or holes
    sessions_with_holes: int = 0  # of those, sessions that had bars but holes
    sessions_fetched: int = 0  # sessions IB sent bars for
    nodata_sessions: int = 0
    seconds: float = 0.0
    nodata: list[str] = field(default_factory=list)  # sessions IB had no bar for, this run
    holes_left: dict[str, int] = field(default_factory=dict)  # session -> bars IB's answer lacked
    not_over: list[str] = field(default_factory=list)  # of those, asked before the session ended
    # sessions not asked: IB's earlier "no data" answer is still trusted (nodata records)
    known_nodata: list[dict[str, object]] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class Survey:
    """A target's sessions against the catalog: what to request and what IB already answered."""

    fetch: list[dt.date]  # sessions to request (calendar order)
    with_holes: list[dt.date]  # of those, sessions that have bars but holes
    known: list[NoData]  # incomplete sessions not requested: IB's earlier answer is trusted


def survey(
    catalog: Catalog,
    target: FetchTarget,
    calendar: str,
    *,
    use_rth: bool = True,
    known: dict[dt.date, NoData] | None = None,
) -> Survey:
    """Which sessions of [start, end] lack bars in the fetched hours (regular, or extended when
    not ``use_rth``), and which of those IB already answered for (``known``: the trusted nodata
    records; default: those of the catalog with the default expiry)."""
    sessions = sessions_between(calendar, target.start, target.end)
    if not len(sessions):
        return Survey([], [], [])
    tz = calendar_timezone(calendar)
    lo = int(pd.Timestamp(target.start, tz=tz).value) + 1
    hi = int((pd.Timestamp(target.end, tz=tz) + pd.Timedelta(days=1)).value)
    ts = catalog.read_ts_event(target.bar_type, lo, hi)
    step = bar_step(target.bar_type)
    hours = "regular" if use_rth else "extended"
    fills = session_fill(ts, sessions, step.interval_ns, daily=step.daily, hours=hours)
    records = nodata.current(catalog, str(target.bar_type)) if known is None else known
    fetch: list[dt.date] = []
    holes: list[dt.date] = []
    skipped: list[NoData] = []
    for f in fills:
        if f.complete:
            continue
        rec = records.get(f.session)
        # IB's earlier answer explains the gap: no data at all, or every hole was in its answer
        # (a session without any bar needs a no-data-at-all answer)
        if rec is not None and (
            rec.whole or (not f.empty and all(rec.covers(a, b) for a, b in f.holes))
        ):
            skipped.append(rec)
            continue
        fetch.append(f.session)
        if not f.empty:
            holes.append(f.session)
    return Survey(fetch, holes, skipped)


def missing_sessions(
    catalog: Catalog,
    target: FetchTarget,
    calendar: str,
    *,
    use_rth: bool = True,
    known: dict[dt.date, NoData] | None = None,
) -> list[dt.date]:
    """Sessions in [start, end] a fetch requests (see :func:`survey`)."""
    return survey(catalog, target, calendar, use_rth=use_rth, known=known).fetch


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
        retry_nodata: bool = False,
        nodata_expiry_days: float | None = DEFAULT_EXPIRY_DAYS,
    ) -> None:
        nodata.check_expiry(nodata_expiry_days)
        self.catalog = catalog
        self.retry_nodata = retry_nodata
        self.nodata_expiry_days = nodata_expiry_days
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
            bar_size = ib_bar_size(str(t.bar_type.spec))
            known = nodata.current(
                self.catalog,
                str(t.bar_type),
                expiry_days=self.nodata_expiry_days,
                retry=self.retry_nodata,
            )
            found = survey(self.catalog, t, cal, use_rth=self.use_rth, known=known)
            requests = plan(
                found.fetch,
                calendar=cal,
                bar_size=bar_size,
                use_rth=self.use_rth,
                chunk_sessions=self.chunk_sessions,
            )
            report = FetchReport(
                str(t.bar_type),
                sessions_missing=len(found.fetch),
                sessions_with_holes=len(found.with_holes),
                known_nodata=[r.as_report(bar_step(t.bar_type).interval_ns) for r in found.known],
            )
            work.append((t, cal, requests, report))
            holes = f" ({len(found.with_holes)} with holes)" if found.with_holes else ""
            logger.info(
                f"{t.bar_type}: {len(found.fetch)} session(s) to fetch{holes} in "
                f"{t.start}..{t.end} -> {len(requests)} request(s)"
                + (
                    f"; not asked again: {len(found.known)} session(s) IB had no data for when "
                    "last asked (ibkr.retry_nodata=true asks now)"
                    if found.known
                    else ""
                )
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
        step = bar_step(t.bar_type)
        hours = "regular" if self.use_rth else "extended"
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
            if len(frame):
                self.catalog.write_bars(t.bar_type, frame, mode="merge", instrument=equity)
            span_sessions = sessions_between(cal, req.sessions[0], req.sessions[-1])
            fills = session_fill(
                frame.ts_event, span_sessions, step.interval_ns, daily=step.daily, hours=hours
            )
            got = {f.session for f in fills if not f.empty}
            empty = [f.session for f in fills if f.empty]
            _, ends = span_sessions.window(hours)
            asked = dt.datetime.now(dt.UTC)
            answers: dict[dt.date, NoData] = {}
            for f, end_ns in zip(fills, ends.tolist(), strict=True):
                if not f.complete and not f.empty:
                    report.holes_left[f.session.isoformat()] = f.expected - f.present
                # IB's answer is final only for a session that was over when IB was asked
                if not f.complete and pd.Timestamp(asked).value >= end_ns:
                    answers[f.session] = NoData(f.session, asked, None if f.empty else f.holes)
                elif not f.complete:
                    report.not_over.append(f.session.isoformat())
            complete = [f.session for f in fills if f.complete]
            nodata.update(self.catalog, bt, answers, complete)
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
    retry_nodata: bool = False,
    nodata_expiry_days: float | None = DEFAULT_EXPIRY_DAYS,
    lock_wait_s: float = 0.0,
) -> list[FetchReport]:
    """Fetch the missing sessions of each (bar type, first, last) range, holding the fetch lock
    (waiting ``lock_wait_s`` for another fetch; the missing sessions are found after that)."""
    targets = [FetchTarget(bt, a, b) for bt, a, b in ranges]
    create_catalog(catalog)  # a writer: a new catalog is created, and it says so
    with fetch_lock(catalog, lock_wait_s):
        fetcher = Fetcher(
            catalog,
            settings,
            use_rth=use_rth,
            chunk_sessions=chunk_sessions,
            pacing_pause_s=pacing_pause_s,
            retry_nodata=retry_nodata,
            nodata_expiry_days=nodata_expiry_days,
        )
        return asyncio.run(fetcher.run(targets))
