"""TorchRL view of the p2penv markets: ``torchrl.envs.PettingZooWrapper`` that keeps the market infos.

``make_torchrl_env("auction_v0" | "dlmp_v0" | scenario_id, **env_kwargs)`` wraps the parallel
PettingZoo env (``parallel=True``) in :class:`MarketPettingZooWrapper`, a subclass of TorchRL's
``PettingZooWrapper``. Tensordict layout (``G`` = group name, ``n`` = agents in the group)::

    G/observation        float32 (n, F)     the env's observation (docs/fields.md)
    G/action             float32 (n, A)     (price, dispatch[, storage]) in [-1, 1]
    G/reward             float32 (n, 1)     $ per step (the env's float reward cast to float32)
    G/done|terminated|truncated  bool (n, 1)
    G/info/<field>       float64 (n,)       every numeric per-agent info: INFO_FIELDS ($/kWh, kW, kWh, $),
                                            DLMP_INFO_FIELDS, STORAGE_INFO_FIELDS, nash_gain ($), bus (int64)
    market/<key>         float64 ()         (bools: bool, counters: int64) the shared market dict: clearing_price ($/kWh), volume_kwh
                                            (kWh), welfare ($), operator_surplus ($), t (int64), dlmp_v0's
                                            wholesale_price ($/kWh), substation_import_kw (kW), losses_kw
                                            (kW), ..., lp_violated (bool)
    network/<key>        float64 ()         dlmp_v0's realised network dict (import_kw, losses_kw, v_min_pu,
                                            ..., violated (bool))

**Groups**: ``group_map="shared"`` (default) stacks all prosumers in one group ``"prosumer"`` (one
policy with parameter sharing sees ``(n, F)``); ``"per_agent"`` gives one group per agent (TorchRL's
``MarlGroupMapType.ONE_GROUP_PER_AGENT``); a dict ``{group: [agents]}`` is passed through.

**Why a subclass**: TorchRL's wrapper builds its info specs from the infos of ``reset()``. The markets
return empty infos at reset (nothing has cleared yet), so the stock wrapper would drop every info
field; it also cannot hold the nested ``"market"`` dict and casts Python floats through float32. The
subclass (i) probes the info layout once at construction: ``reset(seed)`` then one step at the middle
of every action box, then the stock ``_init_env`` resets again with the same seed, so the env starts
exactly as a freshly reset PettingZoo env; (ii) adds the specs above; (iii) fills them each step in
float64 (exact: ``market/clearing_price`` equals ``infos[a]["market"]["clearing_price"]`` bit for bit).
Infos are zero after a reset (no step has cleared). Non-numeric info values (none today) are left
out and listed in ``wrapper.info_layout.dropped``. Overridden: the ``_EnvWrapper`` hooks ``_make_specs``,
``_reset``, ``_step`` (TorchRL's way to write an env) and the wrapper's own ``_reset_parallel`` /
``_step_parallel`` (internal to ``PettingZooWrapper``: recheck them on a torchrl upgrade; the tests do).
Checked with torchrl 0.14.1 and 0.11.1 (the one BenchMARL 1.5.2 pins).

``train_ppo`` is a small MAPPO/IPPO loop (``Collector``, called ``SyncDataCollector`` before torchrl 0.14,
+ ``ClipPPOLoss``, one shared MLP policy), enough for a smoke test and an example; not a tuned trainer.
"""
from __future__ import annotations

import inspect
import time
import warnings
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from tensordict import TensorDictBase
from torchrl.data.tensor_specs import Categorical, Composite, Unbounded
from torchrl.envs import PettingZooWrapper
from torchrl.envs.utils import MarlGroupMapType

ENV_NAMES = ("auction_v0", "dlmp_v0")
GROUP_MAPS = ("shared", "per_agent")


