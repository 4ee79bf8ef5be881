"""Public names of ``ntrader.ibkr.sim`` (read by lazy_loader and by type checkers)."""

from .faults import Faults as Faults
from .faults import PacingRules as PacingRules
from .market import DAILY as DAILY
from .market import SYMBOLS as SYMBOLS
from .market import SymbolInfo as SymbolInfo
from .market import ground_truth as ground_truth
from .market import synthetic_symbol as synthetic_symbol
from .runner import SimulatorThread as SimulatorThread
from .runner import run_simulator as run_simulator
from .server import HistoricalRequest as HistoricalRequest
from .server import TwsSimulator as TwsSimulator
