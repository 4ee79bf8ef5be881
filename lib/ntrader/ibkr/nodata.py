"""What IBKR answered "no data" for, remembered per bar type in the catalog
(``<catalog>/.ntrader/nodata/<BAR_TYPE>.json``), so a rerun or tomorrow's cron fetch does not ask
again, and ``make check`` / ``make backtest`` show it as IB's answer instead of a gap to fetch.

A record is one session and when IB was asked: either IB had no bar at all for it, or IB's bars
left ``holes`` (runs of expected bar closes it did not send, ``[first_close_ns, last_close_ns]``).
A record is trusted for ``expiry_days`` (default :data:`DEFAULT_EXPIRY_DAYS`) after it was asked;
then the next fetch asks again by itself. ``retry`` (``ibkr.retry_nodata=true``) asks again now.

File format (version 2)::

    {"version": 2, "sessions": {"2024-01-05": {"asked": "2026-11-30T12:00:00+00:00"},
                                "2024-06-04": {"asked": "…", "holes": [[first_ns, last_ns], …]}}}

Version 1 files (a JSON list of dates, written before the time was recorded) are read with the
file's modification time as the time asked.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import PurePath

from ntrader.catalog.catalog import Catalog
from ntrader.errors import InputError

DEFAULT_EXPIRY_DAYS = 30.0
Holes = tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class NoData:
    """IB's answer for one session lacked bars: all of them (``holes`` is None) or ``holes``."""

    session: dt.date
    asked: dt.datetime  # tz-aware UTC
    holes: Holes | None = None

    @property
    def whole(self) -> bool:
        """IB had no bar at all for the session."""
        return self.holes is None

    def expires(self, expiry_days: float | None) -> dt.datetime | None:
        """When the record stops being trusted (None: never)."""
        if expiry_days is None:
            return None
        return self.asked + dt.timedelta(days=float(expiry_days))

    def covers(self, first_ns: int, last_ns: int) -> bool:
        """Whether IB's answer lacked every bar close in ``[first_ns, last_ns]``."""
        if self.holes is None:
            return True
        return any(a <= first_ns and last_ns <= b for a, b in self.holes)

    def missing_bars(self, step_ns: int) -> int | None:
        """How many bar closes IB's answer lacked (None: the whole session)."""
        if self.holes is None:
            return None
        return sum((b - a) // step_ns + 1 for a, b in self.holes)

    def as_report(self, step_ns: int) -> dict[str, object]:
        """The record in a fetch report (``summary.json``): session, when asked, bars lacking."""
        return {
            "session": self.session.isoformat(),
            "asked": self.asked.isoformat(),
            "missing_bars": self.missing_bars(step_ns) if step_ns > 0 else None,
        }

    def as_json(self) -> dict[str, object]:
        out: dict[str, object] = {"asked": self.asked.isoformat()}
        if self.holes is not None:
            out["holes"] = [list(h) for h in self.holes]
        return out


def _path(catalog: Catalog, bar_type: str) -> PurePath:
    return catalog.root / ".ntrader" / "nodata" / f"{bar_type}.json"


def _file_time(catalog: Catalog, path: PurePath) -> dt.datetime:
    """When the file was last written: its mtime on disk, its LastModified on S3."""
    if catalog.store.local:
        try:
            when: float | None = os.path.getmtime(path)
        except OSError:
            when = None
    else:
        when = catalog.store.list_times(path.parent).get(path.name)
    if when is None:
        return dt.datetime.now(dt.UTC)
    return dt.datetime.fromtimestamp(when, dt.UTC)


def _utc(text: str) -> dt.datetime:
    when = dt.datetime.fromisoformat(text)
    return when.replace(tzinfo=dt.UTC) if when.tzinfo is None else when.astimezone(dt.UTC)


def load(catalog: Catalog, bar_type: str) -> dict[dt.date, NoData]:
    """Every record of ``bar_type``, expired or not, by session."""
    path = _path(catalog, bar_type)
    text = catalog.store.read_text(path)
    if text is None:
        return {}
    data = json.loads(text)
    if isinstance(data, list):  # version 1: dates only
        asked = _file_time(catalog, path)
        return {d: NoData(d, asked) for d in (dt.date.fromisoformat(str(x)) for x in data)}
    out: dict[dt.date, NoData] = {}
    for day, rec in dict(data.get("sessions") or {}).items():
        d = dt.date.fromisoformat(day)
        holes = rec.get("holes")
        out[d] = NoData(
            d,
            _utc(str(rec["asked"])),
            None if holes is None else tuple((int(a), int(b)) for a, b in holes),
        )
    return out


def current(
    catalog: Catalog,
    bar_type: str,
    *,
    expiry_days: float | None = DEFAULT_EXPIRY_DAYS,
    retry: bool = False,
    now: dt.datetime | None = None,
) -> dict[dt.date, NoData]:
    """The records still trusted: asked less than ``expiry_days`` ago; none when ``retry``."""
    if retry:
        return {}
    check_expiry(expiry_days)
    moment = now or dt.datetime.now(dt.UTC)
    out = {}
    for d, rec in load(catalog, bar_type).items():
        until = rec.expires(expiry_days)
        if until is None or until > moment:
            out[d] = rec
    return out


def parse_expiry(value: object) -> float | None:
    """``ibkr.nodata_expiry_days`` as days (None: never expires); ``InputError`` if invalid."""
    if value is None:
        return None
    try:
        days = float(str(value))
    except ValueError:
        days = math.nan
    if not days >= 0:  # also NaN
        raise _bad_expiry(value)
    return days


def check_expiry(expiry_days: float | None) -> None:
    """``InputError`` unless ``expiry_days`` is None or a number of days >= 0."""
    if expiry_days is not None and not float(expiry_days) >= 0:
        raise _bad_expiry(expiry_days)


def _bad_expiry(value: object) -> InputError:
    return InputError(
        f"ibkr.nodata_expiry_days must be a number of days >= 0 (or null: never), got {value!r}",
        hint='e.g. ARGS="ibkr.nodata_expiry_days=30" (0: ask IB again on every fetch)',
    )


def update(
    catalog: Catalog,
    bar_type: str,
    answers: Mapping[dt.date, NoData],
    complete: Iterable[dt.date] = (),
) -> None:
    """Record ``answers`` (replacing older records of those sessions) and forget the records of
    the ``complete`` sessions (IB sent every bar). Call from the single fetch process."""
    done = set(complete)
    records = load(catalog, bar_type)
    if not answers and not (done & records.keys()):
        return
    for d in done:
        records.pop(d, None)
    records.update(answers)
    body = {
        "version": 2,
        "sessions": {d.isoformat(): records[d].as_json() for d in sorted(records)},
    }
    catalog.store.write_text(_path(catalog, bar_type), json.dumps(body, indent=1))


def add(
    catalog: Catalog,
    bar_type: str,
    sessions: list[dt.date],
    asked: dt.datetime | None = None,
) -> None:
    """Record that IB had no bar at all for ``sessions`` (asked ``asked``, default now)."""
    when = asked or dt.datetime.now(dt.UTC)
    update(catalog, bar_type, {d: NoData(d, when) for d in sessions})
