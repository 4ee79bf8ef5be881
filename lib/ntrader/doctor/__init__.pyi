"""Public names of ``ntrader.doctor`` (read by lazy_loader and by type checkers)."""

from .findings import DoctorFailed as DoctorFailed
from .findings import Finding as Finding
from .findings import Report as Report
from .spec import DoctorSpec as DoctorSpec
from .spec import diagnose as diagnose
from .spec import run_checks as run_checks
