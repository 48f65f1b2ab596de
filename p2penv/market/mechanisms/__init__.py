"""Clearing mechanisms: one file, one pure array function each, registered by name here."""
from __future__ import annotations

from typing import Callable

from . import mcafee, pay_as_bid, posted_price, uniform, vcg
from .types import BUY, IDLE, SELL, Clearing, check_book

MECHANISMS: dict[str, Callable[..., Clearing]] = {
    "uniform": uniform.clear,
    "pay_as_bid": pay_as_bid.clear,
    "mcafee": mcafee.clear,
    "vcg": vcg.clear,
    "posted_price": posted_price.clear,
}


def get_mechanism(name: str) -> Callable[..., Clearing]:
    """Look a mechanism up by name; ValueError lists the known ones."""
    try:
        return MECHANISMS[name]
    except KeyError:
        raise ValueError(f"mechanism: unknown {name!r}; known: {sorted(MECHANISMS)}") from None


__all__ = ["BUY", "IDLE", "SELL", "Clearing", "MECHANISMS", "check_book", "get_mechanism"]
