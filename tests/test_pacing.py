"""PacingGuard on simulated time, checked by an independent brute-force rule checker."""

from __future__ import annotations

import asyncio
import itertools
import math
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ntrader.errors import InputError
from ntrader.ibkr.pacing import FakeClock, PacingGuard, PacingRules, RealClock, SendRecord

IB = PacingRules()


@dataclass
class Sim:
    """What a simulated fetch saw: sends (t, contract, key) and the open count at each send."""

    sends: list[tuple[float, str, tuple]] = field(default_factory=list)
    open_now: int = 0
    open_max: int = 0
    end: float = 0.0


def brute_violations(sends: list[tuple[float, str, tuple]], rules: PacingRules) -> list[str]:
    """Every rule break, by brute force over all pairs/windows (closed windows, no margin)."""
    out: list[str] = []
    times = [t for t, _, _ in sends]
    for t0 in times:  # the fullest closed window [t0, t0 + w] starts at some send
        n = sum(1 for t in times if t0 <= t <= t0 + rules.window_s)
        if n > rules.max_requests:
            out.append(f"{n} sends in [{t0}, {t0 + rules.window_s}]")
    for t0, c0, _ in sends:
        n = sum(1 for t, c, _ in sends if c == c0 and t0 <= t <= t0 + rules.per_contract_window_s)
        if n > rules.per_contract_max:
            out.append(f"{n} sends of {c0} in [{t0}, {t0 + rules.per_contract_window_s}]")
    for i, (ti, _, ki) in enumerate(sends):
        for tj, _, kj in sends[i + 1 :]:
            if ki == kj and abs(tj - ti) <= rules.identical_gap_s:
                out.append(f"identical {ki} at {ti} and {tj}")
    return out


async def _one(
    guard: PacingGuard, sim: Sim, contract: str, key: tuple, hold_s: float, *, fail: bool = False
) -> None:
    await guard.acquire(contract, key)
    sim.sends.append((guard.clock.now(), contract, key))
    sim.open_now += 1
    sim.open_max = max(sim.open_max, sim.open_now)
    try:
        await guard.clock.sleep(hold_s)  # the request is in flight
    finally:
        sim.open_now -= 1
        guard.release()


def simulate(
    requests: list[tuple[str, tuple, float]], rules: PacingRules = IB, start: float = 0.0
) -> tuple[PacingGuard, Sim]:
    """Submit every (contract, request key, hold seconds) at once, in order; run to completion."""
    clock = FakeClock(start)
    guard = PacingGuard(clock, rules)
    sim = Sim()

    async def main() -> None:
        await asyncio.gather(*(_one(guard, sim, c, k, h) for c, k, h in requests))
        sim.end = clock.now()

    clock.run(main())
    return guard, sim


def burst(n: int, contracts: int) -> list[tuple[str, tuple, float]]:
    """n distinct requests round-robin over ``contracts`` contracts, answered instantly."""
    return [(f"C{i % contracts}", (f"C{i % contracts}", i), 0.0) for i in range(n)]


# --------------------------------------------------------------------------------------------------
# the clocks


def test_fake_clock_runs_concurrent_sleepers_in_virtual_time() -> None:
    clock = FakeClock(10.0)
    woke: list[tuple[float, float]] = []

    async def sleeper(s: float) -> None:
        await clock.sleep(s)
        woke.append((s, clock.now()))

    async def main() -> None:
        await asyncio.gather(*(sleeper(s) for s in (5, 1, 3, 100, 0.5)))

    clock.run(main())
    assert woke == [(0.5, 10.5), (1, 11.0), (3, 13.0), (5, 15.0), (100, 110.0)]
    clock.advance(2.5)
    assert clock.now() == 112.5


def test_fake_clock_sleep_outside_its_loop_advances_instantly() -> None:
    clock = FakeClock()
    asyncio.run(clock.sleep(7.0))
    assert clock.now() == 7.0


def test_fake_clock_loop_reports_a_deadlock_instead_of_hanging() -> None:
    clock = FakeClock()

    async def main() -> None:
        await asyncio.Event().wait()

    with pytest.raises(RuntimeError, match="deadlock"):
        clock.run(main())


def test_real_clock_is_monotonic() -> None:
    clock = RealClock()
    a = clock.now()
    asyncio.run(clock.sleep(0.001))
    assert clock.now() >= a + 0.001


def test_rules_reject_nonsense() -> None:
    with pytest.raises(InputError):
        PacingRules(max_requests=0)
    with pytest.raises(InputError):
        PacingRules(safety_s=0.0)
    with pytest.raises(InputError):
        PacingRules(window_s=-1)


# --------------------------------------------------------------------------------------------------
# the burst of 200 requests


