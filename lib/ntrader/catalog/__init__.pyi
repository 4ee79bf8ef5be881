"""Public names of ``ntrader.catalog`` (read by lazy_loader and by type checkers)."""

from .adjust import VIEWS as VIEWS
from .adjust import PriceView as PriceView
from .adjust import resolve_view as resolve_view
from .asof import VersionPruned as VersionPruned
from .barframe import BarFrame as BarFrame
from .catalog import Catalog as Catalog
from .compaction import CompactionResult as CompactionResult
from .conflict import MODES as MODES
from .conflict import MergeOutcome as MergeOutcome
from .conflict import WriteResult as WriteResult
from .conflict import merge_frames as merge_frames
from .corruption import Quarantined as Quarantined
from .factors import FactorSeries as FactorSeries
from .factors import load_factors as load_factors
from .frames import availability_frame as availability_frame
from .frames import bars_frame as bars_frame
from .history import DEFAULT_RETAIN_DAYS as DEFAULT_RETAIN_DAYS
from .history import Pruned as Pruned
from .inventory import Availability as Availability
from .inventory import iso as iso
from .inventory import list_catalog as list_catalog
from .inventory import record as record
from .inventory import render_listing as render_listing
from .store import DEFAULT_CATALOG as DEFAULT_CATALOG
from .store import open_store as open_store
from .store import resolve_location as resolve_location
