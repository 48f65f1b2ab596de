"""Mixed equilibria of discretised stage games (issue 18, item 2).

Pay-as-bid with capacity-constrained sellers often has no pure equilibrium (Bertrand-Edgeworth:
undercutting until the residual demand at the cap pays more, then back up), so "the" Nash row of
such a market must be a *mixed* profile. Everything here works on a ``grid_game.GridGame`` (payoffs
from ``run_step`` over the grid, in batches) or on its payoff arrays:

* ``expected_payoffs`` / ``mixed_nash_conv``: every player's expected reward ($/step) of each grid
  action against the others' mixtures (exact: the product of their supports is enumerated), and the
  expected NashConv = sum_i [max_a u_i(a, s_-i) - u_i(s)] of any mixed profile: the certificate of
  every solver below, against exact best responses on the grid;
* ``solve_bimatrix``: an exact equilibrium of a two-player game (A, B) as a mixed-integer LP
  (Sandholm, Gilpin & Conitzer 2005, formulation 1: support indicators, regret bounds; HiGHS via
  ``scipy.optimize.milp``). Degenerate games (ties everywhere in an auction) need no special care,
  and an objective selects among equilibria (``objective="max_payoff"``/``"min_payoff"`` bound the
  equilibrium payoffs); ``symmetric=True`` asks for a symmetric equilibrium of a symmetric game;
* ``solve_zero_sum``: the minimax LP of a zero-sum matrix game;
* ``symmetric_mixed_equilibrium``: n >= 2 interchangeable players, one mixture for all, by regret
  matching+ (Tammelin 2014) or fictitious play on the ``grid_game.SymmetricTable`` (expected payoffs
  of a mixture in one matrix product over the others' multisets); returns the iterate with the lowest
  exploitability, which is computed exactly on the grid and reported (``nash_conv``), never assumed.
"""
from __future__ import annotations

from dataclasses import dataclass
from itertools import product

import numpy as np

from .grid_game import GridGame, SymmetricTable


@dataclass(frozen=True)
class MixedProfile:
    """A mixed profile of a grid game and its certificate.

    strategies: (n, K) probabilities over the grid actions; payoff: (n,) expected rewards $/step;
    best_payoff: (n,) best pure deviation's expected reward; nash_conv: sum of the gains ($/step,
    exact on the grid: 0 at an equilibrium); method; iterations (0 for a direct solve).
    """

    strategies: np.ndarray
    payoff: np.ndarray
    best_payoff: np.ndarray
    nash_conv: float
    method: str
    iterations: int = 0

    def support(self, i: int = 0, tol: float = 1e-9) -> np.ndarray:
        """Grid indices player ``i`` plays with probability > ``tol``."""
        return np.flatnonzero(self.strategies[i] > tol)


# -- expected payoffs and NashConv of any mixed profile -----------------------------------------------
def expected_payoffs(game: GridGame, strategies, *, max_books: int = 20_000_000, tol: float = 0.0) -> np.ndarray:
    """(n, K) expected reward ($/step) of each player's every grid action when the others play
    ``strategies`` (n, K) independently; the others' supports (probability > ``tol``) are enumerated."""
    s = _check_strategies(strategies, game.n, game.k)
    n, k = game.n, game.k
    out = np.empty((n, k))
    for i in range(n):
        sup = [np.flatnonzero(s[j] > tol) if j != i else None for j in range(n)]
        combos = int(np.prod([x.size for j, x in enumerate(sup) if j != i])) if n > 1 else 1
        if combos * k > max_books:
            raise ValueError(f"expected_payoffs: player {i}: {combos} opponent profiles x {k} actions exceed "
                             f"max_books={max_books}")
        others = [j for j in range(n) if j != i]
        if others:
            grid = np.array(list(product(*[sup[j] for j in others])), dtype=np.int64).reshape(-1, len(others))
            w = np.prod([s[j][grid[:, c]] for c, j in enumerate(others)], axis=0)
        else:
            grid, w = np.zeros((1, 0), dtype=np.int64), np.ones(1)
        prof = np.empty((grid.shape[0], k, n), dtype=np.int64)
        prof[..., i] = np.arange(k)[None, :]
        for c, j in enumerate(others):
            prof[..., j] = grid[:, c][:, None]
        u = game.payoffs(prof)[..., i]  # (combos, K)
        out[i] = w @ u
    return out


