"""Fault injection of the TWS simulator: the :class:`Faults` config and IB's pacing rules.

Faults are plain settings, from Python (``Faults(pacing=True, timeout_every=3)``) or the CLI
(``--fault pacing=true --fault no_data_sessions=2024-01-05,2024-01-08``). They are read at each
request, so changing a field of a running simulator's ``faults`` takes effect immediately.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import deque
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from typing import Any

PACING_MESSAGE = (
    "Historical Market Data Service error message:Historical data request pacing violation"
)
NO_DATA_MESSAGE = "Historical Market Data Service error message:HMDS query returned no data"
NO_SECURITY_MESSAGE = "No security definition has been found for the request"
CLIENT_ID_IN_USE_MESSAGE = (
    "Unable to connect as the client id is already in use. Retry with a unique client id."
)
CONNECTIVITY_LOST_MESSAGE = "Connectivity between IB and Trader Workstation has been lost."
CONNECTIVITY_RESTORED_MESSAGE = (
    "Connectivity between IB and Trader Workstation has been restored - data maintained."
)


def _parse_bool(text: str) -> bool:
    t = text.strip().lower()
    if t in ("1", "true", "yes", "on", ""):
        return True
    if t in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"not a boolean: {text!r}")


def _parse_date(value: object) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    text = str(value).strip()
    fmt = "%Y%m%d" if text.isdigit() else "%Y-%m-%d"
    return dt.datetime.strptime(text, fmt).date()


def _items(value: object) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, str):
        return [v for v in (p.strip() for p in value.split(",")) if v]
    if isinstance(value, Iterable):
        return list(value)
    return [value]


def _optional_positive(value: object) -> int | None:
    if value is None or value == "" or (isinstance(value, str) and value.lower() == "none"):
        return None
    n = int(str(value)) if not isinstance(value, int) else value
    return n if n > 0 else None


@dataclass
class Faults:
    """What the simulator does wrong on purpose (all off by default).

    * ``pacing``: enforce IB's historical-data pacing rules (see :class:`PacingRules`): a violating
      request gets error 162 "...pacing violation" and no data.
    * ``disconnect_after``: on each connection, close the socket when the (N+1)-th historical
      request arrives (N requests are answered, the next is in flight when the link drops).
    * ``timeout_every``: never answer every k-th historical request (counted server-wide).
    * ``no_data_sessions``: sessions without bars; a request covering only such sessions gets
      162 "HMDS query returned no data".
    * ``unknown_symbols``: symbols answered with error 200 (contract details and bars).
    * ``client_id_in_use``: client ids refused with error 326, then the socket is closed.
    * ``delay_ms``: latency added before each historical answer.
    * ``farm_down``: the connect-time farm messages say the data farms are broken (2103 / 2105 /
      2157 instead of 2104 / 2106 / 2158), as IB Gateway does while a farm is down.
    * ``restart_after`` / ``restart_s``: IB Gateway's nightly restart. When the (N+1)-th
      historical request arrives (server-wide), every connection gets error 1100 "Connectivity
      between IB and Trader Workstation has been lost" and is closed, and for ``restart_s``
      seconds (default 5) new connections are closed at once; then the simulator serves again.
      Happens once per simulator. With ``restart_keep_socket`` the sockets stay open instead
      (IB's servers away, the Gateway up): 1100, no answers for ``restart_s`` seconds (the request
      in flight is never answered), then 1102 "…has been restored - data maintained".
    """

    pacing: bool = False
    disconnect_after: int | None = None
    timeout_every: int | None = None
    no_data_sessions: frozenset[dt.date] = field(default_factory=frozenset)
    unknown_symbols: frozenset[str] = field(default_factory=frozenset)
    client_id_in_use: frozenset[int] = field(default_factory=frozenset)
    delay_ms: float = 0.0
    farm_down: bool = False
    restart_after: int | None = None
    restart_s: float = 5.0
    restart_keep_socket: bool = False

    def __post_init__(self) -> None:
        self.pacing = (
            self.pacing if isinstance(self.pacing, bool) else _parse_bool(str(self.pacing))
        )
        self.disconnect_after = _optional_positive(self.disconnect_after)
        self.timeout_every = _optional_positive(self.timeout_every)
        self.no_data_sessions = frozenset(_parse_date(v) for v in _items(self.no_data_sessions))
        self.unknown_symbols = frozenset(
            str(v).strip().upper() for v in _items(self.unknown_symbols)
        )
        self.client_id_in_use = frozenset(int(v) for v in _items(self.client_id_in_use))
        self.delay_ms = max(0.0, float(self.delay_ms))
        self.farm_down = (
            self.farm_down if isinstance(self.farm_down, bool) else _parse_bool(str(self.farm_down))
        )
        self.restart_after = _optional_positive(self.restart_after)
        self.restart_s = max(0.0, float(self.restart_s))
        if not isinstance(self.restart_keep_socket, bool):
            self.restart_keep_socket = _parse_bool(str(self.restart_keep_socket))

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    def set(self, name: str, value: object) -> None:
        """Set one fault by name from a Python value or CLI text (normalised like __init__)."""
        key = name.strip().replace("-", "_")
        if key not in self.names():
            raise ValueError(f"unknown fault {name!r}; known: {', '.join(self.names())}")
        setattr(self, key, value)
        self.__post_init__()

    @classmethod
    def parse(cls, settings: Iterable[str]) -> Faults:
        """Faults from CLI items ``name=value`` (a bare ``name`` means ``name=true``)."""
        faults = cls()
        for item in settings:
            name, _, value = item.partition("=")
            try:
                faults.set(name, value)
            except (ValueError, TypeError) as exc:
                raise ValueError(f"bad --fault {item!r}: {exc}") from None
        return faults

    def describe(self) -> str:
        active = [
            f"{f.name}={getattr(self, f.name)!r}"
            for f in dataclasses.fields(self)
            if getattr(self, f.name) not in (False, None, 0, 0.0, frozenset())
            and (not f.name.startswith("restart_") or self.restart_after)
        ]
        return ", ".join(active) or "none"


@dataclass(frozen=True)
class PacingRules:
    """IB's historical-data pacing limits (https://interactivebrokers.github.io/tws-api)."""

    max_requests: int = 60  # more than this in any window_s -> violation
    window_s: float = 600.0
    identical_s: float = 15.0  # an identical request within this many seconds
    burst_count: int = 6  # this many (or more) for one contract+exchange+tick type ...
    burst_s: float = 2.0  # ... within this many seconds
    max_open: int = 50  # more open (unanswered) requests than this


