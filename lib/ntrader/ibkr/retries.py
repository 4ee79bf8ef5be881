"""What a fetch does when a request fails: retries, and riding out IB's nightly reset.

Timeouts and pacing violations are retried ``ibkr.retries`` times with a growing pause (tenacity;
a pacing violation also holds back every send for ``pacing_pause_s``).

IB Gateway restarts once a day (its "auto restart" time) and IB's servers have a nightly
maintenance window: the API socket closes and the port refuses connections for a minute or more, or
the socket stays up and TWS sends error 1100 "Connectivity between IB and Trader Workstation has
been lost" until 1101/1102 say it is back. For a cron fetch at night either is routine, not a
failure. So a disconnect does not use up a request's ``ibkr.retries``: the fetch logs one WARNING
line saying what happened and how long it will wait, tries to reconnect with a growing pause (1 s
doubling to 30 s; on an open socket it checks each second for 1101/1102), and on success logs how
long IB was away and goes on with the request it was on — the chunks written before are in the
catalog already. Only when the connection is not back within ``ibkr.reconnect_window_s`` (default
900 s) does the fetch fail (exit 3, "rerun the same command"), and so does a connection that drops
again right after each reconnect (``ibkr.retries`` outages for one request).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from loguru import logger
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    retry_if_not_exception_type,
    stop_after_attempt,
)
from tenacity.wait import wait_exponential_jitter

from ntrader.errors import ConnectionFailure
from ntrader.ibkr.client import Disconnected, PacingViolation, RetryableIbError
from ntrader.ibkr.fetchplan import duration

if TYPE_CHECKING:
    from ntrader.ibkr.client import IbkrSession
    from ntrader.ibkr.pacing import Clock
    from ntrader.ibkr.report import FetchReport


MAX_PAUSE_S = 30.0


@dataclass
class Outage:
    """One lost connection: what IB said, when (clock seconds), how long until it was back."""

    cause: str
    waited_s: float
    attempts: int

    def as_dict(self) -> dict[str, object]:
        return {"cause": self.cause, "waited_s": round(self.waited_s, 1), "attempts": self.attempts}


async def ride_out(session: IbkrSession, clock: Clock, exc: Disconnected, where: str) -> Outage:
    """Wait until ``session`` is connected and IB's connectivity is back, bounded by
    ``session.settings.reconnect_window_s``; the outage, or ConnectionFailure (exit 3)."""
    s = session.settings
    window = s.reconnect_window_s
    cause = str(exc) or type(exc).__name__
    logger.warning(
        f"lost the connection to IBKR at {s.endpoint} ({cause}) during {where}; IB Gateway's "
        f"nightly restart or IB's reset? reconnecting for up to {duration(window)} "
        "(ibkr.reconnect_window_s)"
    )
    t0 = clock.now()
    pause, attempts, last = 1.0, 0, cause
    while True:
        attempts += 1
        try:
            if await session.usable():
                waited = clock.now() - t0
                logger.info(
                    f"IBKR at {s.endpoint} is back after {duration(waited)} ({attempts} "
                    f"attempt{'s' if attempts > 1 else ''}); resuming {where}"
                )
                return Outage(cause, waited, attempts)
            last = session.lost or "connectivity not restored yet"
        except ConnectionFailure as err:
            last = str(err)
        left = window - (clock.now() - t0)
        if left <= 0:
            raise ConnectionFailure(
                f"lost the connection to IBKR at {s.endpoint} ({cause}) and it was not back "
                f"within {duration(window)} (ibkr.reconnect_window_s): {last}",
                hint="check IB Gateway/TWS; rerun the same command: completed chunks are saved "
                "(ibkr.reconnect_window_s=1800 waits longer)",
            )
        if session.ib.isConnected():  # waiting for 1102: free to check, check each second
            await clock.sleep(min(1.0, left))
        else:  # reconnecting: back off
            await clock.sleep(min(pause, left))
            pause = min(MAX_PAUSE_S, pause * 2)


async def with_retries[T](
    call: Callable[[], Awaitable[T]],
    session: IbkrSession,
    clock: Clock,
    report: FetchReport,
    *,
    on_pacing: Callable[[], None],
    where: Callable[[], str],
) -> T:
    """``call`` with ``ibkr.retries`` attempts on timeouts and pacing errors (counted in
    ``report.retries``); a lost connection is ridden out (:func:`ride_out`, in
    ``report.outages``) and the call made again, up to ``ibkr.retries`` outages per call."""
    settings = session.settings
    outages = 0
    while True:
        try:
            return await _retrying(call, settings.retries, clock, report, on_pacing)
        except Disconnected as exc:
            if outages >= settings.retries:
                raise ConnectionFailure(
                    f"the connection to IBKR at {settings.endpoint} dropped again after each of "
                    f"{outages} reconnects: {exc}",
                    hint="check IB Gateway/TWS (another program with the same client id?); "
                    "rerun the same command: completed chunks are saved",
                ) from exc
            outages += 1
            outage = await ride_out(session, clock, exc, where())
            report.outages.append(outage.as_dict())


async def _retrying[T](
    call: Callable[[], Awaitable[T]],
    retries: int,
    clock: Clock,
    report: FetchReport,
    on_pacing: Callable[[], None],
) -> T:
    def before_sleep(state: RetryCallState) -> None:
        report.retries += 1
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, PacingViolation):
            on_pacing()
        logger.warning(f"{type(exc).__name__}: {exc}; retry {state.attempt_number}/{retries - 1}")

    retrying = AsyncRetrying(
        stop=stop_after_attempt(max(1, retries)),
        wait=wait_exponential_jitter(initial=1, max=60, jitter=1),
        retry=retry_if_exception_type(RetryableIbError) & retry_if_not_exception_type(Disconnected),
        sleep=clock.sleep,
        before_sleep=before_sleep,
        reraise=True,
    )
    try:
        async for attempt in retrying:
            with attempt:
                return await call()
    except Disconnected:
        raise
    except RetryableIbError as exc:
        raise ConnectionFailure(
            f"IBKR request failed {retries} times: {exc}",
            hint="rerun later (completed chunks are saved); raise ibkr.request_timeout or "
            "ibkr.retries if IB is slow",
        ) from exc
    raise AssertionError("unreachable")
