"""Scenario definitions, one file each: who the agents are, their DER and profiles, the feeder.

* ``households.HouseholdMix``: the default seeded household generator of both environments;
* ``sellers_buyers.SellerBuyerMarket``: N sellers with one aggregate cost curve against buyers
  (the market-power studies);
* ``feeders``: the named network settings of ``dlmp_v0`` (feeder, fixed load, limits).
The feeder data itself (Baran & Wu 33-bus, the 4-bus teaching feeder) is in ``p2penv.network.cases``.
"""
from .households import HouseholdMix
from .sellers_buyers import SellerBuyerMarket, seller_buyer_env_fn, sellers

__all__ = ["HouseholdMix", "SellerBuyerMarket", "seller_buyer_env_fn", "sellers"]

# ``arbitrage.ArbitrageMarket``: one price-taking battery at a known price series (a learner check
# with a known optimum, ``p2penv.diagnostics.arbitrage``).
from .arbitrage import ArbitrageMarket  # noqa: E402

__all__ += ["ArbitrageMarket"]
