"""The result tables of docs/results.md come from docs/results/*.json; IQM cells with bootstrap intervals and
finite counts; claims only under the paired rule (Wilcoxon and the paired bootstrap) or where intervals separate."""
import json
import math

import numpy as np

from p2penv.experiments import report


def row(v, lo, hi, det=False, n=10, **k):
    return dict(k, markup_rel_iqm=v, markup_rel_iqm_lo=lo, markup_rel_iqm_hi=hi, markup_rel_deterministic=det,
                markup_rel_n=n, markup_rel_n_total=10)


def test_separation_rule():
    assert report.separated(row(0.5, 0.4, 0.6), row(0.2, 0.1, 0.3), "markup_rel")
    assert not report.separated(row(0.5, 0.3, 0.7), row(0.2, 0.05, 0.35), "markup_rel")
    assert report.separated(row(0.3, 0.3, 0.3, True), row(0.1, 0.1, 0.1, True), "markup_rel")  # points
    assert not report.separated(row(math.nan, math.nan, math.nan), row(0.1, 0.0, 0.2), "markup_rel")
    assert not report.separated(row(8 / 7, 8 / 7, 8 / 7), row(8 / 7 - 3e-7, 8 / 7 - 3e-7, 8 / 7 - 3e-7), "markup_rel")
    assert report.separated(row(0.300, 0.300, 0.300), row(0.301, 0.301, 0.301), "markup_rel")


def test_cells_show_intervals_identical_values_and_counts():
    assert report.iv(row(0.5, 0.4, 0.6), "markup_rel") == "0.500 [0.400, 0.600]"
    assert report.iv(row(0.385, 0.385, 0.385, True), "markup_rel") == "0.385 (identical)"
    assert report.iv(row(1.308, 1.308, 1.308, True, n=1), "markup_rel") == "1.308 (identical) (1/10)"
    assert report.iv(row(math.nan, math.nan, math.nan, n=0), "markup_rel") == "nan (0/10)"
    assert report.iv(row(0.5, 0.4, 0.6), "markup_rel", counts="always").endswith("(10/10)")


def test_claim_sentences_cite_intervals():
    a, b = row(0.5, 0.4, 0.6, N=2), row(0.2, 0.15, 0.25, N=20)
    assert report.compare(a, b, "markup_rel", "N = {N}") == (
        "markup_rel (IQM) falls from 0.500 [0.400, 0.600] (N = 2) to 0.200 [0.150, 0.250] (N = 20); the bootstrap "
        "95 % intervals separate")
    c = row(0.3, 0.05, 0.55, N=20)
    assert report.compare(a, c, "markup_rel", "N = {N}") == (
        "no difference in markup_rel (IQM) detected between N = 2 (0.500 [0.400, 0.600]) and N = 20 "
        "(0.300 [0.050, 0.550]) at this budget")
    assert report.compare(row(1.3, 1.3, 1.3, True, N=2), row(math.nan, math.nan, math.nan, n=0, N=20), "markup_rel",
                          "N = {N}") == ("markup_rel not comparable between N = 2 (1.300 (identical)) and N = 20 "
                                         "(nan (0/10)): undefined where nan")


def test_paired_rule_needs_the_test_and_the_interval():
    p = dict(mean_diff=-0.27, lo=-0.48, hi=-0.09, p_wilcoxon=0.02, wins=3, losses=14, ties=3, n_pairs=20, n_total=20)
    assert report.significant(p) and report.direction(p) == "lower"
    assert report.paired_text(p, 2) == "-0.27 [-0.48, -0.09], p = 0.02, 3+/14-/3= of 20"
    assert not report.significant(dict(p, p_wilcoxon=0.06))
    assert not report.significant(dict(p, hi=0.01))  # the interval reaches 0
    assert report.direction(dict(p, p_wilcoxon=float("nan"))) == "no difference detected"
    assert "(18/20 pairs finite)" in report.paired_text(dict(p, n_pairs=18))


def _bench_json():
    from p2penv.experiments import algorithm_benchmark as ab

    rng = np.random.default_rng(0)
    runs = []
    for m, mu in (("truthful", 0.0), ("ppo_shared", -1.0), ("qlearning", 2.0)):
        for s in range(6):
            runs.append(dict(scenario="auction_v0/s-v0", method=m, seed=s, profit=mu + 0.1 * rng.normal(),
                             welfare=1.0, nash_conv=0.1, price=0.2))
    res = ab.outputs(runs)
    meta = dict(config=dict(scenarios=["auction_v0/s-v0"], seeds=list(range(6)), ppo_steps=10, q_steps=20))
    return dict(meta=meta, runs=runs, **res)


