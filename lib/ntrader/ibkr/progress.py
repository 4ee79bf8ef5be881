"""The fetch's progress bar (tqdm): requests done of those planned, an ETA from IB's pacing
schedule instead of the recent rate, and a pacing wait shown as such.

A rate-based ETA is wrong in both directions under IB's 60-requests-per-10-minutes rule: fast
answers make it promise minutes, then the bar freezes for nine of them, then it promises an hour.
Here the ETA is the pacing schedule of the requests left, from the send times of the last window
(:meth:`PacingGuard.recent`), or the requests left times the mean answer time when that is
longer. A wait of ``NOTE_S`` or more is logged (``waiting 9:31 for IB pacing …``) and shown on
the bar. Log lines go above the bar: the console sink writes through ``tqdm.write`` on a terminal
(``ntrader.runs.logs``); under cron the bar is off and each request is a log line.
"""

from __future__ import annotations

import time
from types import TracebackType

from loguru import logger
from tqdm import tqdm

from ntrader.ibkr.fetchplan import duration
from ntrader.ibkr.pacing import PacingGuard

NOTE_S = 5.0  # pacing waits at least this long are said (shorter ones are IB's 2 s bursts)
BAR_FORMAT = "{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}{postfix}]"


def pacing_eta(recent: list[float], now: float, left: int, max_requests: int, window_s: float):
    """Seconds until the last of ``left`` more sends under the window rule, given the send times
    of the last window (``recent``, oldest first)."""
    times, t = list(recent), now
    for _ in range(left):
        if len(times) >= max_requests:
            t = max(t, times[-max_requests] + window_s)
        times.append(t)
    return max(0.0, t - now) if left else 0.0


class FetchProgress:
    def __init__(self, total: int, guard: PacingGuard, show: bool) -> None:
        self.guard, self.t0, self.n = guard, time.monotonic(), 0
        self.bar = tqdm(
            total=total, unit="req", desc="fetch", disable=not show, bar_format=BAR_FORMAT
        )

    @property
    def total(self) -> int:
        return int(self.bar.total or 0)

    @total.setter
    def total(self, value: int) -> None:  # a repair's requests were not planned
        self.bar.total = value

    def waiting(self, seconds: float) -> None:
        """Before a send the guard holds back for ``seconds``."""
        if seconds >= NOTE_S:
            r = self.guard.rules
            text = f"waiting {duration(seconds)} for IB pacing"
            logger.info(f"{text} ({r.max_requests} requests per {r.window_s / 60:g} min)")
            self.bar.set_postfix_str(text, refresh=True)

    def update(self, n: int = 1) -> None:
        """``n`` more requests answered; the ETA of the rest."""
        self.n += n
        left = max(0, self.total - self.n)
        r = self.guard.rules
        clock = self.guard.clock.now()
        paced = pacing_eta(self.guard.recent(), clock, left, r.max_requests, r.window_s)
        answers = (time.monotonic() - self.t0) / max(1, self.n) * left
        eta = max(paced, answers) if left else 0.0
        self.bar.set_postfix_str(f"ETA {duration(eta)} at IB's pacing", refresh=False)
        self.bar.update(n)

    def __enter__(self) -> FetchProgress:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.bar.close()
