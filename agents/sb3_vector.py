"""SB3 ``VecEnv`` over one batched vector env: one SB3 slot per (market, learning agent) pair.

``SB3VectorEnv(auction_v0.vector_env(E, n_prosumers=N))`` exposes ``E * N`` slots to
Stable-Baselines3 (slot ``e * N + i`` is agent i of market e), so one model with parameter sharing
acts for every agent of every market, and each SB3 step is **one** call of the vector env on
``(E, N, 2)`` actions. Spaces are the vector env's single spaces.

=======================  ==========================================================================
``reset()``              ``(E * L, F)`` observations; market e is seeded ``_seeds[0] + e`` when
                         ``seed(s)`` (or a model's ``seed=``) was called before: the same seed gives
                         the same markets (SB3 seeds slot k with ``s + k``; the vector env takes one
                         base seed, so only slot 0's seed is used). Without a seed, markets continue
                         their generators.
``step``                 rewards ``(E * L,)`` float32, dones = terminations | truncations, per-slot
                         info dicts (empty except at episode ends)
episode end              every slot gets ``infos[k]["terminal_observation"]`` (from the vector env's
                         ``infos["final_obs"]``; the returned observation is already the next
                         episode's first), ``"TimeLimit.truncated"`` (episodes end by truncation) and
                         ``"episode": {"r", "l", "t"}`` as SB3's ``Monitor`` writes it, so
                         ``ep_rew_mean``/``ep_len_mean`` are logged without a wrapper
                         (``episode_info=False`` leaves that to ``VecMonitor``, which also works)
``last_infos``           the vector env's own infos of the last step (``(E, N)`` columns, market
                         columns): per-slot dicts carry none of them, to keep a step cheap
=======================  ==========================================================================

``learners=[names]`` gives SB3 only those agents (slots ``e * L + k``); the others act through
``others.act_vector(obs (E, N, F)) -> (E, N, A)`` where the agent has it (its fixed agents' columns are
used; e.g. ``p2penv.diagnostics.bayes_nash.BnePolicy``), else ``others.act_batch(obs (M, F)) -> (M, 2)``
(e.g. ``p2penv.agents.baselines.TruthfulAgent()``), one batched call per step, as in
``p2penv.agents.vec_adapter.MarketVecEnv``. Unlike that adapter, observation sizes are equal by construction
(one vector env, one config), so nothing is padded.

``get_attr``/``env_method``/``set_attr`` act on the one shared vector env (every slot returns the
same value; ``env_method`` calls the method once); ``set_attr`` on a strict subset of slots raises,
since the slots cannot differ. Only ``AutoresetMode.SAME_STEP`` vector envs are accepted.

Known SB3 cost: at every episode end PPO/A2C bootstrap each truncated slot with one forward pass per
slot (``OnPolicyAlgorithm.collect_rollouts`` loops over the slots), so with thousands of slots the
episode-end step costs far more than the env (see ``benchmarks/bench_vector.py``). With gamma = 0 (stage
games, one-step episodes) that bootstrap is multiplied by 0: ``bootstrap_truncated=False`` reports
truncations without ``TimeLimit.truncated``, so SB3 skips it (measured on one-step episodes, 512 slots:
predict_values took 3 of 10 s).

**The SuperSuit route and why this adapter exists.** SuperSuit's
``pettingzoo_env_to_vec_env_v1(parallel_env)`` + ``concat_vec_envs_v1(v, k, base_class=
"stable_baselines3")`` also gives an SB3 VecEnv with one slot per (copy, agent), but over k
*single* envs: every step runs k Python env steps and builds k PettingZoo dict sets, so throughput
is the single-env rate (see ``p2penv.agents.vec_adapter.adapter_steps_per_s``) whatever k is. Under SB3 2.9
it also cannot be seeded: ``SB3VecEnvWrapper.reset(seed=...)``/``seed()`` fail because
``ConcatVecEnv`` has no ``seed()`` (README, dependency section), and it cannot mix learning and
fixed agents. ``SB3VectorEnv`` steps all markets as arrays in one call, seeds through SB3's
``VecEnv.seed`` and supports fixed agents.

**Market logs**: ``model.learn(..., callback=market_log_callback(venv, out_dir))`` writes one row of
``p2penv.agents.market_log.MarketLog`` per rollout (``market_log.csv``, ``tb/market``), from
``last_infos["market"]`` (markup_rel is nan: the competitive price would cost one QP per market and
step), with the stage-game NashConv on a single-env evaluation episode every ``nash_conv_every`` rows.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
from gymnasium.vector import AutoresetMode
from stable_baselines3.common.vec_env.base_vec_env import VecEnv

__all__ = ["SB3VectorEnv", "make_sb3_vector_env", "market_log_callback"]


class SB3VectorEnv(VecEnv):
    """SB3 VecEnv with one slot per (market, learning agent) of a batched vector env."""

    def __init__(self, vector_env: Any, learners: Sequence[str] | None = None, others: Any = None,
                 episode_info: bool = True, bootstrap_truncated: bool = True):
        mode = getattr(vector_env, "autoreset_mode", None)
        if mode is not AutoresetMode.SAME_STEP:
            raise ValueError(f"vector_env: autoreset_mode must be SAME_STEP (got {mode!r}); SB3 expects the "
                             "next episode's first observation at the step that ends an episode")
        self.vector_env = vector_env
        self.names = list(vector_env.possible_agents)
        self.learners = list(learners) if learners is not None else self.names[:]
        bad = [a for a in self.learners if a not in self.names]
        if bad or not self.learners:
            raise ValueError(f"learners: unknown agents {bad} or none given; known {self.names}")
        if len(set(self.learners)) != len(self.learners):
            raise ValueError(f"learners: duplicate names in {self.learners}")
        self.fixed = [a for a in self.names if a not in self.learners]
        if self.fixed and others is None:
            raise ValueError("others: non-learning agents need a fixed agent with act_batch (e.g. TruthfulAgent)")
        self.others = others
        self.learner_idx = np.array([self.names.index(a) for a in self.learners])
        self.fixed_idx = np.array([self.names.index(a) for a in self.fixed], dtype=int)
        self._all_learn = not self.fixed and self.learners == self.names
        self.n_markets = int(vector_env.num_envs)
        self.n_learners = len(self.learners)
        self.episode_info = bool(episode_info)
        self.bootstrap_truncated = bool(bootstrap_truncated)
        super().__init__(self.n_markets * self.n_learners, vector_env.single_observation_space,
                         vector_env.single_action_space)
        self._obs: np.ndarray | None = None  # (E, N, F) current observations of all agents
        self._actions: np.ndarray | None = None
        self._ep_ret = np.zeros(self.num_envs)
        self._ep_len = np.zeros(self.num_envs, dtype=np.int64)
        self._t0 = time.time()
        self.last_infos: dict = {}

    # -- helpers ------------------------------------------------------------------------------
    def _slots(self, a: np.ndarray) -> np.ndarray:
        """(E, N, ...) -> (E * L, ...) learner slots."""
        if self._all_learn:
            return a.reshape(self.num_envs, *a.shape[2:])
        return a[:, self.learner_idx].reshape(self.num_envs, *a.shape[2:])

    def _fixed_actions(self, width: int) -> np.ndarray:
        """``(E, len(fixed), width)`` actions of the non-learners: ``others.act_vector(obs (E, N, F))``
        where the agent has it (it knows which agent each column is, e.g. a Bayes-Nash profile), else
        ``others.act_batch`` on the fixed agents' observations; missing action components are 0."""
        e = self.n_markets
        if hasattr(self.others, "act_vector"):
            fa = np.asarray(self.others.act_vector(self._obs))[:, self.fixed_idx]
        else:
            cur = self._obs[:, self.fixed_idx]
            fa = np.asarray(self.others.act_batch(cur.reshape(-1, cur.shape[-1]))).reshape(e, len(self.fixed), -1)
        out = np.zeros((e, len(self.fixed), width))
        k = min(width, fa.shape[-1])
        out[..., :k] = fa[..., :k]
        return out

    # -- VecEnv API ---------------------------------------------------------------------------
    def reset(self) -> np.ndarray:
        seed, options = self._seeds[0], self._options[0] or None
        obs, _ = self.vector_env.reset(seed=seed, options=options)
        self._reset_seeds()
        self._reset_options()
        self._obs = obs
        self._ep_ret[:] = 0.0
        self._ep_len[:] = 0
        self.reset_infos = [{} for _ in range(self.num_envs)]
        return self._slots(obs)

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions)

    def step_wait(self):
        if self._obs is None:
            raise RuntimeError("step() before reset(): call reset() first")
        e, n = self.n_markets, len(self.names)
        acts = self._actions.reshape(e, self.n_learners, -1)
        if not self._all_learn:
            full = np.empty((e, n, acts.shape[-1]), dtype=np.float64)
            full[:, self.learner_idx] = acts
            if self.fixed:
                full[:, self.fixed_idx] = self._fixed_actions(acts.shape[-1])
            acts = full
        obs, rew, term, trunc, vinfos = self.vector_env.step(acts)
        self._obs = obs
        self.last_infos = vinfos
        rewards = self._slots(rew).astype(np.float32)
        term_s, trunc_s = self._slots(term), self._slots(trunc)
        dones = term_s | trunc_s
        self._ep_ret += rewards
        self._ep_len += 1
        infos: list[dict] = [{} for _ in range(self.num_envs)]
        if dones.any():
            final = self._slots(vinfos["final_obs"]) if "final_obs" in vinfos else None
            limit = trunc_s & ~term_s & self.bootstrap_truncated
            now = round(time.time() - self._t0, 6)
            for k in np.flatnonzero(dones).tolist():
                inf = infos[k]
                if final is not None:
                    inf["terminal_observation"] = final[k]
                inf["TimeLimit.truncated"] = bool(limit[k])
                if self.episode_info:
                    inf["episode"] = {"r": float(self._ep_ret[k]), "l": int(self._ep_len[k]), "t": now}
            self._ep_ret[dones] = 0.0
            self._ep_len[dones] = 0
        return self._slots(obs), rewards, dones, infos

    def close(self) -> None:
        self.vector_env.close()

    def get_attr(self, attr_name: str, indices=None) -> list[Any]:
        idx = list(self._get_indices(indices))
        if attr_name == "render_mode" and not hasattr(self.vector_env, "render_mode"):
            value = None  # VecEnv.__init__ asks; the vector envs do not render
        else:
            value = getattr(self.vector_env, attr_name)
        return [value] * len(idx)

    def set_attr(self, attr_name: str, value: Any, indices=None) -> None:
        idx = list(self._get_indices(indices))
        if sorted(idx) != list(range(self.num_envs)):
            raise ValueError("set_attr: every slot shares one vector env; set an attribute for all slots "
                             "(indices=None)")
        setattr(self.vector_env, attr_name, value)

    def env_method(self, method_name: str, *method_args, indices=None, **method_kwargs) -> list[Any]:
        idx = list(self._get_indices(indices))
        result = getattr(self.vector_env, method_name)(*method_args, **method_kwargs)
        return [result] * len(idx)

    def env_is_wrapped(self, wrapper_class, indices=None) -> list[bool]:
        return [isinstance(self.vector_env, wrapper_class)] * len(list(self._get_indices(indices)))

    def __repr__(self) -> str:
        return (f"SB3VectorEnv({self.vector_env!r}, slots={self.num_envs}, "
                f"learners={self.n_learners}/{len(self.names)})")