def test_render_replaces_only_the_marked_section(tmp_path):
    (tmp_path / "algorithm_benchmark.json").write_text(json.dumps(_bench_json()))
    text = "before\n<!-- results:algorithm_benchmark:begin -->\nold\n<!-- results:algorithm_benchmark:end -->\nafter"
    out = report.render(text, tmp_path)
    assert out.startswith("before\n<!-- results:algorithm_benchmark:begin -->\n") and out.endswith("end -->\nafter")
    assert "old" not in out
    assert "| 1 | qlearning | 6/6 |" in out and "| 3 | ppo_shared | 6/6 |" in out
    assert "less profit than truthful: ppo_shared (0+/6- of 6, p = 0.031)" in out
    assert "more profit than truthful: qlearning (6+/0- of 6, p = 0.031)" in out
    assert "| qlearning | truthful | 1 | 1.00 [1.00, 1.00] |" in out  # probability of improvement
    assert report.render(out, tmp_path) == out  # idempotent


def test_results_page_matches_the_committed_json():
    assert report.PAGES == (report.ROOT / "docs" / "results.md", report.ROOT / "README.md")
    assert report.main(["--check"]) == 0
    page = report.PAGES[0].read_text()
    readme = report.PAGES[1].read_text()
    for name in report.SECTIONS:  # every generated table has its place: the findings in the README, the rest here
        where = readme if name == "findings" else page
        assert f"<!-- results:{name}:begin -->" in where and f"<!-- results:{name}:end -->" in where
    mp = json.loads((report.RESULTS / "market_power.json").read_text())
    bad = {(r["setting"], r["N"]) for r in mp["runs"] if r["method"] == "nash" and not r["nash_conv"] <= 1e-6}
    body = page[page.index("<!-- results:market_power:begin -->"):page.index("<!-- results:market_power:end -->")]
    for st, n in bad:  # a row whose NashConv exceeds the tolerance is never shown as "nash"
        assert f"| {n} | ibr (not converged) |" in body.split(f"**{st}**")[1].split("**")[0]
        assert f"| {n} | nash |" not in body.split(f"**{st}**")[1].split("**")[0]


def test_check_fails_on_a_stale_table(tmp_path, monkeypatch, capsys):
    page = tmp_path / "results.md"
    old = "| 2 | nash | 10/10 | 0.385 (identical) |"
    text = report.PAGES[0].read_text()
    assert old in text
    page.write_text(text.replace(old, "| 2 | nash | 10/10 | 0.999 (identical) |", 1))
    monkeypatch.setattr(report, "ROOT", tmp_path)
    monkeypatch.setattr(report, "PAGES", (page,))
    assert report.main(["--check"]) == 1
    assert "results.md: result tables out of date" in capsys.readouterr().err
    assert report.main([]) == 0 and report.main(["--check"]) == 0  # rewritten from the JSON
    assert old in page.read_text()


def test_readme_findings_are_generated_from_the_json(tmp_path):
    """The README's findings block is the report's, from the same JSON: change a JSON, the block changes."""
    import shutil

    readme = report.PAGES[1].read_text()
    body = readme[readme.index("<!-- results:findings:begin -->"):readme.index("<!-- results:findings:end -->")]
    assert body.count("\n* **") >= 4 and "docs/results.md#" in body
    for f in report.RESULTS.glob("*.json"):
        shutil.copy(f, tmp_path / f.name)
    d = json.loads((tmp_path / "collusion.json").read_text())
    for r in d["sessions"]:  # frozen sessions now equal their baseline: no cell can be lowered
        if r["variant"] == "frozen":
            base = next(b for b in d["sessions"] if (b["mechanism"], b["N"], b["variant"], b["session"]) ==
                        (r["mechanism"], r["N"], "baseline", r["session"]))
            r["delta"] = base["delta"]
    d.pop("paired", None)
    d["cells"] = [{k: v for k, v in c.items() if k != "delta_iqm"} for c in d["cells"]]
    (tmp_path / "collusion.json").write_text(json.dumps(d))
    new = report.findings_section(tmp_path)
    assert "re-training one seller against frozen rivals lowers Delta in 0 of" in new
