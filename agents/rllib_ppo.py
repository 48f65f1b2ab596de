"""Multi-agent PPO with RLlib (new API stack) on ``auction_v0``, ``dlmp_v0`` and registered scenarios.

Needs the ``rllib`` extra (``pip install -e ".[rllib]"``: ray[rllib] and torch; ray[rllib] 2.60 pins
gymnasium 1.2)::

    from p2penv.agents.rllib_ppo import RLlibPPOConfig, RLlibPolicy, train_rllib_ppo
    from p2penv.agents.rollout import rollout

    cfg = RLlibPPOConfig(iterations=5, policies="shared", seed=0)
    res = train_rllib_ppo("auction_v0", dict(n_prosumers=3), cfg, out_dir="runs/rllib")
    print(res.agent_steps, res.episode_return_mean, res.checkpoint)
    policy = RLlibPolicy.load("runs/rllib")               # a joint policy: policy(env, obs) -> actions
    rollout(p2penv.auction_v0.parallel_env(n_prosumers=3), policy, seed=0)

``env_name`` is ``"auction_v0"`` / ``"dlmp_v0"`` (``env_kwargs`` are the env's config options) or a
scenario id of ``p2penv.list_scenarios()`` (``env_kwargs`` override the scenario's options). The env is
wrapped in RLlib's ``ParallelPettingZooEnv`` and registered with ``ray.tune.registry.register_env``
under ``p2penv:<env_name>``.

Policies:

* ``"shared"``: one RLModule (policy id ``"shared"``) acts for every agent (parameter sharing); its
  batch holds every agent's experience; agents tell themselves apart by their observation.
* ``"independent"``: one RLModule per agent, with the agent's name as policy id; each learns from its
  own experience only.

Every agent learns (there are no fixed, non-learning agents here). Actions are the envs' normalised
Box [-1, 1] (price and dispatch, plus the battery component in storage scenarios; see
``docs/spec.md``): RLlib's Gaussian actions are clipped to it by the env runner (``normalize_actions``
leaves a [-1, 1] box unchanged), and ``RLlibPolicy`` plays the Gaussian mean, clipped. Rewards, and so
the episode returns reported here, are profits in $.

Step counts are agent-steps (one agent, one market interval), like the rest of ``p2penv.agents``:
each iteration samples ``train_batch_size`` agent-steps (RLlib ``count_steps_by="agent_steps"``;
exact when it is a multiple of the number of agents times the env copies per env runner, since
those step all their agents together) and then runs ``num_epochs`` passes of minibatch SGD over them.
Each env runner steps ``num_envs_per_env_runner`` copies of the env (a gymnasium-style vector env,
copy ``i`` first reset with seed ``seed + i``) with one batched forward pass; by default
(``auto_num_envs``) up to 64 copies, as many as a batch holds whole episodes. Ray is started with
``ray.init(num_cpus=..., include_dashboard=False, ignore_reinit_error=True, log_to_driver=False)``
only when it is not running, and is left running for later calls (``ray.shutdown()`` stops it).
A run is deterministic given ``seed`` (env seed, RLlib seed and torch initialisation) with
``num_env_runners=0`` (sampling in this process).
"""
from __future__ import annotations

import importlib
import math
import shutil
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from .checkpoint import atomic_write_json, read_json
from .config import check_choice

ENVS = ("auction_v0", "dlmp_v0")
POLICIES = ("shared", "independent")
SHARED_POLICY_ID = "shared"
CHECKPOINT_DIR = "checkpoint"  # RLlib's Algorithm checkpoint inside out_dir
META_FILE = "rllib.json"  # env, policy mode, agent -> policy id, config


