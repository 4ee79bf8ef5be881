"""``make check``: a bar type's availability, calendar gaps and data health, with fill commands.

Every gap comes with the complete ``make fetch …`` that fills it (this catalog, this bar spec, the
hours checked). What IB already answered "no data" for (the caller passes those records, e.g.
``ntrader.ibkr.nodata.current``) is listed apart, as IB's answer with the date it was asked and
the command that asks again, never as a gap a plain fetch would fill.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import pandas as pd

from ntrader.catalog.catalog import Catalog
from ntrader.catalog.inventory import Availability, example_range, iso, make_command, record
from ntrader.errors import DataError, InputError
from ntrader.quality.gaps import GapReport, find_gaps, split_ranges
from ntrader.quality.health import HealthIssue, HealthOptions, check_health
from ntrader.sessions import calendar_for_venue, calendar_timezone, check_hours
from ntrader.symbols import instrument_of, spec_of, spec_step
from ntrader.tabular import csv_text, json_text, text_table

if TYPE_CHECKING:  # a check runs without NautilusTrader: bar types are their strings
    from nautilus_trader.model.data import BarType

GAP_COLUMNS = ("kind", "first", "last", "size", "command")
RETRY = "ibkr.retry_nodata=true"


class KnownNoData(Protocol):
    """What check needs of a record of IB's "no data" answer (``ntrader.ibkr.nodata.NoData``)."""

    @property
    def session(self) -> dt.date: ...

    @property
    def asked(self) -> dt.datetime: ...

    @property
    def whole(self) -> bool: ...

    def covers(self, first_ns: int, last_ns: int) -> bool: ...


@dataclass
class CheckReport:
    availability: Availability
    calendar: str
    gaps: GapReport
    health: list[HealthIssue]
    fill: list[dict[str, Any]] = field(default_factory=list)
    no_data: list[dict[str, Any]] = field(default_factory=list)  # IB's answers, not gaps

    def as_dict(self) -> dict[str, Any]:
        g = self.gaps
        return {
            "availability": record(self.availability),
            "calendar": self.calendar,
            "range": {"start": str(g.start), "end": str(g.end)},
            "sessions": {
                "expected": g.sessions_expected,
                "present": g.sessions_present,
                "missing": g.sessions_missing,
            },
            "bars": {
                "expected": g.bars_expected,
                "present": g.bars_present,
                "missing": g.bars_missing,
                "outside_hours": g.bars_outside,
            },
            "gaps": self.fill,
            "no_data": self.no_data,
            "health": [
                {
                    "kind": h.kind,
                    "count": h.count,
                    "message": h.message,
                    "examples": [iso(int(x)) for x in h.examples],
                }
                for h in self.health
            ],
        }

    def render(self, fmt: str = "table", max_listed: int = 50) -> str:
        """``make check``'s output: JSON (everything), CSV (the gaps) or the text report."""
        d = self.as_dict()
        if fmt == "json":
            return json_text(d)
        if fmt == "csv":
            return csv_text(d["gaps"] + d["no_data"], GAP_COLUMNS)
        a, s, b = d["availability"], d["sessions"], d["bars"]
        outside = b["outside_hours"]
        lines = [
            f"{a['bar_type']}",
            f"  catalog   {a['first']} .. {a['last']} · {a['rows']:,} bars in {a['files']} files "
            f"({a['bytes']:,} bytes)",
            f"  checked   {d['range']['start']} .. {d['range']['end']} against {d['calendar']}: "
            f"{s['present']}/{s['expected']} sessions, {b['present']:,}/{b['expected']:,} bars"
            + (f" (+{outside:,} outside the checked hours)" if outside else ""),
        ]
        gaps = d["gaps"]
        if gaps:
            lines.append(f"  gaps      {len(gaps)} (commands fill them)")
            lines.append(text_table(gaps[:max_listed], GAP_COLUMNS))
            if len(gaps) > max_listed:
                lines.append(f"… {len(gaps) - max_listed} more (FORMAT=json lists all)")
        else:
            lines.append("  gaps      none" + (" to fetch" if self.no_data else ""))
        if self.no_data:
            lines.append(
                f"  no data   {len(self.no_data)} (IB had no data when asked; a fetch asks again "
                "after the date shown, or now with the command)"
            )
            for n in self.no_data[:max_listed]:
                lines.append(f"    {n['text']}")
                lines.append(f"      ask now: {n['command']}")
            if len(self.no_data) > max_listed:
                lines.append(f"    … {len(self.no_data) - max_listed} more (FORMAT=json lists all)")
        if d["health"]:
            lines.append("  health")
            for h in d["health"]:
                ex = ", ".join(h["examples"][:3])
                lines.append(f"    {h['kind']}: {h['message']}" + (f" (e.g. {ex})" if ex else ""))
        else:
            lines.append("  health    ok")
        return "\n".join(lines)

    def counts(self) -> dict[str, int]:
        """The numbers ``summary.json`` records for a check."""
        return {
            "gaps": len(self.fill),
            "no_data": len(self.no_data),
            "health_issues": len(self.health),
            "possible_splits": sum(h.count for h in self.health if h.kind == "possible_split"),
        }

    def raise_on_gaps(self) -> None:
        """``check.fail_on_gaps=true``: any gap is a data error (exit 1)."""
        if self.fill:
            raise DataError(
                f"{len(self.fill)} gap(s) in {self.availability.bar_type}",
                hint="run the listed commands to fill them (check.fail_on_gaps=true asked for "
                "exit 1)",
            )


