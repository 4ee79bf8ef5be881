"""NautilusTrader backtests from the catalog: data check and load, engine setup, fees, the
fast statistics, equity and risk metrics, reports and the sweep summary.

May import: ``ntrader.quality``, ``ntrader.ibkr`` (auto-fetch, no-data memory), ``ntrader.catalog``
and the core modules.
"""

import lazy_loader as _lazy

# Public names resolve on first use (``__init__.pyi`` lists them for type checkers), so importing
# one module of this package does not import its siblings and their dependencies.
__getattr__, __dir__, __all__ = _lazy.attach_stub(__name__, __file__)
