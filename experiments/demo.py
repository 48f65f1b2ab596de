"""`make demo`: a short emergent-market-power experiment (< 5 min on 2 cores).

Sellers N in {2, 3, 5, 10} on auction_v0 (``experiments.common.SellerBuyerMarket``): competitive
benchmark, stage-game Nash (iterated best response), PPO with parameter sharing and Calvano
Q-learning, 3 seeds each; prints the table (mean +- 95% CI) and writes CSV/JSON and
``market_power.png`` to ``results/demo``. The full version is ``python -m experiments.market_power``.
"""
from __future__ import annotations

import sys

from experiments import market_power


def main(out_dir: str = "results/demo") -> dict:
    res = market_power.run(market_power.DEMO, out_dir)
    print(f"\nfigures and tables in {out_dir}/ ({res['meta']['wall_s']:.0f} s)")
    return res


if __name__ == "__main__":
    main(*sys.argv[1:2])
