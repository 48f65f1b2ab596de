"""Independent learners: one SB3 model (PPO or SAC) per learning agent, trained simultaneously.

One loop (``train_independent``) steps the PettingZoo parallel env with every learner's action
from its *current* policy, then hands each model its own transition through a small driver
(``_OnPolicy`` does SB3's ``collect_rollouts`` bookkeeping incl. the truncation bootstrap, ``_OffPolicy``
SB3's warm-up exploration and replay storage). Agents may have different
observation sizes (each model has its own spaces). ``total_steps`` counts agent-steps summed over
learners, like the shared trainer, so each model sees ``total_steps / n_learners`` transitions.
Checkpoints: ``models/<agent>.zip`` (+ ``<agent>.replay.pkl``), then ``state.json``; PPO saves only
between rollouts. Resume restarts the env from a fresh episode seeded from seed + step.

Logs: with ``tensorboard=True`` each model's SB3 logger (``tb/<agent>_1``) is dumped after every PPO
update (SAC: every ``n_steps`` env steps), so its ``train/*`` scalars reach the event files; the
market metrics (``p2penv.agents.market_log``, ``market_log.csv`` and ``tb/market``) get one row per
``n_steps`` env steps (one PPO update of every model; a partial last row at the end), with the
stage-game NashConv of the learners' current policies every ``nash_conv_every`` rows.

SB3 API used (public only, stable-baselines3 2.x; no underscored member): the ``PPO``/``SAC`` constructors,
``load``/``save``/``save_replay_buffer``/``load_replay_buffer``, ``set_random_seed``, ``set_logger`` with
``common.utils.configure_logger`` (the logger ``learn()`` would make: ``tb/<agent>_1``), ``train()``,
``predict``, the attributes ``policy`` (``forward``, ``predict_values``, ``set_training_mode``,
``scale_action``/``unscale_action``), ``rollout_buffer`` (``add``, ``full``, ``pos``, ``reset``,
``compute_returns_and_advantage``), ``replay_buffer.add``, ``num_timesteps``, ``logger``, ``action_space``,
``gamma``, ``learning_starts``, ``batch_size``, ``device``; ``common.utils.obs_as_tensor``; ``VecEnv`` for the
one-slot placeholder env that carries each model's spaces. ``learn()`` is not used: it steps its own env,
and here one env loop feeds every model at once. The learning-rate progress (``learn()``'s schedule
clock) is not advanced, so only constant learning rates and clip ranges behave as in ``learn()``
(``SB3Config`` has only constants).
"""
from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
from gymnasium import spaces
from stable_baselines3.common.utils import configure_logger
from stable_baselines3.common.vec_env import VecEnv

from .checkpoint import atomic_save_with, atomic_write_json, read_json
from .market_log import MarketLog, agent_groups, competitive_price, eval_nash_conv, supports_market_power
from .rollout import Assigned
from .sb3_shared import SB3Config, SharedPolicy, TrainResult, load_model, make_model


class _SpaceEnv(VecEnv):
    """One-slot placeholder VecEnv carrying an agent's spaces; the loop feeds the data."""

    def __init__(self, obs_space: spaces.Box, act_space: spaces.Box):
        super().__init__(1, obs_space, act_space)

    def reset(self):
        return np.zeros((1,) + self.observation_space.shape, dtype=np.float32)

    def step_async(self, actions):
        raise RuntimeError("placeholder env: the independent-learner loop steps the real env")

    def step_wait(self):
        raise RuntimeError("placeholder env: the independent-learner loop steps the real env")

    def close(self):
        pass

    def get_attr(self, attr_name, indices=None):
        return [None]

    def set_attr(self, attr_name, value, indices=None):
        pass

    def env_method(self, method_name, *a, indices=None, **k):
        return [None]

    def env_is_wrapped(self, wrapper_class, indices=None):
        return [False]


