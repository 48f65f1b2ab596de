"""Bayes-Nash equilibria of the Bayesian auction scenarios, and how far a learned policy is from them.

The games are the scenarios of ``p2penv.generators.bayesian_auctions`` (types i.i.d. U[0, 1] $/kWh,
one stage game per step, registered as ``auction_v0/first_price2-v0``, ``first_price3-v0``,
``k_double_bilateral-v0``):

* ``FirstPriceGame(n)``: first-price sealed-bid auction of one unit among n buyers; BNE
  b(v) = (n-1)/n v, ex-ante BNE utility 1/(n (n+1)) $ per buyer; every value trades.
* ``KDoubleBilateralGame(k)``: bilateral k-double auction (``reference_games.ChatterjeeSamuelson``);
  for k = 1/2 b(v) = 2v/3 + 1/12, s(c) = 2c/3 + 1/4, trade iff v - c >= 1/4, so buyers with
  v in [1/4, 1] and sellers with c in [0, 3/4] can trade; ex-ante BNE utility 9/128 $ each.

``bid_functions`` turns a joint policy ``act_vector(obs (E, N, F)) -> actions (E, N, A)`` into each
learner's bid ($/kWh) and order volume (kWh) as functions of its own type on a grid: it builds the
markets with those types (``FixedTypes``), lets the policy act on the observations the env itself
makes, and steps the env once, so the price is mapped back exactly as the market does (``orders_kernel``).

Metrics (as in Bichler et al. 2021, "Learning equilibria in symmetric auction games using artificial
neural networks", Nature Machine Intelligence 3:687, the NPGA paper):

* ``l2_distance``: sqrt(mean((b - b*)^2)) over the grid points inside the role's trading region;
* ``utility_loss``: L = 1 - u(beta, beta*_-i) / u(beta*, beta*_-i), the learned strategy's ex-ante
  utility against BNE opponents relative to the BNE's (the best response to the BNE).

Exactness: the opponents' types are integrated in closed form (they play linear strategies), the
own type over the grid with composite Simpson weights. The BNE utilities are piecewise polynomials
of degree <= 3 whose kinks (1/4, 3/4 for k = 1/2) are grid nodes of the default 201-point grid, so
their Simpson integrals are exact (1/6, 1/12, 9/128); a learned strategy is known only on the grid.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Protocol, Sequence, runtime_checkable

import numpy as np

from ..envs.auction_vector import AuctionVectorEnv
from ..envs.config import MarketConfig
from ..envs.fields import OBS_FIELDS, names
from ..generators.bayesian_auctions import BilateralTrade, FixedTypes, SingleUnitAuction
from .reference_games import ChatterjeeSamuelson, LinearStrategy

GRID_POINTS = 201  # default grid of own types: 200 intervals, 1/4 and 3/4 on nodes
_OBS = names(OBS_FIELDS)
# The observation fields that carry an agent's own type: a buyer's value is its buy value; a seller's
# cost is its average cost over its interval, the mean of the marginal costs at both ends.
TYPE_FIELDS: dict[str, tuple[str, ...]] = {"buyer": ("buy_value",), "seller": ("mc_lo", "mc_hi")}


@runtime_checkable
class BayesianGame(Protocol):
    """A stage game with private types U[0, 1] and a closed-form BNE (one interface for the metrics)."""

    name: str

    @property
    def roles(self) -> tuple[str, ...]:
        """Role of each agent ``prosumer_i``: "buyer" or "seller"."""

    @property
    def learners(self) -> tuple[int, ...]:
        """Indices of the agents that bid strategically."""

    def bne(self, role: str) -> LinearStrategy:
        """The role's equilibrium bid ($/kWh) as a function of its type ($/kWh)."""

    def trading_region(self, role: str) -> tuple[float, float]:
        """Types of the role that trade with positive probability at the BNE."""

    def interim_utility(self, role: str, bids, types, quantities=1.0) -> np.ndarray:
        """Expected $ of a type bidding ``bids`` (offering ``quantities`` kWh) against BNE opponents."""

    def bne_utility(self, role: str) -> float:
        """Ex-ante $ of the role at the BNE (closed form)."""


