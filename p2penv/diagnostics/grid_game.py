"""A market step's stage game discretised on an action grid: the finite game that the pure-equilibrium
enumeration (``equilibrium_set``) and the mixed-equilibrium solvers (``mixed``) work on.

``players`` (e.g. the sellers) each choose one of the K normalised actions ``grid[k]`` = (u_price,
u_dispatch); every other agent keeps its action in ``base`` (e.g. truthful buyers). A payoff is the
player's reward of the step ($/step) from ``p2penv.market.pipeline.run_step``, evaluated in batches:
the diagnostics never re-implement the market. Profiles are arrays of grid indices, ``(..., n)``.

Symmetry: when the players are interchangeable (same demand, feasible interval, efficiency, costs and
values; the clearing shares ties pro rata, so identical orders are treated identically), a profile's
payoffs depend only on the multiset of the others' actions. ``is_symmetric`` checks the context; the
enumeration then visits sorted profiles only.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..market.pipeline import MarketRules, StepContext, run_step

# run_step books per batch (each (N, 2) float64 plus the clearing's work arrays: ~100 MB at 200k x 11 agents)
CHUNK = 200_000


@dataclass(frozen=True, eq=False)
class GridGame:
    """Stage game of ``players`` on ``grid`` (K, 2); the other agents play ``base`` (N, 2)."""

    ctx: StepContext
    rules: MarketRules
    base: np.ndarray  # (N, 2) normalised joint action; the players' rows are replaced
    players: tuple[int, ...]
    grid: np.ndarray  # (K, 2) normalised (u_price, u_dispatch) actions
    labels: tuple[str, ...] = field(default=())  # optional names of the players

    def __post_init__(self):
        b = np.asarray(self.base, dtype=np.float64)
        g = np.asarray(self.grid, dtype=np.float64)
        if b.ndim != 2 or b.shape[1] != 2:
            raise ValueError(f"base: expected an (N, 2) joint action, got shape {b.shape}")
        if g.ndim != 2 or g.shape[1] != 2 or g.shape[0] < 1:
            raise ValueError(f"grid: expected a (K, 2) array of actions, got shape {g.shape}")
        pl = tuple(int(i) for i in self.players)
        if not pl or len(set(pl)) != len(pl) or min(pl) < 0 or max(pl) >= b.shape[0]:
            raise ValueError(f"players: need distinct agent indices in [0, {b.shape[0]}), got {self.players}")
        object.__setattr__(self, "base", b)
        object.__setattr__(self, "grid", g)
        object.__setattr__(self, "players", pl)

    @property
    def n(self) -> int:
        return len(self.players)

    @property
    def k(self) -> int:
        return self.grid.shape[0]

    def joint(self, profile) -> np.ndarray:
        """(..., N, 2) joint actions of grid-index profiles (..., n)."""
        idx = np.asarray(profile, dtype=np.int64)
        out = np.broadcast_to(self.base, idx.shape[:-1] + self.base.shape).copy()
        out[..., list(self.players), :] = self.grid[idx]
        return out

    def outcome(self, profile):
        """``run_step`` of grid-index profiles (..., n) (one batch: keep it small)."""
        return run_step(self.joint(profile), self.ctx, self.rules)

    def payoffs(self, profile) -> np.ndarray:
        """(..., n) $/step rewards of the players for grid-index profiles (..., n), in batches of ``CHUNK``."""
        idx = np.asarray(profile, dtype=np.int64)
        flat = idx.reshape(-1, self.n)
        out = np.empty(flat.shape)
        pl = list(self.players)
        for s in range(0, flat.shape[0], CHUNK):
            r = run_step(self.joint(flat[s:s + CHUNK]), self.ctx, self.rules).settlement.reward
            out[s:s + CHUNK] = r[:, pl]
        return out.reshape(idx.shape)

    def payoff_tensor(self, max_cells: int = 5_000_000) -> np.ndarray:
        """(K,)*n + (n,) payoffs of every pure profile; refuses beyond ``max_cells`` profiles."""
        cells = self.k ** self.n
        if cells > max_cells:
            raise ValueError(f"payoff_tensor: {self.k}^{self.n} = {cells} profiles exceed max_cells={max_cells}; "
                             "use a coarser grid or the symmetric methods")
        prof = np.stack(np.meshgrid(*[np.arange(self.k)] * self.n, indexing="ij"), axis=-1)
        return self.payoffs(prof)

    def is_symmetric(self) -> bool:
        """The players are interchangeable: identical context entries (see module docstring)."""
        c, pl = self.ctx, list(self.players)
        arrays = [c.demand_kw, c.p_max_kw, c.lo_kw, c.hi_kw, c.ramp_violation_kw, c.eta, c.cost_a, c.cost_b]
        arrays += [a for a in (c.shed_value, c.charge_max_kw, c.discharge_max_kw, c.degradation_cost) if a is not None]
        return all(np.all(np.asarray(a)[pl] == np.asarray(a)[pl[0]]) for a in arrays)


def price_dispatch_grid(prices, dispatch, rules: MarketRules) -> np.ndarray:
    """(len(prices) * len(dispatch), 2) normalised grid from prices ($/kWh, inside [floor, cap]) and
    dispatch positions u_dispatch in [-1, 1] (-1: the feasible floor, +1: the feasible maximum)."""
    p = np.asarray(prices, dtype=np.float64)
    d = np.asarray(dispatch, dtype=np.float64)
    if np.any(p < rules.price_floor) or np.any(p > rules.price_cap):
        raise ValueError(f"prices: must lie in [{rules.price_floor}, {rules.price_cap}] $/kWh")
    if np.any(np.abs(d) > 1):
        raise ValueError("dispatch: u_dispatch must lie in [-1, 1]")
    u = 2.0 * (p - rules.price_floor) / (rules.price_cap - rules.price_floor) - 1.0
    return np.stack(np.meshgrid(u, d, indexing="ij"), axis=-1).reshape(-1, 2)


@dataclass(frozen=True, eq=False)
class SymmetricTable:
    """Payoffs of a symmetric grid game by the others' multiset: ``payoff[m, a]`` ($/step) is the
    reward of a player playing ``a`` when the other n - 1 play the sorted grid indices ``others[m]``.

    others: (M, n - 1) sorted index tuples, every multiset once (M = C(K + n - 2, n - 1));
    multiplicity: (M,) number of orderings of each multiset, (n - 1)! / prod(count!), so the
    probability of ``others[m]`` under i.i.d. draws from a mixture s is multiplicity * prod s[others[m]].
    """

    n: int
    k: int
    others: np.ndarray
    multiplicity: np.ndarray
    payoff: np.ndarray

    def index(self, others_sorted) -> np.ndarray:
        """Row of each sorted (..., n - 1) multiset (lexicographic rank in ``others``)."""
        o = np.asarray(others_sorted, dtype=np.int64)
        return np.searchsorted(self._keys, multiset_key(o, self.k))

    @property
    def _keys(self) -> np.ndarray:
        return multiset_key(self.others, self.k)


def multiset_key(o: np.ndarray, k: int) -> np.ndarray:
    """Integer key of sorted index tuples, increasing in lexicographic order (base k)."""
    key = np.zeros(o.shape[:-1], dtype=np.int64)
    for j in range(o.shape[-1]):
        key = key * k + o[..., j]
    return key


def multisets(k: int, m: int) -> np.ndarray:
    """(C(k + m - 1, m), m) sorted index tuples over range(k), in lexicographic order."""
    from itertools import combinations_with_replacement

    if m == 0:
        return np.zeros((1, 0), dtype=np.int64)
    return np.array(list(combinations_with_replacement(range(k), m)), dtype=np.int64).reshape(-1, m)


def count_multisets(k: int, m: int) -> int:
    from math import comb

    return comb(k + m - 1, m)


def symmetric_table(game: GridGame, max_books: int = 50_000_000) -> SymmetricTable:
    """``SymmetricTable`` of a symmetric game: M x K ``run_step`` books (player ``players[0]`` deviates,
    the others play the multiset in order). Raises when the players are not interchangeable or the
    M x K books exceed ``max_books`` (about 3e5 books/s on one core for 11 agents)."""
    from math import factorial

    if not game.is_symmetric():
        raise ValueError("symmetric_table: the players are not interchangeable (see GridGame.is_symmetric)")
    n, k = game.n, game.k
    m = count_multisets(k, n - 1)
    if m * k > max_books:
        raise ValueError(f"symmetric_table: {m} multisets x {k} actions = {m * k} books exceed max_books={max_books}; "
                         "use a coarser grid")
    others = multisets(k, n - 1)
    # prod(count!) of a sorted tuple = prod over positions of the run length so far
    run = np.ones(others.shape[0])
    denom = np.ones(others.shape[0])
    for j in range(1, n - 1):
        run = np.where(others[:, j] == others[:, j - 1], run + 1.0, 1.0)
        denom *= run
    mult = factorial(n - 1) / denom
    payoff = np.empty((others.shape[0], k))
    per = max(1, CHUNK // k)
    own = np.arange(k)
    for s in range(0, others.shape[0], per):
        o = others[s:s + per]
        prof = np.concatenate([np.repeat(own[None, :, None], o.shape[0], 0),
                               np.repeat(o[:, None, :], k, 1)], axis=-1)  # (m, K, n): player 0 first
        payoff[s:s + per] = game.payoffs(prof)[..., 0]
    return SymmetricTable(n, k, others, mult, payoff)
