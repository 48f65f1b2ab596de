"""BenchMARL task for the p2penv markets, and a tiny MAPPO / IPPO experiment on it.

BenchMARL (``pip install benchmarl``, 1.5.x) pins ``torchrl<0.12``, so it lives in its own venv, not
beside the ``[torchrl]`` extra (torchrl >= 0.14); see docs/ecosystem.md. Following BenchMARL's
"custom task" recipe (``examples/extending/task``; the model is ``benchmarl/environments/pettingzoo/
common.py``), :class:`P2PEnvTask` is a ``benchmarl.environments.Task`` enum and
:class:`P2PEnvTaskClass` the ``TaskClass`` that builds its TorchRL env with
``p2penv.agents.torchrl_env.make_torchrl_env`` (``PettingZooWrapper``, parallel, one group
``"prosumer"``, market infos kept). Use it from Python; no yaml is needed::

    task = P2PEnvTask.AUCTION_V0.get_task(config={"n_prosumers": 4})
    task = P2PEnvTask.SCENARIO.get_task(config={"scenario_id": "dlmp_v0/teaching4-v0"})
    Experiment(task=task, algorithm_config=MappoConfig.get_from_yaml(), ...).run()

``task.config``: the env's options (``p2penv.auction_v0.parallel_env(**config)``; ``max_cycles``,
``n_prosumers``, ``scenario`` for dlmp_v0, ...), plus ``"scenario_id"`` for ``P2PEnvTask.SCENARIO``.

What BenchMARL sees: observation ``prosumer/observation``; info ``prosumer/info/*`` (the per-agent
infos, float64); actions continuous in [-1, 1] (``(price, dispatch[, storage])``); no global state.
``log_info`` adds, per collected batch, ``market/clearing_price`` ($/kWh), ``market/welfare`` ($ per
step) and ``market/volume_kwh`` (kWh per step) means to BenchMARL's loggers.

:func:`run_tiny_experiment` runs a very short experiment (default: MAPPO, 2 iterations of 48 frames,
no evaluation, no logger, no checkpoint) and returns a :class:`BenchmarlRunResult`.
"""
from __future__ import annotations

import copy
import tempfile
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional

from benchmarl.environments.common import Task, TaskClass
from benchmarl.experiment.callback import Callback
from tensordict import TensorDictBase
from torchrl.data import Composite
from torchrl.envs import EnvBase

from .torchrl_env import ENV_NAMES, TorchRLEnvOptions, make_torchrl_env

ALGORITHMS = ("mappo", "ippo")
MARKET_LOG_KEYS = ("clearing_price", "welfare", "volume_kwh")


class _EnvFactory:
    """Builds the k-th TorchRL env (k = 0, 1, ...) seeded ``seed + k`` (unseeded when ``seed`` is None)."""

    def __init__(self, env_id: str, env_kwargs: dict, seed: Optional[int], device: str):
        self.env_id, self.env_kwargs, self.seed, self.device = env_id, env_kwargs, seed, device
        self.built = 0

    def __call__(self) -> EnvBase:
        seed = None if self.seed is None else self.seed + self.built
        self.built += 1
        return make_torchrl_env(self.env_id, TorchRLEnvOptions(seed=seed, device=self.device), **self.env_kwargs)


