"""Parameter sharing with Stable-Baselines3: one PPO or SAC policy acts for every learning agent.

Agents are the slots of ``p2penv.agents.vec_adapter.MarketVecEnv`` (native adapter, chosen over SuperSuit:
same speed, but it seeds, pads unequal observation sizes and leaves non-learners to fixed agents).
Checkpoints (every ``checkpoint_every`` agent-steps, atomically): ``model.zip``, the replay buffer
for SAC (``replay.pkl``), and ``state.json`` with the step counter. ``resume=True`` continues from
them; PPO checkpoints are taken between rollouts, so no collected experience is lost, while the
environments restart from a fresh episode (seeded from seed + step), so a resumed run is
deterministic but not bit-identical to an uninterrupted one.

Market metrics (``market_log=True``, with an ``out_dir``): ``MarketLogCallback`` writes one row of
``p2penv.agents.market_log.MarketLog`` per PPO rollout (SAC: per ``n_steps`` env steps) to
``market_log.csv`` (and ``tb/market`` with ``tensorboard=True``), with the stage-game NashConv of
the current policy every ``nash_conv_every`` rows. It works on this trainer's ``MarketVecEnv`` and on
``p2penv.agents.sb3_vector.SB3VectorEnv``.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback, CallbackList

from .checkpoint import atomic_save_with, atomic_write_json, read_json
from .config import check_choice
from .market_log import MarketLog, agent_groups, competitive_price, eval_nash_conv, supports_market_power
from .torch_threads import set_torch_threads
from .vec_adapter import MarketVecEnv, padded_obs

ALGOS = ("ppo", "sac")


@dataclass(frozen=True)
class SB3Config:
    """Training budget and hyper-parameters; steps are agent-steps (one slot, one env step)."""

    algo: str = "ppo"  # "ppo" or "sac"
    total_steps: int = 20_000
    n_copies: int = 1  # parallel env copies (shared policy only)
    seed: int = 0
    learning_rate: float = 3e-4
    gamma: float = 0.95
    n_steps: int = 96  # PPO rollout length per slot (multiple of the 24-step episode)
    batch_size: int = 48
    n_epochs: int = 5  # PPO
    ent_coef: float = 0.0  # PPO
    buffer_size: int = 50_000  # SAC
    learning_starts: int = 200  # SAC, agent-steps of random play first
    net_arch: tuple[int, ...] = (64, 64)
    checkpoint_every: int = 0  # agent-steps between checkpoints (0: only at the end)
    tensorboard: bool = False  # logs under out_dir/tb
    progress: bool = False  # tqdm bar
    torch_threads: int | None = 1  # torch.set_num_threads (None: leave as is)
    market_log: bool = True  # out_dir/market_log.csv (+ tb/market with tensorboard), see market_log.py
    nash_conv_every: int = 0  # rows (PPO rollouts / SAC windows of n_steps env steps) between NashConv rows; 0 = off
    market_markup: bool = True  # competitive price per market-step for markup_rel (one small QP per step, auction_v0)

    def __post_init__(self):
        check_choice("algo", self.algo, ALGOS)
        for name in ("total_steps", "n_copies", "n_steps", "batch_size", "n_epochs"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: must be >= 1, got {getattr(self, name)}")
        if self.checkpoint_every < 0:
            raise ValueError(f"checkpoint_every: must be >= 0, got {self.checkpoint_every}")
        if not isinstance(self.nash_conv_every, int) or isinstance(self.nash_conv_every, bool) \
                or self.nash_conv_every < 0:
            raise ValueError(f"nash_conv_every: expected an integer >= 0 (rows; 0 = off), got {self.nash_conv_every!r}")

    @classmethod
    def from_dict(cls, d: dict) -> "SB3Config":
        from .config import config_from_dict

        return config_from_dict(cls, d, ("net_arch",))


def make_model(cfg: SB3Config, env, tb_dir: str | None = None, seed: int | None = None):
    """A fresh SB3 model for ``env`` (a VecEnv) from ``cfg``."""
    from stable_baselines3 import PPO, SAC

    kw: dict[str, Any] = dict(learning_rate=cfg.learning_rate, gamma=cfg.gamma, seed=cfg.seed if seed is None else seed,
                              device="cpu", verbose=0, tensorboard_log=tb_dir,
                              policy_kwargs=dict(net_arch=list(cfg.net_arch)))
    if cfg.algo == "ppo":
        return PPO("MlpPolicy", env, n_steps=cfg.n_steps, batch_size=cfg.batch_size, n_epochs=cfg.n_epochs,
                   ent_coef=cfg.ent_coef, **kw)
    return SAC("MlpPolicy", env, buffer_size=cfg.buffer_size, learning_starts=cfg.learning_starts,
               batch_size=cfg.batch_size, train_freq=1, gradient_steps=1, **kw)


def load_model(algo: str, path: str | Path, env=None):
    from stable_baselines3 import PPO, SAC

    cls = {"ppo": PPO, "sac": SAC}[algo]
    return cls.load(path, env=env, device="cpu")


class SharedPolicy:
    """A trained shared policy as an agent: ``act(obs)``, ``act_batch(obs)``; ``save``/``load``."""

    def __init__(self, model, algo: str, pad: bool, max_dim: int, deterministic: bool = True):
        self.model, self.algo, self.pad, self.max_dim = model, algo, pad, max_dim
        self.deterministic = deterministic

    def _prep(self, obs) -> np.ndarray:
        rows = list(obs) if not isinstance(obs, np.ndarray) or obs.ndim == 2 else [obs]
        if self.pad:
            return np.stack([padded_obs(np.asarray(o, np.float32), self.max_dim) for o in rows])
        return np.asarray(np.stack(rows), dtype=np.float32)

    def act_batch(self, obs) -> np.ndarray:
        a, _ = self.model.predict(self._prep(obs), deterministic=self.deterministic)
        return np.clip(a, -1.0, 1.0).astype(np.float32)

    def act(self, obs) -> np.ndarray:
        return self.act_batch(np.asarray(obs)[None, :])[0]

    def save(self, folder: str | Path) -> Path:
        folder = Path(folder)
        atomic_save_with(folder / "model.zip", self.model.save)
        atomic_write_json(folder / "policy.json", dict(algo=self.algo, pad=self.pad, max_dim=self.max_dim))
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> "SharedPolicy":
        folder = Path(folder)
        meta = read_json(folder / "policy.json")
        return cls(load_model(meta["algo"], folder / "model.zip"), meta["algo"], meta["pad"], meta["max_dim"])


class TqdmCallback(BaseCallback):
    """tqdm progress bar over agent-steps (starts at the resumed step)."""

    def __init__(self, total: int):
        super().__init__()
        self.total, self.bar = total, None

    def _on_training_start(self) -> None:
        from tqdm.auto import tqdm

        self.bar = tqdm(total=self.total, initial=self.num_timesteps, unit="step", dynamic_ncols=True)

    def _on_step(self) -> bool:
        self.bar.update(self.training_env.num_envs)
        return True

    def _on_training_end(self) -> None:
        self.bar.close()


def save_checkpoint(model, folder: Path, algo: str, extra: dict) -> None:
    """model.zip (+ replay.pkl for off-policy) + state.json, each atomic; state.json last."""
    atomic_save_with(folder / "model.zip", model.save)
    if algo == "sac":
        atomic_save_with(folder / "replay.pkl", model.save_replay_buffer)
    atomic_write_json(folder / "state.json", dict(num_timesteps=int(model.num_timesteps), **extra))


class CheckpointCallback(BaseCallback):
    """Checkpoint between rollouts (after the previous update) every ``every`` agent-steps."""

    def __init__(self, folder: Path, every: int, algo: str, extra: dict):
        super().__init__()
        self.folder, self.every, self.algo, self.extra = folder, every, algo, extra
        self.last = None

    def _on_training_start(self) -> None:
        self.last = self.num_timesteps

    def _on_rollout_start(self) -> None:
        if self.every and self.num_timesteps - self.last >= self.every:
            save_checkpoint(self.model, self.folder, self.algo, self.extra)
            self.last = self.num_timesteps

    def _on_step(self) -> bool:
        return True


class MarketLogCallback(BaseCallback):
    """Feeds a ``MarketLog`` from SB3's rollouts (public callback API: ``self.locals``'s ``rewards``,
    ``dones`` and ``infos`` of each step, ``training_env.get_attr``).

    One row per rollout (``window=None``, PPO) or per ``window`` env steps (off-policy: SAC's rollouts
    are single steps), and a partial last window at the end of training. ``slots_per_market``: SB3
    slots per market copy (slot k is learner ``k % L`` of copy ``k // L``, as in ``MarketVecEnv`` and
    ``SB3VectorEnv``). Market columns come from the per-slot ``infos[k]["market"]``
    (``MarketVecEnv``) or from ``training_env.last_infos["market"]`` (``SB3VectorEnv``). With
    ``markup=True`` on per-slot envs of auction_v0, the competitive price of every copy's next step
    is computed from its ``ctx`` (``get_attr``) after each step; ``SB3VectorEnv`` gets none
    (markup_rel nan). ``nash_fn(model) -> float``: the NashConv $/step of the model's current policy,
    called on the rows where ``log.nash_due`` (before the update that follows the rollout). At the
    end of training the log's tensorboard writer is flushed and closed (``MarketLog.close``; a later
    ``learn`` reopens it).
    """

    def __init__(self, log: MarketLog, slots_per_market: int, *, window: int | None = None,
                 nash_fn: Callable[[Any], float] | None = None, markup: bool = True):
        super().__init__()
        if slots_per_market < 1:
            raise ValueError(f"slots_per_market: must be >= 1, got {slots_per_market}")
        if window is not None and window < 1:
            raise ValueError(f"window: must be >= 1 env steps or None (one row per rollout), got {window}")
        self.log, self.slots, self.window, self.nash_fn, self.markup = log, slots_per_market, window, nash_fn, markup
        self._vector = False
        self._lam: np.ndarray | None = None

    def _on_training_start(self) -> None:
        from .sb3_vector import SB3VectorEnv

        env = self.training_env
        if env.num_envs % self.slots:
            raise ValueError(f"slots_per_market: {self.slots} does not divide the {env.num_envs} slots of the env")
        self.n_markets = env.num_envs // self.slots
        self._first = [m * self.slots for m in range(self.n_markets)]
        self._vector = isinstance(env.unwrapped, SB3VectorEnv)
        self._use_lam = self.markup and not self._vector \
            and env.get_attr("metadata", [0])[0].get("name") == "auction_v0"
        self._lam = self._next_lam()

    def _next_lam(self) -> np.ndarray | None:
        if not self._use_lam:
            return None
        ctxs = self.training_env.get_attr("ctx", self._first)
        cfg = self.training_env.get_attr("config", [0])[0]
        return np.array([competitive_price(c, cfg) for c in ctxs])

    def _on_step(self) -> bool:
        m, L = self.n_markets, self.slots
        rew = np.asarray(self.locals["rewards"], dtype=np.float64).reshape(m, L)
        dones = np.asarray(self.locals["dones"], dtype=bool).reshape(m, L)
        if self._vector:
            market = self.training_env.unwrapped.last_infos["market"]
        else:
            infos = self.locals["infos"]
            market = {k: np.array([infos[i]["market"][k] for i in self._first], dtype=np.float64)
                      for k in ("clearing_price", "volume_kwh", "welfare")}
        self.log.add_step(rew, dones, market, self._lam)
        self._lam = self._next_lam()
        if self.window is not None and self.log.pending_steps >= self.window:
            self._row()
        return True

    def _row(self) -> None:
        nc = self.nash_fn(self.model) if (self.nash_fn is not None and self.log.nash_due) else None
        self.log.end_update(self.num_timesteps, nash_conv=nc)

    def _on_rollout_end(self) -> None:
        if self.window is None and self.log.pending_steps:
            self._row()

    def _on_training_end(self) -> None:
        if self.window is not None and self.log.pending_steps:
            self._row()
        self.log.close()


@dataclass(frozen=True)
class TrainResult:
    """policy: the trained agent; num_timesteps: agent-steps done; wall_s: seconds of this call;
    out_dir: checkpoint folder (None if not saved); steps_per_s: agent-steps per second."""

    policy: Any
    num_timesteps: int
    wall_s: float
    out_dir: Path | None
    steps_per_s: float = field(default=float("nan"))


def _market_log(env_fn: Callable[[], Any], venv: MarketVecEnv, cfg: SB3Config, out: Path, others: Any,
                resume_step: int | None):
    """MarketLog of a shared run and its NashConv function (None when off or not auction_v0)."""
    probe = venv.envs[0]
    log = MarketLog(out, agent_groups(probe, venv.learners), tensorboard=cfg.tensorboard,
                    nash_conv_every=cfg.nash_conv_every, resume_step=resume_step)
    if not (cfg.nash_conv_every and supports_market_power(probe)):
        return log, None
    from .rollout import Assigned

    eval_env = env_fn()
    players = [venv.names.index(a) for a in venv.learners]

    def nash_fn(model) -> float:
        pol = SharedPolicy(model, cfg.algo, venv.pad, venv.max_dim)
        return eval_nash_conv(eval_env, Assigned({a: pol for a in venv.learners}, default=others), seed=cfg.seed,
                              players=players)

    return log, nash_fn


def train_shared(env_fn: Callable[[], Any], cfg: SB3Config, out_dir: str | Path | None = None, *,
                 learners: Sequence[str] | None = None, others: Any = None, resume: bool = False) -> TrainResult:
    """Train one shared PPO/SAC policy for ``learners`` (default: all agents) of ``env_fn()``."""
    set_torch_threads(cfg.torch_threads)
    out = Path(out_dir) if out_dir is not None else None
    venv = MarketVecEnv([env_fn] * cfg.n_copies, learners=learners, others=others)
    tb = str(out / "tb") if (out is not None and cfg.tensorboard) else None
    extra = dict(config=asdict(cfg), learners=list(venv.learners))
    state = out / "state.json" if out is not None else None
    if resume and state is not None and state.exists():
        done = int(read_json(state)["num_timesteps"])
        model = load_model(cfg.algo, out / "model.zip", env=venv)
        model.tensorboard_log = tb
        if cfg.algo == "sac" and (out / "replay.pkl").exists():
            model.load_replay_buffer(out / "replay.pkl")
        model.set_random_seed(cfg.seed + done)
        model.num_timesteps = done
    else:
        done = 0
        model = make_model(cfg, venv, tb)
    cbs = []
    if out is not None:
        cbs.append(CheckpointCallback(out, cfg.checkpoint_every, cfg.algo, extra))
    if cfg.progress:
        cbs.append(TqdmCallback(cfg.total_steps))
    log = None
    if out is not None and cfg.market_log:
        log, nash_fn = _market_log(env_fn, venv, cfg, out, others, resume_step=done if done else None)
        cbs.append(MarketLogCallback(log, venv.n_learners, window=None if cfg.algo == "ppo" else cfg.n_steps,
                                     nash_fn=nash_fn, markup=cfg.market_markup))
    t0 = time.perf_counter()
    remaining = cfg.total_steps - done
    try:
        if remaining > 0:
            model.learn(remaining, callback=CallbackList(cbs), reset_num_timesteps=(done == 0), tb_log_name="shared")
    finally:
        if log is not None:
            log.close()
    wall = time.perf_counter() - t0
    policy = SharedPolicy(model, cfg.algo, venv.pad, venv.max_dim)
    if out is not None:
        save_checkpoint(model, out, cfg.algo, dict(extra, finished=True))
        policy.save(out / "policy")
    venv.close()
    steps = model.num_timesteps - done
    return TrainResult(policy, int(model.num_timesteps), wall, out, steps / wall if wall > 0 else float("nan"))
