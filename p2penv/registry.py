"""Versioned scenario registry: ``p2penv.make("auction_v0/sellers3-v0")`` and friends.

A scenario id is ``<env>/<name>-v<N>``. Its numbers (agents, generator, horizon, network) are
frozen: changing any of them means a new version, and ``tests/test_registry.py`` pins the first
steps of every registered scenario (a hash of observations and rewards under fixed actions), so an
accidental change fails a test instead of silently moving a published baseline. The cards
(what each scenario poses and its baselines) are in ``docs/scenarios.md``.
"""
from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Mapping

from .generators import HouseholdMix, SellerBuyerMarket, sellers

ENVS = ("auction_v0", "dlmp_v0")


@dataclass(frozen=True)
class ScenarioSpec:
    """One registered scenario: the env, its config options and who learns in the benchmarks."""

    id: str
    env: str
    config: Mapping[str, Any]
    description: str
    question: str
    learners: tuple[str, ...] | None = None  # None: every agent learns
    extras: tuple[str, ...] = field(default=())  # pip extras it needs beyond the core install

    def __post_init__(self) -> None:
        env, _, rest = self.id.partition("/")
        name, _, version = rest.rpartition("-v")
        if env != self.env or env not in ENVS or not name or not version.isdigit():
            raise ValueError(f"scenario id: expected '<env>/<name>-v<N>' with env in {ENVS}, got {self.id!r}")


SCENARIOS: dict[str, ScenarioSpec] = {}


def register(spec: ScenarioSpec) -> None:
    """Add a scenario; ValueError if the id is taken (a changed scenario is a new version)."""
    if spec.id in SCENARIOS:
        raise ValueError(f"scenario {spec.id!r} is already registered; register a new version instead")
    SCENARIOS[spec.id] = spec


def list_scenarios(env: str | None = None) -> list[str]:
    """Registered scenario ids (of one env if given), sorted."""
    return sorted(k for k, s in SCENARIOS.items() if env is None or s.env == env)


def get_spec(scenario_id: str) -> ScenarioSpec:
    try:
        return SCENARIOS[scenario_id]
    except KeyError:
        raise ValueError(f"scenario: unknown {scenario_id!r}; known {list_scenarios()}") from None


def _options(spec: ScenarioSpec, overrides: dict) -> dict:
    opts = dict(spec.config)
    opts.update(overrides)
    return opts


def _module(env: str):
    from . import auction_v0, dlmp_v0

    return {"auction_v0": auction_v0, "dlmp_v0": dlmp_v0}[env]


def make(scenario_id: str, **overrides: Any):
    """The parallel PettingZoo env of a scenario; ``overrides`` replace config options (e.g. seed).
    The env knows its id: ``env.metadata["scenario_id"]``."""
    spec = get_spec(scenario_id)
    return _with_id(_module(spec.env).parallel_env(**_options(spec, overrides)), scenario_id)


def make_vector(scenario_id: str, num_envs: int, **overrides: Any):
    """The vector env (``num_envs`` markets) of a scenario; ``overrides`` as in ``make``."""
    spec = get_spec(scenario_id)
    return _with_id(_module(spec.env).vector_env(num_envs, **_options(spec, overrides)), scenario_id)


def _with_id(env, scenario_id: str):
    """``env.metadata["scenario_id"]`` (a copy of the class's metadata, so other envs are untouched)."""
    env.metadata = {**env.metadata, "scenario_id": scenario_id}
    return env


@dataclass(frozen=True)
class _LazyGenerator(ABC):
    """A generator of an optional extra, built from ``options`` (``_build``) on first use, so the registry
    imports without that extra; the generator calls pass through to it."""

    options: tuple[tuple[str, Any], ...] = ()

    @abstractmethod
    def _build(self):
        """The generator itself (imports its extra)."""

    @functools.cached_property
    def generator(self):
        return self._build()

    @property
    def has_storage(self) -> bool:
        return self.generator.has_storage

    def __call__(self, *args):
        return self.generator(*args)

    def batch(self, *args):
        return self.generator.batch(*args)


