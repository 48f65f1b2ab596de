"""The result tables of ``docs/results.md``, generated from the committed JSON files in ``docs/results/``.

Each table sits in a page of ``PAGES`` (``docs/results.md``) between ``<!-- results:NAME:begin -->`` and
``<!-- results:NAME:end -->`` markers and is rewritten from ``docs/results/NAME.json`` (the output of the
experiment's ``--docs`` / ``--out`` run); the text around the markers is written by hand. Claims are
made here, from the data, by one rule: a difference is stated only where the 95 % t intervals of the
two means do not overlap; otherwise the text says that no difference was detected at that budget.
Every stated number carries its interval.

    python -m p2penv.experiments.report            # rewrite the tables
    python -m p2penv.experiments.report --check    # exit 1 if a page is out of date
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "results"
PAGES = (ROOT / "docs" / "results.md",)  # pages whose marked sections are generated
TOL = 5e-4  # gaps below half the tables' last digit (3 decimals) are not claimed as differences


def fmt(x: float, ci: float | None = None, digits: int = 3) -> str:
    """``x ± ci`` (no ``±`` when the interval is 0 or undefined; ``nan`` for a missing value)."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "nan"
    s = f"{x:.{digits}f}"
    if ci is not None and isinstance(ci, (int, float)) and math.isfinite(ci) and abs(ci) >= 0.5 * 10 ** -digits:
        s += f" ± {ci:.{digits}f}"
    return s


def separated(a: dict, b: dict, key: str) -> bool:
    """The 95 % intervals of ``key`` in summary rows ``a`` and ``b`` do not overlap (a zero-width
    interval counts as a point; a gap below ``TOL``, invisible at the tables' precision, is not a difference)."""
    ma, mb = a[key], b[key]
    ca, cb = (r.get(key + "_ci") for r in (a, b))
    ca = 0.0 if ca is None or not math.isfinite(ca) else ca
    cb = 0.0 if cb is None or not math.isfinite(cb) else cb
    if not (math.isfinite(ma) and math.isfinite(mb)):
        return False
    return ma + ca < mb - cb - TOL or mb + cb < ma - ca - TOL


def compare(a: dict, b: dict, key: str, what: str) -> str:
    """One sentence comparing ``key`` between summary rows ``a`` and ``b`` (labelled by ``what``)."""
    la, lb = what.format(**a), what.format(**b)
    va, vb = fmt(a[key], a.get(key + "_ci")), fmt(b[key], b.get(key + "_ci"))
    if not (math.isfinite(a[key]) and math.isfinite(b[key])):
        return f"{key} not comparable between {la} ({va}) and {lb} ({vb}): undefined where nan"
    if separated(a, b, key):
        verb = "falls" if b[key] < a[key] else "rises"
        return f"{key} {verb} from {va} ({la}) to {vb} ({lb}); the intervals separate"
    return f"no difference in {key} detected between {la} ({va}) and {lb} ({vb}) at this budget"


