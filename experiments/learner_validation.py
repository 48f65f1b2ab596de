"""Learner validation: can a learner find the answer where the answer is known?

A learner that fails to reach an equilibrium in a game may have failed because of the game or because
of itself. This suite separates the two: every task has an answer computed *without* the learner, and
a learner is scored against it before it is compared with anything.

Families of tasks (``TASKS``; their cards and known answers in ``docs/learner_validation.md``):

* ``monopoly/<setting>``: one seller (N = 1) of ``SellerBuyerMarket`` facing truthful buyers, in the
  market-power study's four settings (elastic or inelastic demand, uniform price or pay-as-bid). No
  game: a single-agent pricing problem whose optimum is the exact stage best response
  (``p2penv.diagnostics.nash.best_response``) to the truthful buyers, the same every step.
* ``best_response/N<n>-<rivals>``: seller 0 of N = 3 or 10 sellers (elastic demand, uniform price)
  against rivals that play a fixed profile: truthful, competitive (the S1 benchmark's dispatch at
  marginal-cost asks) or stage-Nash (exact iterated best response). Optimum: the exact stage best
  response to that profile.
* ``battery/<prices>``: one storage agent facing a known price series with SOC back at its start at
  the end of the day; optimum: the competitive horizon LP (``p2penv.generators.arbitrage``).
* ``bayesian/<auction>``: first-price auctions with 2 and 3 buyers and the bilateral k = 1/2 double
  auction, values i.i.d. U[0, 1] each step; the known answer is the Bayes-Nash equilibrium
  (``p2penv.diagnostics.bayes_nash``): L2 distance of the bid function and relative utility loss.

Score of the first three families: the learned deterministic policy's profit over one evaluation
episode ($/episode) divided by the optimum. A run passes with score >= 0.95 (a, b, c) or L2 <= 0.02 and
utility loss <= 2 % (d).

Learners (``LEARNERS``): the vector PPO with parameter sharing, independent and MAPPO
(``p2penv.agents.vector_ppo``, the suite's defaults), SB3's PPO (``p2penv.agents.sb3_shared``),
RLlib's PPO and Calvano Q-learning, each on the tasks its action space and its trainer's
interface fit (``applies``); a row that does not apply is listed with the reason.

    python -m p2penv.experiments.learner_validation [--quick] [--docs] [--ray local]
"""
from __future__ import annotations

import argparse
import functools
import json
import time
from dataclasses import asdict, dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .checkpoints import CheckpointError, RowCheckpoint
from .dispatch import Task, run_tasks
from .output import echo
from .stats import summarise_cell
from .study_cli import check_known, check_seeds, configured, overrides, run_study, study_parser

DOCS = Path(__file__).resolve().parents[1] / "docs"
PASS_SCORE = 0.95  # profit / optimum (families monopoly, best_response, battery)
PASS_L2 = 0.02  # $/kWh, bid function vs BNE (bayesian)
PASS_UTILITY_LOSS = 0.02  # relative (bayesian)
# (mechanism, buyers, kW per buyer, buyers' values of lost load or None = inelastic): the market-power settings
SETTINGS = {
    "elastic-uniform": ("uniform", 6, 1.0, (0.10, 0.30)),
    "inelastic-uniform": ("uniform", 3, 2.0, None),
    "elastic-pay_as_bid": ("pay_as_bid", 6, 1.0, (0.10, 0.30)),
    "inelastic-pay_as_bid": ("pay_as_bid", 3, 2.0, None),
}
RIVALS = ("truthful", "competitive", "nash")
LEARNERS = ("ppo_shared", "ppo_independent", "mappo", "sb3_ppo", "rllib_ppo", "qlearning")
PPO_VARIANTS = {"ppo_shared": ("shared", "local"), "ppo_independent": ("independent", "local"),
                "mappo": ("shared", "central")}


# -- tasks ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ValidationTask:
    """One task with a known answer. ``budget``: learner agent-steps of a validated run."""

    name: str
    family: str  # "monopoly", "best_response", "battery" or "bayesian"
    description: str
    budget: int  # agent-steps (every learner's slot counts; the validated vector PPO's budget)
    num_envs: int = 32  # markets stepped together by the vector learners
    # which deterministic action represents a stochastic policy: its "mode" (pricing at a cliff: the mean
    # of a mixed ask falls off it) or its "mean" (a continuous bid function, as NPGA reads a Gaussian's mean)
    eval_point: str = "mode"
    # the vector PPO's settings that differ from its defaults on this task, as (name, value) pairs, each
    # chosen by measurement (docs/learner_validation.md says why); recorded in every row
    ppo_overrides: tuple[tuple[str, Any], ...] = ()
    # (learner, agent-steps) where a learner's validated budget differs from ``budget``, each said at the task
    learner_budgets: tuple[tuple[str, int], ...] = ()

    def budget_of(self, learner: str) -> int:
        """The agent-steps of ``learner``'s validated runs on this task."""
        return dict(self.learner_budgets).get(learner, self.budget)


