"""Public names of ``ntrader.legacy_pg`` (read by lazy_loader and by type checkers)."""

from .dsn import Scrubber as Scrubber
from .dsn import redact_dsn as redact_dsn
from .dsn import scrub_hydra_files as scrub_hydra_files
from .job import MigrateResult as MigrateResult
from .job import MigrateSpec as MigrateSpec
from .job import migrate_table as migrate_table
from .migrate import run_migration as run_migration
from .plan import Options as Options
from .report import check_report as check_report
from .rows import TimeMap as TimeMap
from .schema import SourceSpec as SourceSpec
from .source import Source as Source
