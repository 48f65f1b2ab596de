"""Emergent market power: does it fall with the number of sellers N?

Scenario ``p2penv.generators.SellerBuyerMarket`` (same aggregate supply curve for every N; truthful
buyers) on auction_v0, in four settings: elastic demand (flexible-load buyers with values of lost load
spread over 0.10-0.30 $/kWh) or inelastic demand (buyers always import at retail), cleared by the
uniform-price double auction or pay-as-bid. Profiles of the sellers: competitive benchmark, stage-game
Nash (iterated best response), PPO with parameter sharing, MAPPO (shared actor, centralised critic on
``state()``), independent PPO (per-seller networks) - all three with the vector-env trainer
(``p2penv.agents.vector_ppo``), buyers truthful - and Calvano Q-learning (one vectorised session per
seed). Metrics per (setting, N, method, seed): relative clearing-price markup over the competitive
price, share-weighted Lerner, HHI, relative welfare loss (of the gains from trade), seller profit
$/episode and the stage-game NashConv $/step of the sellers. Summary per (setting, N, method)
(``experiments.stats``): finite seeds ``<m>_n`` of ``<m>_n_total``, mean, median and IQM with
stratified-bootstrap 95 % intervals (``<m>_iqm_lo``/``_hi``, ``<m>_mean_lo``/``_hi``; zero width only
where every seed gave the same value, ``<m>_deterministic``); ``label``: the "nash" rows are "nash" only
when every seed's exact NashConv is at most ``NASH_TOL`` $/step, else "ibr (not converged)". ``paired``:
each learner against the "nash" and competitive rows of its (setting, N), paired by seed (the same
seeded episodes): Wilcoxon signed-rank and the paired bootstrap of the mean difference.
``equilibrium_sets``: per (setting, N) the pure-equilibrium price/markup range and the symmetric mixed
equilibrium of ``docs/results/equilibrium_sets.json`` beside IBR's point.
Learning curves: every learning method's NashConv and markup against agent-steps (the first
``curve_seeds`` seeds, every ``curve_every`` updates / Q-learning chunks).

Rows are independent tasks (``p2penv.experiments.dispatch``): ``--ray local`` or ``--ray ADDRESS`` runs
them on a Ray cluster with the same results as the in-process run.

    python -m p2penv.experiments.market_power [--quick] [--out results/market_power] [--ray local]
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from p2penv.seller_buyer import seller_buyer_env_fn, seller_buyer_vector_fn, sellers

from .checkpoints import RowCheckpoint
from .dispatch import Task, run_tasks
from . import stats
from .metrics import evaluate
from .output import echo, format_table, save_figure, save_outputs
from .policies import NashPolicy
from .study_cli import check_known, check_seeds, configured, overrides, run_study, study_parser

METHODS = ("competitive", "nash", "ppo_shared", "mappo", "ppo_independent", "qlearning")
LEARNING = ("ppo_shared", "mappo", "ppo_independent", "qlearning")
METRICS = ("markup_rel", "lerner", "hhi", "welfare_loss_rel", "profit", "nash_conv", "price")
# (mechanism, buyers, kW per buyer, buyers' values of lost load $/kWh or None = inelastic at retail)
SETTINGS = {
    "elastic-uniform": ("uniform", 6, 1.0, (0.10, 0.30)),
    "inelastic-uniform": ("uniform", 3, 2.0, None),
    "elastic-pay_as_bid": ("pay_as_bid", 6, 1.0, (0.10, 0.30)),
    "inelastic-pay_as_bid": ("pay_as_bid", 3, 2.0, None),
}
DOCS = Path(__file__).resolve().parents[1] / "docs"
# vector-PPO variants: (mode, critic)
PPO_VARIANTS = {"ppo_shared": ("shared", "local"), "mappo": ("shared", "central"),
                "ppo_independent": ("independent", "local")}


@dataclass(frozen=True)
class MarketPowerConfig:
    """ns: seller counts; settings: keys of ``SETTINGS``; seeds: >= 3 for CIs. PPO (all three variants):
    ``ppo_steps`` market steps per run (each seller acts in every one: agent-steps = ppo_steps x N), over
    ``ppo_envs`` markets stepped together, 24-step rollouts. Q-learning: ``q_steps`` steps per session,
    exploration exp(-q_beta t). Curves: the first ``curve_seeds`` seeds are evaluated every
    ``curve_every`` PPO updates (Q-learning: at ``curve_every`` evenly spaced points); 0 = final only.
    nash_method: "grid" or "exact" (p2penv.diagnostics.nash)."""

    ns: tuple[int, ...] = (2, 3, 5, 10, 20)
    settings: tuple[str, ...] = tuple(SETTINGS)
    seeds: tuple[int, ...] = tuple(range(10))
    methods: tuple[str, ...] = METHODS
    ppo_steps: int = 15_360
    ppo_envs: int = 32
    q_steps: int = 40_000
    q_beta: float = 1.5e-4
    curve_every: int = 4
    curve_seeds: int = 3
    nash_method: str = "exact"
    rule: str = "walrasian"  # uniform-price interval; see p2penv.seller_buyer.seller_buyer_env_fn

    def __post_init__(self):
        check_known("methods", self.methods, METHODS)
        check_known("settings", self.settings, SETTINGS)
        check_seeds(self.seeds)
        if self.ppo_steps < 1 or self.ppo_envs < 1 or self.q_steps < 1:
            raise ValueError(f"ppo_steps, ppo_envs, q_steps: must be >= 1, got {self.ppo_steps}, {self.ppo_envs}, "
                             f"{self.q_steps}")


QUICK = MarketPowerConfig(ns=(2, 3), settings=("elastic-uniform",), seeds=(0, 1),
                          methods=("competitive", "nash", "ppo_shared", "qlearning"), ppo_steps=192, ppo_envs=4,
                          q_steps=1500, q_beta=2e-3, curve_every=1, curve_seeds=1)
DEMO = MarketPowerConfig(ns=(2, 3, 5, 10), settings=("elastic-uniform",), seeds=(0, 1, 2),
                         methods=("competitive", "nash", "ppo_shared", "qlearning"), ppo_steps=15_360, ppo_envs=32,
                         q_steps=20_000, q_beta=3e-4, curve_every=0, curve_seeds=0)


def env_fns(cfg: MarketPowerConfig, setting: str, n: int):
    """(single-env factory of seed s, vector-env factory) of a cell."""
    mech, nb, d, values = SETTINGS[setting]
    kw = dict(mechanism=mech, rule=cfg.rule, demand_kw=d, buyer_values=values)
    return (lambda s: seller_buyer_env_fn(n, nb, seed=s, **kw)), seller_buyer_vector_fn(n, nb, **kw)


def _eval(cfg: MarketPowerConfig, f, policy, n: int, seed: int) -> dict:
    return evaluate(f, policy, seed=seed, n_sellers=n, nash_players=range(n), nash_method=cfg.nash_method)


def benchmark_rows(cfg: MarketPowerConfig, setting: str, n: int, method: str) -> list[dict]:
    """Rows of the competitive or stage-game Nash profile for every seed (the Nash profile is solved
    once per step context and reused across seeds).

    The "nash" rows are iterated best response's profiles; each carries ``label``: "nash" only when
    its exact stage NashConv is at most ``equilibrium_set.NASH_TOL`` $/step
    (``equilibrium_set.label_profile``), else "ibr (not converged)"; with ``nash_method="grid"`` the
    gap is only a lower bound, so the label says "ibr (grid gap only)"."""
    from p2penv.agents.rollout import CompetitivePolicy
    from p2penv.diagnostics.equilibrium_set import NASH_TOL, label_profile

    single, _ = env_fns(cfg, setting, n)
    pol = CompetitivePolicy() if method == "competitive" else NashPolicy(players=range(n), method=cfg.nash_method)
    rows = [dict(setting=setting, N=n, method=method, seed=s, agent_steps=0, **_eval(cfg, single(s), pol, n, s))
            for s in cfg.seeds]
    if method == "nash":
        for r in rows:
            exact = cfg.nash_method == "exact"
            r["label"] = label_profile(r["nash_conv"]).label if exact else "ibr (grid gap only)"
            r["nash_tol"] = NASH_TOL
    return rows


def ppo_row(cfg: MarketPowerConfig, setting: str, n: int, method: str, seed: int) -> list[dict]:
    """Train one vector-PPO variant (sellers learn, buyers truthful) and evaluate it; the row carries
    its learning curve (``curve``) when ``seed`` is among the first ``curve_seeds`` seeds."""
    from p2penv.agents.baselines import TruthfulAgent
    from p2penv.agents.vector_ppo import VectorPPOConfig, train_vector_ppo

    single, vec = env_fns(cfg, setting, n)
    f = single(seed)
    truth = TruthfulAgent(f().config)
    mode, critic = PPO_VARIANTS[method]
    curve = cfg.curve_every > 0 and seed in cfg.seeds[:cfg.curve_seeds]
    n_steps = 24
    pcfg = VectorPPOConfig(total_steps=cfg.ppo_steps * n, num_envs=cfg.ppo_envs, n_steps=n_steps,
                           mode=mode, critic=critic, seed=seed, torch_threads=1,
                           learners=tuple(sellers(n)), eval_every=cfg.curve_every if curve else 0)
    evaluator = (lambda pol: _eval(cfg, f, pol.joint(truth), n, seed)) if curve else None
    r = train_vector_ppo(vec, pcfg, others=truth, evaluator=evaluator)
    final = r.curve[-1] if r.curve else _eval(cfg, f, r.policy.joint(truth), n, seed)
    row = dict(setting=setting, N=n, method=method, seed=seed, agent_steps=r.num_timesteps,
               **{k: v for k, v in final.items() if k != "agent_steps"})
    if curve:
        row["curve"] = [dict(agent_steps=c["agent_steps"], nash_conv=c["nash_conv"], markup_rel=c["markup_rel"])
                        for c in r.curve]
    return [row]


def qlearning_rows(cfg: MarketPowerConfig, setting: str, n: int) -> list[dict]:
    """One vectorised Q-learning run with a session per seed; a row per seed (with curves for the first
    ``curve_seeds`` sessions, evaluated at ``curve_every`` evenly spaced points)."""
    from p2penv.agents.qlearning import QConfig, QLearners

    single, _ = env_fns(cfg, setting, n)
    q = QLearners(single(cfg.seeds[0]), QConfig(total_steps=cfg.q_steps, n_sessions=len(cfg.seeds), beta=cfg.q_beta,
                                                seed=cfg.seeds[0]), learners=sellers(n))
    points = cfg.curve_every if cfg.curve_every > 0 and cfg.curve_seeds > 0 else 1
    marks = [round(cfg.q_steps * (k + 1) / points) for k in range(points)]
    curves: dict[int, list[dict]] = {k: [] for k in range(min(cfg.curve_seeds, len(cfg.seeds)))}
    for mark in marks:
        while q.t < mark:
            q.step()
        if mark == marks[-1]:
            break
        for k in curves:
            s = cfg.seeds[k]
            r = _eval(cfg, single(s), q.policy(k), n, s)
            curves[k].append(dict(agent_steps=q.t * n, nash_conv=r["nash_conv"], markup_rel=r["markup_rel"]))
    rows = []
    for k, s in enumerate(cfg.seeds):
        r = _eval(cfg, single(s), q.policy(k), n, s)
        row = dict(setting=setting, N=n, method="qlearning", seed=s, agent_steps=q.t * n, **r)
        if k in curves and cfg.curve_every > 0:
            row["curve"] = curves[k] + [dict(agent_steps=q.t * n, nash_conv=r["nash_conv"], markup_rel=r["markup_rel"])]
        rows.append(row)
    return rows


def tasks(cfg: MarketPowerConfig) -> list[Task]:
    """Every unit of work of the study (see ``p2penv.experiments.dispatch``)."""
    out = []
    for st in cfg.settings:
        for n in cfg.ns:
            key = dict(setting=st, N=n)
            for m in cfg.methods:
                if m in ("competitive", "nash"):
                    out.append(Task(benchmark_rows, (cfg, st, n, m), tuple(dict(key, method=m, seed=s) for s in cfg.seeds),
                                    f"{st} N={n} {m}"))
                elif m == "qlearning":
                    out.append(Task(qlearning_rows, (cfg, st, n), tuple(dict(key, method=m, seed=s) for s in cfg.seeds),
                                    f"{st} N={n} {m}"))
                else:
                    out += [Task(ppo_row, (cfg, st, n, m, s), (dict(key, method=m, seed=s),), f"{st} N={n} {m} seed={s}")
                            for s in cfg.seeds]
    return out


EQUILIBRIUM_SETS = DOCS / "results" / "equilibrium_sets.json"
PAIRED_METRICS = ("markup_rel", "profit", "welfare_loss_rel")
DETERMINISTIC = ("competitive", "nash")  # methods with no randomness of their own (the env's seed only)


def nash_label(rows: list[dict]) -> tuple[str, float]:
    """(label, worst NashConv $/step over seeds) of a cell's "nash" rows: "nash" only when every seed's exact
    NashConv is finite and at most ``NASH_TOL``; a row's own ``label`` (e.g. "ibr (grid gap only)") wins."""
    from p2penv.diagnostics.equilibrium_set import label_profile

    ncs = [float(r.get("nash_conv", np.nan)) for r in rows]
    worst = max((x for x in ncs if np.isfinite(x)), default=float("nan"))
    labels = [r["label"] if "label" in r else label_profile(r.get("nash_conv", np.nan)).label for r in rows]
    bad = [x for x in labels if x != "nash"]
    if any(not np.isfinite(x) for x in ncs) and not bad:
        bad = ["ibr (not converged)"]
    return (bad[0] if bad else "nash"), worst


