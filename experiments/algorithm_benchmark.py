"""Algorithm benchmark on the registry's versioned scenarios: the README leaderboard.

Methods: random (uniform actions), truthful (price-taking dispatch at reservation prices), competitive
(the privileged benchmark: S1 per step, or with batteries the episode schedule of
``p2penv.market.competitive_horizon``), PPO with parameter sharing, MAPPO (shared actor, centralised
critic on ``state()``) and independent PPO (per-agent networks) - all three with the vector-env
trainer ``p2penv.agents.vector_ppo`` - and Calvano Q-learning where its kernel applies (auction_v0,
2-dim actions, constant tariffs). The learners are the scenario's (``ScenarioSpec.learners``, or every
agent); the others bid truthfully. Metrics per (scenario, method, seed), mean +- 95 % t interval over
seeds: mean learner profit $/episode, gains-from-trade welfare $/episode (true values), mean clearing
price $/kWh and the learners' stage-game NashConv $/step (grid; auction_v0 only: the DLMP clearing is
an LP solved one book at a time, its exact best response is the MILP of
``p2penv.diagnostics.dlmp_best_response``).

Rows are tasks (``p2penv.experiments.dispatch``): ``--ray local`` / ``--ray ADDRESS`` runs them on Ray.
``--docs`` also writes ``docs/results/algorithm_benchmark.json`` (what the README table is made of).

    python -m p2penv.experiments.algorithm_benchmark [--quick] [--out results/algorithm_benchmark] [--ray local]
"""
from __future__ import annotations

import argparse
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import p2penv

from .checkpoints import CheckpointError, RowCheckpoint
from .dispatch import Task, add_ray_option, run_tasks
from .metrics import evaluate, summarise
from .output import echo, format_table, new_figure, save_figure, save_outputs

METHODS = ("random", "truthful", "competitive", "ppo_shared", "mappo", "ppo_independent", "qlearning")
METRICS = ("profit", "welfare", "nash_conv", "price")
PPO_VARIANTS = {"ppo_shared": ("shared", "local"), "mappo": ("shared", "central"),
                "ppo_independent": ("independent", "local")}
DOCS = Path(__file__).resolve().parents[1] / "docs"


def scenario(name: str, seed: int):
    """(env_fn, learners, n_sellers) of a registered scenario id (``p2penv.list_scenarios()``)."""
    spec = p2penv.get_spec(name)
    learners = None if spec.learners is None else list(spec.learners)
    n_sellers = None if learners is None else len(learners)
    return (lambda: p2penv.make(name, seed=seed)), learners, n_sellers


def available_scenarios() -> tuple[str, ...]:
    """The leaderboard's scenarios: sellers-only, households, the storage community, a DLMP feeder."""
    return ("auction_v0/sellers3-v0", "auction_v0/household6-v0", "auction_v0/storage-community-v0",
            "dlmp_v0/teaching4-v0")


def applies(method: str, sid: str) -> bool:
    """Q-learning's kernel replays auction_v0 with 2-dim actions and constant tariffs; the rest apply everywhere."""
    if method != "qlearning":
        return True
    spec = p2penv.get_spec(sid)
    gen = spec.config.get("generator")
    return spec.env == "auction_v0" and not getattr(gen, "has_storage", False) and not hasattr(gen, "prices")


@dataclass(frozen=True)
class BenchmarkConfig:
    """``ppo_steps``: market steps per PPO run (agent-steps = this x learners) over ``ppo_envs`` markets;
    ``q_steps``: Q-learning steps per session, exploration exp(-q_beta t)."""

    scenarios: tuple[str, ...] = ("auction_v0/sellers3-v0", "auction_v0/household6-v0",
                                  "auction_v0/storage-community-v0", "dlmp_v0/teaching4-v0")
    methods: tuple[str, ...] = METHODS
    seeds: tuple[int, ...] = tuple(range(10))
    ppo_steps: int = 15_360
    ppo_envs: int = 32
    q_steps: int = 20_000
    q_beta: float = 3e-4

    def __post_init__(self):
        bad = [m for m in self.methods if m not in METHODS]
        if bad:
            raise ValueError(f"methods: unknown {bad}; known {METHODS}")
        if not self.seeds:
            raise ValueError("seeds: need at least one seed")


QUICK = BenchmarkConfig(scenarios=("auction_v0/sellers3-v0", "auction_v0/household6-v0"), seeds=(0, 1),
                        methods=("random", "truthful", "ppo_shared", "ppo_independent", "qlearning"),
                        ppo_steps=192, ppo_envs=4, q_steps=1000, q_beta=3e-3)