@dataclass(frozen=True)
class FirstPriceGame:
    """First-price sealed-bid auction of one unit (ask 0) among ``n_buyers`` buyers, values U[0, 1].

    A buyer of value v bidding b against n-1 BNE opponents wins iff every opponent bids below b,
    i.e. has v' < n b / (n-1): probability min(1, n b/(n-1))^(n-1) (ties have probability 0), and
    then gains v - b. At the BNE the interim utility is v^n / n and the ex-ante one 1/(n (n+1)).
    """

    n_buyers: int = 2
    name: ClassVar[str] = "first_price"

    @property
    def roles(self) -> tuple[str, ...]:
        return ("seller",) + ("buyer",) * self.n_buyers

    @property
    def learners(self) -> tuple[int, ...]:
        return tuple(range(1, self.n_buyers + 1))

    def bne(self, role: str) -> LinearStrategy:
        _role(self, role)
        n = self.n_buyers
        # the seller does not learn: it posts its cost 0 as its ask
        return LinearStrategy(0.0, (n - 1) / n) if role == "buyer" else LinearStrategy(0.0, 0.0)

    def trading_region(self, role: str) -> tuple[float, float]:
        _learner_role(self, role)
        return 0.0, 1.0

    def interim_utility(self, role: str, bids, types, quantities=1.0) -> np.ndarray:
        _learner_role(self, role)
        n = self.n_buyers
        b = np.asarray(bids, dtype=np.float64)
        win = np.clip(n * b / (n - 1), 0.0, 1.0) ** (n - 1)
        return np.asarray(quantities, dtype=np.float64) * (np.asarray(types, dtype=np.float64) - b) * win

    def bne_utility(self, role: str) -> float:
        _learner_role(self, role)
        return 1.0 / (self.n_buyers * (self.n_buyers + 1))


@dataclass(frozen=True)
class KDoubleBilateralGame:
    """Bilateral k-double auction: seller cost c, buyer value v, U[0, 1]; trade iff b >= s at
    s + k (b - s). Closed forms from ``ChatterjeeSamuelson`` (opponent's linear BNE integrated
    exactly). BNE interim utilities: buyer (2-k)/(2(1+k)) (v - (1-k)/2)^2 for v >= (1-k)/2, seller
    (1+k)/(2(2-k)) (1 - k/2 - c)^2 for c <= 1 - k/2; ex ante (2-k)(1+k)^2/48 and (2-k)^2(1+k)/48
    (9/128 each for k = 1/2, together the equilibrium gains (1+k)(2-k)/16 = 9/64).

    A seller offering q kWh of its unit trades q at the same price (the buyer wants the whole unit
    and curtailment makes the unsold rest free), so its utility is q times the full unit's.
    """

    k: float = 0.5
    name: ClassVar[str] = "k_double_bilateral"

    @property
    def roles(self) -> tuple[str, ...]:
        return ("seller", "buyer")

    @property
    def learners(self) -> tuple[int, ...]:
        return (0, 1)

    @property
    def reference(self) -> ChatterjeeSamuelson:
        return ChatterjeeSamuelson(self.k)

    def bne(self, role: str) -> LinearStrategy:
        buyer, seller = self.reference.equilibrium()
        return buyer if _learner_role(self, role) == "buyer" else seller

    def trading_region(self, role: str) -> tuple[float, float]:
        k = self.k
        return ((1 - k) / 2, 1.0) if _learner_role(self, role) == "buyer" else (0.0, 1 - k / 2)

    def interim_utility(self, role: str, bids, types, quantities=1.0) -> np.ndarray:
        cs = self.reference
        buyer, seller = cs.equilibrium()
        if _learner_role(self, role) == "buyer":
            u = cs.buyer_payoff(bids, np.asarray(types, dtype=np.float64), seller)
        else:
            u = cs.seller_payoff(bids, np.asarray(types, dtype=np.float64), buyer)
        return np.asarray(quantities, dtype=np.float64) * u

    def bne_utility(self, role: str) -> float:
        k = self.k
        if _learner_role(self, role) == "buyer":
            return (2 - k) * (1 + k) ** 2 / 48
        return (2 - k) ** 2 * (1 + k) / 48


def _role(game: BayesianGame, role: str) -> str:
    if role not in game.roles:
        raise ValueError(f"role: {game.name} has roles {sorted(set(game.roles))}, got {role!r}")
    return role


def _learner_role(game: BayesianGame, role: str) -> str:
    _role(game, role)
    if role not in {game.roles[i] for i in game.learners}:
        raise ValueError(f"role: the {role} of {game.name} does not bid strategically (no BNE utility)")
    return role


# -- scenario -> game ---------------------------------------------------------------------------
def market_config(env_or_scenario: Any) -> MarketConfig:
    """The ``MarketConfig`` of a scenario id, a config, or an env (single or vector) that has one."""
    if isinstance(env_or_scenario, str):
        from ..registry import get_spec

        return MarketConfig.from_kwargs(**get_spec(env_or_scenario).config)
    if isinstance(env_or_scenario, MarketConfig):
        return env_or_scenario
    cfg = getattr(env_or_scenario, "config", None)
    if not isinstance(cfg, MarketConfig):
        raise ValueError(f"env_or_scenario: expected a scenario id, a MarketConfig or an auction_v0 env, "
                         f"got {type(env_or_scenario).__name__}")
    return cfg


