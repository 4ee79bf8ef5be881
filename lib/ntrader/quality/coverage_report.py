"""``make report``: the coverage of the catalog (or some of its bar types) over a range, as a page
and a picture in the run folder — one library call (:func:`catalog_report`)."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ntrader.catalog.catalog import Catalog
from ntrader.catalog.inventory import record
from ntrader.errors import DataError, InputError
from ntrader.quality.coverage import COMPLETE, MISSING, NODATA, PARTIAL, build, midnight_ns
from ntrader.quality.coverage_page import Written, render_page, write_png
from ntrader.quality.findings import health_findings
from ntrader.quality.health import HealthOptions
from ntrader.sessions import calendar_for_venue, calendar_timezone, check_hours, local_dates
from ntrader.symbols import bar_type_text, instrument_id_text, instrument_of


def catalog_report(
    catalog: Catalog,
    out_dir: Path,
    bar_types: list[str] | None = None,
    max_columns: int = 120,
    no_data: Callable[[str], Mapping[dt.date, Any]] | None = None,
    *,
    start: dt.date | None = None,
    end: dt.date | None = None,
    hours: str = "regular",
    health: HealthOptions | None = None,
) -> Written:
    """Write ``catalog_report.html`` and ``coverage.png`` into ``out_dir`` for ``bar_types``
    (None: every bar type of the catalog) over ``start .. end`` (None: what is stored). Cells
    are sessions, or weeks or months when there are more than ``max_columns``. ``no_data(bt)``:
    the trusted "no data" records of a bar type by session (``ntrader.ibkr.nodata.current``,
    bound to its expiry by the caller), drawn as "IB had no data"; None: none known. ``health``:
    the data-health checks of ``make check`` run over each stored bar type's bars in the range,
    listed as findings linked to their cells (None: not checked, and only ``ts_event`` is read)."""
    if int(max_columns) < 1:
        raise InputError(f"report_columns must be >= 1, got {max_columns}")
    if start and end and start > end:
        raise InputError(f"START {start} is after END {end}", hint="swap them")
    check_hours(hours)
    catalog.require_exists()
    max_columns = int(max_columns)
    t0 = time.perf_counter()
    names = bar_types if bar_types is not None else catalog.bar_types()
    present = set(catalog.bar_types())
    stored = [bt for bt in names if bt in present]
    if names and not stored:
        raise DataError(
            f"no bars of {', '.join(names[:5])}{' …' if len(names) > 5 else ''} in catalog "
            f"{catalog.url}",
            hint="make scan lists what it holds; fetch or import them first",
        )
    records = [record(a) for a in catalog.availability_many(stored)]
    cov = build(
        names,
        catalog.read_ts_event,
        no_data or (lambda _bt: {}),
        start=start,
        end=end,
        hours=hours,
        stored_bar_types=stored,
    )
    found = None
    if health is not None:
        found = health_findings(stored, lambda bt: _bars_in_range(catalog, bt, start, end), health)
    page, unit, _ = render_page(cov, records, catalog.url, max_columns, found)
    out_dir.mkdir(parents=True, exist_ok=True)
    html_path, png_path = out_dir / "catalog_report.html", out_dir / "coverage.png"
    html_path.write_text(page, encoding="utf-8")
    write_png(cov, png_path, max_columns, found)
    codes = [r.code for r in cov.rows]
    counts = {
        "bar_types": len(records),
        "not_stored": len(names) - len(stored),
        "sessions": int(cov.dates.size),
        "complete": sum(int((c == COMPLETE).sum()) for c in codes),
        "partial": sum(int((c == PARTIAL).sum()) for c in codes),
        "missing": sum(int((c == MISSING).sum()) for c in codes),
        "nodata": sum(int((c == NODATA).sum()) for c in codes),
        "page_bytes": html_path.stat().st_size,
    }
    if found is not None:
        counts["findings"] = len(found)
        counts.update({f"findings_{k}": n for k, n in _by_kind(found).items()})
    written = Written(html_path, png_path, unit, counts)
    written.counts["seconds"] = round(time.perf_counter() - t0, 3)  # type: ignore[assignment]
    return written


def _bars_in_range(catalog: Catalog, bt: str, start: dt.date | None, end: dt.date | None):
    """The bars of ``bt`` whose session is in ``start .. end`` (either open)."""
    tz = calendar_timezone(calendar_for_venue(instrument_of(bt).rsplit(".", 1)[1]))
    lo = None if start is None else midnight_ns(start, tz)
    hi = None if end is None else midnight_ns(end + dt.timedelta(days=2), tz)
    bars = catalog.read(bt, lo, hi)
    if start is None and end is None:
        return bars
    days = local_dates(bars.ts_event - 1, tz)
    keep = np.ones(len(bars), dtype=bool)
    if start is not None:
        keep &= days >= np.datetime64(start, "D")
    if end is not None:
        keep &= days <= np.datetime64(end, "D")
    return bars.take(np.flatnonzero(keep))


def _by_kind(found: list) -> dict[str, int]:
    """Findings' bars (or runs, or splits) per kind: make check's counts, summed."""
    out: dict[str, int] = {}
    for f in found:
        out[f.kind] = out.get(f.kind, 0) + f.count
    return out


def report_options(cfg: Mapping[str, Any], bar_type: str | None = None) -> dict[str, Any]:
    """``conf/scan.yaml``'s report settings as :func:`catalog_report` keywords: the bar types
    (``bar_type``, else the instrument set's, else all), ``report_columns``, ``check.hours`` and,
    when ``report_health`` is true, the ``health.*`` thresholds."""
    check = cfg.get("check") or {}
    names = [bar_type] if bar_type else set_bar_types(cfg["instruments"], cfg["bars"]["spec"])
    return {
        "bar_types": names,
        "max_columns": _columns(cfg.get("report_columns", 120)),
        "hours": str(check.get("hours", "regular")),
        "health": HealthOptions.of(cfg.get("health") or {}) if cfg.get("report_health") else None,
    }


def _columns(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise InputError(
            f"report_columns={value!r} is not a whole number", hint="e.g. report_columns=60"
        ) from None


def set_bar_types(instruments: Mapping[str, Any], spec: object) -> list[str] | None:
    """The bar types of an instrument set (``SET=mega_caps``: ``instruments.symbols``) with bar
    spec ``spec``; None when the set lists no symbols (then: the whole catalog)."""
    symbols = list(instruments.get("symbols") or [])
    if not symbols:
        return None
    venues = (instruments.get("default_venue", "NASDAQ"), instruments.get("venues") or {})
    return [bar_type_text(instrument_id_text(str(s), *venues), str(spec)) for s in symbols]