@dataclass(frozen=True)
class ProfileGenerator(_LazyGenerator):
    """``p2penv.generators.community.ProfileCommunity(**options)``, built on first use, so the registry
    imports without the ``profiles`` extra (pvlib, demandlib) and only these scenarios need it."""

    def _build(self):
        from .generators.community import ProfileCommunity  # ImportError names `pip install p2penv[profiles]`

        return ProfileCommunity(**dict(self.options))

    def prices(self, *args):
        return self.generator.prices(*args)


# -- the built-in scenarios (v0: the README's benchmark scenarios, storage, a week, the feeders) -----
PROFILE_STORAGE_COMMUNITY = ProfileGenerator((("kinds", (
    "pv_battery", "pv_household", "consumer", "pv_battery", "commercial", "flexible_load", "pv_battery", "pv_household",
    "pv_battery", "consumer")),))
STORAGE_COMMUNITY = HouseholdMix(kinds=("pv_battery", "pv_household", "consumer", "pv_battery", "pv_household",
                                        "flexible_load", "pv_battery", "consumer", "pv_battery", "dispatchable"))

for _spec in (
    ScenarioSpec(
        "auction_v0/sellers3-v0", "auction_v0",
        dict(n_prosumers=6, generator=SellerBuyerMarket(3), rule="walrasian", max_cycles=24),
        "3 sellers with one aggregate cost curve (a = 0.015 $/kWh^2 each, b = 0.08 $/kWh, 1.5x capacity) "
        "against 3 inelastic buyers (2 kW each, always import at the 0.30 $/kWh retail tariff); uniform "
        "price, Walrasian interval, 24 h",
        "How far above the competitive price do learning sellers push a uniform-price auction?",
        learners=tuple(sellers(3))),
    ScenarioSpec(
        "auction_v0/household6-v0", "auction_v0", dict(n_prosumers=6, max_cycles=24),
        "the default household mix: PV households, dispatchable units, consumers, flexible loads (6 agents, "
        "stylised day, seeded noise and cloudiness); every agent learns",
        "Does learning raise the community's gains from trade over truthful bidding?"),
    ScenarioSpec(
        "auction_v0/storage-community-v0", "auction_v0",
        dict(n_prosumers=10, generator=STORAGE_COMMUNITY, max_cycles=24),
        "10 households: 4 PV households with batteries (5-13.5 kWh, C/2, 90 % round trip), 2 PV households, "
        "2 consumers, 1 flexible load, 1 dispatchable unit; stylised day",
        "Do batteries learn to shift PV energy into the evening peak, and who captures the value?"),
    ScenarioSpec(
        "auction_v0/storage-week-v0", "auction_v0",
        dict(n_prosumers=10, generator=STORAGE_COMMUNITY, max_cycles=168),
        "the storage community over a week at 1 h (168 steps; the same daily shapes, one cloudiness per "
        "episode, demand noise every hour)",
        "Do strategies that exploit SOC hold up over many daily cycles?"),
    ScenarioSpec(
        "auction_v0/profile-storage-community-v0", "auction_v0",
        dict(n_prosumers=10, generator=PROFILE_STORAGE_COMMUNITY, max_cycles=24),
        "10 agents near Frankfurt on a June Monday: PV from pvlib (clear sky x seeded clouds, 3-8 kWp), "
        "BDEW H0/G0 loads from demandlib, 4 home batteries, a commercial load, a flexible load; "
        "time-of-use retail tariff (0.18/0.26/0.38 $/kWh) and a wholesale-priced feed-in",
        "Under real profiles and a time-of-use tariff, do batteries arbitrage the evening peak?",
        extras=("profiles",)),
    ScenarioSpec(
        "auction_v0/profile-week-v0", "auction_v0",
        dict(n_prosumers=10, generator=PROFILE_STORAGE_COMMUNITY, max_cycles=168),
        "the profile storage community over a week at 1 h (Monday to Sunday: BDEW weekday/weekend loads, "
        "daily cloudiness)", "Do learned storage strategies survive weekday/weekend and weather changes?",
        extras=("profiles",)),
    ScenarioSpec("dlmp_v0/default-v0", "dlmp_v0", dict(scenario="ieee33-base", max_cycles=24),
                 "IEEE 33-bus feeder, full base load, 32 agents (one per load bus); prices separate by losses",
                 "How do loss-driven DLMP differences change bidding along the feeder?"),
    ScenarioSpec("dlmp_v0/congested-v0", "dlmp_v0", dict(scenario="ieee33-congested", max_cycles=24),
                 "33-bus with line 5->6 rated 1193 kVA: 3.5 kW of headroom for the 12 agents behind it",
                 "Do sellers behind a congested line exercise local market power?"),
    ScenarioSpec("dlmp_v0/undervoltage-v0", "dlmp_v0", dict(scenario="ieee33-undervoltage", max_cycles=24),
                 "33-bus with v_min = 0.9156 p.u.: about 4 kW of headroom at the end bus 17",
                 "How do voltage limits price the feeder's far end?"),
    ScenarioSpec("dlmp_v0/teaching4-v0", "dlmp_v0", dict(scenario="teaching4", max_cycles=24),
                 "4-bus hand-check feeder, 2 agents", "A case small enough to check every DLMP by hand."),
    # resilience (S11): docs/resilience.md
    ScenarioSpec("dlmp_v0/outage-line7-v0", "dlmp_v0", dict(scenario="ieee33-outage-line7", max_cycles=24),
                 "33-bus, line 7->8 out and tie 11-21 closed (buses 8..17 re-fed from the 18..21 lateral), "
                 "full base load, 32 agents",
                 "How does a reconfiguration after a line outage move DLMPs and who gains from it?"),
    ScenarioSpec("dlmp_v0/island-v0", "dlmp_v0",
                 dict(scenario="ieee33-island", import_limit_kw=0.0, export_limit_kw=0.0, penalty=10.0,
                      unmatched="curtail", max_cycles=24),
                 "33-bus islanded: substation import/export 0, 37 kW critical fixed load, 32 default households "
                 "(PV, gensets, consumers, flexible loads); unserved load priced at 10 $/kWh (VoLL)",
                 "Can an islanded community balance itself, and what do scarcity prices do to its sellers?"),
    ScenarioSpec("dlmp_v0/voltage-stress-v0", "dlmp_v0",
                 dict(scenario="ieee33-voltage-stress", generator=HouseholdMix(kinds=(
                     "pv_household", "pv_household", "pv_household", "consumer")),
                      agent_buses=tuple((17, 16, 15, 14, 13, 12, 32, 31, 30, 29, 28)[i % 11] for i in range(32)),
                      unmatched="curtail", max_cycles=24),
                 "33-bus without fixed load, 32 PV-heavy households at the two feeder ends, limits 0.999/1.001 "
                 "p.u.: noon PV overvoltage (exports curtailed) and evening undervoltage",
                 "How do voltage limits on both sides price PV at noon and load in the evening?"),
    # more feeders (issue 21, docs/network_model.md "More feeders"); the three LV feeders are built by
    # pandapower's network functions (pip install p2penv[test]), the 69-bus one is embedded
    ScenarioSpec("dlmp_v0/ieee69-v0", "dlmp_v0", dict(scenario="ieee69-base", max_cycles=24),
                 "Baran-Wu/Das 69-bus feeder, full base load (3802 kW), 48 agents (one per load bus); prices "
                 "separate by losses", "Do loss-driven DLMPs on a longer feeder change who sells and at what markup?"),
    ScenarioSpec("dlmp_v0/ieee-eu-lv-v0", "dlmp_v0", dict(scenario="ieee-eu-lv-base", max_cycles=24),
                 "IEEE European LV test feeder as its balanced single-phase equivalent (0.416 kV, 907 buses, "
                 "57 kW peak snapshot as fixed load), 55 households at its 55 load buses; needs pandapower",
                 "On a real LV feeder with light fixed load, do household trades move DLMPs and voltages?"),
    ScenarioSpec("dlmp_v0/cigre-lv-v0", "dlmp_v0", dict(scenario="cigre-lv-base", max_cycles=24),
                 "CIGRE LV benchmark (residential, industrial and commercial feeders behind three 20/0.4 kV "
                 "trafos; 687 kW fixed load), 15 agents at its load buses; needs pandapower",
                 "How do loss factors differ between the residential, industrial and commercial LV feeders?"),
    ScenarioSpec("dlmp_v0/kerber-dorfnetz-v0", "dlmp_v0", dict(scenario="kerber-dorfnetz-base", max_cycles=24),
                 "Kerber village LV network (400 kVA trafo, 57 house connections of 6 kW as fixed load), "
                 "57 agents; needs pandapower",
                 "In a village LV network, how far do DLMPs spread between the transformer and the feeder ends?"),
):
    register(_spec)


