"""Rendering of a radial feeder for ``dlmp_v0``: tree layout, RGB picture (matplotlib, Agg), bus table."""
from __future__ import annotations

import numpy as np


def tree_layout(feeder) -> np.ndarray:
    """(n_bus, 2) positions: x = hops from the root, y = leaf order of a depth-first walk (parents
    centred over their children), so every branch of a radial feeder gets its own row band."""
    n = feeder.n_bus
    pos = np.zeros((n, 2))
    depth = np.zeros(n)
    for k in feeder.order[1:]:  # BFS order: parents first
        depth[k] = depth[feeder.parent[k]] + 1
    pos[:, 0] = depth
    next_leaf = [0.0]

    def place(b: int) -> float:
        ch = feeder.children[b]
        if not ch:
            y = next_leaf[0]
            next_leaf[0] += 1.0
        else:
            # Follow the longest sub-branch first so the main feeder runs straight along y = 0.
            ys = [place(c) for c in ch]
            y = ys[0]
        pos[b, 1] = y
        return y

    import sys

    old = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old, 4 * n + 100))
    try:
        place(int(feeder.root))
    finally:
        sys.setrecursionlimit(old)
    pos[:, 1] = -pos[:, 1]
    return pos


def feeder_rgb(feeder, layout, dlmp, voltages, loading, agent_buses, title: str = "") -> np.ndarray:
    """Two panels of the feeder tree: buses coloured by DLMP ($/kWh) and by voltage (p.u.); line
    width and colour by loading (|S| / rating; grey when unrated). Agent buses are drawn as squares."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.collections import LineCollection

    fig, axes = plt.subplots(2, 1, figsize=(7, 5.5), dpi=80)
    segs = np.stack([layout[feeder.from_bus], layout[feeder.to_bus]], axis=1)
    rated = np.isfinite(feeder.line_limit_kva)
    lc_col = np.where(rated[:, None], plt.get_cmap("Reds")(np.clip(0.3 + 0.7 * np.asarray(loading), 0, 1)),
                      np.array([[0.6, 0.6, 0.6, 1.0]]))
    widths = np.where(rated, 1.0 + 3.0 * np.clip(loading, 0, 1.5), 1.5)
    has_agent = np.zeros(feeder.n_bus, dtype=bool)
    has_agent[np.asarray(agent_buses)] = True
    panels = ((dlmp, "viridis", "DLMP ($/kWh)"), (voltages, "coolwarm_r", "voltage (p.u.)"))
    for ax, (vals, cmap, label) in zip(axes, panels):
        ax.add_collection(LineCollection(segs, colors=lc_col, linewidths=widths, zorder=1))
        vals = np.asarray(vals, dtype=float)
        lo, hi = float(np.min(vals)), float(np.max(vals))
        if hi - lo < 1e-9:
            lo, hi = lo - 1e-3, hi + 1e-3
        for mask, marker in ((~has_agent, "o"), (has_agent, "s")):
            sc = ax.scatter(layout[mask, 0], layout[mask, 1], c=vals[mask], cmap=cmap, vmin=lo, vmax=hi,
                            marker=marker, s=45, edgecolors="k", linewidths=0.5, zorder=2)
        r = int(feeder.root)
        ax.scatter([layout[r, 0]], [layout[r, 1]], marker="^", s=90, c="k", zorder=3)
        fig.colorbar(sc, ax=ax, label=label, fraction=0.04)
        ax.set_xlim(layout[:, 0].min() - 0.5, layout[:, 0].max() + 0.5)
        ax.set_ylim(layout[:, 1].min() - 0.7, layout[:, 1].max() + 0.7)
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0].set_title(title, fontsize=9)
    fig.tight_layout()
    fig.canvas.draw()
    img = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
    plt.close(fig)
    return img


def bus_table(feeder, agent_buses, dlmp, lp, network, title: str = "") -> str:
    """Plain-text table per bus: agents, net load (kW), voltage, DLMP and its parts, upstream loading.
    ``lp`` is the last ``DlmpClearing`` (None before the first step: components shown as '-')."""
    n_ag = np.bincount(np.asarray(agent_buses), minlength=feeder.n_bus)
    lines = [title, f"{'bus':>4}{'agents':>7}{'net kW':>10}{'V p.u.':>9}{'DLMP':>9}{'energy':>9}{'loss':>9}"
                    f"{'congest':>9}{'voltage':>9}{'loading':>9}"]
    for k in range(feeder.n_bus):
        ln = feeder.parent_line[k]
        load = f"{network.loading[ln]:>9.3f}" if ln >= 0 and np.isfinite(feeder.line_limit_kva[ln]) else f"{'-':>9}"
        parts = ("".join(f"{x[k]:>9.4f}" for x in (lp.energy, lp.loss, lp.congestion, lp.voltage))
                 if lp is not None else f"{'-':>9}" * 4)
        lines.append(f"{k:>4}{n_ag[k]:>7}{network.net_load_kw[k]:>10.2f}{network.voltages[k]:>9.4f}"
                     f"{dlmp[k]:>9.4f}{parts}{load}")
    lines.append(f"import {network.import_kw:.2f} kW, losses {network.losses_kw:.2f} kW, "
                 f"violation: {'yes' if network.violated else 'no'}"
                 + ("" if lp is None else f", LP slack active: {'yes' if lp.violated else 'no'}"))
    return "\n".join(lines)