@dataclass(frozen=True)
class RLlibPPOConfig:
    """RLlib PPO budget and hyper-parameters; steps are agent-steps (one agent, one interval)."""

    iterations: int = 1  # training iterations (each: sample train_batch_size agent-steps, then SGD)
    policies: str = "shared"  # "shared": one policy for all agents; "independent": one per agent
    seed: int = 0  # RLlib/torch seed; also the env seed unless env_kwargs give one
    train_batch_size: int = 144  # agent-steps sampled per iteration (all agents together)
    minibatch_size: int = 72  # agent-steps per SGD minibatch (of each policy's share of the batch)
    num_epochs: int = 2  # SGD passes over each batch
    lr: float = 3e-4  # Adam learning rate
    gamma: float = 0.95  # discount per interval
    gae_lambda: float = 0.95  # GAE lambda
    clip_param: float = 0.2  # PPO ratio clip
    entropy_coeff: float = 0.0
    hidden: tuple[int, ...] = (64, 64)  # MLP widths of policy and value nets
    num_env_runners: int = 0  # 0: sample in this process (deterministic); >0: Ray actors
    # env copies (markets) each env runner steps together, one batched forward pass per step; None:
    # auto_num_envs (train_batch_size / agent-steps of one episode, 1 to AUTO_MAX_ENVS = 64)
    num_envs_per_env_runner: int | None = None
    num_cpus: int | None = None  # ray.init(num_cpus=...) when Ray is not running (None: num_env_runners + 1)
    torch_threads: int | None = 1  # torch.set_num_threads (None: leave as is)

    def __post_init__(self):
        check_choice("policies", self.policies, POLICIES)
        for name in ("iterations", "train_batch_size", "minibatch_size", "num_epochs", "num_envs_per_env_runner"):
            v = getattr(self, name)
            if v is None and name == "num_envs_per_env_runner":
                continue
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{name}: expected an integer >= 1, got {v!r}")
        if self.minibatch_size > self.train_batch_size:
            raise ValueError(f"minibatch_size: must be <= train_batch_size ({self.train_batch_size}), "
                             f"got {self.minibatch_size}")
        if not self.lr > 0:
            raise ValueError(f"lr: must be > 0, got {self.lr!r}")
        for name in ("gamma", "gae_lambda"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"{name}: must be in [0, 1], got {v!r}")
        if not self.clip_param > 0:
            raise ValueError(f"clip_param: must be > 0, got {self.clip_param!r}")
        if self.entropy_coeff < 0:
            raise ValueError(f"entropy_coeff: must be >= 0, got {self.entropy_coeff!r}")
        if not self.hidden or any(int(h) < 1 for h in self.hidden):
            raise ValueError(f"hidden: expected positive layer widths, got {self.hidden!r}")
        if self.num_env_runners < 0:
            raise ValueError(f"num_env_runners: must be >= 0, got {self.num_env_runners}")
        if self.num_cpus is not None and self.num_cpus < 1:
            raise ValueError(f"num_cpus: must be >= 1 or None, got {self.num_cpus}")
        object.__setattr__(self, "hidden", tuple(int(h) for h in self.hidden))

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "RLlibPPOConfig":
        """From a plain dict (e.g. the ``train`` object of a run.json); unknown keys -> ValueError."""
        from .config import config_from_dict

        return config_from_dict(cls, d, ("hidden",))


@dataclass(frozen=True)
class RLlibTrainResult:
    """What ``train_rllib_ppo`` did.

    iterations: training iterations done in total (including resumed ones); agent_steps / env_steps:
    agent-steps / market intervals sampled in this call; policy_ids: the RLModules; agent_policy:
    agent -> policy id; episode_return_mean: $ per episode per policy, summed over the agents it
    controls, mean over RLlib's window of the last finished episodes (NaN before the first
    finished episode); agent_return_mean: the same per agent; losses: policy id -> {total_loss,
    policy_loss, vf_loss, entropy, mean_kl_loss} of the last iteration; iteration_wall_s: seconds
    of each ``algo.train()``; wall_s: seconds of this call (build and checkpoint included);
    checkpoint: RLlib checkpoint folder (None without out_dir); num_envs_per_env_runner: env copies
    each env runner stepped (``auto_num_envs``).
    """

    iterations: int
    agent_steps: int
    env_steps: int
    policy_ids: tuple[str, ...]
    agent_policy: dict[str, str]
    episode_return_mean: dict[str, float]
    agent_return_mean: dict[str, float]
    losses: dict[str, dict[str, float]]
    iteration_wall_s: tuple[float, ...]
    wall_s: float
    checkpoint: Path | None
    config: RLlibPPOConfig = field(default_factory=RLlibPPOConfig)
    num_envs_per_env_runner: int = 1

    @property
    def num_timesteps(self) -> int:
        """Agent-steps sampled in this call (the name the other trainers' results use)."""
        return self.agent_steps

    @property
    def steps_per_s(self) -> float:
        """Agent-steps per second of training iterations."""
        t = sum(self.iteration_wall_s)
        return self.agent_steps / t if t > 0 else float("nan")


