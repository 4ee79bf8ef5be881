"""Public names of ``ntrader.importing`` (read by lazy_loader and by type checkers)."""

from .batch import BatchFailed as BatchFailed
from .batch import BatchReport as BatchReport
from .batch import import_batch as import_batch
from .batch import is_batch as is_batch
from .importer import ImportReport as ImportReport
from .importer import SpacingMismatch as SpacingMismatch
from .importer import import_csv as import_csv
from .reader import CsvResult as CsvResult
from .reader import CsvSpec as CsvSpec
from .reader import read_csv_bars as read_csv_bars