def mixed_nash_conv(game: GridGame, strategies, **kw) -> MixedProfile:
    """Expected NashConv ($/step) of a mixed profile (n, K) against exact best responses on the grid."""
    s = _check_strategies(strategies, game.n, game.k)
    u = expected_payoffs(game, s, **kw)
    return _certify(s, u, "given")


def _certify(s: np.ndarray, u: np.ndarray, method: str, iterations: int = 0) -> MixedProfile:
    pay = (s * u).sum(axis=1)
    best = u.max(axis=1)
    return MixedProfile(s, pay, best, float(np.maximum(best - pay, 0.0).sum()), method, iterations)


def _check_strategies(strategies, n: int, k: int) -> np.ndarray:
    s = np.asarray(strategies, dtype=np.float64)
    if s.shape != (n, k):
        raise ValueError(f"strategies: expected shape ({n}, {k}), got {s.shape}")
    if np.any(s < -1e-12) or not np.allclose(s.sum(axis=1), 1.0, atol=1e-9):
        raise ValueError("strategies: each row must be a probability vector (>= 0, summing to 1)")
    return np.clip(s, 0.0, None) / np.clip(s, 0.0, None).sum(axis=1, keepdims=True)


# -- two players: exact ---------------------------------------------------------------------------
def bimatrix(game: GridGame) -> tuple[np.ndarray, np.ndarray]:
    """Payoff matrices (A, B), (K, K) $/step, of a two-player grid game: A[a, b] is player 0's reward
    when it plays a and player 1 plays b, B[a, b] player 1's."""
    if game.n != 2:
        raise ValueError(f"bimatrix: needs 2 players, got {game.n}")
    t = game.payoff_tensor()
    return t[..., 0], t[..., 1]


