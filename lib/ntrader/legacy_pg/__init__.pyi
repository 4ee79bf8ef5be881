"""Public names of ``ntrader.legacy_pg`` (read by lazy_loader and by type checkers)."""

from .dsn import Scrubber as Scrubber
from .dsn import redact_dsn as redact_dsn
from .migrate import check_report as check_report
from .migrate import run_migration as run_migration
from .plan import Options as Options
from .rows import TimeMap as TimeMap
from .schema import SourceSpec as SourceSpec
from .source import Source as Source
