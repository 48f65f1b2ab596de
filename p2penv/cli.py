"""Command line: ``p2penv train | evaluate | experiment NAME | bench``.

    p2penv train --algo ppo --mode shared --steps 20000 --seed 0 --out runs/ppo [--resume]
    p2penv train --config run.json        # {"env": {...MarketConfig...}, "algo": ..., "train": {...}}
    p2penv evaluate runs/ppo --episodes 3
    p2penv experiment market_power --quick --out results/mp
    p2penv bench [--adapters]

Every output is written atomically; ``train --resume`` continues from the last checkpoint in
``--out`` (SB3: model + replay buffer + step counter; Q-learning: Q-tables + rng state + t).
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

EXPERIMENTS = ("market_power", "algorithm_benchmark", "mechanism_comparison", "collusion_probe", "demo")


ENVS = ("auction_v0", "dlmp_v0")


def _env_fn(env_opts: dict, sellers: int | None, seed: int):
    import importlib

    opts = dict(env_opts)
    name = opts.pop("name", "auction_v0")
    if name not in ENVS:
        raise SystemExit(f"env: unknown {name!r}; known {ENVS}")
    mod = importlib.import_module(f"p2penv.{name}")
    opts.setdefault("seed", seed)
    if sellers:
        if name != "auction_v0":
            raise SystemExit("sellers: the SellerBuyerMarket scenario exists for auction_v0 only")
        from experiments.common import SellerBuyerMarket

        opts["generator"] = SellerBuyerMarket(sellers)
        opts.setdefault("n_prosumers", sellers + 3)
    return lambda: mod.parallel_env(**opts)


def _load_spec(a) -> dict:
    spec = {}
    if a.config:
        with open(a.config) as f:
            spec = json.load(f)
        bad = sorted(set(spec) - {"env", "algo", "mode", "sellers", "seed", "train"})
        if bad:
            raise SystemExit(f"config: unknown key(s) {bad}; known env, algo, mode, sellers, seed, train")
    env = dict(spec.get("env", {}))
    if getattr(a, "env", None) is not None:
        env["name"] = a.env
    if a.n_prosumers is not None:
        env["n_prosumers"] = a.n_prosumers
    if a.mechanism is not None:
        env["mechanism"] = a.mechanism
    train = dict(spec.get("train", {}))
    for k, v in dict(total_steps=a.steps, checkpoint_every=a.checkpoint_every).items():
        if v is not None:
            train[k] = v
    if a.tensorboard:
        train["tensorboard"] = True
    if a.progress:
        train["progress"] = True
    seed = a.seed if a.seed is not None else spec.get("seed", 0)
    train["seed"] = seed
    return dict(env=env, algo=a.algo or spec.get("algo", "ppo"), mode=a.mode or spec.get("mode", "shared"),
                sellers=a.sellers if a.sellers is not None else spec.get("sellers"), seed=seed, train=train)


def cmd_train(a) -> int:
    from agents.baselines import TruthfulAgent
    from agents.checkpoint import atomic_write_json

    spec = _load_spec(a)
    out = Path(a.out)
    f = _env_fn(spec["env"], spec["sellers"], spec["seed"])
    learners = [f"prosumer_{i}" for i in range(spec["sellers"])] if spec["sellers"] else None
    others = TruthfulAgent(f().config)
    atomic_write_json(out / "run.json", spec)
    if spec["algo"] == "qlearning":
        from agents.qlearning import QConfig, QLearners

        tr = {k: v for k, v in spec["train"].items() if k not in ("tensorboard",)}
        q = QLearners(f, QConfig.from_dict(tr), learners=learners, env_seed=spec["seed"])
        res = q.train(out, resume=a.resume)
        print(f"qlearning: t={res.t} state={res.state_kind} converged={res.converged.tolist()} -> {out}")
        return 0
    from agents.sb3_shared import SB3Config

    cfg = SB3Config.from_dict(dict(spec["train"], algo=spec["algo"]))
    if spec["mode"] == "shared":
        from agents.sb3_shared import train_shared as train
    elif spec["mode"] == "independent":
        from agents.independent import train_independent as train
    else:
        raise SystemExit(f"mode: expected 'shared' or 'independent', got {spec['mode']!r}")
    r = train(f, cfg, out, learners=learners, others=others, resume=a.resume)
    print(f"{spec['algo']}/{spec['mode']}: {r.num_timesteps} agent-steps, {r.steps_per_s:.0f} steps/s -> {out}")
    return 0


def load_policy(run_dir: Path, env_fn):
    """Joint policy of a finished ``train`` run folder."""
    from agents.baselines import TruthfulAgent
    from agents.rollout import Assigned

    spec = json.loads((run_dir / "run.json").read_text())
    truth = TruthfulAgent(env_fn().config)
    if spec["algo"] == "qlearning":
        from agents.qlearning import QConfig, QLearners

        tr = {k: v for k, v in spec["train"].items() if k not in ("tensorboard",)}
        learners = [f"prosumer_{i}" for i in range(spec["sellers"])] if spec["sellers"] else None
        q = QLearners(env_fn, QConfig.from_dict(tr), learners=learners, env_seed=spec["seed"])
        q.load(run_dir / "checkpoint.pkl")
        return q.policy(0), spec
    if spec["mode"] == "independent":
        from agents.independent import IndependentPolicy

        return IndependentPolicy.load(run_dir / "policy").joint(truth), spec
    from agents.sb3_shared import SharedPolicy

    p = SharedPolicy.load(run_dir / "policy")
    names = [f"prosumer_{i}" for i in range(spec["sellers"])] if spec["sellers"] else env_fn().possible_agents
    return Assigned({a: p for a in names}, default=truth), spec


def cmd_evaluate(a) -> int:
    from agents.checkpoint import atomic_write_json
    from experiments.common import evaluate

    run = Path(a.run)
    spec = json.loads((run / "run.json").read_text())
    seed = a.seed if a.seed is not None else spec["seed"]
    f = _env_fn(spec["env"], spec["sellers"], seed)
    pol, _ = load_policy(run, f)
    ns = spec["sellers"]
    auction = spec["env"].get("name", "auction_v0") == "auction_v0"  # stage-game NashConv: auction_v0 only
    res = evaluate(f, pol, seed=seed, n_sellers=ns, episodes=a.episodes, nash_players=range(ns) if ns else None,
                   nash_conv=auction)
    atomic_write_json(run / "eval.json", dict(seed=seed, episodes=a.episodes, **res))
    for k, v in res.items():
        print(f"{k:>18} {v:.6g}")
    return 0


def cmd_experiment(a, extra: list[str]) -> int:
    import importlib

    if a.name not in EXPERIMENTS:
        raise SystemExit(f"experiment: unknown {a.name!r}; known {EXPERIMENTS}")
    mod = importlib.import_module(f"experiments.{a.name}")
    if a.name == "demo":
        mod.main()
        return 0
    argv = list(extra) + (["--quick"] if a.quick else []) + (["--out", a.out] if a.out else [])
    mod.main(argv)
    return 0


def cmd_bench(a) -> int:
    rc = 0
    if importlib.util.find_spec("benchmarks.run_all") is not None:
        rc = subprocess.call([sys.executable, "-m", "benchmarks.run_all"])
    else:
        print("benchmarks/run_all.py not present; nothing to run there")
    if a.adapters:
        from agents.vec_adapter import adapter_steps_per_s
        from p2penv import auction_v0

        for n in (1, 4):
            r = adapter_steps_per_s(lambda: auction_v0.parallel_env(n_prosumers=6, seed=0), n, a.steps)
            print(f"copies={n}: " + ", ".join(f"{k} {v:.0f} agent-steps/s" for k, v in r.items()))
    return rc


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="p2penv", description="p2penv: train, evaluate, experiments, benchmarks")
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train", help="train learners (PPO/SAC shared or independent, Q-learning)")
    t.add_argument("--config", help="JSON file: {env, algo, mode, sellers, seed, train}")
    t.add_argument("--env", choices=ENVS, help="environment (default auction_v0; also settable in --config env.name)")
    t.add_argument("--algo", choices=("ppo", "sac", "qlearning"))
    t.add_argument("--mode", choices=("shared", "independent"))
    t.add_argument("--steps", type=int, help="agent-steps (SB3) or steps per session (Q-learning)")
    t.add_argument("--seed", type=int)
    t.add_argument("--n-prosumers", type=int)
    t.add_argument("--mechanism")
    t.add_argument("--sellers", type=int, help="SellerBuyerMarket with this many learning sellers + 3 buyers")
    t.add_argument("--checkpoint-every", type=int)
    t.add_argument("--tensorboard", action="store_true")
    t.add_argument("--progress", action="store_true")
    t.add_argument("--resume", action="store_true", help="continue from the last checkpoint in --out")
    t.add_argument("--out", default="runs/train")
    e = sub.add_parser("evaluate", help="evaluate a trained run folder")
    e.add_argument("run")
    e.add_argument("--episodes", type=int, default=1)
    e.add_argument("--seed", type=int)
    x = sub.add_parser("experiment", help=f"run an experiment: {', '.join(EXPERIMENTS)}")
    x.add_argument("name")
    x.add_argument("--quick", action="store_true")
    x.add_argument("--out")
    b = sub.add_parser("bench", help="run benchmarks/run_all.py (and --adapters: VecEnv adapter speed)")
    b.add_argument("--adapters", action="store_true")
    b.add_argument("--steps", type=int, default=300)
    return ap


def main(argv=None) -> int:
    ap = build_parser()
    a, extra = ap.parse_known_args(argv)
    if extra and a.cmd != "experiment":
        ap.error(f"unrecognized arguments: {' '.join(extra)}")
    if a.cmd == "train":
        return cmd_train(a)
    if a.cmd == "evaluate":
        return cmd_evaluate(a)
    if a.cmd == "experiment":
        return cmd_experiment(a, extra)
    return cmd_bench(a)


if __name__ == "__main__":
    sys.exit(main())
