"""Interactive Brokers: the ib_async client, request planning, IB's pacing rules, the fetcher
that fills the catalog's missing sessions, and the memory of sessions IB had no data for.

``ntrader.ibkr.sim`` is a TWS API simulator for tests, demos and benchmarks; it is independent of
the fetch side (it imports none of it) and nothing in the library imports it.

May import: ``ntrader.catalog`` and the core modules.
"""

import lazy_loader as _lazy

# Public names resolve on first use (``__init__.pyi`` lists them for type checkers), so importing
# one module of this package does not import its siblings and their dependencies.
__getattr__, __dir__, __all__ = _lazy.attach_stub(__name__, __file__)
