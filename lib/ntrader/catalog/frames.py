"""pandas views of the catalog for notebooks: a bar type's bars as a DataFrame with a tz-aware
index, and what the catalog holds as a table (``Catalog.read_frame`` / ``.availability_frame``).

Dates mean what ``START``/``END`` mean on the command line: sessions in the exchange's time zone,
both inclusive. The index is ``ts_event``, the bar CLOSE, in the exchange's time zone unless
``tz`` says otherwise.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import pandas as pd
from nautilus_trader.model.data import BarType

from ntrader.catalog.barframe import COLUMNS, BarFrame
from ntrader.catalog.inventory import list_catalog
from ntrader.instruments import bar_type_for, resolve_instrument_id
from ntrader.sessions import calendar_for_venue, calendar_timezone, day_bounds_ns, parse_day

if TYPE_CHECKING:
    from ntrader.catalog.catalog import Catalog

AVAILABILITY_COLUMNS = ("bar_type", "instrument_id", "first", "last", "rows", "files", "bytes")


def as_bar_type(what: BarType | str, bar: str = "1-MINUTE-LAST") -> BarType:
    """A bar type from a ``BarType``, its string (``AAPL.NASDAQ-1-MINUTE-LAST-EXTERNAL``), an
    instrument id (``AAPL.NASDAQ``) or a bare symbol (``AAPL``, default venue) plus ``bar``."""
    if isinstance(what, BarType):
        return what
    text = str(what).strip()
    if text.upper().endswith(("-EXTERNAL", "-INTERNAL")):
        try:
            return BarType.from_str(text)
        except Exception:  # not a bar type after all: resolve it as a symbol (the error says so)
            pass
    return bar_type_for(resolve_instrument_id(text), bar)


def to_dataframe(frame: BarFrame, tz: str = "UTC") -> pd.DataFrame:
    """A :class:`BarFrame` as OHLCV columns on a tz-aware ``ts_event`` index."""
    index = pd.DatetimeIndex(frame.ts_event.view("datetime64[ns]"), name="ts_event")
    data = {c: getattr(frame, c) for c in COLUMNS}
    return pd.DataFrame(data, index=index.tz_localize("UTC").tz_convert(tz))


def bars_frame(
    catalog: Catalog,
    what: BarType | str,
    start: str | dt.date | None = None,
    end: str | dt.date | None = None,
    *,
    bar: str = "1-MINUTE-LAST",
    tz: str | None = None,
) -> pd.DataFrame:
    """The bars of ``what`` (see :func:`as_bar_type`) over sessions ``start .. end``."""
    bt = as_bar_type(what, bar)
    zone = calendar_timezone(calendar_for_venue(bt.instrument_id.venue.value))
    lo, hi = day_bounds_ns(parse_day(start, "start"), parse_day(end, "end"), zone)
    return to_dataframe(catalog.read(bt, lo, hi), tz or zone)


def availability_frame(catalog: Catalog) -> pd.DataFrame:
    """One row per bar type: first and last ``ts_event`` (UTC), rows, files and bytes."""
    rows = [
        {
            "bar_type": a.bar_type,
            "instrument_id": a.instrument_id,
            "first": None if a.first_ns is None else pd.Timestamp(a.first_ns, tz="UTC"),
            "last": None if a.last_ns is None else pd.Timestamp(a.last_ns, tz="UTC"),
            "rows": a.rows,
            "files": a.files,
            "bytes": a.bytes,
        }
        for a in list_catalog(catalog)
    ]
    return pd.DataFrame(rows, columns=list(AVAILABILITY_COLUMNS))
