"""Commission models for backtests: Interactive Brokers' *Fixed* pricing for US stocks."""

from __future__ import annotations

from nautilus_trader.backtest.models import FeeModel
from nautilus_trader.model.objects import Money


class IbkrFixedFeeModel(FeeModel):
    """``per_share`` USD per share, at least ``minimum`` and at most ``max_pct`` % of the value.

    IB applies the minimum per order; a backtest fills a market order on one bar, so per fill is
    the same thing here. All zero = no commissions.
    """

    def __init__(self, per_share: float = 0.005, minimum: float = 1.0, max_pct: float = 1.0):
        super().__init__()
        self.per_share = float(per_share)
        self.minimum = float(minimum)
        self.max_pct = float(max_pct)

    def get_commission(self, order, fill_qty, fill_px, instrument):
        qty = fill_qty.as_double()
        value = qty * fill_px.as_double() * float(instrument.multiplier)
        fee = max(self.per_share * qty, self.minimum) if self.per_share or self.minimum else 0.0
        if self.max_pct > 0:
            fee = min(fee, value * self.max_pct / 100.0)
        return Money(round(fee, 2), instrument.quote_currency)
