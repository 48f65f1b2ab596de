"""The result tables of ``docs/results.md``, generated from the committed JSON files in ``docs/results/``.

Each table sits in a page of ``PAGES`` (``docs/results.md``) between ``<!-- results:NAME:begin -->`` and
``<!-- results:NAME:end -->`` markers and is rewritten from ``docs/results/NAME.json`` (the output of the
experiment's ``--docs`` / ``--out`` run); the text around the markers is written by hand and makes no
numeric claim. Statistics are those of ``experiments.stats`` (docs/statistics.md): a cell is the IQM over
seeds with its stratified-bootstrap 95 % interval ("identical" where every seed gave the same value) and
its count of finite seeds. Claims are generated here, from the data, by two rules, and each names the
test, the seeds and the budget it rests on (and, for a claim about the game, the equilibrium set):

* **paired** (methods scored on the same seeded episodes, or sessions, or evaluation markets): a
  direction is stated only where the two-sided Wilcoxon signed-rank p < ``ALPHA`` *and* the paired
  bootstrap 95 % interval of the mean difference excludes 0; otherwise "no difference detected";
* **unpaired** (different markets, e.g. N = 2 against N = 20): only where the bootstrap 95 % intervals of
  the two IQMs do not overlap (a gap below ``TOL`` is not a difference).

A JSON written before these statistics existed (its summary lacks the IQM fields) is summarised here from
its ``runs`` with the study's own summary code, and the section says so.

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
PAGES = (ROOT / "docs" / "results.md", ROOT / "README.md")  # pages whose marked sections are generated
TOL = 5e-4  # gaps below half the tables' last digit (3 decimals) are not claimed as differences
ALPHA = 0.05  # paired claims: Wilcoxon p below this and the paired bootstrap interval excluding 0
LEGACY = ("*Summarised by the report from the JSON's runs (the JSON predates the IQM/bootstrap statistics; "
          "re-run the study to store them).*")


def finite(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def fmt(x: float, ci: float | None = None, digits: int = 3) -> str:
    """``x ± ci`` (no ``±`` when the interval is 0 or undefined; ``nan`` for a missing value)."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "nan"
    s = f"{x:.{digits}f}"
    if ci is not None and isinstance(ci, (int, float)) and math.isfinite(ci) and abs(ci) >= 0.5 * 10 ** -digits:
        s += f" ± {ci:.{digits}f}"
    return s


def iv(d: dict, key: str, digits: int = 3, stat: str = "iqm", counts: str = "short") -> str:
    """One metric of a summary row: ``x [lo, hi]`` (the ``stat`` and its bootstrap 95 % interval), ``x
    (identical)`` where every finite seed gave the same value, ``nan`` where none is finite; the finite
    count ``(k/n)`` is appended always (``counts="always"``) or only when some seed is missing ("short")."""
    x, lo, hi = d.get(f"{key}_{stat}"), d.get(f"{key}_{stat}_lo"), d.get(f"{key}_{stat}_hi")
    n, nt = d.get(f"{key}_n"), d.get(f"{key}_n_total")
    c = f" ({n}/{nt})" if n is not None and (counts == "always" or n != nt) else ""
    if not finite(x):
        return "nan" + c
    if d.get(f"{key}_deterministic"):
        return f"{x:.{digits}f} (identical)" + c
    if not (finite(lo) and finite(hi)):
        return f"{x:.{digits}f}" + c
    return f"{x:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]" + c


def separated(a: dict, b: dict, key: str) -> bool:
    """The bootstrap 95 % intervals of ``key``'s IQM in summary rows ``a`` and ``b`` do not overlap (an
    identical-seeds cell is a point; a gap below ``TOL``, invisible at the tables' precision, is not a
    difference; undefined values never separate)."""
    def bounds(d):
        x = d.get(key + "_iqm")
        lo, hi = d.get(key + "_iqm_lo", x), d.get(key + "_iqm_hi", x)
        return (lo, hi) if finite(x) and finite(lo) and finite(hi) else None

    ra, rb = bounds(a), bounds(b)
    if ra is None or rb is None:
        return False
    return ra[1] < rb[0] - TOL or rb[1] < ra[0] - TOL


