"""Empirical audit of a clearing mechanism against the properties of spec S7.

True values are the books' prices; agents are orders. For a batch of books the audit measures

* incentive compatibility: the largest utility gain any single agent gets by reporting another
  price from ``grid`` while everyone else stays truthful (quantities are kept truthful). This is
  the **complete-information ex-post regret** of truthful reporting: the deviation is chosen book
  by book, knowing every other order exactly; 0 on books covering all type profiles means
  truth-telling is dominant (on the grid). It is *not* the Bayesian (interim) regret
  max_r E_others[u(r)] - E_others[u(truth)] of an agent that picks one misreport for its type
  without seeing the others: that one never exceeds the mean ex-post regret (max of means <=
  mean of maxima) and is what a Bayes-Nash equilibrium sets to 0 (Chatterjee-Samuelson's linear
  strategies have zero Bayesian but positive ex-post regret). Bilateral Bayesian payoffs:
  ``reference_games.ChatterjeeSamuelson.buyer_payoff``/``seller_payoff``;
* individual rationality: agents with negative utility when truthful (count and $ amount);
* budget balance: operator surplus = buyer payments - seller receipts (< 0 is a deficit);
* efficiency: realised true welfare / maximal welfare (the efficient allocation's).

Myerson-Satterthwaite says no mechanism scores perfectly on all four in bilateral trade.
All deviations are cleared in one batched call: B * n * len(grid) books.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..market.mechanisms.book import efficient_allocation
from ..market.mechanisms.types import Clearing, check_book
from .fairness import quasilinear_utilities

_TOL = 1e-9


@dataclass(frozen=True)
class MechanismAudit:
    """Audit of one mechanism on B books of n orders.

    utility: (B, n) $ truthful utilities; ic_gain: (B, n) $ complete-information ex-post regret
    per agent: its best gain from a price misreport on the grid, knowing this book's other orders
    (>= 0, 0 for idle/empty orders; not a Bayesian/interim regret, see the module docstring);
    ic_gain_max: largest of them; ir_violations: number of agents with
    utility < -tol; ir_shortfall: $ sum of those negative utilities (<= 0);
    surplus: (B,) $ operator surplus; deficit_books: books with surplus < -tol; total_surplus: $;
    welfare, max_welfare: (B,) $ true welfare realised / attainable;
    efficiency: sum welfare / sum max_welfare (nan if no gains from trade exist).
    """

    utility: np.ndarray
    ic_gain: np.ndarray  # (B, n) complete-information ex-post regret of truth-telling, not Bayesian
    ic_gain_max: float
    ir_violations: int
    ir_shortfall: float
    surplus: np.ndarray
    deficit_books: int
    total_surplus: float
    welfare: np.ndarray
    max_welfare: np.ndarray
    efficiency: float


def _utilities(c: Clearing, values: np.ndarray) -> np.ndarray:
    return quasilinear_utilities(values, c.sides, c.matched, c.cash)


def audit_mechanism(clear_fn: Callable[..., Clearing], books, *, grid=None, grid_size: int = 41,
                    tol: float = _TOL, **params) -> MechanismAudit:
    """Audit ``clear_fn(prices, quantities, sides, **params)`` on ``books = (prices, quantities,
    sides)`` of shape (B, n) (or (n,) for one book), prices being true values.

    grid: 1-D misreport prices $/kWh; default ``grid_size`` points spanning all book prices.
    ``ic_gain`` is the complete-information ex-post regret (each agent's best grid misreport for
    this very book, the others' orders known), not the Bayesian regret; see the module docstring.
    """
    p, q, s = check_book(*books)
    if p.ndim == 1:
        p, q, s = p[None], q[None], s[None]
    if p.ndim != 2:
        raise ValueError(f"books: expected arrays of shape (B, n), got {p.shape}")
    b, n = p.shape
    g = np.linspace(p.min(), p.max(), grid_size) if grid is None else np.asarray(grid, dtype=np.float64).ravel()
    if g.size == 0:
        raise ValueError("grid: needs at least one misreport price")

    truth = clear_fn(p, q, s, **params)
    u = _utilities(truth, p)

    # Deviations: axis 1 = deviating agent i, axis 2 = grid price reported by i.
    dev_p = np.broadcast_to(p[:, None, None, :], (b, n, g.size, n)).copy()
    idx = np.arange(n)
    dev_p[:, idx, :, idx] = g[None, :]
    rep = (b, n, g.size, n)
    dev = clear_fn(dev_p, np.broadcast_to(q[:, None, None, :], rep), np.broadcast_to(s[:, None, None, :], rep), **params)
    u_dev = _utilities(dev, np.broadcast_to(p[:, None, None, :], rep))
    own_dev = u_dev[:, idx, :, idx]  # (n, B, G): agent i's true utility when it deviates
    best = own_dev.max(-1).T  # (B, n)
    active = (s != 0) & (q > 0)
    gain = np.where(active, np.maximum(best - u, 0.0), 0.0)

    alloc = efficient_allocation(p, q, s)
    sign = np.where(alloc.is_ask, 1.0, -1.0)
    w_max = -(sign * alloc.matched * p).sum(-1)
    w = (u.sum(-1) + truth.operator_surplus).reshape(b)  # true welfare = utilities + operator
    neg = active & (u < -tol)
    surplus = np.asarray(truth.operator_surplus, dtype=np.float64).reshape(b)
    tot_max = w_max.sum()
    return MechanismAudit(
        utility=u,
        ic_gain=gain,
        ic_gain_max=float(gain.max()) if gain.size else 0.0,
        ir_violations=int(neg.sum()),
        ir_shortfall=float(np.where(neg, u, 0.0).sum()),
        surplus=surplus,
        deficit_books=int((surplus < -tol).sum()),
        total_surplus=float(surplus.sum()),
        welfare=w,
        max_welfare=w_max,
        efficiency=float(w.sum() / tot_max) if tot_max > tol else float("nan"),
    )