def summarise(rows: list[dict], *, reps: int = stats.DEFAULT_REPS) -> list[dict]:
    """Per (setting, N, method): ``stats.summarise_rows`` of ``METRICS`` (``<m>`` is the mean of the finite
    seeds, kept for the trend and the equilibrium-set reader), ``n_seeds``, ``label`` (the "nash" rule, see
    ``nash_label``; other methods: their name), ``nash_conv_max`` and ``method_deterministic``."""
    from p2penv.diagnostics.equilibrium_set import NASH_TOL

    out = stats.summarise_rows(rows, ("setting", "N", "method"), METRICS, reps=reps)
    for d in out:
        rs = [r for r in rows if (r["setting"], r["N"], r["method"]) == (d["setting"], d["N"], d["method"])]
        d["n_seeds"] = len(rs)
        for m in METRICS:
            d[m] = d[f"{m}_mean"]
        d["method_deterministic"] = d["method"] in DETERMINISTIC
        if d["method"] == "nash":
            d["label"], d["nash_conv_max"] = nash_label(rs)
            d["nash_tol"] = NASH_TOL
        else:
            d["label"] = d["method"]
    return out


def paired(rows: list[dict], summary: list[dict], *, reps: int = stats.DEFAULT_REPS) -> list[dict]:
    """Each learning method against the "nash" row (labelled as the summary labels it) and the competitive
    row of its (setting, N) on ``PAIRED_METRICS``, paired by seed: x - y, Wilcoxon signed-rank p, paired
    bootstrap 95 % interval, wins/losses/ties and the pairs with both values finite."""
    label = {(d["setting"], d["N"], d["method"]): d["label"] for d in summary}
    out = []
    for st, n in dict.fromkeys((r["setting"], r["N"]) for r in rows):
        methods = list(dict.fromkeys(r["method"] for r in rows if (r["setting"], r["N"]) == (st, n)))
        for m in (x for x in methods if x in LEARNING):
            for ref in (x for x in ("nash", "competitive") if x in methods):
                for metric in PAIRED_METRICS:
                    c = stats.paired_by_seed(rows, metric, m, ref, where=dict(setting=st, N=n), reps=reps)
                    out.append(dict(setting=st, N=n, x=m, y=ref, y_label=label[(st, n, ref)], metric=metric,
                                    pairing="seed", **stats.paired_dict(c)))
    return out


