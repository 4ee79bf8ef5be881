"""Migration plan: per legacy symbol its instrument id, bar type, precision and status.

Symbol -> instrument id through ``source.symbol_map``, else ``instruments`` (venues, default
venue); a symbol that is not a valid ticker, or that shares its instrument with another symbol,
is reported and skipped. Price precision: configured, else the existing instrument's, else the
decimals measured on the server. A symbol whose catalog bars already equal the source (row count,
first, last) is up to date and not read again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from nautilus_trader.model.data import BarType

from ntrader.catalog.catalog import Catalog
from ntrader.errors import DataError, InputError
from ntrader.instruments import bar_type_for, resolve_instrument_id
from ntrader.legacy_pg.rows import TimeMap
from ntrader.legacy_pg.source import Source, Stats

MAX_PRECISION = 9


@dataclass(frozen=True)
class Options:
    symbols: list[str]
    mode: str = "skip"
    price_precision: int | None = None
    bar_spec: str = "1-MINUTE-LAST"
    default_venue: str = "NASDAQ"
    venues: dict[str, str] = field(default_factory=dict)
    symbol_map: dict[str, str] = field(default_factory=dict)
    spot_checks: int = 20
    seed: int = 0
    validate_only: bool = False
    max_listed: int = 20


@dataclass
class Plan:
    symbol: str
    stats: Stats
    instrument_id: str | None = None
    bar_type: BarType | None = None
    price_precision: int = 2
    size_precision: int = 0
    status: str = "migrate"  # migrate | up to date | invalid symbol | no valid rows
    note: str = ""
    first_ns: int | None = None
    last_ns: int | None = None
    rows_added: int = 0
    rows_rejected: int = 0


def _precision(plan: Plan, opts: Options, catalog: Catalog) -> None:
    st = plan.stats
    measured = st.price_scale
    existing = catalog.instrument(plan.instrument_id) if plan.instrument_id else None
    if opts.price_precision is not None:
        plan.price_precision = int(opts.price_precision)
        if measured is not None and measured > plan.price_precision:
            plan.note = f"prices rounded from {measured} to {plan.price_precision} decimals"
    elif existing is not None:
        plan.price_precision = int(existing.price_precision)
        if measured is not None and measured > plan.price_precision:
            raise InputError(
                f"{plan.symbol}: prices have {measured} decimals but {plan.instrument_id} in the "
                f"catalog has price precision {plan.price_precision}",
                hint=f"ARGS='price_precision={plan.price_precision}' rounds them to it",
            )
    else:
        plan.price_precision = 2 if measured is None else int(measured)
        if plan.price_precision > MAX_PRECISION:
            raise InputError(
                f"{plan.symbol}: prices have {measured} decimals (more than {MAX_PRECISION}; "
                "float noise?)",
                hint="set the precision: ARGS='price_precision=4' (values are rounded to it)",
            )
    plan.size_precision = min(int(st.size_scale or 0), MAX_PRECISION)


def make_plans(source: Source, catalog: Catalog, tmap: TimeMap, opts: Options) -> list[Plan]:
    stats = source.stats(opts.symbols or None, dst_check=tmap.dst_check)
    if opts.symbols:
        missing = [s for s in opts.symbols if s not in stats]
        if missing:
            raise DataError(
                f"symbol(s) not in {source.spec.table}: {', '.join(map(repr, missing))}",
                hint="SYMBOLS= takes the symbols exactly as the legacy table spells them",
            )
    if not stats:
        raise DataError(
            f"no rows in {source.spec.table}"
            + (
                f" with {source.spec.timeframe_column} = {source.spec.timeframe!r}"
                if source.spec.timeframe_column
                else ""
            ),
            hint="check source.table and the timeframe filter (source.timeframe)",
        )
    plans: list[Plan] = []
    by_id: dict[str, list[Plan]] = {}
    for sym, st in stats.items():
        plan = Plan(sym, st)
        plans.append(plan)
        try:
            target = opts.symbol_map.get(sym, sym)
            iid = resolve_instrument_id(target, opts.default_venue, opts.venues)
            plan.instrument_id = str(iid)
            plan.bar_type = bar_type_for(iid, opts.bar_spec)
            by_id.setdefault(plan.instrument_id, []).append(plan)
        except InputError as exc:
            plan.status, plan.note = "invalid symbol", exc.message
            continue
        if st.valid == 0:
            plan.status = "no valid rows"
            continue
        _precision(plan, opts, catalog)
        ends, _ = tmap.ts_event(_pa_ts([st.first, st.last], source.ts_type))
        plan.first_ns, plan.last_ns = int(ends[0]), int(ends[1])
    for iid, group in by_id.items():
        if len(group) > 1:
            names = ", ".join(repr(p.symbol) for p in group)
            for p in group:
                p.status, p.note = "invalid symbol", f"{names} all map to {iid}"
    return plans


def _pa_ts(values: list[Any], ts_type: str) -> Any:
    import pyarrow as pa

    types = {"timestamp with time zone": pa.timestamp("us", "UTC"), "date": pa.date32()}
    return pa.array(values, type=types.get(ts_type, pa.timestamp("us")))


def up_to_date(plan: Plan, catalog: Catalog) -> bool:
    if plan.bar_type is None:
        return False
    a = catalog.availability(plan.bar_type)
    return (a.rows, a.first_ns, a.last_ns) == (plan.stats.expected, plan.first_ns, plan.last_ns)