def test_burst_of_200_over_3_contracts_is_safe_and_near_optimal() -> None:
    guard, sim = simulate(burst(200, 3))
    assert guard.sent == 200 == len(sim.sends)
    assert brute_violations(sim.sends, IB) == []
    assert guard.violations() == 0
    first, last = sim.sends[0][0], sim.sends[-1][0]
    # Lower bound for ANY schedule: with t_i sorted, t_{i+60} > t_i + 600, so
    # t_199 > t_19 + 1800; 3 contracts x 5 per 2 s fit at most 15 sends in [t_0, t_0 + 2], so
    # t_15 > t_0 + 2 and t_199 - t_0 > 1802.
    assert last - first > 1802.0
    assert last - first < 1802.0 + 0.5  # only the safety margins (0.05 s each) above the optimum
    assert sim.end == pytest.approx(last)
    assert guard.waited_s > 0


def test_window_limit_alone_gives_the_textbook_minimum() -> None:
    # 200 distinct contracts: only the 60-per-10-minutes rule binds -> 60 at 0, 600, 1200; 20 at
    # 1800 (plus margins): 200 requests need 1,800 s of windows.
    _, sim = simulate(burst(200, 200))
    times = sorted(t for t, _, _ in sim.sends)
    assert brute_violations(sim.sends, IB) == []
    assert times[59] == 0.0
    assert 1800.0 < times[-1] - times[0] < 1800.0 + 4 * IB.safety_s
    batches = [sum(1 for t in times if k * 600 <= t < k * 600 + 1) for k in range(4)]
    assert batches == [60, 60, 60, 20]


def test_window_boundary_is_never_touched_even_from_an_odd_start() -> None:
    _, sim = simulate(burst(130, 130), start=1_000_000.123)
    times = [t for t, _, _ in sim.sends]
    assert brute_violations(sim.sends, IB) == []
    assert times[60] - times[0] > IB.window_s
    assert times[120] - times[60] > IB.window_s


# --------------------------------------------------------------------------------------------------
# single rules


def test_identical_requests_are_spaced_by_15_seconds() -> None:
    key = ("AAPL", "20240102 21:00:00", "1 D", "1 min", "TRADES", True)
    _, sim = simulate([("AAPL", key, 0.0)] * 4)
    times = [t for t, _, _ in sim.sends]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert all(g > IB.identical_gap_s for g in gaps)
    assert all(g < IB.identical_gap_s + 2 * IB.safety_s for g in gaps)
    assert brute_violations(sim.sends, IB) == []


def test_same_contract_bursts_are_at_most_5_per_2_seconds() -> None:
    _, sim = simulate(burst(23, 1))
    times = [t for t, _, _ in sim.sends]
    assert brute_violations(sim.sends, IB) == []
    for i in range(len(times) - IB.per_contract_max):
        assert times[i + IB.per_contract_max] - times[i] > IB.per_contract_window_s
    assert times[:5] == [0.0] * 5
    assert times[-1] < 4 * (2 + 2 * IB.safety_s)  # 23 = 5 groups of <= 5 -> 4 waits


def test_other_contracts_are_not_slowed_by_one_busy_contract_when_interleaved() -> None:
    _, sim = simulate(burst(15, 3))
    assert [t for t, _, _ in sim.sends] == [0.0] * 15


def test_open_cap_holds_sends_until_releases() -> None:
    # 120 distinct contracts, each request open for 30 s: 50 go at once, the 51st waits for the
    # first answer at t=30; the window rule (60 / 600 s) then holds the rest.
    reqs = [(f"C{i}", (f"C{i}", i), 30.0) for i in range(120)]
    guard, sim = simulate(reqs)
    times = [t for t, _, _ in sim.sends]
    assert sim.open_max == IB.max_open
    assert times[:50] == [0.0] * 50
    assert times[50:60] == [30.0] * 10
    assert times[60] > 600.0
    assert brute_violations(sim.sends, IB) == []
    assert guard.violations() == 0
    assert max(r.open_count for r in guard.history) == IB.max_open
    assert guard.open == 0


def test_wait_time_reports_each_rule() -> None:
    clock = FakeClock()
    rules = PacingRules(max_open=3)
    guard = PacingGuard(clock, rules)

    async def send(contract: str, key: tuple) -> None:
        await guard.acquire(contract, key)

    assert guard.wait_time("A", ("A", 1)) == 0.0
    clock.run(send("A", ("A", 1)))
    assert guard.wait_time("A", ("A", 1)) == pytest.approx(15.05)  # identical
    assert guard.wait_time("A", ("A", 2)) == 0.0
    clock.run(send("A", ("A", 2)))
    clock.run(send("B", ("B", 1)))
    assert guard.wait_time("C", ("C", 1)) == math.inf  # 3 open
    guard.release()
    assert guard.wait_time("C", ("C", 1)) == 0.0
    clock.advance(20)
    guard.penalize(60)
    assert guard.wait_time("C", ("C", 1)) == pytest.approx(60.0)


