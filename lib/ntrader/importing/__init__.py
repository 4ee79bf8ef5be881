"""CSV files of OHLCV bars into the catalog: columns, timestamps, validation, import.

Every problem is reported with its file line number; nothing reaches the catalog unless the whole
file validates (or the problems stay under ``csv.max_errors``).

May import: ``ntrader.catalog`` and the core modules.
"""

import lazy_loader as _lazy

# Public names resolve on first use (``__init__.pyi`` lists them for type checkers), so importing
# one module of this package does not import its siblings and their dependencies.
__getattr__, __dir__, __all__ = _lazy.attach_stub(__name__, __file__)
