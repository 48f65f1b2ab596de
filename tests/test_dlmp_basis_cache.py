"""The DLMP LP's kept basis (``p2penv.network.basis_cache``): its certificate, its tie-break, and a fuzzed
equivalence with HiGHS cold solves over every registered dlmp scenario.

The fuzz drives each scenario's env with random actions (a third saturated at +-1, so prices repeat at the
floor and cap) and, between env steps, clears tie-prone books on the env's own market: orders priced at
exactly their bus's last DLMP (dual ties: several dispatches optimal) and a marginal order cut to exactly its
cleared quantity (primal degeneracy: several prices optimal). Every clear is compared with a reference
market that forgets its basis before each solve (a HiGHS cold solve, as a fresh market): the objective to
1e-9 (relative; every tenth also against HiGHS's own objective), every price, dispatch and DLMP part to 1e-9,
and bit for bit where both took the tie-break or neither did (a unique optimum has one nondegenerate
basis, and both compute x and the duals from it with the same code).
``test_fuzz_smoke`` runs a few hundred steps; ``test_fuzz_corpus`` (``-m slow``) 10^5.
"""
import dataclasses
import warnings

import numpy as np
import pytest

import p2penv
from p2penv.network import loss_model_at, teaching4
from p2penv.network.basis_cache import (DUAL_INFEASIBLE, OPTIMAL, PRIMAL_INFEASIBLE, certify, cold_solve,
                                        dual_simplex)
from p2penv.network.dlmp import DlmpMarket
from p2penv.registry import list_scenarios

ARRAYS = ("matched", "unit_price", "dlmp", "energy", "loss", "congestion", "voltage", "net_load_kw", "voltages",
          "line_flows_kw", "loading", "line_violation_kw", "voltage_violation_pu")
SCALARS = ("objective", "welfare", "operator_surplus", "substation_import_kw", "losses_kw", "unserved_kw")
REL = 1e-9


def _lp(m: DlmpMarket, book, lam, p, q):
    a = m.lp_arrays(*book, lam, p, q)
    return a.A, a.cost, a.col_lo, a.col_hi, a.row_lo, a.row_hi


def _basic(h, n):
    _, bv = h.getBasicVariables()
    return np.sort(np.where(np.asarray(bv) >= 0, bv, n - 1 - np.asarray(bv))).astype(np.int64)


# -- the certificate on one LP ------------------------------------------------------------------------
def test_certify_accepts_highs_optimal_basis_and_rejects_others():
    f = teaching4()
    m = DlmpMarket(f, [2, 3], loss_model=loss_model_at(f))
    book = ([0.2, 0.05], [100.0, 80.0], [1, -1])
    lp = _lp(m, book, 0.1, f.p_load_kw, f.q_load_kvar)
    h = cold_solve(*lp)
    n = lp[0].shape[1]
    basic = _basic(h, n)
    st, x, pi = certify(*lp, basic, np.empty(0))
    assert st == OPTIMAL
    sol = h.getSolution()
    np.testing.assert_allclose(x, sol.col_value, atol=1e-12)
    np.testing.assert_allclose(pi, sol.row_dual, atol=1e-12)
    # the same basis after the ask's price rises above the DLMP: still dual feasible (its column flips to 0),
    # still optimal -- the bound a nonbasic variable sits at is not part of the kept basis
    lp2 = _lp(m, ([0.5, 0.05], [100.0, 80.0], [1, -1]), 0.1, f.p_load_kw, f.q_load_kvar)
    st2, x2, _ = certify(*lp2, basic, np.empty(0))
    assert st2 == OPTIMAL and x2[m.c_sell[0]] == 0.0
    # P0 (free) made nonbasic: no finite bound for it to sit at
    other = np.sort(np.append(basic[basic != m.c_p0], n + 0))
    st3, *_ = certify(*lp, other, np.empty(0))
    assert st3 in (DUAL_INFEASIBLE, PRIMAL_INFEASIBLE)


def test_dual_simplex_from_a_stale_basis_reaches_the_optimum():
    """The congested teaching4 LP: the basis of an uncongested book fails on the line row; compiled dual
    simplex pivots from it end at HiGHS's optimal basis (certified like any other)."""
    f = dataclasses.replace(teaching4(), line_limit_kva=[np.inf, np.hypot(150, 100), np.inf])
    m = DlmpMarket(f, [2, 3], loss_model=loss_model_at(f))
    loose = _lp(m, ([0.05, 0.05], [100.0, 80.0], [1, -1]), 0.1, 0.5 * f.p_load_kw, f.q_load_kvar)
    tight = _lp(m, ([0.2, 0.05], [100.0, 80.0], [1, -1]), 0.1, f.p_load_kw, f.q_load_kvar)
    n = tight[0].shape[1]
    stale = _basic(cold_solve(*loose), n)
    assert certify(*tight, stale, np.empty(0))[0] == PRIMAL_INFEASIBLE
    st, basic, pivots = dual_simplex(*tight, stale, 50)
    assert st == OPTIMAL and pivots >= 1
    h = cold_solve(*tight)
    np.testing.assert_array_equal(basic, _basic(h, n))
    _, x, pi = certify(*tight, basic, np.empty(0))
    np.testing.assert_allclose(x, h.getSolution().col_value, atol=1e-9)
    np.testing.assert_allclose(pi, h.getSolution().row_dual, atol=1e-12)