def game_of(env_or_scenario: Any) -> BayesianGame:
    """The closed-form game a scenario plays; ValueError if its generator and mechanism have none."""
    cfg = market_config(env_or_scenario)
    gen = cfg.generator
    if isinstance(gen, FixedTypes):
        gen = gen.game
    if isinstance(gen, SingleUnitAuction) and cfg.mechanism == "pay_as_bid":
        return FirstPriceGame(gen.n_buyers)
    if isinstance(gen, BilateralTrade) and cfg.mechanism == "uniform":
        return KDoubleBilateralGame(cfg.k)
    raise ValueError(f"no closed-form BNE for generator {type(gen).__name__} with mechanism {cfg.mechanism!r}: "
                     "expected SingleUnitAuction with 'pay_as_bid' or BilateralTrade with 'uniform'")


# -- policies' bid functions --------------------------------------------------------------------
@dataclass(frozen=True)
class BidFunctions:
    """Each learner's order as a function of its own type; arrays ``(G, L)``, learners last."""

    game: BayesianGame
    values: np.ndarray  # (G,) $/kWh own type: a buyer's value, a seller's cost
    agents: tuple[str, ...]  # (L,) the learners' names
    roles: tuple[str, ...]  # (L,) their roles
    bids: np.ndarray  # (G, L) $/kWh limit price of the order
    quantities: np.ndarray  # (G, L) kWh of the order (a buyer's demand, a seller's offered unit share)


def default_grid(points: int = GRID_POINTS) -> np.ndarray:
    """``points`` evenly spaced types on [0, 1] $/kWh."""
    return np.linspace(0.0, 1.0, points)


def bid_functions(env_or_scenario: Any, act_vector: Callable[[np.ndarray], Any],
                  values: np.ndarray | None = None, agents: Sequence[str] | None = None) -> BidFunctions:
    """Evaluate a joint policy's bids on a grid of own types (every learner at each grid type).

    ``act_vector``: ``obs (E, M, F) -> actions (E, M, A)`` in [-1, 1] for the M agents ``agents``
    (default: all N; e.g. ``BnePolicy(config).act_vector``, or a trained
    ``VectorPolicy.act_vector`` with ``agents=policy.agent_names``); the other agents play the BNE
    (``BnePolicy``: the first-price seller asks its cost 0). Market g of a batch of G markets gives
    every bidder the type ``values[g]`` $/kWh; the observations are the env's own, the bids and
    volumes its ``infos``. ``values``: default ``default_grid()`` (201 points of [0, 1]).
    """
    cfg = market_config(env_or_scenario)
    game = game_of(cfg)
    gen = cfg.generator.game if isinstance(cfg.generator, FixedTypes) else cfg.generator
    v = default_grid() if values is None else np.asarray(values, dtype=np.float64)
    if v.ndim != 1 or v.size < 1:
        raise ValueError(f"values: expected a 1-D grid of types, got shape {v.shape}")
    types = np.repeat(v[:, None], len(gen.bidders), axis=1)
    vec = AuctionVectorEnv(v.size, dataclasses.replace(cfg, generator=FixedTypes(gen, types), seed=0))
    obs, _ = vec.reset(seed=0)
    everyone = vec.possible_agents
    unknown = [a for a in (agents or ()) if a not in everyone]
    if unknown or (agents is not None and (not agents or len(set(agents)) != len(agents))):
        raise ValueError(f"agents: expected distinct names among {everyone}, got {agents}")
    idx = list(range(len(everyone))) if agents is None else [everyone.index(a) for a in agents]
    actions = np.asarray(BnePolicy(cfg).act_vector(obs), dtype=np.float64)
    acted = np.asarray(act_vector(obs[:, idx]), dtype=np.float64)
    want = (v.size, len(idx), vec.core.action_dim)
    if acted.shape != want:
        raise ValueError(f"act_vector: returned actions of shape {acted.shape}, expected {want}")
    actions[:, idx] = acted
    _, _, _, _, infos = vec.step(actions)
    learn = list(game.learners)
    return BidFunctions(game, v, tuple(vec.possible_agents[i] for i in learn), tuple(game.roles[i] for i in learn),
                        infos["bid_price"][:, learn].copy(), infos["order_kwh"][:, learn].copy())


