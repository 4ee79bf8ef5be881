"""Is the data complete and sane: calendar gaps, data health, ``make check``'s report, and the
coverage matrix and catalog report page of ``make report``.

May import: ``ntrader.catalog`` and the core modules; plotly and matplotlib only when a report
page is written.
"""

import lazy_loader as _lazy

# Public names resolve on first use (``__init__.pyi`` lists them for type checkers), so importing
# one module of this package does not import its siblings and their dependencies.
__getattr__, __dir__, __all__ = _lazy.attach_stub(__name__, __file__)
