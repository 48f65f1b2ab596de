"""Mechanism comparison: uniform-price k-double auction vs pay-as-bid vs posted price vs DLMP for the
same seller profiles on ``SellerBuyerMarket``: truthful, fixed markup, capacity withholding, stage-game Nash and
Q-learning (trained under each mechanism). Metrics: clearing price, relative markup, relative
welfare loss, seller profit $/episode, stage NashConv $/step.

DLMP: the same agents on ``dlmp_v0``'s 4-bus teaching feeder without its fixed loads, the
substation selling at the retail tariff and buying nothing (``export_limit_kw=0``), so the outside
options equal the auctions' backstop and only the pricing differs (LP duals: the marginal order's
price, times the bus MLF). Nash and Q-learning profiles exist for the auctions only (the stage-game
search and the Q-learning kernel batch the auction clearing; the DLMP LP clears one book at a time).

Posted price (``posted_price``): every trade at the registered default, the mid-market rate of the
default tariffs (0.175 $/kWh, above this market's competitive price 0.14); an order's price is only
its reservation price, so the sellers' price profiles change participation, not the price, and
dispatch is the only lever (withholding). The buyers' excess demand or the sellers' excess supply
is rationed pro rata (``p2penv.market.mechanisms.posted_price``).

    python -m p2penv.experiments.mechanism_comparison [--quick] [--mechanisms ...] [--out results/mechanism_comparison]
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from p2penv.seller_buyer import SellerBuyerMarket, seller_buyer_env_fn, sellers

from .checkpoints import RowCheckpoint
from .dispatch import Task, run_tasks
from .metrics import evaluate, summarise
from .output import echo, format_table, new_figure, save_figure, save_outputs
from .policies import NashPolicy
from .study_cli import check_known, configured, overrides, run_study, study_parser

PROFILES = ("truthful", "markup", "withholding", "nash", "qlearning")
METRICS = ("price", "markup_rel", "welfare_loss_rel", "profit", "nash_conv")


@dataclass(frozen=True)
class MechanismConfig:
    mechanisms: tuple[str, ...] = ("uniform", "pay_as_bid", "posted_price", "dlmp")
    profiles: tuple[str, ...] = PROFILES
    n_sellers: int = 3
    seeds: tuple[int, ...] = (0, 1, 2)
    markup: float = 0.05  # $/kWh for the fixed-markup profile
    withhold: float = 0.3  # fraction for the withholding profile
    q_steps: int = 40_000
    q_beta: float = 1.5e-4

    def __post_init__(self):
        check_known("profiles", self.profiles, PROFILES)


QUICK = MechanismConfig(seeds=(0, 1), q_steps=1000, q_beta=3e-3)
AUCTION_ONLY = ("nash", "qlearning")


def env_fn(mechanism: str, n: int, seed: int):
    """auction_v0 with the named mechanism, or the DLMP market described in the module docstring."""
    if mechanism != "dlmp":
        return seller_buyer_env_fn(n, mechanism=mechanism, seed=seed)
    from p2penv import dlmp_v0
    from p2penv.envs.config import MarketConfig

    n_all = n + 3
    buses = tuple(1 + i % 3 for i in range(n_all))
    return lambda: dlmp_v0.parallel_env(scenario="teaching4", generator=SellerBuyerMarket(n), n_prosumers=n_all,
                                        agent_buses=buses, seed=seed, load_scale=0.0,
                                        wholesale_price=MarketConfig().retail_tariff, export_limit_kw=0.0)


def profile_policy(cfg: MechanismConfig, profile: str, c):
    """Joint policy of a fixed (non-learning) profile on a market with config ``c``."""
    from p2penv.agents.baselines import CapacityWithholdingAgent, FixedMarkupAgent, TruthfulAgent
    from p2penv.agents.rollout import Assigned

    n = cfg.n_sellers
    truth = TruthfulAgent(c)
    if profile == "truthful":
        return Assigned(truth)
    if profile == "markup":
        return Assigned({a: FixedMarkupAgent(c, cfg.markup) for a in sellers(n)}, default=truth)
    if profile == "withholding":
        return Assigned({a: CapacityWithholdingAgent(c, cfg.withhold) for a in sellers(n)}, default=truth)
    if profile == "nash":
        return NashPolicy(players=range(n))
    raise ValueError(f"profile: {profile!r} is not a fixed profile")


def profile_rows(cfg: MechanismConfig, mech: str, profile: str, seed: int) -> list[dict]:
    """The row of one fixed profile under one mechanism, on the episode seeded ``seed``."""
    n = cfg.n_sellers
    f = env_fn(mech, n, seed)
    r = evaluate(f, profile_policy(cfg, profile, f().config), seed=seed, n_sellers=n, nash_players=range(n),
                 nash_conv=mech != "dlmp")
    return [dict(mechanism=mech, profile=profile, seed=seed, **r)]


def qlearning_rows(cfg: MechanismConfig, mech: str) -> list[dict]:
    """One vectorised Q-learning run under ``mech`` (a session per seed); a row per seed."""
    from p2penv.agents.qlearning import QConfig, QLearners

    n = cfg.n_sellers
    q = QLearners(seller_buyer_env_fn(n, mechanism=mech, seed=cfg.seeds[0]),
                  QConfig(total_steps=cfg.q_steps, n_sessions=len(cfg.seeds), beta=cfg.q_beta, seed=cfg.seeds[0]),
                  learners=sellers(n))
    q.train()
    rows = []
    for k, s in enumerate(cfg.seeds):
        r = evaluate(env_fn(mech, n, s), q.policy(k), seed=s, n_sellers=n, nash_players=range(n), nash_conv=True)
        rows.append(dict(mechanism=mech, profile="qlearning", seed=s, **r))
    return rows


def run(cfg: MechanismConfig, out_dir: str | Path | None = None, resume: bool = False, ray=None) -> dict:
    """Run the comparison; writes CSV/JSON/PNG to ``out_dir`` when given; returns the summary.
    Every finished (mechanism, profile, seed) row is checkpointed; ``resume=True`` skips those
    (and the Q-learning training of a mechanism whose Q-learning rows are all done). ``ray``: None,
    "local" or a cluster address (``p2penv.experiments.dispatch``)."""
    t0 = time.perf_counter()
    keys = [(mech, p, s) for mech in cfg.mechanisms for s in cfg.seeds for p in cfg.profiles
            if not (mech == "dlmp" and p in AUCTION_ONLY)]
    ck = RowCheckpoint(out_dir, "mechanism_comparison", asdict(cfg), resume, total=len(keys))
    tasks = []
    for mech in cfg.mechanisms:
        if "qlearning" in cfg.profiles and mech != "dlmp":
            tasks.append(Task(qlearning_rows, (cfg, mech),
                              tuple(dict(mechanism=mech, profile="qlearning", seed=s) for s in cfg.seeds), f"{mech} Q"))
        tasks += [Task(profile_rows, (cfg, m, p, s), (dict(mechanism=m, profile=p, seed=s),), f"{m} {p} seed={s}")
                  for m, p, s in keys if m == mech and p != "qlearning"]
    run_tasks(tasks, ck, ray)
    rows = [ck.find(mechanism=m, profile=p, seed=s) for m, p, s in keys]
    summary = summarise(rows, ("mechanism", "profile"), METRICS)
    meta = dict(config=asdict(cfg), wall_s=time.perf_counter() - t0, resumed_rows=ck.reused)
    if out_dir is not None:
        out = Path(out_dir)
        save_outputs(out, "mechanism_comparison", rows, summary, meta)
        plot(summary, cfg, out / "mechanism_comparison.png")
    echo(format_table(summary, ("mechanism", "profile", "price", "markup_rel", "welfare_loss_rel", "profit",
                                "nash_conv")))
    return dict(rows=rows, summary=summary, meta=meta)


def plot(summary, cfg, path):
    keys = ("price", "welfare_loss_rel", "profit")
    fig, axes = new_figure(len(keys), 4.0, 3.2)
    w = 0.8 / len(cfg.mechanisms)
    for ax, k in zip(axes, keys):
        for j, mech in enumerate(cfg.mechanisms):
            rs = [next((r for r in summary if r["mechanism"] == mech and r["profile"] == p), None)
                  for p in cfg.profiles]
            x = [i for i, r in enumerate(rs) if r is not None]
            rs = [r for r in rs if r is not None]
            ax.bar(np.array(x) + j * w, [r[k] for r in rs], w, label=mech,
                   yerr=[r[k + "_ci"] if np.isfinite(r[k + "_ci"]) else 0 for r in rs], capsize=2)
        ax.set_xticks(np.arange(len(cfg.profiles)) + 0.4 - w / 2, cfg.profiles, rotation=30, fontsize=7)
        ax.set_title(k)
    axes[0].legend(fontsize=7)
    return save_figure(fig, path)


def main(argv=None, prog: str | None = None) -> dict:
    ap = study_parser(__doc__, prog, "results/mechanism_comparison")
    ap.add_argument("--seeds", type=int, nargs="*")
    ap.add_argument("--mechanisms", nargs="*", help="subset of the config's mechanisms (e.g. posted_price uniform)")
    a = ap.parse_args(argv)
    cfg = configured(ap, QUICK if a.quick else MechanismConfig(), **overrides(a, "seeds", "mechanisms"))
    return run_study(ap, run, cfg, a.out, resume=a.resume, ray=a.ray)


if __name__ == "__main__":
    main()