def compare(a: dict, b: dict, key: str, what: str) -> str:
    """One sentence comparing the IQM of ``key`` between summary rows ``a`` and ``b`` (unpaired: labelled by
    ``what``), by the non-overlap of their bootstrap 95 % intervals."""
    la, lb = what.format(**a), what.format(**b)
    va, vb = iv(a, key), iv(b, key)
    if not (finite(a.get(key + "_iqm")) and finite(b.get(key + "_iqm"))):
        return f"{key} not comparable between {la} ({va}) and {lb} ({vb}): undefined where nan"
    if separated(a, b, key):
        verb = "falls" if b[key + "_iqm"] < a[key + "_iqm"] else "rises"
        return f"{key} (IQM) {verb} from {va} ({la}) to {vb} ({lb}); the bootstrap 95 % intervals separate"
    return f"no difference in {key} (IQM) detected between {la} ({va}) and {lb} ({vb}) at this budget"


def significant(p: dict) -> bool:
    """A paired comparison that supports a direction: Wilcoxon p < ALPHA and the paired interval excludes 0."""
    return (finite(p.get("p_wilcoxon")) and p["p_wilcoxon"] < ALPHA and finite(p.get("lo")) and finite(p.get("hi"))
            and (p["lo"] > 0 or p["hi"] < 0))


def paired_text(p: dict, digits: int = 3) -> str:
    """``Δ [lo, hi], p = .., k+/k-/k= of n`` of a paired comparison."""
    if not p.get("n_pairs"):
        return f"no finite pairs (0/{p.get('n_total', 0)})"
    pv = f"p = {p['p_wilcoxon']:.2g}" if finite(p.get("p_wilcoxon")) else "p undefined (all differences 0)"
    return (f"{p['mean_diff']:+.{digits}f} [{p['lo']:+.{digits}f}, {p['hi']:+.{digits}f}], {pv}, "
            f"{p['wins']}+/{p['losses']}-/{p['ties']}= of {p['n_pairs']}"
            + (f" ({p['n_pairs']}/{p['n_total']} pairs finite)" if p["n_pairs"] != p["n_total"] else ""))


def direction(p: dict, up: str = "higher", down: str = "lower") -> str:
    if not significant(p):
        return "no difference detected"
    return up if p["mean_diff"] > 0 else down


