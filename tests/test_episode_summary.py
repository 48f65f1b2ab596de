"""Episode summary: totals are sums of the infos of a real auction_v0 episode; aggregates by hand."""
import numpy as np
import pytest

from p2penv import auction_v0
from p2penv.diagnostics.episode import (
    competitive_benchmarks,
    stack_infos,
    summarize_episode,
    true_marginal_costs,
)
from p2penv.envs.auction_core import INFO_NAMES


def _episode(**kw):
    env = auction_v0.parallel_env(n_prosumers=4, max_cycles=8, start_hour=8.0, seed=5, **kw)
    env.reset(seed=5)
    rng = np.random.default_rng(5)
    infos, rewards, sent = [], [], []
    while env.agents:
        acts = {a: rng.uniform(-1.2, 1.2, 2) for a in env.agents}  # some components get clipped
        sent.append(np.array([acts[a] for a in env.agents]))
        _, rew, _, _, info = env.step(acts)
        infos.append(info)
        rewards.append(rew)
    return env, infos, rewards, np.array(sent)


def test_totals_are_sums_of_the_infos():
    env, infos, rewards, sent = _episode()
    cfg = env.config
    s = summarize_episode(infos, rewards, retail_tariff=cfg.retail_tariff, feed_in_tariff=cfg.feed_in_tariff,
                          shed_value=env.fleet.shed_values)
    agents = env.possible_agents
    tot = lambda f: np.array([sum(st[a][f] for st in infos) for a in agents])  # noqa: E731
    assert s.steps == 8 and s.agents == tuple(agents)
    assert s.volume_kwh == pytest.approx(sum(st[agents[0]]["market"]["volume_kwh"] for st in infos))
    assert s.volume_kwh > 0  # daytime steps with PV: the episode really trades
    assert s.operator_surplus == pytest.approx(sum(st[agents[0]]["market"]["operator_surplus"] for st in infos))
    assert s.declared_welfare == pytest.approx(sum(st[agents[0]]["market"]["welfare"] for st in infos))
    for f in ("market_cash", "cost", "backstop_import_kwh", "backstop_export_kwh", "curtailed_kwh", "shed_kwh"):
        np.testing.assert_allclose(getattr(s, f), tot(f), atol=1e-12)
    np.testing.assert_allclose(s.profit, [sum(r[a] for r in rewards) for a in agents], atol=1e-12)
    assert s.realised_welfare == pytest.approx(s.total_profit + s.operator_surplus)
    # sold + bought = matched; the market balances (sold total = bought total = volume)
    np.testing.assert_allclose(s.sold_kwh + s.bought_kwh, tot("matched_kwh"), atol=1e-12)
    assert s.sold_kwh.sum() == pytest.approx(s.volume_kwh) and s.bought_kwh.sum() == pytest.approx(s.volume_kwh)
    # clipping counts = action components we sent outside [-1, 1]
    assert s.clip_price_count == int((np.abs(sent[..., 0]) > 1).sum()) > 0
    assert s.clip_dispatch_count == int((np.abs(sent[..., 1]) > 1).sum()) > 0
    assert s.ramp_violation_count == 0 and s.ramp_violation_kw == 0.0
    assert np.isnan(s.nash_conv_mean) and np.isnan(s.lerner_weighted) and np.isnan(s.markup)


def test_tariff_profit_and_market_gain_identities():
    env, infos, rewards, _ = _episode()
    cfg = env.config
    s_r = summarize_episode(infos, rewards)
    sv = env.fleet.shed_values  # prosumer_3 of the default mix is a flexible load
    s_t = summarize_episode(infos, retail_tariff=cfg.retail_tariff, feed_in_tariff=cfg.feed_in_tariff, shed_value=sv)
    np.testing.assert_allclose(s_t.profit, s_r.profit, atol=1e-12)  # same settlement formula
    if s_t.shed_kwh.sum() > 0:
        with pytest.raises(ValueError, match="shed_value"):
            summarize_episode(infos, retail_tariff=cfg.retail_tariff, feed_in_tariff=cfg.feed_in_tariff)
    assert s_r.fairness is None and np.all(np.isnan(s_r.market_gain))
    # gain over the backstop-only outcome with the realised dispatch (the order volume exported at
    # feed-in, or imported at the buy value: retail, or shed at a flexible load's lost value),
    # computed independently
    st = stack_infos(infos)
    q = st["side"] * st["order_kwh"]
    buy_value = np.minimum(sv, cfg.retail_tariff)
    backstop_only = cfg.feed_in_tariff * np.maximum(q, 0) - buy_value * np.maximum(-q, 0) - st["cost"]
    np.testing.assert_allclose(s_t.market_gain, s_r.profit - backstop_only.sum(0), atol=1e-9)
    f = s_t.fairness
    np.testing.assert_allclose(f.totals, s_t.market_gain)
    g = f.totals
    flex = np.isfinite(sv)
    assert np.all(g[~flex] >= 0)  # every price of this episode lies in [feed-in, retail]
    # a flexible load that bid above its lost value can pay more than the energy is worth to it
    paid_above = ((st["side"] < 0) & (st["matched_kwh"] > 0) & (st["unit_price"] > buy_value)).any(0)
    assert np.all((g >= 0) | paid_above)
    if np.all(g >= 0):
        assert f.jain == pytest.approx(g.sum() ** 2 / (g.size * (g**2).sum()))
    else:  # Jain's index is defined for non-negative values only
        assert np.isnan(f.jain) and f.max_min == pytest.approx(g.min())


