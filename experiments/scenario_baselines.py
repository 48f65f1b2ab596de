"""Baselines of every registered scenario: the table of ``docs/scenarios.md``.

For each scenario of ``p2penv.list_scenarios()`` (those whose extras are installed) and each seed:
random, truthful, competitive (the privileged benchmark: per step, or the episode schedule of
``p2penv.market.competitive_horizon`` when batteries link the steps), PPO with parameter sharing
(``p2penv.agents.vector_ppo`` on the scenario's vector env, every agent learning) and Q-learning where its
kernel applies (auction_v0, 2-dim actions, constant tariffs). Metrics per episode: mean profit
per agent ($), gains from trade against every buyer importing at retail ($), mean clearing price
($/kWh). Rows are checkpointed; the summary is written to ``docs/results/scenario_baselines.json``
and the table in ``docs/scenarios.md`` is regenerated between its markers.

    python -m p2penv.experiments.scenario_baselines [--quick] [--out results/scenario_baselines] [--resume]
"""
from __future__ import annotations

import importlib.util
import json
import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import p2penv

from .algorithm_benchmark import BenchmarkConfig, applies as _applies, policy_for, scenario
from .checkpoints import RowCheckpoint
from .dispatch import Task, run_tasks
from .metrics import evaluate, summarise
from .output import echo, format_table
from .study_cli import configured, overrides, run_study, study_parser

METHODS = ("random", "truthful", "competitive", "ppo_shared", "qlearning")
METRICS = ("profit", "welfare", "price")
DOCS = Path(__file__).resolve().parents[1] / "docs"
BEGIN, END = "<!-- baselines:begin -->", "<!-- baselines:end -->"


@dataclass(frozen=True)
class BaselineConfig:
    seeds: tuple[int, ...] = (0, 1, 2)
    q_steps: int = 40_000
    q_beta: float = 1.5e-4
    ppo_steps: int = 100_000  # agent-steps of the vector PPO trainer (parameter sharing, every agent learns)
    ppo_envs: int = 32
    scenarios: tuple[str, ...] | None = None  # None: every registered scenario


QUICK = BaselineConfig(seeds=(0,), q_steps=500, q_beta=3e-3, ppo_steps=2_000, ppo_envs=4,
                       scenarios=("auction_v0/sellers3-v0", "auction_v0/storage-community-v0", "dlmp_v0/teaching4-v0"))


def _ppo_shared(sid: str, seed: int, cfg: BaselineConfig):
    """Vector PPO with parameter sharing on the scenario's vector env; every agent learns."""
    from p2penv.agents.vector_ppo import VectorPPOConfig, train_vector_ppo

    c = VectorPPOConfig(total_steps=cfg.ppo_steps, num_envs=cfg.ppo_envs, seed=seed, torch_threads=1,
                        critic="local")  # shared PPO, as the rows are labelled (the default is MAPPO)
    res = train_vector_ppo(lambda num_envs, s: p2penv.make_vector(sid, num_envs, seed=s), c)
    return res.policy.joint()


def _installed(extra: str) -> bool:
    mods = {"profiles": ("pvlib", "demandlib"), "simbench": ("simbench",)}[extra]
    return all(importlib.util.find_spec(m) is not None for m in mods)


def hand_written_cards(text: str) -> set[str]:
    """Scenario ids with a hand-written card (a ``### `id``` heading) in ``text``."""
    return set(re.findall(r"^### `([^`]+)`", text, flags=re.M))