def table(rows: list[dict], cols: list[tuple[str, str]]) -> str:
    """Markdown table; ``cols``: (header, key); a key with IQM fields prints as ``iv``; other floats with
    ``fmt`` (``key_ci`` as ``±``)."""
    out = ["| " + " | ".join(h for h, _ in cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        cells = []
        for _, k in cols:
            v = r.get(k)
            if f"{k}_iqm" in r:
                cells.append(iv(r, k))
            else:
                cells.append(fmt(v, r.get(k + "_ci")) if isinstance(v, float) else str(v))
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def _range(x) -> str:
    if not x or not all(finite(v) for v in x):
        return "-"
    return f"{x[0]:.3f}" if abs(x[1] - x[0]) < TOL else f"{x[0]:.3f}-{x[1]:.3f}"


# -- market power ---------------------------------------------------------------------------------------
def _market_power(d: dict) -> tuple[dict, bool]:
    """``d`` with the IQM summary, paired comparisons and equilibrium sets (from the runs when the JSON
    predates them); True when they were computed here."""
    if d["summary"] and "markup_rel_iqm" in d["summary"][0] and "paired" in d:
        return d, False
    from .market_power import equilibrium_sets, paired, summarise

    summ = summarise(d["runs"])
    return dict(d, summary=summ, paired=paired(d["runs"], summ), equilibrium_sets=equilibrium_sets(summ)), True


def mp_budget(cfg: dict) -> str:
    return (f"{len(cfg['seeds'])} seeds; PPO variants {cfg['ppo_steps']:,} market steps x N per run; Q-learning "
            f"{cfg['q_steps']:,} steps per session")


def market_power_section(d: dict) -> str:
    d, legacy = _market_power(d)
    cfg = d["meta"]["config"]
    summ = d["summary"]
    budget = mp_budget(cfg)
    lines = ([LEGACY, ""] if legacy else []) + [
        f"Budget: {budget}; NashConv {cfg.get('nash_method', 'exact')}. Cells: IQM over seeds [stratified-bootstrap "
        "95 % interval]; \"identical\": every seed gave that value; (k/n): finite seeds where some are missing; "
        "n: finite seeds of the markup. Method `nash` is iterated best response, labelled \"nash\" only where every "
        "seed's exact NashConv is at most 1e-6 $/step, else \"ibr (not converged)\".", ""]
    order = cfg["methods"]
    for st in cfg["settings"]:
        rows = sorted((r for r in summ if r["setting"] == st), key=lambda r: (r["N"], order.index(r["method"])))
        for r in rows:
            r["n"] = f"{r['markup_rel_n']}/{r['markup_rel_n_total']}"
        lines += [f"**{st}**", "", table(rows, [("N", "N"), ("method", "label"), ("n", "n"),
                                                 ("markup_rel", "markup_rel"), ("lerner", "lerner"), ("hhi", "hhi"),
                                                 ("welfare_loss_rel", "welfare_loss_rel"),
                                                 ("nash_conv $/step", "nash_conv")]), ""]
    lines += ["**Equilibrium sets beside IBR** (`experiments.equilibrium_sets`, seed 0's stage game, the same every "
              "step and seed): every pure equilibrium of the grid game (study grid: 21 asks x 11 dispatch levels; "
              "coarse: 8 x 6) and a symmetric mixed equilibrium with its certificate (expected NashConv on the grid).",
              "", "| setting | N | IBR (label, worst NashConv $/step) | IBR markup | pure equilibria (grid) | pure "
              "markup range | pure price range $/kWh | mixed E[markup] (NashConv) |", "|---|---|---|---|---|---|---|---|"]
    for e in d.get("equilibrium_sets", []):
        ibr = f"{e['ibr_label']} ({fmt(e.get('ibr_nash_conv_max'), None, 3)})"
        if not e.get("computed"):
            lines.append(f"| {e['setting']} | {e['N']} | {ibr} | {fmt(e['ibr_markup_rel'])} | not computed | - | - | - |")
            continue
        mix = (f"{fmt(e['mixed_expected_markup_rel'])} ({e['mixed_nash_conv']:.1g})"
               if finite(e.get("mixed_expected_markup_rel")) else "-")
        lines.append(f"| {e['setting']} | {e['N']} | {ibr} | {fmt(e['ibr_markup_rel'])} | {e['pure_count']} "
                     f"({e['grid']}) | {_range(e['pure_markup_rel'])} | {_range(e['pure_price'])} | {mix} |")
    lines += ["", "Cells not computed: the exact enumeration is out of reach on the study grid beyond N = 5 "
              "(docs/statistics.md).", ""]
    pairs = d.get("paired", [])
    lines += ["**Paired by seed** (each learner against the IBR row and the competitive row of its cell, markup_rel, "
              "x - y: mean difference [paired bootstrap 95 %], Wilcoxon signed-rank p, seeds with x > y / x < y / "
              "ties):", "", "| setting | N | learner | vs IBR (its label) | vs competitive |", "|---|---|---|---|---|"]
    for st in cfg["settings"]:
        for n in cfg["ns"]:
            for m in order:
                ps = {p["y"]: p for p in pairs if (p["setting"], p["N"], p["x"], p["metric"]) == (st, n, m, "markup_rel")}
                if not ps:
                    continue
                a = f"{paired_text(ps['nash'])} ({ps['nash']['y_label']})" if "nash" in ps else "-"
                b = paired_text(ps["competitive"]) if "competitive" in ps else "-"
                lines.append(f"| {st} | {n} | {m} | {a} | {b} |")
    lines += ["", "Claims (generated; each names its test, seeds and budget, and the equilibrium it refers to):", ""]
    lo, hi = min(cfg["ns"]), max(cfg["ns"])
    sets = {(e["setting"], e["N"]): e for e in d.get("equilibrium_sets", [])}
    for st in cfg["settings"]:
        for n in cfg["ns"]:
            e = sets.get((st, n))
            if e and e.get("computed"):
                k = e["pure_count"]
                what = (f"{k} pure {'equilibrium' if k == 1 else 'equilibria'} on the {e['grid']} grid, markup "
                        f"{_range(e['pure_markup_rel'])}" if k else f"no pure equilibrium on the {e['grid']} grid")
                mixed = (f"; a symmetric mixed equilibrium with expected markup {fmt(e['mixed_expected_markup_rel'])} "
                         f"(certificate: expected NashConv {e['mixed_nash_conv']:.1g} $/step)"
                         if finite(e.get("mixed_expected_markup_rel")) else "")
                lines.append(f"* {st}, N = {n} (the game): {what}{mixed}; IBR's point (continuous actions, may lie off "
                             f"the grid) has markup {fmt(e['ibr_markup_rel'])} and is labelled \"{e['ibr_label']}\" "
                             f"[exact enumeration of the grid game, `equilibrium_sets.json`; IBR: exact NashConv].")

    def budget_of(m):
        seeds = f"{len(cfg['seeds'])} seeds"
        if m == "qlearning":
            return f"{seeds}, Q-learning {cfg['q_steps']:,} steps per session"
        if m in ("competitive", "nash"):
            return f"{seeds}, no training"
        return f"{seeds}, {m} {cfg['ppo_steps']:,} market steps x N per run"

    for st in cfg["settings"]:
        for m in order:
            if m == "competitive":
                continue
            a = next((r for r in summ if r["setting"] == st and r["method"] == m and r["N"] == lo), None)
            b = next((r for r in summ if r["setting"] == st and r["method"] == m and r["N"] == hi), None)
            if a and b:
                lines.append(f"* {st}, {a['label'] if m == 'nash' else m}: " + compare(a, b, "markup_rel", "N = {N}")
                             + f" [unpaired, bootstrap intervals of the IQM; {budget_of(m)}].")
        for m in (x for x in order if x not in ("competitive", "nash")):
            groups: dict[str, list[int]] = {}
            for n in cfg["ns"]:
                p = next((p for p in pairs if (p["setting"], p["N"], p["x"], p["y"], p["metric"])
                          == (st, n, m, "nash", "markup_rel")), None)
                if p is None:
                    continue
                if p["y_label"] != "nash":
                    groups.setdefault("no equilibrium to compare with (IBR not converged)", []).append(n)
                else:
                    groups.setdefault(direction(p, "above it", "below it"), []).append(n)
            if groups:
                lines.append(f"* {st}, {m}'s markup against IBR's equilibrium point: " + "; ".join(
                    f"{k} at N = {', '.join(map(str, v))}" for k, v in groups.items())
                    + f" [paired by seed: Wilcoxon p < {ALPHA} and the paired bootstrap interval excluding 0; "
                    f"{budget_of(m)}; the reference is IBR's point, one equilibrium; the set is in the table above].")
    return "\n".join(lines)


def curves_section(d: dict) -> str:
    """Where each learning method's NashConv stood at its first and last evaluation, per setting and N
    (mean over the curve seeds [bootstrap 95 %])."""
    out = ["| setting | N | method | seeds | agent-steps | NashConv first eval | NashConv last eval |",
           "|---|---|---|---|---|---|---|"]

    def at(c, i):
        if "nash_conv_lo" in c:
            x, lo, hi = c["nash_conv"][i], c["nash_conv_lo"][i], c["nash_conv_hi"][i]
            if not finite(x):
                return "nan"
            return f"{x:.3f}" if not (finite(lo) and finite(hi)) or hi - lo < 1e-12 else f"{x:.3f} [{lo:.3f}, {hi:.3f}]"
        return fmt(c["nash_conv"][i], c["nash_conv_ci"][i]) + " (t)"

    for c in d.get("curves", []):
        s = c["agent_steps"]
        out.append(f"| {c['setting']} | {c['N']} | {c['method']} | {c.get('seeds', '')} | {s[0]:,} -> {s[-1]:,} | "
                   f"{at(c, 0)} | {at(c, -1)} |")
    return "\n".join(out)


# -- algorithm benchmark --------------------------------------------------------------------------------
def _benchmark(d: dict) -> tuple[dict, bool]:
    if d["summary"] and "profit_iqm" in d["summary"][0] and "paired" in d:
        return d, False
    from .algorithm_benchmark import outputs

    return dict(d, **outputs(d["runs"])), True


def leaderboard_section(d: dict) -> str:
    d, legacy = _benchmark(d)
    cfg = d["meta"]["config"]
    budget = (f"{len(cfg['seeds'])} seeds; PPO variants {cfg['ppo_steps']:,} market steps x learners per run; "
              f"Q-learning {cfg['q_steps']:,} steps")
    lines = ([LEGACY, ""] if legacy else []) + [
        f"Budget: {budget}. Ranked by the IQM of the learner profit $/episode; welfare = gains from trade $/episode "
        "(true values); NashConv $/step (auction_v0 only). Cells: IQM [stratified-bootstrap 95 %], n: finite seeds "
        "of the profit. Paired: x - truthful on the same seeded episodes.", ""]
    pairs = d.get("paired", [])
    for sc in cfg["scenarios"]:
        rows = sorted((r for r in d["summary"] if r["scenario"] == sc), key=lambda r: -(r["profit_iqm"]
                                                                                       if finite(r["profit_iqm"]) else -1e9))
        for k, r in enumerate(rows):
            r["rank"] = k + 1
            r["n"] = f"{r['profit_n']}/{r['profit_n_total']}"
            p = next((p for p in pairs if (p["scenario"], p["x"], p["metric"]) == (sc, r["method"], "profit")), None)
            r["vs_truthful"] = paired_text(p) if p else "-"
        lines += [f"**`{sc}`**", "", table(rows, [("#", "rank"), ("method", "method"), ("n", "n"), ("profit", "profit"),
                                                   ("profit vs truthful (paired)", "vs_truthful"),
                                                   ("welfare", "welfare"), ("nash_conv", "nash_conv"),
                                                   ("price $/kWh", "price")]), ""]
    agg = d.get("aggregate", {})
    poi = agg.get("probability_of_improvement", [])
    if poi:
        lines += ["**Across scenarios** (Agarwal et al. 2021): probability of improvement P(X > Y) of the profit, "
                  "averaged over the scenarios both ran [stratified bootstrap 95 %]; 0.5 = neither.", "",
                  "| X | Y | scenarios | P(X > Y) |", "|---|---|---|---|"]
        for p in poi:
            lines.append(f"| {p['x']} | {p['y']} | {len(p['scenarios'])} | {p['p']:.2f} [{p['lo']:.2f}, {p['hi']:.2f}] |")
        lines.append("")
    prof = agg.get("performance_profiles", [])
    if prof:
        i0 = prof[0]["taus"].index(0.0) if 0.0 in prof[0]["taus"] else len(prof[0]["taus"]) // 2
        lines += [f"Performance profiles of the normalised profit ({agg.get('normalisation', '')}): fraction of runs "
                  "above 0 (truthful's mean) and the normalised IQM [stratified bootstrap 95 %]; full curves in the JSON "
                  "(`aggregate.performance_profiles`).", "", "| method | scenarios | runs > truthful mean | normalised IQM |",
                  "|---|---|---|---|"]
        for p in prof:
            lines.append(f"| {p['method']} | {len(p['scenarios'])} | {p['fraction_above'][i0]:.2f} | "
                         f"{p['normalised_iqm']:.2f} [{p['normalised_iqm_lo']:.2f}, {p['normalised_iqm_hi']:.2f}] |")
        lines.append("")
    lines += ["Claims (generated; paired by seed, Wilcoxon p < 0.05 and the paired bootstrap interval excluding 0):", ""]
    for sc in cfg["scenarios"]:
        groups: dict[str, list[str]] = {}
        for p in pairs:
            if p["scenario"] == sc and p["metric"] == "profit" and p["x"] not in ("random", "competitive"):
                groups.setdefault(direction(p, "more profit than truthful", "less profit than truthful"),
                                  []).append(f"{p['x']} ({p['wins']}+/{p['losses']}- of {p['n_pairs']}, "
                                             f"p = {p['p_wilcoxon']:.2g})" if finite(p["p_wilcoxon"]) else p["x"])
        if groups:
            lines.append(f"* `{sc}`: " + "; ".join(f"{k}: {', '.join(v)}" for k, v in groups.items())
                         + f" [{budget}].")
    return "\n".join(lines)


# -- collusion ------------------------------------------------------------------------------------------
def _collusion(d: dict) -> tuple[dict, bool]:
    if d["cells"] and "delta_iqm" in d["cells"][0] and "paired" in d:
        return d, False
    from .collusion_probe import CollusionConfig, paired, summarise_cells

    cfg = CollusionConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in d["config"].items()})
    return dict(d, cells=summarise_cells(d["sessions"], cfg), paired=paired(d["sessions"])), True