def equilibrium_sets(summary: list[dict], path: Path = EQUILIBRIUM_SETS) -> list[dict]:
    """Per (setting, N) of the summary: the pure-equilibrium set and the symmetric mixed equilibrium of the
    stage game (``experiments.equilibrium_sets``, read from ``path``) beside IBR's point (this study's "nash"
    rows: mean price/markup, label, worst NashConv). Cells the file lacks say so (``computed`` False)."""
    sets = {}
    if path.exists():
        sets = {(r["setting"], r["N"]): r for r in json.loads(path.read_text())["rows"]}
    out = []
    for d in summary:
        if d["method"] != "nash":
            continue
        key = (d["setting"], d["N"])
        e = dict(setting=key[0], N=key[1], ibr_label=d["label"], ibr_nash_conv_max=d.get("nash_conv_max"),
                 ibr_price=d["price"], ibr_markup_rel=d["markup_rel"], computed=key in sets)
        r = sets.get(key)
        if r is not None:
            pure, alleq, mix = r["pure"], r["all_equal_study_grid"], r.get("mixed") or {}
            e.update(grid=r["grid"], grid_actions=r["grid_actions"], competitive_price=r["competitive_price"],
                     pure_count=pure["count"], pure_price=pure["price"], pure_markup_rel=pure["markup_rel"],
                     pure_prices=pure.get("prices", []), all_equal_count=alleq["count"],
                     all_equal_markup_rel=alleq["markup_rel"], mixed_method=mix.get("method"),
                     mixed_nash_conv=mix.get("nash_conv"), mixed_expected_price=mix.get("expected_price"),
                     mixed_expected_markup_rel=mix.get("expected_markup_rel"), mixed_profit=mix.get("profit"))
        else:
            e["note"] = ("not computed: the exact enumeration is out of reach at this N on the study grid "
                         "(docs/statistics.md); the all-equal profiles and IBR's point only")
        out.append(e)
    return out


