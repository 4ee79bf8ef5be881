"""``make check``: a bar type's availability, calendar gaps and data health, with fill commands."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from nautilus_trader.model.data import BarType

from ntrader.catalog.catalog import Catalog
from ntrader.catalog.inventory import Availability, iso, record
from ntrader.errors import DataError, InputError
from ntrader.instruments import bar_step
from ntrader.quality.gaps import GapReport, find_gaps
from ntrader.quality.health import HealthIssue, check_health
from ntrader.sessions import calendar_for_venue, calendar_timezone, check_hours
from ntrader.tabular import csv_text, json_text, text_table

GAP_COLUMNS = ("kind", "first", "last", "size", "command")


@dataclass
class CheckReport:
    availability: Availability
    calendar: str
    gaps: GapReport
    health: list[HealthIssue]
    fill: list[dict[str, Any]] = field(default_factory=list)

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
            return csv_text(d["gaps"], GAP_COLUMNS)
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
            lines.append("  gaps      none")
        if d["health"]:
            lines.append("  health")
            for h in d["health"]:
                ex = ", ".join(h["examples"][:3])
                lines.append(f"    {h['kind']}: {h['message']}" + (f" (e.g. {ex})" if ex else ""))
        else:
            lines.append("  health    ok")
        return "\n".join(lines)

    def raise_on_gaps(self) -> None:
        """``check.fail_on_gaps=true``: any gap is a data error (exit 1)."""
        if self.fill:
            raise DataError(
                f"{len(self.fill)} gap(s) in {self.availability.bar_type}",
                hint="run the listed commands to fill them (check.fail_on_gaps=true asked for "
                "exit 1)",
            )


def fill_command(symbol: str, first: dt.date, last: dt.date, bar_spec: str) -> str:
    return f"make fetch SYMBOLS={symbol} START={first} END={last} BAR={bar_spec}"


def check_bar_type(
    catalog: Catalog,
    bar_type: BarType,
    *,
    start: dt.date | None = None,
    end: dt.date | None = None,
    calendar: str | None = None,
    hours: str = "regular",
    min_gap_bars: int = 1,
    jump_threshold: float = 0.10,
    zero_volume_run: int = 30,
) -> CheckReport:
    bt = str(bar_type)
    instrument_id = bar_type.instrument_id
    spec = f"{bar_type.spec}"
    # every argument is checked before the catalog is read: a typo is exit 2, not "no data"
    if start and end and start > end:
        raise InputError(f"START {start} is after END {end}", hint="swap them")
    check_hours(hours)
    if min_gap_bars < 1 or jump_threshold <= 0 or zero_volume_run < 1:
        raise InputError(
            "check.min_gap_bars and health.zero_volume_run must be >= 1, health.jump_threshold > 0",
        )
    cal = calendar or calendar_for_venue(instrument_id.venue.value)
    tz = calendar_timezone(cal)
    avail = catalog.availability(bt)
    if avail.rows == 0:
        known = [b for b in catalog.bar_types() if b.startswith(f"{instrument_id}-")]
        raise DataError(
            f"no {spec} bars for {instrument_id} in catalog {catalog.url}"
            + (f" (it has: {', '.join(known)})" if known else ""),
            hint=(
                f"fetch them: make fetch SYMBOLS={instrument_id} START=… END=… BAR={spec}  "
                f"or import a file: make import CSV=… SYMBOL={instrument_id} BAR={spec}"
            ),
        )
    step = bar_step(bar_type)
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
    health = check_health(frame, jump_threshold=jump_threshold, zero_volume_run=zero_volume_run)
    fill: list[dict[str, Any]] = []
    sym = str(instrument_id)
    for r in gaps.missing_sessions:
        fill.append(
            {
                "kind": "missing sessions",
                "first": str(r.first),
                "last": str(r.last),
                "size": f"{r.sessions} session{'s' if r.sessions > 1 else ''}",
                "command": fill_command(sym, r.first, r.last, spec),
            }
        )
    for g in gaps.intraday_gaps:
        fill.append(
            {
                "kind": "missing bars",
                "first": g.start_local().isoformat(),
                "last": g.end_local().isoformat(),
                "size": f"{g.bars} bars",
                "command": fill_command(sym, g.session, g.session, spec),
            }
        )
    return CheckReport(avail, cal, gaps, health, fill)
