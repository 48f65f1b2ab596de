"""Stage-game NashConv of the market environments (spec S8), computed through the market itself.

For a step's context (demand, feasible intervals, costs) and a joint action, each agent's best
reward when it alone changes its action (others fixed), its gain over the actual reward, and
NashConv = sum of gains (the OpenSpiel definition, applied to the stage game).

Exactness for the auction mechanisms: with the others' orders fixed, agent i's reward is piecewise
*linear* in its own price between consecutive prices of the other orders (its rank, hence the
allocation, is constant there and the price it faces is the clearing price, affine in its own
price when it is marginal, or its own price under pay-as-bid). A linear function peaks at the ends
of its piece, so the price candidates {floor, cap} U {p_j, p_j +- eps} for every other order j
contain the maximiser (eps approximates the supremum of an open piece, to eps x volume $). For each
price candidate the dispatch enters through the order volume and the convex cost, and a dense grid
plus bounded Brent refinement around the best cells solves that one-dimensional problem.

With batteries (a 3-dim action) a deviation changes price and dispatch and holds the agent's
battery power: SOC links the steps, so this is the *myopic* stage-game NashConv, not an equilibrium test of
the dynamic game (whole-episode deviations would be needed for that).

Every evaluation calls ``p2penv.market.pipeline.run_step`` on a batch of modified joint actions, so
the diagnostics never re-implement clearing, settlement or rewards.

Before issue 19 ``stage_nash_conv``, ``env_nash_conv`` and ``StageNashConv`` were named ``stage_nash_gap``,
``env_nash_gap`` and ``NashGap``; those names remain as aliases, deprecated since 0.1.0 (a
``DeprecationWarning`` on use; docs/glossary.md).

One name per job: ``stage_nash_conv`` (the deviation analysis of a joint action, pure function; its
``StageNashConv.nash_conv`` is the NashConv), ``env_nash_conv`` (the same for a live env and its action
dict), ``trajectory_nash_conv`` (per-step gains along a recorded trajectory), ``iterated_best_response`` and
``fictitious_play`` (dynamics on the stage game). Continuous reference games (one real action per player) use
``equilibrium.continuous_best_response_dynamics`` / ``continuous_fictitious_play`` instead.
"""
from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
from scipy.optimize import minimize_scalar

from ..aliases import deprecated_aliases
from ..market.pipeline import MarketRules, StepContext, run_step
from .equilibrium import EquilibriumResult

# The names before issue 19 (deprecated aliases, docs/glossary.md): old name -> new name.
_RENAMED = {
    "stage_nash_gap": "stage_nash_conv",
    "env_nash_gap": "env_nash_conv",
    "NashGap": "StageNashConv",
}
__getattr__ = deprecated_aliases(__name__, _RENAMED, globals())


# Offset around tied prices, as a fraction of the admissible price span.
_EPS_REL = 1e-7


@dataclass(frozen=True)
class StageNashConv:
    """Stage-game deviation analysis of one joint action ($ per step; actions normalised)."""

    rewards: np.ndarray  # (N,) actual rewards
    best_rewards: np.ndarray  # (N,) best reward by a unilateral deviation (>= actual)
    gains: np.ndarray  # (N,) best - actual
    nash_conv: float  # sum of gains
    best_actions: np.ndarray  # (N, 2) the maximising deviations
    method: str


def _rewards(actions: np.ndarray, ctx: StepContext, rules: MarketRules) -> np.ndarray:
    return run_step(actions, ctx, rules).settlement.reward


def _price_candidates(i: int, joint: np.ndarray, ctx: StepContext, rules: MarketRules) -> np.ndarray:
    """Normalised price actions of agent i at every breakpoint of its reward in its own price."""
    out = run_step(joint, ctx, rules)
    others = np.delete(out.bid_price[out.order_kwh > 0], np.flatnonzero(np.flatnonzero(out.order_kwh > 0) == i))
    span = rules.price_cap - rules.price_floor
    eps = _EPS_REL * span
    cand = np.concatenate([[rules.price_floor, rules.price_cap], others, others - eps, others + eps])
    cand = np.unique(np.clip(cand, rules.price_floor, rules.price_cap))
    return 2.0 * (cand - rules.price_floor) / span - 1.0