# -- info layout ------------------------------------------------------------------------------
@dataclass(frozen=True)
class InfoLeaf:
    """One numeric info entry: its key, torch dtype and shape of one value (``()`` for a number)."""

    key: str
    dtype: torch.dtype
    shape: tuple[int, ...] = ()


@dataclass(frozen=True)
class InfoLayout:
    """What the wrapper keeps of ``infos``: per-agent leaves, shared dicts (``"market"``, ``"network"``)
    written once at the tensordict root, and the keys left out because their values are not numeric."""

    agent: tuple[InfoLeaf, ...]
    shared: tuple[tuple[str, tuple[InfoLeaf, ...]], ...]
    dropped: tuple[str, ...] = ()

    @property
    def shared_keys(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.shared)


def _leaf(key: str, value: Any) -> InfoLeaf | None:
    """The spec leaf of one info value, or None when it is not numeric."""
    if isinstance(value, (bool, np.bool_)):
        return InfoLeaf(key, torch.bool)
    if isinstance(value, (int, np.integer)):
        return InfoLeaf(key, torch.int64)
    if isinstance(value, (float, np.floating)):
        return InfoLeaf(key, torch.float64)
    if isinstance(value, np.ndarray) and value.dtype.kind in "biuf":
        dtype = {"b": torch.bool, "i": torch.int64, "u": torch.int64, "f": torch.float64}[value.dtype.kind]
        return InfoLeaf(key, dtype, tuple(value.shape))
    return None


def _same_dict(a: Any, b: Mapping) -> bool:
    """``a`` is the mapping ``b`` or equal to it item by item (arrays compared with ``array_equal``)."""
    if a is b:
        return True
    if not isinstance(a, Mapping) or a.keys() != b.keys():
        return False
    return all(np.array_equal(a[k], b[k]) for k in b)


def infer_info_layout(infos: Mapping[str, Mapping[str, Any]], agents: Sequence[str]) -> InfoLayout:
    """Layout of one step's ``infos`` of a parallel env.

    Numbers and numeric arrays are per-agent leaves; a dict value (``"market"``, ``"network"``) is
    shared by all agents and becomes a root entry (its numeric items only). ValueError, naming the
    field and agent, when agents disagree on a field's presence, type or shape, or on a shared dict.
    """
    if not agents:
        raise ValueError("infos: no agents to infer the info layout from")
    missing = [a for a in agents if a not in infos]
    if missing:
        raise ValueError(f"infos: no entry for agent(s) {missing}")
    first = agents[0]
    leaves: list[InfoLeaf] = []
    shared: list[tuple[str, tuple[InfoLeaf, ...]]] = []
    dropped: list[str] = []
    for key, value in infos[first].items():
        if isinstance(value, Mapping):
            inner = []
            for k, v in value.items():
                leaf = _leaf(k, v)
                if leaf is None:
                    dropped.append(f"{key}/{k}")
                else:
                    inner.append(leaf)
            shared.append((key, tuple(inner)))
            for a in agents[1:]:
                if not _same_dict(infos[a].get(key), value):
                    raise ValueError(f"infos[{a!r}][{key!r}]: expected the dict shared by all agents "
                                     f"(as for {first!r}), got a different one")
            continue
        leaf = _leaf(key, value)
        if leaf is None:
            dropped.append(key)
            continue
        for a in agents[1:]:
            if key not in infos[a]:
                raise ValueError(f"infos[{a!r}]: field {key!r} missing (present for {first!r})")
            if _leaf(key, infos[a][key]) != leaf:
                raise ValueError(f"infos[{a!r}][{key!r}]: type or shape differs from that of {first!r}")
        leaves.append(leaf)
    for a in agents[1:]:
        extra = sorted(set(infos[a]) - set(infos[first]))
        if extra:
            raise ValueError(f"infos[{a!r}]: field(s) {extra} not present for {first!r}")
    return InfoLayout(tuple(leaves), tuple(shared), tuple(dropped))


