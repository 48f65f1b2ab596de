"""Versioned scenario registry: ``p2penv.make("auction_v0/sellers3-v0")`` and friends.

A scenario id is ``<env>/<name>-v<N>``. Its numbers (agents, generator, horizon, network) are
frozen: changing any of them means a new version, and ``tests/test_registry.py`` pins the first
steps of every registered scenario (a hash of observations and rewards under fixed actions), so an
accidental change fails a test instead of silently moving a published baseline. The cards
(what each scenario poses and its baselines) are in ``docs/scenarios.md``.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any, Mapping

from .scenarios import HouseholdMix, SellerBuyerMarket, sellers

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
    """The parallel PettingZoo env of a scenario; ``overrides`` replace config options (e.g. seed)."""
    spec = get_spec(scenario_id)
    return _module(spec.env).parallel_env(**_options(spec, overrides))


def make_vector(scenario_id: str, num_envs: int, **overrides: Any):
    """The vector env (``num_envs`` markets) of a scenario; ``overrides`` as in ``make``."""
    spec = get_spec(scenario_id)
    return _module(spec.env).vector_env(num_envs, **_options(spec, overrides))


@dataclass(frozen=True)
class ProfileGenerator:
    """``p2penv.scenarios.community.ProfileCommunity(**options)``, built on first use, so the registry
    imports without the ``profiles`` extra (pvlib, demandlib) and only these scenarios need it."""

    options: tuple[tuple[str, Any], ...] = ()

    @functools.cached_property
    def generator(self):
        from .scenarios.community import ProfileCommunity  # ImportError names `pip install p2penv[profiles]`

        return ProfileCommunity(**dict(self.options))

    @property
    def has_storage(self) -> bool:
        return self.generator.has_storage

    def __call__(self, *args):
        return self.generator(*args)

    def batch(self, *args):
        return self.generator.batch(*args)

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
):
    register(_spec)
