"""PPO / MAPPO in plain torch on the batched vector env (``auction_v0.vector_env``, ``dlmp_v0.vector_env``).

Everything is an array with the step axis, env axis and agent axis first: rollout buffers are
preallocated tensors ``(n_steps, E, N, ...)``, one network call acts for all ``E x N`` agent slots,
and there are no per-agent dicts or per-agent Python loops.

* ``mode="shared"``: one actor and one critic for every agent (parameter sharing); ``agent_id=True``
  adds the agent one-hot to the actor's (and local critic's) input.
* ``mode="independent"``: per-agent parameters, stored as batched weights ``(N, in, out)`` and applied
  with ``torch.baddbmm``, so all N agents act and update in one pass.
* ``critic="local"``: V(own observation). ``critic="central"`` (MAPPO): V(global state ``vec.state()``
  concatenated with the agent one-hot). ``critic="auto"`` (the default, ``resolve_critic``) picks the
  validated pair: central with a shared actor (MAPPO, which passed every learner-validation task on 10 of
  10 seeds, where a local critic passed the bilateral k-double auction on 5) and local with independent
  actors; local where the env has no ``state()``.

The one-hot inputs are never materialised: a one-hot block of a first layer is a per-agent bias row
(``GroupMLP.emb``), mathematically the same as concatenating the one-hot to the input.

Policy: ``action_dist`` (``p2penv.agents.action_dists``): by default a factorised categorical over 61
evenly spaced points of [-1, 1] per action dimension; a clipped or a tanh-squashed Gaussian with a
state-independent log-std otherwise. Evaluation acts at the distribution's mode (``eval_point``). The
discount follows the env (``gamma=None``): 0 where every step is an independent stage game
(``steps_linked``), 0.99 where batteries or binding ramps link the steps. So does the time input
(``hour_onehot=None``): where steps are linked, a one-hot of the hour of day (24 bins, read from the
observation's ``hour_sin``/``hour_cos``; ``hour_columns``) is appended to the actor's and the critic's
input, since a schedule is hour by hour and with (sin, cos) alone neighbouring hours are near inputs whose
actions the network blurs. Episodes of the
vector env end by truncation (fixed length, all markets together): at the ending step the value target
bootstraps from V(final obs) (``infos["final_obs"]``/``infos["final_state"]``), since truncation is not
termination; GAE does not run across the episode boundary. Advantages are normalised per minibatch;
``normalize_reward`` divides rewards by the running std of the discounted return. The defaults were
chosen by a hyper-parameter search over the learner-validation tasks and then validated at full budget
(``p2penv.experiments.learner_validation``, ``docs/learner_validation.md``).

Outputs in ``out_dir``: ``model.pt`` (network and optimizer state dicts, config, step counter, rng
state; written atomically every ``checkpoint_every`` agent-steps and at the end), ``progress.csv``
(one row per update) and, with ``tensorboard=True``, scalars under ``tb/``. ``resume=True`` continues
from ``model.pt``; the envs restart from a fresh episode seeded ``seed + num_timesteps``, so a resumed
run is deterministic but not bit-identical to an uninterrupted one. ``progress.csv`` columns: agent-steps,
updates, mean episode return per agent ($, episodes ended in the rollout), mean clearing price ($/kWh),
mean welfare per market step ($), PPO statistics, cumulative seconds of this call (wall, env
stepping, rollout forward, update), and every ``eval_every`` updates the evaluator's stage-game NashConv
($/step) and relative markup (empty in other rows).

``learners`` (agent names) restricts learning to some agents; the rest act with a fixed ``others`` agent
(truthful buyers in the market-power study, frozen policies in ``p2penv.diagnostics.exploitability``).
With ``out_dir`` the run also writes ``market_log.csv`` (``p2penv.agents.market_log``: episode return per
agent group, clearing price, traded kWh, welfare, and the evaluator's NashConv on its rows), the columns
every trainer of the suite shares.

Speed (2-core CPU, E = 256, N = 10): the PPO update is most of the time; see ``benchmarks/bench_ppo.py``
and ``benchmarks/results/ppo.json`` for the validated defaults beside the pre-validation configuration.
Training runs the hidden layers in bfloat16 where the CPU has native bf16 (``precision="auto"``,
``p2penv.agents.precision``), and on every core with OpenMP threads that sleep while they wait
(``torch_threads="auto"``, ``p2penv.agents.torch_threads``): spinning threads collapse when another process
holds a core, passive ones do not.
"""
from __future__ import annotations

import csv
import io
import math
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np

try:
    import torch
except ImportError as e:  # the core install has no torch: say which extra brings it
    raise ImportError("p2penv.agents.vector_ppo needs torch: pip install 'p2penv[train]' "
                      "(torch==2.13.0 first on CPU-only machines; docs/install.md)") from e
from torch import nn

from .action_dists import DISTRIBUTIONS, make_dist
from .checkpoint import atomic_save_with, atomic_write_text
from .config import check_choice, config_from_dict
from .precision import PRECISIONS, autocast, full_precision, resolve_precision
from .torch_threads import resolve_threads, set_torch_threads

MODES = ("shared", "independent")
LR_SCHEDULES = ("constant", "linear")
EVAL_POINTS = ("mode", "mean")
CRITICS = ("auto", "local", "central")
PROGRESS_FIELDS = ("agent_steps", "updates", "episode_return", "clearing_price", "welfare", "policy_loss",
                   "value_loss", "entropy", "approx_kl", "clip_frac", "std", "wall_s", "env_s", "forward_s",
                   "update_s", "nash_conv", "markup_rel")
# filled every ``eval_every`` updates by the ``evaluator`` of ``train_vector_ppo`` (empty otherwise)
EVAL_FIELDS = ("nash_conv", "markup_rel")
HOURS = 24  # bins of the hour-of-day one-hot (hour_onehot)