def _spec(leaf: InfoLeaf, batch: tuple[int, ...], device) -> Categorical | Unbounded:
    shape = torch.Size(batch + leaf.shape)
    if leaf.dtype is torch.bool:
        return Categorical(n=2, shape=shape, dtype=torch.bool, device=device)
    return Unbounded(shape=shape, dtype=leaf.dtype, device=device)


def _midpoint_action(space) -> Any:
    """Middle of a Box (price and dispatch at their mid-range); a sample of any other space."""
    low, high = getattr(space, "low", None), getattr(space, "high", None)
    if low is not None and high is not None and np.all(np.isfinite(low)) and np.all(np.isfinite(high)):
        return ((np.asarray(low, np.float64) + high) / 2).astype(space.dtype)
    space.seed(0)
    return space.sample()


# -- the wrapper ------------------------------------------------------------------------------
class MarketPettingZooWrapper(PettingZooWrapper):
    """``PettingZooWrapper`` (parallel envs only) that keeps per-agent infos and the shared market dict.

    See the module docstring for the tensordict layout. ``info_layout`` (an :class:`InfoLayout`) says
    what is kept. Each step checks the infos against it: a field that disappears raises ValueError
    naming the field and agent; new fields raise too (the specs are fixed at construction).
    """

    info_layout: InfoLayout

    def _make_specs(self, env) -> None:
        if not self.parallel:
            raise ValueError("env: MarketPettingZooWrapper wraps parallel envs only (parallel_env(), not env())")
        super()._make_specs(env)
        self._last_infos: dict = {}
        layout = self._probe_info_layout(env)
        clash = set(layout.shared_keys) & (set(self.group_map) | {"state", "done", "terminated", "truncated"})
        if clash:
            raise ValueError(f"group_map: group name(s) {sorted(clash)} clash with the shared info dicts; rename")
        self.info_layout = layout
        for group, agents in self.group_map.items():
            n = len(agents)
            self.observation_spec[group]["info"] = Composite(
                {leaf.key: _spec(leaf, (n,), self.device) for leaf in layout.agent},
                shape=torch.Size((n,)), device=self.device)
        for name, leaves in layout.shared:
            self.observation_spec[name] = Composite({leaf.key: _spec(leaf, (), self.device) for leaf in leaves},
                                                    device=self.device)

    def _probe_info_layout(self, env) -> InfoLayout:
        """One step at mid actions from ``reset(seed=self.seed)``; ``_init_env`` then resets again."""
        env.reset(seed=self.seed)
        agents = list(env.agents)
        actions = {a: _midpoint_action(env.action_space(a)) for a in agents}
        infos = env.step(actions)[-1]
        return infer_info_layout(infos, agents)

    # the stock wrapper sees empty infos; the full ones are written by _fill_infos
    def _reset_parallel(self, **kwargs) -> tuple[dict, dict]:
        obs, infos = self._env.reset(**kwargs)
        self._last_infos = infos
        return obs, {a: {} for a in infos}

    def _step_parallel(self, tensordict: TensorDictBase) -> tuple[dict, dict, dict, dict, dict]:
        obs, rewards, terminations, truncations, infos = super()._step_parallel(tensordict)
        self._last_infos = infos
        return obs, rewards, terminations, truncations, {a: {} for a in infos}

    def _reset(self, tensordict: TensorDictBase | None = None, **kwargs) -> TensorDictBase:
        out = super()._reset(tensordict, **kwargs)
        if any(self._last_infos.values()):  # the markets return empty infos at reset: zeros stay
            self._fill_infos(out, self._last_infos)
        return out

    def _step(self, tensordict: TensorDictBase) -> TensorDictBase:
        out = super()._step(tensordict)
        self._fill_infos(out, self._last_infos)
        return out

    def _fill_infos(self, out: TensorDictBase, infos: Mapping[str, Mapping[str, Any]]) -> None:
        layout = self.info_layout
        known = {leaf.key for leaf in layout.agent} | set(layout.shared_keys) | set(layout.dropped)
        for group, agents in self.group_map.items():
            live = [a for a in agents if a in infos]
            if not live:
                continue
            for a in live:
                extra = set(infos[a]) - known
                if extra:
                    raise ValueError(f"infos[{a!r}]: field(s) {sorted(extra)} not in the layout probed at "
                                     "construction; rebuild the TorchRL env")
            group_info = out.get((group, "info"))
            idx = [agents.index(a) for a in live]
            for leaf in layout.agent:
                try:
                    values = [infos[a][leaf.key] for a in live]
                except KeyError:
                    bad = next(a for a in live if leaf.key not in infos[a])
                    raise ValueError(f"infos[{bad!r}]: field {leaf.key!r} missing") from None
                col = torch.as_tensor(np.asarray(values), dtype=leaf.dtype, device=self.device)
                group_info.get(leaf.key)[idx] = col
        src = next((infos[a] for a in infos if infos[a]), None)
        if src is None:
            return
        for name, leaves in layout.shared:
            if name not in src:
                raise ValueError(f"infos: shared dict {name!r} missing")
            d = src[name]
            for leaf in leaves:
                if leaf.key not in d:
                    raise ValueError(f"infos[...][{name!r}]: field {leaf.key!r} missing")
                out.set((name, leaf.key), torch.as_tensor(np.asarray(d[leaf.key]), dtype=leaf.dtype,
                                                          device=self.device))


