"""The result tables of docs/results.md come from docs/results/*.json; claims only where the intervals separate."""
import json
import math

from p2penv.experiments import report


def row(v, ci, **k):
    return dict(k, markup_rel=v, markup_rel_ci=ci)


def test_separation_rule():
    assert report.separated(row(0.5, 0.1), row(0.2, 0.1), "markup_rel")
    assert not report.separated(row(0.5, 0.2), row(0.2, 0.15), "markup_rel")
    assert report.separated(row(0.3, math.nan), row(0.1, 0.0), "markup_rel")  # points
    assert not report.separated(row(math.nan, 0.1), row(0.1, 0.0), "markup_rel")
    assert not report.separated(row(8 / 7, 0.0), row(8 / 7 - 3e-7, 0.0), "markup_rel")  # below the 3rd decimal
    assert report.separated(row(0.300, 0.0), row(0.301, 0.0), "markup_rel")


def test_claim_sentences_cite_intervals():
    a, b = row(0.5, 0.1, N=2), row(0.2, 0.05, N=20)
    assert report.compare(a, b, "markup_rel", "N = {N}") == \
        "markup_rel falls from 0.500 ± 0.100 (N = 2) to 0.200 ± 0.050 (N = 20); the intervals separate"
    c = row(0.3, 0.25, N=20)
    assert report.compare(a, c, "markup_rel", "N = {N}") == \
        ("no difference in markup_rel detected between N = 2 (0.500 ± 0.100) and N = 20 (0.300 ± 0.250) "
         "at this budget")


def test_an_undefined_mean_is_not_compared():
    assert report.compare(row(1.3, 0.0, N=2), row(math.nan, math.nan, N=20), "markup_rel", "N = {N}") == \
        "markup_rel not comparable between N = 2 (1.300) and N = 20 (nan): undefined where nan"


def test_render_replaces_only_the_marked_section(tmp_path):
    summ = [dict(scenario="s", method=m, profit=p, profit_ci=0.1, welfare=1.0, welfare_ci=0.0, nash_conv=0.1,
                 nash_conv_ci=0.0, price=0.2, price_ci=0.0) for m, p in (("ppo_shared", 1.0), ("qlearning", 2.0))]
    d = dict(meta=dict(config=dict(scenarios=["s"], seeds=[0, 1], ppo_steps=10, q_steps=20)), summary=summ)
    (tmp_path / "algorithm_benchmark.json").write_text(json.dumps(d))
    text = "before\n<!-- results:algorithm_benchmark:begin -->\nold\n<!-- results:algorithm_benchmark:end -->\nafter"
    out = report.render(text, tmp_path)
    assert out.startswith("before\n<!-- results:algorithm_benchmark:begin -->\n") and out.endswith("end -->\nafter")
    assert "old" not in out
    assert "| 1 | qlearning | 2.000 ± 0.100 |" in out and "| 2 | ppo_shared | 1.000 ± 0.100 |" in out
    assert "profit rises from 1.000 ± 0.100 (ppo_shared) to 2.000 ± 0.100 (qlearning); the intervals separate" in out
    assert report.render(out, tmp_path) == out  # idempotent


def test_results_page_matches_the_committed_json():
    assert report.PAGES == (report.ROOT / "docs" / "results.md",)
    assert report.main(["--check"]) == 0
    page = report.PAGES[0].read_text()
    for name in report.SECTIONS:  # every generated table has its place on the page
        assert f"<!-- results:{name}:begin -->" in page and f"<!-- results:{name}:end -->" in page


def test_check_fails_on_a_stale_table(tmp_path, monkeypatch, capsys):
    page = tmp_path / "results.md"
    page.write_text(report.PAGES[0].read_text().replace("| 2 | nash | 0.385 |", "| 2 | nash | 0.999 |", 1))
    monkeypatch.setattr(report, "ROOT", tmp_path)
    monkeypatch.setattr(report, "PAGES", (page,))
    assert report.main(["--check"]) == 1
    assert "results.md: result tables out of date" in capsys.readouterr().err
    assert report.main([]) == 0 and report.main(["--check"]) == 0  # rewritten from the JSON
    assert "| 2 | nash | 0.385 |" in page.read_text()