def solve_bimatrix(a, b, *, symmetric: bool = False, objective: str | None = None,
                   time_limit: float = 120.0) -> tuple[np.ndarray, np.ndarray]:
    """An exact Nash equilibrium (x, y) of the bimatrix game (A, B) by MILP (module docstring).

    Constraints per action i of player 1: u - (A y)_i = r_i >= 0, r_i <= U s_i, x_i <= 1 - s_i with
    s_i binary and U the payoff range (a played action has zero regret); the same for player 2 with
    B^T x; u, v are then the equilibrium payoffs. ``objective``: None (any equilibrium),
    "max_payoff" / "min_payoff" (of u + v). ``symmetric``: y = x (needs B = A^T)."""
    from scipy.optimize import Bounds, LinearConstraint, milp

    A, B = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    m, n = A.shape
    if B.shape != (m, n):
        raise ValueError(f"a, b: shapes {A.shape} and {B.shape} differ")
    if symmetric and (m != n or not np.allclose(B, A.T, atol=1e-12)):
        raise ValueError("symmetric: needs a square A with B = A^T")
    if objective not in (None, "max_payoff", "min_payoff"):
        raise ValueError(f"objective: expected None, 'max_payoff' or 'min_payoff', got {objective!r}")
    ua = max(float(A.max() - A.min()), 1e-12)
    ub = max(float(B.max() - B.min()), 1e-12)
    if symmetric:  # variables: x (n), u, r (n), s (n)
        nv = 3 * n + 1
        ix, iu, ir, is_ = np.arange(n), n, n + 1 + np.arange(n), 2 * n + 1 + np.arange(n)
        rows, lo, hi = [], [], []
        for i in range(n):
            row = np.zeros(nv); row[iu] = 1.0; row[ix] -= A[i]; row[ir[i]] = -1.0
            rows.append(row); lo.append(0.0); hi.append(0.0)      # u - (A x)_i - r_i = 0
            row = np.zeros(nv); row[ir[i]] = 1.0; row[is_[i]] = -ua
            rows.append(row); lo.append(-np.inf); hi.append(0.0)  # r_i <= U s_i
            row = np.zeros(nv); row[ix[i]] = 1.0; row[is_[i]] = 1.0
            rows.append(row); lo.append(-np.inf); hi.append(1.0)  # x_i <= 1 - s_i
        row = np.zeros(nv); row[ix] = 1.0
        rows.append(row); lo.append(1.0); hi.append(1.0)
        c = np.zeros(nv)
        if objective:
            c[iu] = -2.0 if objective == "max_payoff" else 2.0
        lb = np.zeros(nv); ubd = np.full(nv, np.inf)
        lb[iu] = -np.inf; ubd[ix] = 1.0; ubd[is_] = 1.0
        integ = np.zeros(nv); integ[is_] = 1
        res = milp(c, constraints=LinearConstraint(np.array(rows), lo, hi), integrality=integ,
                   bounds=Bounds(lb, ubd), options={"time_limit": time_limit})
        if res.x is None:
            raise RuntimeError(f"solve_bimatrix: MILP failed ({res.message})")
        x = np.clip(res.x[ix], 0.0, None)
        x /= x.sum()
        return x, x.copy()
    # variables: x (m), y (n), u, v, r (m), t (n), s (m), z (n)
    nv = 3 * (m + n) + 2
    ix, iy = np.arange(m), m + np.arange(n)
    iu, iv = m + n, m + n + 1
    ir, it = m + n + 2 + np.arange(m), 2 * m + n + 2 + np.arange(n)
    is_, iz = 2 * (m + n) + 2 + np.arange(m), 2 * (m + n) + 2 + m + np.arange(n)
    rows, lo, hi = [], [], []
    for i in range(m):
        row = np.zeros(nv); row[iu] = 1.0; row[iy] -= A[i]; row[ir[i]] = -1.0
        rows.append(row); lo.append(0.0); hi.append(0.0)
        row = np.zeros(nv); row[ir[i]] = 1.0; row[is_[i]] = -ua
        rows.append(row); lo.append(-np.inf); hi.append(0.0)
        row = np.zeros(nv); row[ix[i]] = 1.0; row[is_[i]] = 1.0
        rows.append(row); lo.append(-np.inf); hi.append(1.0)
    for j in range(n):
        row = np.zeros(nv); row[iv] = 1.0; row[ix] -= B[:, j]; row[it[j]] = -1.0
        rows.append(row); lo.append(0.0); hi.append(0.0)
        row = np.zeros(nv); row[it[j]] = 1.0; row[iz[j]] = -ub
        rows.append(row); lo.append(-np.inf); hi.append(0.0)
        row = np.zeros(nv); row[iy[j]] = 1.0; row[iz[j]] = 1.0
        rows.append(row); lo.append(-np.inf); hi.append(1.0)
    for idx in (ix, iy):
        row = np.zeros(nv); row[idx] = 1.0
        rows.append(row); lo.append(1.0); hi.append(1.0)
    c = np.zeros(nv)
    if objective:
        c[[iu, iv]] = -1.0 if objective == "max_payoff" else 1.0
    lb = np.zeros(nv); ubd = np.full(nv, np.inf)
    lb[[iu, iv]] = -np.inf
    ubd[ix] = 1.0; ubd[iy] = 1.0; ubd[is_] = 1.0; ubd[iz] = 1.0
    integ = np.zeros(nv); integ[is_] = 1; integ[iz] = 1
    res = milp(c, constraints=LinearConstraint(np.array(rows), lo, hi), integrality=integ,
               bounds=Bounds(lb, ubd), options={"time_limit": time_limit})
    if res.x is None:
        raise RuntimeError(f"solve_bimatrix: MILP failed ({res.message})")
    x, y = np.clip(res.x[ix], 0.0, None), np.clip(res.x[iy], 0.0, None)
    return x / x.sum(), y / y.sum()


