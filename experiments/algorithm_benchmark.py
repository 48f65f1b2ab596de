"""Algorithm benchmark on the registry's versioned scenarios: the README leaderboard.

Methods: random (uniform actions), truthful (price-taking dispatch at reservation prices), competitive
(the privileged benchmark: S1 per step, or with batteries the episode schedule of
``p2penv.market.competitive_horizon``), PPO with parameter sharing, MAPPO (shared actor, centralised
critic on ``state()``) and independent PPO (per-agent networks) - all three with the vector-env
trainer ``p2penv.agents.vector_ppo`` - and Calvano Q-learning where its kernel applies (auction_v0,
2-dim actions, constant tariffs). The learners are the scenario's (``ScenarioSpec.learners``, or every
agent); the others bid truthfully. Metrics per (scenario, method, seed): mean learner profit $/episode, gains-from-trade welfare $/episode (true values), mean clearing
price $/kWh and the learners' stage-game NashConv $/step (grid; auction_v0 only: the DLMP clearing is
an LP solved one book at a time, its exact best response is the MILP of
``p2penv.diagnostics.dlmp_best_response``).

Statistics (``experiments.stats``; Agarwal et al. 2021, Gorsane et al. 2022): per (scenario, method) the
finite seeds ``<m>_n`` of ``<m>_n_total``, mean, median and IQM with stratified-bootstrap 95 % intervals;
``paired``: every method against truthful per scenario on profit and welfare, paired by seed (each method
is scored on the same seeded episode): Wilcoxon signed-rank and the paired bootstrap; ``aggregate``:
across scenarios, the probability of improvement of each method over truthful (and of each pair of
learners) and performance profiles of the normalised profit (``normalised_profit``); the rows are also
written in the marl-eval layout (env -> task -> algorithm -> run -> metrics) as
``algorithm_benchmark_marl_eval.json`` beside the study JSON.

Rows are tasks (``p2penv.experiments.dispatch``): ``--ray local`` / ``--ray ADDRESS`` runs them on Ray.
``--docs`` also writes ``docs/results/algorithm_benchmark.json`` (what the README table is made of).

    python -m p2penv.experiments.algorithm_benchmark [--quick] [--out results/algorithm_benchmark] [--ray local]
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

import p2penv
from p2penv.generators.protocol import PricedGenerator

from . import stats
from .checkpoints import RowCheckpoint
from .dispatch import Task, run_tasks
from .metrics import evaluate
from .output import echo, format_table, new_figure, save_figure, save_outputs
from .study_cli import check_known, check_seeds, configured, overrides, run_study, study_parser

METHODS = ("random", "truthful", "competitive", "ppo_shared", "mappo", "ppo_independent", "qlearning")
METRICS = ("profit", "welfare", "nash_conv", "price")
PPO_VARIANTS = {"ppo_shared": ("shared", "local"), "mappo": ("shared", "central"),
                "ppo_independent": ("independent", "local")}
DOCS = Path(__file__).resolve().parents[1] / "docs"


def scenario(name: str, seed: int):
    """(env_fn, learners, n_sellers) of a registered scenario id (``p2penv.list_scenarios()``)."""
    spec = p2penv.get_spec(name)
    learners = None if spec.learners is None else list(spec.learners)
    n_sellers = None if learners is None else len(learners)
    return (lambda: p2penv.make(name, seed=seed)), learners, n_sellers


def available_scenarios() -> tuple[str, ...]:
    """The leaderboard's scenarios: sellers-only, households, the storage community, a DLMP feeder."""
    return ("auction_v0/sellers3-v0", "auction_v0/household6-v0", "auction_v0/storage-community-v0",
            "dlmp_v0/teaching4-v0")


def applies(method: str, sid: str) -> bool:
    """Q-learning's kernel replays auction_v0 with 2-dim actions and constant tariffs; the rest apply everywhere."""
    if method != "qlearning":
        return True
    spec = p2penv.get_spec(sid)
    gen = spec.config.get("generator")
    return spec.env == "auction_v0" and not getattr(gen, "has_storage", False) and not isinstance(gen, PricedGenerator)


@dataclass(frozen=True)
class BenchmarkConfig:
    """``ppo_steps``: market steps per PPO run (agent-steps = this x learners) over ``ppo_envs`` markets;
    ``q_steps``: Q-learning steps per session, exploration exp(-q_beta t)."""

    scenarios: tuple[str, ...] = ("auction_v0/sellers3-v0", "auction_v0/household6-v0",
                                  "auction_v0/storage-community-v0", "dlmp_v0/teaching4-v0")
    methods: tuple[str, ...] = METHODS
    seeds: tuple[int, ...] = tuple(range(10))
    ppo_steps: int = 15_360
    ppo_envs: int = 32
    q_steps: int = 20_000
    q_beta: float = 3e-4

    def __post_init__(self):
        check_known("methods", self.methods, METHODS)
        check_seeds(self.seeds)


