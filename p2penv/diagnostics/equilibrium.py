"""Equilibrium search on n-player continuous games (spec S8: no player gains by deviating alone).

Works on any ``reference_games.ContinuousGame`` (one bounded real action per player, e.g. Cournot
quantities or supply-function slopes). The market environments' stage game (2-D actions evaluated
through ``run_step``) has its own solvers in ``nash.py``: ``iterated_best_response``,
``fictitious_play`` and ``best_response`` there; the names here carry a ``continuous_`` prefix so
that each name means one thing. A best response is the game's exact one when it
provides ``best_response`` (and ``exact=True``), else a dense 1-D grid over the action bounds
refined by bounded Brent search around the best grid point; the current action is always a
candidate, so numerical gains are never negative.

``nash_conv(game, profile)`` = sum_i [max_x u_i(x, a_{-i}) - u_i(a)] (the OpenSpiel definition,
Lanctot et al. 2017); it is 0 exactly at a Nash equilibrium.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy.optimize import minimize_scalar

from .reference_games import ContinuousGame

_GRID = 201


@dataclass(frozen=True)
class EquilibriumResult:
    """profile: (n,) final actions (fictitious play: the empirical mean action);
    nash_conv: (iterations + 1,) NashConv of the profile after each sweep, start included;
    converged: NashConv fell below ``tol``; iterations: sweeps run; method: algorithm name."""

    profile: np.ndarray
    nash_conv: np.ndarray
    converged: bool
    iterations: int
    method: str


def maximise_1d(f: Callable[[np.ndarray], np.ndarray], lo: float, hi: float, *, grid: int = _GRID,
                candidates=()) -> tuple[float, float]:
    """Maximise a vectorised scalar function on [lo, hi]; return (argmax, max).

    Grid of ``grid`` points, then bounded Brent search on the two grid cells around the best point;
    ``candidates`` (e.g. the current action) are evaluated too, so the result is never worse.
    """
    if not hi >= lo:
        raise ValueError(f"hi: upper bound {hi} is below lower bound {lo}")
    xs = np.concatenate([np.linspace(lo, hi, max(grid, 2)), np.asarray(candidates, dtype=np.float64).ravel()])
    vals = np.asarray(f(xs), dtype=np.float64)
    j = int(np.argmax(vals))
    best_x, best_v = float(xs[j]), float(vals[j])
    step = (hi - lo) / (max(grid, 2) - 1)
    a, b = max(lo, best_x - step), min(hi, best_x + step)
    if b > a:
        res = minimize_scalar(lambda x: -float(f(np.array([x]))[0]), bounds=(a, b), method="bounded",
                              options={"xatol": 1e-12 * max(1.0, abs(hi - lo))})
        if -res.fun > best_v:
            best_x, best_v = float(res.x), float(-res.fun)
    return best_x, best_v


def _deviation_payoff(game: ContinuousGame, i: int, profiles: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """x -> mean over ``profiles`` (T, n) of u_i when player i plays x (vectorised over x)."""

    def f(xs: np.ndarray) -> np.ndarray:
        a = np.broadcast_to(profiles, (xs.size,) + profiles.shape).copy()
        a[..., i] = xs[:, None]
        return game.payoffs(a)[..., i].mean(-1)

    return f


def continuous_best_response(game: ContinuousGame, i: int, profile, *, exact: bool = True, grid: int = _GRID,
                             history=None) -> tuple[float, float]:
    """Player i's best response (action, payoff) to ``profile`` or, if ``history`` (T, n) is given,
    to the uniform mixture over its rows (fictitious-play beliefs; numeric only)."""
    a = np.asarray(profile, dtype=np.float64)
    if history is None and exact and hasattr(game, "best_response"):
        x = game.best_response(i, a)
        dev = a.copy()
        dev[i] = x
        return x, float(game.payoffs(dev)[i])
    prof = a[None] if history is None else np.asarray(history, dtype=np.float64)
    return maximise_1d(_deviation_payoff(game, i, prof), float(game.lower[i]), float(game.upper[i]),
                       grid=grid, candidates=[a[i]])


def nash_conv(game: ContinuousGame, profile, *, exact: bool = True, grid: int = _GRID) -> float:
    """Sum over players of (best-response payoff - current payoff), $ (>= 0; 0 at a Nash point)."""
    a = np.asarray(profile, dtype=np.float64)
    if a.shape != (game.n_players,):
        raise ValueError(f"profile: expected shape ({game.n_players},), got {a.shape}")
    u = game.payoffs(a)
    gains = [max(continuous_best_response(game, i, a, exact=exact, grid=grid)[1] - u[i], 0.0)
             for i in range(game.n_players)]
    return float(np.sum(gains))


def _start(game: ContinuousGame, init) -> np.ndarray:
    if init is None:
        return 0.5 * (np.asarray(game.lower, float) + np.asarray(game.upper, float))
    a = np.array(init, dtype=np.float64)
    if a.shape != (game.n_players,):
        raise ValueError(f"init: expected shape ({game.n_players},), got {a.shape}")
    return a


def continuous_best_response_dynamics(game: ContinuousGame, init=None, *, max_iter: int = 200, tol: float = 1e-9,
                                      simultaneous: bool = False, exact: bool = True,
                                      grid: int = _GRID) -> EquilibriumResult:
    """Best-response dynamics: players update in turn (Gauss-Seidel), or all at once if
    ``simultaneous`` (Jacobi; may cycle, e.g. Cournot with 3+ firms). Stops when NashConv < tol."""
    a = _start(game, init)
    traj = [nash_conv(game, a, exact=exact, grid=grid)]
    it = 0
    while traj[-1] >= tol and it < max_iter:
        base = a.copy()
        for i in range(game.n_players):
            a[i] = continuous_best_response(game, i, base if simultaneous else a, exact=exact, grid=grid)[0]
        it += 1
        traj.append(nash_conv(game, a, exact=exact, grid=grid))
    return EquilibriumResult(a, np.asarray(traj), bool(traj[-1] < tol), it, "continuous_best_response_dynamics")


def continuous_fictitious_play(game: ContinuousGame, init=None, *, max_iter: int = 200, tol: float = 1e-6,
                               grid: int = _GRID) -> EquilibriumResult:
    """Fictitious play (Brown 1951): every round each player best-responds to the empirical
    distribution of the past joint profiles; the reported profile is the empirical mean action,
    whose NashConv is tracked (converges like O(1/t) in Cournot-type games)."""
    a = _start(game, init)
    hist = [a.copy()]
    mean = a.copy()
    traj = [nash_conv(game, mean, grid=grid)]
    it = 0
    while traj[-1] >= tol and it < max_iter:
        h = np.asarray(hist)
        new = np.array([continuous_best_response(game, i, hist[-1], grid=grid, history=h)[0]
                        for i in range(game.n_players)])
        hist.append(new)
        it += 1
        mean = np.mean(hist, axis=0)
        traj.append(nash_conv(game, mean, grid=grid))
    return EquilibriumResult(mean, np.asarray(traj), bool(traj[-1] < tol), it, "continuous_fictitious_play")
