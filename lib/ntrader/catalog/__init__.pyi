"""Public names of ``ntrader.catalog`` (read by lazy_loader and by type checkers)."""

from .barframe import BarFrame as BarFrame
from .catalog import Availability as Availability
from .catalog import Catalog as Catalog
from .catalog import WriteResult as WriteResult
from .conflict import MODES as MODES
from .conflict import MergeOutcome as MergeOutcome
from .conflict import merge_frames as merge_frames
from .inventory import iso as iso
from .inventory import list_catalog as list_catalog
from .inventory import record as record
from .store import (
    DEFAULT_CATALOG as DEFAULT_CATALOG,
)
from .store import (
    open_store as open_store,
)
from .store import (
    resolve_location as resolve_location,
)
