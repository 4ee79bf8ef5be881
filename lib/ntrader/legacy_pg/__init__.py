"""The legacy PostgreSQL ``market_data`` table into the catalog, as one call from a spec
(``MigrateSpec`` -> ``migrate_table`` -> ``MigrateResult``): DSN handling, schema inspection, the
statistics pass, streamed reads, the plan, row conversion, migration, validation, the report.

May import: ``ntrader.catalog`` and the core modules.
"""

import lazy_loader as _lazy

# Public names resolve on first use (``__init__.pyi`` lists them for type checkers), so importing
# one module of this package does not import its siblings and their dependencies.
__getattr__, __dir__, __all__ = _lazy.attach_stub(__name__, __file__)