class PacingTracker:
    """Pacing state on the server's clock; every checked request counts, violating or not."""

    def __init__(self, clock: Callable[[], float], rules: PacingRules | None = None) -> None:
        self.clock = clock
        self.rules = rules or PacingRules()
        self._all: deque[float] = deque()
        self._identical: dict[Hashable, float] = {}
        self._bursts: dict[Hashable, deque[float]] = {}
        self.open = 0

    def check(self, identical_key: Hashable, contract_key: Hashable) -> str | None:
        """Record one request now; the broken rule's description, or None if it is allowed."""
        r = self.rules
        now = self.clock()
        while self._all and now - self._all[0] >= r.window_s:
            self._all.popleft()
        burst = self._bursts.setdefault(contract_key, deque())
        while burst and now - burst[0] >= r.burst_s:
            burst.popleft()
        last = self._identical.get(identical_key)
        reason = None
        if len(self._all) >= r.max_requests:
            reason = f"more than {r.max_requests} requests within {r.window_s:g} s"
        elif last is not None and now - last < r.identical_s:
            reason = f"identical request within {r.identical_s:g} s"
        elif len(burst) + 1 >= r.burst_count:
            reason = f"{r.burst_count} or more requests for one contract within {r.burst_s:g} s"
        elif self.open >= r.max_open:
            reason = f"more than {r.max_open} open requests"
        self._all.append(now)
        burst.append(now)
        self._identical[identical_key] = now
        if len(self._identical) > 4096:  # forget stale identical keys
            self._identical = {k: t for k, t in self._identical.items() if now - t < r.identical_s}
        return reason
