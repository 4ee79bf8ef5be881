"""What a symbol, venue, instrument id and bar spec may look like: the one validator every entry
point uses (command line, config, CSV import, PostgreSQL rows, IB answers) before any of them
becomes part of a catalog path.

A symbol is what US tickers use: letters and digits in groups joined by ``.`` (``BRK.B``), ``-``
or one space (IB's ``BRK B``), at most :data:`MAX_SYMBOL` characters — so never ``/``, ``\\``,
``..``, NUL or a control character. A venue is letters and digits (``NASDAQ``, ``ARCA``). A bar
spec is ``<step>-<SECOND|MINUTE|HOUR|DAY>-<LAST|BID|ASK|MID>``, optionally ``-EXTERNAL`` (the
bars ntrader stores come from IB or a file, never aggregated internally). Anything else is an
input error (exit 2) that names the value. No NautilusTrader import: usable before it loads.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from ntrader.errors import InputError

MAX_SYMBOL = 24
MAX_VENUE = 16
MAX_STEP = 10_000
AGGREGATIONS = ("SECOND", "MINUTE", "HOUR", "DAY")
PRICE_TYPES = ("LAST", "BID", "ASK", "MID")

_SYMBOL_RE = re.compile(r"[A-Z0-9]+(?:[.\- ][A-Z0-9]+)*")
_VENUE_RE = re.compile(r"[A-Z][A-Z0-9]*")
_SPEC_RE = re.compile(r"(\d+)-([A-Z]+)-([A-Z]+)(?:-([A-Z]+))?")
_UNIT_NS = {"SECOND": 1_000_000_000, "MINUTE": 60_000_000_000, "HOUR": 3_600_000_000_000}
_SYMBOL_HINT = "use a ticker such as AAPL or BRK.B, or SYMBOL.VENUE such as AAPL.NASDAQ"


def shown(value: object, limit: int = 60) -> str:
    """``value`` for an error message: repr'd (control characters visible), cut when long."""
    text = repr(str(value))
    return text if len(text) <= limit else f"{text[: limit - 5]}…' ({len(str(value))} chars)"


def check_symbol(symbol: object) -> str:
    """The ticker upper-cased, or :class:`InputError` naming it."""
    text = str(symbol).strip().upper()
    if not text or len(text) > MAX_SYMBOL or not _SYMBOL_RE.fullmatch(text):
        why = "too long" if len(text) > MAX_SYMBOL else "not a ticker"
        raise InputError(
            f"invalid symbol {shown(symbol)} ({why}: letters and digits, joined by '.', '-' or "
            f"one space, at most {MAX_SYMBOL} characters)",
            hint=_SYMBOL_HINT,
        )
    return text


def check_venue(venue: object) -> str:
    """The venue upper-cased, or :class:`InputError` naming it."""
    text = str(venue).strip().upper()
    if not (2 <= len(text) <= MAX_VENUE) or not _VENUE_RE.fullmatch(text):
        raise InputError(
            f"invalid venue {shown(venue)} (letters and digits, 2 to {MAX_VENUE} characters)",
            hint="e.g. NASDAQ, NYSE, ARCA",
        )
    return text


def split_instrument_id(text: object, default_venue: str = "NASDAQ") -> tuple[str, str | None]:
    """``AAPL.NASDAQ`` -> (``AAPL``, ``NASDAQ``); a bare ``AAPL`` or ``BRK.B`` -> (symbol, None).

    A suffix after the last ``.`` is a venue when it has at least two letters and is written in
    upper case (``BRK.B`` is a symbol, ``BRK.B.NYSE`` symbol ``BRK.B`` at ``NYSE``)."""
    raw = str(text).strip()
    sym, dot, venue = raw.rpartition(".")
    if dot and sym and len(venue) >= 2 and venue.isalpha() and venue.isupper():
        return check_symbol(sym), check_venue(venue)
    return check_symbol(raw), None


