"""One client connection of the TWS simulator: handshake, startup and message dispatch.

A :class:`Connection` does the handshake, answers ``startApi`` with managedAccounts + nextValidId
and the data farms' status messages (2104/2106/2158 "OK", or 2103/2105/2157 "broken" under the
``farm_down`` fault) or with error 326 for a client id in use, answers ib_async's startup requests
(positions, open/completed orders, account updates, executions, ...) with their end markers and
hands the data requests to :mod:`ntrader.ibkr.sim.handlers`. It also tracks its historical
requests still open (they count against the pacing rules until answered, cancelled or the
connection closes).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import zoneinfo
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from loguru import logger

from ntrader.ibkr.sim import handlers, market
from ntrader.ibkr.sim.faults import CLIENT_ID_IN_USE_MESSAGE
from ntrader.ibkr.sim.protocol import (
    MIN_CLIENT_VERSION,
    FieldReader,
    In,
    Out,
    ProtocolError,
    encode,
    error_message,
    read_frame,
    read_handshake,
    split_fields,
)

if TYPE_CHECKING:
    from ntrader.ibkr.sim.server import TwsSimulator

FARM_STATUS = (
    (2104, "Market data farm connection is OK:usfarm"),
    (2106, "HMDS data farm connection is OK:ushmds"),
    (2158, "Sec-def data farm connection is OK:secdefnj"),
)
FARM_BROKEN = (  # fault farm_down: IB Gateway's messages while its data farms are down
    (2103, "Market data farm connection is broken:usfarm"),
    (2105, "HMDS data farm connection is broken:ushmds"),
    (2157, "Sec-def data farm connection is broken:secdefnj"),
)


class Connection:
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
        self.sim.release_client_id(self)
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
            task = asyncio.create_task(handlers.historical_data(self, f))
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
        if not self.sim.claim_client_id(client_id, self):
            logger.info(f"tws_sim: client id {client_id} refused (in use) from {self.peer}")
            self.send(error_message(-1, 326, CLIENT_ID_IN_USE_MESSAGE))
            self.close()
            return
        self.client_id = client_id
        self.send(encode(Out.MANAGED_ACCTS, 1, self.sim.account))
        self.send(encode(Out.NEXT_VALID_ID, 1, 1))
        for code, text in FARM_BROKEN if self.sim.faults.farm_down else FARM_STATUS:
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

    _HANDLERS: ClassVar[dict[int, Callable[[Connection, FieldReader], None]]] = {
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
        In.CANCEL_HISTORICAL_DATA: handlers.cancel_historical_data,
        In.REQ_CONTRACT_DETAILS: handlers.contract_details,
        In.REQ_HEAD_TIMESTAMP: handlers.head_timestamp,
        In.CANCEL_HEAD_TIMESTAMP: _ignore,
        In.REQ_MARKET_DATA_TYPE: _ignore,
        In.REQ_AUTO_OPEN_ORDERS: _ignore,
    }

    # -- historical requests still open (counted by the pacing tracker) --------------------------

    def opened(self, req_id: int) -> None:
        """A historical request passed the checks: it counts as open until answered."""
        self._open.add(req_id)
        self.sim.pacing.open += 1

    def answered(self, req_id: int) -> None:
        """The request got its answer (bars or an error): no longer open."""
        if req_id in self._open:
            self._open.discard(req_id)
            self.sim.pacing.open -= 1

    def cancel(self, req_id: int) -> None:
        """cancelHistoricalData: an open request is no longer open and gets no answer."""
        if req_id in self._open:
            self._open.discard(req_id)
            self.sim.pacing.open -= 1
            self._cancelled.add(req_id)

    def take_cancelled(self, req_id: int) -> bool:
        """Whether ``req_id`` was cancelled (forgetting it)."""
        if req_id in self._cancelled:
            self._cancelled.discard(req_id)
            return True
        return False
