"""A fetch as the user asks for it — symbols × one session range, and how to reach IB — and
its outcome per bar type: what ``scripts/fetch.py`` builds from its config, runs and prints.

Python::

    job = FetchJob.of(["AAPL", "MSFT"], "2024-01-02", "2024-03-28", IbkrSettings(port=4002))
    result = run_fetch(job, Catalog("data/catalog"))
    print(result.render())
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from nautilus_trader.model.data import BarType

from ntrader.catalog.catalog import Catalog
from ntrader.catalog.corporate import SplitEvent
from ntrader.catalog.inventory import make_command
from ntrader.errors import InputError
from ntrader.ibkr import nodata
from ntrader.ibkr.client import IbkrSettings
from ntrader.ibkr.fetcher import FetchReport, fetch_ranges
from ntrader.ibkr.fetchplan import plan_line, plan_summary
from ntrader.ibkr.pacing import PacingRules
from ntrader.ibkr.verify import CorporateActionPolicy
from ntrader.instruments import bar_types_for
from ntrader.sessions import calendar_for_venue, parse_day, sessions_between
from ntrader.tabular import text_table

COLUMNS = (
    "bar_type",
    "requests",
    "bars",
    "sessions_fetched",
    "nodata_sessions",
    "retries",
    "seconds",
)


@dataclass(frozen=True)
class FetchJob:
    """Fetch the sessions of ``start .. end`` (inclusive) the catalog lacks, for each bar type."""

    bar_types: list[BarType]
    start: dt.date
    end: dt.date
    settings: IbkrSettings
    use_rth: bool = True
    chunk_sessions: int | None = None
    pacing_pause_s: float = 15.0
    retry_nodata: bool = False  # ask IB again for what it answered "no data" for
    nodata_expiry_days: float | None = nodata.DEFAULT_EXPIRY_DAYS  # then it is asked again
    # the split-scale check of stored history and what a split does (ntrader.ibkr.verify)
    corporate_actions: CorporateActionPolicy = field(default_factory=CorporateActionPolicy)
    dry_run: bool = False  # fetch.dry_run / PLAN=1: print the plan, send nothing (fetchplan)

    def __post_init__(self) -> None:
        if not self.bar_types:
            raise InputError("no symbols to fetch", hint="pass SYMBOLS=AAPL,MSFT or SET=mega_caps")
        if self.start > self.end:
            raise InputError(f"START {self.start} is after END {self.end}", hint="swap them")
        nodata.check_expiry(self.nodata_expiry_days)

    @classmethod
    def of(
        cls,
        symbols: Iterable[str],
        start: str | dt.date,
        end: str | dt.date,
        settings: IbkrSettings | None = None,
        *,
        bar: str = "1-MINUTE-LAST",
        **options: Any,
    ) -> FetchJob:
        """From symbols and dates as a user types them; ``options``: the other fields."""
        first, last = _range(start, end)
        return cls(bar_types_for(symbols, bar), first, last, settings or IbkrSettings(), **options)

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> FetchJob:
        """From ``conf/fetch.yaml`` as composed by Hydra (or the same as a dict)."""
        inst, ibkr = cfg["instruments"], cfg["ibkr"]
        symbols = [str(s) for s in (cfg["symbols"] or inst["symbols"] or [])]
        if not symbols:
            raise InputError("no symbols to fetch", hint="pass SYMBOLS=AAPL,MSFT or SET=mega_caps")
        start, end = _range(cfg["dates"]["start"], cfg["dates"]["end"])
        return cls(
            bar_types=bar_types_for(
                symbols, str(cfg["bars"]["spec"]), inst["default_venue"], inst["venues"]
            ),
            start=start,
            end=end,
            settings=IbkrSettings.from_config(ibkr),
            use_rth=bool(ibkr["use_rth"]),
            chunk_sessions=ibkr["chunk_sessions"],
            pacing_pause_s=float(cfg["pacing_pause_s"]),
            retry_nodata=bool(ibkr.get("retry_nodata", False)),
            nodata_expiry_days=nodata.parse_expiry(
                ibkr.get("nodata_expiry_days", nodata.DEFAULT_EXPIRY_DAYS)
            ),
            corporate_actions=CorporateActionPolicy.of(cfg.get("corporate_actions")),
            dry_run=bool((cfg.get("fetch") or {}).get("dry_run", False)),
        )


def _range(start: Any, end: Any) -> tuple[dt.date, dt.date]:
    first, last = parse_day(start, "START"), parse_day(end, "END")
    if first is None or last is None:
        raise InputError("fetch needs a date range", hint="pass START=… END=… or DATES=…")
    return first, last


@dataclass(frozen=True)
class FetchResult:
    """One :class:`FetchReport` per bar type of the job."""

    job: FetchJob
    reports: list[FetchReport]
    catalog_url: str

    def counts(self) -> dict[str, int]:
        """The ``counts`` of ``summary.json``."""
        return {
            "requests": sum(r.requests for r in self.reports),
            "bars": sum(r.bars for r in self.reports),
            "nodata_sessions": sum(r.nodata_sessions for r in self.reports),
            "nodata_known": sum(len(r.known_nodata) for r in self.reports),
            "verify_requests": sum(r.verify_requests for r in self.reports),
            "splits_repaired": sum(len(r.corporate_actions) for r in self.reports),
            "scale_differs": sum(len(d) for r in self.reports for d in r.scale_differs.values()),
            "factor_requests": sum(r.factor_requests for r in self.reports),
            # sessions still lacking bars after this run (IB had none, or not all): notify.on_gaps
            "gaps_remaining": sum(self._lacking(r) for r in self.reports),
        }

    @staticmethod
    def _lacking(r: FetchReport) -> int:
        days = {str(k["session"]) for k in r.known_nodata} | set(r.nodata) | set(r.holes_left)
        return len(days)

    def as_summary(self) -> dict[str, Any]:
        """The run's part of ``summary.json``."""
        return {
            "catalog": self.catalog_url,
            "range": [str(self.job.start), str(self.job.end)],
            "plan": plan_summary(self.reports, PacingRules(), self.job.dry_run),
            "corporate_actions": {
                "verify": self.job.corporate_actions.verify,
                "on_change": self.job.corporate_actions.on_change,
                "events": [e for r in self.reports for e in r.corporate_actions],
                "dividends": self.job.corporate_actions.dividends,
                "factors": {
                    r.bar_type.rsplit("-", 4)[0]: r.factors for r in self.reports if r.factors
                },
            },
            "instruments": [r.as_dict() for r in self.reports],
        }

    def render(self) -> str:
        """What the fetch prints: what it did (requests, bars; or that nothing was asked), a
        table row per bar type, then what remains — the sessions IB had no data for, each with
        the command that asks again."""
        j = self.job
        if j.dry_run:
            return self._plan()
        requests = sum(r.requests for r in self.reports)
        bars = sum(r.bars for r in self.reports)
        where = f"from IBKR {j.settings.endpoint} into {self.catalog_url}"
        remaining = [line for r in self.reports for line in self._remaining(r)]
        if requests:
            checks = sum(r.verify_requests for r in self.reports)
            factors = sum(r.factor_requests for r in self.reports)
            parts = [f"{checks:,} to check the split scale"] if checks else []
            parts += [f"{factors:,} for dividend factors"] if factors else []
            of_which = f" ({', '.join(parts)})" if parts else ""
            head = (
                f"Fetched {bars:,} bars in {requests:,} request{'s' if requests > 1 else ''}"
                f"{of_which} for {j.start} .. {j.end} {where}"
            )
        elif remaining:
            head = (
                f"Nothing fetched (0 requests to IBKR {j.settings.endpoint}): in {j.start} .. "
                f"{j.end} the catalog {self.catalog_url} lacks only what IB had no data for"
            )
        else:
            head = (
                f"Nothing to fetch (0 requests to IBKR {j.settings.endpoint}): the catalog "
                f"{self.catalog_url} already holds every session of {j.start} .. {j.end}"
            )
        lines = [head, text_table([r.as_dict() for r in self.reports], COLUMNS), *self._scale()]
        if remaining:
            lines.append("Remaining gaps (IB had no data):")
            lines += [f"  {line}" for line in remaining]
        return "\n".join(lines)

    def _plan(self) -> str:
        """``fetch.dry_run=true``: the plan (the same line the fetch logs first) and, per bar
        type, the sessions missing and the requests they would take; nothing was sent."""
        rows = [
            {
                "bar_type": r.bar_type,
                "sessions_missing": r.sessions_missing,
                "requests": r.planned_requests,
                "nodata_known": len(r.known_nodata),
            }
            for r in self.reports
        ]
        head = (
            f"{self.plan_text} — plan only (fetch.dry_run=true): nothing sent to IBKR "
            f"{self.job.settings.endpoint}, nothing written to {self.catalog_url}"
        )
        return "\n".join([head, text_table(rows, tuple(rows[0]))])

    @property
    def plan_text(self) -> str:
        return plan_line(self.reports, PacingRules())

    def _scale(self) -> list[str]:
        """What the split-scale check found: each repaired split, stored sessions off IB's
        answer by no split ratio, sessions it could not check, or that it was off."""
        out: list[str] = []
        for r in self.reports:
            f = r.factors
            if f and "error" in f:
                out.append(f"WARNING: {r.bar_type.rsplit('-', 4)[0]}: {f['error']}")
            elif f:
                state = "new version" if f.get("new_version") else "unchanged"
                out.append(
                    f"Dividend factors of {r.bar_type.rsplit('-', 4)[0]}: v{f['version']} "
                    f"({state}; {f['dividends']} dividend(s) in {f['first']} .. {f['last']})"
                )
        if self.job.corporate_actions.verify == "off":
            return [
                *out,
                "Split scale of the stored history NOT checked (corporate_actions.verify=off)",
            ]
        for r in self.reports:
            for e in r.corporate_actions:
                out.append(f"SPLIT REPAIRED: {SplitEvent.from_json(e).describe()}")
            for bt, days in r.scale_differs.items():
                shown = ", ".join(f"{d} (stored / IB {x})" for d, x in list(days.items())[:5])
                more = f" and {len(days) - 5} more" if len(days) > 5 else ""
                out.append(
                    f"WARNING: {bt}: {len(days)} stored session(s) differ from IB's answer now by "
                    f"no split ratio, not repaired: {shown}{more}"
                )
            c = r.scale_check
            if c is not None and c.get("verdict") == "unverified":
                out.append(
                    f"WARNING: {r.bar_type}: IB sent no bar of the stored session {c['session']}: "
                    "the split scale was not checked"
                )
        return out

    def _remaining(self, r: FetchReport) -> list[str]:
        """One line per run of sessions of ``r`` IB had no (or not every) bar for, this run or
        when asked before, with the command that asks again now."""
        bt = BarType.from_str(r.bar_type)
        now = dt.datetime.now(dt.UTC)
        asked: dict[dt.date, dt.datetime] = {}
        lacking: dict[dt.date, int | None] = {}  # session -> bars missing (None: all)
        for k in r.known_nodata:
            d = dt.date.fromisoformat(str(k["session"]))
            asked[d] = dt.datetime.fromisoformat(str(k["asked"]))
            lacking[d] = None if k["missing_bars"] is None else int(str(k["missing_bars"]))
        for day in r.nodata:
            asked[dt.date.fromisoformat(day)] = now
            lacking[dt.date.fromisoformat(day)] = None
        for day, n in r.holes_left.items():
            asked[dt.date.fromisoformat(day)] = now
            lacking[dt.date.fromisoformat(day)] = n
        if not asked:
            return []
        cal = calendar_for_venue(bt.instrument_id.venue.value)
        expiry = self.job.nodata_expiry_days
        args = ["ibkr.retry_nodata=true", *([] if self.job.use_rth else ["ibkr.use_rth=false"])]
        out = []
        for first, last, n in _session_runs(sorted(asked), cal):
            days = [d for d in asked if first <= d <= last]
            span = str(first) if n == 1 else f"{first} .. {last} ({n} sessions)"
            missing = [lacking[d] for d in days]
            if all(m is None for m in missing):
                what = f"IB had no data on {span}"
            elif all(m is not None for m in missing):
                what = f"IB's bars for {span} have holes ({sum(m or 0 for m in missing):,} bars)"
            else:
                what = f"IB had no data, or not every bar, on {span}"
            when = (
                "just now"
                if all(asked[d] == now for d in days)
                else _span(sorted({asked[d].date() for d in days}))
            )
            again = "not asked again unless retried"
            if any(d.isoformat() in r.not_over for d in days):
                again = "the session was not over yet: the next fetch asks again"
            elif expiry is not None:
                due = min(asked[d] for d in days) + dt.timedelta(days=expiry)
                again = f"asked again after {due.date()}"
            cmd = make_command(
                "fetch",
                self.catalog_url,
                SYMBOLS=str(bt.instrument_id),
                START=first,
                END=last,
                BAR=str(bt.spec),
                args=args,
            )
            out.append(f"{r.bar_type}: {what}, asked {when} ({again}); ask now: {cmd}")
        return out