class _OnPolicy:
    """Feeds one PPO model transition by transition (SB3's ``collect_rollouts`` bookkeeping, incl. the
    truncation bootstrap), then ``model.train()`` on a full rollout buffer."""

    def __init__(self, model, tb: bool = False):
        self.m, self.tb = model, tb  # tb: dump the model's SB3 logger after each update
        self._obs: np.ndarray | None = None
        self._start = np.ones(1, dtype=bool)  # the first transition starts an episode

    def act(self, obs: np.ndarray) -> np.ndarray:
        import torch as th
        from stable_baselines3.common.utils import obs_as_tensor

        m = self.m
        m.policy.set_training_mode(False)
        self._obs = obs[None, :]
        with th.no_grad():
            a, self._v, self._lp = m.policy(obs_as_tensor(self._obs, m.device))
        self._a = a.cpu().numpy()
        return np.clip(self._a[0], m.action_space.low, m.action_space.high)

    def record(self, reward: float, next_obs: np.ndarray, done: bool, truncated: bool) -> None:
        import torch as th
        from stable_baselines3.common.utils import obs_as_tensor

        m = self.m
        r = np.array([reward], dtype=np.float32)
        if done and truncated:  # time limit: bootstrap from the final observation's value
            with th.no_grad():
                r[0] += m.gamma * float(m.policy.predict_values(obs_as_tensor(next_obs[None, :], m.device))[0])
        m.rollout_buffer.add(self._obs, self._a, r, self._start, self._v, self._lp)
        self._start = np.array([done])
        m.num_timesteps += 1
        if m.rollout_buffer.full:
            with th.no_grad():
                v = m.policy.predict_values(obs_as_tensor(next_obs[None, :], m.device))
            m.rollout_buffer.compute_returns_and_advantage(last_values=v, dones=np.array([done]))
            m.train()
            m.rollout_buffer.reset()
            if self.tb:  # train() only records; SB3's learn() dumps, this loop does it itself
                m.logger.record("time/total_timesteps", m.num_timesteps)
                m.logger.dump(step=m.num_timesteps)

    def can_checkpoint(self) -> bool:
        return self.m.rollout_buffer.pos == 0


class _OffPolicy:
    """Feeds one SAC model: SB3's exploration (uniform actions for ``learning_starts`` steps, then the
    policy's samples) and replay-buffer storage, one gradient step per transition after ``learning_starts``."""

    def __init__(self, model, tb: bool = False, log_every: int = 1):
        self.m, self.tb, self.log_every = model, tb, log_every  # dump the SB3 logger every log_every steps

    def act(self, obs: np.ndarray) -> np.ndarray:
        m = self.m
        self._obs = obs[None, :]
        if m.num_timesteps < m.learning_starts:  # warm-up: uniform actions from the (seeded) action space
            a = np.array([m.action_space.sample()])
        else:
            a, _ = m.predict(self._obs, deterministic=False)
        self._buf = m.policy.scale_action(a)  # the buffer holds actions scaled to [-1, 1]
        return m.policy.unscale_action(self._buf)[0]

    def record(self, reward: float, next_obs: np.ndarray, done: bool, truncated: bool) -> None:
        m = self.m
        # next_obs is the episode's final observation when done; the buffer drops the bootstrap of
        # terminations only (``TimeLimit.truncated``: the time-limit end is not a terminal state)
        m.replay_buffer.add(self._obs, next_obs[None, :], self._buf, np.array([reward]), np.array([done]),
                            [{"TimeLimit.truncated": truncated}])
        m.num_timesteps += 1
        if m.num_timesteps > m.learning_starts:
            m.train(gradient_steps=1, batch_size=m.batch_size)
            if self.tb and m.num_timesteps % self.log_every == 0:
                m.logger.record("time/total_timesteps", m.num_timesteps)
                m.logger.dump(step=m.num_timesteps)

    def can_checkpoint(self) -> bool:
        return True


class IndependentPolicy:
    """Trained per-agent models: ``joint(others)`` is a joint policy for ``p2penv.agents.rollout``."""

    def __init__(self, policies: dict[str, SharedPolicy]):
        self.policies = policies

    def joint(self, others: Any = None) -> Assigned:
        return Assigned(self.policies, default=others)

    def save(self, folder: str | Path) -> Path:
        for a, p in self.policies.items():
            p.save(Path(folder) / a)
        atomic_write_json(Path(folder) / "agents.json", sorted(self.policies))
        return Path(folder)

    @classmethod
    def load(cls, folder: str | Path) -> "IndependentPolicy":
        names = read_json(Path(folder) / "agents.json")
        return cls({a: SharedPolicy.load(Path(folder) / a) for a in names})


def _save(models: dict, out: Path, cfg: SB3Config, env_steps: int, extra: dict) -> None:
    for a, m in models.items():
        atomic_save_with(out / "models" / f"{a}.zip", m.save)
        if cfg.algo == "sac":
            atomic_save_with(out / "models" / f"{a}.replay.pkl", m.save_replay_buffer)
    atomic_write_json(out / "state.json", dict(env_steps=env_steps, num_timesteps=env_steps * len(models), **extra))


