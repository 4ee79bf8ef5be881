"""Fill what a backtest lacks from IBKR before it runs (``ibkr.auto_fetch=true``).

One :class:`AutoFetch` carries the ``ibkr`` settings a backtest fetches with; its :meth:`fetch`
is what a single run (``runner``) and a sweep's fetch-once-before-the-jobs (``sweep_fetch``) both
call, so the two never drift apart. A backtest is a writer when it fetches: it creates a missing
catalog (saying so), and it waits for a fetch another process is running on the catalog instead
of failing, then fetches only what that one did not.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ntrader.ibkr import nodata
from ntrader.ibkr.client import IbkrSettings
from ntrader.ibkr.verify import CorporateActionPolicy

if TYPE_CHECKING:
    from nautilus_trader.model.data import BarType

    from ntrader.catalog.catalog import Catalog
    from ntrader.ibkr.fetcher import FetchReport


@dataclass(frozen=True)
class AutoFetch:
    """How a backtest fetches what the catalog lacks (``conf/ibkr/*.yaml``)."""

    settings: IbkrSettings
    use_rth: bool = True
    chunk_sessions: int | None = None
    retry_nodata: bool = False
    nodata_expiry_days: float | None = nodata.DEFAULT_EXPIRY_DAYS
    corporate_actions: CorporateActionPolicy = field(default_factory=CorporateActionPolicy)

    def __post_init__(self) -> None:
        nodata.check_expiry(self.nodata_expiry_days)

    @classmethod
    def from_config(cls, ibkr: Any, corporate_actions: Any = None) -> AutoFetch | None:
        """From the ``ibkr`` and ``corporate_actions`` config groups; ``None`` when
        ``auto_fetch`` is off."""
        if not ibkr["auto_fetch"]:
            return None
        return cls(
            IbkrSettings.from_config(ibkr),
            bool(ibkr["use_rth"]),
            ibkr["chunk_sessions"],
            retry_nodata=bool(ibkr.get("retry_nodata", False)),
            nodata_expiry_days=nodata.parse_expiry(
                ibkr.get("nodata_expiry_days", nodata.DEFAULT_EXPIRY_DAYS)
            ),
            corporate_actions=CorporateActionPolicy.of(corporate_actions),
        )

    def fetch(
        self,
        catalog: Catalog,
        ranges: list[tuple[BarType, dt.date, dt.date]],
        *,
        lock_wait_s: float | None = None,
    ) -> list[FetchReport]:
        """Fetch the missing sessions of ``ranges``; another fetch running on the catalog is
        waited for up to ``lock_wait_s`` (default: ``catalog.lock_timeout``)."""
        from ntrader.ibkr.fetcher import fetch_ranges

        return fetch_ranges(
            catalog,
            self.settings,
            ranges,
            use_rth=self.use_rth,
            chunk_sessions=self.chunk_sessions,
            retry_nodata=self.retry_nodata,
            nodata_expiry_days=self.nodata_expiry_days,
            lock_wait_s=catalog.lock_timeout if lock_wait_s is None else lock_wait_s,
            corporate_actions=self.corporate_actions,
        )