def collusion_section(d: dict) -> str:
    """Per (mechanism, N, variant): Delta (IQM [bootstrap]), clearing price, convergence and punishment shares
    (Wilson intervals), and for the frozen variant Delta before re-training and seller 0's gain; paired
    comparisons by session."""
    d, legacy = _collusion(d)
    cfg = d["config"]
    budget = (f"{cfg['sessions']} sessions per cell; up to {cfg['q_steps']:,} Q-learning steps per session, "
              f"{cfg['n_prices']}-point ask grid")
    cells = d["cells"]
    out = ([LEGACY, ""] if legacy else []) + [
        f"Budget: {budget}. Delta, price, gain: IQM over sessions [stratified-bootstrap 95 %]; shares: Wilson 95 %.",
        "", "| mechanism | N | variant | sessions | Delta | price $/kWh | converged | punished | Delta before (frozen) "
        "| seller-0 gain $/step (frozen) |", "|---|---|---|---|---|---|---|---|---|---|"]

    def share(c, k):
        return f"{c[k + '_share']:.0%} ({c[k + '_lo']:.0%}-{c[k + '_hi']:.0%})"

    for c in cells:
        frozen = c["variant"] == "frozen"
        out.append(f"| {c['mechanism']} | {c['N']} | {c['variant']} | {c['sessions']} | {iv(c, 'delta', 2)} | "
                   f"{iv(c, 'price')} | {share(c, 'converged')} | {share(c, 'punish')} | "
                   + (f"{iv(c, 'delta_before', 2)} | {iv(c, 'gain0')} |" if frozen else "- | - |"))
    pairs = d.get("paired", [])
    out += ["", "**Paired by session** (session k of every variant shares its seed; frozen re-trains session k's "
            "converged baseline): x - baseline, mean difference [paired bootstrap 95 %], Wilcoxon p, wins/losses/ties.",
            "", "| mechanism | N | x | Delta | price $/kWh |", "|---|---|---|---|---|"]
    for mech, n, x in dict.fromkeys((p["mechanism"], p["N"], p["x"]) for p in pairs):
        ps = {p["metric"]: p for p in pairs if (p["mechanism"], p["N"], p["x"]) == (mech, n, x)}
        out.append(f"| {mech} | {n} | {x} | {paired_text(ps['delta'], 2) if 'delta' in ps else '-'} | "
                   f"{paired_text(ps['price']) if 'price' in ps else '-'} |")
    out += ["", "Claims (generated; paired by session, Wilcoxon p < 0.05 and the paired bootstrap interval excluding 0):", ""]
    for x, what in (("frozen", "re-training seller 0 against frozen rivals"), ("async", "staggered exploration")):
        groups: dict[str, list[str]] = {}
        for p in pairs:
            if p["x"] == x and p["metric"] == "delta":
                groups.setdefault(direction(p, "raises Delta", "lowers Delta"), []).append(f"{p['mechanism']} N = {p['N']}")
        if groups:
            out.append(f"* {what}: " + "; ".join(f"{k} in {', '.join(v)}" for k, v in groups.items())
                       + f" [against the baseline sessions; {budget}].")
    return "\n".join(out)