def _tied_line():
    """teaching4 with line 1->2 limited to 150 kW (Q = 100 kvar) and two asks at bus 2 at one price: the
    fixed load needs 50 kW from them, and either ask (or any split) is optimal."""
    f = dataclasses.replace(teaching4(), line_limit_kva=[np.inf, np.hypot(150, 100), np.inf])
    return f, loss_model_at(f, use_voltages=False)


def test_tie_break_does_not_depend_on_history():
    f, lm = _tied_line()
    tie = ([0.2, 0.2, 0.05], [100, 100, 10], [1, 1, 0])
    first_cheaper = ([0.19, 0.21, 0.05], [100, 100, 10], [1, 1, 0])
    second_cheaper = ([0.21, 0.19, 0.05], [100, 100, 10], [1, 1, 0])
    out = []
    for history in ((), (first_cheaper,), (second_cheaper,), (second_cheaper, first_cheaper, tie)):
        for reuse in (True, False):
            m = DlmpMarket(f, [2, 2, 3], loss_model=lm, reuse_basis=reuse)
            for book in history:
                m.clear(*book, 0.1, f.p_load_kw, f.q_load_kvar)
            before = m.basis_cache.stats.cold_ties
            out.append(m.clear(*tie, 0.1, f.p_load_kw, f.q_load_kvar))
            assert m.basis_cache.stats.cold_ties == before + 1  # the tie is detected, whatever came before
    for r in out[1:]:
        for name in ARRAYS + SCALARS:
            assert np.array_equal(getattr(r, name), getattr(out[0], name)), name
    # the documented rule: a cold HiGHS solve of the LP built from the book decides the split
    m = DlmpMarket(f, [2, 2, 3], loss_model=lm)
    h = cold_solve(*_lp(m, tie, 0.1, f.p_load_kw, f.q_load_kvar))
    x = np.asarray(h.getSolution().col_value)
    np.testing.assert_allclose(out[0].matched, x[m.c_buy] + x[m.c_sell], atol=1e-9)
    assert out[0].matched.sum() == pytest.approx(50.0) and out[0].dlmp[2] == pytest.approx(0.2)


def test_reuse_off_gives_the_same_steps():
    """``lp_reuse_basis=False`` (HiGHS every step) and the default give identical trajectories."""
    out = []
    for reuse in (True, False):
        env = p2penv.make("dlmp_v0/congested-v0", lp_reuse_basis=reuse)
        env.reset(seed=3)
        rng = np.random.default_rng(0)
        rows = []
        for _ in range(30):
            if not env.agents:
                env.reset()
            obs, rew, *_ = env.step({a: rng.uniform(-1, 1, 2) for a in env.agents})
            rows.append(np.concatenate([np.stack(list(obs.values())).ravel(), list(rew.values())]))
        out.append(np.array(rows))
        st = env.market.basis_cache.stats
        assert (st.cached > 0 and st.pivoted > 0) == reuse
    np.testing.assert_array_equal(out[0], out[1])


# -- fuzzed equivalence with HiGHS cold solves -----------------------------------------------------------
@dataclasses.dataclass
class FuzzCount:
    steps: int = 0
    without_highs: int = 0  # answered by the kept basis or dual simplex pivots from it
    ties: int = 0
    ties_both: int = 0


def _close(a, b, name, where):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    tol = REL * np.maximum(1.0, np.abs(b))
    bad = np.abs(a - b) > tol
    assert not np.any(bad), f"{where}: {name} differs by {np.max(np.abs(a - b)):.3g}"


def _compare(r, rr, exact: bool, where: str):
    for name in SCALARS:
        _close(getattr(r, name), getattr(rr, name), name, where)
    for name in ARRAYS:
        _close(getattr(r, name), getattr(rr, name), name, where)
    assert r.violated == rr.violated, where
    if exact:  # the same basis (both at the tie-break's cold solve, or the unique one): the same numbers
        for name in ARRAYS + SCALARS:
            assert np.array_equal(getattr(r, name), getattr(rr, name)), f"{where}: {name} (bit for bit)"


def _tie_books(r, book, buses, rng):
    """Books with exact ties derived from the last clearing ``r`` of ``book``."""
    p, q, s = (np.array(a, dtype=np.float64) for a in book)
    s = s.astype(np.int8)
    # dual ties: a random half of the orders priced at exactly their bus's DLMP
    p1 = p.copy()
    pick = rng.random(p.size) < 0.5
    p1[pick] = r.dlmp[buses[pick]]
    yield p1, q, s
    # primal degeneracy: a marginal order (strictly between 0 and q) cut to exactly its cleared quantity
    marginal = np.flatnonzero((r.matched > 1e-6) & (r.matched < q - 1e-6))
    if marginal.size:
        q2 = q.copy()
        q2[marginal[0]] = r.matched[marginal[0]]
        yield p, q2, s