QUICK = BenchmarkConfig(scenarios=("auction_v0/sellers3-v0", "auction_v0/household6-v0"), seeds=(0, 1),
                        methods=("random", "truthful", "ppo_shared", "ppo_independent", "qlearning"),
                        ppo_steps=192, ppo_envs=4, q_steps=1000, q_beta=3e-3)


def policy_for(method: str, f, learners, seed: int, cfg: BenchmarkConfig, sid: str | None = None):
    """Joint policy of ``method`` on the scenario of ``f`` (training it first when it learns).
    The PPO variants need the scenario id ``sid`` (they train on its vector env)."""
    from p2penv.agents.baselines import RandomAgent, TruthfulAgent
    from p2penv.agents.qlearning import QConfig, QLearners
    from p2penv.agents.rollout import Assigned, CompetitivePolicy

    env = f()
    truth = TruthfulAgent(env.config)
    names = learners if learners is not None else list(env.possible_agents)
    if method == "random":
        return Assigned({a: RandomAgent(seed) for a in names}, default=truth)
    if method == "truthful":
        return Assigned(truth)
    if method == "competitive":
        return CompetitivePolicy()
    if method in PPO_VARIANTS:
        from p2penv.agents.vector_ppo import VectorPPOConfig, train_vector_ppo

        if sid is None:
            raise ValueError(f"{method}: needs the scenario id (sid) to build its vector env")
        mode, critic = PPO_VARIANTS[method]
        c = VectorPPOConfig(total_steps=cfg.ppo_steps * len(names), num_envs=cfg.ppo_envs, seed=seed,
                            mode=mode, critic=critic, torch_threads=1,
                            learners=None if learners is None else tuple(learners))
        res = train_vector_ppo(lambda num_envs, s: p2penv.make_vector(sid, num_envs, seed=s), c, others=truth)
        return res.policy.joint(truth)
    if method == "qlearning":
        q = QLearners(f, QConfig(total_steps=cfg.q_steps, n_sessions=1, beta=cfg.q_beta, seed=seed),
                      learners=learners, env_seed=seed)
        q.train()
        return q.policy(0)
    raise ValueError(f"method: unknown {method!r}; known {METHODS}")


def benchmark_row(cfg: BenchmarkConfig, sid: str, method: str, seed: int) -> list[dict]:
    """Train (if it learns) and evaluate one (scenario, method, seed) cell on the episode seeded ``seed``."""
    f, learners, ns = scenario(sid, seed)
    pol = policy_for(method, f, learners, seed, cfg, sid)
    auction = sid.startswith("auction_v0")
    r = evaluate(f, pol, seed=seed, n_sellers=ns, nash_players=range(ns) if ns else None, nash_conv=auction)
    if ns is None:  # every agent learns: profit per agent
        r["profit"] = r["profit_all"] / len(f().possible_agents)
    if not auction:
        r["nash_conv"] = float("nan")
    return [dict(scenario=sid, method=method, seed=seed, **r)]


def cells(cfg: BenchmarkConfig) -> list[tuple[str, str, int]]:
    return [(sc, m, s) for sc in cfg.scenarios for m in cfg.methods if applies(m, sc) for s in cfg.seeds]


DETERMINISTIC = ("truthful", "competitive")  # no randomness of their own (random draws from its seed)
LEARNERS = ("ppo_shared", "mappo", "ppo_independent", "qlearning")
PAIRED_METRICS = ("profit", "welfare")
TAUS = tuple(round(-1.0 + 0.05 * k, 2) for k in range(41))  # performance-profile thresholds of the normalised profit


def summarise(rows: list[dict], *, reps: int = stats.DEFAULT_REPS) -> list[dict]:
    """Per (scenario, method): ``stats.summarise_rows`` of ``METRICS`` (``<m>``: the mean of the finite seeds),
    ``n_seeds``, ``method_deterministic``."""
    out = stats.summarise_rows(rows, ("scenario", "method"), METRICS, reps=reps)
    for d in out:
        d["n_seeds"] = sum((r["scenario"], r["method"]) == (d["scenario"], d["method"]) for r in rows)
        for m in METRICS:
            d[m] = d[f"{m}_mean"]
        d["method_deterministic"] = d["method"] in DETERMINISTIC
    return out


def paired(rows: list[dict], *, reps: int = stats.DEFAULT_REPS) -> list[dict]:
    """Every method against truthful per scenario on ``PAIRED_METRICS``, paired by seed."""
    out = []
    for sc in dict.fromkeys(r["scenario"] for r in rows):
        methods = list(dict.fromkeys(r["method"] for r in rows if r["scenario"] == sc))
        if "truthful" not in methods:
            continue
        for m in (x for x in methods if x != "truthful"):
            for metric in PAIRED_METRICS:
                c = stats.paired_by_seed(rows, metric, m, "truthful", where=dict(scenario=sc), reps=reps)
                out.append(dict(scenario=sc, x=m, y="truthful", metric=metric, pairing="seed", **stats.paired_dict(c)))
    return out