def outputs(rows: list[dict], full: list[dict] | None = None) -> dict:
    """Everything the JSON holds besides ``runs`` and ``meta``: summary, paired, equilibrium sets, and the curves
    of ``full`` (the rows with their ``curve``; default ``rows``)."""
    summary = summarise(rows)
    return dict(summary=summary, paired=paired(rows, summary), equilibrium_sets=equilibrium_sets(summary),
                curves=curve_summary(rows if full is None else full))


def run(cfg: MarketPowerConfig, out_dir: str | Path | None = None, save_models: bool = False,
        resume: bool = False, ray=None, docs: bool = False) -> dict:
    """Run the study; writes CSV/JSON/PNG to ``out_dir`` when given; returns rows, summary, paired,
    equilibrium_sets, curves and meta. Every finished task's rows are checkpointed; ``resume=True`` skips
    those. ``ray``: None (this process), "local" or a cluster address (``p2penv.experiments.dispatch``).
    ``save_models`` is kept for compatibility and ignored (the study keeps no models). ``docs``: also write
    ``docs/results/market_power.json`` and the figures in ``docs/figures`` (what docs/results.md is made of)."""
    t0 = time.perf_counter()
    out = Path(out_dir) if out_dir is not None else None
    cells = [(st, n, m, s) for st in cfg.settings for n in cfg.ns for m in cfg.methods for s in cfg.seeds]
    ck = RowCheckpoint(out, "market_power", asdict(cfg), resume, total=len(cells),
                       sweep=("ns", "settings", "seeds", "methods"))
    resumed = sum(ck.find(setting=st, N=n, method=m, seed=s) is not None for st, n, m, s in cells)
    run_tasks(tasks(cfg), ck, ray)
    full = [ck.find(setting=st, N=n, method=m, seed=s) for st, n, m, s in cells]
    rows = [{k: v for k, v in r.items() if k != "curve"} for r in full]
    res = outputs(rows, full)
    summary, curves = res["summary"], res["curves"]
    shape = trend(summary)
    meta = dict(config=asdict(cfg), wall_s=time.perf_counter() - t0, trend=shape, resumed_rows=resumed,
                statistics="experiments.stats: IQM/mean/median, stratified percentile bootstrap 95 % "
                           f"({stats.DEFAULT_REPS} replicates), paired by seed: Wilcoxon signed-rank + paired bootstrap")
    extra = {k: v for k, v in res.items() if k != "summary"}
    if out is not None:
        save_outputs(out, "market_power", rows, summary, meta, **extra)
        plot(summary, cfg, out / "market_power.png")
        if curves:
            plot_curves(curves, cfg, out / "market_power_curves.png")
    if docs:
        from p2penv.agents.checkpoint import atomic_write_json

        atomic_write_json(DOCS / "results" / "market_power.json", dict(meta=meta, runs=rows, summary=summary,
                                                                        **extra))
        plot(summary, cfg, DOCS / "figures" / "market_power.png")
        if curves:
            plot_curves(curves, cfg, DOCS / "figures" / "market_power_curves.png")
    cols = ("setting", "N", "label", "markup_rel_iqm", "lerner_iqm", "hhi_iqm", "welfare_loss_rel_iqm",
            "nash_conv_iqm", "markup_rel_n")
    echo(format_table(summary, cols if len(cfg.settings) > 1 else cols[1:]))
    echo(f"cells: IQM over seeds {list(cfg.seeds)} (markup_rel_n: finite seeds; JSON: bootstrap 95 % intervals, "
         "mean, median, counts); markup_rel = (price - competitive price) / competitive price; lerner: "
         "share-weighted (P - MC) / P of the sellers; hhi: sellers' volume shares; welfare_loss_rel: of the "
         "competitive gains from trade; nash_conv: $/step a unilateral stage-game deviation would gain (summed "
         "over sellers); label: 'nash' only where every seed's NashConv <= NASH_TOL")
    echo("trend (Spearman rho of the IQM vs N; < 0 = market power falls with N): " +
         ", ".join(f"{k}: {v:+.2f}" for k, v in shape.items()))
    return dict(rows=rows, summary=summary, meta=meta, **extra)