# -- exploitability -------------------------------------------------------------------------------------
def exploitability_section(d: dict) -> str:
    """Per (market, profile): stage-game NashConv and learned exploitability, $/episode summed over the probed
    players, with the scope (every player, or a partial NashConv) and the responder seeds."""
    summ = d["summary"]
    cfg = d["meta"]["config"]
    if summ and "scope" not in summ[0]:  # the study before issue 18: one responder, 3 players per market
        from .exploitability_study import SCENARIOS, scope

        out = ["*This JSON predates the responder-seed study: one responder seed per player and 3 players probed "
               "per market, intervals are t intervals over evaluation markets; re-run the study.*", "",
               "| market | profile | scope | stage NashConv $/episode | learned exploitability $/episode (clipped) "
               "| responder agent-steps |", "|---|---|---|---|---|---|"]
        for r in summ:
            what = scope(r["scenario"], r["players"])[0] if r["scenario"] in SCENARIOS else f"{r['players']} players"
            out.append(f"| {r['scenario']} | {r['profile']} | {what} | {fmt(r['stage'], r.get('stage_ci'), 2)} | "
                       f"{fmt(r['exploitability'], r.get('exploitability_ci'), 2)} "
                       f"({fmt(r['exploitability_clipped'], None, 2)}) | {r['agent_steps']:,} |")
        return "\n".join(out)
    budget = (f"{cfg['br_seeds']} responder seeds x {cfg['br_steps']:,} agent-steps per (market, profile, player); "
              f"{cfg['eval_markets']} evaluation markets; shared-PPO profile {cfg['ppo_steps']:,} agent-steps")

    def span(r, k, digits=2):
        x, lo, hi = r[k], r[f"{k}_lo"], r[f"{k}_hi"]
        if not finite(x):
            return "nan"
        if r.get(f"{k}_deterministic") or not (finite(lo) and finite(hi)):
            return f"{x:.{digits}f}" + (" (identical)" if r.get(f"{k}_deterministic") else "")
        return f"{x:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"

    out = [f"Budget: {budget}. $/episode summed over the probed players; stage: mean over evaluation markets "
           "[bootstrap over markets]; learned: mean over responder seeds and markets [two-level bootstrap]; best: "
           "the best responder seed per player; n: finite responder runs.", "",
           "| market | profile (label) | scope | stage NashConv | learned exploitability | best responder | clipped "
           "| n | responder agent-steps |", "|---|---|---|---|---|---|---|---|---|"]
    for r in summ:
        out.append(f"| {r['scenario']} | {r['label']} | {r['scope']} | {span(r, 'stage')} | "
                   f"{span(r, 'exploitability')} | {fmt(r['exploitability_best'], None, 2)} | "
                   f"{fmt(r['exploitability_clipped'], None, 2)} | {r['exploitability_n']}/{r['exploitability_n_total']} "
                   f"| {r['agent_steps']:,} |")
    pairs = d.get("paired", [])
    out += ["", "**Paired by evaluation market**: x - y, mean difference [paired bootstrap 95 %], Wilcoxon p, "
            "markets with x > y / x < y / ties.", "", "| market | profile | x - y | difference |", "|---|---|---|---|"]
    for p in pairs:
        out.append(f"| {p['scenario']} | {p['profile']} | {p['x']} - {p['y']} | {paired_text(p, 2)} |")
    out += ["", "Claims (generated; paired by evaluation market, Wilcoxon p < 0.05 and the paired bootstrap "
            "interval excluding 0):", ""]
    for p in pairs:
        if p["y"] == "stage NashConv":
            out.append(f"* {p['scenario']}, {p['profile']}: learned exploitability against the stage NashConv: "
                       + direction(p, "above it", "below it") + f" ({paired_text(p, 2)}) [{budget}; "
                       + next((r["scope"] for r in summ if (r["scenario"], r["profile"]) == (p["scenario"], p["profile"])),
                              "") + "].")
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