# -- factory ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TorchRLEnvOptions:
    """Options of the TorchRL wrapper (the env's own options go to ``make_torchrl_env(**env_kwargs)``).

    ``seed``: the seed of the wrapper's construction-time ``reset`` (TorchRL ``PettingZooWrapper(seed=)``);
    ``None`` lets the env use its config's ``seed`` (``env_kwargs["seed"]``). ``group_map``:
    ``"shared"`` (one group ``"prosumer"``), ``"per_agent"``, or a dict ``{group: [agent, ...]}``.
    ``return_state``: also output the env's global ``state()`` at the root.
    """

    seed: int | None = None
    group_map: str | Mapping[str, Sequence[str]] = "shared"
    return_state: bool = False
    device: str = "cpu"

    def __post_init__(self):
        if isinstance(self.group_map, str) and self.group_map not in GROUP_MAPS:
            raise ValueError(f"group_map: expected one of {GROUP_MAPS} or a dict, got {self.group_map!r}")
        if self.seed is not None and (not isinstance(self.seed, (int, np.integer)) or isinstance(self.seed, bool)):
            raise ValueError(f"seed: expected an int or None, got {self.seed!r}")


def make_pettingzoo_env(env: str = "auction_v0", **env_kwargs: Any):
    """The parallel PettingZoo env of ``env``: ``"auction_v0"``, ``"dlmp_v0"`` or a registered scenario id."""
    import p2penv

    if env in ENV_NAMES:
        import importlib

        return importlib.import_module(f"p2penv.{env}").parallel_env(**env_kwargs)
    if env in p2penv.list_scenarios():
        return p2penv.make(env, **env_kwargs)
    raise ValueError(f"env: expected one of {ENV_NAMES} or a scenario id {p2penv.list_scenarios()}, got {env!r}")