def _market_tasks() -> list[ValidationTask]:
    out = [ValidationTask(f"monopoly/{s}", "monopoly", f"one seller, truthful buyers, {s}", 15_360)
           for s in SETTINGS]
    out += [ValidationTask(f"best_response/N{n}-{r}", "best_response",
                           f"seller 0 of {n} against {r} rivals, elastic-uniform", 15_360)
            for n in (3, 10) for r in RIVALS]
    return out


def _battery_tasks() -> list[ValidationTask]:
    # entropy weight 0.03 (default 0.01): with the hour one-hot, 0.01 left the wholesale battery at 0.90-0.95 on
    # 2 of 10 seeds (shared PPO), 0.03 lifted both to 0.97 (docs/learner_validation.md)
    return [ValidationTask(f"battery/{p}", "battery", f"one battery, {p} prices, SOC back at start", 393_216, 64,
                           ppo_overrides=(("ent_coef", 0.03),))
            for p in ("tou", "wholesale")]


def _bayesian_tasks() -> list[ValidationTask]:
    # independent PPO trains one network per buyer, each on its own buyer's samples: its budget is the task's
    # times the buyers, so that each of its networks sees as many samples as the one network of shared PPO
    # (at the task's budget it passed 9/10 and 8/10; docs/learner_validation.md)
    return [ValidationTask("bayesian/first_price2", "bayesian", "first-price auction, 2 buyers", 1_000_000, 256, "mean",
                           learner_budgets=(("ppo_independent", 2_000_000),)),
            # 8 epochs: independent PPO (three networks, a third of the samples each) passed 8/10 probes, 4/10 with 5
            ValidationTask("bayesian/first_price3", "bayesian", "first-price auction, 3 buyers", 2_000_000, 256, "mean",
                           (("epochs", 8),), learner_budgets=(("ppo_independent", 6_000_000),)),
            # a categorical head drifts to the game's step-function equilibria (bids on a few price levels;
            # measured L2 0.05-0.11 at 0.5-2M steps); a smooth squashed Gaussian, narrower at the start, does not.
            # 3 epochs: MAPPO 10/10 (5 epochs: 9/10), independent 7/10 (3/10), shared 5/10 either way; and 3 passes
            # an update, not 5
            ValidationTask("bayesian/k_double", "bayesian", "bilateral k = 1/2 double auction", 4_000_000, 256, "mean",
                           (("action_dist", "tanh"), ("log_std_init", -1.0), ("epochs", 3)))]


def all_tasks() -> dict[str, ValidationTask]:
    return {t.name: t for t in _market_tasks() + _battery_tasks() + _bayesian_tasks()}


TASKS = all_tasks()


class FixedProfile:
    """Fixed actions of the non-learners: ``act_vector(obs (E, N_all, F))`` tiles the joint action (the
    learners' columns are overwritten by the trainer); ``act_batch(obs (k, F))`` returns the actions of
    the k non-learners in the env's agent order (``p2penv.agents.vec_adapter.MarketVecEnv``'s contract)."""

    def __init__(self, joint: np.ndarray, learner_idx: np.ndarray):
        self.joint = np.asarray(joint, dtype=np.float32)
        self.rest = np.delete(self.joint, learner_idx, axis=0)

    def act_vector(self, obs: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self.joint, obs.shape[:2] + self.joint.shape[1:]).copy()

    def act_batch(self, obs: np.ndarray) -> np.ndarray:
        if len(obs) != len(self.rest):
            raise ValueError(f"FixedProfile: expected the observations of the {len(self.rest)} non-learners, "
                             f"got {len(obs)}")
        return self.rest.copy()


@dataclass(frozen=True)
class MarketSetup:
    """A monopoly or best-response task built: env factories, learners, fixed rivals and the optimum."""

    single_fn: Callable[[int], Any]  # seed -> parallel env
    vector_fn: Callable[[int, int], Any]  # (num_envs, seed) -> vector env
    learners: tuple[str, ...]
    others: Any  # fixed agent of the non-learners
    optimum: float  # $/episode of the learners (exact stage best response, every step)
    optimum_action: tuple[float, ...]  # normalised (price, dispatch) of the best response
    rival_profile: str


def _market_kwargs(setting: str) -> tuple[int, dict]:
    mech, nb, d, values = SETTINGS[setting]
    return nb, dict(mechanism=mech, rule="walrasian", demand_kw=d, buyer_values=values)


