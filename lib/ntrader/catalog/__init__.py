"""The market-data catalog: one NautilusTrader ``ParquetDataCatalog``, written safely.

A catalog root is a local directory or an ``s3://`` prefix. One writer at a time (a lock file or a
lease object), every commit atomic, a bar type's files never overlapping, and whatever is written
here readable by a plain ``ParquetDataCatalog(root).bars()``.

May import: the core modules (``ntrader.errors``, ``ntrader.instruments``, ``ntrader.sessions`` …).
"""

import lazy_loader as _lazy

# Public names resolve on first use (``__init__.pyi`` lists them for type checkers), so importing
# one module of this package does not import its siblings and their dependencies.
__getattr__, __dir__, __all__ = _lazy.attach_stub(__name__, __file__)