def make_torchrl_env(env: str = "auction_v0", options: TorchRLEnvOptions | None = None,
                     **env_kwargs: Any) -> MarketPettingZooWrapper:
    """TorchRL env of a p2penv market, market infos kept (layout in the module docstring).

    ``env``: ``"auction_v0"``, ``"dlmp_v0"`` or a scenario id (``p2penv.list_scenarios()``);
    ``env_kwargs``: the env's config options (``n_prosumers``, ``scenario="teaching4"``, ``seed``, ...).
    """
    opts = options if options is not None else TorchRLEnvOptions()
    if not isinstance(opts, TorchRLEnvOptions):
        raise ValueError(f"options: expected a TorchRLEnvOptions, got {type(opts).__name__}")
    pz = make_pettingzoo_env(env, **env_kwargs)
    if opts.group_map == "shared":
        group_map = {"prosumer": list(pz.possible_agents)}
    elif opts.group_map == "per_agent":
        group_map = MarlGroupMapType.ONE_GROUP_PER_AGENT
    else:
        group_map = {g: list(a) for g, a in opts.group_map.items()}
    with warnings.catch_warnings():  # TorchRL warns for any PettingZoo but 1.24.3; 1.27 works here
        warnings.filterwarnings("ignore", message="PettingZoo in TorchRL is tested", category=UserWarning)
        return MarketPettingZooWrapper(env=pz, group_map=group_map, return_state=opts.return_state,
                                       seed=opts.seed, device=opts.device)


# -- a small MAPPO / IPPO loop -------------------------------------------------------------------
@dataclass(frozen=True)
class TorchRLPPOConfig:
    """Budget and hyper-parameters of :func:`train_ppo` (frames are env steps of the whole market)."""

    iterations: int = 3
    frames_per_batch: int = 48  # env steps per collector batch (2 episodes of 24 steps by default)
    epochs: int = 2
    minibatch_size: int = 24
    lr: float = 3e-4
    gamma: float = 0.95
    lmbda: float = 0.9
    clip_epsilon: float = 0.2
    entropy_coef: float = 1e-3
    hidden: int = 32
    centralised_critic: bool = True  # True: MAPPO (critic sees all agents), False: IPPO
    seed: int = 0
    torch_threads: int | None = 1

    def __post_init__(self):
        for name in ("iterations", "frames_per_batch", "epochs", "minibatch_size", "hidden"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"{name}: expected a positive int, got {v!r}")
        if self.minibatch_size > self.frames_per_batch:
            raise ValueError(f"minibatch_size: {self.minibatch_size} exceeds frames_per_batch {self.frames_per_batch}")
        for name in ("lr", "clip_epsilon"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name}: expected > 0, got {getattr(self, name)!r}")
        for name in ("gamma", "lmbda"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name}: expected in [0, 1], got {getattr(self, name)!r}")


@dataclass(frozen=True)
class TorchRLPPOResult:
    """Per iteration: mean reward per agent-step ($) of the collected batch, mean clearing price
    ($/kWh, from ``market/clearing_price``), total loss; and the wall time (s)."""

    mean_reward: tuple[float, ...]
    mean_clearing_price: tuple[float, ...]
    loss: tuple[float, ...]
    frames: int
    seconds: float


