"""Public names of ``ntrader.quality`` (read by lazy_loader and by type checkers)."""

from .checkup import CheckReport as CheckReport
from .checkup import check_bar_type as check_bar_type
from .checkup import check_options as check_options
from .checkup import fill_command as fill_command
from .coverage_report import catalog_report as catalog_report
from .coverage_report import report_options as report_options
from .coverage_report import set_bar_types as set_bar_types
from .findings import Finding as Finding
from .findings import health_findings as health_findings
from .gaps import GapReport as GapReport
from .gaps import find_gaps as find_gaps
from .health import HealthIssue as HealthIssue
from .health import HealthOptions as HealthOptions
from .health import check_health as check_health
from .splits import PossibleSplit as PossibleSplit
from .splits import find_possible_splits as find_possible_splits
