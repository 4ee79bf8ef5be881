"""The import benchmark's reference: NautilusTrader's tutorial path for a CSV of 1-minute bars
(``pandas.read_csv`` -> ``BarDataWrangler`` -> ``ParquetDataCatalog.write_data``, the instrument
written too), with NautilusTrader and pandas only — no ntrader, no Hydra.

``bench/import_bench.py`` calls :func:`tutorial_import` in-process and runs this file as a whole
process for the whole-process row::

    python bench/ref_import_tutorial.py CSV CATALOG_DIR [BAR_TYPE]   # prints {"bars": N}

The CSV is ``bench/gen.py``'s (``timestamp,open,high,low,close,volume``, UTC, the timestamp
marking the bar OPEN); bars are labelled by their close, as ntrader stores them, so both
catalogs hold the same bars.
"""

from __future__ import annotations

import json
import sys
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
from nautilus_trader.model.currencies import USD
from nautilus_trader.model.data import Bar, BarType
from nautilus_trader.model.instruments import Equity
from nautilus_trader.model.objects import Price, Quantity
from nautilus_trader.persistence.catalog import ParquetDataCatalog
from nautilus_trader.persistence.wranglers import BarDataWrangler

BAR_TYPE = "SYN.NASDAQ-1-MINUTE-LAST-EXTERNAL"
PRICE_PRECISION = 2


def equity(bar_type: BarType, price_precision: int = PRICE_PRECISION) -> Equity:
    """A US-dollar Equity with a price increment of one unit at ``price_precision`` (the same
    instrument as ``ntrader.instruments.make_equity``)."""
    iid = bar_type.instrument_id
    return Equity(
        instrument_id=iid,
        raw_symbol=iid.symbol,
        currency=USD,
        price_precision=price_precision,
        price_increment=Price(Decimal(1).scaleb(-price_precision), price_precision),
        lot_size=Quantity.from_int(1),
        ts_event=0,
        ts_init=0,
    )


def tutorial_import(csv: Any, root: Any, bar_type: str = BAR_TYPE) -> list[Bar]:
    """The tutorial path: pandas -> BarDataWrangler -> ParquetDataCatalog.write_data."""
    df = pd.read_csv(csv)
    # Labelled by the bar close (what ntrader stores), so both catalogs hold the same bars.
    df.index = pd.DatetimeIndex(
        pd.to_datetime(df.pop("timestamp"), utc=True) + np.timedelta64(1, "m"),
        name="timestamp",
    )
    bt = BarType.from_str(bar_type)
    instrument = equity(bt)
    bars: list[Bar] = BarDataWrangler(bt, instrument).process(df)
    catalog = ParquetDataCatalog(str(root))
    catalog.write_data([instrument])
    catalog.write_data(bars)
    return bars


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3):
        print(__doc__, file=sys.stderr)
        return 2
    bars = tutorial_import(argv[0], argv[1], *argv[2:])
    print(json.dumps({"bars": len(bars)}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