def train_ppo(env: str = "auction_v0", config: TorchRLPPOConfig | None = None,
              **env_kwargs: Any) -> TorchRLPPOResult:
    """MAPPO (or IPPO) with one shared policy for the single ``"prosumer"`` group.

    TorchRL's multi-agent recipe: ``MultiAgentMLP`` actor -> ``TanhNormal`` over the [-1, 1] action box,
    ``MultiAgentMLP`` critic (centralised for MAPPO), GAE, ``ClipPPOLoss``, ``Collector``. Rewards are $ per
    agent-step as the env pays them (no scaling).
    """
    from tensordict.nn import NormalParamExtractor, TensorDictModule
    from torch import nn
    try:
        from torchrl.collectors import Collector  # torchrl >= 0.14 (SyncDataCollector before)
    except ImportError:  # pragma: no cover - older torchrl
        from torchrl.collectors import SyncDataCollector as Collector
    from torchrl.data import LazyTensorStorage, ReplayBuffer
    from torchrl.data.replay_buffers.samplers import SamplerWithoutReplacement
    from torchrl.modules import MultiAgentMLP, ProbabilisticActor, TanhNormal
    from torchrl.objectives import ClipPPOLoss, ValueEstimators

    cfg = config if config is not None else TorchRLPPOConfig()
    if cfg.torch_threads is not None:
        torch.set_num_threads(cfg.torch_threads)
    torch.manual_seed(cfg.seed)
    start = time.perf_counter()
    tenv = make_torchrl_env(env, TorchRLEnvOptions(seed=cfg.seed), **env_kwargs)
    group = "prosumer"
    n = len(tenv.group_map[group])
    obs_dim = tenv.observation_spec[group, "observation"].shape[-1]
    act_spec = tenv.full_action_spec[group, "action"]
    act_dim = act_spec.shape[-1]

    actor_net = nn.Sequential(
        MultiAgentMLP(n_agent_inputs=obs_dim, n_agent_outputs=2 * act_dim, n_agents=n, centralised=False,
                      share_params=True, depth=2, num_cells=cfg.hidden, activation_class=nn.Tanh),
        NormalParamExtractor())
    policy = ProbabilisticActor(
        TensorDictModule(actor_net, in_keys=[(group, "observation")], out_keys=[(group, "loc"), (group, "scale")]),
        spec=act_spec, in_keys=[(group, "loc"), (group, "scale")], out_keys=[(group, "action")],
        distribution_class=TanhNormal,
        distribution_kwargs={"low": act_spec.space.low, "high": act_spec.space.high},
        return_log_prob=True)
    critic = TensorDictModule(
        MultiAgentMLP(n_agent_inputs=obs_dim, n_agent_outputs=1, n_agents=n, centralised=cfg.centralised_critic,
                      share_params=True, depth=2, num_cells=cfg.hidden, activation_class=nn.Tanh),
        in_keys=[(group, "observation")], out_keys=[(group, "state_value")])

    extra = {}
    if "auto_register_policy_transforms" in inspect.signature(Collector.__init__).parameters:
        extra["auto_register_policy_transforms"] = False  # the MLP policy needs no InitTracker
    collector = Collector(tenv, policy, frames_per_batch=cfg.frames_per_batch,
                          total_frames=cfg.frames_per_batch * cfg.iterations, **extra)
    buffer = ReplayBuffer(storage=LazyTensorStorage(cfg.frames_per_batch), sampler=SamplerWithoutReplacement(),
                          batch_size=cfg.minibatch_size)
    loss = ClipPPOLoss(actor_network=policy, critic_network=critic, clip_epsilon=cfg.clip_epsilon,
                       entropy_coeff=cfg.entropy_coef, normalize_advantage=False)
    loss.set_keys(reward=(group, "reward"), action=(group, "action"), value=(group, "state_value"),
                  done=(group, "done"), terminated=(group, "terminated"),
                  sample_log_prob=(group, "action_log_prob"))
    loss.make_value_estimator(ValueEstimators.GAE, gamma=cfg.gamma, lmbda=cfg.lmbda)
    optim = torch.optim.Adam(loss.parameters(), cfg.lr)

    rewards, prices, losses = [], [], []
    frames = 0
    for batch in collector:
        nxt = batch.get("next")
        with torch.no_grad():
            loss.value_estimator(batch, params=loss.critic_network_params,
                                 target_params=loss.target_critic_network_params)
        frames += batch.numel()
        rewards.append(float(nxt.get((group, "reward")).mean()))
        prices.append(float(nxt.get(("market", "clearing_price")).mean()))
        buffer.extend(batch.reshape(-1))
        total = torch.zeros(())
        for _ in range(cfg.epochs):
            for _ in range(cfg.frames_per_batch // cfg.minibatch_size):
                out = loss(buffer.sample())
                total = out["loss_objective"] + out["loss_critic"] + out["loss_entropy"]
                total.backward()
                torch.nn.utils.clip_grad_norm_(loss.parameters(), 1.0)
                optim.step()
                optim.zero_grad()
        losses.append(float(total.detach()))
        collector.update_policy_weights_()
    collector.shutdown()
    tenv.close()
    return TorchRLPPOResult(tuple(rewards), tuple(prices), tuple(losses), frames, time.perf_counter() - start)