# -- Bayesian auctions with closed-form Bayes-Nash equilibria (learner validation) -----------------
# One stage game per step (max_cycles=1: types U[0, 1] $/kWh redrawn at every autoreset); the metrics
# against the BNE are in p2penv.diagnostics.bayes_nash, the market set-up in
# p2penv.generators.bayesian_auctions. The first-price seller (prosumer_0) does not learn: it asks its
# cost 0 (TruthfulAgent or BnePolicy as the trainer's ``others``).
from .generators.bayesian_auctions import STAGE_GAME_MARKET, BilateralTrade, SingleUnitAuction  # noqa: E402

for _spec in (
    ScenarioSpec(
        "auction_v0/first_price2-v0", "auction_v0",
        dict(n_prosumers=3, generator=SingleUnitAuction(2), mechanism="pay_as_bid", **STAGE_GAME_MARKET),
        "first-price sealed-bid auction: one unit (1 kWh) offered at ask 0 by a non-learning seller, 2 buyers "
        "with values U[0, 1] $/kWh redrawn every step (one-step episodes); the highest bid wins and pays it, "
        "a loser sheds its demand (utility 0). BNE b(v) = v/2, ex-ante utility 1/6 $",
        "Do learning buyers recover the first-price Bayes-Nash equilibrium b(v) = v/2?",
        learners=("prosumer_1", "prosumer_2")),
    ScenarioSpec(
        "auction_v0/first_price3-v0", "auction_v0",
        dict(n_prosumers=4, generator=SingleUnitAuction(3), mechanism="pay_as_bid", **STAGE_GAME_MARKET),
        "first-price sealed-bid auction as first_price2 with 3 buyers: BNE b(v) = 2v/3, ex-ante utility 1/12 $",
        "Do learning buyers shade less with more competitors, as the BNE b(v) = 2v/3 says?",
        learners=("prosumer_1", "prosumer_2", "prosumer_3")),
    ScenarioSpec(
        "auction_v0/k_double_bilateral-v0", "auction_v0",
        dict(n_prosumers=2, generator=BilateralTrade(), mechanism="uniform", k=0.5, rule="marginal_pair",
             **STAGE_GAME_MARKET),
        "Chatterjee-Samuelson bilateral k-double auction (k = 1/2): a seller with cost c and a buyer with value "
        "v, both U[0, 1] $/kWh redrawn every step, one unit (1 kWh); trade iff bid >= ask at (b + s)/2, an "
        "unsold unit is curtailed (costs nothing). BNE b(v) = 2v/3 + 1/12, s(c) = 2c/3 + 1/4 (trade iff "
        "v - c >= 1/4), ex-ante utility 9/128 $ each",
        "Do a learning buyer and seller recover the linear Chatterjee-Samuelson equilibrium, and its "
        "inefficiency (27/32 of the first-best gains)?",
        learners=("prosumer_0", "prosumer_1")),
):
    register(_spec)

