"""The TWS simulator server: asyncio sessions speaking the TWS API to the real ib_async client.

One :class:`TwsSimulator` listens on a loopback port; each connection does the handshake, answers
``startApi`` with managedAccounts + nextValidId, answers ib_async's startup requests (positions,
open/completed orders, account updates, executions, ...) with their end markers, and serves
contract details, head timestamps and historical bars from :mod:`ntrader.ibkr.sim.market`, with the
faults of :class:`~ntrader.ibkr.sim.faults.Faults`. :func:`run_simulator` runs one in a background
thread for synchronous code and tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import threading
import time
import zoneinfo
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any, ClassVar

from loguru import logger

from ntrader.ibkr.sim import market
from ntrader.ibkr.sim.faults import (
    CLIENT_ID_IN_USE_MESSAGE,
    NO_DATA_MESSAGE,
    NO_SECURITY_MESSAGE,
    PACING_MESSAGE,
    Faults,
    PacingRules,
    PacingTracker,
)
from ntrader.ibkr.sim.market import NS, BarSet, RequestInvalid, SymbolInfo
from ntrader.ibkr.sim.protocol import (
    MIN_CLIENT_VERSION,
    SERVER_VERSION,
    ContractFields,
    Field,
    FieldReader,
    In,
    Out,
    ProtocolError,
    encode,
    error_message,
    price_text,
    read_frame,
    read_handshake,
    split_fields,
)
from ntrader.sessions import VENUE_CALENDARS

DEFAULT_ACCOUNT = "DU1234567"
ORDER_TYPES = "ACTIVETIM,AD,ADJUST,ALERT,ALGO,ALLOC,AVGCOST,BASKET,DAY,GTC,LMT,LOC,MKT,MOC,STP"
VALID_EXCHANGES = "SMART,AMEX,NYSE,CBOE,PHLX,ISE,CHX,ARCA,ISLAND,BATS,IEX"
MARKET_RULES = "26,26,26,26,26,26,26,26,26,26,26"
FARM_STATUS = (
    (2104, "Market data farm connection is OK:usfarm"),
    (2106, "HMDS data farm connection is OK:ushmds"),
    (2158, "Sec-def data farm connection is OK:secdefnj"),
)


@dataclass
class HistoricalRequest:
    """One received reqHistoricalData and what the simulator did with it.

    ``outcome``: pending | ok | no_data | pacing | unknown_symbol | invalid | timeout (never
    answered) | disconnect (connection dropped by ``disconnect_after``) | cancelled | aborted.
    ``clock`` is the server clock (the injectable one used for pacing) at arrival.
    """

    seq: int
    client_id: int
    req_id: int
    symbol: str
    end_date_time: str
    duration: str
    bar_size: str
    what_to_show: str
    use_rth: bool
    format_date: int
    clock: float
    outcome: str = "pending"
    bars: int = 0
    error_code: int | None = None
    detail: str = ""


class TwsSimulator:
    """A loopback TWS/IB Gateway stand-in for historical bars (asyncio).

    ``clock`` (default ``time.monotonic``) drives pacing and the request log; ``wall_clock``
    (default ``time.time``) is "now" for an empty endDateTime and caps data at the present.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        faults: Faults | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        account: str = DEFAULT_ACCOUNT,
        symbols: Mapping[str, SymbolInfo] | None = None,
        extra_symbols: Iterable[str] = (),
        pacing_rules: PacingRules | None = None,
        server_version: int = SERVER_VERSION,
    ) -> None:
        self.host = host
        self._port = port
        self.faults = faults if faults is not None else Faults()
        self.clock = clock
        self.wall_clock = wall_clock
        self.account = account
        self.server_version = server_version
        table = dict(symbols if symbols is not None else market.SYMBOLS)
        for name in extra_symbols:
            key = name.strip().upper()
            if key and key not in table:
                table[key] = market.synthetic_symbol(key)
        self.symbols: dict[str, SymbolInfo] = table
        self._by_con_id = {s.con_id: s for s in table.values()}
        self.pacing = PacingTracker(clock, pacing_rules)
        self._server: asyncio.Server | None = None
        self._connections: set[_Connection] = set()
        self._client_ids: dict[int, _Connection] = {}
        self._lock = threading.Lock()
        self._requests: list[HistoricalRequest] = []
        self._seq = 0

    # -- lifecycle -------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        return self._port

    @property
    def address(self) -> str:
        return f"{self.host}:{self._port}"

    async def start(self) -> None:
        if self._server is not None:
            return
        self._server = await asyncio.start_server(self._on_client, self.host, self._port)
        self._port = int(self._server.sockets[0].getsockname()[1])
        logger.info(f"tws_sim: listening on {self.address} (faults: {self.faults.describe()})")

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        conns = list(self._connections)
        for conn in conns:
            conn.close()
        tasks = [c.task for c in conns if c.task is not None and not c.task.done()]
        if tasks:
            _done, pending = await asyncio.wait(tasks, timeout=2.0)
            for t in pending:
                t.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(server.wait_closed(), 5.0)
        logger.info(f"tws_sim: stopped ({self.address})")

    async def __aenter__(self) -> TwsSimulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def serve_forever(self) -> None:
        await self.start()
        assert self._server is not None
        await self._server.serve_forever()

    # -- observability ---------------------------------------------------------------------------

    @property
    def requests(self) -> list[HistoricalRequest]:
        """Snapshot (copies) of every historical request received, in arrival order."""
        with self._lock:
            return [replace(r) for r in self._requests]

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    @property
    def connected_client_ids(self) -> list[int]:
        return sorted(self._client_ids)

    def _new_request(self, **fields: Any) -> HistoricalRequest:
        with self._lock:
            self._seq += 1
            req = HistoricalRequest(seq=self._seq, clock=self.clock(), **fields)
            self._requests.append(req)
            return req

    def _finish(self, req: HistoricalRequest, outcome: str, **fields: Any) -> None:
        with self._lock:
            req.outcome = outcome
            for k, v in fields.items():
                setattr(req, k, v)
        extra = f" ({req.bars} bars)" if outcome == "ok" else ""
        if req.detail:
            extra += f" [{req.detail}]"
        logger.info(
            f"tws_sim: hist #{req.seq} client {req.client_id} reqId {req.req_id} {req.symbol} "
            f"end={req.end_date_time!r} dur={req.duration!r} bar={req.bar_size!r} "
            f"rth={int(req.use_rth)} {req.what_to_show} -> {outcome}{extra}"
        )

    # -- contracts -------------------------------------------------------------------------------

    def resolve(self, c: ContractFields) -> SymbolInfo | None:
        """The known US stock a request's contract names, or None (-> error 200)."""
        sym = c.symbol.strip().upper()
        info: SymbolInfo | None
        if c.con_id > 0:
            info = self._by_con_id.get(c.con_id)
            if info is not None and sym and sym != info.symbol:
                info = None
        else:
            info = self.symbols.get(sym)
        if info is None or info.symbol in self.faults.unknown_symbols:
            return None
        if c.sec_type.upper() not in ("", "STK") or c.currency.upper() not in ("", "USD"):
            return None
        exchange = c.exchange.strip().upper()
        if exchange and exchange != info.primary_exchange and exchange not in VENUE_CALENDARS:
            return None
        return info

    # -- connections -----------------------------------------------------------------------------

    async def _on_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = _Connection(self, reader, writer)
        conn.task = asyncio.current_task()
        self._connections.add(conn)
        try:
            await conn.run()
        finally:
            self._connections.discard(conn)

    def _claim_client_id(self, client_id: int, conn: _Connection) -> bool:
        if client_id in self.faults.client_id_in_use or client_id in self._client_ids:
            return False
        self._client_ids[client_id] = conn
        return True

    def _release_client_id(self, conn: _Connection) -> None:
        if conn.client_id is not None and self._client_ids.get(conn.client_id) is conn:
            del self._client_ids[conn.client_id]