def train_independent(env_fn: Callable[[], Any], cfg: SB3Config, out_dir: str | Path | None = None, *,
                      learners: Sequence[str] | None = None, others: Any = None,
                      resume: bool = False) -> TrainResult:
    """Train one model per learner (default: all agents) in one shared env loop; see module doc."""
    if cfg.torch_threads is not None:
        import torch

        torch.set_num_threads(cfg.torch_threads)
    env = env_fn()
    names = list(env.possible_agents)
    learners = list(learners) if learners is not None else names
    fixed = [a for a in names if a not in learners]
    if fixed and others is None:
        raise ValueError("others: non-learning agents need a fixed agent (e.g. TruthfulAgent)")
    out = Path(out_dir) if out_dir is not None else None
    tb = str(out / "tb") if (out is not None and cfg.tensorboard) else None
    per_agent = max(1, cfg.total_steps // len(learners))
    extra = dict(config=asdict(cfg), learners=learners)
    done_steps = 0
    models = {}
    resuming = resume and out is not None and (out / "state.json").exists()
    if resuming:
        done_steps = int(read_json(out / "state.json")["env_steps"])
    for k, a in enumerate(learners):
        stub = _SpaceEnv(env.observation_space(a), env.action_space(a))
        if resuming:
            m = load_model(cfg.algo, out / "models" / f"{a}.zip", env=stub)
            m.tensorboard_log = tb
            if cfg.algo == "sac" and (out / "models" / f"{a}.replay.pkl").exists():
                m.load_replay_buffer(out / "models" / f"{a}.replay.pkl")
            m.set_random_seed(cfg.seed + 7919 * k + done_steps)
        else:
            m = make_model(cfg, stub, tb, seed=cfg.seed + 7919 * k)
        # the logger learn() would set up: tb/<agent>_1, continued on resume
        m.set_logger(configure_logger(0, tb, a, reset_num_timesteps=not resuming))
        m.num_timesteps = done_steps
        models[a] = m
    drivers = {a: _OnPolicy(m, tb is not None) if cfg.algo == "ppo" else _OffPolicy(m, tb is not None, cfg.n_steps)
               for a, m in models.items()}
    log = nash_fn = None
    market_power = supports_market_power(env)
    if out is not None and cfg.market_log:
        log = MarketLog(out, agent_groups(env, learners), tensorboard=cfg.tensorboard,
                        nash_conv_every=cfg.nash_conv_every, resume_step=done_steps * len(learners) if resuming else None)
        if cfg.nash_conv_every and market_power:
            eval_env = env_fn()
            players = [names.index(a) for a in learners]

            def _nash() -> float:
                pol = IndependentPolicy({a: SharedPolicy(m, cfg.algo, False, env.observation_space(a).shape[0])
                                         for a, m in models.items()})
                return eval_nash_conv(eval_env, pol.joint(others), seed=cfg.seed, players=players)

            nash_fn = _nash
    lam_on = log is not None and cfg.market_markup and market_power
    bar = None
    if cfg.progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=per_agent, initial=done_steps, unit="env-step", dynamic_ncols=True)
    obs, _ = env.reset(seed=cfg.seed + done_steps)
    last_ckpt = done_steps
    t0 = time.perf_counter()
    step = done_steps
    while step < per_agent:
        acts = {a: drivers[a].act(np.asarray(obs[a], np.float32)) for a in learners}
        if fixed:
            fa = others.act_batch(np.stack([obs[a] for a in fixed]))
            acts.update({a: fa[i] for i, a in enumerate(fixed)})
        lam = [competitive_price(env.ctx, env.config)] if lam_on else None
        nobs, rew, term, trunc, infos = env.step(acts)
        done = not env.agents
        if log is not None:
            log.add_step([[rew[a] for a in learners]], [done], infos[names[0]]["market"], lam)
        for a in learners:
            drivers[a].record(float(rew[a]), np.asarray(nobs[a], np.float32), done,
                              bool(trunc[a]) and not bool(term[a]))
        step += 1
        if log is not None and (step % cfg.n_steps == 0 or step == per_agent):
            log.end_update(step * len(learners), nash_conv=nash_fn() if (nash_fn and log.nash_due) else None)
        if bar is not None:
            bar.update(1)
        obs = env.reset()[0] if done else nobs
        if (out is not None and cfg.checkpoint_every and step - last_ckpt >= cfg.checkpoint_every // len(learners)
                and all(d.can_checkpoint() for d in drivers.values())):
            _save(models, out, cfg, step, extra)
            last_ckpt = step
    wall = time.perf_counter() - t0
    if bar is not None:
        bar.close()
    if log is not None:
        log.close()
    pol = IndependentPolicy({a: SharedPolicy(m, cfg.algo, False, env.observation_space(a).shape[0])
                             for a, m in models.items()})
    if out is not None:
        _save(models, out, cfg, step, dict(extra, finished=True))
        pol.save(out / "policy")
    n = (step - done_steps) * len(learners)
    return TrainResult(pol, step * len(learners), wall, out, n / wall if wall > 0 else float("nan"))
