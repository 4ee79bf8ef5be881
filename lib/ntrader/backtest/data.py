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
from nautilus_trader.model.data import BarType
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.model.instruments import Instrument

from ntrader.backtest.spec import BacktestSpec
from ntrader.catalog.adjust import MissingFactors, PriceView, resolve_view
from ntrader.catalog.catalog import Catalog
from ntrader.catalog.commitlog import catalog_version
from ntrader.catalog.corporate import ratio_label
from ntrader.catalog.inventory import example_range, iso, make_command
from ntrader.catalog.manifest import HASH, HashCache, definition_hash, pinned_files
from ntrader.catalog.stream import PinnedBars, pin_bars
from ntrader.errors import DataError
from ntrader.ibkr import nodata
from ntrader.instruments import bar_step
from ntrader.quality.checkup import fill_command
from ntrader.quality.gaps import find_gaps, split_ranges
from ntrader.sessions import calendar_for_venue, calendar_timezone, day_bounds_ns, local_dates


@dataclass
class LoadedData:
    """Checked data for one backtest: instruments, and per bar type its bars pinned as of one
    commit (:class:`~ntrader.catalog.stream.PinnedBars`: timestamps and closes in memory, bars
    decoded in chunks while the engine runs). Close it (or use it as a context manager) when the
    run is over."""

    instruments: dict[InstrumentId, Instrument]
    sources: dict[BarType, PinnedBars]
    ranges: dict[str, tuple[dt.date, dt.date]]
    closes: dict[str, tuple[Any, Any]] = field(default_factory=dict)  # iid -> (ts_event, close)
    tz: str = "America/New_York"
    views: dict[str, PriceView] = field(default_factory=dict)  # iid -> data.adjust's view
    # bar type -> the catalog version of its last commit when its files were pinned
    commit_versions: dict[str, int | None] = field(default_factory=dict)
    catalog_version: int = 0  # the catalog's version once every bar type was pinned

    def adjustment(self) -> dict[str, Any]:
        """``summary.json``'s ``adjustment``: the view, and per instrument what it applied."""
        modes = sorted({v.mode for v in self.views.values()})
        return {
            "view": modes[0] if len(modes) == 1 else modes,
            "instruments": {iid: v.summary() for iid, v in sorted(self.views.items())},
        }

    @property
    def bar_count(self) -> int:
        return sum(s.count for s in self.sources.values())

    @property
    def first_ns(self) -> int:
        return min(s.first_ns for s in self.sources.values())

    @property
    def last_ns(self) -> int:
        return max(s.last_ns for s in self.sources.values())

    def manifest(self, catalog_url: str) -> dict[str, Any]:
        """``manifest.json``'s ``data``: per bar type the pinned files the run reads (bytes,
        rows, first/last ``ts_event``, content hash), the instrument definition's hash and the
        price view; the hash cache's hits and misses."""
        cache = HashCache()
        try:
            bar_types = {}
            for bt, pinned in self.sources.items():
                iid = bt.instrument_id
                view = self.views.get(str(iid))
                bar_types[str(bt)] = {
                    "last_commit": self.commit_versions.get(str(bt)),
                    "rows_read": pinned.count,
                    "first_ts_event": pinned.first_ns if pinned.count else None,
                    "last_ts_event": pinned.last_ns if pinned.count else None,
                    "files": pinned_files(catalog_url, pinned, cache),
                    "instrument": {"id": str(iid), HASH: definition_hash(self.instruments[iid])},
                    "adjustment": view.summary() if view else {"view": "splits"},
                }
        finally:
            cache.close()
        return {
            "data": {
                "catalog": catalog_url,
                "catalog_version": self.catalog_version,
                "bar_types": bar_types,
                "hash_cache": cache.stats(),
            }
        }

    def close(self) -> None:
        for s in self.sources.values():
            s.close()

    def __enter__(self) -> LoadedData:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


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


class LackingFactors(DataError):
    """``data.adjust=total_return`` lacks dividend factors: ``fetchable`` lists (bar type,
    first, last) whose instruments a fetch with ``corporate_actions.dividends=true`` fills."""

    def __init__(
        self, message: str, hint: str | None, *, fetchable: list[tuple[BarType, dt.date, dt.date]]
    ) -> None:
        super().__init__(message, hint)
        self.fetchable = fetchable


