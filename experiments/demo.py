"""`make demo`: one episode of auction_v0 with competitive (truthful, price-taking) bidders."""
from __future__ import annotations

from agents.baselines import competitive_joint_action
from p2penv import auction_v0


def main(seed: int = 0) -> dict:
    env = auction_v0.parallel_env(n_prosumers=8, seed=seed)
    obs, _ = env.reset(seed=seed)
    print(f"{'t':>3} {'price $/kWh':>12} {'volume kWh':>11} {'welfare $':>10} {'import kWh':>11} {'export kWh':>11}")
    totals = dict(volume=0.0, welfare=0.0, profit=0.0, imp=0.0, exp=0.0)
    while env.agents:
        acts, _ = competitive_joint_action(env.ctx, env.config)
        obs, rew, _, _, infos = env.step({a: acts[i] for i, a in enumerate(env.agents)})
        m = next(iter(infos.values()))["market"]
        imp = sum(i["backstop_import_kwh"] for i in infos.values())
        exp = sum(i["backstop_export_kwh"] for i in infos.values())
        print(f"{m['t']:>3} {m['clearing_price']:>12.4f} {m['volume_kwh']:>11.3f} {m['welfare']:>10.4f} {imp:>11.3f} {exp:>11.3f}")
        totals["volume"] += m["volume_kwh"]
        totals["welfare"] += m["welfare"]
        totals["profit"] += sum(rew.values())
        totals["imp"] += imp
        totals["exp"] += exp
    print(
        f"\nepisode: traded {totals['volume']:.2f} kWh P2P, declared welfare ${totals['welfare']:.3f}, "
        f"total profit ${totals['profit']:.3f}, grid import {totals['imp']:.2f} kWh, export {totals['exp']:.2f} kWh"
    )
    return totals


if __name__ == "__main__":
    main()
