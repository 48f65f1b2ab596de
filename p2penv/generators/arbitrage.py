"""``ArbitrageMarket``: one price-taking battery facing a known price series, a task with a known optimum.

A learner check, not a market study: agent 0 owns a battery and nothing else; every other agent
(``n_prosumers >= 2`` is the environments' minimum) is inert: zero demand, zero DER, no battery.
The generator's ``prices`` sets the backstop tariffs of step t to one price ``lambda_t`` both ways
(``retail_t = feed_in_t = lambda_t``), and since nobody else ever orders, each of the battery's
orders stays unmatched and settles with the backstop at ``lambda_t``. The battery's reward of step
t is therefore exactly (``p2penv.market.settlement``)::

    r_t = lambda_t (x_t - c_t) - degradation_cost (c_t + x_t)      $

with ``c_t``, ``x_t`` the kWh charged and discharged at the battery terminals
(``charge_kw dt``, ``discharge_kw dt`` in infos). ``soc_end = "start"``: the episode must end at
the start SOC (``p2penv.market.storage.soc_end_interval``), so selling the battery empty is not a
strategy. The optimum is ``p2penv.diagnostics.arbitrage.arbitrage_optimum``.

Prices (deterministic, no draws from the ``rng``): the step starting at hour ``h`` of ``date``
(a naive local clock: ``start_hour + t dt_h`` hours after midnight) is priced by

* ``price_model="tou"``: the time-of-use tariff ``tariff`` (default ``TouTariff()``: 0.18 $/kWh
  22-07 h, 0.26 shoulder, 0.38 17-21 h);
* ``price_model="wholesale"``: the noise-free wholesale model ``wholesale`` (default
  ``WholesaleModel()``'s shape on a June Monday: about 0.04 $/kWh at the 13 h solar dip to 0.11 at 19 h).

The agent sees the hour of day (``hour_sin``, ``hour_cos``), this step's price (``buy_value``: the
retail tariff mapped like prices), its SOC (``soc``) and the step's battery interval
(``charge_max``, ``discharge_max``, narrowed by ``soc_end``); see ``p2penv.envs.fields``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..market.prices import PriceSeries
from ..market.prosumer import Fleet
from ..market.storage import SOC_END_MODES, Storage
from .tariffs import TouTariff, WholesaleModel

PRICE_MODELS = ("tou", "wholesale")


@dataclass(frozen=True)
class ArbitrageMarket:
    """Generator ``(n, horizon, dt_h, start_hour, rng) -> Fleet`` of one battery at a known price.

    Battery (agent 0): ``capacity_kwh`` 10 kWh, ``power_kw`` 2.5 kW both ways (C/4), one-way
    efficiencies ``eta`` 0.95 (90.25 % round trip), SOC in [``soc_min_kwh``, ``soc_max_kwh``] =
    [1, 9] kWh from ``soc0_kwh`` 5 kWh, ``degradation_cost`` 0.01 $/kWh of throughput.
    """

    price_model: str = "tou"
    date: str = "2025-06-16"  # the day priced (a Monday in June); naive local clock
    tariff: TouTariff = TouTariff()
    wholesale: WholesaleModel = WholesaleModel(noise_sigma=0.0)
    capacity_kwh: float = 10.0
    power_kw: float = 2.5  # kW, charging and discharging, at the battery terminals
    eta: float = 0.95  # one-way efficiency, both ways
    soc_min_kwh: float = 1.0
    soc_max_kwh: float = 9.0
    soc0_kwh: float = 5.0
    degradation_cost: float = 0.01  # $/kWh of throughput
    soc_end: str | None = "start"  # the environments' end-of-episode SOC rule (market.storage)

    def __post_init__(self) -> None:
        if self.price_model not in PRICE_MODELS:
            raise ValueError(f"ArbitrageMarket: price_model must be one of {PRICE_MODELS}, got {self.price_model!r}")
        if self.soc_end not in SOC_END_MODES:
            raise ValueError(f"ArbitrageMarket: soc_end must be one of {SOC_END_MODES}, got {self.soc_end!r}")
        if self.wholesale.noise_sigma != 0.0:
            raise ValueError("ArbitrageMarket: the wholesale model must be noise-free (noise_sigma=0), "
                             "so that the price series and the optimum are known")
        np.datetime64(self.date, "D")  # raises on a bad date

    @property
    def has_storage(self) -> bool:
        return True

    def step_times(self, horizon: int, dt_h: float, start_hour: float) -> np.ndarray:
        """(T,) naive datetime64[m] at which each step starts."""
        minutes = np.rint((float(start_hour) + float(dt_h) * np.arange(horizon)) * 60.0).astype(np.int64)
        return np.datetime64(self.date, "m") + minutes.astype("timedelta64[m]")

    def price(self, horizon: int, dt_h: float, start_hour: float) -> np.ndarray:
        """(T,) lambda_t $/kWh of each step."""
        times = self.step_times(horizon, dt_h, start_hour)
        return self.tariff(times) if self.price_model == "tou" else self.wholesale(times, None, float(dt_h))

    def prices(self, horizon: int, dt_h: float, start_hour: float) -> PriceSeries:
        """The environments' tariffs: buy and sell at lambda_t (and the wholesale price too)."""
        lam = self.price(horizon, dt_h, start_hour)
        return PriceSeries(lam, lam.copy(), lam.copy())

    def storage(self, n: int) -> Storage:
        """(N,) parameters: agent 0's battery, none for the others."""
        def first(v: float, other: float = 0.0) -> np.ndarray:
            return np.where(np.arange(n) == 0, float(v), other)

        return Storage(first(self.capacity_kwh), first(self.power_kw), first(self.power_kw), first(self.eta, 1.0),
                       first(self.eta, 1.0), first(self.soc_min_kwh), first(self.soc_max_kwh), first(self.soc0_kwh),
                       first(self.degradation_cost))

    def __call__(self, n: int, horizon: int, dt_h: float, start_hour: float, rng: np.random.Generator) -> Fleet:
        zero = np.zeros((horizon, n))
        return Fleet(demand_kw=zero, p_max_kw=zero.copy(), ramp_kw=np.full(n, np.inf), eta=np.ones(n),
                     cost_a=np.full(n, 0.01), cost_b=np.zeros(n), p0_kw=np.zeros(n), bus=np.arange(1, n + 1),
                     names=tuple(f"prosumer_{i}" for i in range(n)), shed_value=None, storage=self.storage(n))

    def batch(self, n: int, horizon: int, dt_h: float, start_hour: float, rngs: list[np.random.Generator]) -> Fleet:
        """E identical markets (the scenario draws nothing)."""
        return Fleet.stack([self(n, horizon, dt_h, start_hour, None)] * len(rngs))