def solve_zero_sum(a) -> tuple[np.ndarray, np.ndarray, float]:
    """Maximin strategy x of the row player, minimax y of the column player and the value of the
    zero-sum game A (row player's payoff) by two LPs."""
    from scipy.optimize import linprog

    A = np.asarray(a, dtype=np.float64)
    m, n = A.shape
    # max v s.t. A^T x >= v, sum x = 1, x >= 0
    res = linprog(np.r_[np.zeros(m), -1.0], A_ub=np.c_[-A.T, np.ones(n)], b_ub=np.zeros(n),
                  A_eq=np.r_[np.ones(m), 0.0][None], b_eq=[1.0], bounds=[(0, None)] * m + [(None, None)],
                  method="highs")
    res2 = linprog(np.r_[np.zeros(n), 1.0], A_ub=np.c_[A, -np.ones(m)], b_ub=np.zeros(m),
                   A_eq=np.r_[np.ones(n), 0.0][None], b_eq=[1.0], bounds=[(0, None)] * n + [(None, None)],
                   method="highs")
    if res.status != 0 or res2.status != 0:
        raise RuntimeError(f"solve_zero_sum: {res.message} / {res2.message}")
    return res.x[:m], res2.x[:n], float(res.x[-1])


def two_player_equilibrium(game: GridGame, *, symmetric: bool | None = None, objective: str | None = None,
                           time_limit: float = 120.0) -> MixedProfile:
    """``solve_bimatrix`` of a two-player grid game, certified by its expected NashConv on the grid."""
    A, B = bimatrix(game)
    sym = game.is_symmetric() if symmetric is None else symmetric
    x, y = solve_bimatrix(A, B, symmetric=sym, objective=objective, time_limit=time_limit)
    s = np.stack([x, y])
    u = np.stack([A @ y, B.T @ x])
    return _certify(s, u, "bimatrix-milp" + ("-symmetric" if sym else ""))


# -- n players, symmetric: no-regret dynamics on the multiset table ------------------------------------
def symmetric_expected_payoffs(table: SymmetricTable, mixture) -> np.ndarray:
    """(K,) expected reward of each grid action when the n - 1 others draw i.i.d. from ``mixture``."""
    s = np.asarray(mixture, dtype=np.float64)
    if table.n == 1:
        return table.payoff[0].copy()
    w = table.multiplicity * np.prod(s[table.others], axis=1)
    return w @ table.payoff


def _jacobian_index(table: SymmetricTable) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For the derivative of ``symmetric_expected_payoffs``: the (n - 2)-multisets O' of the others
    but one, their multiplicities, and idx[b, m] = the table row of O'_m plus action b."""
    from .grid_game import multisets

    k, m = table.k, table.n - 2
    sub = multisets(k, m)
    if m == 0:
        return sub, np.ones(1), np.arange(k)[:, None]
    run = np.ones(sub.shape[0])
    denom = np.ones(sub.shape[0])
    for j in range(1, m):
        run = np.where(sub[:, j] == sub[:, j - 1], run + 1.0, 1.0)
        denom *= run
    from math import factorial

    mult = factorial(m) / denom
    full = np.concatenate([np.repeat(np.arange(k)[:, None, None], sub.shape[0], 1),
                           np.broadcast_to(sub, (k,) + sub.shape)], axis=-1)
    idx = table.index(np.sort(full, axis=-1))
    return sub, mult, idx


