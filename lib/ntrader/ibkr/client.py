"""Interactive Brokers access through ib_async: connect, qualify contracts, request bars.

Facts this module encodes (see DESIGN.md): ``RaiseRequestErrors = True`` (otherwise errors 162 and
200 come back as an EMPTY bar list, indistinguishable from "no data"); tz-aware UTC end times;
``formatDate=2`` (UTC epochs); a request that times out also returns an empty list silently, so an
empty answer without an error is treated as a timeout. Errors are classified here once: what is
retried (timeouts, pacing violations, disconnects) and what is final (no security definition,
no data for the period).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from ib_async import IB, BarData, Contract, ContractDetails, RequestError, Stock
from ib_async.ib import StartupFetchNONE
from loguru import logger
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.model.instruments import Equity

from ntrader.errors import ConnectionFailure, DataError, InputError
from ntrader.ibkr.plan import PlannedRequest
from ntrader.instruments import make_equity


@dataclass(frozen=True)
class IbkrSettings:
    host: str = "127.0.0.1"
    port: int = 4002
    client_id: int = 17
    connect_timeout: float = 10.0
    request_timeout: float = 120.0
    retries: int = 5
    reconnect_window_s: float = 900.0  # a lost connection is waited for this long (reconnect.py)

    @classmethod
    def from_config(cls, ibkr: Mapping[str, Any]) -> IbkrSettings:
        """From the ``ibkr`` config group (a dict or Hydra's ``cfg.ibkr``)."""
        hint = "check IBKR_HOST / IBKR_PORT / IBKR_CLIENT_ID and the ibkr.* overrides"
        try:
            settings = cls(
                host=str(ibkr["host"]).strip(),
                port=int(ibkr["port"]),
                client_id=int(ibkr["client_id"]),
                connect_timeout=float(ibkr["connect_timeout"]),
                request_timeout=float(ibkr["request_timeout"]),
                retries=int(ibkr["retries"]),
                reconnect_window_s=float(ibkr.get("reconnect_window_s", 900)),
            )
        except (TypeError, ValueError) as exc:
            raise InputError(f"invalid IBKR setting: {exc}", hint=hint) from exc
        if not 1 <= settings.port <= 65535:
            raise InputError(f"invalid IBKR port {settings.port} (1..65535)", hint=hint)
        if not settings.host or any(c.isspace() or ord(c) < 32 for c in settings.host):
            raise InputError(f"invalid IBKR host {settings.host!r}", hint=hint)
        if settings.connect_timeout <= 0 or settings.request_timeout <= 0 or settings.retries < 1:
            raise InputError("ibkr timeouts must be > 0 and ibkr.retries >= 1", hint=hint)
        if not 0 <= settings.reconnect_window_s <= 86400:
            raise InputError("ibkr.reconnect_window_s must be 0 .. 86400 seconds", hint=hint)
        return settings

    @property
    def endpoint(self) -> str:
        return f"{self.host}:{self.port}"


class RetryableIbError(Exception):
    """A request failure worth retrying (after a pause, possibly after reconnecting)."""

    pause_s: float = 1.0


class RequestTimedOut(RetryableIbError):
    pass


class PacingViolation(RetryableIbError):
    pause_s = 15.0


class Disconnected(RetryableIbError):
    pass


class NoDataForPeriod(Exception):
    """IB answered 162 "HMDS query returned no data": final for these sessions."""


def unreachable(settings: IbkrSettings, cause: object) -> ConnectionFailure:
    return ConnectionFailure(
        f"IBKR is not reachable at {settings.endpoint} ({cause})",
        hint=(
            f"start IB Gateway or TWS, log in, and enable the API (Configure > Settings > API: "
            f"'Enable ActiveX and Socket Clients', socket port {settings.port}); set IBKR_HOST / "
            f"IBKR_PORT if it runs elsewhere. No IB account? `make sim` starts the bundled TWS "
            f"simulator. Or load data from a file instead: make import CSV=… SYMBOL=…"
        ),
    )


def _price_precision(min_tick: float) -> int:
    text = format(Decimal(str(min_tick)).normalize(), "f")
    return len(text.split(".")[1]) if "." in text else 0


class IbkrSession:
    """One ib_async connection, reconnected on demand."""

    def __init__(self, settings: IbkrSettings) -> None:
        self.settings = settings
        self.ib = IB()
        self.ib.RaiseRequestErrors = True
        self._errors: list[tuple[int, int, str]] = []
        self.lost: str | None = None  # error 1100 seen, 1101/1102 not yet: IB is away
        self._inflight: asyncio.Future[Any] | None = None
        self.ib.errorEvent += self._on_error

    def _on_error(self, req_id: int, code: int, message: str, *args: Any) -> None:
        self._errors.append((req_id, code, message))
        if code == 1100:  # the request in flight will not be answered: stop waiting for it
            self.lost = f"error 1100: {message}"
            if self._inflight is not None and not self._inflight.done():
                self._inflight.cancel()
        elif code in (1101, 1102):  # connectivity restored (1101: subscriptions lost)
            self.lost = None
            logger.info(f"IBKR: {message} (error {code})")

    async def usable(self) -> bool:
        """Connected (reconnecting if the socket closed) and no unanswered 1100."""
        if not self.ib.isConnected():
            self.lost = None  # a new connection starts with IB's connectivity as it is now
            await self.connect()
        return self.lost is None

    async def connect(self) -> None:
        s = self.settings
        self._errors.clear()
        try:
            await self.ib.connectAsync(
                s.host,
                s.port,
                clientId=s.client_id,
                timeout=s.connect_timeout,
                readonly=True,
                fetchFields=StartupFetchNONE,
            )
        except (ConnectionRefusedError, ConnectionError, OSError, TimeoutError) as exc:
            self.ib.disconnect()
            if any(code == 326 for _, code, _ in self._errors):
                raise ConnectionFailure(
                    f"IBKR at {s.endpoint} refused client id {s.client_id}: already in use",
                    hint="another program is connected with that id: set IBKR_CLIENT_ID=<other>",
                ) from exc
            raise unreachable(
                s, f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            ) from exc
        if not self.ib.isConnected():
            raise unreachable(s, "the connection closed during the handshake")
        logger.info(f"connected to IBKR at {s.endpoint} (client id {s.client_id})")

    async def ensure_connected(self) -> None:
        if not self.ib.isConnected():
            await self.connect()

    def close(self) -> None:
        if self.ib.isConnected():
            self.ib.disconnect()

    async def qualify(self, instrument_id: InstrumentId) -> tuple[Contract, Equity]:
        """US stock, SMART routing -> the qualified contract and a Nautilus Equity."""
        await self.ensure_connected()
        symbol = instrument_id.symbol.value.replace(".", " ")  # BRK.B -> IB's "BRK B"
        contract = Stock(symbol, "SMART", "USD")
        try:
            details: list[ContractDetails] = await self.ib.reqContractDetailsAsync(contract)
        except RequestError as exc:
            if exc.code == 200:
                raise DataError(
                    f"IBKR has no security definition for {instrument_id.symbol} (US stock)",
                    hint="check the ticker; share classes are written BRK.B",
                ) from exc
            raise
        except ConnectionError as exc:
            raise Disconnected(str(exc)) from exc
        if not details:
            raise DataError(f"IBKR has no security definition for {instrument_id.symbol}")
        d = details[0]
        c = d.contract
        assert c is not None
        precision = _price_precision(float(d.minTick or 0.01))
        equity = make_equity(instrument_id, precision)
        logger.info(
            f"{instrument_id}: conId {c.conId}, primary exchange {c.primaryExchange}, "
            f"min tick {d.minTick}"
        )
        return c, equity

    async def bars(
        self, contract: Contract, req: PlannedRequest, what_to_show: str
    ) -> list[BarData]:
        """One historical request; raises a RetryableIbError subclass or NoDataForPeriod."""
        try:
            await self.ensure_connected()
        except ConnectionFailure as exc:
            raise Disconnected(str(exc)) from exc
        if self.lost:
            raise Disconnected(self.lost)
        self._inflight = asyncio.ensure_future(
            self.ib.reqHistoricalDataAsync(
                contract,
                endDateTime=req.end_utc if req.end_utc is not None else "",
                durationStr=req.duration,
                barSizeSetting=req.bar_size,
                whatToShow=what_to_show,
                useRTH=req.use_rth,
                formatDate=2,
                timeout=self.settings.request_timeout,
            )
        )
        try:
            bars = await asyncio.shield(self._inflight)
        except asyncio.CancelledError:
            if self._inflight.cancelled() and self.lost:  # cancelled by error 1100, not by us
                raise Disconnected(self.lost) from None
            self._inflight.cancel()
            raise
        except RequestError as exc:
            text = exc.message.lower()
            if exc.code == 162 and "pacing" in text:
                raise PacingViolation(exc.message) from exc
            if exc.code == 162 and "no data" in text:
                raise NoDataForPeriod(exc.message) from exc
            if exc.code in (1100, 2110) or "disconnect" in text:
                raise Disconnected(exc.message) from exc
            if exc.code == 162 and "cancel" in text:
                raise RequestTimedOut(exc.message) from exc
            raise
        except ConnectionError as exc:
            raise Disconnected(str(exc)) from exc
        if not bars:
            if not self.ib.isConnected():
                raise Disconnected("connection lost during the request")
            raise RequestTimedOut(
                f"no answer within {self.settings.request_timeout:.0f} s (ibkr.request_timeout)"
            )
        return list(bars)


def bar_open_ns(bar: BarData) -> int:
    """A bar's open time in UTC ns (intraday: tz-aware datetime; daily: a date at local 00:00)."""
    d = bar.date
    if isinstance(d, dt.datetime):
        if d.tzinfo is None:
            d = d.replace(tzinfo=dt.UTC)
        return int(d.timestamp()) * 1_000_000_000 + d.microsecond * 1000
    import pandas as pd

    return int(pd.Timestamp(d, tz="America/New_York").value)
