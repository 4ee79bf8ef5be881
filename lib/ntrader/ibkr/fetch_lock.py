"""One fetch at a time per catalog (``<catalog>/.ntrader/fetch.lock``): a second ``make fetch`` is
refused at once; a backtest's auto-fetch waits for the first, saying so, then fetches what is
still missing (the fetch finds the missing sessions after taking the lock)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from loguru import logger

from ntrader.catalog.catalog import Catalog
from ntrader.errors import CatalogBusy


@contextlib.contextmanager
def fetch_lock(catalog: Catalog, wait_s: float = 0.0) -> Iterator[None]:
    """One fetch at a time per catalog: a second one is refused at once, or (``wait_s`` > 0, a
    backtest's auto-fetch) waits that long for the first, saying so."""
    lock = catalog.store.lock("fetch")
    try:
        lock.acquire(timeout=0)
    except CatalogBusy:
        if wait_s <= 0:
            raise CatalogBusy(
                f"a fetch is already running on catalog {catalog.url} ({lock.holder()})",
                hint="wait for it to finish (or stop it); its progress is in its run folder",
            ) from None
        logger.info(
            f"waiting up to {wait_s:.0f} s for the fetch running on catalog {catalog.url} "
            f"({lock.holder()}); then fetching only what it did not"
        )
        try:
            lock.acquire(timeout=wait_s)
        except CatalogBusy:
            raise CatalogBusy(
                f"a fetch kept running on catalog {catalog.url} for {wait_s:.0f} s "
                f"({lock.holder()})",
                hint="wait for it to finish, or raise catalog.lock_timeout",
            ) from None
    try:
        yield
    finally:
        lock.release()