def symmetric_payoff_jacobian(table: SymmetricTable, mixture, cache=None, support=None) -> np.ndarray:
    """(K, K) d u_a / d s_b of ``symmetric_expected_payoffs``: (n - 1) x the expected payoff of a when
    one other plays b and the remaining n - 2 draw from ``mixture``; only the (S, S) block when
    ``support`` S is given (the sum then runs over the multisets inside the mixture's support)."""
    s = np.asarray(mixture, dtype=np.float64)
    sub, mult, idx = _jacobian_index(table) if cache is None else cache
    w = mult * np.prod(s[sub], axis=1) if sub.shape[1] else np.ones(1)
    nz = np.flatnonzero(w)
    rows = np.arange(table.k) if support is None else np.asarray(support)
    # J[a, b] = (n - 1) sum_m w_m payoff[idx[b, m], a]
    block = table.payoff[idx[np.ix_(rows, nz)]][:, :, rows]  # (b, m, a)
    return (table.n - 1) * np.einsum("m,bma->ab", w[nz], block)


def symmetric_nash_conv(table: SymmetricTable, mixture) -> MixedProfile:
    """Certificate of the symmetric profile where every player plays ``mixture`` (NashConv = n x gain)."""
    s = np.asarray(mixture, dtype=np.float64)
    u = symmetric_expected_payoffs(table, s)
    return _certify(np.tile(s, (table.n, 1)), np.tile(u, (table.n, 1)), "given")


def symmetric_mixed_equilibrium(table: SymmetricTable, *, method: str = "rm+", iterations: int = 2000,
                                init=None, tol: float = 1e-9, polish: bool = True) -> MixedProfile:
    """Symmetric mixed profile of a symmetric grid game by self-play of one population.

    ``method="rm+"``: regret matching+ with linearly weighted averaging; ``"fp"``: fictitious play
    (best response to the running average). Each iteration costs one product with the table. The
    result is the average (or last) strategy with the lowest exact NashConv seen (checked every
    10 iterations and at the end); stops early below ``tol`` $/step. ``polish``: then refine it by
    ``polish_symmetric`` (kept only if its certificate is better)."""
    if method not in ("rm+", "fp"):
        raise ValueError(f"method: expected 'rm+' or 'fp', got {method!r}")
    k = table.k
    cur = np.full(k, 1.0 / k) if init is None else np.asarray(init, dtype=np.float64)
    if cur.shape != (k,) or cur.min() < 0 or not np.isclose(cur.sum(), 1.0):
        raise ValueError(f"init: expected a probability vector of length {k}")
    avg = cur.copy()
    wsum = 1.0
    regret = np.zeros(k)
    best_s, best_nc, it = cur.copy(), np.inf, 0
    for it in range(1, iterations + 1):
        if method == "rm+":
            u = symmetric_expected_payoffs(table, cur)
            regret = np.maximum(regret + u - cur @ u, 0.0)
            tot = regret.sum()
            cur = regret / tot if tot > 0 else np.full(k, 1.0 / k)
            avg = avg + it * cur
            wsum += it
            mean = avg / wsum
        else:
            mean = avg / wsum
            u = symmetric_expected_payoffs(table, mean)
            br = np.zeros(k)
            br[int(np.argmax(u))] = 1.0
            avg = avg + br
            wsum += 1.0
            mean = avg / wsum
        if it % 10 == 0 or it == iterations:
            for cand in (mean, cur):
                nc = symmetric_nash_conv(table, cand).nash_conv
                if nc < best_nc:
                    best_s, best_nc = cand.copy(), nc
            if best_nc < tol:
                break
    res = symmetric_nash_conv(table, best_s)
    name = f"symmetric-{method}"
    if polish and res.nash_conv > tol:
        pol = polish_symmetric(table, best_s, tol=tol)
        if pol.nash_conv < res.nash_conv:
            res, name = pol, f"symmetric-{method}/polish"
    return MixedProfile(res.strategies, res.payoff, res.best_payoff, res.nash_conv, name, it)


