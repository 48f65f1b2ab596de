"""Emergent market power: does it fall with the number of sellers N?

Scenario ``p2penv.scenarios.SellerBuyerMarket`` (same aggregate supply curve for every N, 3
truthful buyers bidding retail) on auction_v0. Profiles of the sellers: competitive benchmark,
stage-game Nash (iterated best response), PPO with parameter sharing, Q-learning (Calvano; the
vectorised sessions are the seeds). Metrics per (N, method, seed): relative clearing-price markup
over the competitive price, share-weighted Lerner, HHI, relative welfare loss (of the gains from
trade), seller profit $/episode and the stage-game NashConv $/step of the sellers; mean +- 95% CI.

    python -m p2penv.experiments.market_power [--quick] [--out results/market_power]
"""
from __future__ import annotations

import argparse
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from p2penv.scenarios.sellers_buyers import seller_buyer_env_fn, sellers

from .checkpoints import CheckpointError, RowCheckpoint
from .metrics import evaluate, summarise
from .output import echo, format_table, new_figure, save_figure, save_outputs
from .policies import NashPolicy

METHODS = ("competitive", "nash", "ppo_shared", "qlearning")
METRICS = ("markup_rel", "lerner", "hhi", "welfare_loss_rel", "profit", "nash_conv", "price")


@dataclass(frozen=True)
class MarketPowerConfig:
    """ns: seller counts; seeds: >= 3 for CIs; ppo_steps: agent-steps per PPO run; q_steps: steps
    per Q-learning session; nash_method: "grid" or "exact" (p2penv.diagnostics.nash)."""

    ns: tuple[int, ...] = (2, 3, 5, 10)
    seeds: tuple[int, ...] = (0, 1, 2)
    methods: tuple[str, ...] = METHODS
    n_buyers: int = 6
    demand_kw: float = 1.0  # per buyer
    # buyers' values of lost load (elastic demand, the textbook setting where market power falls with
    # N), or None for inelastic buyers who always import at retail (see README for both results)
    buyer_values: tuple[float, float] | None = (0.10, 0.30)
    ppo_steps: int = 20_000
    q_steps: int = 60_000
    q_beta: float = 1e-4
    nash_method: str = "exact"
    mechanism: str = "uniform"
    rule: str = "walrasian"  # uniform-price interval; see p2penv.scenarios.seller_buyer_env_fn

    def __post_init__(self):
        bad = [m for m in self.methods if m not in METHODS]
        if bad:
            raise ValueError(f"methods: unknown {bad}; known {METHODS}")
        if not self.seeds:
            raise ValueError("seeds: need at least one seed")


QUICK = MarketPowerConfig(ns=(2, 3), seeds=(0, 1), ppo_steps=240, q_steps=1500, q_beta=2e-3)
DEMO = MarketPowerConfig(ns=(2, 3, 5, 10), seeds=(0, 1, 2), ppo_steps=6000, q_steps=20_000, q_beta=3e-4)


def profiles(cfg: MarketPowerConfig, n: int, out: Path | None, done=lambda m, s: False):
    """Yield (method, seed, joint policy, env_fn) for every requested method not ``done(m, s)``
    (done ones are skipped before any training)."""
    from p2penv.agents.baselines import TruthfulAgent
    from p2penv.agents.qlearning import QConfig, QLearners
    from p2penv.agents.rollout import Assigned, CompetitivePolicy
    from p2penv.agents.sb3_shared import SB3Config, train_shared

    env_fns = {s: seller_buyer_env_fn(n, cfg.n_buyers, seed=s, mechanism=cfg.mechanism, rule=cfg.rule,
                                     demand_kw=cfg.demand_kw, buyer_values=cfg.buyer_values) for s in cfg.seeds}
    truth = TruthfulAgent(env_fns[cfg.seeds[0]]().config)
    if "qlearning" in cfg.methods and not all(done("qlearning", s) for s in cfg.seeds):
        q = QLearners(env_fns[cfg.seeds[0]], QConfig(total_steps=cfg.q_steps, n_sessions=len(cfg.seeds),
                                                     beta=cfg.q_beta, seed=cfg.seeds[0]), learners=sellers(n))
        q.train(None if out is None else out / f"q_N{n}")
    for k, s in enumerate(cfg.seeds):
        f = env_fns[s]
        for m in cfg.methods:
            if done(m, s):
                continue
            if m == "competitive":
                yield m, s, CompetitivePolicy(), f
            elif m == "nash":
                yield m, s, NashPolicy(players=range(n), method=cfg.nash_method), f
            elif m == "ppo_shared":
                sb = SB3Config(total_steps=cfg.ppo_steps, seed=s, n_steps=48)
                r = train_shared(f, sb, None if out is None else out / f"ppo_N{n}_s{s}", learners=sellers(n),
                                 others=truth)
                yield m, s, Assigned({a: r.policy for a in sellers(n)}, default=truth), f
            elif m == "qlearning":
                yield m, s, q.policy(k), f