def observed_types(obs: np.ndarray, config: MarketConfig, roles: tuple[str, ...]) -> np.ndarray:
    """``(E, N)`` $/kWh: each agent's own type read back from observations ``(E, N, F)``."""
    o = np.asarray(obs, dtype=np.float64)
    span = config.price_cap - config.price_floor
    cols = np.stack([np.mean([o[:, i, _OBS.index(f)] for f in TYPE_FIELDS[r]], axis=0) for i, r in enumerate(roles)],
                    axis=1)
    return config.price_floor + 0.5 * (cols + 1.0) * span


@dataclass(frozen=True)
class BnePolicy:
    """Plays the BNE from the observations: a reference joint policy, and the fixed ``others`` agent
    of the first-price seller in training (``act_vector``). Offers the whole unit (action[1] = 1)."""

    config: MarketConfig

    def __post_init__(self) -> None:
        game_of(self.config)  # ValueError now, not at the first action, for a market without a closed form

    def act_vector(self, obs: np.ndarray) -> np.ndarray:
        """``(E, N, F)`` observations -> ``(E, N, 2)`` actions: BNE price, whole unit."""
        game = game_of(self.config)
        c = self.config
        t = observed_types(obs, c, game.roles)
        bids = np.stack([game.bne(r)(t[:, i]) for i, r in enumerate(game.roles)], axis=1)
        u = 2.0 * (bids - c.price_floor) / (c.price_cap - c.price_floor) - 1.0
        return np.stack([np.clip(u, -1.0, 1.0), np.ones_like(u)], axis=-1)


# -- metrics ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class BneMetrics:
    """Distance of one learner's bid function from the BNE."""

    agent: str
    role: str
    l2: float  # $/kWh root-mean-square distance to the BNE bid on the trading region's grid points
    utility: float  # $ per stage game, ex ante: the learned strategy against BNE opponents
    bne_utility: float  # $ per stage game, ex ante: the BNE against itself (same quadrature)
    utility_loss: float  # 1 - utility / bne_utility (0 at the BNE, 1 when it earns nothing)


def l2_distance(game: BayesianGame, role: str, values, bids) -> float:
    """sqrt(mean((b - b*)^2)) $/kWh over the grid types inside ``game.trading_region(role)``."""
    v, b = np.asarray(values, dtype=np.float64), np.asarray(bids, dtype=np.float64)
    lo, hi = game.trading_region(role)
    inside = (v >= lo) & (v <= hi)
    if not inside.any():
        raise ValueError(f"values: no grid point inside the {role}'s trading region [{lo}, {hi}]")
    return float(np.sqrt(np.mean((b[inside] - game.bne(role)(v[inside])) ** 2)))


def simpson_weights(values) -> np.ndarray:
    """Composite Simpson weights of an evenly spaced grid of [0, 1] with an odd number of points."""
    v = np.asarray(values, dtype=np.float64)
    m = v.size
    if m < 3 or m % 2 == 0 or not np.allclose(v, np.linspace(0.0, 1.0, m), rtol=0.0, atol=1e-12):
        raise ValueError(f"values: the utility integrates the own type over [0, 1] with Simpson's rule, which "
                         f"needs an evenly spaced grid of [0, 1] with an odd number (>= 3) of points, got {m} "
                         f"points on [{v.min() if m else 'nan'}, {v.max() if m else 'nan'}]")
    w = np.full(m, 2.0)
    w[1::2] = 4.0
    w[0] = w[-1] = 1.0
    return w / (3.0 * (m - 1))


def expected_utility(game: BayesianGame, role: str, values, bids, quantities=1.0) -> float:
    """Ex-ante $ of a bid function on the grid ``values`` against BNE opponents (Simpson over the own type)."""
    w = simpson_weights(values)
    return float(w @ np.broadcast_to(game.interim_utility(role, bids, values, quantities), w.shape))


def utility_loss(game: BayesianGame, role: str, values, bids, quantities=1.0) -> float:
    """L = 1 - u(beta, beta*_-i) / u(beta*, beta*_-i), both integrated on the same grid."""
    v = np.asarray(values, dtype=np.float64)
    return 1.0 - expected_utility(game, role, v, bids, quantities) / expected_utility(game, role, v, game.bne(role)(v))


def bne_metrics(bf: BidFunctions) -> tuple[BneMetrics, ...]:
    """``BneMetrics`` of every learner of a ``bid_functions`` result (its order volumes included)."""
    g, v = bf.game, bf.values
    out = []
    for j, (agent, role) in enumerate(zip(bf.agents, bf.roles)):
        b, q = bf.bids[:, j], bf.quantities[:, j]
        u, u_star = expected_utility(g, role, v, b, q), expected_utility(g, role, v, g.bne(role)(v))
        out.append(BneMetrics(agent, role, l2_distance(g, role, v, b), u, u_star, 1.0 - u / u_star))
    return tuple(out)