def polish_symmetric(table: SymmetricTable, mixture, *, rounds: int = 20, tol: float = 1e-10) -> MixedProfile:
    """Refine a symmetric mixture to an equilibrium of the grid game by its indifference conditions.

    On a support S the equilibrium solves u_a(s) = v for a in S and sum s = 1 (|S| + 1 polynomial
    equations of degree n - 1; ``scipy.optimize.root``). Supports start from the actions whose
    probability exceeds a fraction (0.3 ... 0.001) of the largest, and from their hulls in grid order;
    after each solve, actions with
    negative probability leave S, or the best action outside S that beats v joins it. Returns the best
    certified profile seen (``nash_conv`` exact on the grid): never worse than ``mixture``."""
    s0 = np.asarray(mixture, dtype=np.float64)
    best = symmetric_nash_conv(table, s0)
    cache = _jacobian_index(table)
    for frac in (0.3, 0.1, 0.03, 0.01, 0.003, 0.001):
        sup = np.flatnonzero(s0 > frac * s0.max())
        # the support itself, and its hull (the grid's order is the price order when dispatch is fixed)
        for cand in (sup, np.arange(sup.min(), sup.max() + 1)):
            cert = _polish_from(table, s0, cand, rounds, tol, cache)
            if cert is not None and cert.nash_conv < best.nash_conv:
                best = cert
            if best.nash_conv <= tol:
                break
        if best.nash_conv <= tol:
            break
    if best.nash_conv > tol:  # hulls [lo, top] with lo swept over the lower tail of the mixture
        cdf = np.cumsum(s0)
        top = int(np.flatnonzero(s0 > 1e-3 * s0.max()).max())
        lows = np.unique(np.linspace(np.searchsorted(cdf, 1e-4), np.searchsorted(cdf, 0.25), 12).astype(int))
        for lo in lows[lows <= top]:
            cert = _polish_from(table, s0, np.arange(lo, top + 1), rounds, tol, cache)
            if cert is not None and cert.nash_conv < best.nash_conv:
                best = cert
            if best.nash_conv <= tol:
                break
    return MixedProfile(best.strategies, best.payoff, best.best_payoff, best.nash_conv, "symmetric-polished", 0)


def _polish_from(table: SymmetricTable, s0: np.ndarray, sup: np.ndarray, rounds: int, tol: float, cache=None):
    from scipy.optimize import root

    cache = _jacobian_index(table) if cache is None else cache
    best = None
    for _ in range(rounds):
        if sup.size == 0:
            return best
        start = s0[sup] / s0[sup].sum() if s0[sup].sum() > 0 else np.full(sup.size, 1.0 / sup.size)

        def eqs(z, sup=sup):
            s = np.zeros(table.k)
            s[sup] = z[:-1]
            return np.r_[symmetric_expected_payoffs(table, s)[sup] - z[-1], z[:-1].sum() - 1.0]

        def jac(z, sup=sup):
            s = np.zeros(table.k)
            s[sup] = z[:-1]
            j = np.zeros((sup.size + 1, sup.size + 1))
            j[:-1, :-1] = symmetric_payoff_jacobian(table, s, cache, support=sup)
            j[:-1, -1] = -1.0
            j[-1, :-1] = 1.0
            return j

        full = np.zeros(table.k)
        full[sup] = start
        res = root(eqs, np.r_[start, full @ symmetric_expected_payoffs(table, full)], jac=jac, method="hybr")
        z = res.x[:-1]
        if not (res.success or np.abs(eqs(res.x)).max() < 1e-12):
            return best
        if np.any(z < 0):
            keep = z >= 0
            s0 = np.zeros(table.k)
            s0[sup[keep]] = z[keep]
            sup = sup[keep]
            continue
        s = np.zeros(table.k)
        s[sup] = z
        s /= s.sum()
        cert = symmetric_nash_conv(table, s)
        if best is None or cert.nash_conv < best.nash_conv:
            best = cert
        u = symmetric_expected_payoffs(table, s)
        out = np.setdiff1d(np.arange(table.k), sup)
        if cert.nash_conv <= tol or out.size == 0:
            return best
        a = out[int(np.argmax(u[out]))]
        sup, s0 = np.union1d(sup, [a]), s
    return best