# -- the README's findings -----------------------------------------------------------------------------
def _load(results: Path, name: str) -> dict | None:
    f = results / name
    return json.loads(f.read_text()) if f.exists() else None


_STALE = (" *The JSON predates the re-run with the validated learners (its summary lacks the IQM fields): its "
          "PPO rows are the previous vector PPO's.*")


def _market_power_findings(d: dict) -> list[str]:
    d, legacy_mp = _market_power(d)
    out = []
    cfg = d["meta"]["config"]
    nash = [r for r in d["summary"] if r["method"] == "nash"]
    ok = [r for r in nash if r["label"] == "nash"]
    bad = sorted({r["setting"] for r in nash if r["label"] != "nash"}, key=cfg["settings"].index)
    sets = [e for e in d.get("equilibrium_sets", []) if e.get("computed")]
    none = [e for e in sets if not e["pure_count"]]
    out.append(f"* **The game** ([market power](docs/results.md#emergent-market-power)): iterated best response "
               f"is an exact stage equilibrium (NashConv <= 1e-6 $/step) in {len(ok)} of {len(nash)} (setting, N) "
               "cells; the others are labelled \"ibr (not converged)\""
               + (f" ({', '.join(bad)})" if bad else "") + f". The pure-equilibrium set is enumerated in "
               f"{len(sets)} cells (N <= 5); " + ("every one has a pure equilibrium on the grid." if not none else
               f"{len(none)} of them {'has' if len(none) == 1 else 'have'} no pure equilibrium on the grid, and "
               f"{'its' if len(none) == 1 else 'their'} symmetric mixed "
               f"{'equilibrium is' if len(none) == 1 else 'equilibria are'} certified by the expected NashConv."))
    lo, hi = min(cfg["ns"]), max(cfg["ns"])
    parts = []
    for st in cfg["settings"]:
        groups: dict[str, list[str]] = {}
        for m in (x for x in cfg["methods"] if x in ("ppo_shared", "mappo", "ppo_independent", "qlearning")):
            a = next((r for r in d["summary"] if (r["setting"], r["method"], r["N"]) == (st, m, lo)), None)
            b = next((r for r in d["summary"] if (r["setting"], r["method"], r["N"]) == (st, m, hi)), None)
            if a is None or b is None:
                continue
            if not (finite(a.get("markup_rel_iqm")) and finite(b.get("markup_rel_iqm"))):
                groups.setdefault("not comparable (no finite seed at one N)", []).append(m)
            elif not separated(a, b, "markup_rel"):
                groups.setdefault("no difference detected", []).append(m)
            else:
                groups.setdefault("falls" if b["markup_rel_iqm"] < a["markup_rel_iqm"] else "rises", []).append(m)
        if groups:
            parts.append(f"{st}: " + "; ".join(f"{k} for {', '.join(v)}" for k, v in groups.items()))
    if parts:
        out.append(f"* **Markup and N** (IQM of the learners' markup, N = {lo} against N = {hi}, non-overlapping "
                   f"bootstrap intervals; {mp_budget(cfg)}): " + ". ".join(parts) + "."
                   + (_STALE if legacy_mp else ""))
    return out