def curve_summary(rows: list[dict]) -> list[dict]:
    """Per (setting, N, method): agent-steps and, at each evaluation point, the mean over the curve seeds
    of NashConv and markup with percentile-bootstrap 95 % intervals (``*_lo``/``*_hi``) and finite counts."""
    groups: dict[tuple, list[list[dict]]] = {}
    for r in rows:
        if r.get("curve"):
            groups.setdefault((r["setting"], r["N"], r["method"]), []).append(r["curve"])
    out = []
    for (st, n, m), cs in groups.items():
        k = min(len(c) for c in cs)
        steps = [cs[0][i]["agent_steps"] for i in range(k)]
        d = dict(setting=st, N=n, method=m, seeds=len(cs), agent_steps=steps)
        for key in ("nash_conv", "markup_rel"):
            cells = [stats.summarise_cell([c[i][key] for c in cs]) for i in range(k)]
            d[key] = [c.mean for c in cells]
            d[key + "_lo"] = [c.mean_ci.lo for c in cells]
            d[key + "_hi"] = [c.mean_ci.hi for c in cells]
            d[key + "_n"] = [c.n_finite for c in cells]
        out.append(d)
    return out


def trend(summary: list[dict]) -> dict[str, float]:
    """Spearman correlation of the markup and Lerner index (IQM over seeds) with N, per setting and method."""
    from scipy.stats import spearmanr

    out = {}
    for st, m in sorted({(r["setting"], r["method"]) for r in summary}):
        rs = sorted((r for r in summary if r["method"] == m and r["setting"] == st), key=lambda r: r["N"])
        for k in ("markup_rel", "lerner"):
            k = k + "_iqm" if k + "_iqm" in rs[0] else k
            x = [r["N"] for r in rs if np.isfinite(r[k])]
            y = [r[k] for r in rs if np.isfinite(r[k])]
            if len(x) >= 2 and np.ptp(y) > 1e-9:
                out[f"{st}/{m}/{k.removesuffix('_iqm')}"] = float(spearmanr(x, y).statistic)
    return out