class P2PEnvTaskClass(TaskClass):
    """``TaskClass`` of the p2penv markets (BenchMARL's abstract methods, PettingZoo-task style)."""

    def _env_id(self) -> str:
        if self.name == "SCENARIO":
            sid = self.config.get("scenario_id")
            if not isinstance(sid, str):
                raise ValueError(f"config['scenario_id']: P2PEnvTask.SCENARIO needs a scenario id string, got {sid!r}")
            return sid
        if "scenario_id" in self.config:
            raise ValueError(f"config['scenario_id']: only for P2PEnvTask.SCENARIO, not {self.name}")
        return self.name.lower()

    def get_env_fun(self, num_envs: int, continuous_actions: bool, seed: Optional[int],
                    device) -> Callable[[], EnvBase]:
        """A factory of the TorchRL env. Not vectorised: BenchMARL batches ``num_envs`` copies itself
        (``SerialEnv``) and hands every copy the same ``seed``; the factory seeds its k-th env ``seed + k``
        so the copies play different scenario draws instead of one draw ``num_envs`` times. (With
        ``parallel_collection=True`` each worker process counts from 0 again.)"""
        if not continuous_actions:
            raise ValueError("continuous_actions: the p2penv markets have continuous (Box) actions only")
        env_kwargs = {k: v for k, v in copy.deepcopy(self.config).items() if k != "scenario_id"}
        return _EnvFactory(self._env_id(), env_kwargs, seed, str(device))

    def supports_continuous_actions(self) -> bool:
        return True

    def supports_discrete_actions(self) -> bool:
        return False

    def has_render(self, env: EnvBase) -> bool:
        return False

    def max_steps(self, env: EnvBase) -> int:
        """Episode length (steps): the env's ``max_cycles``."""
        return int(env.max_cycles)

    def group_map(self, env: EnvBase) -> Dict[str, List[str]]:
        return env.group_map

    def _group_entries(self, env: EnvBase, keep: str) -> Composite:
        spec = env.observation_spec.clone()
        for key in list(spec.keys()):
            if key not in self.group_map(env):  # root entries: "market", "network", "state"
                del spec[key]
        for group in self.group_map(env):
            for key in list(spec[group].keys()):
                if key != keep:
                    del spec[group][key]
        return spec

    def observation_spec(self, env: EnvBase) -> Composite:
        return self._group_entries(env, "observation")

    def info_spec(self, env: EnvBase) -> Optional[Composite]:
        return self._group_entries(env, "info")

    def state_spec(self, env: EnvBase) -> Optional[Composite]:
        return None

    def action_mask_spec(self, env: EnvBase) -> Optional[Composite]:
        return None

    def action_spec(self, env: EnvBase) -> Composite:
        return env.full_action_spec

    @staticmethod
    def env_name() -> str:
        return "p2penv"

    @staticmethod
    def log_info(batch: TensorDictBase) -> Dict[str, float]:
        """Means over the collected batch of the market's clearing price ($/kWh), welfare ($ per step),
        traded volume (kWh per step)."""
        out = {}
        for key in MARKET_LOG_KEYS:
            k = ("next", "market", key)
            if k in batch.keys(True, True):
                out[f"market/{key}"] = float(batch.get(k).double().mean())
        return out


class P2PEnvTask(Task):
    """p2penv tasks: ``AUCTION_V0``, ``DLMP_V0`` (config = env options) and ``SCENARIO``
    (config ``{"scenario_id": ..., **overrides}``). Always call ``get_task(config=...)``: there are no yaml
    defaults in BenchMARL's conf folder (``get_task()`` without config would look for them)."""

    AUCTION_V0 = None
    DLMP_V0 = None
    SCENARIO = None

    @staticmethod
    def associated_class():
        return P2PEnvTaskClass


# -- a tiny experiment -------------------------------------------------------------------------
@dataclass(frozen=True)
class BenchmarlRunConfig:
    """A very short BenchMARL experiment (frames = env steps of one market; 24 per default episode)."""

    env: str = "auction_v0"  # "auction_v0", "dlmp_v0" or a scenario id
    env_kwargs: tuple[tuple[str, Any], ...] = ()  # env options, e.g. (("n_prosumers", 4),)
    algorithm: str = "mappo"  # or "ippo"
    iterations: int = 2
    frames_per_batch: int = 48
    n_envs: int = 2  # env copies BenchMARL steps in a SerialEnv
    minibatch_size: int = 24
    minibatch_iters: int = 2
    num_cells: tuple[int, ...] = (32, 32)
    lr: float = 3e-4
    gamma: float = 0.95
    seed: int = 0
    torch_threads: int | None = 1

    def __post_init__(self):
        if self.algorithm not in ALGORITHMS:
            raise ValueError(f"algorithm: expected one of {ALGORITHMS}, got {self.algorithm!r}")
        for name in ("iterations", "frames_per_batch", "n_envs", "minibatch_size", "minibatch_iters"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"{name}: expected a positive int, got {v!r}")
        if self.frames_per_batch % self.n_envs:
            raise ValueError(f"frames_per_batch: {self.frames_per_batch} is not a multiple of n_envs {self.n_envs}")
        if self.minibatch_size > self.frames_per_batch:
            raise ValueError(f"minibatch_size: {self.minibatch_size} exceeds frames_per_batch {self.frames_per_batch}")

    def task(self) -> P2PEnvTaskClass:
        kw = dict(self.env_kwargs)
        if self.env in ENV_NAMES:
            return P2PEnvTask[self.env.upper()].get_task(config=kw)
        return P2PEnvTask.SCENARIO.get_task(config={"scenario_id": self.env, **kw})


