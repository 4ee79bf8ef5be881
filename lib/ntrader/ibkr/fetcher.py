"""Fetch missing sessions from IBKR into the catalog: plan → pace → request → persist per chunk.

Only sessions the catalog lacks bars of in the fetched hours — none at all, or holes inside
them — are requested (a session with holes again as a whole, merged into the catalog), in the
fewest requests the chunk size allows; a rerun over a complete range makes zero requests.
What IB answered "no data" for (a whole session, or the holes its bars left) is remembered
(``ntrader.ibkr.nodata``) and not asked again until the record expires (``nodata_expiry_days``)
or ``retry_nodata`` asks now. Each chunk is written to the catalog as it arrives: a killed fetch
loses at most the chunk in flight and a rerun completes the job. The plan is logged first.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import sys
import time
from dataclasses import dataclass

import pandas as pd
from ib_async import BarData, Contract
from loguru import logger
from nautilus_trader.model.data import BarType
from nautilus_trader.model.instruments import Equity

from ntrader.catalog.catalog import Catalog
from ntrader.catalog.inventory import create_catalog
from ntrader.ibkr import dividends, nodata
from ntrader.ibkr.answers import to_frame
from ntrader.ibkr.client import (
    IbkrSession,
    IbkrSettings,
    NoDataForPeriod,
)
from ntrader.ibkr.fetch_lock import fetch_lock
from ntrader.ibkr.fetchplan import plan_line
from ntrader.ibkr.nodata import DEFAULT_EXPIRY_DAYS, NoData
from ntrader.ibkr.pacing import Clock, PacingGuard, RealClock
from ntrader.ibkr.plan import PlannedRequest, ib_bar_size, plan, session_fill, what_to_show
from ntrader.ibkr.progress import FetchProgress
from ntrader.ibkr.repair import repair_instrument
from ntrader.ibkr.report import FetchReport as FetchReport
from ntrader.ibkr.retries import with_retries
from ntrader.ibkr.survey import FetchTarget as FetchTarget
from ntrader.ibkr.survey import missing_sessions as missing_sessions
from ntrader.ibkr.survey import survey
from ntrader.ibkr.verify import CorporateActionPolicy, Probe, choose_probe, probe_check
from ntrader.instruments import bar_step
from ntrader.sessions import calendar_for_venue, calendar_timezone, sessions_between


@dataclass
class _Work:
    """One target of a run: its requests (the probe folded in), report, probe and audit."""

    target: FetchTarget
    cal: str
    requests: list[PlannedRequest]
    report: FetchReport
    probe: Probe | None
    audit: bool  # corporate_actions.verify=full: the instrument's daily audit comes first
    factors: bool = False  # corporate_actions.dividends: refresh the instrument's factors last

    @property
    def planned(self) -> int:
        alone = self.probe is not None and self.probe.index is None
        extra = dividends.REQUESTS if self.factors else 0
        return len(self.requests) + int(alone) + int(self.audit) + extra


def _probe_note(probe: Probe) -> str:
    how = "riding on a planned request" if probe.index is not None else "one request of its own"
    return f"; stored session {probe.session} re-asked to check the split scale ({how})"


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
        corporate_actions: CorporateActionPolicy | None = None,
        dry_run: bool = False,
    ) -> None:
        nodata.check_expiry(nodata_expiry_days)
        self.catalog, self.dry_run = catalog, dry_run
        self.policy = corporate_actions or CorporateActionPolicy()
        self.retry_nodata = retry_nodata
        self.nodata_expiry_days = nodata_expiry_days
        self.settings, self.use_rth = settings, use_rth
        self.chunk_sessions = chunk_sessions
        self.clock = clock or RealClock()
        self.guard = guard or PacingGuard(self.clock)
        self.pacing_pause_s = pacing_pause_s
        self.session = IbkrSession(settings)
        self.show_progress = sys.stderr.isatty() if show_progress is None else show_progress

    async def run(self, targets: list[FetchTarget]) -> list[FetchReport]:
        """Fetch every target's missing sessions; reports in target order."""
        work: list[_Work] = []
        audited: set[str] = set()
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
            probe = None
            if self.policy.verify != "off":
                requests, probe = choose_probe(
                    self.catalog,
                    t.bar_type,
                    cal,
                    requests,
                    use_rth=self.use_rth,
                    with_holes=found.with_holes,
                )
            iid = str(t.bar_type.instrument_id)
            audit = self.policy.verify == "full" and iid not in audited
            factors = self.policy.dividends and iid not in audited
            audited.add(iid)
            report = FetchReport(
                str(t.bar_type),
                sessions_missing=len(found.fetch),
                sessions_with_holes=len(found.with_holes),
                known_nodata=[r.as_report(bar_step(t.bar_type).interval_ns) for r in found.known],
            )
            work.append(_Work(t, cal, requests, report, probe, audit, factors))
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
                + (_probe_note(probe) if probe else "")
                + ("; + 2 daily requests for the dividend factors" if factors else "")
            )
        self._total = sum(w.planned for w in work)
        for w in work:
            w.report.planned_requests = w.planned
        logger.info(plan_line([w.report for w in work], self.guard.rules))
        self._done = 0
        if self.dry_run:  # the plan alone: no connection, nothing sent or written
            return [w.report for w in work]
        if self._total:
            await self.session.connect()
        try:
            with FetchProgress(self._total, self.guard, self.show_progress) as bar:
                self._bar = bar
                for w in work:
                    if w.planned:
                        await self._fetch_target(w)
        finally:
            self.session.close()
        return [w.report for w in work]

    async def _fetch_target(self, w: _Work) -> None:
        t, cal, report = w.target, w.cal, w.report
        t0 = time.perf_counter()
        contract, equity = await self._with_retries(
            report, lambda: self.session.qualify(t.bar_type.instrument_id)
        )
        tz = calendar_timezone(cal)
        what = what_to_show(str(t.bar_type.spec))
        bt = str(t.bar_type)
        step = bar_step(t.bar_type)
        hours = "regular" if self.use_rth else "extended"
        if w.audit:
            await self._repair(
                w, contract, equity, "audit: IB daily TRADES vs every stored session"
            )
        if w.probe is not None and w.probe.index is None:
            report.verify_requests += 1
            bars = await self._ask(contract, w.probe.request, what, report)
            await self._check_scale(w, contract, equity, bars)
        for index, req in enumerate(w.requests):
            bars = await self._ask(contract, req, what, report)
            if w.probe is not None and w.probe.index == index:
                await self._check_scale(w, contract, equity, bars)
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
            report.bars += len(frame)
            report.sessions_fetched += len(got)
            report.nodata_sessions += len(empty)
            span = f"{req.sessions[0]}" + (f"..{req.sessions[-1]}" if len(req.sessions) > 1 else "")
            logger.log(
                "DEBUG" if self.show_progress else "INFO",
                f"{bt} {span}: {len(frame):,} bars"
                + (f", no data for {len(empty)} session(s)" if empty else "")
                + f" ({self._done}/{self._total} requests)",
            )
        if w.factors:
            await self._refresh_factors(w, contract, equity)
        report.seconds = round(time.perf_counter() - t0, 3)

    async def _refresh_factors(self, w: _Work, contract: Contract, equity: Equity) -> None:
        """ADJUSTED_LAST against TRADES daily: the instrument's dividend factors, versioned."""
        report = w.report

        async def ask(req: PlannedRequest, what: str) -> list[BarData]:
            report.factor_requests += 1
            return await self._ask(contract, req, what, report)

        iid = str(w.target.bar_type.instrument_id)
        stored = await dividends.refresh_factors(
            self.catalog, iid, ask, w.cal, int(equity.price_precision)
        )
        if stored is None:  # asked for and not got: said in the output and summary.json
            report.factors = {"error": "IB sent no daily bars: no dividend factors stored"}
            logger.warning(f"{iid}: IB sent no daily bars for the dividend factors")
            return
        report.factors = {**stored.series.summary(), "new_version": stored.new}
        logger.info(("new " if stored.new else "unchanged: ") + stored.series.describe())

    async def _ask(
        self, contract: Contract, req: PlannedRequest, what: str, report: FetchReport
    ) -> list[BarData]:
        """One request with retries (no data: no bars), counted in ``report`` and the progress."""
        end = req.end_utc.isoformat() if req.end_utc is not None else ""
        key = (contract.conId, end, req.duration, req.bar_size, what, req.use_rth)
        try:
            bars = await self._with_retries(report, lambda: self._request(contract, req, what, key))
        except NoDataForPeriod:
            bars = []
        report.requests += 1
        self._done += 1
        if self._done > self._total:  # a repair's requests were not planned
            self._total = self._done
            self._bar.total = self._total
        self._bar.update(1)
        return bars

    async def _check_scale(
        self, w: _Work, contract: Contract, equity: Equity, bars: list[BarData]
    ) -> None:
        """The probe session's stored bars against IB's answer; a split starts the repair."""
        assert w.probe is not None
        check, _ = probe_check(
            self.catalog, w.target.bar_type, equity, w.probe, bars, w.cal, self.policy.tolerance
        )
        w.report.scale_check = check.as_dict()
        name = f"{w.target.bar_type} {check.session}"
        if check.verdict == "unverified":
            logger.warning(f"{name}: IB sent no bar of this stored session: scale not checked")
        elif check.verdict == "differs":
            logger.warning(
                f"{name}: the stored bars differ from IB's answer now (median stored / IB "
                f"{check.measured}), by no split ratio: not repaired; inspect with make check"
            )
            w.report.scale_differs.setdefault(str(w.target.bar_type), {})[check.session] = float(
                check.measured or 0.0
            )
        elif check.verdict == "split":
            logger.warning(
                f"{name}: stored bars are {check.ratio} off IB's answer now: a split since they "
                f"were fetched; finding every stored session in the old scale "
                f"(corporate_actions.on_change={self.policy.on_change})"
            )
            how = (
                f"fetch: stored session {check.session} of {w.target.bar_type} re-asked, "
                f"stored / IB = {check.measured}"
            )
            await self._repair(w, contract, equity, how)

    async def _repair(self, w: _Work, contract: Contract, equity: Equity, how: str) -> None:
        report = w.report

        async def audit(req: PlannedRequest, what: str) -> list[BarData]:
            report.verify_requests += 1
            return await self._ask(contract, req, what, report)

        async def refetch(req: PlannedRequest, what: str) -> list[BarData]:
            return await self._ask(contract, req, what, report)

        events, differs = await repair_instrument(
            self.catalog,
            str(w.target.bar_type.instrument_id),
            equity,
            self.policy,
            calendar=w.cal,
            use_rth=self.use_rth,
            audit=audit,
            refetch=refetch,
            detected_by=how,
        )
        report.corporate_actions += [e.as_json() for e in events]
        for bt, days in differs.items():
            report.scale_differs.setdefault(bt, {}).update(days)

    async def _request(
        self, contract: Contract, req: PlannedRequest, what: str, key: tuple
    ) -> list[BarData]:
        self._bar.waiting(self.guard.wait_time(str(contract.conId), key))
        await self.guard.acquire(str(contract.conId), key)
        try:
            return await self.session.bars(contract, req, what)
        finally:
            self.guard.release()

    async def _with_retries(self, report: FetchReport, call):
        """``call`` with retries, lost connections ridden out (``ntrader.ibkr.retries``)."""
        return await with_retries(
            call,
            self.session,
            self.clock,
            report,
            on_pacing=lambda: self.guard.penalize(self.pacing_pause_s),
            where=lambda: f"request {self._done + 1} of {self._total}",
        )


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
    corporate_actions: CorporateActionPolicy | None = None,
    dry_run: bool = False,
) -> list[FetchReport]:
    """Fetch the missing sessions of each (bar type, first, last) range, holding the fetch lock
    (waiting ``lock_wait_s`` for another fetch); ``dry_run``: the plan alone (``fetchplan``)."""
    targets = [FetchTarget(bt, a, b) for bt, a, b in ranges]
    fetcher = Fetcher(
        catalog,
        settings,
        use_rth=use_rth,
        chunk_sessions=chunk_sessions,
        pacing_pause_s=pacing_pause_s,
        retry_nodata=retry_nodata,
        nodata_expiry_days=nodata_expiry_days,
        corporate_actions=corporate_actions,
        dry_run=dry_run,
    )
    if dry_run:
        return asyncio.run(fetcher.run(targets))
    create_catalog(catalog)  # a writer: a new catalog is created, and it says so
    with fetch_lock(catalog, lock_wait_s):
        return asyncio.run(fetcher.run(targets))