@lru_cache(maxsize=None)
def market_setup(task_name: str) -> MarketSetup:
    """Build a monopoly / best-response task (cached: the Nash profile is solved once)."""
    from p2penv.agents.baselines import TruthfulAgent, competitive_joint_action
    from p2penv.diagnostics.nash import best_response, iterated_best_response
    from p2penv.seller_buyer import seller_buyer_env_fn, seller_buyer_vector_fn

    family, _, rest = task_name.partition("/")
    if family == "monopoly":
        n, setting, rivals = 1, rest, "truthful"
    else:
        head, _, rivals = rest.partition("-")
        n, setting = int(head[1:]), "elastic-uniform"
    nb, kw = _market_kwargs(setting)
    single = lambda s: seller_buyer_env_fn(n, nb, seed=s, **kw)()  # noqa: E731
    env = single(0)
    obs, _ = env.reset(seed=0)
    truth = TruthfulAgent(env.config)
    ctx, rules = env.ctx, env.rules
    joint = np.stack([truth.act(obs[a]) for a in env.agents]).astype(np.float64)
    if rivals == "competitive":
        joint[:n] = competitive_joint_action(ctx, env.config)[0][:n]
    elif rivals == "nash":
        init, _ = competitive_joint_action(ctx, env.config)
        res = iterated_best_response(ctx, rules, init, players=range(n), max_iter=60, method="exact", tol=1e-9)
        joint[:n] = res.profile[:n]
    # the learner faces the profile as the trainers pass it (float32): the optimum is against that
    joint = joint.astype(np.float32).astype(np.float64)
    learner_idx = np.array([0])
    others = truth if rivals == "truthful" else FixedProfile(joint, learner_idx)
    act, r = best_response(0, joint, ctx, rules)
    return MarketSetup(single, seller_buyer_vector_fn(n, nb, **kw), ("prosumer_0",), others,
                       float(r) * env.config.max_cycles, tuple(float(x) for x in act[:2]), rivals)


def _others_actions(others: Any, obs: np.ndarray) -> np.ndarray:
    """``(E, N_all, A')`` fixed actions for every column (the learners' columns get overwritten)."""
    if hasattr(others, "act_vector"):
        return np.asarray(others.act_vector(obs), dtype=np.float32)
    e, n, f = obs.shape
    return np.asarray(others.act_batch(obs.reshape(e * n, f)), dtype=np.float32).reshape(e, n, -1)


def episode_profit(vector_fn: Callable[[int, int], Any], act_learners: Callable[[np.ndarray], np.ndarray],
                   learners: tuple[str, ...], others: Any, seed: int = 0, num_envs: int = 1) -> float:
    """Mean over ``num_envs`` markets of the learners' summed reward ($) over one episode, the learners
    acting with ``act_learners(obs (E, L, F)) -> (E, L, A)`` and everybody else with ``others``."""
    vec = vector_fn(num_envs, seed)
    obs, _ = vec.reset(seed=seed)
    idx = np.array([vec.possible_agents.index(a) for a in learners])
    total = np.zeros(num_envs)
    for _ in range(vec.max_cycles):
        a = np.zeros(obs.shape[:2] + vec.single_action_space.shape, np.float32)
        if others is not None:
            fixed = _others_actions(others, obs)
            a[..., :fixed.shape[-1]] = fixed[..., :a.shape[-1]]
        a[:, idx] = act_learners(obs[:, idx])
        obs, rew, *_ = vec.step(a)
        total += rew[:, idx].sum(1)
    return float(total.mean())


# -- learners ---------------------------------------------------------------------------------------
def ppo_defaults() -> dict:
    """The validated vector-PPO settings (the defaults of ``VectorPPOConfig``; see docs)."""
    from p2penv.agents.vector_ppo import VectorPPOConfig

    return asdict(VectorPPOConfig())


def applies(learner: str, task: ValidationTask) -> str | None:
    """None if ``learner`` runs on ``task``, else the reason it does not."""
    if learner in PPO_VARIANTS or learner == "sb3_ppo":
        return None
    if learner == "qlearning":
        if task.family == "monopoly" or task.name.endswith("-truthful"):
            return None
        return ("its rivals are truthful by construction" if task.family == "best_response"
                else "no storage action / no value-dependent state (price-grid learner)")
    if learner == "rllib_ppo":
        if task.family == "battery" or task.name == "bayesian/k_double":  # every agent learns (or is inert)
            return None
        return "trains every agent of the env (no fixed rivals, truthful buyers or BNE seller)"
    raise ValueError(f"learner: unknown {learner!r}; known {LEARNERS}")


def ppo_config(task: ValidationTask, learner: str, seed: int = 0, budget: int | None = None,
               learners: tuple[str, ...] | None = None, **overrides):
    """The ``VectorPPOConfig`` of a vector-PPO variant on a task: the defaults, the variant's mode and critic,
    the task's ``ppo_overrides``, then ``overrides``."""
    from p2penv.agents.vector_ppo import VectorPPOConfig

    mode, critic = PPO_VARIANTS[learner]
    opts = dict(total_steps=task.budget_of(learner) if budget is None else budget, num_envs=task.num_envs, seed=seed,
                torch_threads=1, mode=mode, critic=critic, learners=learners)
    opts.update(dict(task.ppo_overrides))
    opts.update(overrides)
    return VectorPPOConfig(**opts)


# fields of a VectorPPOConfig that set a run (its size, seed, output, threads) rather than how it learns
RUN_FIELDS = ("total_steps", "num_envs", "seed", "torch_threads", "checkpoint_every", "tensorboard", "progress",
              "learners", "eval_every")


