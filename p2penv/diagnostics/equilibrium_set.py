"""Pure equilibria of a discretised stage game as a *set*, and the label a study row may carry.

One equilibrium found by iterated best response is not the game's: auctions have many (issue 18:
in elastic-uniform at N = 2 the sellers' IBR point, a withholding point at price 0.18 and a weak one at
0.22). ``pure_equilibria`` enumerates every pure Nash equilibrium of a ``grid_game.GridGame`` (price
grid x dispatch grid) and reports the range of clearing prices, markups, welfare and profits over
them.

Method and limits. Exhaustive and exact *on the grid* (a profile is an equilibrium when no player
gains more than ``tol`` $/step by moving to another grid action):

* symmetric players (interchangeable sellers, ``GridGame.is_symmetric``): a best-response table over
  the others' *multisets* (``grid_game.symmetric_table``: C(K + n - 2, n - 1) x K books). A sorted
  profile P is an equilibrium iff every distinct action a in P is a best response to P - a, read
  from the table. Each equilibrium is reported once per permutation class (sorted indices).
  Cost on the study grid (K = 21 x 11 = 231): n = 2: 53k books (< 1 s); n = 3: 6.2M (~20 s);
  n = 5: 2.8e10, out of reach: use a coarser grid there (e.g. 66 actions: 57M books, ~3 min).
* otherwise: the full payoff tensor (K^n books), n = 2 on the study grid.
* beyond that, ``symmetric_pure_equilibria`` checks the K profiles where every player plays the same
  action (K x K books for any n): a subset of the equilibria, so its range is an inner bound.

A grid equilibrium need not be an equilibrium of the continuous stage game, nor the converse (a
continuous game can have only epsilon-equilibria at the supremum of an open set, e.g. "withhold just
below a demand step"). The certificate of a continuous profile is its exact NashConv
(``nash.stage_nash_conv(method="exact")``), and ``label_profile`` is the only way a row gets the label
"nash": NashConv <= ``NASH_TOL`` $/step; otherwise "<solver> (not converged)" with its NashConv.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..market.pipeline import MarketRules, StepContext
from ..market.truthful import reservation_buy_price
from .grid_game import GridGame, SymmetricTable, count_multisets, multiset_key, symmetric_table
from .nash import stage_nash_conv

NASH_TOL = 1e-6  # $/step: a profile whose exact stage NashConv is at most this is labelled "nash"


@dataclass(frozen=True)
class EquilibriumLabel:
    """The label of a profile: "nash" iff ``nash_conv`` <= ``tol`` ($/step), else "<solver> (not converged)"."""

    label: str
    nash_conv: float
    tol: float

    @property
    def is_equilibrium(self) -> bool:
        return self.label == "nash"


def label_profile(nash_conv: float, *, tol: float = NASH_TOL, solver: str = "ibr") -> EquilibriumLabel:
    """Label of a profile from its exact stage NashConv ($/step; nan counts as not converged)."""
    if not tol >= 0:
        raise ValueError(f"tol: must be >= 0 $/step, got {tol}")
    nc = float(nash_conv)
    ok = np.isfinite(nc) and nc <= tol
    return EquilibriumLabel("nash" if ok else f"{solver} (not converged)", nc, float(tol))


def label_joint(joint, ctx: StepContext, rules: MarketRules, players=None, *, tol: float = NASH_TOL,
                solver: str = "ibr", n_grid: int = 101) -> EquilibriumLabel:
    """``label_profile`` of a joint action (N, 2) from its exact NashConv over ``players``."""
    snc = stage_nash_conv(joint, ctx, rules, players=players, method="exact", n_grid=n_grid)
    return label_profile(snc.nash_conv, tol=tol, solver=solver)


@dataclass(frozen=True)
class PureEquilibria:
    """Every pure equilibrium of a grid game (E of them; per permutation class when symmetric).

    profiles: (E, n) grid indices (sorted when symmetric); actions: (E, n, 2) normalised actions;
    price: (E,) clearing price $/kWh (pay-as-bid: the uniform reference price the env reports);
    markup_rel: (E,) (price - competitive_price) / competitive_price (nan without one);
    welfare: (E,) gains from trade $/step (rewards + operator surplus + buyers' reservation value of
    their demand: the no-trade outcome scores 0); profit: (E, n) players' rewards $/step;
    profiles_checked: profiles examined (multisets or the product); books: run_step books evaluated;
    method: "symmetric-table" or "payoff-tensor"; tol: $/step a deviation must gain to count.
    """

    profiles: np.ndarray
    actions: np.ndarray
    price: np.ndarray
    markup_rel: np.ndarray
    welfare: np.ndarray
    profit: np.ndarray
    profiles_checked: int
    books: int
    method: str
    tol: float

    @property
    def count(self) -> int:
        return int(self.profiles.shape[0])

    def range(self, name: str) -> tuple[float, float]:
        """(min, max) of "price", "markup_rel", "welfare" or "profit" (mean over players) over the set."""
        v = getattr(self, name)
        if name == "profit":
            v = v.mean(axis=1)
        if v.size == 0:
            return float("nan"), float("nan")
        return float(np.nanmin(v)), float(np.nanmax(v))


def describe(game: GridGame, profiles: np.ndarray, *, competitive_price: float = float("nan"),
             profiles_checked: int = 0, books: int = 0, method: str = "", tol: float = 0.0) -> PureEquilibria:
    """``PureEquilibria`` record of grid-index ``profiles`` (E, n): prices, markups, welfare, profits."""
    prof = np.asarray(profiles, dtype=np.int64).reshape(-1, game.n)
    out = game.outcome(prof)
    # no trade: each agent's demand is worth its reservation buy price (retail, or a flexible load's lower value)
    value = reservation_buy_price(game.ctx, game.rules) @ game.ctx.demand_kw * game.ctx.dt_h
    welfare = out.settlement.reward.sum(-1) + out.clearing.operator_surplus + value
    price = np.asarray(out.clearing.clearing_price, dtype=np.float64).reshape(-1)
    markup = (price - competitive_price) / competitive_price
    profit = out.settlement.reward[:, list(game.players)]
    return PureEquilibria(prof, game.grid[prof], price, markup, np.asarray(welfare).reshape(-1), profit,
                          int(profiles_checked), int(books), method, float(tol))


def pure_equilibria(game: GridGame, *, tol: float = 1e-9, competitive_price: float = float("nan"),
                    symmetric: bool | None = None, max_books: int = 50_000_000,
                    table: SymmetricTable | None = None) -> PureEquilibria:
    """Every pure equilibrium of ``game`` (see the module docstring for the method and its cost).

    ``tol`` ($/step): a deviation must gain more to break an equilibrium (absorbs float round-off;
    ties count as best responses, so weak equilibria are included). ``symmetric``: None = use the
    symmetric table when ``game.is_symmetric()``; False forces the payoff tensor. ``table``: the
    game's ``symmetric_table`` when already computed (e.g. for the mixed solvers too)."""
    use_sym = game.is_symmetric() if symmetric is None else symmetric
    k, n = game.k, game.n
    if use_sym and n >= 2:
        tab = symmetric_table(game, max_books=max_books) if table is None else table
        best = tab.payoff.max(axis=1)
        m_idx, a_idx = np.nonzero(tab.payoff >= best[:, None] - tol)
        prof = np.sort(np.concatenate([tab.others[m_idx], a_idx[:, None]], axis=1), axis=1)
        keys = multiset_key(prof, k)
        # P is an equilibrium iff each of its distinct actions is a best response to P minus it; each
        # (P, a) pair with a in BR(P - a) appears once, so count them per P
        uk, first, cnt = np.unique(keys, return_index=True, return_counts=True)
        cand = prof[first]
        distinct = 1 + (np.diff(cand, axis=1) != 0).sum(axis=1)
        eq = cand[cnt == distinct]
        return describe(game, eq, competitive_price=competitive_price, profiles_checked=count_multisets(k, n),
                        books=tab.payoff.size, method="symmetric-table", tol=tol)
    if k ** n > max_books:
        raise ValueError(f"pure_equilibria: {k}^{n} profiles exceed max_books={max_books}")
    t = game.payoff_tensor(max_cells=max_books)
    ok = np.ones(t.shape[:-1], dtype=bool)
    for i in range(n):
        ok &= t[..., i] >= t[..., i].max(axis=i, keepdims=True) - tol
    eq = np.argwhere(ok)
    return describe(game, eq, competitive_price=competitive_price, profiles_checked=k ** n, books=k ** n,
                    method="payoff-tensor", tol=tol)


def symmetric_pure_equilibria(game: GridGame, *, tol: float = 1e-9,
                              competitive_price: float = float("nan")) -> PureEquilibria:
    """The equilibria among the K profiles where every player plays the same grid action (K x K books,
    any n): a subset of ``pure_equilibria``, so its ranges are inner bounds of the set's."""
    if not game.is_symmetric():
        raise ValueError("symmetric_pure_equilibria: the players are not interchangeable")
    k, n = game.k, game.n
    own = np.arange(k)
    prof = np.repeat(own[:, None], n, axis=1)[:, None, :].repeat(k, axis=1)  # (a, b, n): all play a ...
    prof[:, :, 0] = own[None, :]  # ... but player 0 plays b
    u = game.payoffs(prof)[..., 0]  # (a, b)
    stay = u[own, own]
    eq = own[stay >= u.max(axis=1) - tol]
    return describe(game, np.repeat(eq[:, None], n, axis=1), competitive_price=competitive_price,
                    profiles_checked=k, books=k * k, method="symmetric-profiles", tol=tol)
