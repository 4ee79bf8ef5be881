"""A loopback TWS API simulator for tests, demos and benchmarks (``python -m ntrader.ibkr.sim``).

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

May import: ``ntrader.sessions`` only — nothing of the fetch side, ib_async or NautilusTrader
(a simulator sharing code with the client it tests would share its bugs).
"""

import lazy_loader as _lazy

# Public names resolve on first use (``__init__.pyi`` lists them for type checkers).
__getattr__, __dir__, __all__ = _lazy.attach_stub(__name__, __file__)