class _Connection:
    """One client socket."""

    def __init__(
        self, sim: TwsSimulator, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.sim = sim
        self.reader = reader
        self.writer = writer
        self.task: asyncio.Task[Any] | None = None
        self.client_id: int | None = None
        self.version = 0
        self.closed = False
        self.historical_count = 0
        self._tasks: set[asyncio.Task[Any]] = set()
        self._open: set[int] = set()  # reqIds of historical requests not yet answered
        self._cancelled: set[int] = set()
        peer = writer.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)

    # -- io --------------------------------------------------------------------------------------

    def send(self, data: bytes) -> None:
        if self.closed:
            return
        try:
            self.writer.write(data)
        except (ConnectionError, RuntimeError):
            self.close()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.sim._release_client_id(self)
        self.sim.pacing.open -= len(self._open)
        self._open.clear()
        for t in list(self._tasks):
            if t is not asyncio.current_task():
                t.cancel()
        with contextlib.suppress(Exception):
            self.writer.close()

    async def run(self) -> None:
        try:
            vmin, vmax, _options = await read_handshake(self.reader)
            self.version = min(vmax, self.sim.server_version)
            if self.version < max(vmin, MIN_CLIENT_VERSION):
                logger.warning(f"tws_sim: {self.peer} wants v{vmin}..{vmax}: unsupported")
                return
            now = dt.datetime.fromtimestamp(self.sim.wall_clock(), zoneinfo.ZoneInfo(market.TZ))
            self.send(encode(self.version, now.strftime("%Y%m%d %H:%M:%S %Z")))
            while not self.closed:
                fields = split_fields(await read_frame(self.reader))
                if fields:
                    self.dispatch(fields)
                with contextlib.suppress(ConnectionError):
                    await self.writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ProtocolError, OSError) as exc:
            if isinstance(exc, ProtocolError):
                logger.warning(f"tws_sim: {self.peer}: {exc}")
        finally:
            self.close()
            if self.client_id is not None:
                logger.debug(f"tws_sim: client {self.client_id} ({self.peer}) disconnected")

    # -- dispatch --------------------------------------------------------------------------------

    def dispatch(self, fields: list[str]) -> None:
        try:
            msg_id = int(fields[0])
        except ValueError:
            logger.warning(f"tws_sim: bad message id {fields[0]!r}")
            return
        f = FieldReader(fields, 1)
        if msg_id == In.START_API:
            self._start_api(f)
            return
        if self.client_id is None:
            return  # nothing is served before startApi
        if msg_id == In.REQ_HISTORICAL_DATA:
            task = asyncio.create_task(self._historical(f))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            return
        handler = self._HANDLERS.get(msg_id)
        if handler is not None:
            handler(self, f)
        else:
            logger.debug(f"tws_sim: ignoring message {msg_id}: {fields[1:8]}")

    def _start_api(self, f: FieldReader) -> None:
        if self.client_id is not None:
            return
        f.int()  # version
        client_id = f.int()
        if not self.sim._claim_client_id(client_id, self):
            logger.info(f"tws_sim: client id {client_id} refused (in use) from {self.peer}")
            self.send(error_message(-1, 326, CLIENT_ID_IN_USE_MESSAGE))
            self.close()
            return
        self.client_id = client_id
        self.send(encode(Out.MANAGED_ACCTS, 1, self.sim.account))
        self.send(encode(Out.NEXT_VALID_ID, 1, 1))
        for code, text in FARM_STATUS:
            self.send(error_message(-1, code, text))
        logger.info(f"tws_sim: client {client_id} connected from {self.peer} (v{self.version})")

    # startup requests: answered with their end markers (no positions, orders, executions)

    def _positions(self, f: FieldReader) -> None:
        self.send(encode(Out.POSITION_END, 1))

    def _open_orders(self, f: FieldReader) -> None:
        self.send(encode(Out.OPEN_ORDER_END, 1))

    def _completed_orders(self, f: FieldReader) -> None:
        self.send(encode(Out.COMPLETED_ORDERS_END))

    def _account_updates(self, f: FieldReader) -> None:
        f.int()
        subscribe = f.bool()
        account = f.str() or self.sim.account
        if subscribe:
            now = dt.datetime.fromtimestamp(self.sim.wall_clock(), zoneinfo.ZoneInfo(market.TZ))
            self.send(encode(Out.UPDATE_ACCOUNT_TIME, 1, now.strftime("%H:%M")))
            self.send(encode(Out.ACCT_DOWNLOAD_END, 1, account))

    def _account_updates_multi(self, f: FieldReader) -> None:
        f.int()
        self.send(encode(Out.ACCOUNT_UPDATE_MULTI_END, 1, f.int()))

    def _positions_multi(self, f: FieldReader) -> None:
        f.int()
        self.send(encode(Out.POSITION_MULTI_END, 1, f.int()))

    def _executions(self, f: FieldReader) -> None:
        f.int()
        self.send(encode(Out.EXECUTION_DATA_END, 1, f.int()))

    def _account_summary(self, f: FieldReader) -> None:
        f.int()
        self.send(encode(Out.ACCOUNT_SUMMARY_END, 1, f.int()))

    def _ids(self, f: FieldReader) -> None:
        self.send(encode(Out.NEXT_VALID_ID, 1, 1))

    def _managed_accounts(self, f: FieldReader) -> None:
        self.send(encode(Out.MANAGED_ACCTS, 1, self.sim.account))

    def _current_time(self, f: FieldReader) -> None:
        self.send(encode(Out.CURRENT_TIME, 1, int(self.sim.wall_clock())))

    def _ignore(self, f: FieldReader) -> None:
        pass

    def _cancel_historical(self, f: FieldReader) -> None:
        f.int()
        req_id = f.int()
        if req_id in self._open:
            self._open.discard(req_id)
            self.sim.pacing.open -= 1
            self._cancelled.add(req_id)

    # contract details and head timestamp

    def _contract_details(self, f: FieldReader) -> None:
        f.int()  # version
        req_id = f.int()
        c = f.contract()
        info = self.sim.resolve(c)
        if info is None:
            logger.info(f"tws_sim: contract details {c.describe()}: no security definition")
            self.send(error_message(req_id, 200, NO_SECURITY_MESSAGE))
            return
        now_ns = int(self.sim.wall_clock() * NS)
        exchange = c.exchange.strip().upper() or "SMART"
        # Field order of decoder.contractDetails for server versions >= 164 (no version field).
        head: list[Field] = [Out.CONTRACT_DATA, req_id, info.symbol, "STK", "", 0, ""]
        head += [exchange, "USD", info.symbol, info.trading_class, info.trading_class]
        head += [info.con_id, 0.01, "", ORDER_TYPES, f"{VALID_EXCHANGES},{info.primary_exchange}"]
        head += [1, 0, info.long_name, info.primary_exchange, "", info.industry, "", ""]
        head += [market.IB_TZ, market.trading_hours(now_ns, use_rth=False)]
        head += [market.trading_hours(now_ns, use_rth=True), "", "", 0]  # evRule, evMult, secIds
        head += [1, "", "", MARKET_RULES, "", info.stock_type, "0.0001", "0.0001", "100"]
        self.send(encode(*head))
        self.send(encode(Out.CONTRACT_DATA_END, 1, req_id))

    def _head_timestamp(self, f: FieldReader) -> None:
        req_id = f.int()
        c = f.contract()
        f.bool()  # includeExpired
        f.bool()  # useRTH
        f.str()  # whatToShow
        format_date = f.int(1)
        info = self.sim.resolve(c)
        if info is None:
            self.send(error_message(req_id, 200, NO_SECURITY_MESSAGE))
            return
        ts = market.head_timestamp_ns(info)
        self.send(encode(Out.HEAD_TIMESTAMP, req_id, market.format_bar_time(ts, format_date)))

    _HANDLERS: ClassVar[dict[int, Callable[[_Connection, FieldReader], None]]] = {
        In.REQ_POSITIONS: _positions,
        In.REQ_OPEN_ORDERS: _open_orders,
        In.REQ_ALL_OPEN_ORDERS: _open_orders,
        In.REQ_COMPLETED_ORDERS: _completed_orders,
        In.REQ_ACCOUNT_UPDATES: _account_updates,
        In.REQ_ACCOUNT_UPDATES_MULTI: _account_updates_multi,
        In.REQ_POSITIONS_MULTI: _positions_multi,
        In.REQ_EXECUTIONS: _executions,
        In.REQ_ACCOUNT_SUMMARY: _account_summary,
        In.REQ_IDS: _ids,
        In.REQ_MANAGED_ACCTS: _managed_accounts,
        In.REQ_CURRENT_TIME: _current_time,
        In.CANCEL_HISTORICAL_DATA: _cancel_historical,
        In.REQ_CONTRACT_DETAILS: _contract_details,
        In.REQ_HEAD_TIMESTAMP: _head_timestamp,
        In.CANCEL_HEAD_TIMESTAMP: _ignore,
        In.REQ_MARKET_DATA_TYPE: _ignore,
        In.REQ_AUTO_OPEN_ORDERS: _ignore,
    }

    # -- historical bars -------------------------------------------------------------------------

    async def _historical(self, f: FieldReader) -> None:
        sim = self.sim
        faults = sim.faults
        req_id = f.int()
        c = f.contract()
        f.bool()  # includeExpired
        end_text, bar_size, duration = f.str(), f.str(), f.str()
        use_rth, what_to_show, format_date = f.bool(), f.str(), f.int(1)
        self.historical_count += 1
        req = sim._new_request(
            client_id=self.client_id if self.client_id is not None else -1,
            req_id=req_id,
            symbol=c.symbol or str(c.con_id),
            end_date_time=end_text,
            duration=duration,
            bar_size=bar_size,
            what_to_show=what_to_show,
            use_rth=use_rth,
            format_date=format_date,
        )
        try:
            if faults.disconnect_after and self.historical_count > faults.disconnect_after:
                sim._finish(req, "disconnect", detail=f"after {faults.disconnect_after} requests")
                self.close()
                return
            info = sim.resolve(c)
            if info is None:
                sim._finish(req, "unknown_symbol", error_code=200)
                self.send(error_message(req_id, 200, NO_SECURITY_MESSAGE))
                return
            if faults.pacing:
                reason = sim.pacing.check(
                    (info.con_id, end_text, duration, bar_size, what_to_show.upper(), use_rth),
                    (info.con_id, c.exchange.upper(), what_to_show.upper()),
                )
                if reason:
                    sim._finish(req, "pacing", error_code=162, detail=reason)
                    self.send(error_message(req_id, 162, PACING_MESSAGE))
                    return
            self._open.add(req_id)
            sim.pacing.open += 1
            if faults.timeout_every and req.seq % faults.timeout_every == 0:
                sim._finish(req, "timeout", detail=f"timeout_every={faults.timeout_every}")
                return
            try:
                bars, end_ns = self._select(info, end_text, duration, bar_size, use_rth)
                if what_to_show.upper() == "SCHEDULE":
                    raise RequestInvalid(162, f"{market.HMDS}whatToShow=SCHEDULE is not served")
            except RequestInvalid as exc:
                self._answered(req_id)
                sim._finish(req, "invalid", error_code=exc.code, detail=exc.message[:80])
                self.send(error_message(req_id, exc.code, exc.message))
                return
            if faults.delay_ms > 0:
                await asyncio.sleep(faults.delay_ms / 1000.0)
            if req_id in self._cancelled or self.closed:
                self._cancelled.discard(req_id)
                sim._finish(req, "cancelled")
                return
            self._answered(req_id)
            if len(bars) == 0:
                sim._finish(req, "no_data", error_code=162)
                text = f"{NO_DATA_MESSAGE}: {info.symbol}@{c.exchange or 'SMART'} {what_to_show}"
                self.send(error_message(req_id, 162, text))
                return
            message = historical_data_message(req_id, bars, format_date, end_ns)
            sim._finish(req, "ok", bars=len(bars))  # logged before the client can see the answer
            self.send(message)
            await self.writer.drain()
        except asyncio.CancelledError:
            if req.outcome == "pending":
                sim._finish(req, "aborted")
            raise
        except (ConnectionError, RuntimeError):
            if req.outcome == "pending":
                sim._finish(req, "aborted")

    def _answered(self, req_id: int) -> None:
        if req_id in self._open:
            self._open.discard(req_id)
            self.sim.pacing.open -= 1

    def _select(
        self, info: SymbolInfo, end_text: str, duration: str, bar_size: str, use_rth: bool
    ) -> tuple[BarSet, int]:
        now_ns = int(self.sim.wall_clock() * NS)
        end_ns = min(market.parse_end(end_text, now_ns), now_ns)
        bar_minutes = market.parse_bar_size(bar_size)
        dur = market.parse_duration(duration)
        no_data = self.sim.faults.no_data_sessions
        return market.select_bars(info, end_ns, dur, bar_minutes, use_rth, no_data), end_ns