def normalised_profit(rows: list[dict]) -> dict[tuple[str, str], list[float]]:
    """(scenario, method) -> per-seed profit normalised per scenario: (profit - truthful's mean) / (the largest
    minus the smallest method mean of that scenario), so 0 = truthful, and the methods' means span a width of 1
    (scale-free across scenarios; NaN stays NaN)."""
    out: dict[tuple[str, str], list[float]] = {}
    for sc in dict.fromkeys(r["scenario"] for r in rows):
        rs = [r for r in rows if r["scenario"] == sc]
        means = {m: float(np.nanmean([r["profit"] for r in rs if r["method"] == m]))
                 for m in dict.fromkeys(r["method"] for r in rs)
                 if np.isfinite([r["profit"] for r in rs if r["method"] == m]).any()}
        if "truthful" not in means:
            continue
        span = max(means.values()) - min(means.values())
        span = span if span > 0 else 1.0
        for r in rs:
            out.setdefault((sc, r["method"]), []).append((r["profit"] - means["truthful"]) / span)
    return out


def aggregate(rows: list[dict], *, reps: int = stats.DEFAULT_REPS) -> dict:
    """Across scenarios (tasks): probability of improvement on profit (per scenario P(X > Y) of the raw profit,
    averaged over the scenarios both methods ran; stratified-bootstrap 95 % interval) of every method over
    truthful and of every pair of learners, and performance profiles (fraction of runs with normalised profit
    > tau, averaged over those scenarios) with the IQM of the normalised profit."""
    methods = list(dict.fromkeys(r["method"] for r in rows))
    scen = list(dict.fromkeys(r["scenario"] for r in rows))

    def scores(m, tasks):
        return [[r["profit"] for r in rows if r["scenario"] == sc and r["method"] == m] for sc in tasks]

    def shared(a, b):  # scenarios where both methods have a finite run
        return [sc for sc in scen if all(np.isfinite(scores(m, [sc])[0]).any() for m in (a, b))]

    pairs = [(m, "truthful") for m in methods if m != "truthful"]
    learners = [m for m in methods if m in LEARNERS]
    pairs += [(a, b) for i, a in enumerate(learners) for b in learners[i + 1:]]
    poi = []
    for a, b in pairs:
        tasks = shared(a, b)
        if not tasks:
            continue
        iv = stats.probability_of_improvement(scores(a, tasks), scores(b, tasks), reps=reps)
        poi.append(dict(x=a, y=b, metric="profit", scenarios=tasks, p=iv.point, lo=iv.lo, hi=iv.hi,
                        n_finite=iv.n_finite, n_total=iv.n_total))
    norm = normalised_profit(rows)
    profiles = []
    for m in methods:
        tasks = [sc for sc in scen if (sc, m) in norm and np.isfinite(norm[(sc, m)]).any()]
        if not tasks:
            continue
        sc_list = [norm[(sc, m)] for sc in tasks]
        iqm = stats.stratified_bootstrap(sc_list, "iqm", reps=reps)
        profiles.append(dict(method=m, scenarios=tasks, taus=list(TAUS),
                             fraction_above=[float(x) for x in stats.performance_profile(sc_list, TAUS)],
                             normalised_iqm=iqm.point, normalised_iqm_lo=iqm.lo, normalised_iqm_hi=iqm.hi,
                             n_finite=iqm.n_finite, n_total=iqm.n_total))
    return dict(probability_of_improvement=poi, performance_profiles=profiles,
                normalisation="per scenario: (profit - truthful mean) / (max - min of the method means)")


def marl_eval(rows: list[dict]) -> dict:
    """The rows in the marl-eval layout: env (``auction_v0``/``dlmp_v0``) -> task (scenario name) ->
    algorithm -> run_<seed> -> metrics (``stats.marl_eval_json``)."""
    flat = [dict(r, env=r["scenario"].split("/")[0], task=r["scenario"].split("/", 1)[-1]) for r in rows]
    return stats.marl_eval_json(flat, METRICS, env_key="env", task_key="task", algorithm_key="method",
                                run_key="seed")


def outputs(rows: list[dict]) -> dict:
    """Summary, paired comparisons and the across-scenario aggregate of a benchmark's rows."""
    return dict(summary=summarise(rows), paired=paired(rows), aggregate=aggregate(rows))


