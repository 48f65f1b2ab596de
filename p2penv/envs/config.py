"""Configuration of the market environments (frozen dataclasses, units in comments)."""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Callable

import numpy as np

from ..generators.households import HouseholdMix
from ..market.mechanisms import MECHANISMS
from ..market.mechanisms.posted_price import tou_price
from ..market.settlement import UNMATCHED_MODES


POSTED_PRICE_RULES = ("fixed", "tou", "mid_market")  # MarketConfig.posted_price_rule
# MarketConfig.posted_price_schedule: (start hour, $/kWh), each until the next start, wrapping at midnight
TOU_SCHEDULE = ((0.0, 0.12), (7.0, 0.18), (17.0, 0.26), (21.0, 0.18))


@dataclass(frozen=True)
class MarketConfig:
    """Everything that defines an auction_v0 scenario. Unknown keys raise a ValueError."""

    n_prosumers: int = 6  # agents in the market (>= 2)
    max_cycles: int = 24  # steps per episode (truncation)
    dt_h: float = 1.0  # step length, hours
    start_hour: float = 0.0  # hour of day of the first step
    price_floor: float = 0.0  # $/kWh, lowest admissible bid/ask
    price_cap: float = 0.40  # $/kWh, highest admissible bid/ask
    retail_tariff: float = 0.30  # $/kWh paid for unmatched buys (utility backstop)
    feed_in_tariff: float = 0.05  # $/kWh received for unmatched sells
    mechanism: str = "uniform"  # key of p2penv.market.mechanisms.MECHANISMS
    k: float = 0.5  # k-double-auction price position in the uniform-price interval
    rule: str = "marginal_pair"  # which uniform-price interval: "marginal_pair" or "walrasian"
    unmatched: str = "backstop"  # unmatched volume: "backstop" (tariffs) or "curtail" (lower dispatch before feed-in)
    posted_price: float = 0.175  # $/kWh posted by mechanism "posted_price": rule "fixed", and step 0 of "mid_market"
    posted_price_rule: str = "fixed"  # "fixed", "tou" (posted_price_schedule by hour), "mid_market" (last book)
    posted_price_schedule: tuple[tuple[float, float], ...] = TOU_SCHEDULE  # (start hour, $/kWh) of rule "tou"
    generator: Callable[..., Any] = field(default_factory=HouseholdMix)  # (n, T, dt_h, start_hour, rng) -> Fleet
    obs_kw_scale: float = 10.0  # kW mapped to 1.0 in observations
    nash_gap_in_infos: bool = False  # deprecated, True raises: wrap the env in diagnostics.nash_infos.NashConvInfos
    seed: int | None = None  # default seed when reset() gets none (None: fresh entropy)

    def __post_init__(self) -> None:
        err = []
        if not _is_int(self.n_prosumers) or self.n_prosumers < 2:
            err.append(f"n_prosumers: need an integer >= 2 agents for a market, got {self.n_prosumers!r}")
        if not _is_int(self.max_cycles) or self.max_cycles < 1:
            err.append(f"max_cycles: must be an integer >= 1, got {self.max_cycles!r}")
        if not is_seed(self.seed):
            err.append(f"seed: {SEED_RULE}, got {self.seed!r}")
        for name in ("dt_h", "start_hour", "price_floor", "price_cap", "retail_tariff", "feed_in_tariff", "k",
                     "obs_kw_scale", "posted_price"):
            v = getattr(self, name)
            if not _is_real(v) or not np.isfinite(v):
                err.append(f"{name}: must be a finite number, got {v!r}")
        if err:  # the comparisons below need finite numbers
            raise ValueError("MarketConfig: " + "; ".join(err))
        if not self.dt_h > 0:
            err.append(f"dt_h: must be > 0 hours, got {self.dt_h}")
        if not self.price_floor < self.price_cap:
            err.append(f"price_floor ({self.price_floor}) must be < price_cap ({self.price_cap})")
        if not self.feed_in_tariff <= self.retail_tariff:
            err.append(f"feed_in_tariff ({self.feed_in_tariff}) must be <= retail_tariff ({self.retail_tariff})")
        if self.mechanism not in MECHANISMS:
            err.append(f"mechanism: unknown {self.mechanism!r}; known {sorted(MECHANISMS)}")
        if not 0.0 <= self.k <= 1.0:
            err.append(f"k: must lie in [0, 1], got {self.k}")
        if self.rule not in ("marginal_pair", "walrasian"):
            err.append(f"rule: expected 'marginal_pair' or 'walrasian', got {self.rule!r}")
        if self.unmatched not in UNMATCHED_MODES:
            err.append(f"unmatched: expected one of {UNMATCHED_MODES}, got {self.unmatched!r}")
        if self.posted_price_rule not in POSTED_PRICE_RULES:
            err.append(f"posted_price_rule: expected one of {POSTED_PRICE_RULES}, got {self.posted_price_rule!r}")
        elif self.posted_price_rule != "fixed" and self.mechanism != "posted_price":
            err.append(f"posted_price_rule: {self.posted_price_rule!r} needs mechanism='posted_price', "
                       f"got {self.mechanism!r}")
        try:  # as a tuple of (hour, $/kWh) pairs also when read back from JSON lists (run.json)
            object.__setattr__(self, "posted_price_schedule",
                               tuple((float(h), float(p)) for h, p in self.posted_price_schedule))
            tou_price(0.0, self.posted_price_schedule)
        except (TypeError, ValueError) as exc:
            err.append(f"posted_price_schedule: {exc}")
        if not self.obs_kw_scale > 0:
            err.append(f"obs_kw_scale: must be > 0, got {self.obs_kw_scale}")
        if self.nash_gap_in_infos:
            err.append("nash_gap_in_infos: moved out of the env (envs do not import diagnostics); wrap the env "
                       "instead: p2penv.diagnostics.nash_infos.NashConvInfos(auction_v0.parallel_env(...)) adds each "
                       "agent's nash_gain and market['nash_conv'] to the infos")
        if err:
            raise ValueError("MarketConfig: " + "; ".join(err))

    @classmethod
    def from_kwargs(cls, **kwargs: Any) -> "MarketConfig":
        known = {f.name for f in fields(cls)}
        bad = sorted(set(kwargs) - known)
        if bad:
            raise ValueError(f"{cls.__name__}: unknown option(s) {bad}; known {sorted(known)}")
        return cls(**kwargs)


SEED_RULE = "expected None or an integer >= 0 (numpy's default_rng)"


def is_seed(x) -> bool:
    """None or an integer >= 0: what ``np.random.default_rng`` takes as a seed (bools are not seeds)."""
    return x is None or (_is_int(x) and x >= 0)


def _is_int(x) -> bool:
    return isinstance(x, (int, np.integer)) and not isinstance(x, bool)


def _is_real(x) -> bool:
    return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, bool)