# -- price-taker battery arbitrage: a learner check with a known optimum (p2penv.diagnostics.arbitrage) --
from .generators.arbitrage import ArbitrageMarket  # noqa: E402  (appended block)

for _spec in (
    ScenarioSpec(
        "auction_v0/arbitrage_tou-v0", "auction_v0",
        dict(n_prosumers=2, generator=ArbitrageMarket("tou"), max_cycles=24),
        "one battery (10 kWh, 2.5 kW both ways, 95 % one-way efficiencies, SOC in [1, 9] kWh from 5 kWh, "
        "0.01 $/kWh throughput) buying and selling at the time-of-use tariff (0.18 $/kWh 22-07 h, 0.26 "
        "shoulder, 0.38 17-21 h) through the backstop; the episode must end at the start SOC; prosumer_1 "
        "is inert; 24 h from midnight",
        "Does a learner reach the known optimum (arbitrage_optimum: 1.212 $/episode) of a price-taking battery?",
        learners=("prosumer_0",)),
    ScenarioSpec(
        "auction_v0/arbitrage_wholesale-v0", "auction_v0",
        dict(n_prosumers=2, generator=ArbitrageMarket("wholesale"), max_cycles=24),
        "the arbitrage battery at the noise-free wholesale price of a June Monday (WholesaleModel: "
        "0.039-0.110 $/kWh, morning and evening peaks, midday solar dip), bought and sold through the "
        "backstop; the episode must end at the start SOC; prosumer_1 is inert; 24 h from midnight",
        "Does a learner reach the known optimum (arbitrage_optimum: 0.234 $/episode) of two daily cycles?",
        learners=("prosumer_0",)),
):
    register(_spec)

