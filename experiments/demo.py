"""`make demo`: a short emergent-market-power experiment (about 100 s on 2 cores; the limit is 3 min).

Sellers N in {2, 3, 5, 10} on auction_v0 (``p2penv.generators.SellerBuyerMarket``): competitive
benchmark, stage-game Nash (iterated best response), PPO with parameter sharing (the validated
defaults, 15,360 agent-steps per seller: the learner validation's best-response budget) and Calvano
Q-learning, 3 seeds each; prints the table (IQM over seeds; the JSON has bootstrap intervals) and
writes CSV/JSON and ``market_power.png`` to ``--out`` (default ``results/demo``). ``--quick``: the seconds-long budget of
``market_power --quick``; ``--resume``: reuse the rows an interrupted demo checkpointed in ``--out``.
The full version is ``python -m p2penv.experiments.market_power``.

    python -m p2penv.experiments.demo [--quick] [--out results/demo] [--resume]
"""
from __future__ import annotations


from p2penv.experiments import market_power

from .study_cli import run_study, study_parser


def main(argv=None, prog: str | None = None) -> dict:
    ap = study_parser(__doc__, prog, "results/demo", ray=None)
    a = ap.parse_args(argv)
    res = run_study(ap, market_power.run, market_power.QUICK if a.quick else market_power.DEMO, a.out,
                    resume=a.resume)
    print(f"\nfigures and tables in {a.out}/ ({res['meta']['wall_s']:.0f} s)")
    return res


if __name__ == "__main__":
    main()