def historical_data_message(req_id: int, bars: BarSet, format_date: int, end_ns: int) -> bytes:
    """Message 17 for server versions < 196: bars and end marker in one message."""
    n = len(bars)
    if bars.daily:
        dates = [str(d).replace("-", "") for d in bars.session_date]
    else:
        dates = [market.format_bar_time(int(t), format_date) for t in bars.ts_open_ns]
    start_text = market.format_bar_time(int(bars.ts_open_ns[0]), 1) if n else ""
    parts = [str(Out.HISTORICAL_DATA), str(req_id), start_text]
    parts += [market.format_bar_time(end_ns, 1), str(n)]
    o, h, lo, c, v = (a.tolist() for a in (bars.open, bars.high, bars.low, bars.close, bars.volume))
    for i in range(n):
        parts += [
            dates[i],
            price_text(o[i]),
            price_text(h[i]),
            price_text(lo[i]),
            price_text(c[i]),
            str(v[i]),
            f"{(h[i] + lo[i] + c[i]) / 300.0:.4f}",
            str(max(1, v[i] // 50)),
        ]
    payload = ("\0".join(parts) + "\0").encode()
    return len(payload).to_bytes(4, "big") + payload


# --------------------------------------------------------------------------------------------------
# Background-thread runner


class SimulatorThread:
    """A :class:`TwsSimulator` on its own event loop in a daemon thread."""

    def __init__(
        self, faults: Faults | None = None, host: str = "127.0.0.1", port: int = 0, **options: Any
    ) -> None:
        self.sim = TwsSimulator(host, port, faults, **options)
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def port(self) -> int:
        return self.sim.port

    @property
    def host(self) -> str:
        return self.sim.host

    @property
    def faults(self) -> Faults:
        return self.sim.faults

    @property
    def requests(self) -> list[HistoricalRequest]:
        return self.sim.requests

    def start(self, timeout: float = 10.0) -> SimulatorThread:
        self._thread = threading.Thread(target=self._run, name="tws-sim", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError("TWS simulator did not start")
        if self._error is not None:
            raise self._error
        return self

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop_event = asyncio.Event()
        try:
            await self.sim.start()
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        try:
            await self._stop_event.wait()
        finally:
            await self.sim.stop()

    def stop(self, timeout: float = 10.0) -> None:
        loop, event, thread = self._loop, self._stop_event, self._thread
        if loop is None or event is None or thread is None or not thread.is_alive():
            return
        with contextlib.suppress(RuntimeError):  # loop already closed
            loop.call_soon_threadsafe(event.set)
        thread.join(timeout)

    def __enter__(self) -> SimulatorThread:
        return self.start() if self._thread is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def run_simulator(
    faults: Faults | None = None, host: str = "127.0.0.1", port: int = 0, **options: Any
) -> Iterator[SimulatorThread]:
    """``with run_simulator(Faults(...)) as sim:`` — a running simulator on ``sim.port``."""
    handle = SimulatorThread(faults, host, port, **options)
    handle.start()
    try:
        yield handle
    finally:
        handle.stop()
