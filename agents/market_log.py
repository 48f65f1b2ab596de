"""Market metrics of a training run: one CSV row (and tensorboard scalars) per policy update.

Every trainer (SB3 shared/independent, SB3 on the vector env, the torch vector PPO, Q-learning)
feeds the same ``MarketLog``: ``add_step`` after each env step, ``end_update`` once per update
(an SB3 rollout, a vector-PPO update, a Q-learning logging window). Rows go to
``<out>/market_log.csv``; with ``tensorboard=True`` the same scalars go to ``<out>/tb/market``
under ``market/<column>`` (x axis: agent-steps).

=================  ========  ====================================================================
column             unit      meaning (means over the steps of the update; "market-step": one step of
                             one market copy)
=================  ========  ====================================================================
agent_steps        -         the trainer's agent-step counter when the row was written
updates            -         1-based row number (rows kept on resume included)
episodes           -         market episodes that ended during the update
return_<group>     $/episode episode return per agent of the group, mean over the episodes that
                             ended during the update and the group's agents; nan if none ended.
                             Groups: ``sellers``/``buyers`` (SellerBuyerMarket), else ``all`` (every
                             agent learns) or ``learners`` (``agent_groups``); only agents whose
                             rewards the trainer passes
clearing_price     $/kWh     clearing price per market-step (dlmp_v0: the substation's price);
                             market-steps with an empty book (price nan) are left out
traded_kwh         kWh       traded volume per market-step
welfare            $/step    declared welfare per market-step: ``infos[a]["market"]["welfare"]``,
                             gains from trade at the submitted bids/asks (``p2penv evaluate``
                             reports true-value welfare per episode instead)
markup_rel         -         (p - lambda) / lambda, volume-weighted over market-steps with trade and
                             lambda > 0, lambda the step's competitive (S1) price as in ``p2penv
                             evaluate`` (which weights by the sellers' sold kWh: the same when only
                             sellers sell). The env infos do not carry lambda: the trainer computes
                             it from the step's context before the step (``competitive_price``, one
                             small QP, 0.3-0.6 ms per market-step, about 10-15% of a small SB3 PPO
                             run's time). The torch vector PPO instead takes it from its evaluator's
                             evaluation episode on the rows where the evaluator runs (one QP per market
                             per step would cost more than the step); nan where neither applies (SB3
                             on the vector env; dlmp_v0: the auction's lambda does not apply to DLMPs)
                             or no step traded
nash_conv          $/step    stage-game NashConv of the learners (``p2penv evaluate``'s nash_conv) on
                             one evaluation episode of the current policy (deterministic actions,
                             fixed seed), every ``nash_conv_every`` updates (rows k, 2k, ...); empty
                             on the other rows and when off (0) or not defined (dlmp_v0)
=================  ========  ====================================================================

Empty cells mean "not measured on this row", ``nan`` means "measured but undefined". The CSV is
append-only: the header is written atomically when a run starts, then each row is one write of a
whole line, flushed and fsynced; ``resume_step`` keeps the rows up to the resumed checkpoint (a torn
last line from a crash is dropped) and rewrites the file atomically before appending.

Cost of ``nash_conv``: one evaluation episode (max_cycles policy calls) plus the grid NashConv of
``p2penv.diagnostics.nash.trajectory_nash_conv`` (the deviations of ``diagnostics.nash.action_grid()``
for every learner and distinct step, batched through the market): measured 0.07-0.1 s per
evaluation (24 steps, 2-6 agents, random actions, one CPU core), i.e. up to ~25% of a 96-step SB3
PPO rollout when ``nash_conv_every=1``; 10+ keeps it to a few percent.

This module needs neither torch nor SB3 (the tensorboard writer is imported lazily).
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from .checkpoint import atomic_write_text

__all__ = ["MarketLog", "MarketRow", "agent_groups", "competitive_price", "eval_nash_conv", "read_market_log",
           "supports_market_power",
           "CSV_NAME", "TB_SUBDIR"]

CSV_NAME = "market_log.csv"
TB_SUBDIR = "tb/market"
MARKET_COLUMNS = ("clearing_price", "traded_kwh", "welfare", "markup_rel", "nash_conv")


@dataclass(frozen=True)
class MarketRow:
    """One row of ``market_log.csv`` (units in the module table); ``nash_conv`` None: not measured."""

    agent_steps: int
    updates: int
    episodes: int
    returns: dict[str, float]  # group -> $/episode per agent
    clearing_price: float  # $/kWh
    traded_kwh: float  # kWh per market-step
    welfare: float  # $ per market-step (declared)
    markup_rel: float  # -
    nash_conv: float | None = None  # $/step

    def as_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = dict(agent_steps=self.agent_steps, updates=self.updates, episodes=self.episodes)
        d.update({f"return_{g}": v for g, v in self.returns.items()})
        d.update(clearing_price=self.clearing_price, traded_kwh=self.traded_kwh, welfare=self.welfare,
                 markup_rel=self.markup_rel, nash_conv=self.nash_conv)
        return d


@dataclass
class _Acc:
    """Sums of one update."""

    steps: int = 0
    price_sum: float = 0.0
    price_n: int = 0
    volume_sum: float = 0.0
    welfare_sum: float = 0.0
    markup_wsum: float = 0.0
    markup_w: float = 0.0
    episodes: int = 0
    ep_returns: dict[str, list[float]] = field(default_factory=dict)


def _fmt(v) -> str:
    if v is None:
        return ""
    if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
        return str(int(v))
    return repr(float(v))


class MarketLog:
    """Market-metric rows of a training run; see the module docstring for columns and files.

    ``groups``: group name -> indices into the last axis of the ``rewards`` passed to ``add_step``
    (e.g. ``agent_groups(env, learners)``). ``nash_conv_every``: updates between NashConv rows
    (0: off); the trainer asks ``nash_due`` before ``end_update`` and passes the value it measured.
    ``resume_step``: agent-steps of the checkpoint a resumed run starts from (None: a fresh run,
    any old ``market_log.csv`` is replaced).
    """

    def __init__(self, out_dir: str | Path, groups: Mapping[str, Sequence[int]], *, tensorboard: bool = False,
                 nash_conv_every: int = 0, resume_step: int | None = None):
        if not isinstance(nash_conv_every, (int, np.integer)) or isinstance(nash_conv_every, bool) \
                or nash_conv_every < 0:
            raise ValueError(f"nash_conv_every: expected an integer >= 0 (updates; 0 = off), got {nash_conv_every!r}")
        if not groups:
            raise ValueError("groups: need at least one agent group, e.g. {'all': [0, 1, 2]}")
        self.groups = {}
        for g, idx in groups.items():
            if not isinstance(g, str) or not g or not all(c.isalnum() or c == "_" for c in g):
                raise ValueError(f"groups: group name must be a non-empty [A-Za-z0-9_] string, got {g!r}")
            ix = np.asarray(list(idx), dtype=int)
            if ix.size == 0 or np.any(ix < 0):
                raise ValueError(f"groups: group {g!r} needs agent indices >= 0, got {list(idx)!r}")
            self.groups[g] = ix
        self.n_agents_min = 1 + max(int(ix.max()) for ix in self.groups.values())
        self.nash_conv_every = int(nash_conv_every)
        self.columns = ("agent_steps", "updates", "episodes") + tuple(f"return_{g}" for g in self.groups) \
            + MARKET_COLUMNS
        self.out = Path(out_dir)
        self.path = self.out / CSV_NAME
        self.updates = self._start_csv(resume_step)
        self._acc = _Acc(ep_returns={g: [] for g in self.groups})
        self._running: np.ndarray | None = None  # (M, A) returns of the episodes under way
        self._m = 1  # markets of the last add_step
        self.tensorboard = bool(tensorboard)
        self._purge = None if resume_step is None else int(resume_step) + 1  # drop the old run's later points
        self._writer = None  # created at the first row (and again after close())

    # -- files ---------------------------------------------------------------------------------
    def _start_csv(self, resume_step: int | None) -> int:
        header = ",".join(self.columns)
        keep: list[str] = []
        if resume_step is not None and self.path.exists():
            lines = self.path.read_text(encoding="utf-8").split("\n")[:-1]  # drops a torn, unterminated line
            if not lines or lines[0] != header:
                raise ValueError(f"{self.path}: header {lines[0] if lines else ''!r} differs from this run's "
                                 f"columns {header!r}; resume with the same agents/groups or use a new out folder")
            keep = [ln for ln in lines[1:] if int(ln.split(",", 1)[0]) <= resume_step]
        atomic_write_text(self.path, "\n".join([header] + keep) + "\n")
        return len(keep)

    def close(self) -> None:
        """Flush and close the tensorboard writer; CSV rows are on disk already. Rows written after
        ``close()`` open a new writer."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def __enter__(self) -> "MarketLog":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- data ----------------------------------------------------------------------------------
    @property
    def nash_due(self) -> bool:
        """True when the next ``end_update`` row is a NashConv row (row number a multiple of k)."""
        return self.nash_conv_every > 0 and (self.updates + 1) % self.nash_conv_every == 0

    @property
    def pending_steps(self) -> int:
        """Env steps added since the last row."""
        return self._acc.steps

    def add_step(self, rewards, dones, market: Mapping[str, Any], comp_price=None) -> None:
        """Record one env step of M market copies.

        rewards: (M, A) $ of the agents the groups index (single env: M = 1); dones: (M,) (or
        (M, A), any agent) True where the market's episode ended with this step; market: the env's
        market infos, ``infos[agent]["market"]`` (scalars, M = 1) or the vector env's
        ``infos["market"]`` ((M,) arrays): ``clearing_price`` $/kWh, ``volume_kwh`` kWh,
        ``welfare`` $; comp_price: (M,) competitive price $/kWh of the step (None: unknown).
        """
        r = np.asarray(rewards, dtype=np.float64)
        if r.ndim != 2 or r.shape[1] < self.n_agents_min:
            raise ValueError(f"rewards: expected shape (markets, agents >= {self.n_agents_min}), got {r.shape}")
        m = r.shape[0]
        d = np.asarray(dones, dtype=bool)
        if d.ndim == 2 and d.shape[0] == m:
            d = d.any(-1)
        if d.shape != (m,):
            raise ValueError(f"dones: expected shape ({m},) or ({m}, agents), got {np.shape(dones)}")
        cols = {}
        for key in ("clearing_price", "volume_kwh", "welfare"):
            if key not in market:
                raise ValueError(f"market: missing {key!r} (pass the env's infos[agent]['market'] or the vector "
                                 f"env's infos['market']); got keys {sorted(market)}")
            cols[key] = self._col(market[key], m, f"market[{key!r}]")
        lam = None if comp_price is None else self._col(comp_price, m, "comp_price")
        if self._running is None or self._running.shape != r.shape:
            self._running = np.zeros_like(r)
        self._running += r
        a = self._acc
        a.steps += 1
        p, v = cols["clearing_price"], cols["volume_kwh"]
        ok = np.isfinite(p)
        a.price_sum += float(p[ok].sum())
        a.price_n += int(ok.sum())
        a.volume_sum += float(v.sum())
        a.welfare_sum += float(cols["welfare"].sum())
        if lam is not None:
            use = ok & np.isfinite(lam) & (lam > 0) & (v > 0)
            a.markup_wsum += float((v[use] * (p[use] - lam[use]) / lam[use]).sum())
            a.markup_w += float(v[use].sum())
        if d.any():
            for g, ix in self.groups.items():
                a.ep_returns[g].extend(self._running[d][:, ix].ravel().tolist())
            a.episodes += int(d.sum())
            self._running[d] = 0.0
        self._m = m

    @staticmethod
    def _col(x, m: int, name: str) -> np.ndarray:
        c = np.asarray(x, dtype=np.float64).reshape(-1)
        if c.shape != (m,):
            raise ValueError(f"{name}: expected {m} value(s), one per market, got shape {np.shape(x)}")
        return c

    def end_update(self, agent_steps: int, nash_conv: float | None = None,
                   markup_rel: float | None = None) -> MarketRow:
        """Close the current update: write its row (and tensorboard scalars) and start a new one.
        ``nash_conv``: $/step measured for this row (see ``nash_due``), None when not measured.
        ``markup_rel``: measured by the trainer on an evaluation episode (the vector PPO's evaluator),
        used where the steps carried no competitive price."""
        a = self._acc
        if a.steps == 0:
            raise ValueError("end_update: no add_step since the last row")
        n = a.steps * self._m
        row = MarketRow(
            agent_steps=int(agent_steps), updates=self.updates + 1, episodes=a.episodes,
            returns={g: (float(np.mean(v)) if v else math.nan) for g, v in a.ep_returns.items()},
            clearing_price=a.price_sum / a.price_n if a.price_n else math.nan,
            traded_kwh=a.volume_sum / n, welfare=a.welfare_sum / n,
            markup_rel=(a.markup_wsum / a.markup_w if a.markup_w > 0 else
                        float(markup_rel) if markup_rel is not None else math.nan),
            nash_conv=None if nash_conv is None else float(nash_conv))
        d = row.as_dict()
        line = ",".join(_fmt(d[c]) for c in self.columns) + "\n"
        with open(self.path, "a", encoding="utf-8") as f:  # one write of a whole line, on disk before returning
            f.write(line)
            f.flush()
            os.fsync(f.fileno())
        if self.tensorboard:
            if self._writer is None:
                from torch.utils.tensorboard import SummaryWriter  # lazy: the CSV needs no torch

                self._writer = SummaryWriter(str(self.out / TB_SUBDIR), purge_step=self._purge)
                self._purge = None
            for c in self.columns[2:]:
                v = d[c]
                if v is not None and math.isfinite(v):
                    self._writer.add_scalar(f"market/{c}", v, row.agent_steps)
            self._writer.flush()
        self.updates += 1
        self._acc = _Acc(ep_returns={g: [] for g in self.groups})
        return row