def _save_grid(fig, axes, xlabel: str, path: Path) -> Path:
    """Finish a grid of panels (``axes`` rows x columns): ``xlabel`` under the bottom row, the legend in the
    first panel, then save."""
    for ax in axes[-1]:
        ax.set_xlabel(xlabel)
    axes[0][0].legend(fontsize=6)
    return save_figure(fig, path)


def plot(summary: list[dict], cfg: MarketPowerConfig, path: Path) -> Path:
    """One row of panels (markup, Lerner, HHI, welfare loss vs N) per setting: IQM over seeds, error bars its
    stratified-bootstrap 95 % interval."""
    import matplotlib.pyplot as plt

    keys = ("markup_rel", "lerner", "hhi", "welfare_loss_rel")
    fig, axes = plt.subplots(len(cfg.settings), len(keys), figsize=(3.6 * len(keys), 3.0 * len(cfg.settings)),
                             squeeze=False)
    for row, st in zip(axes, cfg.settings):
        for ax, k in zip(row, keys):
            for m in cfg.methods:
                rs = sorted((r for r in summary if r["method"] == m and r["setting"] == st), key=lambda r: r["N"])
                y = np.array([r[k + "_iqm"] for r in rs], dtype=float)
                err = np.nan_to_num(np.abs(np.array([[r[k + "_iqm_lo"] for r in rs], [r[k + "_iqm_hi"] for r in rs],
                                                     ], dtype=float) - y))
                ax.errorbar([r["N"] for r in rs], y, yerr=err, marker="o", ms=3, capsize=2, label=m)
            ax.set_title(f"{k} ({st})", fontsize=8)
            ax.set_xscale("log")
            ax.minorticks_off()
            ax.set_xticks(list(cfg.ns), [str(n) for n in cfg.ns])
        row[0].set_ylabel("IQM over seeds")
    return _save_grid(fig, axes, "sellers N", path)


