"""One fetch for a sweep's jobs: what each job would auto-fetch from IBKR, found by the job's own
check of the catalog, merged and fetched once before any job starts.

``ntrader.backtest.sweep`` (the Hydra callback) composes each job's config and calls
:func:`needs` then :func:`fetch`; parallel jobs then find their data in the catalog instead of
racing for the fetch lock (a second fetch on a catalog is refused at once).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from loguru import logger

from ntrader.errors import DataError, NtraderError

if TYPE_CHECKING:
    from nautilus_trader.model.data import BarType

    from ntrader.backtest.autofetch import AutoFetch
    from ntrader.backtest.spec import BacktestSpec
    from ntrader.catalog.catalog import Catalog
    from ntrader.ibkr.fetcher import FetchReport

Range = tuple["BarType", dt.date, dt.date]


@dataclass
class Prefetch:
    """What a sweep fetched for its jobs before launching them."""

    jobs: int  # jobs that needed data the catalog lacked
    ranges: list[str] = field(default_factory=list)  # "<bar type> <first>..<last>", merged
    requests: int = 0
    bars: int = 0
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)
    log: str = ""  # where the fetch logged (set by the caller)


@dataclass
class Need:
    """What the jobs reading one catalog through one IBKR setting would auto-fetch."""

    catalog: Catalog
    auto: AutoFetch
    ranges: list[Range] = field(default_factory=list)
    jobs: set[int] = field(default_factory=set)


def merge_ranges(ranges: Sequence[Range]) -> list[Range]:
    """Per bar type, overlapping or adjacent (first, last) ranges merged into one: a session
    wanted by several jobs is asked for once."""
    by_type: dict[str, tuple[BarType, list[tuple[dt.date, dt.date]]]] = {}
    for bt, first, last in ranges:
        by_type.setdefault(str(bt), (bt, []))[1].append((first, last))
    out: list[Range] = []
    for bt, spans in by_type.values():
        spans.sort()
        merged = [list(spans[0])]
        for first, last in spans[1:]:
            if first <= merged[-1][1] + dt.timedelta(days=1):
                merged[-1][1] = max(merged[-1][1], last)
            else:
                merged.append([first, last])
        out += [(bt, first, last) for first, last in merged]
    return out


def _fetchable(catalog: Catalog, spec: BacktestSpec) -> list[Range]:
    """What a job with ``spec`` would auto-fetch: the job's own check, without loading bars."""
    from ntrader.backtest.data import MissingData, check_and_load

    try:
        check_and_load(catalog, spec, load=False)
    except MissingData as missing:
        if missing.fetchable and missing.complete:  # as run_backtest decides
            return list(missing.fetchable)
    except Exception:  # the job reports it
        pass
    return []


def needs(configs: Iterable[tuple[int, Mapping[str, Any]]]) -> list[Need]:
    """What the jobs (number, composed ``conf/backtest.yaml`` config) would auto-fetch, grouped
    by catalog and IBKR settings. A job whose config is invalid is left out: it reports that
    itself. Jobs that check the same data the same way are checked once."""
    from ntrader.backtest.autofetch import AutoFetch
    from ntrader.backtest.spec import BacktestSpec
    from ntrader.catalog.catalog import Catalog

    catalogs: dict[str, Catalog] = {}
    checked: dict[tuple[Any, ...], list[Range]] = {}
    out: dict[tuple[str, AutoFetch], Need] = {}
    logger.disable("ntrader")  # the checks' own lines: each job logs them in its run folder
    try:
        for n, cfg in configs:
            try:
                auto = AutoFetch.from_config(cfg["ibkr"], cfg.get("corporate_actions"))
                if auto is None:
                    continue
                spec = BacktestSpec.from_config(cfg)
                catalog = Catalog.from_config(cfg["catalog"])
            except Exception:  # a bad override or value: the job itself reports it
                continue
            catalog = catalogs.setdefault(catalog.url, catalog)
            bar_types = tuple(str(b) for b in spec.bar_types)
            what = (bar_types, spec.start, spec.end, spec.allow_missing_sessions, spec.calendar)
            key = (catalog.url, auto, *what)
            if key not in checked:
                checked[key] = _fetchable(catalog, spec)
            if checked[key]:
                need = out.setdefault((catalog.url, auto), Need(catalog, auto))
                need.ranges += checked[key]
                need.jobs.add(n)
    finally:
        logger.enable("ntrader")
    return list(out.values())


def fetch(wanted: list[Need], total_jobs: int) -> Prefetch:
    """Fetch every need once: one connection and pacing guard per (catalog, IBKR settings) for
    the union of its ranges. Failures are logged and listed in :attr:`Prefetch.errors`, not
    raised: the jobs that still lack data then try themselves and report their own error."""
    result = Prefetch(len(set().union(*(n.jobs for n in wanted))))
    t0 = time.perf_counter()
    for need in wanted:
        ranges = merge_ranges(need.ranges)
        shown = [f"{bt} {a}..{b}" for bt, a, b in ranges]
        result.ranges += shown
        more = f" … and {len(shown) - 10} more" if len(shown) > 10 else ""
        logger.info(
            f"{len(need.jobs)} of {total_jobs} jobs need data catalog {need.catalog.url} lacks: "
            f"fetching it once, before launching them, from IBKR at "
            f"{need.auto.settings.endpoint}: {', '.join(shown[:10])}{more}"
        )
        for report in _fetch_need(need, ranges, result):
            result.requests += report.requests
            result.bars += report.bars
    result.seconds = round(time.perf_counter() - t0, 3)
    done = (
        f"Fetched {result.bars:,} bars in {result.requests:,} requests from IBKR in "
        f"{result.seconds:.1f} s for the sweep — saved to the catalog"
    )
    if result.errors:
        n = len(result.errors)
        logger.warning(f"{done}; {n} error{'s' if n > 1 else ''} above")
    else:
        logger.info(f"{done}; the jobs load them from disk")
    return result


def _fetch_need(need: Need, ranges: list[Range], result: Prefetch) -> list[FetchReport]:
    """Fetch ``ranges`` in one go; after a data error (a symbol IBKR does not know) the bar
    types one by one, so the others are still fetched. Returns the fetch reports."""

    def run(some: list[Range]) -> list[FetchReport]:
        return need.auto.fetch(need.catalog, some)  # exactly what a job's own auto-fetch does

    def failed(exc: NtraderError) -> None:
        result.errors.append(f"{exc.kind}: {exc.message}")
        logger.error(f"{exc.kind}: {exc}")
        logger.error(
            "what to do: the jobs that lack this data try to fetch it themselves and report "
            f"their own error{'; ' + exc.hint if exc.hint else ''}"
        )

    types = list(dict.fromkeys(str(bt) for bt, _, _ in ranges))
    try:
        return run(ranges)
    except DataError as exc:
        if len(types) == 1:
            failed(exc)
            return []
        logger.warning(f"{exc.kind}: {exc.message}; fetching the instruments one by one")
    except NtraderError as exc:  # IBKR unreachable, the catalog busy …
        failed(exc)
        return []
    reports: list[FetchReport] = []
    for name in types:
        try:
            reports += run([r for r in ranges if str(r[0]) == name])
        except DataError as exc:
            failed(exc)
        except NtraderError as exc:
            failed(exc)
            break
    return reports