def ppo_settings(cfg) -> dict:
    """How a vector-PPO config learns: its fields but ``RUN_FIELDS``, with ``precision`` resolved on this
    machine (``"auto"`` -> bf16 or fp32), as JSON values. Rows record it, so that ``is_current`` can tell
    rows of the current defaults from rows of older ones."""
    from p2penv.agents.precision import resolve_precision

    d = {k: v for k, v in asdict(cfg).items() if k not in RUN_FIELDS}
    d["precision"] = resolve_precision(d["precision"])
    return json.loads(json.dumps(d))


def expected_ppo_settings(task: ValidationTask, learner: str) -> dict:
    """``ppo_settings`` of a row trained now, with the current defaults, on this machine."""
    return ppo_settings(ppo_config(task, learner))


def train_vector(task: ValidationTask, learner: str, seed: int, budget: int, env: Any, evaluator=None, **overrides):
    """Train a vector-PPO variant on a built task; returns ``(act_learners, TrainResult)``. ``evaluator``:
    ``train_vector_ppo``'s learning-curve hook (with ``eval_every`` in ``overrides``)."""
    from p2penv.agents.vector_ppo import train_vector_ppo

    cfg = ppo_config(task, learner, seed, budget, env.learners, **overrides)
    r = train_vector_ppo(env.vector_fn, cfg, others=env.others, evaluator=evaluator)
    return functools.partial(r.policy.act, point=task.eval_point), r


@dataclass(frozen=True)
class BuiltTask:
    """What a learner needs of any task: env factories, who learns, who is fixed."""

    vector_fn: Callable[[int, int], Any]
    single_fn: Callable[[int], Any]
    learners: tuple[str, ...]
    others: Any
    scenario_id: str | None = None


def build(task: ValidationTask) -> BuiltTask:
    if task.family in ("monopoly", "best_response"):
        s = market_setup(task.name)
        return BuiltTask(s.vector_fn, s.single_fn, s.learners, s.others)
    if task.family == "battery":
        return _battery_build(task)
    return _bayesian_build(task)


def _battery_build(task: ValidationTask) -> BuiltTask:
    import p2penv

    sid = f"auction_v0/arbitrage_{task.name.split('/')[1]}-v0"
    spec = p2penv.get_spec(sid)
    learners = tuple(spec.learners or ("prosumer_0",))
    return BuiltTask(lambda e, s: p2penv.make_vector(sid, e, seed=s), lambda s: p2penv.make(sid, seed=s), learners,
                     _idle_others(), sid)


def _bayesian_build(task: ValidationTask) -> BuiltTask:
    import p2penv

    sid = _bayesian_scenario(task.name)
    spec = p2penv.get_spec(sid)
    env = p2penv.make(sid)
    learners = tuple(spec.learners or env.possible_agents)
    others = None
    if len(learners) < len(env.possible_agents):  # the first-price seller: asks its cost 0, offers its unit
        from p2penv.diagnostics.bayes_nash import BnePolicy

        others = BnePolicy(env.config)
    return BuiltTask(lambda e, s: p2penv.make_vector(sid, e, seed=s), lambda s: p2penv.make(sid, seed=s), learners,
                     others, sid)


def _bayesian_scenario(name: str) -> str:
    return {"bayesian/first_price2": "auction_v0/first_price2-v0", "bayesian/first_price3": "auction_v0/first_price3-v0",
            "bayesian/k_double": "auction_v0/k_double_bilateral-v0"}[name]


class _Idle:
    """Non-learners that do nothing a learner could exploit: every component 0 (the scenarios' inert or
    non-strategic agents; their actions do not matter)."""

    def act_vector(self, obs):
        return np.zeros(obs.shape[:2] + (3,), np.float32)

    def act_batch(self, obs):
        return np.zeros((len(obs), 3), np.float32)


def _idle_others():
    return _Idle()


# -- scoring ----------------------------------------------------------------------------------------
def score(task: ValidationTask, built: BuiltTask, act_learners: Callable[[np.ndarray], np.ndarray]) -> dict:
    """The task's metrics of a deterministic learned policy (``act_learners(obs (E, L, F)) -> (E, L, A)``)."""
    if task.family in ("monopoly", "best_response"):
        s = market_setup(task.name)
        p = episode_profit(built.vector_fn, act_learners, built.learners, built.others)
        return dict(profit=p, optimum=s.optimum, score=p / s.optimum, passed=bool(p / s.optimum >= PASS_SCORE))
    if task.family == "battery":
        from p2penv.diagnostics.arbitrage import arbitrage_optimum

        opt = arbitrage_optimum(built.scenario_id).profit
        p = episode_profit(built.vector_fn, act_learners, built.learners, built.others)
        return dict(profit=p, optimum=opt, score=p / opt, passed=bool(p / opt >= PASS_SCORE))
    from p2penv.diagnostics.bayes_exploitability import exploitability
    from p2penv.diagnostics.bayes_nash import bid_functions, bne_metrics

    bf = bid_functions(built.scenario_id, act_learners, agents=built.learners)
    ms = bne_metrics(bf)
    eps = max(e.eps for e in exploitability(bf))  # is the learned profile an equilibrium (of any kind)?
    l2 = max(m.l2 for m in ms)
    loss = max(m.utility_loss for m in ms)
    return dict(l2=l2, utility_loss=loss, exploitability=eps, l2_mean=float(np.mean([m.l2 for m in ms])),
                utility_loss_mean=float(np.mean([m.utility_loss for m in ms])),
                per_agent={m.agent: dict(role=m.role, l2=m.l2, utility_loss=m.utility_loss) for m in ms},
                passed=bool(l2 <= PASS_L2 and loss <= PASS_UTILITY_LOSS))


