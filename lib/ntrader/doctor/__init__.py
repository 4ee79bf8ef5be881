"""``make doctor``: one command that checks the whole setup — Python and ``.venv``, the catalog
(writable, lock holder, a killed writer's journal, ``.corrupt/``, disk space), IB Gateway/TWS
(reachable, handshake and server version, client id, data farms, paper or live, clock skew),
PostgreSQL when a DSN is set, the S3 endpoint of an ``s3://`` catalog — and reports ok / warn /
fail with the fix for each; the worst finding is the exit code. ``run_checks(DoctorSpec(...))``
from plain values, no Hydra.

May import: ``ntrader.ibkr`` (its client's settings), ``ntrader.legacy_pg`` (DSN handling),
``ntrader.catalog`` (stores, lock and journal formats), the core modules and ib_async / psycopg /
botocore; never Hydra, OmegaConf, ``ntrader.runs`` or the simulator.
"""

import lazy_loader as _lazy

# Public names resolve on first use (``__init__.pyi`` lists them for type checkers).
__getattr__, __dir__, __all__ = _lazy.attach_stub(__name__, __file__)
