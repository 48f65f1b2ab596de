"""Baselines of every registered scenario: the table of ``docs/scenarios.md``.

For each scenario of ``p2penv.list_scenarios()`` (those whose extras are installed) and each seed:
random, truthful, competitive (the privileged benchmark: per step, or the episode schedule of
``p2penv.market.competitive_horizon`` when batteries link the steps) and Q-learning where its
kernel applies (auction_v0, 2-dim actions, constant tariffs). Metrics per episode: mean profit
per agent ($), gains from trade against every buyer importing at retail ($), mean clearing price
($/kWh). Rows are checkpointed; the summary is written to ``docs/results/scenario_baselines.json``
and the table in ``docs/scenarios.md`` is regenerated between its markers.

    python -m experiments.scenario_baselines [--quick] [--out results/scenario_baselines] [--resume]
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import p2penv

from .algorithm_benchmark import BenchmarkConfig, policy_for, scenario
from .checkpoints import CheckpointError, RowCheckpoint
from .metrics import evaluate, summarise
from .output import echo, format_table

METHODS = ("random", "truthful", "competitive", "qlearning")
METRICS = ("profit", "welfare", "price")
DOCS = Path(__file__).resolve().parents[1] / "docs"
BEGIN, END = "<!-- baselines:begin -->", "<!-- baselines:end -->"


@dataclass(frozen=True)
class BaselineConfig:
    seeds: tuple[int, ...] = (0, 1, 2)
    q_steps: int = 40_000
    q_beta: float = 1.5e-4
    scenarios: tuple[str, ...] | None = None  # None: every registered scenario


QUICK = BaselineConfig(seeds=(0,), q_steps=500, q_beta=3e-3,
                       scenarios=("auction_v0/sellers3-v0", "auction_v0/storage-community-v0", "dlmp_v0/teaching4-v0"))


def _installed(extra: str) -> bool:
    mods = {"profiles": ("pvlib", "demandlib")}[extra]
    return all(importlib.util.find_spec(m) is not None for m in mods)


def _applies(method: str, sid: str) -> bool:
    if method != "qlearning":
        return True
    spec = p2penv.get_spec(sid)
    gen = spec.config.get("generator")
    return spec.env == "auction_v0" and not getattr(gen, "has_storage", False) and not hasattr(gen, "prices")


def run(cfg: BaselineConfig, out_dir: str | Path | None = None, resume: bool = False, docs: bool = False) -> dict:
    t0 = time.perf_counter()
    ck = RowCheckpoint(out_dir, "scenario_baselines", asdict(cfg), resume)
    ids = cfg.scenarios or tuple(p2penv.list_scenarios())
    bench = BenchmarkConfig(q_steps=cfg.q_steps, q_beta=cfg.q_beta)
    for sid in ids:
        spec = p2penv.get_spec(sid)
        missing = [x for x in spec.extras if not _installed(x)]
        if missing:
            echo(f"scenario_baselines: skipping {sid} (needs pip install p2penv[{','.join(missing)}])")
            continue
        for s in cfg.seeds:
            f, learners, ns = scenario(sid, s)
            for m in METHODS:
                if not _applies(m, sid) or ck.find(scenario=sid, method=m, seed=s) is not None:
                    continue
                t1 = time.perf_counter()
                pol = policy_for(m, f, learners, s, bench)
                r = evaluate(f, pol, seed=s, n_sellers=ns, nash_conv=False)
                if ns is None:
                    r["profit"] = r["profit_all"] / len(f().possible_agents)
                ck.add(dict(scenario=sid, method=m, seed=s, train_s=time.perf_counter() - t1, **r))
    summary = summarise(ck.rows, ("scenario", "method"), METRICS)
    meta = dict(config=asdict(cfg), wall_s=time.perf_counter() - t0, seeds=list(cfg.seeds))
    table = format_table(summary, ("scenario", "method", "profit", "welfare", "price"))
    echo(table)
    if docs:
        (DOCS / "results").mkdir(exist_ok=True)
        (DOCS / "results" / "scenario_baselines.json").write_text(
            json.dumps(dict(meta=meta, summary=summary, rows=ck.rows), indent=1, default=float) + "\n")
        page = (DOCS / "scenarios.md").read_text()
        a, b = page.index(BEGIN) + len(BEGIN), page.index(END)
        note = (f"\n\nMean ± 95 % CI over seeds {list(cfg.seeds)} (`python -m experiments.scenario_baselines "
                f"--docs`, {meta['wall_s']:.0f} s). profit: $/episode per learner (per agent where all learn); "
                "welfare: gains from trade $/episode against every buyer importing at retail; price: mean "
                "clearing price $/kWh (dlmp_v0: the substation's energy price).\n\n")
        (DOCS / "scenarios.md").write_text(page[:a] + note + table + "\n\n" + page[b:])
    return dict(rows=ck.rows, summary=summary, meta=meta)


def main(argv=None, prog: str | None = None) -> dict:
    ap = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default="results/scenario_baselines")
    ap.add_argument("--resume", action="store_true", help="reuse the rows checkpointed in --out")
    ap.add_argument("--docs", action="store_true", help="write docs/results/scenario_baselines.json and the table")
    ap.add_argument("--seeds", type=int, nargs="*")
    a = ap.parse_args(argv)
    cfg = QUICK if a.quick else BaselineConfig()
    if a.seeds:
        cfg = replace(cfg, seeds=tuple(a.seeds))
    try:
        return run(cfg, a.out, resume=a.resume, docs=a.docs)
    except CheckpointError as e:
        ap.exit(2, f"{ap.prog}: error: {e}\n")


if __name__ == "__main__":
    main()
