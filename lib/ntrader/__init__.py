"""ntrader: a batch toolchain for NautilusTrader market data from Interactive Brokers.

Packages, lowest layer first (each ``__init__`` says what it owns and may import; the layers are
an import-linter contract in ``pyproject.toml``, checked by ``make lint``):

- core modules: ``errors``, ``secrets``, ``tabular``, ``instruments``, ``sessions``, and the
  ``runs`` package (run folders, logging, the task wrapper: script-side, with Hydra);
- ``catalog``: the Parquet catalog;
- ``importing``, ``ibkr``, ``legacy_pg``, ``quality``, ``strategies``: independent of each other;
- ``backtest``: runs strategies on catalog data.

The scripts in ``scripts/`` sit on top: config -> spec -> one library call -> print.
"""

__version__ = "0.1.0"