def read_market_log(path: str | Path) -> list[dict[str, float | None]]:
    """Rows of a ``market_log.csv`` as dicts (empty cell -> None, numbers -> float)."""
    import csv

    with open(path, newline="", encoding="utf-8") as f:
        return [{k: (None if v == "" else float(v)) for k, v in r.items()} for r in csv.DictReader(f)]


def agent_groups(env, learners: Sequence[str] | None = None) -> dict[str, list[int]]:
    """Groups of ``learners`` (default: every agent of ``env``) as indices into ``learners``.

    ``SellerBuyerMarket`` scenarios: ``sellers`` (prosumer_0 .. n_sellers-1) and ``buyers``, each
    kept only if it has learners; otherwise ``all`` when every agent learns, else ``learners``.
    """
    from p2penv.generators.sellers_buyers import SellerBuyerMarket

    names = list(env.possible_agents)
    learners = list(names if learners is None else learners)
    bad = [a for a in learners if a not in names]
    if bad or not learners:
        raise ValueError(f"learners: unknown agents {bad} or none given; known {names}")
    gen = getattr(getattr(env, "config", None), "generator", None)
    if isinstance(gen, SellerBuyerMarket):
        sellers = set(names[: gen.n_sellers])
        out = {"sellers": [k for k, a in enumerate(learners) if a in sellers],
               "buyers": [k for k, a in enumerate(learners) if a not in sellers]}
        return {g: ix for g, ix in out.items() if ix}
    return {"all" if sorted(learners) == sorted(names) else "learners": list(range(len(learners)))}


