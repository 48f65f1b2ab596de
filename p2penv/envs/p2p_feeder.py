"""``auction_v0`` on a feeder: the auction's book as bilateral trades, settled on the network (issue 21).

``auction_on_feeder(P2PFeeder(...), **auction_options)`` places the agents of an ``auction_v0`` env on the
buses of a ``dlmp_v0`` feeder setting (its feeder and fixed load) and wraps it: after every step the
cleared book is decomposed into bilateral trades (``market.bilateral``) and settled on the feeder
(``network.p2p_settlement.settle_on_feeder``) at the step's realised operating point (LinDistFlow: the
fixed load plus every agent's physical net load). The clearing itself stays network-blind.

Infos (per agent, all per step): ``p2p_sold_kwh``, ``p2p_bought_kwh`` (its trades), ``p2p_delivered_kwh``
(kWh credited to it as a buyer), ``p2p_loss_kwh`` (first-order loss of its trades: as seller and buyer
each trade is counted once, at the buyer), ``p2p_charge`` ($ it pays for losses and fees, its share),
``p2p_backstop_cost`` ($ its backstop charges for an MLF shortfall, mlf_scaled), ``p2p_cash`` ($ from its
trades after charges), ``mlf`` (at its bus). ``infos[a]["market"]["p2p"]``: the step's trades as
``(seller, buyer, kwh, delivered_kwh, loss_kwh, loss_charge, fee)`` tuples of agent names and numbers,
``dso_cash`` $, ``loss_kwh``, ``losses_kw`` (the feeder's, realised), ``violated``.

Rewards: with ``charge_rewards=True`` (default) an agent's reward falls by ``p2p_charge +
p2p_backstop_cost``, so the settlement reaches the learners; the env's own settlement (trades at the
clearing price) is unchanged underneath. Budget balance per option: ``network.p2p_settlement``.

This is a wrapper, not a ``MarketConfig`` field: the auction core was being rewritten (a fused step)
while this was written, and a wrapper needs nothing from it but ``last_outcome``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..generators.feeders import FEEDER_SETTINGS, load_buses
from ..network.p2p_settlement import FEE_KINDS, OPTIONS, backstop_adjustment, network_fee_matrix, settle_on_feeder


@dataclass(frozen=True)
class P2PFeeder:
    """Where the agents sit and how their trades settle.

    scenario:    ``dlmp_v0`` feeder setting (``generators.feeders.FEEDER_SETTINGS``): feeder, fixed load, limits.
    agent_buses: bus of each agent; None -> the feeder's load buses, cycled.
    option:      ``network.p2p_settlement.OPTIONS``: "mlf_scaled", "loss_charged" or "network_fee".
    matching:    ``market.bilateral.MATCHINGS``.
    fee:         $/kWh, mean network fee over agent pairs (network_fee); fee_kind: ``FEE_KINDS``.
    loss_price:  $/kWh of losses (loss_charged); None -> the feeder setting's wholesale price.
    buyer_share: share of a loss charge or fee the buyer pays (the seller pays the rest).
    mlf_point:   "lindistflow" or "distflow" (``settle_on_feeder``).
    charge_rewards: subtract each agent's charges from its reward.
    """

    scenario: str = "ieee33-base"
    agent_buses: tuple[int, ...] | None = None
    option: str = "mlf_scaled"
    matching: str = "price_priority"
    fee: float = 0.02
    fee_kind: str = "distance"
    loss_price: float | None = None
    buyer_share: float = 1.0
    mlf_point: str = "lindistflow"
    charge_rewards: bool = True

    def __post_init__(self):
        err = []
        if self.scenario not in FEEDER_SETTINGS:
            err.append(f"scenario: unknown {self.scenario!r}; known {sorted(FEEDER_SETTINGS)}")
        if self.option not in OPTIONS:
            err.append(f"option: expected one of {OPTIONS}, got {self.option!r}")
        if self.fee_kind not in FEE_KINDS:
            err.append(f"fee_kind: expected one of {FEE_KINDS}, got {self.fee_kind!r}")
        if self.mlf_point not in ("lindistflow", "distflow"):
            err.append(f"mlf_point: expected 'lindistflow' or 'distflow', got {self.mlf_point!r}")
        if not 0.0 <= self.buyer_share <= 1.0:
            err.append(f"buyer_share: must lie in [0, 1], got {self.buyer_share}")
        if not (np.isfinite(self.fee) and self.fee >= 0):
            err.append(f"fee: must be a finite $/kWh >= 0, got {self.fee}")
        if err:
            raise ValueError("P2PFeeder: " + "; ".join(err))

    def buses(self, n_agents: int, feeder) -> np.ndarray:
        """(n_agents,) bus of each agent; ValueError on a wrong count or a root / unknown bus."""
        if self.agent_buses is None:
            lb = load_buses(feeder)
            return np.array([lb[i % len(lb)] for i in range(n_agents)], dtype=np.int64)
        b = np.asarray(self.agent_buses, dtype=np.int64)
        if b.shape != (n_agents,) or np.any((b < 0) | (b >= feeder.n_bus)) or np.any(b == feeder.root):
            raise ValueError(f"P2PFeeder: agent_buses: need {n_agents} non-root buses of {self.scenario!r} "
                             f"(0..{feeder.n_bus - 1}, root {feeder.root}), got {self.agent_buses}")
        return b


class P2PFeederEnv:
    """A parallel ``auction_v0`` env whose steps are also settled bilaterally on a feeder (module docstring).
    Everything not overridden is the wrapped env's (``env.unwrapped`` is the ``AuctionEnv``)."""

    def __init__(self, env, p2p: P2PFeeder):
        self.env = env
        self.p2p = p2p
        sc = FEEDER_SETTINGS[p2p.scenario]
        self.feeder = sc.build_feeder()
        self.buses = p2p.buses(env.config.n_prosumers, self.feeder)
        self.p_fixed_kw = sc.load_scale * self.feeder.p_load_kw
        self.q_fixed_kvar = sc.load_scale * self.feeder.q_load_kvar
        self.loss_price = float(sc.wholesale_price if p2p.loss_price is None else p2p.loss_price)
        self.fee_per_kwh = network_fee_matrix(self.feeder, self.buses, p2p.fee, p2p.fee_kind)
        self.last_settlement = None  # the FeederOutcome of the last step

    def __getattr__(self, name):
        return getattr(self.env, name)

    @property
    def unwrapped(self):
        return self.env

    def reset(self, seed=None, options=None):
        self.last_settlement = None
        return self.env.reset(seed=seed, options=options)

    def step(self, actions):
        agents = list(self.env.agents)
        obs, rewards, terms, truncs, infos = self.env.step(actions)
        out = self.env.last_outcome
        cfg, p2p, dt = self.env.config, self.p2p, self.env.config.dt_h
        c, st = out.clearing, out.settlement
        r = self.last_settlement = settle_on_feeder(
            self.feeder, self.buses, out.bid_price, c.matched, c.sides, c.unit_price, -st.net_kwh / dt, p2p.option,
            p_fixed_kw=self.p_fixed_kw, q_fixed_kvar=self.q_fixed_kvar, matching=p2p.matching,
            loss_price=self.loss_price, fee_per_kwh=self.fee_per_kwh, buyer_share=p2p.buyer_share,
            operator_surplus=c.operator_surplus, mlf_point=p2p.mlf_point)
        s = r.settlement
        t, pays, gets = s.trades_kwh[0], s.buyer_pays[0], s.seller_receives[0]
        u = np.asarray(c.unit_price, dtype=np.float64).reshape(-1)  # the env's outcome is market 0's, (N,)
        energy_in, energy_out = t * u[None, :], t * u[:, None]
        charge = (pays - energy_in).sum(0) + (energy_out - gets).sum(1)  # each agent's share as buyer and seller
        backstop = np.zeros(len(agents))
        if p2p.option == "mlf_scaled":
            backstop = backstop_adjustment(s.shortfall_kwh[0], np.reshape(st.backstop_import_kwh, -1), cfg.retail_tariff,
                                           cfg.feed_in_tariff)[0]
        cols = dict(p2p_sold_kwh=t.sum(1), p2p_bought_kwh=t.sum(0), p2p_delivered_kwh=s.delivered_kwh[0].sum(0),
                    p2p_loss_kwh=s.loss_kwh[0].sum(0), p2p_charge=charge, p2p_backstop_cost=backstop,
                    p2p_cash=s.agent_cash[0], mlf=r.mlf[0][self.buses])
        i, j = np.nonzero(t > 0)
        market = dict(trades=[(agents[a], agents[b], float(t[a, b]), float(s.delivered_kwh[0, a, b]),
                               float(s.loss_kwh[0, a, b]), float(s.loss_charge[0, a, b]), float(s.fee[0, a, b]))
                              for a, b in zip(i, j)],
                      dso_cash=float(s.dso_cash[0]), loss_kwh=float(s.loss_total_kwh[0]),
                      losses_kw=float(r.network.losses_kw[0]), violated=bool(r.network.violated[0]))
        for k, a in enumerate(agents):
            if a in infos:
                infos[a].update({name: float(v[k]) for name, v in cols.items()})
                infos[a].setdefault("market", {})
                infos[a]["market"] = {**infos[a]["market"], "p2p": market}
            if p2p.charge_rewards and a in rewards:
                rewards[a] = rewards[a] - float(charge[k] + backstop[k])
        return obs, rewards, terms, truncs, infos


def auction_on_feeder(p2p: P2PFeeder | None = None, **options) -> P2PFeederEnv:
    """``auction_v0.parallel_env(**options)`` on a feeder; ``n_prosumers`` defaults to one agent per load
    bus of the feeder setting's feeder."""
    from .auction_env import AuctionEnv

    p2p = P2PFeeder() if p2p is None else p2p
    if "n_prosumers" not in options and "config" not in options:
        options["n_prosumers"] = len(p2p.agent_buses) if p2p.agent_buses is not None else \
            len(load_buses(FEEDER_SETTINGS[p2p.scenario].build_feeder()))
    return P2PFeederEnv(AuctionEnv(**options), p2p)
