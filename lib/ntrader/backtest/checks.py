"""Did the backtest do what was asked? The checks after every run, and what they report.

NautilusTrader stops a backtest when an account error is raised mid-run (a CASH account's
balance would go negative, a margin call): ``BacktestEngine._run`` catches it, logs one ERROR
line and returns as if the data had ended — ``run()`` raises nothing and the reports look like a
finished run. It also keeps no record of why it stopped. So:

* :func:`account_errors` records every ``AccountError`` constructed while the engine runs (the
  one that stopped it is the last), without changing what Nautilus does with it;
* :func:`engine_stop` compares the bars the engine processed with the bars it was given and
  takes the stop time from the engine's clock;
* :func:`order_outcomes` counts rejected and denied orders with their most common reasons.

:func:`problems` turns those into the failed checks of ``summary.json`` (``status: incomplete``,
exit 1): an early stop (unless ``checks.allow_early_stop``) and more rejected/denied orders than
``checks.max_rejected_pct``. See ``docs/upstream-nautilus-silent-stop.md``.
"""

from __future__ import annotations

import contextlib
import re
from collections import Counter
from collections.abc import Iterator, Mapping
from typing import Any

from loguru import logger
from nautilus_trader.backtest.engine import BacktestEngine
from nautilus_trader.model.events import OrderDenied, OrderRejected

from ntrader.backtest.spec import RunChecks
from ntrader.catalog.inventory import iso

TOP_REASONS = 3


@contextlib.contextmanager
def account_errors() -> Iterator[list[Exception]]:
    """Every ``AccountError`` (``AccountBalanceNegative``, ``AccountMarginExceeded``) created
    while the block runs, in order. The exceptions are raised and handled exactly as before."""
    from nautilus_trader.accounting.error import AccountError

    seen: list[Exception] = []
    had_own = "__init__" in AccountError.__dict__
    original = AccountError.__init__

    def init(self: Exception, *args: Any, **kwargs: Any) -> None:
        seen.append(self)
        original(self, *args, **kwargs)

    AccountError.__init__ = init  # type: ignore[method-assign,assignment]
    try:
        yield seen
    finally:
        if had_own:
            AccountError.__init__ = original  # type: ignore[method-assign]
        else:
            del AccountError.__init__


def engine_stop(engine: BacktestEngine, loaded: int, errors: list[Exception]) -> dict[str, Any]:
    """Bars processed vs loaded; for an early stop, when (the engine clock) and why."""
    processed = int(engine.iteration)
    out: dict[str, Any] = {
        "bars_loaded": int(loaded),
        "bars_processed": processed,
        "stopped_early": processed < loaded,
    }
    if processed < loaded:
        at = int(engine.kernel.clock.timestamp_ns())
        out["stopped_at"] = iso(at) if at else None
        out["stopped_at_ns"] = at
        out["stop_reason"] = (
            str(errors[-1])
            if errors
            else "NautilusTrader force-stopped the backtest (a strategy or component asked "
            "the system to shut down; the NautilusTrader log says which)"
        )
        out["stop_error"] = type(errors[-1]).__name__ if errors else None
    return out


_OBJECT_REPR = re.compile(r"\b[A-Z]\w*\((?:[^()]|\([^()]*\))*\)")
_NUMBER = re.compile(r"(?<![A-Za-z])-?\d[\d,]*(?:\.\d+)?")


def reason_kind(reason: str) -> str:
    """A rejection reason without the parts that differ per order (object dumps, amounts), so
    that reasons of one kind count together."""
    text = _OBJECT_REPR.sub("…", str(reason))
    return " ".join(_NUMBER.sub("#", text).split())[:200]


def order_outcomes(engine: BacktestEngine, venue: Any = None) -> dict[str, Any]:
    """Rejected (by the venue) and denied (by the risk engine) orders of ``venue`` (all when
    None) and their top reasons."""
    rejected = denied = 0
    kinds: Counter[str] = Counter()
    example: dict[str, str] = {}
    for order in engine.cache.orders():
        if venue is not None and order.instrument_id.venue != venue:
            continue
        for e in order.events:
            if isinstance(e, OrderRejected | OrderDenied):
                if isinstance(e, OrderRejected):
                    rejected += 1
                else:
                    denied += 1
                k = f"{'rejected' if isinstance(e, OrderRejected) else 'denied'}: "
                k += reason_kind(str(e.reason))
                kinds[k] += 1
                example.setdefault(k, str(e.reason)[:500])
                break
    top = [
        {"reason": k, "count": n, "example": example[k]} for k, n in kinds.most_common(TOP_REASONS)
    ]
    return {"orders_rejected": rejected, "orders_denied": denied, "rejection_reasons": top}


def problems(
    summary: Mapping[str, Any], stop: Mapping[str, Any], checks: RunChecks
) -> list[dict[str, Any]]:
    """The failed checks of a finished run (empty: ok), each ``{check, message, hint}``; also
    logs a WARNING for any rejected or denied order, even below the threshold."""
    out: list[dict[str, Any]] = []
    if stop.get("stopped_early"):
        msg = (
            f"the engine stopped at {stop['stopped_at']} after {stop['bars_processed']:,} of "
            f"{stop['bars_loaded']:,} bars: {stop['stop_reason']}"
        )
        if checks.allow_early_stop:
            logger.warning(f"{msg} (allowed by checks.allow_early_stop)")
        else:
            out.append({"check": "stopped_early", "message": msg, "hint": _stop_hint(stop)})
    orders = int(summary.get("orders") or 0)
    bad = int(summary.get("orders_rejected") or 0) + int(summary.get("orders_denied") or 0)
    if bad:
        pct = 100.0 * bad / orders if orders else 100.0
        top = summary["rejection_reasons"][0]
        msg = (
            f"{bad:,} of {orders:,} orders ({pct:.1f}%) were rejected or denied; most often "
            f"({top['count']:,}x) {top['reason']}"
        )
        logger.warning(msg)
        if pct > checks.max_rejected_pct:
            out.append(
                {
                    "check": "rejected_orders",
                    "message": f"{msg} — above checks.max_rejected_pct={checks.max_rejected_pct:g}",
                    "hint": _rejection_hint(top["reason"]),
                }
            )
    return out


def _stop_hint(stop: Mapping[str, Any]) -> str:
    if stop.get("stop_error") == "AccountBalanceNegative":
        return (
            'the account ran out of cash: trade smaller (ARGS="strategy.params.trade_size=10"),'
            ' start with more (ARGS="venue.starting_balance=1000000") or use a margin account '
            '(ARGS="venue=margin"); or accept a partial run (ARGS="checks.allow_early_stop=true")'
        )
    if stop.get("stop_error") == "AccountMarginExceeded":
        return (
            'a margin call: trade smaller (ARGS="strategy.params.trade_size=10") or allow more '
            'leverage (ARGS="venue=margin venue.leverage=2")'
        )
    return 'see nautilus.log in the run folder; ARGS="checks.allow_early_stop=true" accepts it'


def _rejection_hint(reason: str) -> str:
    if "SHORT SELLING" in reason.upper() or "CASH account" in reason:
        return (
            "the strategy sells short on a CASH account: use a margin account "
            '(ARGS="venue=margin") or a long-only strategy (STRATEGY=ema_cross_long_only); '
            "orders.csv lists every rejected order"
        )
    return (
        "orders.csv lists every rejected/denied order with its reason; raise "
        'ARGS="checks.max_rejected_pct=100" to accept them'
    )
