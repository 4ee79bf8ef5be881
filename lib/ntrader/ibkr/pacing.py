"""Client-side pacing of Interactive Brokers historical-data requests.

IB's historical-data limits (TWS API docs, "Historical Data Limitations"); breaking one earns
error 162 ("pacing violation") and, repeated, a disconnect:

* at most 60 historical requests in any 10-minute window;
* no identical request (same contract, end time, duration, bar size, what-to-show, RTH flag)
  within 15 seconds;
* fewer than 6 requests for the same contract (+ exchange + tick type) within 2 seconds;
* at most 50 simultaneously open historical requests.

ib_async's own 45 messages/second throttle is unrelated to these rules. :class:`PacingGuard`
enforces all four *before* a request is sent: ``await guard.acquire(contract_key, request_key)``
sleeps until the send is allowed and records it; ``guard.release()`` when the request finished
(answer, error or timeout); ``guard.penalize(seconds)`` after a server-side pacing error holds every
send. Time comes from a :class:`Clock`, so the guard is tested on a :class:`FakeClock` without
waiting.

Every window is treated as closed (a send exactly ``window_s`` after another still counts in the
same window) and every wait is padded with ``safety_s``, so rounding and clock skew of up to
``safety_s`` never produce a violation.
"""

from __future__ import annotations

import asyncio
import math
import selectors
import time
from bisect import bisect_left
from collections import deque
from collections.abc import Coroutine, Hashable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from ntrader.errors import InputError

# A wait shorter than this counts as "now": it keeps float rounding (T - now + now != T) from
# looping on sub-nanosecond sleeps. It is far below PacingRules.safety_s, so never a violation.
_EPSILON_S = 1e-9

T = TypeVar("T")
_FileObj = Any  # selectors' file object: an int fd or anything with fileno()


