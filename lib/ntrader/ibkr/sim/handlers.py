"""The data requests the TWS simulator answers: contract details, head timestamps, historical bars.

Each handler reads one request's fields from a :class:`~ntrader.ibkr.sim.connection.Connection`,
resolves its contract through the server, applies the faults (pacing, dropped connections,
unanswered requests, sessions without data, latency), logs historical requests with their outcome
and sends the answer: bars from :func:`~ntrader.ibkr.sim.bar_requests.select_bars` in one
message 17, or the error TWS would send.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from loguru import logger

from ntrader.ibkr.sim import corporate, market
from ntrader.ibkr.sim.bar_requests import (
    HMDS,
    RequestInvalid,
    format_bar_time,
    parse_bar_size,
    parse_duration,
    parse_end,
    select_bars,
)
from ntrader.ibkr.sim.faults import NO_DATA_MESSAGE, NO_SECURITY_MESSAGE, PACING_MESSAGE
from ntrader.ibkr.sim.market import NS, BarSet, SymbolInfo
from ntrader.ibkr.sim.protocol import Field, FieldReader, Out, encode, error_message, price_text

if TYPE_CHECKING:
    from ntrader.ibkr.sim.connection import Connection

ORDER_TYPES = "ACTIVETIM,AD,ADJUST,ALERT,ALGO,ALLOC,AVGCOST,BASKET,DAY,GTC,LMT,LOC,MKT,MOC,STP"
VALID_EXCHANGES = "SMART,AMEX,NYSE,CBOE,PHLX,ISE,CHX,ARCA,ISLAND,BATS,IEX"
MARKET_RULES = "26,26,26,26,26,26,26,26,26,26,26"


# --------------------------------------------------------------------------------------------------
# Contract details and head timestamp


def contract_details(conn: Connection, f: FieldReader) -> None:
    f.int()  # version
    req_id = f.int()
    c = f.contract()
    info = conn.sim.resolve(c)
    if info is None:
        logger.info(f"tws_sim: contract details {c.describe()}: no security definition")
        conn.send(error_message(req_id, 200, NO_SECURITY_MESSAGE))
        return
    now_ns = int(conn.sim.wall_clock() * NS)
    exchange = c.exchange.strip().upper() or "SMART"
    # Field order of decoder.contractDetails for server versions >= 164 (no version field).
    head: list[Field] = [Out.CONTRACT_DATA, req_id, info.symbol, "STK", "", 0, ""]
    head += [exchange, "USD", info.symbol, info.trading_class, info.trading_class]
    head += [info.con_id, 0.01, "", ORDER_TYPES, f"{VALID_EXCHANGES},{info.primary_exchange}"]
    head += [1, 0, info.long_name, info.primary_exchange, "", info.industry, "", ""]
    head += [market.IB_TZ, market.trading_hours(now_ns, use_rth=False)]
    head += [market.trading_hours(now_ns, use_rth=True), "", "", 0]  # evRule, evMult, secIds
    head += [1, "", "", MARKET_RULES, "", info.stock_type, "0.0001", "0.0001", "100"]
    conn.send(encode(*head))
    conn.send(encode(Out.CONTRACT_DATA_END, 1, req_id))


def head_timestamp(conn: Connection, f: FieldReader) -> None:
    req_id = f.int()
    c = f.contract()
    f.bool()  # includeExpired
    f.bool()  # useRTH
    f.str()  # whatToShow
    format_date = f.int(1)
    info = conn.sim.resolve(c)
    if info is None:
        conn.send(error_message(req_id, 200, NO_SECURITY_MESSAGE))
        return
    ts = market.head_timestamp_ns(info)
    conn.send(encode(Out.HEAD_TIMESTAMP, req_id, format_bar_time(ts, format_date)))


# --------------------------------------------------------------------------------------------------
# Historical bars


async def historical_data(conn: Connection, f: FieldReader) -> None:
    """reqHistoricalData (run as a task per request, so delays do not block the connection)."""
    sim = conn.sim
    faults = sim.faults
    req_id = f.int()
    c = f.contract()
    f.bool()  # includeExpired
    end_text, bar_size, duration = f.str(), f.str(), f.str()
    use_rth, what_to_show, format_date = f.bool(), f.str(), f.int(1)
    conn.historical_count += 1
    req = sim.record_request(
        client_id=conn.client_id if conn.client_id is not None else -1,
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
        if faults.restart_after and not sim.restarted and req.seq > faults.restart_after:
            sim.finish_request(req, "restart", detail=f"after {faults.restart_after} requests")
            sim.restart(faults.restart_s, faults.restart_keep_socket)
            return
        if sim.silent:  # IB's servers are away: never answered
            sim.finish_request(req, "unanswered", detail="connectivity lost (1100)")
            return
        if faults.disconnect_after and conn.historical_count > faults.disconnect_after:
            sim.finish_request(
                req, "disconnect", detail=f"after {faults.disconnect_after} requests"
            )
            conn.close()
            return
        info = sim.resolve(c)
        if info is None:
            sim.finish_request(req, "unknown_symbol", error_code=200)
            conn.send(error_message(req_id, 200, NO_SECURITY_MESSAGE))
            return
        if faults.pacing:
            reason = sim.pacing.check(
                (info.con_id, end_text, duration, bar_size, what_to_show.upper(), use_rth),
                (info.con_id, c.exchange.upper(), what_to_show.upper()),
            )
            if reason:
                sim.finish_request(req, "pacing", error_code=162, detail=reason)
                conn.send(error_message(req_id, 162, PACING_MESSAGE))
                return
        conn.opened(req_id)
        if faults.timeout_every and req.seq % faults.timeout_every == 0:
            sim.finish_request(req, "timeout", detail=f"timeout_every={faults.timeout_every}")
            return
        try:
            if what_to_show.upper() == "SCHEDULE":
                raise RequestInvalid(162, f"{HMDS}whatToShow=SCHEDULE is not served")
            if what_to_show.upper() == "ADJUSTED_LAST" and end_text.strip():
                raise RequestInvalid(162, f"{HMDS}{ADJUSTED_LAST_END}")
            bars, end_ns = _select(conn, info, end_text, duration, bar_size, use_rth)
            bars = _adjusted(conn, info, bars, end_ns, what_to_show)
        except RequestInvalid as exc:
            conn.answered(req_id)
            sim.finish_request(req, "invalid", error_code=exc.code, detail=exc.message[:80])
            conn.send(error_message(req_id, exc.code, exc.message))
            return
        if faults.delay_ms > 0:
            await asyncio.sleep(faults.delay_ms / 1000.0)
        if conn.take_cancelled(req_id) or conn.closed:
            sim.finish_request(req, "cancelled")
            return
        conn.answered(req_id)
        if len(bars) == 0:
            sim.finish_request(req, "no_data", error_code=162)
            text = f"{NO_DATA_MESSAGE}: {info.symbol}@{c.exchange or 'SMART'} {what_to_show}"
            conn.send(error_message(req_id, 162, text))
            return
        message = historical_data_message(req_id, bars, format_date, end_ns)
        sim.finish_request(req, "ok", bars=len(bars))  # logged before the client sees the answer
        conn.send(message)
        await conn.writer.drain()
    except asyncio.CancelledError:
        if req.outcome == "pending":
            sim.finish_request(req, "aborted")
        raise
    except (ConnectionError, RuntimeError):
        if req.outcome == "pending":
            sim.finish_request(req, "aborted")


def cancel_historical_data(conn: Connection, f: FieldReader) -> None:
    f.int()
    conn.cancel(f.int())


def _select(
    conn: Connection, info: SymbolInfo, end_text: str, duration: str, bar_size: str, use_rth: bool
) -> tuple[BarSet, int]:
    now_ns = int(conn.sim.wall_clock() * NS)
    end_ns = min(parse_end(end_text, now_ns), now_ns)
    bar_minutes = parse_bar_size(bar_size)
    dur = parse_duration(duration)
    no_data = conn.sim.faults.no_data_sessions
    return select_bars(info, end_ns, dur, bar_minutes, use_rth, no_data), end_ns


ADJUSTED_LAST_END = "End date not supported with adjusted last"


def _adjusted(
    conn: Connection, info: SymbolInfo, bars: BarSet, end_ns: int, what_to_show: str
) -> BarSet:
    """``bars`` adjusted for the simulator's corporate actions as of its "now"."""
    actions = conn.sim.corporate_actions
    if not actions or len(bars) == 0:
        return bars
    now = market.local_date(int(conn.sim.wall_clock() * NS))
    scale, factor = corporate.adjustment(
        actions, info.symbol, info.head, bars.session_date, now, what_to_show
    )
    return corporate.apply(bars, scale, factor)


def historical_data_message(req_id: int, bars: BarSet, format_date: int, end_ns: int) -> bytes:
    """Message 17 for server versions < 196: bars and end marker in one message."""
    n = len(bars)
    if bars.daily:
        dates = [str(d).replace("-", "") for d in bars.session_date]
    else:
        dates = [format_bar_time(int(t), format_date) for t in bars.ts_open_ns]
    start_text = format_bar_time(int(bars.ts_open_ns[0]), 1) if n else ""
    parts = [str(Out.HISTORICAL_DATA), str(req_id), start_text]
    parts += [format_bar_time(end_ns, 1), str(n)]
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
