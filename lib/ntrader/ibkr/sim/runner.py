"""The TWS simulator in a background thread, for synchronous code and tests.

:class:`SimulatorThread` runs a :class:`~ntrader.ibkr.sim.server.TwsSimulator` on its own event
loop in a daemon thread; :func:`run_simulator` is the context manager around it
(``with run_simulator(Faults(...)) as sim: ... sim.port``).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from typing import Any

from ntrader.ibkr.sim.faults import Faults
from ntrader.ibkr.sim.server import HistoricalRequest, TwsSimulator


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
