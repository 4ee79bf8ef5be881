"""Public names of ``ntrader.backtest`` (read by lazy_loader and by type checkers)."""

from .analysis import stats_equal as stats_equal
from .autofetch import AutoFetch as AutoFetch
from .data import LoadedData as LoadedData
from .data import MissingData as MissingData
from .data import check_and_load as check_and_load
from .engine import analyse as analyse
from .engine import build_engine as build_engine
from .engine import run_engine as run_engine
from .fees import IbkrFixedFeeModel as IbkrFixedFeeModel
from .performance import daily_equity as daily_equity
from .performance import equity_series as equity_series
from .performance import risk_metrics as risk_metrics
from .reports import write_reports as write_reports
from .runner import BacktestResult as BacktestResult
from .runner import run_backtest as run_backtest
from .spec import BacktestSpec as BacktestSpec
from .spec import FeeSpec as FeeSpec
from .spec import StrategySpec as StrategySpec
from .spec import VenueSpec as VenueSpec
from .summary import SHARPE as SHARPE
from .summary import SORTINO as SORTINO
from .summary import combine_venues as combine_venues
from .summary import report_counts as report_counts
from .summary import summarize as summarize
from .sweep import SweepSummary as SweepSummary