def _span(days: list[dt.date]) -> str:
    return str(days[0]) if len(days) == 1 else f"{days[0]} .. {days[-1]}"


def _session_runs(days: list[dt.date], calendar: str) -> list[tuple[dt.date, dt.date, int]]:
    """``days`` (sorted sessions) as runs consecutive in the calendar: (first, last, count)."""
    order = {d: i for i, d in enumerate(sessions_between(calendar, days[0], days[-1]).date_list())}
    runs: list[list[dt.date]] = []
    for d in days:
        if runs and order.get(d, -2) == order.get(runs[-1][-1], -9) + 1:
            runs[-1].append(d)
        else:
            runs.append([d])
    return [(run[0], run[-1], len(run)) for run in runs]


def run_fetch(job: FetchJob, catalog: Catalog) -> FetchResult:
    """Fetch ``job`` into ``catalog`` (holding its fetch lock); see :func:`fetch_ranges`."""
    reports = fetch_ranges(
        catalog,
        job.settings,
        [(bt, job.start, job.end) for bt in job.bar_types],
        use_rth=job.use_rth,
        chunk_sessions=job.chunk_sessions,
        pacing_pause_s=job.pacing_pause_s,
        retry_nodata=job.retry_nodata,
        nodata_expiry_days=job.nodata_expiry_days,
        corporate_actions=job.corporate_actions,
        dry_run=job.dry_run,
    )
    return FetchResult(job, reports, catalog.url)