def best_response(
    i: int,
    joint: np.ndarray,
    ctx: StepContext,
    rules: MarketRules,
    *,
    n_grid: int = 101,
    n_refine: int = 3,
) -> tuple[np.ndarray, float]:
    """Best action (normalised, shape (2,)) of agent i against ``joint`` and its reward ($)."""
    joint = np.asarray(joint, dtype=np.float64)
    u_price = _price_candidates(i, joint, ctx, rules)
    lo, hi = ctx.lo_kw[i], ctx.hi_kw[i]
    u_disp = np.linspace(-1.0, 1.0, n_grid)
    if hi > lo:  # the kink where the agent switches from buying to selling (q = 0)
        p0 = ctx.demand_kw[i] / ctx.eta[i]
        if lo < p0 < hi:
            u_disp = np.union1d(u_disp, [2.0 * (p0 - lo) / (hi - lo) - 1.0])
    else:
        u_disp = np.array([0.0])
    uu = np.stack(np.meshgrid(u_price, u_disp, indexing="ij"), axis=-1).reshape(-1, 2)
    batch = np.broadcast_to(joint, (uu.shape[0],) + joint.shape).copy()
    batch[:, i, :2] = uu  # with batteries the storage component is held (myopic NashConv)
    r = _rewards(batch, ctx, rules)[:, i].reshape(u_price.size, u_disp.size)
    # keep the current action as a candidate so a best response is never worse than staying put
    cur = float(_rewards(joint, ctx, rules)[i])
    best_a, best_r = np.clip(joint[i], -1, 1).copy(), cur
    flat = np.argsort(r.max(axis=1))[::-1][:n_refine]
    for k in flat:
        j = int(np.argmax(r[k]))
        if r[k, j] > best_r:
            best_a, best_r = _with(joint[i], u_price[k], u_disp[j]), float(r[k, j])
        if u_disp.size < 3:
            continue
        a_lo, a_hi = u_disp[max(j - 1, 0)], u_disp[min(j + 1, u_disp.size - 1)]
        trial = joint.copy()

        def neg(x, k=k):
            trial[i, :2] = (u_price[k], x)
            return -float(_rewards(trial, ctx, rules)[i])

        res = minimize_scalar(neg, bounds=(a_lo, a_hi), method="bounded", options={"xatol": 1e-10})
        if -res.fun > best_r:
            best_a, best_r = _with(joint[i], u_price[k], float(res.x)), float(-res.fun)
    return best_a, best_r


def _with(action: np.ndarray, u_price: float, u_dispatch: float) -> np.ndarray:
    """``action`` with its (price, dispatch) replaced; a storage component is kept."""
    a = np.clip(action, -1.0, 1.0)
    a[:2] = (u_price, u_dispatch)
    return a


def action_grid(n_price: int = 21, n_dispatch: int = 11) -> np.ndarray:
    """(n_price * n_dispatch, 2) grid over [-1, 1]^2 of normalised (price, dispatch) actions."""
    if n_price < 2 or n_dispatch < 1:
        raise ValueError(f"n_price/n_dispatch: need >= 2 and >= 1, got {n_price}, {n_dispatch}")
    p = np.linspace(-1.0, 1.0, n_price)
    d = np.linspace(-1.0, 1.0, n_dispatch) if n_dispatch > 1 else np.ones(1)
    return np.stack(np.meshgrid(p, d, indexing="ij"), -1).reshape(-1, 2)


def deviation_rewards(joint, ctx: StepContext, rules: MarketRules, grid: np.ndarray, players=None) -> np.ndarray:
    """(P, K) $ reward of each player in ``players`` when it alone plays ``grid[k]`` against ``joint``;
    one batched ``run_step`` over all P x K deviations."""
    joint = np.asarray(joint, dtype=np.float64)
    n = joint.shape[0]
    pl = np.arange(n) if players is None else np.asarray(players, dtype=int)
    rows = np.arange(pl.size)
    batch = np.broadcast_to(joint, (pl.size, grid.shape[0]) + joint.shape).copy()
    batch[rows, :, pl, :2] = grid[None, :, :]
    return run_step(batch, ctx, rules).settlement.reward[rows, :, pl]


