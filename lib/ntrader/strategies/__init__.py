"""ntrader's own example strategies; see ``docs/strategies.md`` for adding yours.

Each module holds one NautilusTrader ``Strategy`` and its ``StrategyConfig`` and has a matching
``conf/strategy/<name>.yaml`` that the backtest loads with ``STRATEGY=<name>``. Strategies are
referenced by their import path (``ntrader.strategies.opening_range:OpeningRange``) in configs and
saved run folders, so this package keeps its place at the top of ``ntrader``.

May import: the core modules (``ntrader.sessions`` …) and NautilusTrader; never the backtest
machinery that runs it.
"""

import lazy_loader as _lazy

# Public names resolve on first use (``__init__.pyi`` lists them for type checkers).
__getattr__, __dir__, __all__ = _lazy.attach_stub(__name__, __file__)
