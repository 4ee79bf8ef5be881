"""What a fetch did for one bar type: requests, bars, sessions, what IB had no data for, and
what the corporate-actions checks found (``summary.json`` ``instruments``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass
class FetchReport:
    """What a fetch did for one bar type (``summary.json`` ``instruments``) and what remains."""

    bar_type: str
    requests: int = 0
    planned_requests: int = 0  # what the plan said before the first request (fetchplan)
    retries: int = 0
    outages: list[dict[str, object]] = field(default_factory=list)  # lost connections waited out
    bars: int = 0
    sessions_missing: int = 0  # sessions requested: no bar in the catalog, or holes
    sessions_with_holes: int = 0  # of those, sessions that had bars but holes
    sessions_fetched: int = 0  # sessions IB sent bars for
    nodata_sessions: int = 0
    seconds: float = 0.0
    nodata: list[str] = field(default_factory=list)  # sessions IB had no bar for, this run
    holes_left: dict[str, int] = field(default_factory=dict)  # session -> bars IB's answer lacked
    not_over: list[str] = field(default_factory=list)  # of those, asked before the session ended
    # sessions not asked: IB's earlier "no data" answer is still trusted (nodata records)
    known_nodata: list[dict[str, object]] = field(default_factory=list)
    # the split-scale check (ntrader.ibkr.verify): requests it cost, the stored session re-asked
    # and its verdict, the splits found and repaired, sessions off IB's answer by no split ratio
    verify_requests: int = 0
    scale_check: dict[str, object] | None = None
    corporate_actions: list[dict[str, object]] = field(default_factory=list)
    scale_differs: dict[str, dict[str, float]] = field(default_factory=dict)
    # corporate_actions.dividends: the requests the factor refresh cost and what it kept
    factor_requests: int = 0
    factors: dict[str, object] | None = None

    def as_dict(self) -> dict[str, object]:
        return asdict(self)
