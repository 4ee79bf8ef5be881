"""ntrader: batch toolchain for NautilusTrader market data."""

__version__ = "0.1.0"