@dataclass(frozen=True)
class BenchmarlRunResult:
    """Per iteration: mean reward per agent-step ($) and mean clearing price ($/kWh) of the collected
    batch; BenchMARL's counters; wall time (s) including env and model setup."""

    mean_reward: tuple[float, ...]
    mean_clearing_price: tuple[float, ...]
    iterations: int
    frames: int
    seconds: float


class _MarketRecorder(Callback):
    """Records each collected batch's mean reward and clearing price (BenchMARL callback)."""

    def __init__(self):
        super().__init__()
        self.rewards: list[float] = []
        self.prices: list[float] = []

    def on_batch_collected(self, batch: TensorDictBase):
        self.rewards.append(float(batch.get(("next", "prosumer", "reward")).double().mean()))
        self.prices.append(float(batch.get(("next", "market", "clearing_price")).mean()))


def run_tiny_experiment(config: BenchmarlRunConfig | None = None, save_folder: str | None = None) -> BenchmarlRunResult:
    """Run a very short MAPPO/IPPO BenchMARL experiment on a p2penv market (CPU; no evaluation, no
    loggers, no checkpoints; BenchMARL's output folder goes to ``save_folder`` or a temporary dir)."""
    import torch
    from benchmarl.algorithms import IppoConfig, MappoConfig
    from benchmarl.experiment import Experiment, ExperimentConfig
    from benchmarl.models.mlp import MlpConfig

    cfg = config if config is not None else BenchmarlRunConfig()
    if cfg.torch_threads is not None:
        torch.set_num_threads(cfg.torch_threads)
    start = time.perf_counter()
    algo = (MappoConfig if cfg.algorithm == "mappo" else IppoConfig).get_from_yaml()
    model = MlpConfig(num_cells=list(cfg.num_cells), layer_class=torch.nn.Linear, activation_class=torch.nn.Tanh)
    exp_cfg = ExperimentConfig.get_from_yaml()
    exp_cfg.sampling_device = exp_cfg.train_device = exp_cfg.buffer_device = "cpu"
    exp_cfg.max_n_iters = cfg.iterations
    exp_cfg.max_n_frames = None
    exp_cfg.on_policy_collected_frames_per_batch = cfg.frames_per_batch
    exp_cfg.on_policy_n_envs_per_worker = cfg.n_envs
    exp_cfg.on_policy_minibatch_size = cfg.minibatch_size
    exp_cfg.on_policy_n_minibatch_iters = cfg.minibatch_iters
    exp_cfg.lr = cfg.lr
    exp_cfg.gamma = cfg.gamma
    exp_cfg.evaluation = False
    exp_cfg.render = False
    exp_cfg.loggers = []
    exp_cfg.create_json = False
    exp_cfg.checkpoint_interval = 0
    exp_cfg.checkpoint_at_end = False
    recorder = _MarketRecorder()
    with tempfile.TemporaryDirectory(prefix="p2penv-benchmarl-") as tmp:
        exp_cfg.save_folder = save_folder if save_folder is not None else tmp
        experiment = Experiment(task=cfg.task(), algorithm_config=algo, model_config=model, seed=cfg.seed,
                                config=exp_cfg, callbacks=[recorder])
        experiment.run()
    return BenchmarlRunResult(tuple(recorder.rewards), tuple(recorder.prices), experiment.n_iters_performed,
                              experiment.total_frames, time.perf_counter() - start)