def check_and_load(
    catalog: Catalog,
    spec: BacktestSpec,
    *,
    load: bool = True,
    retry_nodata: bool = False,
    nodata_expiry_days: float | None = nodata.DEFAULT_EXPIRY_DAYS,
) -> LoadedData:
    """Verify every bar type's data over the range (timestamps only) and pin its files for the
    run (``load=False``: check only, nothing stays pinned and ``sources`` is empty). Sessions IBKR
    answered "no data" for (less than ``nodata_expiry_days`` ago, none with ``retry_nodata``)
    are not missing."""
    opened: list[PinnedBars] = []
    try:
        data = _check(catalog, spec, opened, retry_nodata, nodata_expiry_days)
    except BaseException:
        for pinned in opened:
            pinned.close()
        raise
    if not load:
        data.close()
        data.sources.clear()
    return data


def _check(
    catalog: Catalog,
    spec: BacktestSpec,
    opened: list[PinnedBars],
    retry_nodata: bool,
    nodata_expiry_days: float | None,
) -> LoadedData:
    instruments: dict[InstrumentId, Instrument] = {}
    sources: dict[BarType, PinnedBars] = {}
    ranges: dict[str, tuple[dt.date, dt.date]] = {}
    closes: dict[str, tuple[Any, Any]] = {}
    views: dict[str, PriceView] = {}
    lacking: list[tuple[MissingFactors, BarType]] = []  # data.adjust=total_return
    commit_versions: dict[str, int | None] = {}
    tz = "America/New_York"
    problems: list[str] = []
    commands: list[str] = []
    fetchable: list[tuple[BarType, dt.date, dt.date]] = []
    all_fetchable = True  # False once a problem has no date range IBKR could be asked for
    holes = False  # sessions missing in data that exists: data.allow_missing_sessions helps
    url = catalog.url
    catalog.require_exists(str(spec.bar_types[0].instrument_id), str(spec.bar_types[0].spec))
    for bt in spec.bar_types:
        iid = bt.instrument_id
        spec_str = str(bt.spec)
        inst = catalog.instrument(iid)
        avail = catalog.availability(bt)
        if inst is None or avail.rows == 0:
            what = "instrument" if inst is None else f"{spec_str} bars"
            problems.append(f"{iid}: no {what} in catalog {catalog.url}")
            s, e = _fetch_range(spec, spec.calendar or calendar_for_venue(iid.venue.value))
            commands.append(fill_command(str(iid), s, e, spec_str, url))
            commands.append(
                make_command("import", url, CSV="path/to/bars.csv", SYMBOL=iid, BAR=spec_str)
            )
            if spec.start and spec.end:
                fetchable.append((bt, spec.start, spec.end))
            else:
                all_fetchable = False
            continue
        cal = spec.calendar or calendar_for_venue(iid.venue.value)
        tz = calendar_timezone(cal)
        step = bar_step(bt)
        lo, hi = day_bounds_ns(spec.start, spec.end, tz)
        pinned = pin_bars(catalog, str(bt), lo, hi)  # this commit's files, until the run ends
        opened.append(pinned)
        commit_versions[str(bt)] = catalog.history.log.latest(pinned.bar_type, catalog.as_of)
        if not pinned.count:
            have = (
                f"{iso(avail.first_ns, daily=step.daily)} .. {iso(avail.last_ns, daily=step.daily)}"
            )
            problems.append(
                f"{iid}: no {spec_str} bars between {spec.start or 'start'} and "
                f"{spec.end or 'end'} (the catalog has {have})"
            )
            commands.append(fill_command(str(iid), *_fetch_range(spec, cal), spec_str, url))
            if spec.start and spec.end:
                fetchable.append((bt, spec.start, spec.end))
            else:
                all_fetchable = False
            continue
        gaps = find_gaps(
            pinned.ts,
            calendar=cal,
            step_ns=step.interval_ns,
            daily=step.daily,
            start=spec.start,
            end=spec.end,
        )
        ranges[str(bt)] = (gaps.start or spec.start, gaps.end or spec.end)  # type: ignore[assignment]
        answered = nodata.current(  # IBKR said "no data" for these
            catalog, str(bt), expiry_days=nodata_expiry_days, retry=retry_nodata
        )
        missing, known = split_ranges(
            gaps.missing_sessions, cal, {d for d, r in answered.items() if r.whole}
        )
        for r in known:
            asked = sorted({answered[d].asked.date() for d in answered if r.first <= d <= r.last})
            retry = fill_command(str(iid), r.first, r.last, spec_str, url, args=[RETRY])
            logger.warning(
                f"{iid}: IB had no data on {r}, asked {asked[0]}"
                + (f" .. {asked[-1]}" if len(asked) > 1 else "")
                + f": running without it; ask again: {retry}"
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
                holes = True
                commands += [
                    fill_command(str(iid), r.first, r.last, spec_str, url) for r in missing
                ]
                fetchable += [(bt, r.first, r.last) for r in missing]
        if not problems:
            first, last = (d.item() for d in local_dates(pinned.ts[[0, -1]] - 1, tz))
            try:
                view = resolve_view(
                    catalog,
                    str(iid),
                    spec.adjust,
                    first,
                    last,
                    splits=spec.splits,
                    fill_command=fill_command(
                        str(iid), first, last, spec_str, url, args=[DIVIDENDS]
                    ),
                )
            except MissingFactors as exc:
                lacking.append((exc, bt))
                continue
            pinned.set_view(view, tz)
            views[str(iid)] = view
            instruments[iid] = inst
            sources[bt] = pinned
            closes[str(iid)] = (pinned.ts, pinned.close_px)
    if problems:
        unique_cmds = list(dict.fromkeys(commands))
        raise MissingData(
            "cannot backtest:\n  " + "\n  ".join(problems),
            hint="fill the data first:\n  "
            + "\n  ".join(unique_cmds[:20])
            + (f"\n  … {len(unique_cmds) - 20} more" if len(unique_cmds) > 20 else "")
            + (_run_over_holes(spec, url) if holes else ""),
            fetchable=fetchable,
            complete=all_fetchable,
        )
    if lacking:
        raise LackingFactors(
            "\n".join(e.message for e, _ in lacking),
            hint="\n".join(dict.fromkeys(e.hint or "" for e, _ in lacking)),
            fetchable=[(bt, e.first, e.last) for e, bt in lacking],
        )
    if spec.adjust == "none":
        logger.warning(
            "data.adjust=none undoes the splits ntrader recorded or data.splits lists: "
            + (
                ", ".join(
                    f"{iid} {ratio_label(s.ratio)} on {s.effective}"
                    for iid, v in views.items()
                    for s in v.splits
                )
                or "none"
            )
            + "; IB's history is split-adjusted as of each fetch, so a split before ntrader "
            "first fetched an instrument stays adjusted (name it in data.splits)"
        )
    return LoadedData(
        instruments,
        sources,
        ranges,
        closes,
        tz,
        views,
        commit_versions,
        catalog_version(catalog),
    )


RETRY = "ibkr.retry_nodata=true"
DIVIDENDS = "corporate_actions.dividends=true"


def _fetch_range(spec: BacktestSpec, calendar: str) -> tuple[dt.date, dt.date]:
    """The backtest's range for a suggested fetch; an open end: the last completed sessions."""
    first, last = example_range(calendar)
    if spec.start and spec.end:
        return spec.start, spec.end
    if spec.start:
        return spec.start, max(spec.start, last)
    if spec.end:
        return min(first, spec.end), spec.end
    return first, last


def _run_over_holes(spec: BacktestSpec, url: str) -> str:
    """The hint's last line: the same backtest run over the missing sessions."""
    allow = "data.allow_missing_sessions=true"
    if len(spec.bar_types) != 1:
        return f'\nor run over the holes: add ARGS="{allow}" to the make backtest command'
    bt = spec.bar_types[0]
    cmd = make_command(
        "backtest",
        url,
        SYMBOL=bt.instrument_id,
        START=spec.start,
        END=spec.end,
        BAR=bt.spec,
        args=[allow],
    )
    return f"\nor run over the holes (with your STRATEGY=/ARGS= settings):\n  {cmd}"
