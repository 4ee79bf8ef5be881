"""A loopback TWS API simulator for tests, demos and benchmarks (``python -m ntrader.tws_sim``).

It speaks the TWS API wire protocol well enough for the real, unmodified ib_async client:
handshake and startup, contract details for known US stocks, head timestamps, and historical bars
that are a pure function of time (:func:`ground_truth` gives the exact values), with configurable
faults (:class:`Faults`): IB's pacing rules, dropped connections, unanswered requests, sessions
without data, unknown symbols, client ids in use and latency.

Python::

    with run_simulator(faults=Faults(pacing=True)) as sim:
        ib.connect("127.0.0.1", sim.port, clientId=1)
        ...
        sim.requests  # every historical request received, with its outcome
"""

from ntrader.tws_sim.faults import Faults, PacingRules
from ntrader.tws_sim.market import DAILY, SYMBOLS, SymbolInfo, ground_truth, synthetic_symbol
from ntrader.tws_sim.server import (
    HistoricalRequest,
    SimulatorThread,
    TwsSimulator,
    run_simulator,
)

__all__ = [
    "DAILY",
    "SYMBOLS",
    "Faults",
    "HistoricalRequest",
    "PacingRules",
    "SimulatorThread",
    "SymbolInfo",
    "TwsSimulator",
    "ground_truth",
    "run_simulator",
    "synthetic_symbol",
]