def scenario_cards(skip: set[str] = frozenset()) -> str:
    """The text of ``docs/scenarios.md`` before its baseline table: one card per registered scenario, except
    those in ``skip`` (documented by hand in the page's sections after the table)."""
    from p2penv.registry import SCENARIOS

    lines = ["# Scenarios", "",
    "Every scenario is `p2penv.make(id)` (the parallel PettingZoo env) or `p2penv.make_vector(id, E)` (E markets",
    "as arrays); `p2penv.list_scenarios()` lists them. Ids are `<env>/<name>-v<N>`: a scenario's numbers never",
    "change under its id (a test pins its first steps by hash, `tests/test_registry.py`); a change is a new",
    "version. Options can be overridden (`p2penv.make(id, seed=3, mechanism=\"pay_as_bid\")`), which makes a",
    "different experiment, not the benchmark.", "",
    "Profiles and tariffs: the stylised scenarios use `p2penv.generators.HouseholdMix` (residential double-peak",
    "demand, a clear-sky PV bell scaled by one seeded cloudiness per day, lognormal demand noise). The",
    "`profile-*` scenarios use `p2penv.generators.community.ProfileCommunity`: PV from pvlib (solar position,",
    "Ineichen clear sky, plane-of-array transposition, 0.86 derate, times a seeded Beta/AR(1) cloudiness), loads",
    "from demandlib's BDEW standard load profiles (H0 dynamic for households, G0 for commerce, weekday and",
    "season aware) with seeded noise, a time-of-use retail tariff (0.18 $/kWh 22-07 h, 0.26 shoulder, 0.38",
    "17-21 h) and a wholesale price model (daily double peak, summer midday dip, seasonal cosine) that pays",
    "exports; no downloads at run time (`pip install p2penv[profiles]`).", ""]
    for sid in sorted(set(SCENARIOS) - set(skip)):
        s = SCENARIOS[sid]
        cfg = dict(s.config)
        gen = cfg.pop("generator", None)
        env = p2penv.make(sid)
        obs_dim = env.observation_space(env.possible_agents[0]).shape[0]
        act_dim = env.action_space(env.possible_agents[0]).shape[0]
        bat = getattr(gen, "has_storage", False)
        lines += [f"## `{sid}`", "",
                  f"* **question**: {s.question}",
                  f"* **agents and DER**: {s.description}",
                  f"* **env**: `{s.env}`, {len(env.possible_agents)} agents, {env.max_cycles} steps of "
                  f"{env.config.dt_h:g} h, action {act_dim}-dim ({'price, dispatch, storage' if act_dim == 3 else 'price, dispatch'}), "
                  f"observation {obs_dim} fields ([docs/fields.md](fields.md))",
                  f"* **storage**: {'home batteries (see `p2penv.market.storage`)' if bat else 'none'}",
                  f"* **tariffs**: {'time-of-use retail, wholesale feed-in' if hasattr(gen, 'prices') else f'retail {env.config.retail_tariff} $/kWh, feed-in {env.config.feed_in_tariff} $/kWh'}",
                  f"* **learners in the benchmarks**: {', '.join(s.learners) if s.learners else 'every agent'}",
                  f"* **options**: `{', '.join(f'{k}={v!r}' for k, v in cfg.items())}`" + (f"; extras: `{', '.join(s.extras)}`" if s.extras else ""),
                  ""]
    lines += ["## Baselines", "",
    "Produced by one command, `python -m p2penv.experiments.scenario_baselines --docs`, which also writes",
    "`docs/results/scenario_baselines.json` (every row and the summary). Methods: random (uniform actions),",
    "truthful (price-taking dispatch, bids at marginal cost or reservation value, batteries idle), competitive",
    "(the privileged benchmark: S1 per step, or with batteries the episode schedule of",
    "`p2penv.market.competitive_horizon`, played through the market), PPO shared (the vector PPO trainer,",
    "100k agent-steps, every agent learning), Q-learning (Calvano-style, where its kernel applies:",
    "auction_v0 with 2-dim actions and constant tariffs).", "",
    "<!-- baselines:begin -->", "(run `python -m p2penv.experiments.scenario_baselines --docs`)", "<!-- baselines:end -->", ""]
    return "\n".join(lines)


def baseline_row(cfg: BaselineConfig, sid: str, method: str, seed: int) -> list[dict]:
    """Train (if it learns) and evaluate one (scenario, method, seed) cell; ``train_s``: seconds it took."""
    t1 = time.perf_counter()
    f, learners, ns = scenario(sid, seed)
    bench = BenchmarkConfig(q_steps=cfg.q_steps, q_beta=cfg.q_beta)
    pol = _ppo_shared(sid, seed, cfg) if method == "ppo_shared" else policy_for(method, f, learners, seed, bench)
    r = evaluate(f, pol, seed=seed, n_sellers=ns, nash_conv=False)
    if ns is None:
        r["profit"] = r["profit_all"] / len(f().possible_agents)
    return [dict(scenario=sid, method=method, seed=seed, train_s=time.perf_counter() - t1, **r)]


