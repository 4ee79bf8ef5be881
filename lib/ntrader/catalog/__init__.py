"""The market-data catalog: one NautilusTrader ``ParquetDataCatalog``, written safely.

A catalog root is a local directory or an ``s3://`` prefix. One writer at a time (a lock file or a
lease object), every commit atomic, a bar type's files never overlapping, and whatever is written
here readable by a plain ``ParquetDataCatalog(root).bars()``. A file name is never reused for new
content and the files a commit removes stay readable for ``retain_days`` (the retained
history), so each read sees exactly one commit and a catalog opened ``as_of`` a version of its
commit log reads that version; readers take no lock and change nothing — a
corrupt file is reported and left in place until a writer's repair quarantines it. Every path a
writer touches is checked to stay inside the catalog. Outside ``data/`` (under ``.ntrader/``) it
keeps what it knows about corporate actions — split events, versioned dividend factors — and
gives a backtest its price view of the stored bars (``adjust``: as stored, as traded, total
return) without changing them.

May import: the core modules (``ntrader.errors``, ``ntrader.instruments``, ``ntrader.sessions``,
``ntrader.symbols`` …).
"""

import lazy_loader as _lazy

# Public names resolve on first use (``__init__.pyi`` lists them for type checkers), so importing
# one module of this package does not import its siblings and their dependencies.
__getattr__, __dir__, __all__ = _lazy.attach_stub(__name__, __file__)
