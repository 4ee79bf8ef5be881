"""Sessions for which IBKR answered "no data": remembered per bar type in the catalog, so a
rerun (or tomorrow's cron fetch) does not ask for them again. ``<catalog>/.ntrader/nodata/``."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

from ntrader.catalog import Catalog


def _path(catalog: Catalog, bar_type: str) -> Path:
    return catalog.root / ".ntrader" / "nodata" / f"{bar_type}.json"


def load(catalog: Catalog, bar_type: str) -> set[dt.date]:
    p = _path(catalog, bar_type)
    if not p.exists():
        return set()
    return {dt.date.fromisoformat(d) for d in json.loads(p.read_text())}


def add(catalog: Catalog, bar_type: str, sessions: list[dt.date]) -> None:
    """Record sessions (call under the catalog lock or from the single fetch process)."""
    if not sessions:
        return
    p = _path(catalog, bar_type)
    p.parent.mkdir(parents=True, exist_ok=True)
    merged = sorted(load(catalog, bar_type) | set(sessions))
    tmp = p.with_suffix(".json.tmp")
    tmp.write_text(json.dumps([d.isoformat() for d in merged]))
    os.replace(tmp, p)
