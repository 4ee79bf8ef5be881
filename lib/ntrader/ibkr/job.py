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
from dataclasses import dataclass
from typing import Any

from nautilus_trader.model.data import BarType

from ntrader.catalog.catalog import Catalog
from ntrader.errors import InputError
from ntrader.ibkr.client import IbkrSettings
from ntrader.ibkr.fetcher import FetchReport, fetch_ranges
from ntrader.instruments import bar_types_for
from ntrader.sessions import parse_day
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

    def __post_init__(self) -> None:
        if not self.bar_types:
            raise InputError("no symbols to fetch", hint="pass SYMBOLS=AAPL,MSFT or SET=mega_caps")
        if self.start > self.end:
            raise InputError(f"START {self.start} is after END {self.end}", hint="swap them")

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
        }

    def as_summary(self) -> dict[str, Any]:
        """The run's part of ``summary.json``."""
        return {
            "catalog": self.catalog_url,
            "range": [str(self.job.start), str(self.job.end)],
            "instruments": [r.as_dict() for r in self.reports],
        }

    def render(self) -> str:
        """What the fetch prints: the range and endpoint, then a table row per bar type."""
        j = self.job
        head = (
            f"Fetched {j.start} .. {j.end} from IBKR {j.settings.endpoint} into {self.catalog_url}"
        )
        return head + "\n" + text_table([r.as_dict() for r in self.reports], COLUMNS)


def run_fetch(job: FetchJob, catalog: Catalog) -> FetchResult:
    """Fetch ``job`` into ``catalog`` (holding its fetch lock); see :func:`fetch_ranges`."""
    reports = fetch_ranges(
        catalog,
        job.settings,
        [(bt, job.start, job.end) for bt in job.bar_types],
        use_rth=job.use_rth,
        chunk_sessions=job.chunk_sessions,
        pacing_pause_s=job.pacing_pause_s,
    )
    return FetchResult(job, reports, catalog.url)