def make_env(env_name: str, env_kwargs: Mapping[str, Any] | None = None):
    """The PettingZoo parallel env: ``env_name`` in ``ENVS`` or a registered scenario id."""
    kw = dict(env_kwargs or {})
    if "/" in env_name:
        import p2penv

        if p2penv.get_spec(env_name).env == "auction_v0":  # get_spec: ValueError naming the known ids
            kw.setdefault("info_level", "lean")  # the trainer reads no per-agent info (docs/fields.md)
        return p2penv.make(env_name, **kw)
    if env_name not in ENVS:
        raise ValueError(f"env_name: expected one of {ENVS} or a scenario id of p2penv.list_scenarios(), "
                         f"got {env_name!r}")
    if env_name == "auction_v0":
        kw.setdefault("info_level", "lean")  # the trainer reads no per-agent info (docs/fields.md)
    return importlib.import_module(f"p2penv.{env_name}").parallel_env(**kw)


def _wrapper_class():
    from ray.rllib.env.wrappers.pettingzoo_env import ParallelPettingZooEnv

    class P2PParallelPettingZooEnv(ParallelPettingZooEnv):
        """RLlib's wrapper with the agents in the env's order (the stock wrapper lists them from a
        set, whose order changes with the process's hash seed)."""

        def __init__(self, env):
            super().__init__(env)
            self.agents = list(env.possible_agents)
            self.possible_agents = list(env.possible_agents)

    return P2PParallelPettingZooEnv


def rllib_env(env_name: str, env_kwargs: Mapping[str, Any] | None = None):
    """The env as an RLlib ``MultiAgentEnv`` (``ParallelPettingZooEnv``, agents in the env's order)."""
    return _wrapper_class()(make_env(env_name, env_kwargs))


def register(env_name: str) -> str:
    """Register ``env_name`` with ``ray.tune.registry`` (creator: ``env_config`` -> ``rllib_env``);
    returns the registered name ``p2penv:<env_name>``."""
    from ray.tune.registry import register_env

    name = f"p2penv:{env_name}"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # gymnasium warns when a name is registered again
        register_env(name, lambda env_config: rllib_env(env_name, dict(env_config)))
    return name


def _shared_id(agent_id, *args, **kwargs) -> str:
    return SHARED_POLICY_ID


def _own_id(agent_id, *args, **kwargs) -> str:
    return agent_id


def agent_policy_map(agents, policies: str) -> dict[str, str]:
    """agent -> policy id: ``"shared"`` for all, or each agent's own name."""
    check_choice("policies", policies, POLICIES)
    return {a: SHARED_POLICY_ID if policies == "shared" else a for a in agents}


AUTO_MAX_ENVS = 64  # the most env copies per env runner that num_envs_per_env_runner=None picks


