"""Reference games with closed-form equilibria, to validate the equilibrium and market-power tools.

Generic interface (``ContinuousGame``): ``n_players``, action bounds ``lower``/``upper`` (n,) and a
vectorised ``payoffs(actions) -> payoffs`` mapping ``(..., n)`` action profiles to ``(..., n)``
payoffs. A game may add ``best_response(i, profile) -> float`` when it knows the exact one.

* ``Cournot``: quantity competition, P = max(A - B Q, 0) $/kWh, constant marginal costs c_i.
* ``LinearSFE``: symmetric linear supply-function equilibrium (Klemperer & Meyer 1989,
  Econometrica 57:1243; linear case as in Green 1996, J. Ind. Econ. 44:205), played in slopes.
* ``ChatterjeeSamuelson``: bilateral k-double auction, values and costs uniform on [0, 1]
  (Chatterjee & Samuelson 1983, Oper. Res. 31:835); Bayesian, so it exposes per-type expected
  payoffs instead of the profile interface.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class ContinuousGame(Protocol):
    """An n-player game with one bounded real action per player."""

    @property
    def n_players(self) -> int: ...

    @property
    def lower(self) -> np.ndarray: ...

    @property
    def upper(self) -> np.ndarray: ...

    def payoffs(self, actions: np.ndarray) -> np.ndarray: ...


def _actions(actions, n: int) -> np.ndarray:
    a = np.asarray(actions, dtype=np.float64)
    if a.ndim == 0 or a.shape[-1] != n:
        raise ValueError(f"actions: last axis must have length n_players={n}, got shape {a.shape}")
    return a


# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CournotEquilibrium:
    """Closed-form Cournot-Nash point: quantities (n,) kWh, price $/kWh, profits (n,) $,
    shares (n,), hhi, elasticity = |dQ/dP * P/Q| at the equilibrium point."""

    quantities: np.ndarray
    price: float
    profits: np.ndarray
    shares: np.ndarray
    hhi: float
    elasticity: float


@dataclass(frozen=True)
class Cournot:
    """Cournot oligopoly. A: demand intercept ($/kWh), B: slope ($/kWh per kWh), costs: c_i $/kWh."""

    A: float
    B: float
    costs: tuple[float, ...]

    def __post_init__(self):
        if not self.B > 0:
            raise ValueError(f"B: inverse-demand slope must be > 0, got {self.B}")
        if len(self.costs) < 1:
            raise ValueError("costs: need at least one firm")
        object.__setattr__(self, "costs", tuple(float(c) for c in self.costs))

    @property
    def n_players(self) -> int:
        return len(self.costs)

    @property
    def lower(self) -> np.ndarray:
        return np.zeros(self.n_players)

    @property
    def upper(self) -> np.ndarray:
        # Beyond A/B the price is 0, so no firm ever wants more.
        return np.full(self.n_players, self.A / self.B)

    def price(self, actions) -> np.ndarray:
        a = _actions(actions, self.n_players)
        return np.maximum(self.A - self.B * a.sum(-1), 0.0)

    def payoffs(self, actions) -> np.ndarray:
        a = _actions(actions, self.n_players)
        return (self.price(a)[..., None] - np.asarray(self.costs)) * a

    def best_response(self, i: int, profile) -> float:
        """q_i = max(0, (A - c_i - B Q_{-i}) / (2B)): first-order condition of a concave profit."""
        a = _actions(profile, self.n_players)
        others = a.sum() - a[i]
        return float(np.clip((self.A - self.costs[i] - self.B * others) / (2 * self.B), 0.0, self.upper[i]))

    def equilibrium(self) -> CournotEquilibrium:
        """q_i = (A - N c_i + sum_{j!=i} c_j) / ((N+1) B); ValueError if some q_i <= 0 (not interior)."""
        c = np.asarray(self.costs)
        n = c.size
        q = (self.A - n * c + (c.sum() - c)) / ((n + 1) * self.B)
        if np.any(q <= 0):
            bad = int(np.argmin(q))
            raise ValueError(
                f"costs: firm {bad} would produce {q[bad]:.4g} <= 0; the interior closed form does not apply"
            )
        Q = q.sum()
        P = self.A - self.B * Q
        s = q / Q
        return CournotEquilibrium(q, float(P), (P - c) * q, s, float((s**2).sum()), float(P / (self.B * Q)))


# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LinearSFE:
    """Symmetric linear supply-function equilibrium, played as a game in supply slopes.

    Demand D(p) = A - gamma p (kWh); each of N firms has cost C(q) = a q + c q^2 / 2 ($) and offers
    the supply function S_i(p) = beta_i (p - a); its action is the slope beta_i (kWh per $/kWh).
    The market clears at p = (A + a sum beta) / (gamma + sum beta). Against rivals' slopes the
    optimal point on the residual demand satisfies q = (p - C'(q)) (gamma + sum_{j!=i} beta_j)
    (Klemperer-Meyer's first-order condition), reached by the slope
    beta_i = G / (1 + c G), G = gamma + sum_{j!=i} beta_j, whatever A is: this is why the fixed
    point is a *supply-function* equilibrium, optimal ex post for every demand shock.
    Symmetric solution: c (N-1) beta^2 + (c gamma - (N-2)) beta - gamma = 0, positive root.
    ``intercepts``: demand shocks A; payoffs are averaged over them.
    """

    N: int
    gamma: float
    c: float
    a: float = 0.0
    intercepts: tuple[float, ...] = (10.0,)

    def __post_init__(self):
        if self.N < 1:
            raise ValueError(f"N: need at least one firm, got {self.N}")
        if not self.gamma > 0:
            raise ValueError(f"gamma: demand slope must be > 0, got {self.gamma}")
        if not self.c > 0:
            raise ValueError(f"c: marginal-cost slope must be > 0 (bounds the slopes by 1/c), got {self.c}")
        object.__setattr__(self, "intercepts", tuple(float(x) for x in self.intercepts))
        if any(x <= self.gamma * self.a for x in self.intercepts):
            raise ValueError("intercepts: demand must be positive at p = a for every shock")

    @property
    def n_players(self) -> int:
        return self.N

    @property
    def lower(self) -> np.ndarray:
        return np.zeros(self.N)

    @property
    def upper(self) -> np.ndarray:
        # A firm never offers more than its marginal-cost curve (beta = 1/c): G/(1+cG) < 1/c.
        return np.full(self.N, 1.0 / self.c)

    def price(self, actions) -> np.ndarray:
        """(...) clearing price $/kWh per shock: shape (..., n_shocks)."""
        b = _actions(actions, self.N).sum(-1)[..., None]
        A = np.asarray(self.intercepts)
        return (A + self.a * b) / (self.gamma + b)

    def payoffs(self, actions) -> np.ndarray:
        beta = _actions(actions, self.N)
        p = self.price(beta)  # (..., K)
        q = beta[..., None, :] * (p - self.a)[..., None]  # (..., K, n)
        prof = p[..., None] * q - self.a * q - 0.5 * self.c * q**2
        return prof.mean(-2)

    def best_response(self, i: int, profile) -> float:
        b = _actions(profile, self.N)
        G = self.gamma + b.sum() - b[i]
        return float(G / (1.0 + self.c * G))

    def equilibrium_slope(self) -> float:
        """Positive root of c (N-1) beta^2 + (c gamma - (N-2)) beta - gamma = 0 (N >= 2)."""
        n, g, c = self.N, self.gamma, self.c
        if n == 1:
            return g / (1.0 + c * g)  # monopoly: best response to residual = full demand
        qa, qb, qc = c * (n - 1), c * g - (n - 2), -g
        return float((-qb + np.sqrt(qb * qb - 4 * qa * qc)) / (2 * qa))


# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LinearStrategy:
    """Report r(t) = intercept + slope * t for a type t (value or cost) in [0, 1]."""

    intercept: float
    slope: float

    def __call__(self, t):
        return self.intercept + self.slope * np.asarray(t, dtype=np.float64)


@dataclass(frozen=True)
class ChatterjeeSamuelson:
    """Bilateral k-double auction: buyer value v, seller cost c, both U[0, 1], independent.

    Trade iff bid b >= ask s, at price p = s + k (b - s) (same k convention as ``uniform.clear``).
    Linear equilibrium (derived from both first-order conditions, any k in [0, 1]):
    b(v) = v / (1 + k) + k (1 - k) / (2 (1 + k)),  s(c) = c / (2 - k) + (1 - k) / 2.
    Trade happens iff v >= (1 - k)/2 + c (1 + k)/(2 - k), which gives expected gains
    (1 + k)(2 - k)/16 (``equilibrium_gains``). For k = 1/2: b(v) = 2v/3 + 1/12, s(c) = 2c/3 + 1/4,
    trade iff v - c >= 1/4, gains 9/64 against the first-best 1/6, i.e. efficiency 27/32;
    k = 0 or 1 (one side posts a monopoly price, the other reports truthfully): gains 1/8,
    efficiency 3/4.

    ``buyer_payoff`` / ``seller_payoff`` take any ``LinearStrategy`` of the opponent: increasing,
    flat (a posted price: slope 0) or decreasing; the set of opponent types that trade is an
    interval of [0, 1] in every case and the payoff is integrated exactly over it.
    """

    k: float = 0.5

    def __post_init__(self):
        if not 0.0 <= self.k <= 1.0:
            raise ValueError(f"k: must lie in [0, 1], got {self.k}")

    def equilibrium(self) -> tuple[LinearStrategy, LinearStrategy]:
        """(buyer strategy, seller strategy) of the linear equilibrium."""
        k = self.k
        return (
            LinearStrategy(k * (1 - k) / (2 * (1 + k)), 1 / (1 + k)),
            LinearStrategy((1 - k) / 2, 1 / (2 - k)),
        )

    @staticmethod
    def _trading_types(strategy: LinearStrategy, report: np.ndarray, opponent_is_seller: bool):
        """Ends (t0, t1) of the interval of opponent types t in [0, 1] that trade with ``report``.

        A seller type c trades iff its ask alpha + beta c <= bid; a buyer type v trades iff its bid
        alpha + beta v >= ask. beta > 0 and beta < 0 give [0, x] or [x, 1] with x the crossing
        type clipped to [0, 1]; beta = 0 (a posted price) gives all of [0, 1] or nothing.
        """
        a, b = float(strategy.intercept), float(strategy.slope)
        if not (np.isfinite(a) and np.isfinite(b)):
            raise ValueError(f"strategy: intercept and slope must be finite, got {strategy}")
        r = np.asarray(report, dtype=np.float64)
        if b == 0.0:
            trades = (a <= r) if opponent_is_seller else (a >= r)
            return np.zeros_like(r), np.where(trades, 1.0, 0.0)
        x = np.clip((r - a) / b, 0.0, 1.0)
        # the opponent's trading set lies below x iff its report moves toward trading as t falls
        below = (b > 0) == opponent_is_seller
        return (np.zeros_like(x), x) if below else (x, np.ones_like(x))

    def buyer_payoff(self, bid, value, seller: LinearStrategy) -> np.ndarray:
        """Expected $ of a buyer of ``value`` bidding ``bid`` when c ~ U[0,1] asks seller(c).

        E = int over {c: s(c) <= b} of (v - (1-k) s(c) - k b) dc, exact for any linear s.
        """
        b = np.asarray(bid, dtype=np.float64)
        c0, c1 = self._trading_types(seller, b, opponent_is_seller=True)
        int_s = seller.intercept * (c1 - c0) + 0.5 * seller.slope * (c1**2 - c0**2)
        return (c1 - c0) * (value - self.k * b) - (1 - self.k) * int_s

    def seller_payoff(self, ask, cost, buyer: LinearStrategy) -> np.ndarray:
        """Expected $ of a seller of ``cost`` asking ``ask`` when v ~ U[0,1] bids buyer(v).

        E = int over {v: b(v) >= s} of ((1-k) s + k b(v) - c) dv, exact for any linear b.
        """
        s = np.asarray(ask, dtype=np.float64)
        v0, v1 = self._trading_types(buyer, s, opponent_is_seller=False)
        int_b = buyer.intercept * (v1 - v0) + 0.5 * buyer.slope * (v1**2 - v0**2)
        return (v1 - v0) * ((1 - self.k) * s - cost) + self.k * int_b

    @staticmethod
    def first_best_gains() -> float:
        """E[(v - c)^+] = int_0^1 d (1 - d) dd = 1/6 (d = v - c has density 1 - d on [0, 1])."""
        return 1.0 / 6.0

    def equilibrium_gains(self) -> float:
        """Expected gains from trade E[(v - c) 1{b(v) >= s(c)}] at the linear equilibrium.

        Trade iff v >= a0 + r c with a0 = (1-k)/2, r = (1+k)/(2-k), possible for c <= m = 1 - k/2.
        With t = m - c the inner integral int_{a0+rc}^1 (v - c) dv is r t (k/2 + t) - r^2 t^2 / 2,
        and integrating t over [0, m] gives (1 + k)(2 - k)/16 (9/64 at k = 1/2, 1/8 at k = 0, 1).
        """
        return (1.0 + self.k) * (2.0 - self.k) / 16.0

    def equilibrium_efficiency(self) -> float:
        """Equilibrium gains / first-best gains = 3 (1 + k)(2 - k)/8 (27/32 for k = 1/2)."""
        return self.equilibrium_gains() / self.first_best_gains()