def table(rows: list[dict], cols: list[tuple[str, str]]) -> str:
    """Markdown table; ``cols``: (header, key); numeric keys print as ``mean ± ci``."""
    out = ["| " + " | ".join(h for h, _ in cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        cells = []
        for _, k in cols:
            v = r.get(k)
            cells.append(fmt(v, r.get(k + "_ci")) if isinstance(v, float) else str(v))
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def market_power_section(d: dict) -> str:
    cfg = d["meta"]["config"]
    summ = d["summary"]
    lines = [f"Seeds per cell: {len(cfg['seeds'])}; PPO variants: {cfg['ppo_steps']:,} market steps per run "
             f"({cfg['ppo_envs']} markets x 24-step rollouts, agent-steps = that x N); Q-learning: "
             f"{cfg['q_steps']:,} steps per session; NashConv exact. Cells: mean ± 95 % t interval over seeds "
             "(no ±: identical across seeds).", ""]
    for st in cfg["settings"]:
        rows = sorted((r for r in summ if r["setting"] == st), key=lambda r: (r["N"], cfg["methods"].index(r["method"])))
        lines += [f"**{st}**", "", table(rows, [("N", "N"), ("method", "method"), ("markup_rel", "markup_rel"),
                                                 ("lerner", "lerner"), ("hhi", "hhi"),
                                                 ("welfare_loss_rel", "welfare_loss_rel"),
                                                 ("nash_conv $/step", "nash_conv")]), ""]
    lines += ["Claims (generated: a difference is stated only where the 95 % intervals separate):", ""]
    lo, hi = min(cfg["ns"]), max(cfg["ns"])
    for st in cfg["settings"]:
        for m in cfg["methods"]:
            if m == "competitive":
                continue
            a = next((r for r in summ if r["setting"] == st and r["method"] == m and r["N"] == lo), None)
            b = next((r for r in summ if r["setting"] == st and r["method"] == m and r["N"] == hi), None)
            if a and b:
                lines.append(f"* {st}, {m}: " + compare(a, b, "markup_rel", "N = {N}") + ".")
    return "\n".join(lines)


def curves_section(d: dict) -> str:
    """Where each learning method's NashConv stood at its first and last evaluation, per setting and N."""
    out = ["| setting | N | method | agent-steps | NashConv first eval | NashConv last eval |", "|---|---|---|---|---|---|"]
    for c in d.get("curves", []):
        s = c["agent_steps"]
        out.append(f"| {c['setting']} | {c['N']} | {c['method']} | {s[0]:,} -> {s[-1]:,} | "
                   f"{fmt(c['nash_conv'][0], c['nash_conv_ci'][0])} | {fmt(c['nash_conv'][-1], c['nash_conv_ci'][-1])} |")
    return "\n".join(out)


def leaderboard_section(d: dict) -> str:
    cfg = d["meta"]["config"]
    lines = [f"Seeds per cell: {len(cfg['seeds'])}; PPO variants {cfg['ppo_steps']:,} market steps per run; "
             f"Q-learning {cfg['q_steps']:,} steps. Ranked by mean learner profit $/episode; welfare = gains "
             "from trade $/episode (true values); NashConv $/step (auction_v0 only). Mean ± 95 % t interval.", ""]
    for sc in cfg["scenarios"]:
        rows = sorted((r for r in d["summary"] if r["scenario"] == sc), key=lambda r: -r["profit"])
        for k, r in enumerate(rows):
            r["rank"] = k + 1
        lines += [f"**`{sc}`**", "", table(rows, [("#", "rank"), ("method", "method"), ("profit", "profit"),
                                                   ("welfare", "welfare"), ("nash_conv", "nash_conv"),
                                                   ("price $/kWh", "price")]), ""]
        learned = [r for r in rows if r["method"] not in ("random", "truthful", "competitive")]
        if len(learned) >= 2:
            best, second = learned[0], learned[1]
            lines += ["* " + compare(second, best, "profit", "{method}") + ".", ""]
    return "\n".join(lines)


def collusion_section(d: dict) -> str:
    """Per (mechanism, N, variant): Delta, clearing price, convergence and punishment shares (Wilson
    intervals), and for the frozen variant Delta before re-training and seller 0's gain."""
    cells = d["cells"]
    out = ["| mechanism | N | variant | sessions | Delta | price $/kWh | converged | punished | Delta before (frozen) | seller-0 gain $/step (frozen) |",
           "|---|---|---|---|---|---|---|---|---|---|"]

    def share(c, k):
        return f"{c[k + '_share']:.0%} ({c[k + '_lo']:.0%}-{c[k + '_hi']:.0%})"

    for c in cells:
        frozen = c["variant"] == "frozen"
        out.append(f"| {c['mechanism']} | {c['N']} | {c['variant']} | {c['sessions']} | {fmt(c['delta'], c['delta_ci'], 2)} | "
                   f"{fmt(c['price'], c['price_ci'])} | {share(c, 'converged')} | {share(c, 'punish')} | "
                   + (f"{fmt(c['delta_before'], c.get('delta_before_ci'), 2)} | {fmt(c['gain0'], c.get('gain0_ci'))} |"
                      if frozen else "- | - |"))
    return "\n".join(out)


def exploitability_section(d: dict) -> str:
    """Per (market, profile): stage-game NashConv and learned exploitability, $/episode summed over players."""
    out = ["| market | profile | players | stage NashConv $/episode | learned exploitability $/episode (clipped) | responder agent-steps |",
           "|---|---|---|---|---|---|"]
    for r in d["summary"]:
        out.append(f"| {r['scenario']} | {r['profile']} | {r['players']} | {fmt(r['stage'], r.get('stage_ci'), 2)} | "
                   f"{fmt(r['exploitability'], r.get('exploitability_ci'), 2)} ({fmt(r['exploitability_clipped'], None, 2)}) | "
                   f"{r['agent_steps']:,} |")
    return "\n".join(out)


def learner_validation_section(d: dict) -> str:
    """Per (task, learner): passes of seeds, the task's metric (median, IQM with its 95 % bootstrap
    interval, min-max over seeds), the budget and the median wall seconds (to the first pass)."""
    out = ["| task | learner | passed | metric | median | IQM [95 % bootstrap] | min-max | budget (agent-steps) "
           "| wall s (to pass) |", "|---|---|---|---|---|---|---|---|---|"]
    for r in d["summary"]:
        if not r.get("applicable", True):
            out.append(f"| {r['task']} | {r['learner']} | n/a | {r['reason']} | | | | | |")
            continue
        for m in ("l2", "utility_loss", "exploitability") if r["task"].startswith("bayesian/") else ("score",):
            if f"{m}_iqm_ci" not in r:
                continue
            lo, hi = r[f"{m}_iqm_ci"]
            out.append(f"| {r['task']} | {r['learner']} | {r['passed']}/{r['seeds']} | {m} "
                       f"({r[f'{m}_n_finite']} finite) | {r[f'{m}_median']:.4f} | {r[f'{m}_iqm']:.4f} [{lo:.4f}, "
                       f"{hi:.4f}] | {r[f'{m}_min']:.4f}-{r[f'{m}_max']:.4f} | {r['budget']:,} | "
                       f"{r['wall_s_median']:.0f} ({fmt(r['time_to_solve_s_median'], None, 0)}) |")
    return "\n".join(out)


SECTIONS = {
    "market_power": ("market_power.json", market_power_section),
    "market_power_curves": ("market_power.json", curves_section),
    "algorithm_benchmark": ("algorithm_benchmark.json", leaderboard_section),
    "collusion": ("collusion.json", collusion_section),
    "exploitability": ("exploitability.json", exploitability_section),
    "learner_validation": ("learner_validation.json", learner_validation_section),
}


def render(page: str, results: Path = RESULTS) -> str:
    """``page``'s text with every marked section regenerated from its JSON (sections whose JSON is
    missing are left as they are)."""
    for name, (fname, fn) in SECTIONS.items():
        begin, end = f"<!-- results:{name}:begin -->", f"<!-- results:{name}:end -->"
        if begin not in page or not (results / fname).exists():
            continue
        i, j = page.index(begin) + len(begin), page.index(end)
        body = fn(json.loads((results / fname).read_text()))
        page = page[:i] + "\n" + body + "\n" + page[j:]
    return page


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m p2penv.experiments.report", description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="exit 1 if a page differs from the JSON files")
    a = ap.parse_args(argv)
    stale = []
    for path in PAGES:
        old = path.read_text()
        new = render(old)
        if new != old:
            stale.append(path)
            if not a.check:
                path.write_text(new)
    if a.check and stale:
        print(f"{', '.join(str(p.relative_to(ROOT)) for p in stale)}: result tables out of date: run "
              "python -m p2penv.experiments.report", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
