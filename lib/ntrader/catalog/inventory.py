"""What the catalog holds: one exact availability record per bar type (``make scan``)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from ntrader.catalog.catalog import Availability, Catalog

COLUMNS = ("bar_type", "instrument_id", "first", "last", "rows", "files", "bytes")
DISPLAY_TZ = "America/New_York"


def iso(ns: int | None, tz: str = DISPLAY_TZ, *, daily: bool = False) -> str | None:
    """A bar's ``ts_event`` for people: local ISO time, or the session date of a daily bar."""
    if ns is None:
        return None
    if daily:  # ts_event of a daily bar is the next local midnight: show the session's date
        return str((pd.Timestamp(ns - 1, tz="UTC").tz_convert(tz)).date())
    return pd.Timestamp(ns, tz="UTC").tz_convert(tz).isoformat()


def record(a: Availability, tz: str = DISPLAY_TZ) -> dict[str, Any]:
    daily = "-DAY-" in a.bar_type
    return {
        "bar_type": a.bar_type,
        "instrument_id": a.instrument_id,
        "first": iso(a.first_ns, tz, daily=daily),
        "last": iso(a.last_ns, tz, daily=daily),
        "rows": a.rows,
        "files": a.files,
        "bytes": a.bytes,
        "first_ns": a.first_ns,
        "last_ns": a.last_ns,
    }


def list_catalog(catalog: Catalog) -> list[Availability]:
    """Availability of every bar type, measured from the files (Parquet metadata)."""
    return catalog.availability_many(catalog.bar_types())
