"""The TWS simulator against the real ib_async client over loopback (no mocks).

Every simulator binds port 0 and is stopped by its context manager.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
import zoneinfo
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from ib_async import IB, RequestError, Stock

from ntrader.ibkr.sim import DAILY, Faults, ground_truth, run_simulator
from ntrader.ibkr.sim.faults import PacingRules, PacingTracker
from tests.conftest import REPO

UTC = dt.UTC
NS = 1_000_000_000
NEW_YORK = zoneinfo.ZoneInfo("America/New_York")


@pytest.fixture
def sim() -> Iterator[Any]:
    with run_simulator() as s:
        yield s


def connect(port: int, client_id: int = 1, timeout: float = 5.0) -> IB:
    ib = IB()
    ib.RaiseRequestErrors = True
    ib.connect("127.0.0.1", port, clientId=client_id, timeout=timeout)
    return ib


@pytest.fixture
def ib(sim: Any) -> Iterator[IB]:
    client = connect(sim.port)
    yield client
    client.disconnect()


def aapl(ib: IB) -> Stock:
    c = Stock("AAPL", "SMART", "USD")
    ib.qualifyContracts(c)
    return c


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


def fetch(
    ib: IB,
    contract: Stock,
    end: dt.datetime,
    duration: str,
    bar_size: str = "1 min",
    use_rth: bool = True,
    timeout: float = 10,
) -> dict[str, np.ndarray]:
    bars = ib.reqHistoricalData(
        contract, end, duration, bar_size, "TRADES", use_rth, formatDate=2, timeout=timeout
    )
    ts = []
    for b in bars:
        if isinstance(b.date, dt.datetime):
            assert b.date.tzinfo is not None and b.date.utcoffset() == dt.timedelta(0)
            ts.append(int(b.date.timestamp()) * NS)
        else:  # daily bars: the session date
            ts.append(int(np.datetime64(b.date, "D").astype("datetime64[ns]").astype(np.int64)))
    return {
        "ts_open_ns": np.array(ts, dtype=np.int64),
        "open": np.array([b.open for b in bars]),
        "high": np.array([b.high for b in bars]),
        "low": np.array([b.low for b in bars]),
        "close": np.array([b.close for b in bars]),
        "volume": np.array([b.volume for b in bars]),
    }


def assert_equal_truth(got: dict[str, np.ndarray], truth: dict[str, np.ndarray]) -> None:
    assert len(got["close"]) == len(truth["close"])
    for key in ("open", "high", "low", "close"):
        np.testing.assert_array_equal(got[key], truth[key], err_msg=key)
    np.testing.assert_array_equal(got["volume"], truth["volume"].astype(float))
    assert (got["high"] >= np.maximum(got["open"], got["close"])).all()
    assert (got["low"] <= np.minimum(got["open"], got["close"])).all()


def ny(ts_ns: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ts_ns / NS, UTC).astimezone(NEW_YORK)


# --------------------------------------------------------------------------------------------------
# Connect and contracts


def test_connect_and_qualify(sim: Any) -> None:
    ib = connect(sim.port)
    try:
        assert ib.isConnected() and ib.managedAccounts() == ["DU1234567"]
        contracts = [Stock(s, "SMART", "USD") for s in ("AAPL", "IBM", "SPY")]
        ib.qualifyContracts(*contracts)
        got = {c.symbol: (c.conId, c.primaryExchange, c.exchange) for c in contracts}
        assert got == {
            "AAPL": (265598, "NASDAQ", "SMART"),
            "IBM": (8314, "NYSE", "SMART"),
            "SPY": (756733, "ARCA", "SMART"),
        }
        [details] = ib.reqContractDetails(Stock("AAPL", "SMART", "USD"))
        assert details.minTick == 0.01 and details.longName == "APPLE INC"
        assert details.timeZoneId == "US/Eastern" and details.tradingHours
        head = ib.reqHeadTimeStamp(contracts[0], "TRADES", True, 2)
        assert head == utc(2000, 1, 3, 14, 30)
    finally:
        ib.disconnect()


def test_unknown_symbol_is_error_200() -> None:
    with run_simulator(faults=Faults(unknown_symbols=["MSFT"])) as sim:
        ib = connect(sim.port)
        try:
            for symbol in ("NOSUCH", "MSFT"):
                with pytest.raises(RequestError) as err:
                    ib.qualifyContracts(Stock(symbol, "SMART", "USD"))
                assert err.value.code == 200
                assert "No security definition" in err.value.message
            ib.RaiseRequestErrors = False  # ib_async's default: the contract stays unqualified
            assert ib.qualifyContracts(Stock("NOSUCH", "SMART", "USD")) == [None]
        finally:
            ib.disconnect()


def test_two_clients_and_client_id_in_use() -> None:
    with run_simulator(faults=Faults(client_id_in_use=[7])) as sim:
        a, b = connect(sim.port, 1), connect(sim.port, 2)
        try:
            end = utc(2024, 1, 5, 21)
            assert len(fetch(a, aapl(a), end, "1 D")["close"]) == 390
            assert len(fetch(b, aapl(b), end, "1 D", "5 mins")["close"]) == 78
            for client_id in (7, 1):  # configured as in use; really in use
                refused = IB()
                codes: list[int] = []
                refused.errorEvent += lambda _r, code, *_, out=codes: out.append(code)
                with pytest.raises((TimeoutError, ConnectionError)):
                    refused.connect("127.0.0.1", sim.port, clientId=client_id, timeout=0.5)
                assert codes == [326] and not refused.isConnected()
            assert a.isConnected() and b.isConnected()
        finally:
            a.disconnect()
            b.disconnect()


# --------------------------------------------------------------------------------------------------
# Historical bars = ground truth


def test_one_day_of_minutes_equals_ground_truth(ib: IB) -> None:
    got = fetch(ib, aapl(ib), utc(2024, 1, 5, 21), "1 D")
    truth = ground_truth("AAPL", dt.date(2024, 1, 5), dt.date(2024, 1, 5))
    assert len(got["close"]) == 390
    np.testing.assert_array_equal(got["ts_open_ns"], truth["ts_open_ns"])
    assert ny(int(got["ts_open_ns"][0])).strftime("%H:%M") == "09:30"
    assert ny(int(got["ts_open_ns"][-1])).strftime("%H:%M") == "15:59"
    assert_equal_truth(got, truth)
    # Any window returns the same bars: a partial day (end 12:00 New York) is a prefix.
    part = fetch(ib, aapl(ib), utc(2024, 1, 5, 17), "1 D")
    assert len(part["close"]) == 150
    np.testing.assert_array_equal(part["close"], truth["close"][:150])


def test_five_days_span_weekend_and_holiday(ib: IB) -> None:
    # MLK day 2024-01-15 (Monday) is a holiday: the last 5 sessions are Jan 9-12 and 16.
    got = fetch(ib, aapl(ib), utc(2024, 1, 16, 23), "5 D")
    truth = ground_truth("AAPL", dt.date(2024, 1, 9), dt.date(2024, 1, 16))
    days = sorted({ny(int(t)).date() for t in got["ts_open_ns"]})
    assert days == [dt.date(2024, 1, d) for d in (9, 10, 11, 12, 16)]
    np.testing.assert_array_equal(got["ts_open_ns"], truth["ts_open_ns"])
    assert_equal_truth(got, truth)


def test_early_close_and_extended_hours(ib: IB) -> None:
    c = aapl(ib)
    rth = fetch(ib, c, utc(2024, 11, 29, 23), "1 D")
    assert len(rth["close"]) == 210
    assert ny(int(rth["ts_open_ns"][-1])).strftime("%H:%M") == "12:59"
    ext_early = fetch(ib, c, utc(2024, 11, 30, 3), "1 D", use_rth=False)
    assert len(ext_early["close"]) == 780  # 04:00-17:00
    ext = fetch(ib, c, utc(2024, 1, 6, 3), "1 D", use_rth=False)
    assert len(ext["close"]) == 960
    assert ny(int(ext["ts_open_ns"][0])).strftime("%H:%M") == "04:00"
    assert ny(int(ext["ts_open_ns"][-1])).strftime("%H:%M") == "19:59"
    assert_equal_truth(
        ext, ground_truth("AAPL", dt.date(2024, 1, 5), dt.date(2024, 1, 5), 1, False)
    )


def test_dst_switch_week_five_minute_bars(ib: IB) -> None:
    # DST started Sunday 2024-03-10: the open moves from 14:30 to 13:30 UTC.
    got = fetch(ib, aapl(ib), utc(2024, 3, 12, 21), "3 D", "5 mins")
    truth = ground_truth("AAPL", dt.date(2024, 3, 8), dt.date(2024, 3, 12), bar_minutes=5)
    assert len(got["close"]) == 3 * 78
    opens = [dt.datetime.fromtimestamp(int(t) / NS, UTC) for t in got["ts_open_ns"][::78]]
    assert [(o.day, o.hour, o.minute) for o in opens] == [(8, 14, 30), (11, 13, 30), (12, 13, 30)]
    np.testing.assert_array_equal(got["ts_open_ns"], truth["ts_open_ns"])
    assert_equal_truth(got, truth)


def test_hourly_and_daily_bars(ib: IB) -> None:
    c = aapl(ib)
    hourly = fetch(ib, c, utc(2024, 1, 5, 21), "1 D", "1 hour")
    assert [ny(int(t)).strftime("%H:%M") for t in hourly["ts_open_ns"]] == [
        "09:30",
        "10:00",
        "11:00",
        "12:00",
        "13:00",
        "14:00",
        "15:00",
    ]
    assert_equal_truth(hourly, ground_truth("AAPL", dt.date(2024, 1, 5), dt.date(2024, 1, 5), 60))
    bars = ib.reqHistoricalData(c, utc(2024, 1, 31, 23), "1 M", "1 day", "TRADES", True, 2)
    truth = ground_truth("AAPL", dt.date(2024, 1, 1), dt.date(2024, 1, 31), bar_minutes=DAILY)
    assert [b.date for b in bars][:2] == [dt.date(2024, 1, 2), dt.date(2024, 1, 3)]
    assert len(bars) == 21 == len(truth["close"])
    np.testing.assert_array_equal([b.close for b in bars], truth["close"])
    np.testing.assert_array_equal([b.high for b in bars], truth["high"])
    np.testing.assert_array_equal([b.volume for b in bars], truth["volume"].astype(float))
    with pytest.raises(RequestError) as err:  # unsupported bar size: an error, not a hang
        fetch(ib, c, utc(2024, 1, 5, 21), "1 D", "7 mins")
    assert err.value.code == 162 and "bar size" in err.value.message


# --------------------------------------------------------------------------------------------------
# Faults


def test_pacing_burst_identical_and_window() -> None:
    now = [1000.0]
    with run_simulator(faults=Faults(pacing=True), clock=lambda: now[0]) as sim:
        ib = connect(sim.port)
        try:
            c = aapl(ib)
            ends = [utc(2024, 1, 5, 15, m) for m in range(7)]
            for i, end in enumerate(ends):  # 7 different requests at one clock instant
                if i < 5:
                    assert len(fetch(ib, c, end, "60 S")["close"]) == 1
                else:
                    with pytest.raises(RequestError) as err:
                        fetch(ib, c, end, "60 S")
                    assert err.value.code == 162 and "pacing violation" in err.value.message
            now[0] += 3.0  # burst over; the same request as the first within 15 s
            with pytest.raises(RequestError, match="pacing violation"):
                fetch(ib, c, ends[0], "60 S")
            now[0] += 20.0
            assert len(fetch(ib, c, ends[0], "60 S")["close"]) == 1
            outcomes = [r.outcome for r in sim.requests]
            assert outcomes == ["ok"] * 5 + ["pacing"] * 3 + ["ok"]
        finally:
            ib.disconnect()
    # More than 60 requests in 10 minutes (2.5 s apart: no burst, never identical).
    tracker = PacingTracker(lambda: now[0], PacingRules())
    verdicts = []
    for i in range(62):
        now[0] += 2.5
        verdicts.append(tracker.check(("req", i), "AAPL"))
    assert verdicts[:60] == [None] * 60 and all(v and "60" in v for v in verdicts[60:])
    now[0] += 600.0
    assert tracker.check(("req", 99), "AAPL") is None


def test_disconnect_after_then_reconnect() -> None:
    with run_simulator(faults=Faults(disconnect_after=2)) as sim:
        ib = connect(sim.port)
        try:
            c = aapl(ib)
            end = utc(2024, 1, 5, 21)
            assert len(fetch(ib, c, end, "1 D")["close"]) == 390
            assert len(fetch(ib, c, end, "1 D", "5 mins")["close"]) == 78
            with pytest.raises(ConnectionError):
                fetch(ib, c, end, "1 D", "15 mins")
            assert not ib.isConnected()
            ib.connect("127.0.0.1", sim.port, clientId=1, timeout=5)  # same id is free again
            assert len(fetch(ib, c, end, "1 D", "15 mins")["close"]) == 26
            assert [r.outcome for r in sim.requests] == ["ok", "ok", "disconnect", "ok"]
        finally:
            ib.disconnect()


def test_timeout_every_and_delay() -> None:
    with run_simulator(faults=Faults(timeout_every=2, delay_ms=150)) as sim:
        ib = connect(sim.port)
        try:
            c = aapl(ib)
            end = utc(2024, 1, 5, 21)
            t0 = time.perf_counter()
            assert len(fetch(ib, c, end, "1 D")["close"]) == 390
            waited = time.perf_counter() - t0
            assert (
                waited >= 0.15
            )  # the injected delay_ms latency really applied (a fault, not speed)
            assert len(fetch(ib, c, end, "1 D", timeout=0.5)["close"]) == 0  # never answered
            assert len(fetch(ib, c, end, "1 D")["close"]) == 390
            assert [r.outcome for r in sim.requests] == ["ok", "timeout", "ok"]
        finally:
            ib.disconnect()


def test_no_data_sessions() -> None:
    faults = Faults.parse(["no_data_sessions=2024-01-05"])
    with run_simulator(faults=faults) as sim:
        ib = connect(sim.port)
        try:
            c = aapl(ib)
            with pytest.raises(RequestError) as err:
                fetch(ib, c, utc(2024, 1, 5, 21), "1 D")
            assert err.value.code == 162 and "HMDS query returned no data" in err.value.message
            got = fetch(ib, c, utc(2024, 1, 5, 21), "2 D")  # Jan 4 keeps its bars
            assert_equal_truth(got, ground_truth("AAPL", dt.date(2024, 1, 4), dt.date(2024, 1, 4)))
            r = sim.requests
            assert [x.outcome for x in r] == ["no_data", "ok"] and r[0].symbol == "AAPL"
            assert (r[0].duration, r[0].bar_size, r[0].use_rth) == ("1 D", "1 min", True)
            assert r[0].end_date_time == "20240105 21:00:00 UTC"
        finally:
            ib.disconnect()


def test_faults_parse() -> None:
    f = Faults.parse(
        [
            "pacing",
            "disconnect_after=3",
            "no_data_sessions=2024-01-05,20240108",
            "unknown_symbols=xyz,abc",
            "client_id_in_use=5,6",
            "delay_ms=20",
            "timeout_every=0",
        ]
    )
    assert f.pacing and f.disconnect_after == 3 and f.timeout_every is None
    assert f.no_data_sessions == {dt.date(2024, 1, 5), dt.date(2024, 1, 8)}
    assert f.unknown_symbols == {"XYZ", "ABC"} and f.client_id_in_use == {5, 6}
    assert f.delay_ms == 20.0
    with pytest.raises(ValueError, match="unknown fault"):
        Faults.parse(["nonsense=1"])


def test_cli_serves_and_exits_cleanly_on_sigterm() -> None:
    env = {
        **os.environ,
        "PYTHONPATH": f"{REPO / 'lib'}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "ntrader.ibkr.sim", "--port", "0", "--fault", "pacing=true"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        assert line.startswith("TWS simulator listening on 127.0.0.1:")
        ib = connect(int(line.rsplit(":", 1)[1]))
        assert ib.qualifyContracts(Stock("SPY", "SMART", "USD"))[0] is not None
        ib.disconnect()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