def _synthetic(sold, price, mc=None):
    """Infos of len(sold) steps with two sellers (sold kWh) and one buyer taking the volume."""
    infos = []
    for t, (q, p) in enumerate(zip(sold, price)):
        rows = {}
        for i, a in enumerate(("s0", "s1", "b")):
            d = dict.fromkeys(INFO_NAMES, 0.0)
            if i < 2:
                d.update(side=1.0 if q[i] > 0 else 0.0, matched_kwh=q[i], unit_price=p)
            else:
                d.update(side=-1.0, matched_kwh=sum(q), unit_price=p)
            rows[a] = d
        market = {"t": t, "clearing_price": p, "volume_kwh": float(sum(q)), "welfare": 0.0, "operator_surplus": 0.0}
        for d in rows.values():
            d["market"] = market
        infos.append(rows)
    return infos


def test_market_power_aggregates_by_hand():
    # step 0: sellers 3 and 1 kWh at P = 0.2 -> HHI 0.75^2 + 0.25^2 = 0.625; MC 0.1, 0.15 -> Lerner
    # 0.5, 0.25, share-weighted 0.4375, mean 0.375. step 1: one seller 2 kWh at 0.1, MC 0.05 -> HHI 1,
    # Lerner 0.5. Volume weights 4, 2: HHI (2.5 + 2) / 6 = 0.75; weighted Lerner (1.75 + 1) / 6;
    # mean Lerner (1.5 + 1) / 6. Benchmark prices 0.15, 0.1: markup (0.05 * 4 + 0) / 6 = 1/30.
    infos = _synthetic([(3.0, 1.0), (2.0, 0.0)], [0.2, 0.1])
    mc = np.array([[0.1, 0.15, 0.0], [0.05, 0.3, 0.0]])
    s = summarize_episode(infos, marginal_costs=mc, benchmark_price=[0.15, 0.1])
    assert s.hhi == pytest.approx(0.75) and s.max_hhi == pytest.approx(1.0)
    assert s.lerner_weighted == pytest.approx(2.75 / 6)
    assert s.lerner_mean == pytest.approx(2.5 / 6)
    assert s.markup == pytest.approx(1 / 30)
    assert s.markup_rel == pytest.approx((0.05 / 0.15) * 4 / 6)
    assert s.volume_kwh == 6.0 and np.all(np.isnan(s.profit))


def test_nash_gain_and_benchmarks_on_a_short_episode():
    from p2penv.diagnostics.nash_infos import NashConvInfos

    env = NashConvInfos(auction_v0.parallel_env(n_prosumers=3, max_cycles=2, start_hour=11.0, seed=2))
    env.reset(seed=2)
    rng = np.random.default_rng(2)
    infos, rewards = [], []
    while env.agents:
        _, rew, _, _, info = env.step({a: rng.uniform(-1, 1, 2) for a in env.agents})
        infos.append(info)
        rewards.append(rew)
    cfg = env.config
    mc = true_marginal_costs(infos, env.fleet, cfg.dt_h)
    bp, bw = competitive_benchmarks(infos, env.fleet, retail_tariff=cfg.retail_tariff,
                                    feed_in_tariff=cfg.feed_in_tariff, dt_h=cfg.dt_h)
    s = summarize_episode(infos, rewards, retail_tariff=cfg.retail_tariff, feed_in_tariff=cfg.feed_in_tariff,
                          marginal_costs=mc, benchmark_price=bp, benchmark_welfare=bw)
    a0 = env.possible_agents[0]
    assert s.nash_conv_mean == pytest.approx(np.mean([st[a0]["market"]["nash_conv"] for st in infos]))
    np.testing.assert_allclose(s.nash_gain_mean, [np.mean([st[a]["nash_gain"] for st in infos])
                                                  for a in env.possible_agents])
    # competitive prices lie within the backstop band; loss = benchmark - realised welfare
    assert np.all((bp >= cfg.feed_in_tariff - 1e-12) & (bp <= cfg.retail_tariff + 1e-12))
    assert s.welfare_loss == pytest.approx(bw.sum() - s.realised_welfare)


def test_input_errors_name_the_field():
    infos = _synthetic([(1.0, 1.0)], [0.2])
    with pytest.raises(ValueError, match="retail_tariff"):
        summarize_episode(infos, retail_tariff=0.3)
    with pytest.raises(ValueError, match="marginal_costs"):
        summarize_episode(infos, marginal_costs=np.zeros((2, 3)))
    del infos[0]["b"]["cost"]
    with pytest.raises(ValueError, match="'cost'"):
        summarize_episode(infos)
    with pytest.raises(ValueError, match="infos"):
        summarize_episode([])