def run(cfg: BaselineConfig, out_dir: str | Path | None = None, resume: bool = False, docs: bool = False,
        ray=None) -> dict:
    """Every applicable (scenario, method, seed) row, as tasks (``ray``: None, "local" or a cluster
    address; ``p2penv.experiments.dispatch``); ``docs`` rewrites docs/scenarios.md and its JSON."""
    t0 = time.perf_counter()
    ids = cfg.scenarios or tuple(p2penv.list_scenarios())
    runnable = [sid for sid in ids if all(_installed(x) for x in p2penv.get_spec(sid).extras)]
    ck = RowCheckpoint(out_dir, "scenario_baselines", asdict(cfg), resume,
                       total=len(cfg.seeds) * sum(_applies(m, sid) for sid in runnable for m in METHODS))
    for sid in ids:
        missing = [x for x in p2penv.get_spec(sid).extras if not _installed(x)]
        if missing:
            echo(f"scenario_baselines: skipping {sid} (needs pip install p2penv[{','.join(missing)}])")
    cells = [(sid, m, s) for sid in runnable for s in cfg.seeds for m in METHODS if _applies(m, sid)]
    run_tasks([Task(baseline_row, (cfg, sid, m, s), (dict(scenario=sid, method=m, seed=s),), f"{sid} {m} seed={s}")
               for sid, m, s in cells], ck, ray)
    rows = [ck.find(scenario=sid, method=m, seed=s) for sid, m, s in cells]
    summary = summarise(rows, ("scenario", "method"), METRICS)
    meta = dict(config=asdict(cfg), wall_s=time.perf_counter() - t0, seeds=list(cfg.seeds))
    table = format_table(summary, ("scenario", "method", "profit", "welfare", "price"))
    echo(table)
    if docs:
        (DOCS / "results").mkdir(exist_ok=True)
        (DOCS / "results" / "scenario_baselines.json").write_text(
            json.dumps(dict(meta=meta, summary=summary, rows=rows), indent=1, default=float) + "\n")
        # the hand-written sections after the table stay, and their scenarios keep their own cards there
        old = (DOCS / "scenarios.md").read_text() if (DOCS / "scenarios.md").exists() else ""
        tail = old[old.index(END) + len(END):] if END in old else "\n"
        page = scenario_cards(skip=hand_written_cards(tail))
        a = page.index(BEGIN) + len(BEGIN)
        note = (f"\n\nMean ± 95 % CI over seeds {list(cfg.seeds)} (`python -m p2penv.experiments.scenario_baselines "
                "--docs`). profit: $/episode per learner (per agent where all learn); welfare: gains from trade "
                "$/episode against every buyer importing at retail; price: mean clearing price $/kWh (dlmp_v0: "
                "the substation's energy price).\n\n")
        md = ["| scenario | method | profit | welfare | price |", "|---|---|---|---|---|"]
        md += [f"| {r['scenario']} | {r['method']} | " + " | ".join(
            f"{r[m]:.3f} ± {r[m + '_ci']:.3f}" if r[m + "_ci"] == r[m + "_ci"] else f"{r[m]:.3f}" for m in METRICS) + " |"
            for r in summary]
        table_md = "\n".join(md)
        (DOCS / "scenarios.md").write_text(page[:a] + note + table_md + "\n\n" + END + tail)
    return dict(rows=rows, summary=summary, meta=meta)


def main(argv=None, prog: str | None = None) -> dict:
    ap = study_parser(__doc__, prog, "results/scenario_baselines", docs="write docs/results/scenario_baselines.json "
                      "and the table")
    ap.add_argument("--seeds", type=int, nargs="*")
    a = ap.parse_args(argv)
    cfg = configured(ap, QUICK if a.quick else BaselineConfig(), **overrides(a, "seeds"))
    return run_study(ap, run, cfg, a.out, resume=a.resume, docs=a.docs, ray=a.ray)


if __name__ == "__main__":
    main()
