"""A fetch's plan, said before any request is sent: per bar type the sessions missing and the
requests they take, the total, and the least wall time IB's pacing rules allow for them
(``PacingRules``: 60 requests per 10 minutes, 5 per contract per 2 s; answers taking no time, so
the real run is this plus IB's answer times). ``fetch.dry_run=true`` (``make fetch … PLAN=1``)
prints the plan and stops: nothing is sent, nothing written, no connection opened.
"""

from __future__ import annotations

from collections import deque

from ntrader.ibkr.pacing import PacingRules
from ntrader.ibkr.report import FetchReport


def implied_wall_s(contracts: list[str], rules: PacingRules | None = None) -> float:
    """Least time from the first to the last send of requests for ``contracts`` (one key per
    request, in send order) under IB's pacing rules: the overall window and the per-contract
    burst limit (distinct requests, zero-latency answers)."""
    rules = rules or PacingRules()
    times: list[float] = []
    per: dict[str, deque[float]] = {}
    for key in contracts:
        t = times[-1] if times else 0.0
        if len(times) >= rules.max_requests:
            t = max(t, times[-rules.max_requests] + rules.window_s)
        mine = per.setdefault(key, deque(maxlen=rules.per_contract_max))
        if len(mine) == rules.per_contract_max:
            t = max(t, mine[0] + rules.per_contract_window_s)
        times.append(t)
        mine.append(t)
    return times[-1] if times else 0.0


def duration(seconds: float) -> str:
    """``0:42``, ``19:58``, ``1:03:56`` (h:mm:ss when an hour or more)."""
    s = round(seconds)
    h, rest = divmod(s, 3600)
    m, sec = divmod(rest, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


def plan_line(reports: list[FetchReport], rules: PacingRules) -> str:
    """``Plan: 122 requests for 122 missing session(s) of 2 bar type(s) ≈ 20:00 at least …``;
    ``reports``: per bar type in fetch order, with ``planned_requests`` set."""
    planned = [(r.bar_type.rsplit("-", 4)[0], r.planned_requests) for r in reports]
    sessions = sum(r.sessions_missing for r in reports)
    keys = [key for key, n in planned for _ in range(n)]
    n = len(keys)
    if not n:
        return f"Plan: 0 requests: the catalog holds every session asked ({len(planned)} bar types)"
    limit = f"{rules.max_requests} per {rules.window_s / 60:g} min"
    return (
        f"Plan: {n:,} request{'s' if n > 1 else ''} for {sessions:,} missing session(s) of "
        f"{sum(1 for _, k in planned if k)} bar type(s): at least "
        f"{duration(implied_wall_s(keys, rules))} at IB's pacing limit of {limit} (plus IB's "
        "answer times)"
    )


def plan_summary(reports: list[FetchReport], rules: PacingRules, dry_run: bool) -> dict:
    """``summary.json`` ``plan``: requests planned and the least seconds IB's pacing allows."""
    keys = [r.bar_type.rsplit("-", 4)[0] for r in reports for _ in range(r.planned_requests)]
    return {
        "dry_run": dry_run,
        "requests": len(keys),
        "sessions_missing": sum(r.sessions_missing for r in reports),
        "pacing_s": round(implied_wall_s(keys, rules), 1),
    }
