"""Market-power indicators (spec S9), per step on ``(..., n)`` seller arrays plus an episode summary.

* Shares s_i = q_i / sum q; HHI = sum s_i^2 as a fraction (x 10^4 gives the antitrust "points").
* Lerner L_i = (P - MC_i) / P with the seller's *true* marginal cost; its share-weighted average
  equals HHI / |epsilon| at a Cournot equilibrium (FOC P - c_i = B q_i => L_i = s_i / |epsilon|),
  the unweighted mean does not unless firms are symmetric.
* Residual supply index RSI_i = (total capacity - capacity_i) / demand; RSI_i < 1 means demand
  cannot be met without seller i, which is then *pivotal* (can name its price).
* Markup of the clearing price over the competitive benchmark price (the price of the book with
  every agent reporting truthfully), absolute and relative, and welfare lost against the benchmark.

Undefined values are nan, never errors, so whole episodes can be processed: Lerner needs P > 0,
shares need positive total output, relative markup needs a positive benchmark price.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..market.mechanisms import uniform


def _arr(x, name: str) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim == 0:
        raise ValueError(f"{name}: expected an array with sellers on the last axis, got a scalar")
    return a


def _nonneg(x, name: str) -> np.ndarray:
    a = _arr(x, name)
    if np.any(a < 0) or not np.all(np.isfinite(a)):
        raise ValueError(f"{name}: must be finite and >= 0")
    return a


def market_shares(quantities) -> np.ndarray:
    """(..., n) share of each seller in total sold kWh; nan where nobody sells."""
    q = _nonneg(quantities, "quantities")
    tot = q.sum(-1, keepdims=True)
    return np.divide(q, tot, out=np.full_like(q, np.nan), where=tot > 0)


def hhi(quantities) -> np.ndarray:
    """(...) Herfindahl-Hirschman index sum s_i^2 in [1/n, 1] (shares or volumes accepted)."""
    return (market_shares(quantities) ** 2).sum(-1)


def lerner(price, marginal_costs) -> np.ndarray:
    """(..., n) Lerner index (P - MC_i) / P; price (...) $/kWh broadcast over sellers; nan if P <= 0."""
    p = np.asarray(price, dtype=np.float64)[..., None]
    mc = _arr(marginal_costs, "marginal_costs")
    return np.divide(p - mc, p, out=np.full(np.broadcast_shapes(p.shape, mc.shape), np.nan), where=p > 0)


def lerner_weighted(price, marginal_costs, quantities) -> np.ndarray:
    """(...) share-weighted average Lerner index sum_i s_i L_i (Cournot: = HHI / |epsilon|)."""
    return (market_shares(quantities) * lerner(price, marginal_costs)).sum(-1)


def lerner_mean(price, marginal_costs, quantities) -> np.ndarray:
    """(...) unweighted mean Lerner index over active sellers (quantity > 0); nan if none."""
    q = _nonneg(quantities, "quantities")
    L = lerner(price, marginal_costs)
    act = q > 0
    n = act.sum(-1)
    s = np.where(act, L, 0.0).sum(-1)
    return np.divide(s, n, out=np.full(s.shape, np.nan), where=n > 0)


def cournot_lerner(hhi_value, elasticity) -> np.ndarray:
    """Share-weighted Cournot Lerner index HHI / |epsilon| (-> 0 as |epsilon| -> infinity)."""
    e = np.abs(np.asarray(elasticity, dtype=np.float64))
    if np.any(e == 0):
        raise ValueError("elasticity: must be nonzero")
    return np.asarray(hhi_value, dtype=np.float64) / e


def residual_supply_index(capacities, demand) -> np.ndarray:
    """(..., n) RSI_i = (sum_j cap_j - cap_i) / demand; capacities kWh, demand (...) kWh > 0."""
    cap = _nonneg(capacities, "capacities")
    d = np.asarray(demand, dtype=np.float64)[..., None]
    if np.any(d <= 0):
        raise ValueError("demand: must be > 0 for the residual supply index")
    return (cap.sum(-1, keepdims=True) - cap) / d


def pivotal(capacities, demand) -> np.ndarray:
    """(..., n) bool: seller i is pivotal (RSI_i < 1, demand cannot be served without it)."""
    return residual_supply_index(capacities, demand) < 1.0


def price_markup(price, benchmark_price) -> tuple[np.ndarray, np.ndarray]:
    """(absolute $/kWh, relative) markup of the clearing price over the competitive benchmark;
    relative is nan where the benchmark price is <= 0."""
    p = np.asarray(price, dtype=np.float64)
    pc = np.asarray(benchmark_price, dtype=np.float64)
    d = p - pc
    return d, np.divide(d, pc, out=np.full(np.broadcast_shapes(d.shape, pc.shape), np.nan), where=pc > 0)


def welfare_loss(welfare, benchmark_welfare) -> tuple[np.ndarray, np.ndarray]:
    """(absolute $, relative) welfare lost against the competitive benchmark, W_c - W and
    (W_c - W) / W_c (nan where W_c <= 0). ``welfare`` must be measured with true values."""
    w = np.asarray(welfare, dtype=np.float64)
    wc = np.asarray(benchmark_welfare, dtype=np.float64)
    d = wc - w
    return d, np.divide(d, wc, out=np.full(np.broadcast_shapes(d.shape, wc.shape), np.nan), where=wc > 0)


def competitive_benchmark(true_prices, quantities, sides, *, rule: str = "marginal_pair"):
    """(price $/kWh, welfare $) of the book cleared at a uniform midpoint price with every agent
    reporting its true value: the price-taking outcome markups and welfare losses compare to.
    For the environments' physical benchmark (cost curves, grid backstop) use
    ``p2penv.market.competitive.competitive_equilibrium``; ``market_power_step`` accepts either."""
    c = uniform.clear(true_prices, quantities, sides, k=0.5, rule=rule)
    return c.clearing_price, c.welfare


@dataclass(frozen=True)
class MarketPowerStep:
    """Per-step indicators; seller arrays (..., n), market arrays (...). Units as in the functions."""

    shares: np.ndarray
    hhi: np.ndarray
    lerner: np.ndarray
    lerner_weighted: np.ndarray
    lerner_mean: np.ndarray
    rsi: np.ndarray
    pivotal: np.ndarray
    markup: np.ndarray
    markup_rel: np.ndarray
    welfare_loss: np.ndarray
    welfare_loss_rel: np.ndarray
    volume: np.ndarray
    benchmark_welfare: np.ndarray


def market_power_step(price, sold, marginal_costs, capacities, demand, benchmark_price, welfare,
                      benchmark_welfare) -> MarketPowerStep:
    """All indicators for one step (or a batch of steps on leading axes).

    price, benchmark_price: (...) $/kWh; sold, marginal_costs, capacities: (..., n) per seller;
    demand: (...) kWh; welfare, benchmark_welfare: (...) $ true gains from trade.
    """
    s = market_shares(sold)
    m, mr = price_markup(price, benchmark_price)
    wl, wlr = welfare_loss(welfare, benchmark_welfare)
    rsi = residual_supply_index(capacities, demand)
    return MarketPowerStep(
        shares=s,
        hhi=(s**2).sum(-1),
        lerner=lerner(price, marginal_costs),
        lerner_weighted=lerner_weighted(price, marginal_costs, sold),
        lerner_mean=lerner_mean(price, marginal_costs, sold),
        rsi=rsi,
        pivotal=rsi < 1.0,
        markup=m,
        markup_rel=mr,
        welfare_loss=wl,
        welfare_loss_rel=wlr,
        volume=_nonneg(sold, "sold").sum(-1),
        benchmark_welfare=np.asarray(benchmark_welfare, dtype=np.float64),
    )


@dataclass(frozen=True)
class MarketPowerEpisode:
    """Episode summary: volume-weighted means of the per-step market indicators (steps with no
    trade carry no weight), ``pivotal_frequency`` = fraction of steps with a pivotal seller,
    ``welfare_loss`` total $ and ``welfare_loss_rel`` = total loss / total benchmark welfare."""

    hhi: float
    lerner_weighted: float
    lerner_mean: float
    markup: float
    markup_rel: float
    max_hhi: float
    pivotal_frequency: float
    welfare_loss: float
    welfare_loss_rel: float
    volume: float


def _vw(x: np.ndarray, w: np.ndarray) -> float:
    ok = np.isfinite(x) & (w > 0)
    tot = w[ok].sum()
    return float((x[ok] * w[ok]).sum() / tot) if tot > 0 else float("nan")


def aggregate_episode(step: MarketPowerStep) -> MarketPowerEpisode:
    """Summarise a MarketPowerStep whose leading axis (T, ...) is time; flattened over the rest."""
    w = step.volume.ravel()
    wc = step.benchmark_welfare.ravel().sum()
    loss = float(step.welfare_loss.sum())
    return MarketPowerEpisode(
        hhi=_vw(step.hhi.ravel(), w),
        lerner_weighted=_vw(step.lerner_weighted.ravel(), w),
        lerner_mean=_vw(step.lerner_mean.ravel(), w),
        markup=_vw(step.markup.ravel(), w),
        markup_rel=_vw(step.markup_rel.ravel(), w),
        max_hhi=float(np.nanmax(step.hhi)) if np.any(np.isfinite(step.hhi)) else float("nan"),
        pivotal_frequency=float(step.pivotal.any(-1).mean()),
        welfare_loss=loss,
        welfare_loss_rel=loss / wc if wc > 0 else float("nan"),
        volume=float(w.sum()),
    )
