"""The TWS simulator server: a loopback listener, its request log and the symbols it knows.

One :class:`TwsSimulator` listens on a loopback port and runs one
:class:`~ntrader.ibkr.sim.connection.Connection` per client socket (handshake, startup, dispatch),
whose data requests :mod:`ntrader.ibkr.sim.handlers` answers from :mod:`ntrader.ibkr.sim.market`,
with the faults of :class:`~ntrader.ibkr.sim.faults.Faults`. The server owns what the connections
share: the fault config, the pacing tracker, the client ids in use, contract resolution and the log
of historical requests (:class:`HistoricalRequest`). :func:`~ntrader.ibkr.sim.runner.run_simulator`
runs one in a background thread for synchronous code and tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from loguru import logger

from ntrader.ibkr.sim import market
from ntrader.ibkr.sim.connection import Connection
from ntrader.ibkr.sim.corporate import Dividend, Split
from ntrader.ibkr.sim.faults import (
    CONNECTIVITY_LOST_MESSAGE,
    CONNECTIVITY_RESTORED_MESSAGE,
    Faults,
    PacingRules,
    PacingTracker,
)
from ntrader.ibkr.sim.market import SymbolInfo
from ntrader.ibkr.sim.protocol import SERVER_VERSION, ContractFields, error_message
from ntrader.sessions import VENUE_CALENDARS

DEFAULT_ACCOUNT = "DU1234567"


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
    (default ``time.time``) is "now" for an empty endDateTime, caps data at the present and is
    the moment TRADES/ADJUSTED_LAST answers are adjusted as of for ``corporate_actions``
    (:mod:`ntrader.ibkr.sim.corporate`; a test may add some while the simulator runs).
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
        corporate_actions: Iterable[Split | Dividend] = (),
    ) -> None:
        self.host = host
        self._port = port
        self.faults = faults if faults is not None else Faults()
        self.clock = clock
        self.wall_clock = wall_clock
        self.corporate_actions: list[Split | Dividend] = list(corporate_actions)
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
        self._connections: set[Connection] = set()
        self._client_ids: dict[int, Connection] = {}
        self._lock = threading.Lock()
        self._requests: list[HistoricalRequest] = []
        self._seq = 0
        self.restarted = False  # the restart fault happened (once per simulator)
        self._down_until: float | None = None
        self.silent = False  # restart_keep_socket: historical requests go unanswered

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

    def record_request(self, **fields: Any) -> HistoricalRequest:
        """Log a newly received historical request (outcome pending)."""
        with self._lock:
            self._seq += 1
            req = HistoricalRequest(seq=self._seq, clock=self.clock(), **fields)
            self._requests.append(req)
            return req

    def finish_request(self, req: HistoricalRequest, outcome: str, **fields: Any) -> None:
        """Set a logged request's outcome (and other fields) and log the request."""
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

    def restart(self, seconds: float, keep_socket: bool = False) -> None:
        """IB Gateway's nightly restart: error 1100 to every connection, all closed, and new
        connections closed at once for ``seconds`` (fault ``restart_after``). ``keep_socket``:
        the connections stay, unanswered, until 1102 after ``seconds``."""
        self.restarted = True
        self._down_until = self.clock() + seconds
        logger.info(f"tws_sim: restarting (down for {seconds:g} s, keep_socket={keep_socket})")
        for conn in list(self._connections):
            conn.send(error_message(-1, 1100, CONNECTIVITY_LOST_MESSAGE))
            if not keep_socket:
                conn.close()
        if keep_socket:
            self.silent = True
            asyncio.get_running_loop().call_later(seconds, self._restored)

    def _restored(self) -> None:
        self.silent, self._down_until = False, None
        logger.info("tws_sim: connectivity restored")
        for conn in list(self._connections):
            conn.send(error_message(-1, 1102, CONNECTIVITY_RESTORED_MESSAGE))

    def end_restart(self) -> None:
        """Serve again now (a test's shortcut through a long restart)."""
        self._down_until = None

    async def _on_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._down_until is not None and self.clock() < self._down_until and not self.silent:
            logger.info("tws_sim: connection closed (restarting)")
            writer.close()
            return
        conn = Connection(self, reader, writer)
        conn.task = asyncio.current_task()
        self._connections.add(conn)
        try:
            await conn.run()
        finally:
            self._connections.discard(conn)

    def claim_client_id(self, client_id: int, conn: Connection) -> bool:
        """Register ``conn`` as ``client_id``; False if the id is taken or faulted as in use."""
        if client_id in self.faults.client_id_in_use or client_id in self._client_ids:
            return False
        self._client_ids[client_id] = conn
        return True

    def release_client_id(self, conn: Connection) -> None:
        """Forget ``conn``'s client id (if it still holds it)."""
        if conn.client_id is not None and self._client_ids.get(conn.client_id) is conn:
            del self._client_ids[conn.client_id]
