"""Array conventions shared by every clearing mechanism.

An order book is three arrays of the same shape ``(..., n)`` (optional leading batch
dimensions, orders last):

* ``prices``     limit price of each order ($/kWh): the most a buyer pays, the least a seller takes;
* ``quantities`` offered volume (kWh, >= 0);
* ``sides``      ``SELL`` (+1, an ask), ``BUY`` (-1, a bid) or ``IDLE`` (0, ignored).

A mechanism is a pure function ``clear(prices, quantities, sides, **params) -> Clearing``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

SELL: int = 1
BUY: int = -1
IDLE: int = 0


@dataclass(frozen=True)
class Clearing:
    """Outcome of clearing one or many order books (all arrays share the book's batch shape).

    matched:          (..., n) kWh each order trades (0 <= matched <= quantity).
    unit_price:       (..., n) $/kWh each order pays (buy) or receives (sell) on its matched volume;
                      for unmatched orders the price it would have faced (the clearing price in
                      uniform mechanisms, its own limit price in pay-as-bid).
    clearing_price:   (...,)   reference price of the book ($/kWh); nan only when the book is empty.
    volume:           (...,)   kWh traded (= buy volume = sell volume).
    operator_surplus: (...,)   $ kept by the operator: buyer payments - seller receipts (>= 0 means
                      weak budget balance; 0 strong).
    welfare:          (...,)   declared gains from trade $: sum matched*(bid) - sum matched*(ask).
    """

    matched: np.ndarray
    unit_price: np.ndarray
    clearing_price: np.ndarray
    volume: np.ndarray
    operator_surplus: np.ndarray
    welfare: np.ndarray

    sides: np.ndarray  # (..., n) int8 copy of the book's sides, so cash flows need no other input

    @property
    def cash(self) -> np.ndarray:
        """(..., n) $ each order's owner receives (sell, > 0) or pays (buy, < 0) for matched volume."""
        return self.sides * self.matched * self.unit_price


def check_book(prices, quantities, sides) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate and convert an order book; raise ValueError naming the offending field.

    The common valid case costs a handful of reductions (it runs every environment step); the
    element-wise diagnosis only runs once something is wrong.
    """
    p = np.asarray(prices, dtype=np.float64)
    q = np.asarray(quantities, dtype=np.float64)
    s = np.asarray(sides)
    if not (p.shape == q.shape == s.shape):
        raise ValueError(
            f"order book arrays must share a shape: prices {p.shape}, quantities {q.shape}, sides {s.shape}"
        )
    if p.ndim == 0:
        raise ValueError("order book arrays must have at least one dimension (orders last)")
    if p.size == 0:
        return p, q, s.astype(np.int8)
    s8 = s.astype(np.int8)
    ok = math.isfinite(float(p.sum()) + float(q.sum())) and float(q.min()) >= 0.0
    ok = ok and int(np.abs(s8).max()) <= 1 and (s.dtype.kind in "biu" or bool((s8 == s).all()))
    if ok:
        return p, q, s8
    if not np.all(np.isfinite(p)):
        raise ValueError(f"prices: non-finite value at index {np.argwhere(~np.isfinite(p))[0].tolist()}")
    if not np.all(np.isfinite(q)) or np.any(q < 0):
        bad = np.argwhere(~np.isfinite(q) | (q < 0))[0].tolist()
        raise ValueError(f"quantities: must be finite and >= 0, bad value at index {bad}")
    raise ValueError("sides: values must be SELL (+1), BUY (-1) or IDLE (0)")
