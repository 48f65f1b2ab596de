"""Calvano-style collusion probe: quick run and its keys, exact Delta of hand cases, the forced
deviation is the brute-force static best reply, batch-invariant sessions, resume without retraining."""
import json
import shutil
from dataclasses import replace

import numpy as np
import pytest

from p2penv.experiments import collusion_probe as cp

SMALL = replace(cp.QUICK, ns=(2,), sessions=2, q_steps=1500)


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("collusion")
    cp.clear_cache()
    return cp.run(SMALL, out), out


def _q_playing(profile, L, m, n_states):
    """Q (L, S, m) whose greedy action in every state is ``profile``."""
    Q = np.zeros((L, n_states, m))
    for i, a in enumerate(profile):
        Q[i, :, a] = 1.0
    return Q


def test_quick_run_writes_json_with_all_cells_and_keys(small_run):
    res, tmp_path = small_run
    d = json.loads((tmp_path / "collusion_probe.json").read_text())
    assert set(d) >= {"config", "sessions", "cells", "benchmarks"}
    assert len(d["sessions"]) == 2 * 1 * 3 * 2 and len(d["cells"]) == 2 * 1 * 3
    assert {(c["mechanism"], c["variant"]) for c in d["cells"]} == {(m, v) for m in cp.MECHANISMS for v in cp.VARIANTS}
    for c in res["cells"]:
        for k in ("delta", "delta_iqm", "delta_iqm_lo", "delta_iqm_hi", "delta_n", "delta_n_total", "converged_share",
                  "punish_share", "returned_share", "price", "mean_trace_ask_rivals"):
            assert k in c, k
        assert len(c["mean_trace_price"]) == SMALL.pre + 1 + SMALL.post
    fr = [r for r in res["sessions"] if r["variant"] == "frozen"]
    assert all({"delta_before", "undercut", "profit0_before"} <= set(r) for r in fr)
    assert all(np.isfinite(r["delta"]) for r in res["sessions"])
    assert (tmp_path / "collusion_delta.png").exists() and (tmp_path / "collusion_impulse.png").exists()
    # paired by session: frozen and async against the baseline, per (mechanism, N) and metric
    assert {(p["mechanism"], p["x"], p["metric"]) for p in d["paired"]} == {
        (m, x, k) for m in cp.MECHANISMS for x in ("frozen", "async") for k in cp.PAIRED_METRICS}
    assert all(p["n_total"] == 2 and p["pairing"] == "session" for p in d["paired"])


def test_delta_is_zero_at_the_grid_nash_and_one_at_the_joint_profit_maximum():
    g = cp.stage_game(SMALL, "uniform", 2)
    m = len(g.grid)
    joint = g.profit.sum(-1)
    top = tuple(int(x) for x in np.unravel_index(joint.argmax(), joint.shape))
    for profile, want in ((g.nash_profile, 0.0), (top, 1.0)):
        Q = _q_playing(profile, 2, m, m * m)
        st = cp.cycle_stats(cp.greedy_cycle(Q, 0, m), g)
        assert cp.delta(st["profit"], g.pi_nash, g.pi_collusive) == want
    assert cp.cycle_stats([g.nash_profile], g)["is_nash"] and g.pi_collusive > g.pi_nash
    assert cp.delta(0.2, 0.1, 0.1) != cp.delta(0.2, 0.1, 0.1)  # 0/0 is nan, not a number


def test_forced_deviation_is_the_brute_force_static_best_reply(small_run):
    g = cp.stage_game(SMALL, "uniform", 2)
    m = len(g.grid)

    def brute(rival):
        best, arg = -np.inf, -1
        for j in range(m):
            if g.profit[j, rival, 0] > best:
                best, arg = g.profit[j, rival, 0], j
        return arg

    for profile in [(5, 5), (3, 6), (g.nash_profile)]:
        imp = cp.impulse_response(_q_playing(profile, 2, m, m * m), 0, g, 3, 4, 2)
        assert imp.deviation == imp.asks[3, 0] == brute(profile[1])
        assert (imp.asks[:3] == profile).all() and (imp.asks[4:] == profile).all()  # no memory: back at once
        assert imp.returned and imp.return_steps == 1 and not imp.punish
    # trained sessions: the deviation is the brute-force best reply to the rival's ask at that step
    for r in small_run[0]["sessions"]:
        rival = int(np.argmin(np.abs(g.grid - r["trace_ask_rivals"][SMALL.pre]))) if r["mechanism"] == "uniform" else None
        if rival is not None:
            assert r["deviation_price"] == g.grid[brute(rival)]


def test_punishment_is_detected_on_a_grim_trigger_q():
    """Both play 5 while the last profile was (5, 5); any other profile -> both play the Nash index."""
    g = cp.stage_game(SMALL, "uniform", 2)
    m = len(g.grid)
    ne = g.nash_profile
    Q = _q_playing(ne, 2, m, m * m)
    coop = 5 * m + 5
    Q[:, coop] = 0
    Q[:, coop, 5] = 1
    imp = cp.impulse_response(Q, coop, g, 2, 4, 4)
    assert imp.cycle == [(5, 5)]
    assert imp.deviation != 5 and imp.punish and not imp.returned and imp.return_steps == -1
    assert (imp.asks[3] == ne).all()


def test_session_result_does_not_depend_on_its_batch():
    cfg = replace(SMALL, sessions=3, q_steps=1000)
    cp.clear_cache()
    batch = cp.session_rows(cfg, "uniform", 2, "async", [0, 1, 2])
    assert not all(np.array_equal(batch[0][k], batch[1][k]) for k in ("trace_ask_dev", "trace_ask_rivals"))
    cp.clear_cache()
    alone = cp.session_row(cfg, "uniform", 2, "async", 1)
    strip = lambda r: {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in r.items()}
    assert strip(alone) == strip(batch[1])


def test_resume_reuses_rows_and_trained_q_tables(small_run, tmp_path, monkeypatch):
    from p2penv.agents.qlearning import QLearners

    full, out = small_run
    shutil.copytree(out, tmp_path / "cut")
    p = tmp_path / "cut" / "collusion_probe_checkpoint.json"
    saved = json.loads(p.read_text())
    saved["rows"] = saved["rows"][:5]
    p.write_text(json.dumps(saved))
    cp.clear_cache()

    def no_step(self):
        raise AssertionError("Q-learning stepped although its final checkpoint was there")

    monkeypatch.setattr(QLearners, "step", no_step)
    res = cp.run(SMALL, tmp_path / "cut", resume=True)
    assert res["meta"]["resumed_rows"] == 5
    strip = lambda rs: [{k: v for k, v in r.items() if not k.startswith("trace_")} for r in rs]
    assert strip(res["sessions"]) == strip(full["sessions"])


def test_bad_config_names_the_field():
    with pytest.raises(ValueError, match="variants"):
        cp.CollusionConfig(variants=("baseline", "nope"))
    with pytest.raises(ValueError, match="ns"):
        cp.CollusionConfig(ns=(1,))
    with pytest.raises(ValueError, match="variant"):
        cp.session_rows(SMALL, "uniform", 2, "nope", [0])
    assert cp.wilson(0, 20)[0] == 0.0 and 0.16 < cp.wilson(0, 20)[1] < 0.17