def run(cfg: MarketPowerConfig, out_dir: str | Path | None = None, save_models: bool = False,
        resume: bool = False) -> dict:
    """Run the experiment; writes CSV/JSON/PNG to ``out_dir`` when given; returns the summary.
    Every finished (N, method, seed) row is checkpointed; ``resume=True`` skips those."""
    t0 = time.perf_counter()
    out = Path(out_dir) if out_dir is not None else None
    ck = RowCheckpoint(out, "market_power", asdict(cfg), resume,
                       total=len(cfg.ns) * len(cfg.methods) * len(cfg.seeds))
    for n in cfg.ns:
        done = lambda m, s, n=n: ck.find(N=n, method=m, seed=s) is not None  # noqa: E731
        for m, s, pol, f in profiles(cfg, n, out if save_models else None, done):
            r = evaluate(f, pol, seed=s, n_sellers=n, nash_players=range(n), nash_method=cfg.nash_method)
            ck.add(dict(N=n, method=m, seed=s, **r))
    rows = [ck.find(N=n, method=m, seed=s) for n in cfg.ns for m in cfg.methods for s in cfg.seeds]
    summary = summarise(rows, ("N", "method"), METRICS)
    shape = trend(summary)
    meta = dict(config=asdict(cfg), wall_s=time.perf_counter() - t0, trend=shape, resumed_rows=ck.reused)
    if out is not None:
        save_outputs(out, "market_power", rows, summary, meta)
        plot(summary, cfg, out / "market_power.png")
    echo(format_table(summary, ("N", "method", "markup_rel", "lerner", "hhi", "welfare_loss_rel", "nash_conv")))
    echo(f"cells: mean +- half-width of the 95 % t interval over seeds {list(cfg.seeds)} (no +-: identical "
         "across seeds); markup_rel = (price - competitive price) / competitive price; lerner: share-weighted "
         "(P - MC) / P of the sellers; hhi: sellers' volume shares; welfare_loss_rel: of the competitive gains "
         "from trade; nash_conv: $/step a unilateral stage-game deviation would gain (summed over sellers)")
    echo("trend (Spearman rho of metric vs N; < 0 = market power falls with N): " +
         ", ".join(f"{k}: {v:+.2f}" for k, v in shape.items()))
    return dict(rows=rows, summary=summary, meta=meta)


def trend(summary: list[dict]) -> dict[str, float]:
    """Spearman correlation of the markup and Lerner index with N, per method."""
    from scipy.stats import spearmanr

    out = {}
    for m in sorted({r["method"] for r in summary}):
        rs = sorted((r for r in summary if r["method"] == m), key=lambda r: r["N"])
        for k in ("markup_rel", "lerner"):
            x = [r["N"] for r in rs if np.isfinite(r[k])]
            y = [r[k] for r in rs if np.isfinite(r[k])]
            if len(x) >= 2 and np.ptp(y) > 1e-9:
                out[f"{m}/{k}"] = float(spearmanr(x, y).statistic)
    return out


def plot(summary: list[dict], cfg: MarketPowerConfig, path: Path) -> Path:
    keys = ("markup_rel", "lerner", "hhi", "welfare_loss_rel")
    fig, axes = new_figure(len(keys), 3.6, 3.2)
    for ax, k in zip(axes, keys):
        for m in cfg.methods:
            rs = sorted((r for r in summary if r["method"] == m), key=lambda r: r["N"])
            ci = [r[k + "_ci"] if np.isfinite(r[k + "_ci"]) else 0.0 for r in rs]
            ax.errorbar([r["N"] for r in rs], [r[k] for r in rs], yerr=ci, marker="o", capsize=3, label=m)
        ax.set_xlabel("sellers N")
        ax.set_title(k)
        ax.set_xscale("log")
        ax.minorticks_off()
        ax.set_xticks(list(cfg.ns), [str(n) for n in cfg.ns])
    axes[0].legend(fontsize=7)
    return save_figure(fig, path)


def main(argv=None, prog: str | None = None) -> dict:
    ap = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="tiny budget (seconds)")
    ap.add_argument("--out", default="results/market_power")
    ap.add_argument("--seeds", type=int, nargs="*")
    ap.add_argument("--ns", type=int, nargs="*")
    ap.add_argument("--ppo-steps", type=int)
    ap.add_argument("--q-steps", type=int)
    ap.add_argument("--nash-method", choices=("grid", "exact"))
    ap.add_argument("--inelastic", action="store_true", help="buyers always import at retail (no flexible loads)")
    ap.add_argument("--resume", action="store_true", help="reuse the rows checkpointed in --out by an interrupted run")
    a = ap.parse_args(argv)
    cfg = QUICK if a.quick else MarketPowerConfig()
    over = {k: v for k, v in dict(seeds=a.seeds and tuple(a.seeds), ns=a.ns and tuple(a.ns),
                                  ppo_steps=a.ppo_steps, q_steps=a.q_steps, nash_method=a.nash_method).items() if v}
    if a.inelastic:
        over.update(buyer_values=None, n_buyers=3, demand_kw=2.0)
    try:
        return run(replace(cfg, **over), a.out, resume=a.resume)
    except CheckpointError as e:
        ap.exit(2, f"{ap.prog}: error: {e}\n")


if __name__ == "__main__":
    main()