@dataclass(frozen=True)
class VectorPPOConfig:
    """Budget and hyper-parameters. Steps are agent-steps (one agent slot of one market, one env step)."""

    total_steps: int = 1_000_000  # agent-steps to train for (rounded up to whole rollouts)
    num_envs: int = 256  # markets stepped together (E)
    n_steps: int = 24  # env steps per rollout (24 = one default episode); a rollout is n_steps*E*N samples
    epochs: int = 5  # passes over each rollout
    # samples (agent-steps) per minibatch, at least this many unless the rollout is smaller; None: a quarter
    # of the rollout, at least 256 (minibatches sized to the rollout: 4 per epoch on large rollouts)
    minibatch_size: int | None = None
    learning_rate: float = 2e-3  # Adam
    lr_schedule: str = "linear"  # "constant" or "linear" (decays to 0 at total_steps)
    # discount per env step; None: follow the env (0 where the steps are independent stage games, i.e. no
    # storage and no binding ramp among the learners; else 0.99): see ``steps_linked``
    gamma: float | None = None
    gae_lambda: float = 0.95
    clip_range: float = 0.2  # PPO ratio clip
    ent_coef: float = 0.01  # entropy bonus weight (at the start)
    ent_coef_final: float | None = 0.0  # entropy weight at the end (linear schedule); None: constant
    vf_coef: float = 0.5  # value loss weight
    max_grad_norm: float = 0.5  # global gradient-norm clip over all parameters
    reward_scale: float = 1.0  # rewards ($) are multiplied by this before learning (logs stay in $)
    # divide rewards by the running standard deviation of the discounted return (per learner), as SB3's
    # VecNormalize does; logs stay in $
    normalize_reward: bool = False
    net_arch: tuple[int, ...] = (128, 128)  # hidden sizes of the policy and of the value network (tanh)
    # "gaussian" (clipped to [-1, 1]), "tanh" (squashed Gaussian) or "categorical" (action_bins per
    # action dimension): p2penv.agents.action_dists
    action_dist: str = "categorical"
    action_bins: int = 61  # categorical: evenly spaced points of [-1, 1] per action dimension
    eval_point: str = "mode"  # the deterministic action of a trained policy: "mode" or "mean" of the distribution
    log_std_init: float = 0.0  # initial log standard deviation of the Gaussian policies
    # append a one-hot of the hour of day (24 one-hour bins, from the observation's hour_sin/hour_cos) to the
    # actor's and the critic's input; None: follow the env, on where steps are linked (``steps_linked``: a
    # battery's schedule is hour by hour), off in stage games. By measurement on battery/wholesale: with the
    # hour only as (sin, cos), neighbouring hours are near inputs and the learned schedule blurs across them
    hour_onehot: bool | None = None
    mode: str = "shared"  # "shared" (one network for all agents) or "independent" (per-agent weights)
    # "local": V(own obs); "central": V(global state + agent one-hot) (MAPPO); "auto": resolve_critic (central
    # in shared mode, local in independent mode), resolved when training starts and saved resolved
    critic: str = "auto"
    agent_id: bool = False  # shared mode: add the agent one-hot to the actor / local critic input
    seed: int = 0
    # torch.set_num_threads (p2penv.agents.torch_threads): "auto" = every core where torch's OpenMP threads wait
    # passively (OMP_WAIT_POLICY=PASSIVE, set on importing p2penv.agents), else 1; an int; None: leave torch's
    # setting. By measurement (benchmarks/results/ppo.json, 2 cores, E = 256, N = 10): passive 2 threads 114k
    # agent-steps/s idle, 79k beside a busy core; 1 thread 89k and 83k; spinning (active) 2 threads 124k and 44k
    torch_threads: int | str | None = "auto"
    # matmul precision of training (p2penv.agents.precision): "bf16" autocasts the hidden layers' products to
    # bfloat16 (output layers, losses and weights stay fp32); "auto": bf16 where the CPU has native bf16
    # (AMX / AVX512-BF16), else "fp32". Evaluation (VectorPolicy) always runs in fp32
    precision: str = "auto"
    # torch.compile the minibatch loss (inductor: fuses its elementwise passes; needs a C++ compiler). The first
    # update pays the compilation (seconds; cached across runs), so it pays off on long runs only; see
    # benchmarks/results/ppo.json. Same algorithm, other rounding: not the validated default
    compile: bool = False
    checkpoint_every: int = 0  # agent-steps between model.pt checkpoints (0: only at the end)
    tensorboard: bool = False  # scalars under out_dir/tb
    progress: bool = False  # tqdm bar over agent-steps
    # agent names that learn (None: all). The others act with the fixed ``others`` agent given to
    # ``train_vector_ppo`` (e.g. truthful buyers, or frozen policies for a best-response run); the
    # model, buffers, returns and agent-steps then cover the learners only.
    learners: tuple[str, ...] | None = None
    eval_every: int = 0  # updates between calls of train_vector_ppo's ``evaluator`` (0: never)

    def __post_init__(self):
        check_choice("mode", self.mode, MODES)
        check_choice("critic", self.critic, CRITICS)
        for name in ("total_steps", "num_envs", "n_steps", "epochs", "minibatch_size"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"{name}: must be >= 1, got {getattr(self, name)}")
        if not self.net_arch or any(h < 1 for h in self.net_arch):
            raise ValueError(f"net_arch: need one or more positive sizes, got {self.net_arch}")
        if (self.gamma is not None and not 0 <= self.gamma <= 1) or not 0 <= self.gae_lambda <= 1:
            raise ValueError(f"gamma, gae_lambda: must lie in [0, 1] (gamma None: follow the env), got "
                             f"{self.gamma}, {self.gae_lambda}")
        check_choice("action_dist", self.action_dist, DISTRIBUTIONS)
        if self.action_bins < 2:
            raise ValueError(f"action_bins: need >= 2, got {self.action_bins}")
        check_choice("eval_point", self.eval_point, EVAL_POINTS)
        check_choice("lr_schedule", self.lr_schedule, LR_SCHEDULES)
        check_choice("precision", self.precision, PRECISIONS)
        if self.ent_coef < 0 or (self.ent_coef_final is not None and self.ent_coef_final < 0):
            raise ValueError(f"ent_coef, ent_coef_final: must be >= 0, got {self.ent_coef}, {self.ent_coef_final}")
        if self.checkpoint_every < 0:
            raise ValueError(f"checkpoint_every: must be >= 0, got {self.checkpoint_every}")
        resolve_threads(self.torch_threads)  # raises on a bad value
        if self.learners is not None and (not self.learners or len(set(self.learners)) != len(self.learners)):
            raise ValueError(f"learners: need distinct agent names (or None for all), got {self.learners}")
        if self.eval_every < 0:
            raise ValueError(f"eval_every: must be >= 0, got {self.eval_every}")

    @classmethod
    def from_dict(cls, d: dict) -> "VectorPPOConfig":
        """From a plain dict (a run.json ``train`` object or a model.pt ``config``). A saved config written
        before the validated defaults (no ``action_dist`` key) keeps what it was trained with: a clipped
        Gaussian, a constant learning rate and entropy weight."""
        if "action_dist" not in d and "mode" in d and "gamma" in d:  # a full pre-validation config
            d = {"action_dist": "gaussian", "lr_schedule": "constant", "ent_coef_final": None,
                 "eval_point": "mode", **d}
        if "precision" not in d and "mode" in d and "gamma" in d:  # a full config from before bf16: fp32
            d = {"precision": "fp32", **d}
        if "critic" not in d and "mode" in d and "gamma" in d:  # a full config from before the central critic
            d = {"critic": "local", **d}
        return config_from_dict(cls, d, ("net_arch", "learners"))