def auto_num_envs(cfg: RLlibPPOConfig, n_agents: int, episode_len: int | None) -> int:
    """Env copies per env runner: ``cfg.num_envs_per_env_runner`` if set, else as many as the batch holds
    whole episodes (``train_batch_size`` agent-steps shared by the env runners / (``n_agents`` x
    ``episode_len`` intervals)), between 1 and ``AUTO_MAX_ENVS`` (``episode_len`` None: 1).

    RLlib's env runner pays ~1 ms of Python per step of its loop (connectors, RLModule forward pass) and
    needs a second loop step to reset a finished episode, so with 64 copies instead of 1 a training iteration
    (sampling and SGD; batch 4,000, 10 epochs) runs 1.9x faster on one-interval episodes (the Bayesian auction
    scenarios) and 2.9x on 24-interval ones (``benchmarks/results/rllib.json``). A batch that holds
    one episode or less (e.g. 72 agent-steps of 3 agents x 24 intervals) keeps one copy, as before.
    """
    if cfg.num_envs_per_env_runner is not None:
        return int(cfg.num_envs_per_env_runner)
    if not episode_len or episode_len < 1:
        return 1
    per_runner = cfg.train_batch_size // max(1, cfg.num_env_runners)
    return int(min(AUTO_MAX_ENVS, max(1, per_runner // (max(1, n_agents) * int(episode_len)))))


def build_ppo_config(env_name: str, env_kwargs: Mapping[str, Any], cfg: RLlibPPOConfig, agents, spaces=None,
                     num_envs: int | None = None):
    """The RLlib ``PPOConfig`` of a run (env registered under ``register(env_name)``); ``num_envs``: env
    copies per env runner (None: ``cfg.num_envs_per_env_runner``, or 1 when that is None too)."""
    from ray.rllib.algorithms.ppo import PPOConfig

    if num_envs is None:
        num_envs = cfg.num_envs_per_env_runner or 1
    mapping = agent_policy_map(agents, cfg.policies)
    policy_ids = list(dict.fromkeys(mapping.values()))  # env order: torch initialises modules in this order
    return (PPOConfig()
            .environment(register(env_name), env_config=dict(env_kwargs))
            # episodes_to_numpy=False: RLlib 2.60's multi-agent env runner, while sampling, calls to_numpy() (and
            # so validate()) on every episode finished so far at each step of its loop, O(episodes^2) per
            # sample(): 4000 one-interval episodes cost ~30 s. Left as lists, the learner connectors batch
            # them (same numbers: same losses and actions).
            .env_runners(num_env_runners=cfg.num_env_runners, num_envs_per_env_runner=num_envs,
                         episodes_to_numpy=False)
            .training(train_batch_size_per_learner=cfg.train_batch_size, minibatch_size=cfg.minibatch_size,
                      num_epochs=cfg.num_epochs, lr=cfg.lr, gamma=cfg.gamma, lambda_=cfg.gae_lambda,
                      clip_param=cfg.clip_param, entropy_coeff=cfg.entropy_coeff)
            .multi_agent(policies=policy_ids,
                         policy_mapping_fn=_shared_id if cfg.policies == "shared" else _own_id,
                         count_steps_by="agent_steps")
            .rl_module(model_config=dict(fcnet_hiddens=list(cfg.hidden), head_fcnet_hiddens=[]))
            .learners(num_learners=0)
            .debugging(seed=cfg.seed))


def _ensure_ray(cfg: RLlibPPOConfig) -> None:
    import ray

    if not ray.is_initialized():
        ray.init(num_cpus=cfg.num_cpus or cfg.num_env_runners + 1, include_dashboard=False,
                 ignore_reinit_error=True, log_to_driver=False)


def _check_env(env, policies: str) -> list[str]:
    """The env's agents; ValueError when a shared policy would see unequal spaces."""
    agents = list(env.possible_agents)
    if not agents:
        raise ValueError("env: has no agents")
    if policies == "shared":
        a0 = agents[0]
        for a in agents[1:]:
            for what, sp in (("observation", env.observation_space), ("action", env.action_space)):
                if sp(a) != sp(a0):
                    raise ValueError(f"policies: 'shared' needs equal {what} spaces, but agent {a!r} has "
                                     f"{sp(a)} and {a0!r} has {sp(a0)}; use policies='independent'")
    return agents


def _num(x) -> float:
    try:
        return float(x)
    except (TypeError, ValueError):
        return float("nan")


def train_rllib_ppo(env_name: str, env_kwargs: Mapping[str, Any] | None, cfg: RLlibPPOConfig,
                    out_dir: str | Path | None = None, *, resume: bool = False) -> RLlibTrainResult:
    """Train PPO with one shared or one policy per agent for ``cfg.iterations`` iterations.

    ``env_name``: ``"auction_v0"``, ``"dlmp_v0"`` or a scenario id; ``env_kwargs``: env options (the
    env ``seed`` defaults to ``cfg.seed``). With ``out_dir``: writes ``out_dir/checkpoint`` (RLlib
    Algorithm checkpoint, restorable with ``Algorithm.from_checkpoint`` after ``register(env_name)``)
    and ``out_dir/rllib.json`` (env, policy mode, agent -> policy id, config) at the end.
    ``resume=True`` restores ``out_dir/checkpoint`` (if present) and trains until ``cfg.iterations``
    iterations are done in total.
    """
    if not isinstance(cfg, RLlibPPOConfig):
        raise ValueError(f"cfg: expected an RLlibPPOConfig, got {type(cfg).__name__}")
    kw = dict(env_kwargs or {})
    kw.setdefault("seed", cfg.seed)
    out = Path(out_dir) if out_dir is not None else None
    t0 = time.perf_counter()
    env = make_env(env_name, kw)
    agents = _check_env(env, cfg.policies)
    num_envs = auto_num_envs(cfg, len(agents), getattr(env, "max_cycles", None))
    env.close()
    mapping = agent_policy_map(agents, cfg.policies)
    if cfg.torch_threads is not None:
        import torch

        torch.set_num_threads(cfg.torch_threads)
    _ensure_ray(cfg)
    algo = build_ppo_config(env_name, kw, cfg, agents, num_envs=num_envs).build_algo()
    try:
        ckpt = out / CHECKPOINT_DIR if out is not None else None
        if resume and ckpt is not None and ckpt.is_dir():
            if not (out / META_FILE).is_file():
                raise ValueError(f"resume: {out / META_FILE} missing next to {ckpt} (written by train_rllib_ppo)")
            prev = read_json(out / META_FILE)
            if prev.get("env") != env_name or prev.get("agent_policy") != mapping:
                raise ValueError(f"resume: {out / META_FILE} was trained on {prev.get('env')!r} with "
                                 f"{prev.get('agent_policy')}, this run asks for {env_name!r} with {mapping}")
            algo.restore_from_path(str(ckpt.resolve()))
        walls, agent_steps, env_steps, r = [], 0, 0, {}
        while algo.iteration < cfg.iterations:
            t1 = time.perf_counter()
            r = algo.train()
            walls.append(time.perf_counter() - t1)
            er = r.get("env_runners", {})
            agent_steps += int(sum(er.get("num_agent_steps_sampled", {}).values()))
            env_steps += int(er.get("num_env_steps_sampled", 0))
        er, lr = r.get("env_runners", {}), r.get("learners", {})
        policy_ids = tuple(dict.fromkeys(mapping.values()))
        ret = er.get("module_episode_returns_mean", {})
        aret = er.get("agent_episode_returns_mean", {})
        losses = {p: {k: _num(lr.get(p, {}).get(k)) for k in
                      ("total_loss", "policy_loss", "vf_loss", "entropy", "mean_kl_loss")} for p in policy_ids}
        if ckpt is not None:
            tmp = out / f".{CHECKPOINT_DIR}.tmp"
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
            algo.save_to_path(str(tmp.resolve()))
            shutil.rmtree(ckpt, ignore_errors=True)
            tmp.rename(ckpt)
            atomic_write_json(out / META_FILE, dict(env=env_name, policies=cfg.policies, agent_policy=mapping,
                                                    iterations=int(algo.iteration), config=asdict(cfg)))
        iterations = int(algo.iteration)
    finally:
        close_algorithm(algo)
    return RLlibTrainResult(
        iterations=iterations, agent_steps=agent_steps, env_steps=env_steps, policy_ids=policy_ids,
        agent_policy=mapping, episode_return_mean={p: _num(ret.get(p)) for p in policy_ids},
        agent_return_mean={a: _num(aret.get(a)) for a in agents}, losses=losses, iteration_wall_s=tuple(walls),
        wall_s=time.perf_counter() - t0, checkpoint=ckpt, config=cfg, num_envs_per_env_runner=num_envs)


def close_algorithm(algo) -> None:
    """``algo.stop()``, then remove the empty log folder that an ``Algorithm`` (a Tune Trainable)
    makes under ``~/ray_results`` when it runs outside Tune."""
    logdir = Path(algo.logdir)
    algo.stop()
    if logdir.is_dir() and not any(logdir.iterdir()):
        logdir.rmdir()


def restore_algorithm(out_dir: str | Path):
    """The RLlib ``Algorithm`` of a ``train_rllib_ppo`` ``out_dir`` (env registered and Ray started
    first, as ``Algorithm.from_checkpoint`` needs); ``close_algorithm(algo)`` when done."""
    from ray.rllib.algorithms.algorithm import Algorithm

    out = Path(out_dir)
    meta_path, ckpt = out / META_FILE, out / CHECKPOINT_DIR
    if not meta_path.is_file() or not ckpt.is_dir():
        raise ValueError(f"out_dir: {out} has no {META_FILE} and {CHECKPOINT_DIR}/ (written by train_rllib_ppo)")
    meta = read_json(meta_path)
    register(meta["env"])
    _ensure_ray(RLlibPPOConfig.from_dict(dict(meta["config"], hidden=tuple(meta["config"]["hidden"]))))
    return Algorithm.from_checkpoint(str(ckpt.resolve()))


class RLlibPolicy:
    """Trained RLModules as a joint policy ``policy(env, obs) -> actions`` (``agents.rollout``):
    agents mapped to one module act in one batched forward pass; the action is the Gaussian mean
    (deterministic), clipped to the env's normalised box [-1, 1]."""

    def __init__(self, modules: Mapping[str, Any], agent_policy: Mapping[str, str]):
        missing = sorted({p for p in agent_policy.values()} - set(modules))
        if missing:
            raise ValueError(f"agent_policy: policy id(s) {missing} have no module; modules {sorted(modules)}")
        self.modules = dict(modules)
        self.agent_policy = dict(agent_policy)

    @classmethod
    def from_algorithm(cls, algo, agent_policy: Mapping[str, str]) -> "RLlibPolicy":
        """From a live RLlib ``Algorithm`` (its learner's modules)."""
        return cls({p: algo.get_module(p) for p in set(agent_policy.values())}, agent_policy)

    @classmethod
    def load(cls, out_dir: str | Path) -> "RLlibPolicy":
        """From the ``out_dir`` of ``train_rllib_ppo`` (``rllib.json`` + the checkpoint's RLModules);
        needs neither Ray running nor the env registered."""
        from ray.rllib.core import COMPONENT_LEARNER, COMPONENT_LEARNER_GROUP, COMPONENT_RL_MODULE
        from ray.rllib.core.rl_module.multi_rl_module import MultiRLModule

        out = Path(out_dir)
        meta_path = out / META_FILE
        if not meta_path.is_file():
            raise ValueError(f"out_dir: {meta_path} missing (written by train_rllib_ppo with out_dir)")
        meta = read_json(meta_path)
        path = out / CHECKPOINT_DIR / COMPONENT_LEARNER_GROUP / COMPONENT_LEARNER / COMPONENT_RL_MODULE
        if not path.is_dir():
            raise ValueError(f"out_dir: {path} missing (the RLModules of the RLlib checkpoint)")
        multi = MultiRLModule.from_checkpoint(str(path.resolve()))
        return cls({p: multi[p] for p in multi.keys()}, meta["agent_policy"])

    def __call__(self, env, obs: dict) -> dict:
        import torch
        from ray.rllib.core.columns import Columns

        groups: dict[str, list[str]] = {}
        for a in obs:
            if a not in self.agent_policy:
                raise ValueError(f"obs: agent {a!r} has no policy; known {sorted(self.agent_policy)}")
            groups.setdefault(self.agent_policy[a], []).append(a)
        out = {}
        with torch.no_grad():
            for pid, names in groups.items():
                m = self.modules[pid]
                x = torch.as_tensor(np.stack([np.asarray(obs[a], np.float32) for a in names]))
                logits = m.forward_inference({Columns.OBS: x})[Columns.ACTION_DIST_INPUTS]
                act = m.get_inference_action_dist_cls().from_logits(logits).to_deterministic().sample()
                act = np.clip(act.numpy(), -1.0, 1.0).astype(np.float32)
                out.update({a: act[i] for i, a in enumerate(names)})
        return out


def iterations_for(total_steps: int, train_batch_size: int) -> int:
    """Iterations that sample at least ``total_steps`` agent-steps at ``train_batch_size`` each."""
    if total_steps < 1:
        raise ValueError(f"total_steps: must be >= 1, got {total_steps}")
    return max(1, math.ceil(total_steps / train_batch_size))


def result_summary(res: RLlibTrainResult) -> str:
    """One line: iterations, agent-steps, returns $/episode per policy."""
    rets = ", ".join(f"{p} {v:.3g}" for p, v in res.episode_return_mean.items())
    return (f"{res.iterations} iteration(s), {res.agent_steps} agent-steps, {res.steps_per_s:.0f} steps/s; "
            f"episode return $ per policy: {rets}")


__all__ = ["RLlibPPOConfig", "RLlibTrainResult", "RLlibPolicy", "train_rllib_ppo", "make_env", "rllib_env",
           "register", "restore_algorithm", "close_algorithm", "build_ppo_config", "agent_policy_map", "iterations_for",
           "result_summary", "auto_num_envs", "AUTO_MAX_ENVS"]