def stage_nash_conv(
    joint,
    ctx: StepContext,
    rules: MarketRules,
    *,
    players=None,
    method: str = "exact",
    grid: np.ndarray | None = None,
    n_grid: int = 101,
) -> StageNashConv:
    """Best responses of ``players`` (default all) to ``joint`` (N, 2) in the stage game.

    ``method="exact"``: price breakpoints + dispatch grid of ``n_grid`` points + Brent (module
    docstring). ``method="grid"``: best point of ``grid`` (default ``action_grid()``), a lower bound
    on the true gain, for cheap screening in experiments. Agents outside ``players`` get gain 0 and
    keep their action in ``best_actions``.
    """
    if method not in ("exact", "grid"):
        raise ValueError(f"method: expected 'exact' or 'grid', got {method!r}")
    joint = np.asarray(joint, dtype=np.float64)
    n = joint.shape[0]
    pl = np.arange(n) if players is None else np.asarray(players, dtype=int)
    actual = _rewards(joint, ctx, rules)
    best_r = actual.copy()
    best_a = joint.copy()
    if method == "exact":
        label = "price-breakpoints+dispatch-grid-brent"
        for i in pl:
            best_a[i], best_r[i] = best_response(int(i), joint, ctx, rules, n_grid=n_grid)
    else:
        g = action_grid() if grid is None else grid
        label = f"grid-{g.shape[0]}"
        dev = deviation_rewards(joint, ctx, rules, g, pl)
        j = dev.argmax(axis=1)
        r = dev[np.arange(pl.size), j]
        better = r > actual[pl]
        best_r[pl] = np.where(better, r, actual[pl])
        best_a[pl[better], :2] = g[j[better]]
    gains = np.maximum(best_r - actual, 0.0)
    return StageNashConv(actual, best_r, gains, float(gains.sum()), best_a, label)


def env_nash_conv(env, actions: dict, **kw) -> StageNashConv:
    """``stage_nash_conv`` of a live environment's current step, before it steps ``actions``.

    A separate entry point because it does a different job: it reads the step context and market
    rules from the env and takes the PettingZoo action dict ``{agent: (u_price, u_dispatch)}`` (in
    ``env.agents`` order), whereas ``stage_nash_conv`` is the pure function of an (N, 2) joint
    action, a ``StepContext`` and ``MarketRules`` that works on recorded trajectories and batches
    without an env. Keyword arguments go to ``stage_nash_conv``.
    """
    joint = np.stack([np.asarray(actions[a], dtype=np.float64) for a in env.agents])
    return stage_nash_conv(joint, env.ctx, env.rules, **kw)


def trajectory_nash_conv(ctxs, joints, rules: MarketRules, *, players=None, method: str = "exact",
                         grid: np.ndarray | None = None, n_grid: int = 101) -> np.ndarray:
    """(T, P) $/step: the stage-game best-response gain of each of ``players`` (default all, P = N) at every
    step t of a recorded trajectory, the joint action ``joints[t]`` (N, A) played in context ``ctxs[t]``
    (``StepContext``); a row's sum is that step's NashConv, so ``.sum(1).mean()`` is the trajectory's mean
    NashConv $/step. Keyword arguments as ``stage_nash_conv``. A (context, joint action) pair that repeats
    (every field of the context and the action equal, e.g. a constant profile in a stationary market) is
    solved once."""
    pl = None if players is None else np.asarray(players, dtype=int)
    cache: dict[bytes, np.ndarray] = {}
    out = []
    for ctx, joint in zip(ctxs, joints):
        joint = np.asarray(joint, dtype=np.float64)
        key = b"|".join([np.ascontiguousarray(getattr(ctx, f.name)).tobytes() for f in fields(ctx)
                         if getattr(ctx, f.name) is not None] + [joint.tobytes()])
        if key not in cache:
            g = stage_nash_conv(joint, ctx, rules, players=pl, method=method, grid=grid, n_grid=n_grid).gains
            cache[key] = g if pl is None else g[pl]
        out.append(cache[key])
    if not out:
        raise ValueError("ctxs/joints: empty trajectory")
    return np.stack(out)