def _benchmark_findings(d: dict) -> list[str]:
    d, legacy_ab = _benchmark(d)
    parts = []
    for sc in d["meta"]["config"]["scenarios"]:
        groups: dict[str, list[str]] = {}
        for p in d.get("paired", []):
            if p["scenario"] == sc and p["metric"] == "profit" and p["x"] not in ("random", "competitive"):
                groups.setdefault(direction(p, "more", "less"), []).append(p["x"])
        if groups:
            parts.append(f"`{sc.split('/')[-1]}`: " + "; ".join(f"{k}: {', '.join(v)}" for k, v in groups.items()))
    if not parts:
        return []
    c = d["meta"]["config"]
    return ["* **Learners against truthful bidding** (learner profit, paired by seed: Wilcoxon p < 0.05 and "
            f"the paired bootstrap interval excluding 0; {len(c['seeds'])} seeds; PPO variants "
            f"{c['ppo_steps']:,} agent-steps per learner (validated defaults), Q-learning {c['q_steps']:,} steps; "
            f"[leaderboard](docs/results.md#leaderboard-algorithm-benchmark)): " + ". ".join(parts) + "."
            + (_STALE if legacy_ab else "")]


def _collusion_findings(d: dict) -> list[str]:
    d, _ = _collusion(d)
    parts = []
    for x, what in (("frozen", "re-training one seller against frozen rivals"), ("async", "staggered exploration")):
        cells = [f"{p['mechanism']} N = {p['N']}" for p in d.get("paired", [])
                 if p["x"] == x and p["metric"] == "delta" and direction(p) == "lower"]
        n = sum(p["x"] == x and p["metric"] == "delta" for p in d.get("paired", []))
        parts.append(f"{what} lowers Delta in {len(cells)} of {n} cells" + (f" ({', '.join(cells)})" if cells else ""))
    return ["* **Collusion** (Q-learning sellers, paired by session; "
            "[collusion](docs/results.md#collusion-calvano-style)): " + "; ".join(parts) + "."]