def policy_for(method: str, f, learners, seed: int, cfg: BenchmarkConfig, sid: str | None = None):
    """Joint policy of ``method`` on the scenario of ``f`` (training it first when it learns).
    The PPO variants need the scenario id ``sid`` (they train on its vector env)."""
    from p2penv.agents.baselines import RandomAgent, TruthfulAgent
    from p2penv.agents.qlearning import QConfig, QLearners
    from p2penv.agents.rollout import Assigned, CompetitivePolicy

    env = f()
    truth = TruthfulAgent(env.config)
    names = learners if learners is not None else list(env.possible_agents)
    if method == "random":
        return Assigned({a: RandomAgent(seed) for a in names}, default=truth)
    if method == "truthful":
        return Assigned(truth)
    if method == "competitive":
        return CompetitivePolicy()
    if method in PPO_VARIANTS:
        from p2penv.agents.vector_ppo import VectorPPOConfig, train_vector_ppo

        if sid is None:
            raise ValueError(f"{method}: needs the scenario id (sid) to build its vector env")
        mode, critic = PPO_VARIANTS[method]
        c = VectorPPOConfig(total_steps=cfg.ppo_steps * len(names), num_envs=cfg.ppo_envs, seed=seed,
                            mode=mode, critic=critic, torch_threads=1, minibatch_size=2048,
                            learners=None if learners is None else tuple(learners))
        res = train_vector_ppo(lambda num_envs, s: p2penv.make_vector(sid, num_envs, seed=s), c, others=truth)
        return res.policy.joint(truth)
    if method == "qlearning":
        q = QLearners(f, QConfig(total_steps=cfg.q_steps, n_sessions=1, beta=cfg.q_beta, seed=seed),
                      learners=learners, env_seed=seed)
        q.train()
        return q.policy(0)
    raise ValueError(f"method: unknown {method!r}; known {METHODS}")


def benchmark_row(cfg: BenchmarkConfig, sid: str, method: str, seed: int) -> list[dict]:
    """Train (if it learns) and evaluate one (scenario, method, seed) cell on the episode seeded ``seed``."""
    f, learners, ns = scenario(sid, seed)
    pol = policy_for(method, f, learners, seed, cfg, sid)
    auction = sid.startswith("auction_v0")
    r = evaluate(f, pol, seed=seed, n_sellers=ns, nash_players=range(ns) if ns else None, nash_conv=auction)
    if ns is None:  # every agent learns: profit per agent
        r["profit"] = r["profit_all"] / len(f().possible_agents)
    if not auction:
        r["nash_conv"] = float("nan")
    return [dict(scenario=sid, method=method, seed=seed, **r)]


def cells(cfg: BenchmarkConfig) -> list[tuple[str, str, int]]:
    return [(sc, m, s) for sc in cfg.scenarios for m in cfg.methods if applies(m, sc) for s in cfg.seeds]


def run(cfg: BenchmarkConfig, out_dir: str | Path | None = None, resume: bool = False, ray=None,
        docs: bool = False) -> dict:
    """Run the benchmark; every finished (scenario, method, seed) row is checkpointed in ``out_dir`` and
    ``resume=True`` skips those (no retraining). ``docs``: also write ``docs/results/algorithm_benchmark.json``."""
    t0 = time.perf_counter()
    todo = cells(cfg)
    ck = RowCheckpoint(out_dir, "algorithm_benchmark", asdict(cfg), resume, total=len(todo))
    run_tasks([Task(benchmark_row, (cfg, sc, m, s), (dict(scenario=sc, method=m, seed=s),), f"{sc} {m} seed={s}")
               for sc, m, s in todo], ck, ray)
    rows = [ck.find(scenario=sc, method=m, seed=s) for sc, m, s in todo]
    summary = summarise(rows, ("scenario", "method"), METRICS)
    meta = dict(config=asdict(cfg), wall_s=time.perf_counter() - t0, resumed_rows=ck.reused)
    if out_dir is not None:
        out = Path(out_dir)
        save_outputs(out, "algorithm_benchmark", rows, summary, meta)
        plot(summary, cfg, out / "algorithm_benchmark.png")
    if docs:
        save_outputs(DOCS / "results", "algorithm_benchmark", rows, summary, meta)
        plot(summary, cfg, DOCS / "figures" / "algorithm_benchmark.png")
    echo(format_table(summary, ("scenario", "method", "profit", "welfare", "nash_conv", "price")))
    echo(f"cells: mean +- half-width of the 95 % t interval over seeds {list(cfg.seeds)}; profit: mean learner "
         "profit $/episode; welfare: gains from trade $/episode (true values); nash_conv: learners' stage-game "
         "NashConv $/step (auction_v0 only, nan on dlmp_v0); price: mean clearing price $/kWh")
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
    ap.add_argument("--scenarios", nargs="*", help="registered scenario ids (p2penv.list_scenarios())")
    ap.add_argument("--methods", nargs="*", choices=METHODS)
    add_ray_option(ap, "rows")
    ap.add_argument("--docs", action="store_true", help="also write docs/results/algorithm_benchmark.json and the figure")
    ap.add_argument("--resume", action="store_true", help="reuse the rows checkpointed in --out by an interrupted run")
    a = ap.parse_args(argv)
    cfg = QUICK if a.quick else BenchmarkConfig()
    over = {k: v for k, v in dict(seeds=a.seeds and tuple(a.seeds), scenarios=a.scenarios and tuple(a.scenarios),
                                  methods=a.methods and tuple(a.methods)).items() if v}
    for sid in over.get("scenarios", ()):
        try:
            p2penv.get_spec(sid)
        except ValueError as e:
            ap.error(str(e))
    try:
        return run(replace(cfg, **over), a.out, resume=a.resume, ray=a.ray, docs=a.docs)
    except CheckpointError as e:
        ap.exit(2, f"{ap.prog}: error: {e}\n")


if __name__ == "__main__":
    main()