def supports_market_power(env) -> bool:
    """True for auction_v0 envs: the competitive price and the stage-game NashConv are defined
    (dlmp_v0 clears DLMPs through an LP: neither applies, see ``p2penv evaluate``)."""
    return getattr(env, "metadata", {}).get("name") == "auction_v0"


def competitive_price(ctx, config) -> float:
    """Competitive (S1) price $/kWh of a step of auction_v0 from its context (``env.ctx`` before
    the step) and the env's ``config``, as ``p2penv evaluate`` computes it
    (``competitive_joint_action``); about 0.3-0.7 ms per call."""
    from p2penv.market.competitive import competitive_joint_action

    return float(competitive_joint_action(ctx, config)[1])


def eval_nash_conv(env, policy, *, seed: int, players: Sequence[int] | None = None) -> float:
    """Stage-game NashConv ($/step, mean over steps) of ``players`` (indices into the env's agents;
    None: all) on one episode of the joint ``policy`` from ``env.reset(seed=seed)``: the
    ``nash_conv`` of ``p2penv.experiments.metrics.evaluate`` with ``episodes=1``. auction_v0 only."""
    from p2penv.diagnostics.nash import trajectory_nash_conv

    from .rollout import rollout

    if not supports_market_power(env):
        raise ValueError(f"env: stage-game NashConv is defined for auction_v0 only, got "
                         f"{getattr(env, 'metadata', {}).get('name')!r}")
    tr = rollout(env, policy, seed=seed, episodes=1)[0]
    return float(trajectory_nash_conv(tr.ctxs, tr.actions, env.rules, players=None if players is None else list(players),
                                      method="grid", n_grid=41).sum(1).mean())