def plot_curves(curves: list[dict], cfg: MarketPowerConfig, path: Path) -> Path:
    """NashConv ($/step) against agent-steps per learning method; one panel per (setting, N); error bars:
    bootstrap 95 % intervals of the mean over the curve seeds."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import EngFormatter, NullFormatter

    cells = [(st, n) for st in cfg.settings for n in cfg.ns]
    fig, axes = plt.subplots(len(cfg.settings), len(cfg.ns), figsize=(3.0 * len(cfg.ns), 2.6 * len(cfg.settings)),
                             squeeze=False)
    for ax, (st, n) in zip(axes.ravel(), cells):
        for c in curves:
            if c["setting"] == st and c["N"] == n:
                y = np.asarray(c["nash_conv"], dtype=float)
                err = np.nan_to_num(np.abs(np.array([c["nash_conv_lo"], c["nash_conv_hi"]], dtype=float) - y))
                ax.errorbar(c["agent_steps"], y, yerr=err, marker=".", capsize=2, label=c["method"])
        ax.set_title(f"{st}, N={n}", fontsize=8)
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(EngFormatter(sep=""))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.tick_params(labelsize=6)
    axes[0][0].set_ylabel("NashConv $/step")
    return _save_grid(fig, axes, "agent-steps", path)


def main(argv=None, prog: str | None = None) -> dict:
    ap = study_parser(__doc__, prog, "results/market_power", docs="also write docs/results/market_power.json and "
                      "its figures")
    ap.add_argument("--seeds", type=int, nargs="*")
    ap.add_argument("--ns", type=int, nargs="*")
    ap.add_argument("--methods", nargs="*", choices=METHODS)
    ap.add_argument("--settings", nargs="*", choices=tuple(SETTINGS))
    ap.add_argument("--ppo-steps", type=int, help="market steps per PPO run (agent-steps = this x N)")
    ap.add_argument("--q-steps", type=int)
    ap.add_argument("--nash-method", choices=("grid", "exact"))
    ap.add_argument("--inelastic", action="store_true", help="the inelastic-uniform setting only")
    a = ap.parse_args(argv)
    over = overrides(a, "seeds", "ns", "methods", "settings", "ppo_steps", "q_steps", "nash_method")
    if a.inelastic:
        over.update(settings=("inelastic-uniform",))
    cfg = configured(ap, QUICK if a.quick else MarketPowerConfig(), **over)
    return run_study(ap, run, cfg, a.out, resume=a.resume, ray=a.ray, docs=a.docs)


if __name__ == "__main__":
    main()