_ENV_MODULES = {"auction_v0": "p2penv.auction_v0", "dlmp_v0": "p2penv.dlmp_v0"}


def make_sb3_vector_env(env_id_or_fn: str | Callable[..., Any] | Any, num_envs: int, seed: int | None = None, *,
                        learners: Sequence[str] | None = None, others: Any = None, episode_info: bool = True,
                        **config: Any) -> SB3VectorEnv:
    """``SB3VectorEnv`` over ``num_envs`` markets, seeded so the first ``reset()`` uses ``seed``.

    ``env_id_or_fn``: ``"auction_v0"``/``"dlmp_v0"``, the module itself (``p2penv.auction_v0``) or any
    callable ``(num_envs, **config) -> vector env``. ``config``: the env's options
    (``n_prosumers=10``, ``scenario="ieee33-base"``, ...).
    """
    if isinstance(env_id_or_fn, str):
        if env_id_or_fn not in _ENV_MODULES:
            raise ValueError(f"env_id_or_fn: unknown env {env_id_or_fn!r}; known {sorted(_ENV_MODULES)}")
        import importlib

        fn = importlib.import_module(_ENV_MODULES[env_id_or_fn]).vector_env
    elif hasattr(env_id_or_fn, "vector_env"):
        fn = env_id_or_fn.vector_env
    elif callable(env_id_or_fn):
        fn = env_id_or_fn
    else:
        raise ValueError(f"env_id_or_fn: expected an env id, a module with vector_env or a callable, "
                         f"got {env_id_or_fn!r}")
    if getattr(fn, "__module__", None) == "p2penv.auction_v0":  # the trainer reads only infos["market"]
        config = {"info_level": "lean", **config}
    venv = SB3VectorEnv(fn(num_envs, **config), learners=learners, others=others, episode_info=episode_info)
    if seed is not None:
        venv.seed(seed)
    return venv


