"""Public names of ``ntrader.ibkr`` (read by lazy_loader and by type checkers)."""

from .client import IbkrSession as IbkrSession
from .client import IbkrSettings as IbkrSettings
from .fetcher import Fetcher as Fetcher
from .fetcher import FetchReport as FetchReport
from .fetcher import FetchTarget as FetchTarget
from .fetcher import fetch_ranges as fetch_ranges
from .fetcher import missing_sessions as missing_sessions
from .job import FetchJob as FetchJob
from .job import FetchResult as FetchResult
from .job import run_fetch as run_fetch
from .pacing import FakeClock as FakeClock
from .pacing import PacingGuard as PacingGuard
from .pacing import RealClock as RealClock
