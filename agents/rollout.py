"""Plain PettingZoo parallel loop for any mix of agents, with per-step records for diagnostics.

An *agent* has ``act(obs) -> action`` (and optionally ``act_batch(obs (k, d)) -> (k, 2)``).
A *joint policy* is ``policy(env, observations: dict) -> actions: dict`` (optional ``reset()``);
``assign`` turns a mapping agent-name -> agent (or one agent for everybody) into one.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

import numpy as np

JointPolicy = Callable[[Any, dict], dict]


class Assigned:
    """Joint policy from per-agent agents; agents shared by several names act in one batch call."""

    def __init__(self, agents: Mapping[str, Any] | Any, default: Any = None):
        self.agents = agents
        self.default = default

    def _agent_for(self, name: str):
        if isinstance(self.agents, Mapping):
            a = self.agents.get(name, self.default)
            if a is None:
                raise ValueError(f"agents: no agent given for {name!r} and no default")
            return a
        return self.agents

    def reset(self) -> None:
        seen = set()
        for name in list(self.agents.values()) if isinstance(self.agents, Mapping) else [self.agents]:
            if id(name) not in seen and hasattr(name, "reset"):
                name.reset()
            seen.add(id(name))

    def __call__(self, env, obs: dict) -> dict:
        groups: dict[int, tuple[Any, list[str]]] = {}
        for name in obs:
            ag = self._agent_for(name)
            groups.setdefault(id(ag), (ag, []))[1].append(name)
        out = {}
        for ag, names in groups.values():
            if hasattr(ag, "act_batch"):
                acts = ag.act_batch(np.stack([obs[n] for n in names]))
                out.update({n: np.asarray(acts[k], dtype=np.float32) for k, n in enumerate(names)})
            else:
                out.update({n: np.asarray(ag.act(obs[n]), dtype=np.float32) for n in names})
        return _pad_storage(env, out)


def _pad_storage(env, actions: dict) -> dict:
    """Agents written for the (price, dispatch) action leave a battery idle (storage component 0)
    in scenarios whose action has the third, storage component."""
    k = env.action_space(next(iter(actions))).shape[0] if actions else 2
    if k == 2:
        return actions
    return {n: a if a.shape[0] == k else np.concatenate([a, np.zeros(k - a.shape[0], np.float32)])
            for n, a in actions.items()}


def assign(agents: Mapping[str, Any] | Any, default: Any = None) -> JointPolicy:
    """Joint policy from agents (see ``Assigned``); a callable joint policy is returned unchanged."""
    if callable(agents) and not hasattr(agents, "act") and not hasattr(agents, "act_batch"):
        return agents
    return Assigned(agents, default)


class CompetitivePolicy:
    """Privileged competitive benchmark as a policy: per step (``p2penv.agents.baselines.competitive_joint_action``)
    without batteries; with batteries the episode schedule of ``p2penv.market.competitive_horizon``
    (computed at the first step of each episode), bidding true reservation values."""

    def __init__(self):
        self._schedule = None

    def reset(self) -> None:
        self._schedule = None

    def __call__(self, env, obs: dict) -> dict:
        from .baselines import competitive_joint_action

        if env.fleet.storage is None:
            acts, _ = competitive_joint_action(env.ctx, env.config)
            return {a: acts[i] for i, a in enumerate(env.agents)}
        return self._from_schedule(env)

    def _from_schedule(self, env) -> dict:
        from p2penv.market.competitive_horizon import competitive_horizon

        from .baselines import competitive_joint_action

        cfg, ctx, t = env.config, env.ctx, env.t
        if self._schedule is None or t == 0:
            prices = env.core.prices
            retail = cfg.retail_tariff if prices is None else prices.retail
            feed_in = cfg.feed_in_tariff if prices is None else prices.feed_in
            self._schedule = competitive_horizon(env.fleet, cfg.dt_h, retail, feed_in)
        s = self._schedule
        acts, _ = competitive_joint_action(ctx, cfg)  # truthful prices at the step's interval
        dt = cfg.dt_h
        p = s.der_kwh[t] / dt
        width = ctx.hi_kw - ctx.lo_kw
        u_disp = np.where(width > 0, 2.0 * (p - ctx.lo_kw) / np.where(width > 0, width, 1.0) - 1.0, -1.0)
        c, x = s.charge_kwh[t] / dt, s.discharge_kwh[t] / dt
        u_bat = np.where(c > 0, c / np.maximum(ctx.charge_max_kw, 1e-12), -x / np.maximum(ctx.discharge_max_kw, 1e-12))
        out = np.column_stack([acts[:, 0], np.clip(u_disp, -1, 1), np.clip(u_bat, -1, 1)]).astype(np.float32)
        return {a: out[i] for i, a in enumerate(env.agents)}


@dataclass(frozen=True)
class Trajectory:
    """One episode: (T, N, 2) actions in [-1, 1], (T, N) rewards $, (T,) clearing prices $/kWh,
    volumes kWh, declared welfare $, operator surplus $, (T, N) sold kWh (matched sells), and
    the StepContext of every step (for deviation diagnostics)."""

    agents: tuple[str, ...]
    actions: np.ndarray
    rewards: np.ndarray
    prices: np.ndarray
    volumes: np.ndarray
    welfare: np.ndarray
    operator_surplus: np.ndarray
    sold_kwh: np.ndarray
    ctxs: tuple

    @property
    def total_profit(self) -> float:
        """$ summed over agents and steps."""
        return float(self.rewards.sum())


def rollout(env, policy, *, seed: int | None = None, episodes: int = 1) -> list[Trajectory]:
    """Run ``episodes`` episodes of a parallel env (reset with ``seed`` first, then unseeded)."""
    policy = assign(policy)
    out = []
    for ep in range(episodes):
        obs, _ = env.reset(seed=seed if ep == 0 else None)
        if hasattr(policy, "reset"):
            policy.reset()
        names = tuple(env.agents)
        rec: dict[str, list] = {k: [] for k in ("a", "r", "p", "v", "w", "s", "sold", "ctx")}
        while env.agents:
            acts = policy(env, obs)
            rec["ctx"].append(env.ctx)
            rec["a"].append(np.stack([np.asarray(acts[a], dtype=np.float64) for a in names]))
            obs, rew, _, _, _ = env.step(acts)
            o = env.last_outcome
            if hasattr(policy, "observe"):
                policy.observe(o)
            rec["r"].append(np.asarray(o.settlement.reward, dtype=np.float64))
            rec["p"].append(float(o.clearing.clearing_price))
            rec["v"].append(float(o.clearing.volume))
            rec["w"].append(float(o.clearing.welfare))
            rec["s"].append(float(o.clearing.operator_surplus))
            rec["sold"].append(np.where(o.sides > 0, o.clearing.matched, 0.0))
        out.append(Trajectory(names, np.stack(rec["a"]), np.stack(rec["r"]), np.array(rec["p"]),
                              np.array(rec["v"]), np.array(rec["w"]), np.array(rec["s"]),
                              np.stack(rec["sold"]), tuple(rec["ctx"])))
    return out