def market_log_callback(venv: SB3VectorEnv, out_dir: str | Path, *, nash_conv_every: int = 0,
                        eval_env_fn: Callable[[], Any] | None = None, seed: int = 0, tensorboard: bool = False,
                        window: int | None = None, resume_step: int | None = None):
    """SB3 callback writing market metrics of training on ``venv`` to ``out_dir`` (see module doc).

    ``window``: None, one row per rollout (PPO/A2C); an int, one row per ``window`` env steps (SAC).
    ``nash_conv_every`` > 0 needs ``eval_env_fn``: a single auction_v0 parallel env of the same market
    (e.g. ``lambda: auction_v0.parallel_env(**config)``), played from ``reset(seed=seed)`` by the
    model's deterministic policy (fixed agents act through ``venv.others``). ``resume_step``: the
    agent-steps a resumed run starts from (keeps the rows up to there; None: a fresh log).
    """
    from .market_log import MarketLog, agent_groups, eval_nash_conv, supports_market_power
    from .rollout import Assigned
    from .sb3_shared import MarketLogCallback, SharedPolicy

    if not isinstance(venv, SB3VectorEnv):
        raise ValueError(f"venv: expected an SB3VectorEnv, got {type(venv).__name__}")
    nash_fn = None
    if nash_conv_every:
        if eval_env_fn is None:
            raise ValueError("eval_env_fn: nash_conv_every > 0 needs a single-env factory for the evaluation episode")
        eval_env = eval_env_fn()
        if not supports_market_power(eval_env):
            raise ValueError(f"eval_env_fn: stage-game NashConv is defined for auction_v0 only, got "
                             f"{eval_env.metadata.get('name')!r}")
        players = venv.learner_idx.tolist()

        def _nash(model) -> float:
            pol = SharedPolicy(model, type(model).__name__.lower(), False, venv.observation_space.shape[0])
            return eval_nash_conv(eval_env, Assigned({a: pol for a in venv.learners}, default=venv.others),
                                  seed=seed, players=players)

        nash_fn = _nash

    log = MarketLog(out_dir, agent_groups(venv.vector_env, venv.learners), tensorboard=tensorboard,
                    nash_conv_every=nash_conv_every, resume_step=resume_step)
    return MarketLogCallback(log, venv.n_learners, window=window, nash_fn=nash_fn, markup=False)