# -- one run ----------------------------------------------------------------------------------------
def _learning_curve_evaluator(task: ValidationTask, built: BuiltTask, t0: float) -> Callable:
    def evaluate(policy) -> dict:
        m = score(task, built, functools.partial(policy.act, point=task.eval_point))
        return dict(wall_s=time.perf_counter() - t0, passed=float(m["passed"]),
                    **{k: float(m[k]) for k in ("score", "l2", "utility_loss") if k in m})
    return evaluate


def run_learner(task: ValidationTask, learner: str, seed: int, budget: int | None = None,
                curve_points: int = 10) -> dict:
    """Train ``learner`` on ``task`` once (seed ``seed``, ``budget`` agent-steps, default ``task.budget_of``) and
    score it; the row carries the learning curve (vector PPO: ``curve_points`` evaluations) and the
    wall seconds to the first passing evaluation (``time_to_solve_s``, NaN if never)."""
    budget = task.budget_of(learner) if budget is None else budget
    why = applies(learner, task)
    base = dict(task=task.name, family=task.family, learner=learner, seed=seed, budget=budget,
                eval_point=task.eval_point)
    if learner in PPO_VARIANTS and task.ppo_overrides:
        base["ppo_overrides"] = dict(task.ppo_overrides)
    if why is not None:
        return dict(base, applicable=False, reason=why)
    built = build(task)
    t0 = time.perf_counter()
    curve: list[dict] = []
    if learner in PPO_VARIANTS:
        per_update = 24 * task.num_envs * len(built.learners)
        every = max(1, -(-budget // per_update) // curve_points) if curve_points else 0
        act, r = train_vector(task, learner, seed, budget, built,
                              evaluator=_learning_curve_evaluator(task, built, t0) if curve_points else None,
                              eval_every=every)
        curve = r.curve if curve_points else []
        base["hour_onehot"] = r.policy.model.hour_cols is not None
        base["ppo_settings"] = ppo_settings(r.policy.config)
    elif learner == "sb3_ppo":
        if task.family in SB3_VECTOR_SETTINGS:
            base["sb3_settings"] = dict(SB3_VECTOR_SETTINGS[task.family])
        act = _train_sb3(task, built, seed, budget)
    elif learner == "qlearning":
        act = None
        q = _train_q(task, built, seed, budget)
    else:
        act = _train_rllib(task, built, seed, budget)
    wall = time.perf_counter() - t0
    m = _score_q(task, built, q) if learner == "qlearning" else score(task, built, act)
    solved = [c for c in curve if c.get("passed")]
    return dict(base, applicable=True, wall_s=wall, time_to_solve_s=solved[0]["wall_s"] if solved else float("nan"),
                steps_to_solve=solved[0]["agent_steps"] if solved else float("nan"),
                **{k: v for k, v in m.items() if k != "per_agent"}, curve=curve)


# SB3 PPO on the battery and Bayesian tasks: the same shared policy, but through the batched vector env
# (p2penv.agents.sb3_vector), since the single-env adapter runs ~1-2k agent-steps/s and these budgets are
# 0.4-4M agent-steps. Markets per batch, rollout per slot, minibatch: the vector PPO's task settings where
# they map (64 / 256 markets), 5 epochs as on the pricing tasks; learning rate not SB3's 3e-4 but, by probes
# (seed 0; docs/results/learner_validation_probes.json), 1e-3 on the batteries (battery/tou: 3e-4 scored -0.13,
# 1e-3 and 3e-3 1.00; wholesale 0.66 and 0.59) and 3e-3 on the auctions (first_price2 at 1M: L2 0.087, 0.024
# and 0.016 at 3e-4, 1e-3 and 3e-3)
SB3_VECTOR_SETTINGS = {"battery": dict(num_envs=64, n_steps=24, batch_size=384, learning_rate=1e-3),
                       "bayesian": dict(num_envs=256, n_steps=8, batch_size=1024, learning_rate=3e-3)}


def _train_sb3(task: ValidationTask, built: BuiltTask, seed: int, budget: int):
    if task.family in SB3_VECTOR_SETTINGS:
        return _train_sb3_vector(task, built, seed, budget)
    from p2penv.agents.sb3_shared import SB3Config, train_shared

    cfg = SB3Config(total_steps=budget, seed=seed, gamma=0.0 if task.family in ("monopoly", "best_response",
                                                                               "bayesian") else 0.99,
                    market_log=False, torch_threads=1, n_steps=96 if task.family != "bayesian" else 64)
    r = train_shared(lambda: built.single_fn(seed), cfg, learners=built.learners, others=built.others)
    pol = r.policy

    def act(obs):
        e, n, f = obs.shape
        return np.asarray(pol.act_batch(obs.reshape(e * n, f)), np.float32).reshape(e, n, -1)
    return act


def _train_sb3_vector(task: ValidationTask, built: BuiltTask, seed: int, budget: int, **overrides):
    """SB3 PPO through ``SB3VectorEnv``; ``overrides``: ``SB3Config`` fields or ``num_envs`` (probes)."""
    from p2penv.agents.sb3_shared import SB3Config, make_model
    from p2penv.agents.torch_threads import set_torch_threads
    from p2penv.agents.sb3_vector import SB3VectorEnv

    opts = dict(SB3_VECTOR_SETTINGS[task.family], **overrides)
    num_envs = opts.pop("num_envs")
    cfg = SB3Config(**dict(dict(total_steps=budget, seed=seed, gamma=0.99 if task.family == "battery" else 0.0,
                                market_log=False, torch_threads=1), **opts))
    set_torch_threads(cfg.torch_threads)
    venv = SB3VectorEnv(built.vector_fn(num_envs, seed), learners=built.learners, others=built.others,
                        bootstrap_truncated=cfg.gamma > 0)  # gamma 0: SB3's bootstrap of a truncation is 0 x V
    venv.seed(seed)
    model = make_model(cfg, venv)
    model.learn(budget)
    venv.close()

    def act(obs):
        e, n, f = obs.shape
        a, _ = model.predict(obs.reshape(e * n, f), deterministic=True)
        return np.clip(a, -1.0, 1.0).astype(np.float32).reshape(e, n, -1)
    return act


def _train_q(task: ValidationTask, built: BuiltTask, seed: int, budget: int):
    from p2penv.agents.qlearning import QConfig, QLearners

    steps = budget // len(built.learners)
    cfg = QConfig(total_steps=steps, n_sessions=1, seed=seed, beta=4.6 / steps, gamma=0.0, n_prices=41,
                  kernel="table")
    try:  # the tabulated stage game where the market allows it (same rewards, much faster)
        q = QLearners(lambda: built.single_fn(seed), cfg, learners=built.learners)
    except ValueError:  # rewards depend on the last price or dispatch: clear the market every step
        q = QLearners(lambda: built.single_fn(seed), replace(cfg, kernel="market"), learners=built.learners)
    q.train()
    return q


def _score_q(task: ValidationTask, built: BuiltTask, q) -> dict:
    from p2penv.agents.rollout import rollout

    env = built.single_fn(0)
    tr = rollout(env, q.policy(0), seed=0)[0]
    idx = [list(tr.agents).index(a) for a in built.learners]
    p = float(tr.rewards[:, idx].sum())
    opt = market_setup(task.name).optimum
    return dict(profit=p, optimum=opt, score=p / opt, passed=bool(p / opt >= PASS_SCORE))


def _train_rllib(task: ValidationTask, built: BuiltTask, seed: int, budget: int):
    import tempfile

    from p2penv.agents.rllib_ppo import RLlibPolicy, RLlibPPOConfig, iterations_for, train_rllib_ppo

    cfg = RLlibPPOConfig(seed=seed, train_batch_size=4000, minibatch_size=500, num_epochs=10,
                         gamma=0.0 if task.family == "bayesian" else 0.99, lr=1e-3)
    cfg = replace(cfg, iterations=iterations_for(budget, cfg.train_batch_size))
    with tempfile.TemporaryDirectory(prefix="p2penv-rllib-") as out:  # the policy is loaded, then the folder goes
        train_rllib_ppo(built.scenario_id, {"seed": seed}, cfg, out_dir=out)
        pol = RLlibPolicy.load(out)
    names = list(built.learners)

    def act(obs):
        rows = [pol(None, {a: obs[e, i] for i, a in enumerate(names)}) for e in range(obs.shape[0])]
        return np.stack([np.stack([r[a] for a in names]) for r in rows]).astype(np.float32)
    return act


# -- the study --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ValidationConfig:
    """Which tasks x learners x seeds; ``budgets`` overrides a task's budget (agent-steps) by name."""

    tasks: tuple[str, ...] = tuple(TASKS)
    learners: tuple[str, ...] = LEARNERS
    seeds: tuple[int, ...] = tuple(range(10))
    budgets: tuple[tuple[str, int], ...] = ()
    curve_points: int = 10

    def __post_init__(self):
        check_known("tasks", self.tasks, TASKS)
        check_known("learners", self.learners, LEARNERS)
        check_seeds(self.seeds)

    def budget(self, task: str, learner: str) -> int:
        return dict(self.budgets).get(task, TASKS[task].budget_of(learner))


QUICK = ValidationConfig(tasks=("monopoly/elastic-uniform", "best_response/N3-truthful"), learners=("ppo_shared",),
                         seeds=(0,), curve_points=2)


def validation_row(cfg: ValidationConfig, task: str, learner: str, seed: int) -> list[dict]:
    return [run_learner(TASKS[task], learner, seed, cfg.budget(task, learner), cfg.curve_points)]


def summarise_runs(rows: list[dict]) -> list[dict]:
    """Per (task, learner): seeds run, passes, and the median and IQM with its 95 % bootstrap interval
    (``experiments.stats.summarise_cell``) of the task's main metric (score; bayesian: l2 and utility
    loss). NaN never dropped silently:
    ``n_finite`` counts the seeds that produced a number."""
    out = []
    order = {t: i for i, t in enumerate(TASKS)}
    keys = sorted({(r["task"], r["learner"]) for r in rows}, key=lambda k: (order[k[0]], LEARNERS.index(k[1])))
    for task, learner in keys:
        rs = [r for r in rows if r["task"] == task and r["learner"] == learner]
        if not rs[0].get("applicable", True):
            out.append(dict(task=task, learner=learner, applicable=False, reason=rs[0]["reason"]))
            continue
        s = dict(task=task, learner=learner, applicable=True, seeds=len(rs), passed=sum(bool(r["passed"]) for r in rs),
                 budget=rs[0]["budget"], wall_s_median=float(np.median([r["wall_s"] for r in rs])))
        tts = [r["time_to_solve_s"] for r in rs if r.get("time_to_solve_s") == r.get("time_to_solve_s")]
        s["time_to_solve_s_median"] = float(np.median(tts)) if tts else float("nan")
        metrics = ("l2", "utility_loss") if TASKS[task].family == "bayesian" else ("score",)
        if TASKS[task].family == "bayesian" and all("exploitability" in r for r in rs):
            metrics += ("exploitability",)
        for metric in metrics:
            c = summarise_cell([r[metric] for r in rs])  # NaN counted, never dropped; IQM with bootstrap CI
            s[f"{metric}_n_finite"] = c.n_finite
            s[f"{metric}_median"] = c.median
            fin = [r[metric] for r in rs if np.isfinite(r[metric])]
            s[f"{metric}_min"] = float(min(fin)) if fin else float("nan")
            s[f"{metric}_max"] = float(max(fin)) if fin else float("nan")
            s[f"{metric}_iqm"], s[f"{metric}_iqm_ci"] = c.iqm.point, [c.iqm.lo, c.iqm.hi]
        out.append(s)
    return out


def run(cfg: ValidationConfig, out_dir: str | Path | None = None, resume: bool = False, ray=None,
        docs: bool = False) -> dict:
    """Every (task, learner, seed) row as a task (``ray``: None, "local" or an address); rows are
    checkpointed in ``out_dir`` and ``resume`` reuses them. ``docs``: write docs/results/learner_validation.json."""
    t0 = time.perf_counter()
    cells = [(t, lr, s) for t in cfg.tasks for lr in cfg.learners for s in cfg.seeds]
    ck = RowCheckpoint(out_dir, "learner_validation", asdict(cfg), resume, total=len(cells),
                       sweep=("tasks", "learners", "seeds", "budgets"))
    run_tasks([Task(validation_row, (cfg, t, lr, s), (dict(task=t, learner=lr, seed=s),), f"{t} {lr} seed={s}")
               for t, lr, s in cells], ck, ray)
    rows = [ck.find(task=t, learner=lr, seed=s) for t, lr, s in cells]
    return report(rows, dict(config=asdict(cfg), wall_s=time.perf_counter() - t0), docs)


def merge(dirs: list[str | Path], docs: bool = False, replacing: list[str | Path] = ()) -> dict:
    """One result from the row checkpoints of several runs (e.g. runs of different learners side by
    side); a (task, learner, seed) cell found twice must hold the same row. Vector-PPO rows trained under
    an older definition of their task (another budget or other PPO overrides than ``TASKS`` holds now) are
    left out and counted in ``meta["superseded"]`` (``is_current``). The rows of ``replacing`` (runs of
    the same settings after a change of the code's rounding) replace the cells they hold, counted in
    ``meta["replaced"]``."""
    rows: dict[tuple, dict] = {}
    superseded: dict[str, int] = {}
    replaced: dict[str, int] = {}

    def saved_rows(d):
        return json.loads((Path(d) / "learner_validation_checkpoint.json").read_text())["rows"]

    newer = {(r["task"], r["learner"], r["seed"]) for d in replacing for r in saved_rows(d)}
    for d in [*dirs, *replacing]:
        for r in saved_rows(d):
            if not is_current(r):
                superseded[r["task"]] = superseded.get(r["task"], 0) + 1
                continue
            key = (r["task"], r["learner"], r["seed"])
            if key in newer and d not in replacing:
                replaced[r["task"]] = replaced.get(r["task"], 0) + 1
                continue
            if key in rows:
                if _results_of(rows[key]) != _results_of(r):  # same seed, same code: the same numbers
                    raise CheckpointError(f"merge: cell {key} differs between checkpoints")
                continue
            rows[key] = r
    order = {t: i for i, t in enumerate(TASKS)}
    ordered = sorted(rows.values(), key=lambda r: (order[r["task"]], LEARNERS.index(r["learner"]), r["seed"]))
    return report(ordered, dict(merged_from=[str(d) for d in dirs], superseded=superseded,
                                replaced_by=[str(d) for d in replacing], replaced=replaced), docs)


def is_current(row: dict) -> bool:
    """Whether a row was trained under its task's current definition. The vector-PPO variants are the
    validated learner, so their rows must match the task's budget and ``ppo_overrides``, and the settings
    the current defaults give (``ppo_settings``: rows from before it was recorded lack it); other learners'
    rows keep the budget they were run with (shown per cell in the table)."""
    if row["learner"] not in PPO_VARIANTS:
        return True
    task = TASKS[row["task"]]
    return (row["budget"] == task.budget_of(row["learner"]) and row.get("ppo_overrides", {}) == dict(task.ppo_overrides)
            and row.get("hour_onehot", False) == hour_onehot_expected(task)
            and _settings_with_new_fields(row.get("ppo_settings")) == expected_ppo_settings(task, row["learner"]))


def _settings_with_new_fields(settings: dict | None) -> dict | None:
    """A row's ``ppo_settings`` with the config fields added since it was written at their defaults (a field is
    added with a default that keeps the old behaviour, e.g. ``compile=False``)."""
    if settings is None:
        return None
    from p2penv.agents.vector_ppo import VectorPPOConfig

    return {**ppo_settings(VectorPPOConfig()), **settings}


def hour_onehot_expected(task: ValidationTask) -> bool:
    """Whether the vector PPO's defaults give this task's policy the hour one-hot, resolved as the trainer
    resolves ``hour_onehot=None`` (on where the learners' steps are linked: of these tasks, the batteries).
    Rows from before that default lack it and are superseded."""
    if dict(task.ppo_overrides).get("hour_onehot") is not None:
        return bool(dict(task.ppo_overrides)["hour_onehot"])
    return _steps_linked_with_hour(task.name)


@functools.lru_cache(maxsize=None)
def _steps_linked_with_hour(name: str) -> bool:
    from p2penv.agents.vector_ppo import hour_columns, steps_linked

    built = build(TASKS[name])
    vec = built.vector_fn(1, 0)
    vec.reset(seed=0)
    idx = np.array([list(vec.possible_agents).index(a) for a in built.learners])
    return bool(steps_linked(vec, idx) and hour_columns(vec) is not None)


def _results_of(row: dict) -> dict:
    """A row without its timings (wall seconds differ between runs of the same cell)."""
    out = {k: v for k, v in row.items() if k not in ("wall_s", "time_to_solve_s", "curve")}
    out["curve"] = [{k: v for k, v in c.items() if k != "wall_s"} for c in row.get("curve", [])]
    return out


def report(rows: list[dict], meta: dict, docs: bool = False) -> dict:
    """Summary table, echo and (``docs``) docs/results/learner_validation.json of a set of rows."""
    summary = summarise_runs(rows)
    meta = dict(meta, ppo_defaults=ppo_defaults(),
                thresholds=dict(score=PASS_SCORE, l2=PASS_L2, utility_loss=PASS_UTILITY_LOSS),
                tasks={t: asdict(TASKS[t]) for t in dict.fromkeys(r["task"] for r in rows)})
    for s in summary:
        if s.get("applicable"):
            m = "l2" if TASKS[s["task"]].family == "bayesian" else "score"
            echo(f"{s['task']:34s} {s['learner']:16s} passed {s['passed']}/{s['seeds']}  {m} median "
                 f"{s[m + '_median']:.4f} [{s[m + '_min']:.4f}, {s[m + '_max']:.4f}]")
    result = dict(meta=meta, summary=summary, rows=rows)
    if docs:
        (DOCS / "results").mkdir(exist_ok=True)
        (DOCS / "results" / "learner_validation.json").write_text(json.dumps(result, indent=1, default=float) + "\n")
    return result


def main(argv=None, prog: str | None = None) -> dict:
    ap = study_parser(__doc__, prog, "results/learner_validation", quick="one seed of two tasks (smoke run, ~20 s)",
                      docs="write docs/results/learner_validation.json",
                      formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--tasks", nargs="*", choices=tuple(TASKS), metavar="TASK", help=f"default all: {', '.join(TASKS)}")
    ap.add_argument("--learners", nargs="*", choices=LEARNERS)
    ap.add_argument("--seeds", type=int, nargs="*")
    ap.add_argument("--budget", type=int, help="agent-steps of every selected task (default: each task's own)")
    ap.add_argument("--replacing", nargs="+", metavar="DIR", help="with --merge: folders whose rows replace the "
                    "same (task, learner, seed) cells of the others (a re-run after the code's rounding changed)")
    ap.add_argument("--merge", nargs="+", metavar="DIR", help="only merge the row checkpoints of these --out "
                    "folders into one result (with --docs: the docs JSON)")
    a = ap.parse_args(argv)
    if a.merge:
        return merge(a.merge, a.docs, a.replacing or ())
    cfg = configured(ap, QUICK if a.quick else ValidationConfig(), **overrides(a, "tasks", "learners", "seeds"))
    if a.budget:
        cfg = replace(cfg, budgets=tuple((t, a.budget) for t in cfg.tasks))
    return run_study(ap, run, cfg, a.out, resume=a.resume, docs=a.docs, ray=a.ray)


if __name__ == "__main__":
    main()