class Clock(Protocol):
    """Monotonic seconds and a way to sleep on the same time line."""

    def now(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class RealClock:
    """``time.monotonic`` and ``asyncio.sleep``."""

    def now(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class FakeClock:
    """Simulated seconds starting at ``start``; nothing ever really waits.

    ``run(coro)`` runs a coroutine on an event loop whose time *is* this clock: whenever every
    task is blocked, time jumps to the next due timer, so concurrent sleepers (the guard, delayed
    releases, ...) wake in exactly the order and at exactly the times real ones would. Outside such
    a loop ``sleep(s)`` just advances the clock by ``s`` and yields once. ``advance(s)`` moves time
    from synchronous code.
    """

    def __init__(self, start: float = 0.0) -> None:
        self._now = float(start)

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        if seconds > 0:
            self._now += seconds

    async def sleep(self, seconds: float) -> None:
        loop = asyncio.get_running_loop()
        if isinstance(loop, _VirtualTimeLoop) and loop.clock is self:
            await asyncio.sleep(max(0.0, seconds))
        else:
            self.advance(seconds)
            await asyncio.sleep(0)

    def run(self, main: Coroutine[Any, Any, T]) -> T:
        """``asyncio.run(main)`` on an event loop driven by this clock."""
        return asyncio.run(main, loop_factory=lambda: _VirtualTimeLoop(self))


class _VirtualSelector(selectors.BaseSelector):
    """A real selector that never blocks: a wait of ``timeout`` advances the fake clock instead."""

    def __init__(self, clock: FakeClock) -> None:
        self._clock = clock
        self._inner = selectors.DefaultSelector()

    def register(self, fileobj: _FileObj, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._inner.register(fileobj, events, data)

    def unregister(self, fileobj: _FileObj) -> selectors.SelectorKey:
        return self._inner.unregister(fileobj)

    def modify(self, fileobj: _FileObj, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._inner.modify(fileobj, events, data)

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready = self._inner.select(0)
        if ready:
            return ready
        if timeout is None:
            raise RuntimeError("FakeClock loop deadlock: every task waits and no timer is due")
        self._clock.advance(timeout)
        return []

    def get_map(self) -> Mapping[_FileObj, selectors.SelectorKey]:
        return self._inner.get_map()

    def close(self) -> None:
        self._inner.close()


class _VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An asyncio loop whose ``time()`` is a FakeClock (see FakeClock.run)."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        super().__init__(_VirtualSelector(clock))

    def time(self) -> float:
        return self.clock.now()


@dataclass(frozen=True)
class PacingRules:
    """IB's historical-data pacing limits (defaults) plus the safety margin added to every wait."""

    max_requests: int = 60
    window_s: float = 600.0
    identical_gap_s: float = 15.0
    per_contract_max: int = 5
    per_contract_window_s: float = 2.0
    max_open: int = 50
    safety_s: float = 0.05

    def __post_init__(self) -> None:
        if min(self.max_requests, self.per_contract_max, self.max_open) < 1:
            raise InputError(
                f"pacing limits must be at least 1: {self}", hint="check the pacing config"
            )
        if min(self.window_s, self.identical_gap_s, self.per_contract_window_s) < 0:
            raise InputError(f"pacing windows must not be negative: {self}")
        if not self.safety_s >= 1e-6:
            raise InputError(
                f"pacing safety_s must be at least 1e-6 s, got {self.safety_s}",
                hint="the margin keeps sends off the window boundaries; 0.05 is the default",
            )


@dataclass(frozen=True)
class SendRecord:
    """One recorded send: clock time, keys, and the number of open requests including it."""

    t: float
    contract_key: str
    request_key: Hashable
    open_count: int


class PacingGuard:
    """Waits until an IB historical request may be sent without breaking any pacing rule.

    Safe for concurrent asyncio tasks of one event loop: ``acquire`` calls are served in FIFO
    order (one ``asyncio.Lock``), so a request that must wait also holds back the ones queued
    behind it. ``contract_key`` names the contract + exchange + tick type (what-to-show);
    ``request_key`` identifies identical requests (contract, end time, duration, bar size, what,
    useRTH). ``history`` keeps every send (``keep_history=False`` to skip) for :meth:`violations`.
    """

    def __init__(
        self, clock: Clock, rules: PacingRules = PacingRules(), *, keep_history: bool = True
    ) -> None:
        self.clock = clock
        self.rules = rules
        self.sent = 0
        self.waited_s = 0.0
        self.open = 0
        self.penalties = 0
        self.history: list[SendRecord] = []
        self._keep_history = keep_history
        self._hold_until = -math.inf
        self._recent: deque[float] = deque(maxlen=rules.max_requests)
        self._per_contract: dict[str, deque[float]] = {}
        self._last_identical: dict[Hashable, float] = {}
        self._lock = asyncio.Lock()
        self._released = asyncio.Event()

    # ----------------------------------------------------------------------------------------------
    # the rules

    def wait_time(self, contract_key: str, request_key: Hashable) -> float:
        """Seconds until this request may be sent (0: now; ``math.inf``: wait for a release)."""
        now = self.clock.now()
        self._prune(now)
        wait = self._time_wait(now, contract_key, request_key)
        if self.open >= self.rules.max_open:
            return math.inf
        return wait

    def _time_wait(self, now: float, contract_key: str, request_key: Hashable) -> float:
        r = self.rules
        earliest = self._hold_until
        if len(self._recent) >= r.max_requests:
            earliest = max(earliest, self._recent[0] + r.window_s + r.safety_s)
        per = self._per_contract.get(contract_key)
        if per is not None and len(per) >= r.per_contract_max:
            earliest = max(earliest, per[0] + r.per_contract_window_s + r.safety_s)
        last = self._last_identical.get(request_key)
        if last is not None:
            earliest = max(earliest, last + r.identical_gap_s + r.safety_s)
        wait = earliest - now
        return wait if wait > _EPSILON_S else 0.0

    def _prune(self, now: float) -> None:
        """Forget per-contract and identical-request times that can no longer bind."""
        r = self.rules
        if len(self._per_contract) > 64:
            horizon = now - r.per_contract_window_s - r.safety_s
            self._per_contract = {k: q for k, q in self._per_contract.items() if q[-1] > horizon}
        if len(self._last_identical) > 256:
            horizon = now - r.identical_gap_s - r.safety_s
            self._last_identical = {k: t for k, t in self._last_identical.items() if t > horizon}

    # ----------------------------------------------------------------------------------------------
    # sending

    async def acquire(self, contract_key: str, request_key: Hashable) -> float:
        """Sleep (on the clock) until the request may be sent, record the send, return the wait.

        The caller must send right away and call :meth:`release` once the request finished.
        """
        async with self._lock:
            start = self.clock.now()
            while True:
                wait = self.wait_time(contract_key, request_key)
                if wait == 0.0:
                    break
                if math.isinf(wait):
                    self._released.clear()
                    await self._released.wait()
                else:
                    await self.clock.sleep(wait)
            now = self.clock.now()
            self._record(now, contract_key, request_key)
            waited = max(0.0, now - start)
            self.waited_s += waited
            return waited

    def recent(self) -> list[float]:
        """Send times of the last window (at most ``max_requests``, oldest first)."""
        return list(self._recent)

    def _record(self, now: float, contract_key: str, request_key: Hashable) -> None:
        r = self.rules
        self._recent.append(now)
        per = self._per_contract.get(contract_key)
        if per is None:
            per = self._per_contract[contract_key] = deque(maxlen=r.per_contract_max)
        per.append(now)
        self._last_identical[request_key] = now
        self.open += 1
        self.sent += 1
        if self._keep_history:
            self.history.append(SendRecord(now, contract_key, request_key, self.open))

    def release(self) -> None:
        """One open request finished (answer, error or timeout)."""
        if self.open > 0:
            self.open -= 1
        self._released.set()

    def penalize(self, seconds: float) -> None:
        """A server pacing error (162): hold every send for ``seconds`` from now."""
        if seconds > 0:
            self.penalties += 1
            self._hold_until = max(self._hold_until, self.clock.now() + seconds)

    # ----------------------------------------------------------------------------------------------
    # audit

    def violations(self, history: Iterable[SendRecord] | None = None) -> int:
        """Sends of ``history`` (default: this guard's) that break a rule of ``self.rules``.

        Windows are closed: two sends exactly ``window_s`` apart share a window. Each offending
        send counts once per rule it breaks.
        """
        return count_violations(self.history if history is None else history, self.rules)


def count_violations(history: Iterable[SendRecord], rules: PacingRules) -> int:
    """Re-check a send history against ``rules`` (no safety margin); see PacingGuard.violations."""
    sends = sorted(history, key=lambda s: s.t)
    times = [s.t for s in sends]
    bad = 0
    by_contract: dict[str, list[float]] = {}
    last_identical: dict[Hashable, float] = {}
    for i, s in enumerate(sends):
        # sends in the closed window [t - window, t], this one included
        if i + 1 - bisect_left(times, s.t - rules.window_s, 0, i + 1) > rules.max_requests:
            bad += 1
        mine = by_contract.setdefault(s.contract_key, [])
        mine.append(s.t)
        lo = bisect_left(mine, s.t - rules.per_contract_window_s)
        if len(mine) - lo > rules.per_contract_max:
            bad += 1
        prev = last_identical.get(s.request_key)
        if prev is not None and s.t - prev <= rules.identical_gap_s:
            bad += 1
        last_identical[s.request_key] = s.t
        if s.open_count > rules.max_open:
            bad += 1
    return bad