# -- SimBench profiles (issue 21): real load, PV and home-storage profiles of a SimBench LV grid ------------
# p2penv.generators.simbench_profiles; needs `pip install 'p2penv[simbench]'`, imported on first use only.


@dataclass(frozen=True)
class SimbenchGenerator(_LazyGenerator):
    """``p2penv.generators.simbench_profiles.SimbenchCommunity(**options)``, built on first use, so the
    registry imports without the ``simbench`` extra and only this scenario needs it (building its env
    without it raises an ImportError naming ``pip install 'p2penv[simbench]'``)."""

    batch_draws_in_order = True  # SimbenchCommunity.batch: one draw per market, in list order

    def _build(self):
        from .generators.simbench_profiles import SimbenchCommunity  # ImportError names the extra

        return SimbenchCommunity(**dict(self.options))


SIMBENCH_COMMUNITY = SimbenchGenerator((("grid", "1-LV-semiurb5--1-sw"),))

register(ScenarioSpec(
    "auction_v0/simbench-semiurb5-v0", "auction_v0",
    dict(n_prosumers=12, generator=SIMBENCH_COMMUNITY, max_cycles=24),
    "12 house connections of SimBench's semi-urban LV grid 5 in its 2024 scenario (1-LV-semiurb5--1-sw): "
    "3 PV-storage systems (6.5-18.2 kWp, 13-36.5 kWh batteries, C/2, 95 % one-way; loads H0-B, H0-B, G5-A), "
    "3 PV connections (4.2-51.2 kWp; loads H0-L, G6-A, H0-C), 6 load-only connections (5 households, one "
    "with a heat pump, and a G3-A commercial load); SimBench's 15-min load and PV profiles (SimBench, "
    "simbench.de, data licence ODbL 1.0) as hourly means of a day drawn from the 366 days of 2016; flat "
    "tariffs; 24 h from midnight",
    "On the load and PV profiles of a benchmark LV grid, do PV-battery owners learn to trade, and how does "
    "the outcome vary over the seasons?",
    extras=("simbench",)))