def check_bar_spec(bar_spec: object) -> str:
    """``1-MINUTE-LAST`` (``-EXTERNAL`` dropped), or :class:`InputError` naming the value."""
    text = str(bar_spec).strip().upper()
    m = _SPEC_RE.fullmatch(text)
    examples = "1-MINUTE-LAST, 5-MINUTE-LAST, 1-HOUR-LAST, 1-DAY-LAST, 1-SECOND-LAST"
    if not m:
        raise InputError(
            f"invalid bar spec {shown(bar_spec)}",
            hint=f"use a Nautilus bar spec <step>-<aggregation>-<price> such as {examples} "
            "(not 1-MIN)",
        )
    step, agg, price, source = int(m.group(1)), m.group(2), m.group(3), m.group(4)
    if source == "INTERNAL":
        raise InputError(
            f"invalid bar spec {shown(bar_spec)}: ntrader stores EXTERNAL bars (from IB or a "
            "file), never internally aggregated ones",
            hint="drop the -INTERNAL suffix",
        )
    if source not in (None, "EXTERNAL"):
        raise InputError(f"invalid bar spec {shown(bar_spec)}: unknown source {source!r}")
    if not 1 <= step <= MAX_STEP or agg not in AGGREGATIONS or price not in PRICE_TYPES:
        raise InputError(
            f"invalid bar spec {shown(bar_spec)}: step 1..{MAX_STEP}, aggregation one of "
            f"{', '.join(AGGREGATIONS)}, price one of {', '.join(PRICE_TYPES)}",
            hint=f"e.g. {examples}",
        )
    return f"{step}-{agg}-{price}"


def check_bar_type_name(name: object) -> str:
    """A whole bar type string (``AAPL.NASDAQ-1-MINUTE-LAST-EXTERNAL``) as the catalog stores it
    in a directory name: a valid instrument id with a venue, then a valid EXTERNAL spec, in
    canonical (upper-case) form."""
    text = str(name)
    parts = text.rsplit("-", 4)  # the symbol may hold '-' (BRK-B): the spec is the last four
    try:
        if len(parts) != 5 or parts[4] != "EXTERNAL":
            raise InputError("no <spec>-EXTERNAL suffix")
        symbol, venue = split_instrument_id(parts[0])
        if venue is None:
            raise InputError("no venue")
        canonical = f"{symbol}.{venue}-{check_bar_spec('-'.join(parts[1:]))}-EXTERNAL"
    except InputError as exc:
        raise InputError(
            f"invalid bar type {shown(name)} ({exc.message})",
            hint="a bar type is <SYMBOL>.<VENUE>-<bar spec>-EXTERNAL, e.g. "
            "AAPL.NASDAQ-1-MINUTE-LAST-EXTERNAL",
        ) from None
    if canonical != text:
        raise InputError(
            f"invalid bar type {shown(name)} (not in canonical form {canonical!r})",
            hint="write symbol, venue and spec in upper case",
        )
    return text


def instrument_id_text(
    symbol: str, default_venue: str = "NASDAQ", venues: Mapping[str, str] | None = None
) -> str:
    """``AAPL`` / ``AAPL.NASDAQ`` -> ``AAPL.NASDAQ``, as ``instruments.resolve_instrument_id``
    resolves it but without NautilusTrader: a bare symbol looks up ``venues`` first."""
    ticker, venue = split_instrument_id(symbol)
    if venue is None:
        venue = check_venue((venues or {}).get(ticker) or default_venue)
    return f"{ticker}.{venue}"


def bar_type_text(instrument_id: object, bar_spec: object) -> str:
    """``AAPL.NASDAQ`` + ``1-MINUTE-LAST`` -> ``AAPL.NASDAQ-1-MINUTE-LAST-EXTERNAL``, validated
    like ``ntrader.instruments.bar_type_for`` but as a string (no NautilusTrader import)."""
    return check_bar_type_name(f"{instrument_id}-{check_bar_spec(bar_spec)}-EXTERNAL")


def spec_of(bar_type: object) -> str:
    """``AAPL.NASDAQ-1-MINUTE-LAST-EXTERNAL`` -> ``1-MINUTE-LAST``; ``instrument_of`` the id."""
    return "-".join(str(bar_type).rsplit("-", 4)[1:4])


def instrument_of(bar_type: object) -> str:
    return str(bar_type).rsplit("-", 4)[0]


@dataclass(frozen=True)
class BarStep:
    """How far a bar's close lies from its open: ``interval_ns``, or whole calendar days."""

    interval_ns: int
    calendar_days: int = 0

    @property
    def daily(self) -> bool:
        return self.calendar_days > 0


def spec_step(bar_spec: object) -> BarStep:
    """The :class:`BarStep` of a bar spec (``1-MINUTE-LAST``) or bar type string."""
    text = str(bar_spec)
    step_text, agg, _price = check_bar_spec(
        spec_of(text) if text.endswith("-EXTERNAL") else text
    ).split("-")
    step = int(step_text)
    if agg == "DAY":
        return BarStep(interval_ns=step * 86_400_000_000_000, calendar_days=step)
    return BarStep(interval_ns=step * _UNIT_NS[agg])