def _without_highs(m: DlmpMarket) -> int:
    st = m.basis_cache.stats
    return st.cached + st.pivoted


def fuzz_scenario(scenario_id: str, n_env_steps: int, seed: int, raw_every: int = 10) -> FuzzCount:
    """Env steps of a scenario plus tie-prone books between them, each checked against a cold reference."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # overloaded-feeder warnings of some scenarios
        env = p2penv.make(scenario_id, seed=seed)
    env.reset(seed=seed)
    cfg, m = env.config, env.market
    ref = DlmpMarket(m.feeder, m.buses, dt_h=cfg.dt_h, import_limit_kw=cfg.import_limit_kw,
                     export_limit_kw=cfg.export_limit_kw, penalty=cfg.penalty, reuse_basis=False)
    p_load, q_load = env.p_fixed_kw, env.q_fixed_kvar
    rng = np.random.default_rng(seed)
    count = FuzzCount()
    calls = []
    env_clear = m.clear

    def recorded(*args, **kwargs):  # the env's own clears, with the loss model they ran with
        lm = m.loss_model
        r = env_clear(*args, **kwargs)
        calls.append((lm, args[:3], args[3], kwargs, r))
        return r

    m.clear = recorded

    def check(lm, book, lam, kwargs, r, ties_before, where):
        tie = m.basis_cache.stats.cold_ties > ties_before
        ref.forget_basis()
        ref.set_loss_model(lm)
        t0 = ref.basis_cache.stats.cold_ties
        rr = ref.clear(*book, lam, p_load, q_load, **kwargs)
        tie_ref = ref.basis_cache.stats.cold_ties > t0
        _compare(r, rr, tie == tie_ref, where)
        count.steps += 1
        count.ties += tie or tie_ref
        count.ties_both += tie and tie_ref
        if count.steps % raw_every == 0:  # the objective against HiGHS's own cold answer too
            h = cold_solve(*_lp(ref, book, lam, p_load, q_load))
            obj = h.getInfo().objective_function_value
            assert abs(r.objective - obj) <= REL * max(1.0, abs(obj)), where

    for t in range(n_env_steps):
        if not env.agents:
            env.reset()
        acts = rng.uniform(-1, 1, (len(env.agents), 2))
        sat = rng.random(acts.shape) < 1 / 3
        acts[sat] = np.sign(acts[sat])
        calls.clear()
        ties_before = m.basis_cache.stats.cold_ties
        kept_before = _without_highs(m)
        env.step(dict(zip(env.agents, acts)))
        (lm, book, lam, kwargs, r), = calls
        count.without_highs += _without_highs(m) > kept_before
        check(lm, book, lam, kwargs, r, ties_before, f"{scenario_id} env step {t}")
        next_lm = m.loss_model  # the env's loss model for its next step; the tie books use this step's
        m.set_loss_model(lm)
        for k, tie_book in enumerate(_tie_books(r, book, m.buses, rng)):
            ties_before = m.basis_cache.stats.cold_ties
            kept_before = _without_highs(m)
            rt = env_clear(*tie_book, lam, p_load, q_load, **kwargs)
            count.without_highs += _without_highs(m) > kept_before
            check(lm, tie_book, lam, kwargs, rt, ties_before, f"{scenario_id} tie book {k} after step {t}")
        m.set_loss_model(next_lm)
    assert m.basis_cache.stats.numerical == 0 and ref.basis_cache.stats.numerical == 0
    return count


DLMP_SCENARIOS = list_scenarios("dlmp_v0")
# the smoke run keeps to the feeders built without pandapower (its import alone takes seconds)
SMOKE = [s for s in DLMP_SCENARIOS if p2penv.registry.get_spec(s).config.get("scenario", "").startswith(
    ("ieee33", "teaching4", "ieee69"))]


@pytest.mark.parametrize("scenario_id", SMOKE)
def test_fuzz_smoke(scenario_id):
    count = fuzz_scenario(scenario_id, 20, seed=1)
    assert count.steps >= 40 and count.ties_both >= 10


# 10^5 checked clears in all (each env step brings about two tie books); the largest LPs (ieee-eu-lv:
# 1,813 rows, 3,737 columns, ~0.2 s per reference solve) get fewer steps.
def _budget(scenario_id: str) -> int:
    return {"dlmp_v0/ieee-eu-lv-v0": 60, "dlmp_v0/kerber-dorfnetz-v0": 2000, "dlmp_v0/cigre-lv-v0": 3000,
            "dlmp_v0/ieee69-v0": 4000}.get(scenario_id, 6000)


@pytest.mark.slow
def test_fuzz_corpus():
    total = FuzzCount()
    for i, sid in enumerate(DLMP_SCENARIOS):
        c = fuzz_scenario(sid, _budget(sid), seed=100 + i)
        for f in dataclasses.fields(FuzzCount):
            setattr(total, f.name, getattr(total, f.name) + getattr(c, f.name))
    print(f"\nfuzz corpus: {total}")
    assert total.steps >= 100_000, total
    assert total.ties_both > 100, total  # the corpus exercises the tie-break