def iterated_best_response(
    ctx: StepContext,
    rules: MarketRules,
    init=None,
    *,
    players=None,
    method: str = "exact",
    grid: np.ndarray | None = None,
    max_iter: int = 50,
    tol: float = 1e-6,
    n_grid: int = 101,
) -> EquilibriumResult:
    """Gauss-Seidel best-response dynamics of ``players`` (default all) on the stage game.

    Stops when NashConv < ``tol`` $ (converged) or after ``max_iter`` sweeps. Auctions can cycle
    (Edgeworth-style undercutting), so the returned profile is the one with the lowest NashConv
    seen, and ``converged=False`` says honestly when none reached ``tol``; ``nash_conv`` holds the
    trajectory of the dynamics (start included).
    """
    n = ctx.demand_kw.shape[0]
    a = np.zeros((n, 2)) if init is None else np.array(init, dtype=np.float64)
    pl = np.arange(n) if players is None else np.asarray(players, dtype=int)
    kw = dict(players=pl, method=method, grid=grid, n_grid=n_grid)
    traj = [stage_nash_conv(a, ctx, rules, **kw).nash_conv]
    best_a, best_nc = a.copy(), traj[0]
    it = 0
    while best_nc >= tol and it < max_iter:
        for i in pl:
            a[i] = stage_nash_conv(a, ctx, rules, **{**kw, "players": [i]}).best_actions[i]
        it += 1
        traj.append(stage_nash_conv(a, ctx, rules, **kw).nash_conv)
        if traj[-1] < best_nc:
            best_a, best_nc = a.copy(), traj[-1]
    return EquilibriumResult(best_a, np.asarray(traj), bool(best_nc < tol), it, f"iterated_best_response/{method}")


def fictitious_play(
    ctx: StepContext,
    rules: MarketRules,
    init=None,
    *,
    max_iter: int = 30,
    n_grid: int = 51,
    tol: float = 1e-6,
) -> EquilibriumResult:
    """Fictitious play on the stage game: each round every agent best-responds to every past joint
    action (maximising its average reward over the history) and the empirical mean profile's
    (exact) NashConv is tracked. Candidate actions: an ``n_grid`` x ``n_grid`` grid plus, as in the
    exact best response, every price the others have bid (and +- eps), so ties can be matched."""
    n = ctx.demand_kw.shape[0]
    a = np.zeros((n, 2)) if init is None else np.array(init, dtype=np.float64)
    hist = [a.copy()]
    traj = [stage_nash_conv(a, ctx, rules).nash_conv]
    it = 0
    grid = np.linspace(-1.0, 1.0, n_grid)
    eps = 2.0 * _EPS_REL
    while traj[-1] >= tol and it < max_iter:
        h = np.asarray(hist)  # (H, N, 2)
        new = np.empty((n, 2))
        for i in range(n):
            others = np.delete(h[:, :, 0], i, axis=1).ravel()
            prices = np.unique(np.clip(np.concatenate([grid, others, others - eps, others + eps]), -1.0, 1.0))
            uu = np.stack(np.meshgrid(prices, grid, indexing="ij"), axis=-1).reshape(-1, 2)
            batch = np.broadcast_to(h[None], (uu.shape[0],) + h.shape).copy()
            batch[:, :, i, :] = uu[:, None, :]
            r = _rewards(batch, ctx, rules)[..., i].mean(axis=1)
            new[i] = uu[int(np.argmax(r))]
        hist.append(new)
        it += 1
        traj.append(stage_nash_conv(np.mean(hist, axis=0), ctx, rules).nash_conv)
    return EquilibriumResult(np.mean(hist, axis=0), np.asarray(traj), bool(traj[-1] < tol), it, "fictitious_play")
