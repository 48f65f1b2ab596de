"""Generators (who the agents are, their DER and profiles) and the feeder settings of ``dlmp_v0``, one file each.

A *scenario* is a registered id of ``p2penv.registry`` (docs/glossary.md); this package holds the
*generators* those scenarios use and the *feeder settings* (``feeders.FeederSetting``). It was named
``p2penv.scenarios`` before issue 19.

* ``households.HouseholdMix``: the default seeded household generator of both environments;
* ``sellers_buyers.SellerBuyerMarket``: N sellers with one aggregate cost curve against buyers
  (the market-power studies; its env factories are in ``p2penv.seller_buyer``);
* ``feeders``: the named network settings of ``dlmp_v0`` (feeder, fixed load, limits).
The feeder data itself (Baran & Wu 33-bus, the 4-bus teaching feeder) is in ``p2penv.network.cases``.
"""
from .households import HouseholdMix
from .sellers_buyers import SellerBuyerMarket, sellers

__all__ = ["HouseholdMix", "SellerBuyerMarket", "sellers"]

# ``arbitrage.ArbitrageMarket``: one price-taking battery at a known price series (a learner check
# with a known optimum, ``p2penv.diagnostics.arbitrage``).
from .arbitrage import ArbitrageMarket  # noqa: E402

__all__ += ["ArbitrageMarket"]
