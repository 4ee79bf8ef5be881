"""CLI: ``python -m ntrader.ibkr.sim [--host H] [--port P] [--fault name=value ...]``.

Prints ``TWS simulator listening on HOST:PORT`` once ready and serves until SIGINT/SIGTERM, then
exits 0. Faults: pacing, disconnect_after, timeout_every, no_data_sessions, unknown_symbols,
client_id_in_use, delay_ms, farm_down, restart_after / restart_s / restart_keep_socket (lists
comma-separated, dates YYYY-MM-DD). Corporate actions
(``--action split:AAPL:2024-06-10:4``, ``--action dividend:AAPL:2024-05-10:0.24``) are answered as
of the simulator's clock (``--now 2024-06-14T17:00`` starts it there; it runs on).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import signal
import sys
import time
from collections.abc import Callable
from zoneinfo import ZoneInfo

from loguru import logger

from ntrader.ibkr.sim.corporate import parse_action
from ntrader.ibkr.sim.faults import Faults
from ntrader.ibkr.sim.market import TZ
from ntrader.ibkr.sim.server import TwsSimulator


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m ntrader.ibkr.sim",
        description="Loopback TWS API simulator serving deterministic historical bars.",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=7497, help="port to bind, 0 = any (default 7497)")
    p.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help=f"inject a fault (repeatable); names: {', '.join(Faults.names())}",
    )
    p.add_argument(
        "--symbols",
        default="",
        help="extra comma-separated symbols to serve with synthetic definitions (NASDAQ)",
    )
    p.add_argument("--account", default="DU1234567", help="managed account id to report")
    p.add_argument(
        "--action",
        action="append",
        default=[],
        metavar="KIND:SYMBOL:DATE:VALUE",
        help="a corporate action (repeatable): split:AAPL:2024-06-10:4, "
        "dividend:AAPL:2024-05-10:0.24",
    )
    p.add_argument(
        "--now",
        default="",
        metavar="YYYY-MM-DD[THH:MM]",
        help="the simulator's clock starts here (New York time) and runs on (default: real time)",
    )
    p.add_argument(
        "--log-level", default="INFO", help="loguru level for the request log (default INFO)"
    )
    return p


async def _serve(sim: TwsSimulator) -> int:
    await sim.start()
    print(f"TWS simulator listening on {sim.host}:{sim.port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await sim.stop()
    return 0


def _clock_from(text: str) -> Callable[[], float]:
    """``time.time``, or a clock that starts at ``text`` (New York time) and runs on."""
    if not text:
        return time.time
    start = dt.datetime.fromisoformat(text)
    if start.tzinfo is None:
        start = start.replace(tzinfo=ZoneInfo(TZ))
    offset = start.timestamp() - time.time()
    return lambda: time.time() + offset


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        faults = Faults.parse(args.fault)
        actions = [parse_action(a) for a in args.action]
        wall_clock = _clock_from(args.now)
    except ValueError as exc:
        parser.error(str(exc))
    logger.remove()
    logger.add(sys.stderr, level=args.log_level.upper())
    sim = TwsSimulator(
        args.host,
        args.port,
        faults,
        account=args.account,
        corporate_actions=actions,
        wall_clock=wall_clock,
        extra_symbols=[s for s in args.symbols.split(",") if s.strip()],
    )
    try:
        return asyncio.run(_serve(sim))
    except OSError as exc:
        print(f"TWS simulator cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
