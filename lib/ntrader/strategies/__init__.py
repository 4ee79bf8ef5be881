"""ntrader's own example strategies; see ``docs/strategies.md`` for adding yours.

Each module holds one NautilusTrader ``Strategy`` and its ``StrategyConfig`` and has a matching
``conf/strategy/<name>.yaml`` that the backtest loads with ``STRATEGY=<name>``.
"""