# -- networks ---------------------------------------------------------------------------------------
class GroupMLP(nn.Module):
    """MLP with G groups of weights ``(G, in, out)`` (G = 1: shared, G = N: one per agent), tanh hidden.

    ``forward(x)``: ``x`` is ``(N, B, in)`` (agent-major, one input per agent) or ``(1, B, in)`` (one
    input common to all agents, e.g. the global state); returns ``(N, B, out)``. With ``one_hot`` the
    first layer also takes the agent one-hot; its weight rows are kept as a per-agent bias ``emb (N, H)``.
    """

    def __init__(self, groups: int, n_agents: int, in_dim: int, hidden: tuple[int, ...], out_dim: int,
                 out_gain: float, one_hot: bool, generator: torch.Generator, fp32_out: bool = False):
        super().__init__()
        self.groups, self.n_agents, self.fp32_out = groups, n_agents, fp32_out
        sizes = [in_dim, *hidden, out_dim]
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        extra = n_agents if one_hot else 0
        emb = None
        for k, (i, o) in enumerate(zip(sizes[:-1], sizes[1:])):
            gain = out_gain if k == len(sizes) - 2 else math.sqrt(2.0)
            w = torch.empty(groups, i + (extra if k == 0 else 0), o)
            for g in range(groups):  # SB3-style orthogonal init, per group
                t = torch.empty(o, w.shape[1])
                nn.init.orthogonal_(t, gain=gain, generator=generator)
                w[g] = t.T
            if k == 0 and extra:
                emb = w[0, i:].clone()  # (N, H): the one-hot rows
                w = w[:, :i]
            self.weights.append(nn.Parameter(w.contiguous()))
            self.biases.append(nn.Parameter(torch.zeros(groups, 1, o)))
        self.emb = nn.Parameter(emb) if emb is not None else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # tanh(z) = 2 sigmoid(2z) - 1: torch's sigmoid is ~4x faster than its tanh on CPU. Each layer
        # computes 2z directly and the affine "2s - 1" is folded into the next layer:
        # (2s - 1) W + b = s (2W) + (b - 1'W). Same function of the same parameters as a tanh MLP. The
        # scale factors go on the small weights, not on baddbmm's alpha/beta (whose backward would add
        # passes over the big activations).
        g, n = self.groups, self.n_agents
        nx, b, d = x.shape
        w, bias = self.weights[0], self.biases[0]
        if self.emb is not None:  # one-hot rows: per-agent bias, broadcast over a common input
            u = torch.bmm(x.reshape(1, nx * b, d), w * 2.0).view(nx, b, -1)  # g == 1
            z2 = torch.add(((bias + self.emb.unsqueeze(1)) * 2.0).to(u.dtype), u)  # bf16 under autocast
        elif g == 1:
            z2 = torch.baddbmm(bias * 2.0, x.reshape(1, nx * b, d), w * 2.0).view(nx, b, -1)
            if nx != n:
                z2 = z2.expand(n, b, z2.shape[2])
        else:
            z2 = torch.baddbmm(bias * 2.0, x.expand(g, b, d) if nx == 1 else x, w * 2.0)
        s = torch.sigmoid(z2.reshape(g, (n // g) * b, z2.shape[2]))
        last = len(self.weights) - 1
        for k in range(1, last + 1):
            w = self.weights[k]
            bk = self.biases[k] - w.sum(1, keepdim=True)
            if k < last:
                s = torch.sigmoid(torch.baddbmm(bk * 2.0, s, w * 4.0))
            elif self.fp32_out:  # under bf16 autocast, an output layer kept in fp32 (the critic's values)
                with full_precision():
                    s = torch.baddbmm(bk, s.float(), w * 2.0)
            else:
                s = torch.baddbmm(bk, s, w * 2.0).float()
        return s.view(n, b, -1)

    def reference_forward(self, x: torch.Tensor) -> torch.Tensor:
        """The same network written plainly (one-hot concatenated, torch.tanh); for tests."""
        n = self.n_agents
        x = x.expand(n, *x.shape[1:]) if x.shape[0] == 1 else x
        h = x
        for k, (w, bias) in enumerate(zip(self.weights, self.biases)):
            w = w.expand(n, *w.shape[1:]) if self.groups == 1 else w
            z = torch.bmm(h, w) + bias
            if k == 0 and self.emb is not None:
                onehot = torch.eye(n).unsqueeze(1).expand(n, x.shape[1], n)
                z = z + torch.bmm(onehot, self.emb.unsqueeze(0).expand(n, *self.emb.shape))
            h = torch.tanh(z) if k < len(self.weights) - 1 else z
        return h


class ActorCritic(nn.Module):
    """Actor (a head for the action distribution ``cfg.action_dist``; the Gaussians add a
    state-independent log-std) and critic for N agents; see module doc."""

    def __init__(self, n_agents: int, obs_dim: int, state_dim: int, act_dim: int, cfg: VectorPPOConfig,
                 generator: torch.Generator, hour_cols: tuple[int, int] | None = None):
        super().__init__()
        g = n_agents if cfg.mode == "independent" else 1
        one_hot = cfg.agent_id and g == 1
        self.n_agents, self.obs_dim, self.state_dim, self.act_dim = n_agents, obs_dim, state_dim, act_dim
        self.hour_cols = tuple(hour_cols) if hour_cols is not None else None  # (hour_sin, hour_cos) columns
        extra = HOURS if self.hour_cols is not None else 0
        if cfg.critic not in ("local", "central"):
            raise ValueError(f"critic: the network needs 'local' or 'central', got {cfg.critic!r} (resolve_critic)")
        self.central = cfg.critic == "central"
        self.dist = make_dist(cfg.action_dist, act_dim, cfg.action_bins)
        self.actor = GroupMLP(g, n_agents, obs_dim + extra, cfg.net_arch, self.dist.head_dim, 0.01, one_hot, generator)
        self.log_std = (nn.Parameter(torch.full((g, 1, act_dim), float(cfg.log_std_init)))
                        if self.dist.has_log_std else None)
        if self.central:  # V(state, one-hot); per-agent weights carry the identity in independent mode
            self.critic = GroupMLP(g, n_agents, state_dim + extra, cfg.net_arch, 1, 1.0, g == 1, generator,
                                   fp32_out=True)
        else:
            self.critic = GroupMLP(g, n_agents, obs_dim + extra, cfg.net_arch, 1, 1.0, one_hot, generator,
                                   fp32_out=True)

    def _hour(self, obs: torch.Tensor) -> torch.Tensor:
        """``obs (..., F)`` -> ``(..., 24)`` one-hot of the hour of day (the bin the hour falls in)."""
        i, j = self.hour_cols
        hour = torch.atan2(obs[..., i], obs[..., j]) * (HOURS / (2.0 * math.pi))
        k = torch.floor(torch.remainder(hour + 1e-3, float(HOURS))).long().clamp_(0, HOURS - 1)
        return nn.functional.one_hot(k, HOURS).to(obs.dtype)

    def features(self, obs: torch.Tensor) -> torch.Tensor:
        """The networks' input ``(N, B, F')``: ``obs (N, B, F)``, with the hour one-hot appended where the model
        has it. The ``*_from`` methods take it, so a caller that needs both heads computes it once."""
        return obs if self.hour_cols is None else torch.cat([obs, self._hour(obs)], -1)

    def head_from(self, feats: torch.Tensor) -> torch.Tensor:
        """Actor output ``(N, B, H)`` for the action distribution, from ``features(obs)``."""
        return self.actor(feats)

    def head(self, obs: torch.Tensor) -> torch.Tensor:
        """Actor output ``(N, B, H)`` for the action distribution."""
        return self.actor(self.features(obs))

    def value_from(self, feats: torch.Tensor, state: torch.Tensor | None) -> torch.Tensor:
        """``feats (N, B, F')`` (``features(obs)``), ``state (B, S)`` -> ``(N, B)``."""
        if not self.central:
            return self.critic(feats)[..., 0]
        x = state if self.hour_cols is None else torch.cat([state, feats[0, :, self.obs_dim:]], -1)
        return self.critic(x.unsqueeze(0))[..., 0]

    def value(self, obs: torch.Tensor, state: torch.Tensor | None) -> torch.Tensor:
        """``obs (N, B, F)``, ``state (B, S)`` -> ``(N, B)``."""
        return self.value_from(self.features(obs), state)

    def sample_from(self, feats: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """``feats (N, B, F')`` (``features(obs)``) -> (stored action ``(N, B, A)``, log-probability ``(N, B)``)."""
        return self.dist.sample(self.actor(feats), self.log_std, generator)

    def sample(self, obs: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """``obs (N, B, F)`` -> (stored action ``(N, B, A)``, log-probability ``(N, B)``)."""
        return self.sample_from(self.features(obs), generator)

    def log_prob_entropy(self, head: torch.Tensor, stored: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(log-probability (N, B) of stored actions, mean entropy per agent and sample (nats))`` under the actor
        head ``(N, B, H)``, in one pass where the distribution shares the work."""
        return self.dist.log_prob_entropy(head, self.log_std, stored)

    def env_action(self, stored: torch.Tensor) -> torch.Tensor:
        """Stored actions -> env actions in [-1, 1]."""
        return self.dist.env_action(stored)

    def mode(self, obs: torch.Tensor) -> torch.Tensor:
        """Deterministic action ``(N, B, A)`` in [-1, 1]."""
        return self.dist.mode(self.head(obs))

    def spread(self) -> float:
        """Exploration summary for the logs: the Gaussians' mean std, NaN for the categorical."""
        return float(self.log_std.detach().exp().mean()) if self.log_std is not None else float("nan")


def compute_gae(rewards: torch.Tensor, values: torch.Tensor, last_values: torch.Tensor, dones: torch.Tensor,
                final_values: torch.Tensor, terminations: torch.Tensor, gamma: float,
                lam: float) -> tuple[torch.Tensor, torch.Tensor]:
    """GAE(lambda) over the leading step axis; returns ``(advantages, returns)``.

    ``rewards``, ``values`` (V(s_t)), ``dones`` (the episode ended at step t), ``final_values``
    (V(final obs of the episode) at ending steps) and ``terminations``: ``(T, ...)``; ``last_values``:
    V(obs after the last step), ``(...)``. The next-state value of step t is ``values[t + 1]`` (or
    ``last_values``), at an ending step ``final_values[t]`` after a truncation and 0 after a
    termination; the advantage recursion stops at every ending step (SAME_STEP autoreset: the obs
    after it already belongs to the next episode).
    """
    T = rewards.shape[0]
    nxt = torch.cat([values[1:], last_values.unsqueeze(0)], 0)
    nxt = torch.where(dones, final_values, nxt) * (~terminations)
    deltas = rewards + gamma * nxt - values
    carry = (~dones).to(values.dtype) * (gamma * lam)
    adv = torch.empty_like(values)
    a = torch.zeros_like(last_values)
    for t in range(T - 1, -1, -1):
        a = deltas[t] + carry[t] * a
        adv[t] = a
    return adv, adv + values


# -- policy for evaluation --------------------------------------------------------------------------
class VectorPolicy:
    """A trained vector-PPO policy: ``act(obs (E, N, F) or (N, F))`` -> actions in [-1, 1];
    ``joint()`` is a joint policy for the single PettingZoo env (``p2penv.agents.rollout``)."""

    def __init__(self, model: ActorCritic, agent_names: list[str], config: VectorPPOConfig):
        self.model, self.agent_names, self.config = model.eval(), list(agent_names), config

    def act(self, obs, deterministic: bool = True, generator: torch.Generator | None = None,
            point: str | None = None) -> np.ndarray:
        """Actions in [-1, 1]: with ``deterministic`` the distribution's ``point`` (``"mode"`` or
        ``"mean"``; default ``config.eval_point``), else a draw from it."""
        x = torch.as_tensor(np.asarray(obs, dtype=np.float32))
        single = x.dim() == 2
        if single:
            x = x.unsqueeze(0)
        with torch.no_grad():
            xt = x.transpose(0, 1)
            if deterministic:
                pt = point or self.config.eval_point
                check_choice("point", pt, EVAL_POINTS)
                act = self.model.mode(xt) if pt == "mode" else self.model.dist.mean(self.model.head(xt))
            else:
                act = self.model.env_action(self.model.sample(xt, generator)[0])  # None: torch's global RNG
            a = act.transpose(0, 1).contiguous().numpy()
        return a[0] if single else a

    def act_vector(self, obs: np.ndarray) -> np.ndarray:
        """``(E, N, F)`` observations of the agents this policy was trained for -> ``(E, N, A)`` deterministic
        actions (the frozen-profile interface of ``train_vector_ppo``'s ``others``)."""
        return self.act(obs, deterministic=True)

    def joint(self, others: Any = None) -> "JointVectorPolicy":
        """Joint policy for the single env; ``others`` (an agent with ``act_batch``/``act``) acts for the
        agents this policy was not trained for (required when there are such agents)."""
        return JointVectorPolicy(self, others)

    @classmethod
    def load(cls, path: str | Path) -> "VectorPolicy":
        """From ``model.pt`` (or a folder holding it)."""
        path = Path(path)
        if path.is_dir():
            path = path / "model.pt"
        ck = torch.load(path, map_location="cpu", weights_only=True)
        cfg = VectorPPOConfig.from_dict(ck["config"])
        m = ck["meta"]
        model = ActorCritic(m["n_agents"], m["obs_dim"], m["state_dim"], m["act_dim"], cfg, torch.Generator(),
                            m.get("hour_cols"))
        model.load_state_dict(ck["model"])
        return cls(model, m["agent_names"], cfg)


class JointVectorPolicy:
    """Adapter: ``policy(env, obs: dict) -> actions: dict`` for the single env (one market, E = 1);
    agents outside ``policy.agent_names`` act with ``others`` (see ``VectorPolicy.joint``)."""

    def __init__(self, policy: VectorPolicy, others: Any = None):
        self.policy, self.others = policy, others

    def __call__(self, env, obs: dict) -> dict:
        names = self.policy.agent_names
        rows = []
        for a in names:
            if a in obs:
                rows.append(np.asarray(obs[a], dtype=np.float32))
            else:  # agent gone (not in the fixed-length markets); its action is not returned
                rows.append(np.zeros_like(next(iter(obs.values())), dtype=np.float32))
        acts = self.policy.act(np.stack(rows))
        out = {a: acts[i] for i, a in enumerate(names) if a in obs}
        rest = [a for a in obs if a not in out]
        if rest:
            if self.others is None:
                raise ValueError(f"joint policy: no policy for agents {rest} (pass others= to VectorPolicy.joint)")
            k = acts.shape[1]
            o = np.stack([np.asarray(obs[a], dtype=np.float32) for a in rest])
            ra = _act_batch(self.others, o)
            out.update({a: _pad(ra[i], k) for i, a in enumerate(rest)})
        return out


def _act_batch(agent: Any, obs: np.ndarray) -> np.ndarray:
    """``(k, F)`` observations -> ``(k, A')`` actions of a baseline agent (``act_batch`` or ``act``)."""
    if hasattr(agent, "act_batch"):
        return np.asarray(agent.act_batch(obs), dtype=np.float32)
    return np.stack([np.asarray(agent.act(o), dtype=np.float32) for o in obs])


def _pad(a: np.ndarray, k: int) -> np.ndarray:
    """Actions of agents written for (price, dispatch) leave a battery idle: zero-pad to ``k`` components."""
    a = np.asarray(a, dtype=np.float32)
    if a.shape[-1] >= k:
        return a[..., :k]
    return np.concatenate([a, np.zeros(a.shape[:-1] + (k - a.shape[-1],), np.float32)], -1)


# -- training ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TrainResult:
    """As ``p2penv.agents.sb3_shared.TrainResult`` plus the time split of this call (seconds): ``env_s`` env
    stepping, ``forward_s`` policy forward in the rollouts (incl. buffer writes), ``update_s`` GAE +
    PPO epochs; ``last`` the last progress row."""

    policy: Any
    num_timesteps: int
    wall_s: float
    out_dir: Path | None
    steps_per_s: float = field(default=float("nan"))
    env_s: float = 0.0
    forward_s: float = 0.0
    update_s: float = 0.0
    updates: int = 0
    last: dict = field(default_factory=dict)
    curve: list = field(default_factory=list)  # [{"agent_steps": ..., **evaluator values}] (learning curve)
    precision: str = "fp32"  # the matmul precision it trained in ("auto" resolved: p2penv.agents.precision)
    torch_threads: int | None = None  # the thread count it set (None: torch's own)


def _read_progress(path: Path, upto: int) -> list[dict]:
    if not path.exists():
        return []
    with open(path, newline="") as f:
        return [r for r in csv.DictReader(f) if int(r["agent_steps"]) <= upto]


def _csv_text(rows: list[dict]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, PROGRESS_FIELDS, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def _fmt(row: dict) -> dict:
    return {k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()}


def hour_columns(vec: Any) -> tuple[int, int] | None:
    """Columns of ``hour_sin`` and ``hour_cos`` in the observation of a p2penv vector env (its core's
    ``observation_names``); None for an env without them."""
    names = tuple(getattr(getattr(vec, "core", None), "observation_names", ()))
    if "hour_sin" in names and "hour_cos" in names:
        return names.index("hour_sin"), names.index("hour_cos")
    return None


def steps_linked(vec: Any, learners: np.ndarray | None = None) -> bool:
    """Whether an agent's action can change its later rewards in this vector env (after ``reset``): a
    battery (SOC), or a ramp limit that can bind (``ramp_kw`` below the agent's largest capacity). Where
    no learner has either, every step is an independent stage game and the right discount is 0.
    Envs that do not expose their fleet count as linked."""
    core = getattr(vec, "core", None)
    fleet = getattr(core, "fleet", None)
    if fleet is None:
        return True
    if core.max_cycles == 1:
        return False
    if core.has_storage:
        return True
    return _ramp_binds(fleet, learners)


def _ramp_binds(fleet, learners) -> bool:
    p_max = np.asarray(fleet.p_max_kw)  # (E, T, N)
    ramp = np.broadcast_to(np.asarray(fleet.ramp_kw), (p_max.shape[0], p_max.shape[-1]))  # (E, N)
    binds = ramp < p_max.max(axis=1)
    return bool((binds if learners is None else binds[:, learners]).any())


class ReturnNormalizer:
    """Running variance of each learner's discounted return (SB3's VecNormalize reward scaling): rewards
    are divided by its standard deviation before GAE. State is a plain dict (saved in model.pt)."""

    def __init__(self, n_agents: int, num_envs: int, gamma: float):
        self.gamma = gamma
        self.ret = np.zeros((num_envs, n_agents))
        self.mean = np.zeros(n_agents)
        self.var = np.ones(n_agents)
        self.count = 1e-4

    def observe(self, rew: np.ndarray, done: np.ndarray) -> None:
        """One step's rewards ``(E, N)`` and episode ends."""
        self.ret = self.ret * self.gamma + rew
        b_mean, b_var, b_n = self.ret.mean(0), self.ret.var(0), self.ret.shape[0]
        delta, tot = b_mean - self.mean, self.count + b_n
        self.mean = self.mean + delta * b_n / tot
        self.var = (self.var * self.count + b_var * b_n + delta ** 2 * self.count * b_n / tot) / tot
        self.count = tot
        self.ret[done] = 0.0

    def inverse_std(self) -> torch.Tensor:
        """``(N,)`` float32 factor, broadcast over ``(T, E, N)`` rewards."""
        return torch.from_numpy(1.0 / np.sqrt(self.var + 1e-8)).float()

    def state(self) -> dict:
        return dict(ret=self.ret.tolist(), mean=self.mean.tolist(), var=self.var.tolist(), count=self.count)

    def load_state(self, d: dict) -> None:
        self.ret, self.mean, self.var = (np.asarray(d[k], dtype=float) for k in ("ret", "mean", "var"))
        self.count = float(d["count"])


def resolve_critic(critic: str, mode: str, vec: Any) -> str:
    """``critic`` with ``"auto"`` resolved to the validated pair (docs/learner_validation.md): ``"central"``
    (MAPPO) in ``mode="shared"`` where the vector env has a global ``state()``, else ``"local"`` (independent
    actors were validated with local critics)."""
    check_choice("critic", critic, CRITICS)
    if critic != "auto":
        return critic
    return "central" if mode == "shared" and callable(getattr(vec, "state", None)) else "local"


class _Trainer:
    def __init__(self, env_fn, cfg: VectorPPOConfig, out: Path | None, resume: bool, others: Any = None):
        self.cfg, self.out, self.others = cfg, out, others
        self.threads = set_torch_threads(cfg.torch_threads)
        ck = None
        if resume and out is not None and (out / "model.pt").exists():
            ck = torch.load(out / "model.pt", map_location="cpu", weights_only=True)
        self.done = int(ck["num_timesteps"]) if ck else 0
        self.updates = int(ck["updates"]) if ck else 0
        self.vec = vec = env_fn(cfg.num_envs, cfg.seed)
        if cfg.critic == "auto":  # resolved once, so that the saved config says which critic it trained;
            # a resumed run keeps the critic it was trained with
            critic = (VectorPPOConfig.from_dict(ck["config"]).critic if ck is not None
                      else resolve_critic(cfg.critic, cfg.mode, vec))
            self.cfg = cfg = replace(cfg, critic=critic)
        mode = getattr(vec, "autoreset_mode", None)
        if mode is not None and getattr(mode, "value", mode) != "SameStep":
            raise ValueError(f"vector env: autoreset_mode must be SAME_STEP (final obs in infos), got {mode}")
        self.E = vec.num_envs
        everyone = list(vec.possible_agents)
        self.N_all = len(everyone)
        if cfg.learners is None:
            self.names, self.idx = everyone, None
        else:
            unknown = [a for a in cfg.learners if a not in everyone]
            if unknown:
                raise ValueError(f"learners: unknown agent(s) {unknown}; this env has {everyone}")
            self.names = list(cfg.learners)
            self.idx = np.array([everyone.index(a) for a in self.names])
            if len(self.names) == self.N_all and np.array_equal(self.idx, np.arange(self.N_all)):
                self.idx = None
            elif others is None:
                raise ValueError(f"others: agents {[a for a in everyone if a not in self.names]} do not learn; "
                                 "pass an agent (act_batch) that acts for them")
        self.N = len(self.names)
        self.F = int(vec.single_observation_space.shape[0])
        self.A = int(vec.single_action_space.shape[0])
        obs, _ = vec.reset(seed=cfg.seed + self.done)
        self.obs = obs
        self.S = int(vec.state().shape[1]) if cfg.critic == "central" else 0
        onehot = cfg.hour_onehot if cfg.hour_onehot is not None else steps_linked(vec, self.idx)
        hour_cols = hour_columns(vec) if onehot else None
        if onehot and hour_cols is None and cfg.hour_onehot:
            raise ValueError(f"hour_onehot: this env ({type(vec).__name__}) has no hour_sin/hour_cos observation")
        if ck is not None:  # the resumed model's inputs (a model.pt from before hour_onehot has none)
            hour_cols = ck["meta"].get("hour_cols")
        self.meta = dict(n_agents=self.N, obs_dim=self.F, state_dim=self.S, act_dim=self.A, agent_names=self.names,
                         env=type(vec).__name__, num_envs=self.E, hour_cols=hour_cols)
        if ck is not None:
            m = ck["meta"]
            if (m["n_agents"], m["obs_dim"], m["act_dim"]) != (self.N, self.F, self.A) \
                    or m["agent_names"] != self.names:
                raise ValueError(f"resume: model.pt was trained for agents {m['agent_names']}, obs size {m['obs_dim']}; "
                                 f"this run trains {self.names}, obs size {self.F}")
            saved = ck["config"]
            diff = [k for k in ("mode", "critic", "agent_id", "net_arch", "num_envs", "n_steps")
                    if saved.get(k) is not None and (tuple(saved[k]) if k == "net_arch" else saved[k])
                    != getattr(cfg, k)]
            if diff:
                raise ValueError(f"resume: model.pt was trained with different {', '.join(diff)} "
                                 f"({', '.join(f'{k}={saved[k]!r}' for k in diff)})")
        self.gen = torch.Generator().manual_seed(cfg.seed)
        self.model = ActorCritic(self.N, self.F, self.S, self.A, cfg, self.gen, hour_cols)
        self.params = list(self.model.parameters())
        try:
            self.opt = torch.optim.Adam(self.params, lr=cfg.learning_rate, eps=1e-5, fused=True)
        except (RuntimeError, TypeError):
            self.opt = torch.optim.Adam(self.params, lr=cfg.learning_rate, eps=1e-5, foreach=True)
        self.gamma = cfg.gamma if cfg.gamma is not None else (0.99 if steps_linked(vec, self.idx) else 0.0)
        self.precision = resolve_precision(cfg.precision)
        self.meta["precision"] = self.precision
        self.loss_fn = compiled_loss(self.loss) if cfg.compile else self.loss
        self.rew_norm = ReturnNormalizer(self.N, self.E, self.gamma) if cfg.normalize_reward else None
        if ck is not None:
            self.model.load_state_dict(ck["model"])
            self.opt.load_state_dict(ck["optimizer"])
            self.gen.set_state(ck["rng"])
            if self.rew_norm is not None and ck.get("reward_norm") is not None:
                self.rew_norm.load_state(ck["reward_norm"])
        T, E, N, F, A = cfg.n_steps, self.E, self.N, self.F, self.A
        f32 = torch.float32
        self.b_obs = torch.zeros(T, E, N, F, dtype=f32)
        self.b_state = torch.zeros(T, E, self.S, dtype=f32) if self.S else None
        self.b_act = torch.zeros(T, E, N, A, dtype=f32)
        self.b_logp = torch.zeros(T, E, N, dtype=f32)
        self.b_val = torch.zeros(T, E, N, dtype=f32)
        self.b_rew = torch.zeros(T, E, N, dtype=f32)
        self.b_done = torch.zeros(T, E, N, dtype=torch.bool)
        self.b_term = torch.zeros(T, E, N, dtype=torch.bool)
        self.b_final = torch.zeros(T, E, N, dtype=f32)
        self.price = np.zeros((T, E))
        self.welfare = np.zeros((T, E))
        self.ep_ret = np.zeros((E, N))
        self.env_s = self.fwd_s = self.upd_s = 0.0
        self.market_log = None  # p2penv.agents.market_log.MarketLog, set by train_vector_ppo when it writes files

    # rollout ---------------------------------------------------------------------------------------
    def _mine(self, x: np.ndarray) -> np.ndarray:
        """The learners' columns of an ``(E, N_all, ...)`` array."""
        return x if self.idx is None else x[:, self.idx]

    def _joint_action(self, obs: np.ndarray, learned: np.ndarray) -> np.ndarray:
        """``(E, N_all, A)`` env action: the learners' ``learned (E, N, A)``, the others' fixed agent."""
        if self.idx is None:
            return learned
        E, n, F = obs.shape
        if hasattr(self.others, "act_vector"):  # knows which agent each column is (e.g. a frozen profile)
            full = _pad(np.asarray(self.others.act_vector(obs), dtype=np.float32), self.A).copy()
        else:  # one agent for everybody, from the observation alone (e.g. TruthfulAgent)
            full = _pad(_act_batch(self.others, obs.reshape(E * n, F)), self.A).reshape(E, n, self.A)
        full[:, self.idx] = learned
        return full

    def _state_t(self):
        return torch.from_numpy(np.ascontiguousarray(self.vec.state(), dtype=np.float32)) if self.S else None

    def rollout(self) -> tuple[float, float, float]:
        cfg, vec, m = self.cfg, self.vec, self.model
        pc = time.perf_counter
        ret_sum, ret_n = 0.0, 0
        obs = self.obs
        with torch.no_grad(), autocast(self.precision):
            for t in range(cfg.n_steps):
                t0 = pc()
                self.b_obs[t].copy_(torch.from_numpy(self._mine(obs)))
                x = self.b_obs[t].transpose(0, 1)  # (N, E, F) view, float32
                st = self._state_t()
                if st is not None:
                    self.b_state[t].copy_(st)
                fx = m.features(x)  # once for both networks
                stored, logp = m.sample_from(fx, self.gen)  # (N, E, A), (N, E)
                self.b_act[t].copy_(stored.transpose(0, 1))
                self.b_logp[t].copy_(logp.transpose(0, 1))
                self.b_val[t].copy_(m.value_from(fx, st).transpose(0, 1))
                a_env = self._joint_action(obs, m.env_action(self.b_act[t]).numpy())
                t1 = pc()
                obs, rew, term, trunc, infos = vec.step(a_env)
                t2 = pc()
                rew, term, trunc = self._mine(rew), self._mine(term), self._mine(trunc)
                self.b_rew[t].copy_(torch.from_numpy(rew))
                done = term | trunc
                if self.rew_norm is not None:
                    self.rew_norm.observe(rew, done)
                self.b_done[t].copy_(torch.from_numpy(done))
                self.b_term[t].copy_(torch.from_numpy(term))
                mk = infos.get("market")
                if self.market_log is not None and mk is not None:
                    self.market_log.add_step(rew, done, mk)
                if mk is not None:
                    self.price[t] = mk["clearing_price"]
                    self.welfare[t] = mk["welfare"]
                self.ep_ret += rew
                if "final_obs" in infos:
                    fo = torch.from_numpy(np.ascontiguousarray(self._mine(infos["final_obs"]), dtype=np.float32))
                    fs = (torch.from_numpy(np.ascontiguousarray(infos["final_state"], dtype=np.float32))
                          if self.S else None)
                    self.b_final[t].copy_(m.value(fo.transpose(0, 1), fs).transpose(0, 1))
                if done.any():
                    if "final_obs" not in infos:
                        raise RuntimeError("vector env: an episode ended without infos['final_obs'] "
                                           "(needs SAME_STEP autoreset)")
                    ret_sum += float(self.ep_ret[done].sum())
                    ret_n += int(done.sum())
                    self.ep_ret[done] = 0.0
                t3 = pc()
                self.env_s += t2 - t1
                self.fwd_s += (t1 - t0) + (t3 - t2)
            t0 = pc()
            ob = torch.from_numpy(np.ascontiguousarray(self._mine(obs), dtype=np.float32))
            self.last_val = m.value(ob.transpose(0, 1), self._state_t()).transpose(0, 1).clone()
            self.fwd_s += pc() - t0
        self.obs = obs
        with np.errstate(all="ignore"):
            price = float(np.nanmean(self.price)) if np.isfinite(self.price).any() else float("nan")
        return (ret_sum / ret_n if ret_n else float("nan")), price, float(np.mean(self.welfare))

    # update ----------------------------------------------------------------------------------------
    def update(self) -> dict:
        cfg, m = self.cfg, self.model
        T, E, N = cfg.n_steps, self.E, self.N
        R = T * E
        rew = self.b_rew * cfg.reward_scale if cfg.reward_scale != 1.0 else self.b_rew
        if self.rew_norm is not None:
            rew = rew * self.rew_norm.inverse_std()
        frac = min(self.done / cfg.total_steps, 1.0)  # share of the budget spent before this update
        lr = cfg.learning_rate * (1.0 - frac if cfg.lr_schedule == "linear" else 1.0)
        for group in self.opt.param_groups:
            group["lr"] = lr
        ent_c = cfg.ent_coef if cfg.ent_coef_final is None else cfg.ent_coef + (cfg.ent_coef_final - cfg.ent_coef) * frac
        with torch.no_grad():
            adv, ret = compute_gae(rew, self.b_val, self.last_val, self.b_done, self.b_final, self.b_term,
                                   self.gamma, cfg.gae_lambda)

        def agent_major(b):  # (T, E, N, ...) -> (N, T*E, ...) contiguous
            return b.reshape(R, N, *b.shape[3:]).transpose(0, 1).contiguous()

        obs, act, logp0, adv, ret = (agent_major(b) for b in (self.b_obs, self.b_act, self.b_logp, adv, ret))
        obs = m.features(obs)  # the networks' input, once per update (not per epoch and minibatch)
        if self.precision == "bf16":  # cast once here, not by autocast at every first layer (same values)
            obs = obs.to(torch.bfloat16)
        state = self.b_state.reshape(R, self.S) if self.S else None
        mb = cfg.minibatch_size if cfg.minibatch_size is not None else max(256, -(-R * N // 4))
        rows_mb = min(R, -(-mb // N))  # rows (env steps) per minibatch, all agents each
        n_mb = max(1, R // rows_mb)
        ent_t = torch.tensor(ent_c)  # a tensor: a compiled loss is not specialised (recompiled) on its value
        stats = torch.zeros(6)
        for _ in range(cfg.epochs):
            perm = torch.randperm(R, generator=self.gen)
            for idx in torch.tensor_split(perm, n_mb):
                loss, st = self.loss_fn(obs.index_select(1, idx), act.index_select(1, idx), logp0.index_select(1, idx),
                                        adv.index_select(1, idx), ret.index_select(1, idx),
                                        state.index_select(0, idx) if state is not None else None, ent_t)
                self.opt.zero_grad(set_to_none=True)
                loss.backward()
                nn.utils.clip_grad_norm_(self.params, cfg.max_grad_norm, foreach=True)
                self.opt.step()
                stats += st.detach()
        s = (stats / (cfg.epochs * n_mb)).tolist()
        return dict(policy_loss=s[0], value_loss=s[1], entropy=s[2], approx_kl=s[3], clip_frac=s[4], loss=s[5],
                    std=m.spread())

    def loss(self, o: torch.Tensor, act: torch.Tensor, logp0: torch.Tensor, adv: torch.Tensor, ret: torch.Tensor,
             state: torch.Tensor | None, ent_c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The PPO loss of one minibatch (agent-major ``(N, B, ...)``; ``state (B, S)`` or None) and its
        statistics ``[policy loss, value loss, entropy, approx. KL, clip fraction, loss]``."""
        m, clip = self.model, self.cfg.clip_range
        adv = (adv - adv.mean()) / (adv.std() + 1e-8)
        with autocast(self.precision):  # the networks' hidden layers; their outputs are fp32
            head = m.head_from(o)
            v = m.value_from(o, state)
        lp, ent = m.log_prob_entropy(head, act)
        log_ratio = lp - logp0
        ratio = torch.exp(log_ratio)
        pg = -torch.min(ratio * adv, ratio.clamp(1.0 - clip, 1.0 + clip) * adv).mean()
        v_loss = (ret - v).pow(2).mean()
        loss = pg + self.cfg.vf_coef * v_loss - ent_c * ent
        with torch.no_grad():
            st = torch.stack([pg, v_loss, ent, ((ratio - 1) - log_ratio).mean(),
                              ((ratio - 1).abs() > clip).float().mean(), loss])
        return loss, st

    # checkpoint ------------------------------------------------------------------------------------
    def save(self, finished: bool = False) -> None:
        ck = dict(model=self.model.state_dict(), optimizer=self.opt.state_dict(), config=asdict(self.cfg),
                  num_timesteps=self.done, updates=self.updates, rng=self.gen.get_state(), meta=self.meta,
                  finished=finished, reward_norm=None if self.rew_norm is None else self.rew_norm.state())
        atomic_save_with(self.out / "model.pt", lambda f: torch.save(ck, f))


def compiled_loss(fn: Callable) -> Callable:
    """``torch.compile(fn)`` (static shapes), raising a clear error if compilation fails at its first call."""
    compiled = torch.compile(fn, dynamic=False)
    first = True

    def call(*args):
        nonlocal first
        if not first:
            return compiled(*args)
        try:
            out = compiled(*args)
        except Exception as e:  # inductor's errors come from deep inside (a missing compiler, headers)
            raise RuntimeError(f"compile: torch.compile of the PPO loss failed ({type(e).__name__}: "
                               f"{str(e).splitlines()[0] if str(e) else ''}); it needs a working C++ compiler "
                               "(g++ or clang++); train with compile=False") from e
        first = False
        return out

    return call


def train_vector_ppo(env_fn: Callable[[int, int], Any], config: VectorPPOConfig, out_dir: str | Path | None = None,
                     resume: bool = False, others: Any = None,
                     evaluator: Callable[["VectorPolicy"], dict] | None = None) -> TrainResult:
    """Train on ``env_fn(num_envs, seed)`` (a vector env) for ``config.total_steps`` agent-steps; see module doc.

    ``others``: the fixed agent acting for the agents outside ``config.learners``: either
    ``act_vector(obs (E, N_all, F)) -> (E, N_all, A')`` (a frozen joint profile that knows each column's
    agent; the learners' columns are overwritten) or one agent for everybody with
    ``act_batch(obs (k, F)) -> (k, A')`` (e.g. ``TruthfulAgent``). ``evaluator(policy) -> {"nash_conv": $/step,
    "markup_rel": ...}`` runs every ``config.eval_every`` updates (and after the last one); its values fill
    those progress columns (the learning curve, also in ``TrainResult.curve``).
    """
    out = Path(out_dir) if out_dir is not None else None
    tr = _Trainer(env_fn, config, out, resume, others)
    cfg = tr.cfg  # with critic="auto" resolved
    per_update = cfg.n_steps * tr.E * tr.N
    n_updates = max(0, -(-(cfg.total_steps - tr.done) // per_update))
    start = tr.done
    rows: list[dict] = []
    csv_path = out / "progress.csv" if out is not None else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        rows = _read_progress(csv_path, tr.done) if resume else []
        atomic_write_text(csv_path, _csv_text(rows))
    if out is not None:
        from .market_log import MarketLog, agent_groups

        tr.market_log = MarketLog(out, agent_groups(tr.vec, tr.names), tensorboard=cfg.tensorboard,
                                  nash_conv_every=cfg.eval_every if evaluator is not None else 0,
                                  resume_step=tr.done if resume else None)
    writer = None
    if out is not None and cfg.tensorboard:
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(str(out / "tb"))
    bar = None
    if cfg.progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=start + n_updates * per_update, initial=start, unit="step", unit_scale=True,
                   dynamic_ncols=True)
    last_ck = tr.done
    last: dict = {}
    curve: list[dict] = []
    first_update = tr.updates
    t_start = time.perf_counter()
    try:
        for _ in range(n_updates):
            ep_ret, price, welfare = tr.rollout()
            t0 = time.perf_counter()
            st = tr.update()
            tr.upd_s += time.perf_counter() - t0
            tr.done += per_update
            tr.updates += 1
            last = dict(agent_steps=tr.done, updates=tr.updates, episode_return=ep_ret, clearing_price=price,
                        welfare=welfare, **{k: st[k] for k in PROGRESS_FIELDS[5:11]},
                        wall_s=time.perf_counter() - t_start, env_s=tr.env_s, forward_s=tr.fwd_s, update_s=tr.upd_s)
            last["loss"] = st["loss"]
            last.update({k: "" for k in EVAL_FIELDS})
            if evaluator is not None and cfg.eval_every and (tr.updates % cfg.eval_every == 0 or
                                                            tr.updates == first_update + n_updates):
                ev = evaluator(VectorPolicy(tr.model, tr.names, cfg))
                tr.model.train()
                last.update({k: float(ev[k]) for k in EVAL_FIELDS if k in ev})
                curve.append(dict(agent_steps=tr.done, **{k: float(v) for k, v in ev.items()}))
            if tr.market_log is not None:
                nc, mk = last["nash_conv"], last["markup_rel"]
                tr.market_log.end_update(tr.done, nash_conv=None if nc == "" else nc,
                                         markup_rel=None if mk == "" else mk)
            row = _fmt({k: last[k] for k in PROGRESS_FIELDS})
            rows.append(row)
            if csv_path is not None:
                with open(csv_path, "a", newline="") as f:
                    csv.DictWriter(f, PROGRESS_FIELDS, lineterminator="\n").writerow(row)
            if writer is not None:
                for k in PROGRESS_FIELDS[2:11]:
                    writer.add_scalar(f"vector_ppo/{k}", last[k], tr.done)
                writer.add_scalar("time/steps_per_s", (tr.done - start) / max(last["wall_s"], 1e-9), tr.done)
            if bar is not None:
                bar.update(per_update)
            if out is not None and cfg.checkpoint_every and tr.done - last_ck >= cfg.checkpoint_every:
                tr.save()
                atomic_write_text(csv_path, _csv_text(rows))
                last_ck = tr.done
    finally:
        if bar is not None:
            bar.close()
        if writer is not None:
            writer.close()
        if tr.market_log is not None:
            tr.market_log.close()
    wall = time.perf_counter() - t_start
    if out is not None:
        tr.save(finished=True)
        atomic_write_text(csv_path, _csv_text(rows))
    pol = VectorPolicy(tr.model, tr.names, cfg)
    n = tr.done - start
    return TrainResult(pol, tr.done, wall, out, n / wall if wall > 0 and n else float("nan"), tr.env_s, tr.fwd_s,
                       tr.upd_s, tr.updates, last, curve, tr.precision, tr.threads)


def vector_env_fn(module: str = "auction_v0", **kwargs) -> Callable[[int, int], Any]:
    """``env_fn(num_envs, seed)`` for ``train_vector_ppo``: ``p2penv.<module>.vector_env(num_envs, **kwargs)``
    (the trainer resets it with its seed)."""
    import importlib

    mod = importlib.import_module(f"p2penv.{module}")

    def make(num_envs: int, seed: int):
        return mod.vector_env(num_envs, **{"seed": seed, **kwargs})

    return make
