"""Config -> IBKR settings and fetch targets (shared by fetch.py and backtest's auto-fetch)."""

from __future__ import annotations

from omegaconf import DictConfig

from ntrader.ibkr import IbkrSettings


def ibkr_settings(cfg: DictConfig) -> IbkrSettings:
    i = cfg.ibkr
    return IbkrSettings(
        host=str(i.host),
        port=int(i.port),
        client_id=int(i.client_id),
        connect_timeout=float(i.connect_timeout),
        request_timeout=float(i.request_timeout),
        retries=int(i.retries),
    )
