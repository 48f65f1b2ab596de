"""Hyper-parameter search of the vector PPO over the learner-validation tasks (optuna, TPE sampler).

Each trial trains ``ppo_shared`` once (seed = trial number) on every task of ``SEARCH_TASKS`` at a
reduced budget (so that settings differ in how far they get) and is scored by the mean task quality:
the profit score (learned / optimal profit, capped at 1) on the pricing and battery tasks, and
``1 - L2 - utility loss`` on the Bayesian auctions. The defaults of ``VectorPPOConfig`` were chosen
from this search and then validated at full budget with 10 seeds (``learner_validation``); the trials
are in ``docs/results/ppo_search_<space>.json`` (stage 1 "wide", stage 2 "narrow").

    python -m p2penv.experiments.tune_ppo [--trials 16] [--space wide|narrow] [--docs]   (needs: pip install 'p2penv[tune]')
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from .learner_validation import TASKS, build, score, train_vector
from .output import echo

DOCS = Path(__file__).resolve().parents[1] / "docs"
# (task, budget agent-steps): half the validated budgets or less
SEARCH_TASKS = (("monopoly/elastic-uniform", 7_680), ("monopoly/inelastic-uniform", 7_680),
                ("best_response/N10-competitive", 7_680), ("bayesian/first_price2", 100_000))


def quality(task: str, m: dict) -> float:
    if TASKS[task].family == "bayesian":
        return 1.0 - m["l2"] - m["utility_loss"]
    return min(m["score"], 1.0)


def suggest_wide(trial) -> dict:
    """Stage 1: the whole space."""
    return dict(learning_rate=trial.suggest_float("learning_rate", 2e-4, 3e-3, log=True),
                epochs=trial.suggest_int("epochs", 2, 12),
                action_bins=trial.suggest_categorical("action_bins", [21, 41, 61]),
                ent_coef=trial.suggest_categorical("ent_coef", [0.0, 0.001, 0.01]),
                lr_schedule=trial.suggest_categorical("lr_schedule", ["constant", "linear"]),
                eval_point=trial.suggest_categorical("eval_point", ["mode", "mean"]),
                net_arch=(trial.suggest_categorical("width", [64, 128]),) * 2)


def suggest_narrow(trial) -> dict:
    """Stage 2: around stage 1's best trials (128-wide nets, 4-8 epochs, lr 8e-4..3e-3, some entropy),
    with the battery task added to the tasks (``SEARCH_TASKS + NARROW_EXTRA``)."""
    return dict(learning_rate=trial.suggest_float("learning_rate", 8e-4, 3e-3, log=True),
                epochs=trial.suggest_int("epochs", 4, 8),
                action_bins=trial.suggest_categorical("action_bins", [41, 61]),
                ent_coef=trial.suggest_categorical("ent_coef", [0.001, 0.003, 0.01]),
                lr_schedule=trial.suggest_categorical("lr_schedule", ["constant", "linear"]),
                eval_point=trial.suggest_categorical("eval_point", ["mode", "mean"]),
                net_arch=(128, 128))


SPACES = {"wide": (suggest_wide, ()), "narrow": (suggest_narrow, (("battery/tou", 98_304),))}


def objective(trial, space: str = "wide", tasks=None) -> float:
    suggest, extra = SPACES[space]
    params = suggest(trial)
    out = []
    for name, budget in (SEARCH_TASKS + extra if tasks is None else tasks):
        task = TASKS[name]
        built = build(task)
        t0 = time.perf_counter()
        eval_point = params["eval_point"]
        act, r = train_vector(task, "ppo_shared", trial.number, budget, built,
                              **{k: v for k, v in params.items() if k != "eval_point"}, eval_point=eval_point)
        m = score(task, built, act)
        q = quality(name, m)
        trial.set_user_attr(name, dict(quality=q, wall_s=time.perf_counter() - t0))
        out.append(q)
    return sum(out) / len(out)


def run(trials: int, seed: int = 0, docs: bool = False, space: str = "wide", tasks=None) -> dict:
    """``trials`` TPE trials; ``tasks``: ((task, budget), ...) instead of the space's (smoke runs)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    t0 = time.perf_counter()
    study.optimize(lambda t: objective(t, space, tasks), n_trials=trials)
    rows = [dict(number=t.number, value=t.value, params=t.params, tasks=t.user_attrs) for t in study.trials]
    result = dict(meta=dict(trials=trials, sampler="TPE", seed=seed, space=space,
                            search_tasks=[list(x) for x in (SEARCH_TASKS + SPACES[space][1] if tasks is None else tasks)],
                            wall_s=time.perf_counter() - t0, optuna=optuna.__version__),
                  best=dict(value=study.best_value, params=study.best_params), trials=rows)
    echo(f"tune_ppo: best {study.best_value:.4f} with {study.best_params}")
    if docs:
        (DOCS / "results").mkdir(exist_ok=True)
        (DOCS / "results" / f"ppo_search_{space}.json").write_text(json.dumps(result, indent=1, default=float) + "\n")
    return result


def main(argv=None, prog: str | None = None) -> dict:
    ap = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--trials", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0, help="sampler seed")
    ap.add_argument("--space", choices=tuple(SPACES), default="wide", help="stage 1 (wide) or 2 (narrow)")
    ap.add_argument("--docs", action="store_true", help="write docs/results/ppo_search_<space>.json")
    a = ap.parse_args(argv)
    return run(a.trials, a.seed, a.docs, a.space)


if __name__ == "__main__":
    main()
