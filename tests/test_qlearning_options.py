"""QLearners options of the collusion probe: table kernel = market kernel, stationarity check,
frozen learners keep their Q, staggered exploration never has two learners experimenting, per-session
streams with convergence stop, bit-identical resume in that mode."""
import numpy as np
import pytest

from p2penv.agents.qlearning import QConfig, QLearners
from p2penv.seller_buyer import seller_buyer_env_fn, sellers

F = seller_buyer_env_fn(2, 6, seed=0, demand_kw=1.0, buyer_values=(0.10, 0.30))


def _q(**kw):
    base = dict(n_prices=5, total_steps=400, n_sessions=3, beta=2e-3, seed=2, state="joint")
    return QLearners(F, QConfig(**{**base, **kw}), learners=sellers(2))


def test_table_kernel_gives_the_market_kernels_rewards():
    a, b = _q(kernel="market").train(), _q(kernel="table").train()
    assert np.allclose(a.Q, b.Q, rtol=0, atol=1e-12)
    assert np.allclose(a.trace_profit, b.trace_profit, rtol=0, atol=1e-12)


def test_table_kernel_refuses_a_game_that_depends_on_the_last_price():
    # seller 1 is not a learner: it bids truthfully at the last clearing price
    with pytest.raises(ValueError, match="^kernel: 'table' needs a stationary stage game"):
        QLearners(F, QConfig(n_prices=5, kernel="table"), learners=sellers(1))
    with pytest.raises(ValueError, match="kernel"):
        QConfig(kernel="nope")


def test_frozen_learners_keep_their_q_and_never_explore():
    q = _q(kernel="table", frozen=(1,), beta=0.0)
    q0 = q.Q.copy()
    played = []
    while q.t < q.cfg.total_steps:  # what train() runs (no convergence stop configured)
        played.append(q.step())
    assert np.array_equal(q.Q[:, 1], q0[:, 1]) and not np.array_equal(q.Q[:, 0], q0[:, 0])
    # learner 1 always greedy: its action is the argmax of its (unchanged) Q at the state
    m = 5
    acts = np.array(played)  # (T, B, 2)
    prev = np.concatenate([np.zeros((1, 3), int), (acts[:-1, :, 0] * m + acts[:-1, :, 1])])
    greedy1 = q0[np.arange(3)[None, :], 1, prev].argmax(-1)
    assert np.array_equal(acts[:, :, 1], greedy1)
    with pytest.raises(ValueError, match="frozen"):
        _q(frozen=(2,))


def test_staggered_exploration_never_has_two_learners_experimenting():
    q = _q(kernel="table", exploration="staggered", beta=0.0, n_sessions=8)  # epsilon 1: the turn's learner explores
    seen = []
    greedy_of = []
    base = (np.arange(8)[:, None] * 2 + np.arange(2)[None, :]) * q.S
    for _ in range(200):
        greedy_of.append(q.Q.reshape(-1, 5)[base + q.s].argmax(-1))  # greedy at the state, before the step
        seen.append(q.step())
    off = [(np.array(a) != g) for a, g in zip(seen, greedy_of)]  # off-greedy = experimenting
    assert not any((o.all(1)).any() for o in off)
    assert all(not o[:, (t + 1) % 2].any() for t, o in enumerate(off))  # only learner t mod 2
    assert sum(o.any() for o in off) > 50


def test_session_streams_stop_converged_sessions_and_resume_bit_identically(tmp_path):
    kw = dict(kernel="table", session_ids=(4, 7), n_sessions=2, converge_steps=50, total_steps=3000, beta=5e-3,
              converge_eps=0.05,
              checkpoint_every=300)
    full = _q(**kw).train()
    assert full.converged.all() and (full.t_conv > 600).all() and full.t < 3000
    part = _q(**{**kw, "total_steps": 700})
    part.train(tmp_path)
    resumed = _q(**kw).train(tmp_path, resume=True)
    assert np.array_equal(resumed.Q, full.Q) and np.array_equal(resumed.t_conv, full.t_conv)
    alone = _q(**{**kw, "session_ids": (7,), "n_sessions": 1}).train()
    assert np.array_equal(alone.Q[0], full.Q[1]) and alone.t_conv[0] == full.t_conv[1]
    with pytest.raises(ValueError, match="session_ids"):
        QConfig(n_sessions=2, session_ids=(1,))
    with pytest.raises(ValueError, match="converge_eps"):
        QConfig(converge_eps=0)


def test_warm_start_resets_the_clock_and_checks_shapes():
    q = _q(kernel="table")
    res = q.train()
    w = _q(kernel="table")
    w.warm_start(res.Q, np.zeros((3, 2), int))
    assert w.t == 0 and np.array_equal(w.Q, res.Q)
    with pytest.raises(ValueError, match="^Q: "):
        w.warm_start(res.Q[:1], np.zeros((3, 2), int))