def fill_command(
    symbol: str,
    first: dt.date | str,
    last: dt.date | str,
    bar_spec: str,
    catalog_url: str | None = None,
    *,
    args: Sequence[str] = (),
) -> str:
    """The complete ``make fetch`` that fills ``first .. last`` of ``symbol`` in the catalog."""
    return make_command(
        "fetch", catalog_url, SYMBOLS=symbol, START=first, END=last, BAR=bar_spec, args=args
    )


def _asked_text(records: list[KnownNoData], expiry_days: float | None) -> tuple[str, str]:
    """("2026-11-30" or a range of dates, when IB is asked again or "")."""
    days = sorted({r.asked.date() for r in records})
    asked = str(days[0]) if len(days) == 1 else f"{days[0]} .. {days[-1]}"
    if expiry_days is None:
        return asked, ""
    due = min(r.asked for r in records) + dt.timedelta(days=float(expiry_days))
    return asked, str(due.date())


def check_options(check: Mapping[str, Any], health: Mapping[str, Any]) -> dict[str, Any]:
    """The ``check`` and ``health`` config groups as :func:`check_bar_type` keywords."""
    return {
        "calendar": check.get("calendar"),
        "hours": str(check.get("hours", "regular")),
        "min_gap_bars": int(check.get("min_gap_bars", 1)),
        "health": HealthOptions.of(health),
    }


