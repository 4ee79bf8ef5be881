"""Public names of ``ntrader.backtest`` (read by lazy_loader and by type checkers)."""

from .engine import (
    BacktestSpec as BacktestSpec,
)
from .engine import (
    FeeSpec as FeeSpec,
)
from .engine import (
    LoadedData as LoadedData,
)
from .engine import (
    MissingData as MissingData,
)
from .engine import (
    StrategySpec as StrategySpec,
)
from .engine import (
    VenueSpec as VenueSpec,
)
from .engine import (
    analyse as analyse,
)
from .engine import (
    build_engine as build_engine,
)
from .engine import (
    check_and_load as check_and_load,
)
from .engine import (
    run_engine as run_engine,
)
from .fees import IbkrFixedFeeModel as IbkrFixedFeeModel
from .performance import daily_equity as daily_equity
from .performance import risk_metrics as risk_metrics
from .reports import (
    combine_venues as combine_venues,
)
from .reports import (
    summarize as summarize,
)
from .reports import (
    write_reports as write_reports,
)
from .sweep import SweepSummary as SweepSummary
