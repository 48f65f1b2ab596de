"""Native SB3 ``VecEnv`` over PettingZoo parallel envs: every learning agent is one sub-env slot.

``MarketVecEnv([env_fn] * k, learners=..., others=...)`` runs k env copies; the slots are
(copy, learner) pairs, so one SB3 model with parameter sharing acts for all learners at once.
Non-learning agents act through ``others`` (an agent with ``act_batch``, e.g. truthful buyers).
Agents whose observation sizes differ are padded with zeros to the largest size and get one extra
feature, ``own_size / max_size``, so one policy still reads them (``pad_obs`` decides; "auto" pads
only when sizes differ). All agents of one env truncate together (auction_v0, dlmp_v0), so a copy
is auto-reset as a whole and the SB3 convention (``terminal_observation``,
``TimeLimit.truncated``) holds per slot.

``supersuit_vec_env`` builds the SuperSuit alternative (``pettingzoo_env_to_vec_env_v1`` +
``concat_vec_envs_v1``) and ``adapter_steps_per_s`` times both.
"""
from __future__ import annotations

import time
from typing import Any, Callable, Sequence

import numpy as np
from gymnasium import spaces
from stable_baselines3.common.vec_env.base_vec_env import VecEnv

from p2penv.envs.auction_env import prefer_lean_infos


def padded_obs(obs: np.ndarray, max_dim: int) -> np.ndarray:
    """(d,) observation -> (max_dim + 1,): zero padding plus the size feature d / max_dim."""
    out = np.zeros(max_dim + 1, dtype=np.float32)
    out[: obs.shape[0]] = obs
    out[max_dim] = obs.shape[0] / max_dim
    return out


class MarketVecEnv(VecEnv):
    """SB3 VecEnv with one slot per (env copy, learning agent); see module docstring."""

    def __init__(self, env_fns: Sequence[Callable[[], Any]], learners: Sequence[str] | None = None,
                 others: Any = None, pad_obs: bool | str = "auto"):
        self.envs = [prefer_lean_infos(fn()) for fn in env_fns]  # SB3 callbacks read only infos[a]["market"]
        if not self.envs:
            raise ValueError("env_fns: need at least one environment")
        e0 = self.envs[0]
        self.names = list(e0.possible_agents)
        self.learners = list(learners) if learners is not None else self.names
        bad = [a for a in self.learners if a not in self.names]
        if bad:
            raise ValueError(f"learners: unknown agents {bad}; known {self.names}")
        self.fixed = [a for a in self.names if a not in self.learners]
        if self.fixed and others is None:
            raise ValueError("others: non-learning agents need a fixed agent (e.g. TruthfulAgent)")
        self.others = others
        dims = [e0.observation_space(a).shape[0] for a in self.learners]
        self.max_dim = max(dims)
        self.pad = (len(set(dims)) > 1) if pad_obs == "auto" else bool(pad_obs)
        d = self.max_dim + 1 if self.pad else self.max_dim
        obs_space = spaces.Box(-1.0, 1.0, (d,), np.float32)
        act_space = e0.action_space(self.learners[0])
        self.n_learners = len(self.learners)
        super().__init__(len(self.envs) * self.n_learners, obs_space, act_space)
        self._obs = [None] * len(self.envs)  # per copy: dict of current observations
        self._actions = None

    # -- helpers ----------------------------------------------------------------------------
    def _slot_obs(self, obs: dict) -> np.ndarray:
        if self.pad:
            return np.stack([padded_obs(np.asarray(obs[a], np.float32), self.max_dim) for a in self.learners])
        return np.stack([obs[a] for a in self.learners]).astype(np.float32)

    def _reset_copy(self, j: int) -> np.ndarray:
        seed = self._seeds[j * self.n_learners]
        obs, _ = self.envs[j].reset(seed=seed)
        self._obs[j] = obs
        return self._slot_obs(obs)

    # -- VecEnv API ---------------------------------------------------------------------------
    def reset(self):
        out = np.concatenate([self._reset_copy(j) for j in range(len(self.envs))])
        self._reset_seeds()
        self._reset_options()
        return out

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions)

    def step_wait(self):
        L = self.n_learners
        acts = self._actions.reshape(len(self.envs), L, -1)
        obs_out, rew_out, done_out, infos = [], [], [], []
        for j, env in enumerate(self.envs):
            cur = self._obs[j]
            act = {a: acts[j, k] for k, a in enumerate(self.learners)}
            if self.fixed:
                fa = self.others.act_batch(np.stack([cur[a] for a in self.fixed]))
                act.update({a: fa[k] for k, a in enumerate(self.fixed)})
            obs, rew, term, trunc, info = env.step(act)
            r = np.array([rew[a] for a in self.learners], dtype=np.float32)
            done = any(term.values()) or any(trunc.values()) or not env.agents
            slot_obs = self._slot_obs(obs)
            inf = [dict(info.get(a, {})) for a in self.learners]
            if done:
                for k, a in enumerate(self.learners):
                    inf[k]["terminal_observation"] = slot_obs[k]
                    inf[k]["TimeLimit.truncated"] = bool(trunc.get(a, False)) and not bool(term.get(a, False))
                slot_obs = self._reset_copy(j)
            else:
                self._obs[j] = obs
            obs_out.append(slot_obs)
            rew_out.append(r)
            done_out.append(np.full(L, done))
            infos.extend(inf)
        return np.concatenate(obs_out), np.concatenate(rew_out), np.concatenate(done_out), infos

    def close(self) -> None:
        for e in self.envs:
            e.close()

    def _copies(self, indices) -> list[int]:
        return sorted({i // self.n_learners for i in self._get_indices(indices)})

    def get_attr(self, attr_name: str, indices=None) -> list[Any]:
        return [getattr(self.envs[i // self.n_learners], attr_name) for i in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices=None) -> None:
        for j in self._copies(indices):
            setattr(self.envs[j], attr_name, value)

    def env_method(self, method_name: str, *method_args, indices=None, **method_kwargs) -> list[Any]:
        return [getattr(self.envs[i // self.n_learners], method_name)(*method_args, **method_kwargs)
                for i in self._get_indices(indices)]

    def env_is_wrapped(self, wrapper_class, indices=None) -> list[bool]:
        return [False for _ in self._get_indices(indices)]


def supersuit_vec_env(env_fn: Callable[[], Any], n_copies: int):
    """SuperSuit route (all agents learn, equal spaces): pettingzoo_env_to_vec_env_v1 + concat."""
    import supersuit as ss

    v = ss.pettingzoo_env_to_vec_env_v1(env_fn())
    return ss.concat_vec_envs_v1(v, n_copies, num_cpus=0, base_class="stable_baselines3")


def adapter_steps_per_s(env_fn: Callable[[], Any], n_copies: int = 4, steps: int = 500,
                        seed: int = 0) -> dict[str, float]:
    """Agent-steps per second (random actions) of the native adapter and the SuperSuit one."""
    out = {}
    rng = np.random.default_rng(seed)
    for name, make in (("native", lambda: MarketVecEnv([env_fn] * n_copies)),
                       ("supersuit", lambda: supersuit_vec_env(env_fn, n_copies))):
        v = make()
        if name == "native":
            v.seed(seed)
            v.reset()
        else:
            v.reset()  # SB3VecEnvWrapper.reset(seed=...) fails: ConcatVecEnv has no seed()
        acts = rng.uniform(-1, 1, (steps, v.num_envs, 2)).astype(np.float32)
        t0 = time.perf_counter()
        for s in range(steps):
            v.step(acts[s])
        out[name] = steps * v.num_envs / (time.perf_counter() - t0)
        v.close()
    return out