def check_bar_type(
    catalog: Catalog,
    bar_type: BarType | str,
    *,
    start: dt.date | None = None,
    end: dt.date | None = None,
    calendar: str | None = None,
    hours: str = "regular",
    min_gap_bars: int = 1,
    health: HealthOptions | None = None,
    no_data: Mapping[dt.date, KnownNoData] | None = None,
    nodata_expiry_days: float | None = 30.0,
) -> CheckReport:
    """Check ``bar_type`` over ``start .. end`` (default: its data); ``no_data``: the trusted
    records of what IB had no data for (``ntrader.ibkr.nodata.current``), shown as IB's answer
    (records expire ``nodata_expiry_days`` after they were asked)."""
    bt = str(bar_type)
    instrument_id, spec = instrument_of(bt), spec_of(bt)
    # every argument is checked before the catalog is read: a typo is exit 2, not "no data"
    if start and end and start > end:
        raise InputError(f"START {start} is after END {end}", hint="swap them")
    check_hours(hours)
    if min_gap_bars < 1:
        raise InputError("check.min_gap_bars must be >= 1")
    opts = health or HealthOptions()
    cal = calendar or calendar_for_venue(instrument_id.rsplit(".", 1)[1])
    tz = calendar_timezone(cal)
    catalog.require_exists(str(instrument_id), spec)  # a typo'd CATALOG must not look empty
    avail = catalog.availability(bt)
    # extended hours are filled by an extended-hours fetch
    fetch_args = ["ibkr.use_rth=false"] if hours == "extended" else []
    if avail.rows == 0:
        known = [b for b in catalog.bar_types() if b.startswith(f"{instrument_id}-")]
        first, last = example_range(cal)
        if start or end:  # the range checked (an open end: the last sessions)
            first, last = start or min(first, end or first), end or max(last, start or last)
        fetch = fill_command(str(instrument_id), first, last, spec, catalog.url, args=fetch_args)
        imp = make_command(
            "import", catalog.url, CSV="path/to/bars.csv", SYMBOL=str(instrument_id), BAR=spec
        )
        raise DataError(
            f"no {spec} bars for {instrument_id} in catalog {catalog.url}"
            + (f" (it has: {', '.join(known)})" if known else ""),
            hint=(
                f"fetch them ({'the range checked' if start or end else 'e.g. the last sessions'}"
                f"):\n  {fetch}\nor import a file of them:\n  {imp}"
            ),
        )
    step = spec_step(spec)
    start_ns = None if start is None else pd.Timestamp(start, tz=tz).value
    end_ns = None if end is None else (pd.Timestamp(end, tz=tz) + pd.Timedelta(days=2)).value
    frame = catalog.read(bt, start_ns, end_ns)
    gaps = find_gaps(
        frame.ts_event,
        calendar=cal,
        step_ns=step.interval_ns,
        daily=step.daily,
        start=start,
        end=end,
        hours=hours,
        min_run=min_gap_bars,
    )
    issues = check_health(frame, **opts.thresholds(), tz=tz)
    records = dict(no_data or {})
    sym = str(instrument_id)
    url = catalog.url

    def retry(first: dt.date, last: dt.date) -> str:
        return fill_command(sym, first, last, spec, url, args=[RETRY, *fetch_args])

    to_fetch, answered = split_ranges(
        gaps.missing_sessions, cal, {d for d, r in records.items() if r.whole}
    )
    fill: list[dict[str, Any]] = []
    nodata_rows: list[dict[str, Any]] = []
    for r in to_fetch:
        fill.append(
            {
                "kind": "missing sessions",
                "first": str(r.first),
                "last": str(r.last),
                "size": f"{r.sessions} session{'s' if r.sessions > 1 else ''}",
                "command": fill_command(sym, r.first, r.last, spec, url, args=fetch_args),
            }
        )
    for r in answered:
        recs = [v for d, v in records.items() if r.first <= d <= r.last]
        asked, again = _asked_text(recs, nodata_expiry_days)
        span = str(r.first) if r.sessions == 1 else f"{r.first} .. {r.last} ({r.sessions} sessions)"
        nodata_rows.append(
            {
                "kind": "no data at IB",
                "first": str(r.first),
                "last": str(r.last),
                "size": f"{r.sessions} session{'s' if r.sessions > 1 else ''}",
                "asked": asked,
                "asked_again": again or None,
                "command": retry(r.first, r.last),
                "text": f"IB had no data on {span}, asked {asked}"
                + (f" (asked again after {again})" if again else ""),
            }
        )
    for g in gaps.intraday_gaps:
        rec = records.get(g.session)
        a, b = g.start_local(), g.end_local()
        row = {
            "first": a.isoformat(),
            "last": b.isoformat(),
            "size": f"{g.bars} bars",
        }
        if rec is not None and rec.covers(g.first_missing_ns, g.last_missing_ns):
            asked, again = _asked_text([rec], nodata_expiry_days)
            what = "no data" if rec.whole else "no bars"
            nodata_rows.append(
                {
                    "kind": "no bars at IB",
                    **row,
                    "asked": asked,
                    "asked_again": again or None,
                    "command": retry(g.session, g.session),
                    "text": f"IB had {what} for {g.session} {a:%H:%M}–{b:%H:%M} ({g.bars} bars), "
                    f"asked {asked}" + (f" (asked again after {again})" if again else ""),
                }
            )
            continue
        fill.append(
            {
                "kind": "missing bars",
                **row,
                "command": fill_command(sym, g.session, g.session, spec, url, args=fetch_args),
            }
        )
    return CheckReport(avail, cal, gaps, issues, fill, nodata_rows)
