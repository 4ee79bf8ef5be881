"""Sessions for which IBKR answered "no data": remembered per bar type in the catalog, so a
rerun (or tomorrow's cron fetch) does not ask for them again. ``<catalog>/.ntrader/nodata/``."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import PurePath

from ntrader.catalog.catalog import Catalog


def _path(catalog: Catalog, bar_type: str) -> PurePath:
    return catalog.root / ".ntrader" / "nodata" / f"{bar_type}.json"


def load(catalog: Catalog, bar_type: str) -> set[dt.date]:
    text = catalog.store.read_text(_path(catalog, bar_type))
    if text is None:
        return set()
    return {dt.date.fromisoformat(d) for d in json.loads(text)}


def add(catalog: Catalog, bar_type: str, sessions: list[dt.date]) -> None:
    """Record sessions (call under the catalog lock or from the single fetch process)."""
    if not sessions:
        return
    merged = sorted(load(catalog, bar_type) | set(sessions))
    catalog.store.write_text(_path(catalog, bar_type), json.dumps([d.isoformat() for d in merged]))
