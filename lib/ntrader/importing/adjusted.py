"""Dividend factors from a CSV's ``Adj Close`` column (Yahoo and most vendors' daily exports).

``Close`` there is split-adjusted and ``Adj Close`` split- and dividend-adjusted, so their ratio
per session is the dividend factor :mod:`ntrader.catalog.factors` derives and versions, as it does
from IB's ADJUSTED_LAST bars. The last row of each session counts. A step that no dividend
explains — ``Adj Close`` above ``Close``, or a drop of more than a quarter (a split the ``Close``
column is not adjusted for) — stores nothing and says why.
"""

from __future__ import annotations

import numpy as np
from loguru import logger

from ntrader.catalog.barframe import BarFrame
from ntrader.catalog.catalog import Catalog
from ntrader.catalog.factors import StoredFactors, derive_factors, store_factors
from ntrader.errors import InputError
from ntrader.sessions import local_dates

MIN_STEP = 0.75  # a session-to-session factor step below this is no dividend
REL_FLOOR = 1e-6  # float noise in vendors' 6-decimal exports (185.639999 for 185.64)


def factors_from_csv(
    catalog: Catalog,
    instrument_id: str,
    bars: BarFrame,
    adjusted: tuple[np.ndarray, np.ndarray, np.ndarray],
    tz: str,
    source: str,
) -> StoredFactors | None:
    """Derive and keep the factors of the sessions in ``bars``; None without a usable cell;
    :class:`InputError` when the column's steps are no dividends."""
    adj, half_adj, half_close = adjusted
    ok = np.isfinite(adj)
    if not ok.any():
        logger.warning(f"{source}: the column is empty: no dividend factors stored")
        return None
    sessions = local_dates(bars.ts_event[ok] - 1, tz)
    last = np.r_[sessions[1:] != sessions[:-1], True]  # the last row of each session
    close = bars.close[ok][last]
    a = adj[ok][last]
    series = derive_factors(
        instrument_id,
        [d.item() for d in sessions[last]],
        close,
        a,
        half_base=np.maximum(half_close[ok][last], REL_FLOOR * close),
        half_adjusted=np.maximum(half_adj[ok][last], REL_FLOOR * a),
        source=source,
    )
    odd = [d for d in series.dividends if not MIN_STEP <= d.step < 1.0]
    if odd:
        d = odd[0]
        raise InputError(
            f"{source}: Adj Close / Close steps by {d.step:.4f} on {d.ex_date}: no dividend "
            "does that (a split the Close column is not adjusted for?); no factors stored",
            hint="check the vendor's adjustment; to import the bars without dividend factors, "
            "remove the Adj Close column from the file",
        )
    return store_factors(catalog, series)