def _exploitability_findings(d: dict) -> list[str]:
    summ = d["summary"]
    if not (summ and "scope" in summ[0]):
        return ["* **Exploitability** ([exploitability](docs/results.md#learned-exploitability)): the "
                "committed JSON predates the responder-seed study (one responder seed, 3 players per market: "
                "a partial NashConv in household6 and the storage community)."]
    full = [r for r in summ if not r["partial"]]
    return [f"* **Exploitability** ([exploitability](docs/results.md#learned-exploitability)): "
            f"{len(full)} of {len(summ)} (market, profile) cells probe every player, with "
            f"{d['meta']['config']['br_seeds']} responder seeds each. Against the truthful profile, "
            "paired by evaluation market (Wilcoxon p < 0.05 and the paired bootstrap interval excluding 0): "
            + "; ".join(f"{q['scenario']} {q['profile']}: {direction(q, 'more exploitable', 'less exploitable')}"
                        for q in d.get("paired", []) if q["y"] == "exploitability of truthful")
            + f". The learned exploitability is significantly above the stage NashConv in "
            f"{sum(direction(q) == 'higher' for q in d.get('paired', []) if q['y'] == 'stage NashConv')} of "
            f"{sum(q['y'] == 'stage NashConv' for q in d.get('paired', []))} cells (same test)."]


# study JSON -> its README bullets, in README order
FINDINGS = (("market_power.json", _market_power_findings), ("algorithm_benchmark.json", _benchmark_findings),
            ("collusion.json", _collusion_findings), ("exploitability.json", _exploitability_findings))


def findings_section(results: Path) -> str:
    """The README's short findings, generated from the study JSONs (the same rules as docs/results.md; each
    bullet links to its section there). A study whose JSON is missing is left out."""
    out = []
    for name, findings in FINDINGS:
        d = _load(results, name)
        if d is not None:
            out += findings(d)
    return "\n".join(out)


SECTIONS = {
    "market_power": ("market_power.json", market_power_section),
    "market_power_curves": ("market_power.json", curves_section),
    "algorithm_benchmark": ("algorithm_benchmark.json", leaderboard_section),
    "collusion": ("collusion.json", collusion_section),
    "exploitability": ("exploitability.json", exploitability_section),
    "learner_validation": ("learner_validation.json", learner_validation_section),
    "findings": (None, findings_section),  # README.md: reads every study JSON
}


def render(page: str, results: Path = RESULTS) -> str:
    """``page``'s text with every marked section regenerated from its JSON (sections whose JSON is
    missing are left as they are; ``findings`` reads every study JSON in ``results``)."""
    for name, (fname, fn) in SECTIONS.items():
        begin, end = f"<!-- results:{name}:begin -->", f"<!-- results:{name}:end -->"
        if begin not in page or (fname is not None and not (results / fname).exists()):
            continue
        i, j = page.index(begin) + len(begin), page.index(end)
        body = fn(results) if fname is None else fn(json.loads((results / fname).read_text()))
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