def _write(out: Path, rows: list[dict], res: dict, meta: dict) -> None:
    from p2penv.agents.checkpoint import atomic_write_json

    save_outputs(out, "algorithm_benchmark", rows, res["summary"], meta, paired=res["paired"],
                 aggregate=res["aggregate"])
    atomic_write_json(out / "algorithm_benchmark_marl_eval.json", marl_eval(rows))


def run(cfg: BenchmarkConfig, out_dir: str | Path | None = None, resume: bool = False, ray=None,
        docs: bool = False) -> dict:
    """Run the benchmark; every finished (scenario, method, seed) row is checkpointed in ``out_dir`` and
    ``resume=True`` skips those (no retraining). ``docs``: also write ``docs/results/algorithm_benchmark.json``
    (and its marl-eval twin ``algorithm_benchmark_marl_eval.json``)."""
    t0 = time.perf_counter()
    todo = cells(cfg)
    ck = RowCheckpoint(out_dir, "algorithm_benchmark", asdict(cfg), resume, total=len(todo))
    run_tasks([Task(benchmark_row, (cfg, sc, m, s), (dict(scenario=sc, method=m, seed=s),), f"{sc} {m} seed={s}")
               for sc, m, s in todo], ck, ray)
    rows = [ck.find(scenario=sc, method=m, seed=s) for sc, m, s in todo]
    res = outputs(rows)
    summary = res["summary"]
    meta = dict(config=asdict(cfg), wall_s=time.perf_counter() - t0, resumed_rows=ck.reused,
                statistics="experiments.stats: IQM/mean/median, stratified percentile bootstrap 95 % "
                           f"({stats.DEFAULT_REPS} replicates); paired by seed: Wilcoxon signed-rank + paired "
                           "bootstrap; probability of improvement and performance profiles across scenarios")
    if out_dir is not None:
        out = Path(out_dir)
        _write(out, rows, res, meta)
        plot(summary, cfg, out / "algorithm_benchmark.png")
    if docs:
        _write(DOCS / "results", rows, res, meta)
        plot(summary, cfg, DOCS / "figures" / "algorithm_benchmark.png")
    echo(format_table(summary, ("scenario", "method", "profit_iqm", "profit_n", "welfare_iqm", "nash_conv_iqm",
                                "price_iqm")))
    echo(format_table([p for p in res["paired"] if p["metric"] == "profit"],
                      ("scenario", "x", "y", "mean_diff", "p_wilcoxon", "wins", "losses", "ties", "n_pairs")))
    echo(f"cells: IQM over seeds {list(cfg.seeds)} (JSON: bootstrap 95 % intervals, mean, median, finite counts); "
         "profit: mean learner profit $/episode; welfare: gains from trade $/episode (true values); nash_conv: "
         "learners' stage-game NashConv $/step (auction_v0 only, nan on dlmp_v0); price: mean clearing price "
         "$/kWh; paired: x - truthful on the same seeded episodes")
    return dict(rows=rows, summary=summary, paired=res["paired"], aggregate=res["aggregate"], meta=meta)


def plot(summary, cfg, path):
    """Learner profit per method and scenario: IQM over seeds, error bars its bootstrap 95 % interval."""
    fig, axes = new_figure(len(cfg.scenarios), 4.5, 3.2)
    for ax, sc in zip(axes, cfg.scenarios):
        rs = [r for r in summary if r["scenario"] == sc]
        y = np.array([r["profit_iqm"] for r in rs], dtype=float)
        err = np.nan_to_num(np.abs(np.array([[r["profit_iqm_lo"] for r in rs], [r["profit_iqm_hi"] for r in rs]],
                                            dtype=float) - y))
        ax.bar(range(len(rs)), y, yerr=err, capsize=3)
        ax.set_xticks(range(len(rs)), [r["method"] for r in rs], rotation=30, fontsize=7)
        ax.set_title(sc, fontsize=8)
        ax.set_ylabel("learner profit $/episode (IQM)")
    return save_figure(fig, path)


def main(argv=None, prog: str | None = None) -> dict:
    ap = study_parser(__doc__, prog, "results/algorithm_benchmark", docs="also write "
                      "docs/results/algorithm_benchmark.json and the figure")
    ap.add_argument("--seeds", type=int, nargs="*")
    ap.add_argument("--scenarios", nargs="*", help="registered scenario ids (p2penv.list_scenarios())")
    ap.add_argument("--methods", nargs="*", choices=METHODS)
    a = ap.parse_args(argv)
    over = overrides(a, "seeds", "scenarios", "methods")
    for sid in over.get("scenarios", ()):
        try:
            p2penv.get_spec(sid)
        except ValueError as e:
            ap.error(str(e))
    cfg = configured(ap, QUICK if a.quick else BenchmarkConfig(), **over)
    return run_study(ap, run, cfg, a.out, resume=a.resume, ray=a.ray, docs=a.docs)


if __name__ == "__main__":
    main()
