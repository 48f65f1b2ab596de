"""Algorithm benchmark: random, truthful, PPO shared, PPO independent, Q-learning on versioned
scenarios of auction_v0 and dlmp_v0: mean learner profit $/episode, gains-from-trade welfare
$/episode and stage-game NashConv $/step (grid; auction_v0 only: the DLMP clearing is an LP
solved one book at a time, and its exact best response is the MILP of
``p2penv.diagnostics.dlmp_best_response``), mean +- 95% CI over seeds. The Q-learning kernel
replays auction_v0 only.

    python -m p2penv.experiments.algorithm_benchmark [--quick] [--out results/algorithm_benchmark]
"""
from __future__ import annotations

import argparse
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import p2penv

from .checkpoints import CheckpointError, RowCheckpoint
from .metrics import evaluate, summarise
from .output import echo, format_table, new_figure, save_figure, save_outputs

METHODS = ("random", "truthful", "competitive", "ppo_shared", "ppo_independent", "qlearning")
METRICS = ("profit", "welfare", "nash_conv", "price")


def scenario(name: str, seed: int):
    """(env_fn, learners, n_sellers) of a registered scenario id (``p2penv.list_scenarios()``)."""
    spec = p2penv.get_spec(name)
    learners = None if spec.learners is None else list(spec.learners)
    n_sellers = None if learners is None else len(learners)
    return (lambda: p2penv.make(name, seed=seed)), learners, n_sellers


def available_scenarios() -> tuple[str, ...]:
    """The README's three benchmark scenarios (every registered one: ``p2penv.experiments.scenario_baselines``)."""
    return ("auction_v0/sellers3-v0", "auction_v0/household6-v0", "dlmp_v0/default-v0")


@dataclass(frozen=True)
class BenchmarkConfig:
    scenarios: tuple[str, ...] = ("auction_v0/sellers3-v0", "auction_v0/household6-v0", "dlmp_v0/default-v0")
    methods: tuple[str, ...] = ("random", "truthful", "ppo_shared", "ppo_independent", "qlearning")
    seeds: tuple[int, ...] = (0, 1, 2)
    ppo_steps: int = 20_000
    q_steps: int = 40_000
    q_beta: float = 1.5e-4

    def __post_init__(self):
        bad = [m for m in self.methods if m not in METHODS]
        if bad:
            raise ValueError(f"methods: unknown {bad}; known {METHODS}")


QUICK = BenchmarkConfig(scenarios=("auction_v0/sellers3-v0", "auction_v0/household6-v0"), seeds=(0, 1),
                        ppo_steps=288, q_steps=1000, q_beta=3e-3)


def policy_for(method: str, f, learners, seed: int, cfg: BenchmarkConfig):
    from p2penv.agents.baselines import RandomAgent, TruthfulAgent
    from p2penv.agents.independent import train_independent
    from p2penv.agents.qlearning import QConfig, QLearners
    from p2penv.agents.rollout import Assigned
    from p2penv.agents.sb3_shared import SB3Config, train_shared

    env = f()
    truth = TruthfulAgent(env.config)
    names = learners if learners is not None else list(env.possible_agents)
    if method == "random":
        return Assigned({a: RandomAgent(seed) for a in names}, default=truth)
    if method == "truthful":
        return Assigned(truth)
    if method == "competitive":
        from p2penv.agents.rollout import CompetitivePolicy

        return CompetitivePolicy()
    sb = SB3Config(total_steps=cfg.ppo_steps, seed=seed, n_steps=48)
    if method == "ppo_shared":
        r = train_shared(f, sb, learners=learners, others=truth)
        return Assigned({a: r.policy for a in names}, default=truth)
    if method == "ppo_independent":
        return train_independent(f, sb, learners=learners, others=truth).policy.joint(truth)
    q = QLearners(f, QConfig(total_steps=cfg.q_steps, n_sessions=1, beta=cfg.q_beta, seed=seed), learners=learners,
                  env_seed=seed)
    q.train()
    return q.policy(0)


def run(cfg: BenchmarkConfig, out_dir: str | Path | None = None, resume: bool = False) -> dict:
    """Run the benchmark; every finished (scenario, method, seed) row is checkpointed in
    ``out_dir`` and ``resume=True`` skips those (no retraining)."""
    t0 = time.perf_counter()
    n_rows = sum(1 for sc in cfg.scenarios for m in cfg.methods if m != "qlearning" or sc.startswith("auction_v0"))
    ck = RowCheckpoint(out_dir, "algorithm_benchmark", asdict(cfg), resume, total=n_rows * len(cfg.seeds))
    for sc in cfg.scenarios:
        for s in cfg.seeds:
            f, learners, ns = scenario(sc, s)
            pl = range(ns) if ns else None
            for m in cfg.methods:
                if m == "qlearning" and not sc.startswith("auction_v0"):
                    continue
                if ck.find(scenario=sc, method=m, seed=s) is not None:
                    continue
                t1 = time.perf_counter()
                pol = policy_for(m, f, learners, s, cfg)
                r = evaluate(f, pol, seed=s, n_sellers=ns, nash_players=pl, nash_conv=sc.startswith("auction_v0"))
                if ns is None:  # all agents learn: profit per agent
                    r["profit"] = r["profit_all"] / len(f().possible_agents)
                ck.add(dict(scenario=sc, method=m, seed=s, train_s=time.perf_counter() - t1, **r))
    rows = ck.rows
    summary = summarise(rows, ("scenario", "method"), METRICS + ("train_s",))
    meta = dict(config=asdict(cfg), wall_s=time.perf_counter() - t0, resumed_rows=ck.reused)
    if out_dir is not None:
        out = Path(out_dir)
        save_outputs(out, "algorithm_benchmark", rows, summary, meta)
        plot(summary, cfg, out / "algorithm_benchmark.png")
    echo(format_table(summary, ("scenario", "method", "profit", "welfare", "nash_conv", "train_s")))
    return dict(rows=rows, summary=summary, meta=meta)


def plot(summary, cfg, path):
    import numpy as np

    fig, axes = new_figure(len(cfg.scenarios), 4.5, 3.2)
    for ax, sc in zip(axes, cfg.scenarios):
        rs = [r for r in summary if r["scenario"] == sc]
        ax.bar(range(len(rs)), [r["profit"] for r in rs],
               yerr=[r["profit_ci"] if np.isfinite(r["profit_ci"]) else 0 for r in rs], capsize=3)
        ax.set_xticks(range(len(rs)), [r["method"] for r in rs], rotation=30, fontsize=7)
        ax.set_title(sc, fontsize=8)
        ax.set_ylabel("learner profit $/episode")
    return save_figure(fig, path)


def main(argv=None, prog: str | None = None) -> dict:
    ap = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default="results/algorithm_benchmark")
    ap.add_argument("--seeds", type=int, nargs="*")
    ap.add_argument("--resume", action="store_true", help="reuse the rows checkpointed in --out by an interrupted run")
    a = ap.parse_args(argv)
    cfg = QUICK if a.quick else BenchmarkConfig(scenarios=available_scenarios())
    if a.seeds:
        cfg = replace(cfg, seeds=tuple(a.seeds))
    try:
        return run(cfg, a.out, resume=a.resume)
    except CheckpointError as e:
        ap.exit(2, f"{ap.prog}: error: {e}\n")


if __name__ == "__main__":
    main()
