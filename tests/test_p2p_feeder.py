"""auction_v0 on a feeder (p2penv.envs.p2p_feeder) and the P2P-on-feeder experiment's smoke run."""
import numpy as np
import pytest

from p2penv.envs.p2p_feeder import P2PFeeder, auction_on_feeder
from p2penv.network.p2p_settlement import OPTIONS


@pytest.mark.parametrize("option", OPTIONS)
def test_infos_report_trades_and_rewards_carry_the_charges(option):
    env = auction_on_feeder(P2PFeeder(option=option, buyer_share=0.5, fee=0.05), seed=3, max_cycles=4)
    plain = auction_on_feeder(P2PFeeder(option=option, buyer_share=0.5, fee=0.05, charge_rewards=False), seed=3,
                              max_cycles=4)
    assert len(env.possible_agents) == 32 and env.buses.tolist() == list(range(1, 33))
    env.reset(seed=3)
    plain.reset(seed=3)
    rng = np.random.default_rng(0)
    traded = 0.0
    for _ in range(4):
        act = {a: rng.uniform(-1, 1, 2).astype(np.float32) for a in env.agents}
        _, rew, _, _, infos = env.step(act)
        _, rew0, _, _, infos0 = plain.step(act)
        out = env.unwrapped.last_outcome
        m, s = np.reshape(out.clearing.matched, -1), np.reshape(out.clearing.sides, -1)  # market 0, (N,)
        sold = np.array([infos[a]["p2p_sold_kwh"] for a in env.possible_agents])
        bought = np.array([infos[a]["p2p_bought_kwh"] for a in env.possible_agents])
        np.testing.assert_allclose(sold, np.where(s > 0, m, 0.0), atol=1e-9)
        np.testing.assert_allclose(bought, np.where(s < 0, m, 0.0), atol=1e-9)
        market = infos["prosumer_0"]["market"]["p2p"]
        assert sum(tr[2] for tr in market["trades"]) == pytest.approx(m[s > 0].sum(), abs=1e-9)
        charge = np.array([infos[a]["p2p_charge"] + infos[a]["p2p_backstop_cost"] for a in env.possible_agents])
        # the rewards fall by exactly each agent's charges; the agents' loss/fee charges are the DSO's cash
        np.testing.assert_allclose([rew0[a] - rew[a] for a in env.possible_agents], charge, atol=1e-12)
        assert sum(infos[a]["p2p_charge"] for a in env.possible_agents) == pytest.approx(market["dso_cash"], abs=1e-12)
        if option == "mlf_scaled":
            assert market["dso_cash"] == 0.0
            got = sum(infos[a]["p2p_delivered_kwh"] for a in env.possible_agents)
            assert got == pytest.approx(sum(tr[3] for tr in market["trades"]), abs=1e-9)
        traded += m[s > 0].sum()
        assert infos0["prosumer_0"]["p2p_sold_kwh"] == infos["prosumer_0"]["p2p_sold_kwh"]
    assert traded > 1.0  # random books trade


def test_rejects_bad_placement():
    with pytest.raises(ValueError, match="option"):
        P2PFeeder(option="postage")
    with pytest.raises(ValueError, match="agent_buses"):
        auction_on_feeder(P2PFeeder(agent_buses=(0, 1, 2)), seed=0)
    with pytest.raises(ValueError, match="agent_buses"):
        auction_on_feeder(P2PFeeder(agent_buses=(1, 2)), n_prosumers=3, seed=0)


def test_experiment_smoke(tmp_path):
    from p2penv.experiments import p2p_feeder as x

    res = x.run(x.QUICK, tmp_path)
    assert (tmp_path / "p2p_feeder.json").exists()
    rows = res["rows"]
    assert {r["settlement"] for r in rows} == {"dlmp", *OPTIONS}
    bil = [r for r in rows if r["market"] == "bilateral"]
    # the settlement is ex post: the three options share one physical outcome
    for k in ("system_cost", "losses_kwh", "violated_steps", "traded_kwh", "trade_loss_kwh"):
        assert len({r[k] for r in bil}) == 1
    by = {r["settlement"]: r for r in rows}
    assert by["mlf_scaled"]["dso_cash"] == 0.0
    assert by["loss_charged"]["dso_cash"] == pytest.approx(0.10 * by["loss_charged"]["trade_loss_kwh"], abs=1e-12)
    assert by["network_fee"]["dso_cash"] == pytest.approx(by["network_fee"]["fees"]) and by["network_fee"]["fees"] > 0
    assert by["dlmp"]["delta_system_cost"] == 0.0
    s6 = res["s6_ac"]
    if s6 is not None:  # pandapower installed: the busiest real book, S6 on the AC power flow
        # measured: unscaled 0.190 kW, scaled 0.0217 (LinDistFlow MLFs) and -0.0014 kW (DistFlow MLFs)
        r = s6[0]
        assert r["d_import_unscaled_kw"] > 0.1
        assert abs(r["lindistflow_d_import_scaled_kw"]) <= 0.2 * r["d_import_unscaled_kw"]
        assert abs(r["distflow_d_import_scaled_kw"]) <= 0.02 * r["d_import_unscaled_kw"]
