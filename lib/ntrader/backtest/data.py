"""The data a backtest runs on: every bar type checked against its exchange calendar, then loaded.

Never a silent zero-iteration run: a missing instrument, zero bars or missing sessions are a
:class:`MissingData` error naming the missing ranges and the commands that fill them (and the
ranges IBKR could be asked for, which the auto-fetch uses).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from loguru import logger
from nautilus_trader.model.data import Bar, BarType
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.model.instruments import Instrument

from ntrader.backtest.spec import BacktestSpec
from ntrader.catalog.catalog import Catalog
from ntrader.catalog.inventory import iso
from ntrader.errors import DataError
from ntrader.ibkr import nodata
from ntrader.instruments import bar_step
from ntrader.quality.checkup import fill_command
from ntrader.quality.gaps import find_gaps
from ntrader.sessions import calendar_for_venue, calendar_timezone, day_bounds_ns, sessions_between


@dataclass
class LoadedData:
    instruments: dict[InstrumentId, Instrument]
    bars: dict[BarType, list[Bar]]
    ranges: dict[str, tuple[dt.date, dt.date]]
    closes: dict[str, tuple[Any, Any]] = field(default_factory=dict)  # iid -> (ts_event, close)
    tz: str = "America/New_York"

    @property
    def bar_count(self) -> int:
        return sum(len(b) for b in self.bars.values())


class MissingData(DataError):
    """The catalog lacks data a backtest needs; ``fetchable`` lists (bar type, first, last)
    session ranges IBKR could fill, ``complete`` whether they cover every problem."""

    def __init__(
        self,
        message: str,
        hint: str | None = None,
        *,
        fetchable: list[tuple[BarType, dt.date, dt.date]],
        complete: bool,
    ) -> None:
        super().__init__(message, hint)
        self.fetchable = fetchable
        self.complete = complete


def check_and_load(catalog: Catalog, spec: BacktestSpec) -> LoadedData:
    """Verify every bar type's data over the range, then load instruments and bars."""
    instruments: dict[InstrumentId, Instrument] = {}
    bars: dict[BarType, list[Bar]] = {}
    ranges: dict[str, tuple[dt.date, dt.date]] = {}
    closes: dict[str, tuple[Any, Any]] = {}
    tz = "America/New_York"
    problems: list[str] = []
    commands: list[str] = []
    fetchable: list[tuple[BarType, dt.date, dt.date]] = []
    all_fetchable = True  # False once a problem has no date range IBKR could be asked for
    for bt in spec.bar_types:
        iid = bt.instrument_id
        spec_str = str(bt.spec)
        inst = catalog.instrument(iid)
        avail = catalog.availability(bt)
        if inst is None or avail.rows == 0:
            what = "instrument" if inst is None else f"{spec_str} bars"
            problems.append(f"{iid}: no {what} in catalog {catalog.url}")
            s = spec.start or "YYYY-MM-DD"
            e = spec.end or "YYYY-MM-DD"
            commands.append(f"make fetch SYMBOLS={iid} START={s} END={e} BAR={spec_str}")
            commands.append(f"make import CSV=<file> SYMBOL={iid} BAR={spec_str}")
            if spec.start and spec.end:
                fetchable.append((bt, spec.start, spec.end))
            else:
                all_fetchable = False
            continue
        cal = spec.calendar or calendar_for_venue(iid.venue.value)
        tz = calendar_timezone(cal)
        step = bar_step(bt)
        lo, hi = day_bounds_ns(spec.start, spec.end, tz)
        frame = catalog.read(bt, lo, hi)
        if not len(frame):
            have = (
                f"{iso(avail.first_ns, daily=step.daily)} .. {iso(avail.last_ns, daily=step.daily)}"
            )
            problems.append(
                f"{iid}: no {spec_str} bars between {spec.start or 'start'} and "
                f"{spec.end or 'end'} (the catalog has {have})"
            )
            if spec.start and spec.end:
                commands.append(fill_command(str(iid), spec.start, spec.end, spec_str))
                fetchable.append((bt, spec.start, spec.end))
            else:
                all_fetchable = False
            continue
        gaps = find_gaps(
            frame.ts_event,
            calendar=cal,
            step_ns=step.interval_ns,
            daily=step.daily,
            start=spec.start,
            end=spec.end,
        )
        ranges[str(bt)] = (gaps.start or spec.start, gaps.end or spec.end)  # type: ignore[assignment]
        known_empty = nodata.load(catalog, str(bt))  # IBKR said "no data" for these
        missing = [
            r
            for r in gaps.missing_sessions
            if not set(sessions_between(cal, r.first, r.last).date_list()) <= known_empty
        ]
        if len(missing) < len(gaps.missing_sessions):
            logger.warning(
                f"{iid}: {len(gaps.missing_sessions) - len(missing)} missing session range(s) "
                "have no data at IBKR (recorded by an earlier fetch): running without them"
            )
        if missing:
            listed = ", ".join(str(r) for r in missing[:10])
            more = len(missing) - 10
            n_missing = sum(r.sessions for r in missing)
            msg = f"{iid}: {n_missing} of {gaps.sessions_expected} sessions missing: "
            msg += listed + (f" … and {more} more ranges" if more > 0 else "")
            if spec.allow_missing_sessions:
                logger.warning(msg + " (data.allow_missing_sessions=true: running anyway)")
            else:
                problems.append(msg)
                commands += [fill_command(str(iid), r.first, r.last, spec_str) for r in missing]
                fetchable += [(bt, r.first, r.last) for r in missing]
        if not problems:
            instruments[iid] = inst
            bars[bt] = catalog.read_bars(bt, lo, hi)
            closes[str(iid)] = (frame.ts_event, frame.close)
    if problems:
        unique_cmds = list(dict.fromkeys(commands))
        raise MissingData(
            "cannot backtest:\n  " + "\n  ".join(problems),
            hint="fill the data first:\n  "
            + "\n  ".join(unique_cmds[:20])
            + (f"\n  … {len(unique_cmds) - 20} more" if len(unique_cmds) > 20 else "")
            + "\n(or data.allow_missing_sessions=true to run over the holes)",
            fetchable=fetchable,
            complete=all_fetchable,
        )
    return LoadedData(instruments, bars, ranges, closes, tz)
