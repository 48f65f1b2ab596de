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
  the end of the day; optimum: the competitive horizon LP (``p2penv.scenarios.arbitrage``).
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
import json
import time
from dataclasses import asdict, dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .checkpoints import CheckpointError, RowCheckpoint
from .dispatch import Task, add_ray_option, run_tasks
from .output import echo

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


def _market_tasks() -> list[ValidationTask]:
    out = [ValidationTask(f"monopoly/{s}", "monopoly", f"one seller, truthful buyers, {s}", 15_360)
           for s in SETTINGS]
    out += [ValidationTask(f"best_response/N{n}-{r}", "best_response",
                           f"seller 0 of {n} against {r} rivals, elastic-uniform", 15_360)
            for n in (3, 10) for r in RIVALS]
    return out


def _battery_tasks() -> list[ValidationTask]:
    return [ValidationTask(f"battery/{p}", "battery", f"one battery, {p} prices, SOC back at start", 737_280, 64)
            for p in ("tou", "wholesale")]


def _bayesian_tasks() -> list[ValidationTask]:
    return [ValidationTask("bayesian/first_price2", "bayesian", "first-price auction, 2 buyers", 500_000, 256),
            ValidationTask("bayesian/first_price3", "bayesian", "first-price auction, 3 buyers", 500_000, 256),
            ValidationTask("bayesian/k_double", "bayesian", "bilateral k = 1/2 double auction", 500_000, 256)]


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
    from p2penv.scenarios.sellers_buyers import seller_buyer_env_fn, seller_buyer_vector_fn

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
        if task.family in ("bayesian", "battery"):
            return None
        return "trains every agent of the env (no fixed rivals or truthful buyers)"
    raise ValueError(f"learner: unknown {learner!r}; known {LEARNERS}")


def train_vector(task: ValidationTask, learner: str, seed: int, budget: int, env: Any, **overrides):
    """Train a vector-PPO variant on a built task; returns ``(act_learners, TrainResult)``."""
    from p2penv.agents.vector_ppo import VectorPPOConfig, train_vector_ppo

    mode, critic = PPO_VARIANTS[learner]
    opts = dict(total_steps=budget, num_envs=task.num_envs, seed=seed, torch_threads=1, mode=mode, critic=critic,
                learners=env.learners)
    opts.update(overrides)
    r = train_vector_ppo(env.vector_fn, VectorPPOConfig(**opts), others=env.others)
    return r.policy.act, r


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
    others = None if len(learners) == len(env.possible_agents) else _idle_others()
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
        from p2penv.scenarios.arbitrage import arbitrage_optimum

        opt = arbitrage_optimum(built.scenario_id).profit
        p = episode_profit(built.vector_fn, act_learners, built.learners, built.others)
        return dict(profit=p, optimum=opt, score=p / opt, passed=bool(p / opt >= PASS_SCORE))
    from p2penv.diagnostics import bayes_nash

    m = bayes_nash.policy_metrics(built.scenario_id, act_learners)
    return dict(m, passed=bool(m["l2"] <= PASS_L2 and m["utility_loss"] <= PASS_UTILITY_LOSS))
