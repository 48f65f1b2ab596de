"""Rendering of a cleared step: ANSI table and supply/demand step curves (matplotlib, Agg)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class StepView:
    """What the viewers show of one cleared market: per-agent arrays (N,), $/kWh, kWh, $."""

    bid_price: np.ndarray
    sides: np.ndarray
    order_kwh: np.ndarray
    matched_kwh: np.ndarray
    unit_price: np.ndarray
    reward: np.ndarray
    clearing_price: float
    volume: float

    @staticmethod
    def empty(n: int) -> "StepView":
        """Before the first step: no orders, no price."""
        z = np.zeros(n)
        return StepView(z, z.astype(np.int8), z, z, z, z, np.nan, 0.0)


def ansi_table(t: int, names, view: StepView) -> str:
    """Plain-text table of the last step's orders and outcome."""
    side_s = {1: "sell", -1: "buy ", 0: "idle"}
    v = view
    sides, prices, qty, matched, unit_price, reward = (v.sides, v.bid_price, v.order_kwh, v.matched_kwh,
                                                       v.unit_price, v.reward)
    clearing_price, volume = v.clearing_price, v.volume
    lines = [f"step {t}: clearing price {clearing_price:.4f} $/kWh, volume {volume:.3f} kWh"]
    lines.append(f"{'agent':<14}{'side':<6}{'price':>9}{'kWh':>9}{'matched':>9}{'$/kWh':>9}{'reward $':>10}")
    for i, nm in enumerate(names):
        lines.append(
            f"{nm:<14}{side_s[int(sides[i])]:<6}{prices[i]:>9.4f}{qty[i]:>9.3f}{matched[i]:>9.3f}"
            f"{unit_price[i]:>9.4f}{reward[i]:>10.4f}"
        )
    return "\n".join(lines)


def step_curves_rgb(prices, qty, sides, clearing_price, volume, title: str = "") -> np.ndarray:
    """Supply (asks ascending) and demand (bids descending) step curves with the clearing point."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5), dpi=80)
    for side, colour, label in ((1, "tab:orange", "supply (asks)"), (-1, "tab:blue", "demand (bids)")):
        m = (sides == side) & (qty > 0)
        order = np.argsort(prices[m] * (1 if side == 1 else -1), kind="stable")
        p, q = prices[m][order], qty[m][order]
        if p.size:
            x = np.concatenate([[0.0], np.cumsum(q)])
            ax.step(x, np.concatenate([p, p[-1:]]), where="post", color=colour, label=label)
    if np.isfinite(clearing_price):
        ax.plot([volume], [clearing_price], "ko", label=f"clearing {clearing_price:.3f} $/kWh")
    ax.set_xlabel("energy (kWh)")
    ax.set_ylabel("price ($/kWh)")
    ax.set_title(title)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="best", fontsize=7)
    fig.tight_layout()
    fig.canvas.draw()
    img = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
    plt.close(fig)
    return img
