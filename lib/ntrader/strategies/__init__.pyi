"""Public names of ``ntrader.strategies`` (read by lazy_loader and by type checkers)."""

from .opening_range import OpeningRange as OpeningRange
from .opening_range import OpeningRangeConfig as OpeningRangeConfig
