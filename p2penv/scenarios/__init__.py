"""Scenario definitions: fleet generators (and env factories) for specific studies."""
from .sellers_buyers import SellerBuyerMarket, seller_buyer_env_fn, sellers

__all__ = ["SellerBuyerMarket", "seller_buyer_env_fn", "sellers"]
