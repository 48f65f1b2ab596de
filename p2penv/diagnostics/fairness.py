"""Fairness measures over agents (spec S10), on ``(..., n)`` arrays with agents last.

Utilities are quasilinear, as in the order book: an agent with true value w_i $/kWh (a buyer's
value, a seller's cost) holding the bundle (e kWh received, m $ received) gets u_i = w_i e + m.
Envy-freeness (Foley 1967; Varian 1974) compares bundles *including payments*: i envies j if
u_i(bundle_j) > u_i(own). A Walrasian uniform price with the efficient allocation is envy-free;
pay-as-bid is not (a high bidder envies the low bidder's cheaper identical kWh).

Proportional fairness maximises sum log U_i (Kelly 1997), max-min fairness the smallest U_i
(Rawls), Jain's index (sum x)^2 / (n sum x^2) lies in [1/n, 1] with 1 for equal shares
(Jain, Chiu & Hawe 1984).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_ATOL = 1e-9


def quasilinear_utilities(values, sides, matched, cash) -> np.ndarray:
    """(..., n) $ u_i = cash_i - side_i * value_i * matched_i (seller: receipts - cost, buyer:
    value - payment); ``cash`` as ``Clearing.cash`` (received > 0, paid < 0)."""
    v = np.asarray(values, dtype=np.float64)
    return np.asarray(cash, dtype=np.float64) - np.asarray(sides) * v * np.asarray(matched, dtype=np.float64)


@dataclass(frozen=True)
class EnvyReport:
    """envy: (..., n, n) $ by which i (row) prefers j's bundle to its own (0 if it does not);
    max_envy: (...) largest entry; n_envious: (...) agents envying someone; envy_free: (...) bool."""

    envy: np.ndarray
    max_envy: np.ndarray
    n_envious: np.ndarray
    envy_free: np.ndarray


def envy(values, sides, matched, cash, *, quantities=None, same_side_only: bool = True,
         atol: float = _ATOL) -> EnvyReport:
    """Envy between agents over bundles (energy, payment).

    values: (..., n) true $/kWh; sides: SELL +1 / BUY -1 / IDLE 0; matched kWh; cash $ received.
    quantities: optional (..., n) kWh limits: an agent values at most q_i kWh of energy received
    (free disposal) and cannot deliver more than q_i (such bundles are never envied).
    same_side_only: compare buyers with buyers and sellers with sellers (a consumer cannot take
    over a producer's delivery); idle agents neither envy nor are envied.
    """
    v = np.asarray(values, dtype=np.float64)
    s = np.asarray(sides)
    x = np.asarray(matched, dtype=np.float64)
    m = np.asarray(cash, dtype=np.float64)
    if not (v.shape == s.shape == x.shape == m.shape):
        raise ValueError(f"values/sides/matched/cash: shapes differ {v.shape}, {s.shape}, {x.shape}, {m.shape}")
    own = quasilinear_utilities(v, s, x, m)
    n = x.shape[-1]
    # e_j: energy j's bundle brings (buyers receive, sellers deliver), seen from every row i.
    e = np.broadcast_to((-s * x)[..., None, :], x.shape[:-1] + (n, n))
    feasible = np.ones(e.shape, dtype=bool)
    if quantities is not None:
        q = np.asarray(quantities, dtype=np.float64)[..., :, None]
        feasible = -e <= q * (1 + 1e-12)  # cannot deliver beyond own quantity
        e = np.where(e > 0, np.minimum(e, q), e)  # free disposal of energy beyond own need
    u_cross = np.where(feasible, v[..., :, None] * e + m[..., None, :], -np.inf)
    comparable = (s[..., :, None] != 0) & (s[..., None, :] != 0)
    if same_side_only:
        comparable &= s[..., :, None] == s[..., None, :]
    comparable &= ~np.eye(n, dtype=bool)
    gap = np.where(comparable, np.maximum(u_cross - own[..., :, None], 0.0), 0.0)
    gap = np.where(gap > atol, gap, 0.0)
    mx = gap.max(axis=(-2, -1)) if n else np.zeros(gap.shape[:-2])
    return EnvyReport(gap, mx, (gap > 0).any(-1).sum(-1), mx == 0)


def proportional_fairness(utilities, *, on_nonpositive: str = "raise") -> np.ndarray:
    """(...) sum_i log U_i. log is undefined for U_i <= 0: ``on_nonpositive="raise"`` raises
    ValueError naming the agent, ``"-inf"`` returns -inf for that entry."""
    u = np.asarray(utilities, dtype=np.float64)
    bad = u <= 0
    if on_nonpositive == "raise":
        if np.any(bad):
            idx = np.argwhere(bad)[0].tolist()
            raise ValueError(
                f"utilities: proportional fairness needs every U_i > 0, got {u[tuple(idx)]} at index {idx}"
            )
    elif on_nonpositive != "-inf":
        raise ValueError(f"on_nonpositive: expected 'raise' or '-inf', got {on_nonpositive!r}")
    with np.errstate(divide="ignore", invalid="ignore"):
        logs = np.log(np.where(bad, 1.0, u))
    return np.where(bad.any(-1), -np.inf, logs.sum(-1))


def max_min(utilities) -> np.ndarray:
    """(...) Rawlsian value: the worst-off agent's utility."""
    return np.asarray(utilities, dtype=np.float64).min(-1)


def jain_index(x) -> np.ndarray:
    """(...) Jain's index (sum x)^2 / (n sum x^2) of nonnegative x; 1 when all x are 0 (equal)."""
    a = np.asarray(x, dtype=np.float64)
    if np.any(a < 0):
        raise ValueError("x: Jain's index is defined for nonnegative values only")
    num = a.sum(-1) ** 2
    den = a.shape[-1] * (a**2).sum(-1)
    return np.divide(num, den, out=np.ones(num.shape), where=den > 0)


@dataclass(frozen=True)
class FairnessSummary:
    """Episode fairness of per-agent totals (n,) $: proportional-fairness objective (-inf if some
    total <= 0), max-min value, Jain's index (nan if some total < 0), plus the mean per-step Jain
    index over steps where every utility is >= 0 (nan if none) and the envy-free step fraction
    (nan when no envy reports were given)."""

    totals: np.ndarray
    proportional: float
    max_min: float
    jain: float
    jain_step_mean: float
    envy_free_fraction: float


def episode_fairness(utilities, envy_free=None) -> FairnessSummary:
    """Summarise (T, n) per-step utilities (and optional (T,) envy-free flags) over an episode."""
    u = np.asarray(utilities, dtype=np.float64)
    if u.ndim != 2:
        raise ValueError(f"utilities: expected shape (T, n), got {u.shape}")
    tot = u.sum(0)
    ok = (u >= 0).all(-1)
    steps = jain_index(u[ok]) if ok.any() else np.array([np.nan])
    ef = float("nan") if envy_free is None else float(np.mean(np.asarray(envy_free, dtype=bool)))
    return FairnessSummary(
        totals=tot,
        proportional=float(proportional_fairness(tot, on_nonpositive="-inf")),
        max_min=float(max_min(tot)),
        jain=float(jain_index(tot)) if np.all(tot >= 0) else float("nan"),
        jain_step_mean=float(np.mean(steps)),
        envy_free_fraction=ef,
    )