def test_penalize_holds_every_send() -> None:
    clock = FakeClock()
    guard = PacingGuard(clock)
    times: list[float] = []

    async def main() -> None:
        await guard.acquire("A", ("A", 1))
        times.append(clock.now())
        guard.release()
        guard.penalize(120.0)  # IB answered 162
        for i in range(2, 5):
            await guard.acquire(f"X{i}", ("X", i))
            times.append(clock.now())
            guard.release()

    clock.run(main())
    assert times[0] == 0.0
    assert times[1:] == [120.0, 120.0, 120.0]
    assert guard.penalties == 1
    assert guard.waited_s == pytest.approx(120.0)


def test_penalize_during_a_wait_extends_it() -> None:
    clock = FakeClock()
    key = ("A", "same")
    guard = PacingGuard(clock)
    times: list[float] = []

    async def sender() -> None:
        for _ in range(2):
            await guard.acquire("A", key)
            times.append(clock.now())
            guard.release()

    async def error_at_5s() -> None:
        await clock.sleep(5.0)
        guard.penalize(30.0)

    async def main() -> None:
        await asyncio.gather(sender(), error_at_5s())

    clock.run(main())
    # the identical-request wait ends at 15.05; the penalty at t=5 holds sends until 35
    assert times[0] == 0.0
    assert times[1] == pytest.approx(35.0)


def test_acquire_is_fifo() -> None:
    reqs = [(f"C{i}", (f"C{i}", i), 0.0) for i in range(70)]
    _, sim = simulate(reqs)
    assert [c for _, c, _ in sim.sends] == [c for c, _, _ in reqs]


def test_cancelled_acquire_records_nothing() -> None:
    clock = FakeClock()
    guard = PacingGuard(clock, PacingRules(max_open=1))

    async def main() -> None:
        await guard.acquire("A", ("A", 1))
        waiting = asyncio.create_task(guard.acquire("B", ("B", 1)))
        await clock.sleep(1.0)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        guard.release()
        await guard.acquire("C", ("C", 1))

    clock.run(main())
    assert [r.contract_key for r in guard.history] == ["A", "C"]
    assert guard.sent == 2


def test_violations_detects_bad_histories() -> None:
    guard = PacingGuard(FakeClock())
    ok = [SendRecord(float(i), f"C{i}", i, 1) for i in range(10)]
    assert guard.violations(ok) == 0
    window = [SendRecord(i * 10.0, f"C{i}", i, 1) for i in range(61)]  # 61 in [0, 600]
    assert guard.violations(window) == 1
    per_contract = [SendRecord(i * 0.4, "A", i, 1) for i in range(6)]  # 6 in [0, 2]
    assert guard.violations(per_contract) == 1
    identical = [SendRecord(0.0, "A", "k", 1), SendRecord(15.0, "B", "k", 1)]
    assert guard.violations(identical) == 1
    too_open = [SendRecord(0.0, "A", 1, 51)]
    assert guard.violations(too_open) == 1


# --------------------------------------------------------------------------------------------------
# property: random request streams never break a rule


request_streams = st.lists(
    st.tuples(
        st.integers(0, 3),  # contract
        st.integers(0, 6),  # request variant: small range -> many identical repeats
        st.sampled_from(
            [0.0, 0.0, 0.01, 0.5, 1.9, 2.0, 3.0, 14.99, 15.0, 40.0, 700.0]
        ),  # open time
    ),
    min_size=1,
    max_size=90,
)
small_rules = st.builds(
    PacingRules,
    max_requests=st.integers(1, 12),
    window_s=st.sampled_from([1.0, 10.0, 60.0, 600.0]),
    identical_gap_s=st.sampled_from([0.0, 1.0, 15.0]),
    per_contract_max=st.integers(1, 6),
    per_contract_window_s=st.sampled_from([0.5, 2.0]),
    max_open=st.integers(1, 8),
    safety_s=st.sampled_from([1e-6, 0.05]),
)


def _stream(raw: list[tuple[int, int, float]]) -> list[tuple[str, tuple, float]]:
    return [(f"C{c}", (f"C{c}", v), hold) for c, v, hold in raw]


def _assert_safe(raw: list[tuple[int, int, float]], rules: PacingRules, start: float) -> None:
    guard, sim = simulate(_stream(raw), rules, start=start)
    assert len(sim.sends) == len(raw) == guard.sent
    assert brute_violations(sim.sends, rules) == []
    assert sim.open_max <= rules.max_open
    assert guard.violations() == 0
    assert guard.open == 0


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=request_streams, start=st.sampled_from([0.0, 0.3, 1e6 + 0.7]))
def test_random_streams_never_violate_ib_rules(
    raw: list[tuple[int, int, float]], start: float
) -> None:
    _assert_safe(raw, IB, start)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=request_streams, rules=small_rules)
def test_random_streams_never_violate_random_rules(
    raw: list[tuple[int, int, float]], rules: PacingRules
) -> None:
    _assert_safe(raw, rules, 0.0)
