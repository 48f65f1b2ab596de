"""Worked examples of the spec items (docs/spec.md) as short programs a student can run and change (S12).

    python -m p2penv.experiments.spec_examples          # all of them
    python -m p2penv.experiments.spec_examples s3       # one

Each function prints what the textbook computes and returns the numbers (the tests assert them).
Change the inputs at the top of a function and run again.
"""
from __future__ import annotations

import sys

import numpy as np


def s1_transactive_price() -> dict:
    """S1: central welfare maximisation vs price takers. Two producers, one consumer."""
    from p2penv.market.competitive import competitive_equilibrium, consumer_response, price_taker_response

    cost_a, cost_b = [0.5, 1.0], [1.0, 2.0]  # C_i(E) = a E^2 + b E
    util_v, util_w = [10.0], [0.5]  # U(d) = v d - w d^2
    o = competitive_equilibrium(cost_a, cost_b, 0.0, 100.0, util_v=util_v, util_w=util_w)
    alone = price_taker_response(o.price, np.array(cost_a), np.array(cost_b), 0.0, 100.0)
    d_alone = consumer_response(o.price, np.array(util_v), np.array(util_w), 0.0, np.inf)
    print(f"S1 lambda = {o.price:.3f}, central E = {o.energy_kwh}, d = {o.consumption_kwh}, welfare = {o.welfare:.3f}")
    print(f"   price takers given lambda choose E = {alone}, d = {d_alone} (the same)")
    return {"price": o.price, "welfare": o.welfare, "energy": o.energy_kwh, "consumption": o.consumption_kwh}


def s2_prosumer() -> dict:
    """S2: net position and the feasible dispatch interval of one prosumer."""
    from p2penv.market.prosumer import feasible_interval, net_position_kw

    lo, hi, viol = feasible_interval(np.array([3.0]), np.array([5.0]), np.array([1.0]))
    q = net_position_kw(np.array([4.0]), np.array([1.5]), np.array([0.95]))
    print(f"S2 p_prev = 3 kW, R = 1 kW, P_max = 5 kW -> feasible [{lo[0]}, {hi[0]}] kW; "
          f"p = 4, d = 1.5, eta = 0.95 -> q = {q[0]:.2f} kW (sells)")
    return {"lo": lo[0], "hi": hi[0], "q": q[0]}


def s3_double_auction() -> dict:
    """S3: the uniform-price double auction example."""
    from p2penv.market.mechanisms import BUY, SELL, uniform

    bids, asks = [12.0, 10.0, 8.0], [5.0, 7.0, 9.0]
    c = uniform.clear(bids + asks, np.ones(6), [BUY] * 3 + [SELL] * 3)
    print(f"S3 Q = {c.volume} kWh, p* = {c.clearing_price} $/kWh, surplus = {c.welfare}")
    return {"volume": float(c.volume), "price": float(c.clearing_price), "surplus": float(c.welfare)}


def s5_s6_dlmp() -> dict:
    """S5/S6: DLMPs and their components on the 4-bus teaching feeder with a congested line."""
    import dataclasses

    from p2penv.network import loss_model_at, teaching4
    from p2penv.network.dlmp import DlmpMarket

    # line 1->2 limited so that at most 150 kW of active power can flow to the 200 kW load at bus 2
    f = dataclasses.replace(teaching4(), line_limit_kva=[np.inf, np.hypot(150, 100), np.inf])
    m = DlmpMarket(f, [2, 3], loss_model=loss_model_at(f, use_voltages=False))
    # one local seller at bus 2 asking 0.20 $/kWh for up to 100 kWh; wholesale price 0.10 $/kWh
    r = m.clear([0.2, 0.05], [100, 100], [1, 0], 0.10, f.p_load_kw, f.q_load_kvar)
    print("S5 DLMP  = energy + loss + congestion + voltage at buses 0..3:")
    clean = lambda x: np.round(x, 12) + 0.0  # noqa: E731  (no "-0.0000" from solver round-off)
    for k in range(f.n_bus):
        parts = " + ".join(f"{clean(c[k]):.4f}" for c in (r.energy, r.loss, r.congestion, r.voltage))
        print(f"   bus {k}: {clean(r.dlmp[k]):.4f} = {parts}")
    print(f"S6 MLF = {np.round(r.mlf, 4)}; the seller at bus 2 sells {r.matched[0]:.1f} kWh at {r.dlmp[2]:.3f} $/kWh")
    return {"dlmp": r.dlmp, "congestion": r.congestion, "mlf": r.mlf, "matched": r.matched}


def s9_market_power() -> dict:
    """S9: HHI of 40/30/20/10 shares and the Cournot Lerner relation."""
    from p2penv.diagnostics.market_power import cournot_lerner, hhi

    h = float(hhi(np.array([40.0, 30.0, 20.0, 10.0])))
    lavg = float(cournot_lerner(h, 5.0))
    print(f"S9 HHI = {h:.2f}, L_avg = HHI / |eps| = {lavg:.2f} with |eps| = 5")
    return {"hhi": h, "lerner": lavg}


EXAMPLES = {"s1": s1_transactive_price, "s2": s2_prosumer, "s3": s3_double_auction, "s5": s5_s6_dlmp,
            "s9": s9_market_power}


def main(argv: list[str] | None = None) -> None:
    names = (argv if argv is not None else sys.argv[1:]) or list(EXAMPLES)
    for n in names:
        EXAMPLES[n.lower()]()


if __name__ == "__main__":
    main()
