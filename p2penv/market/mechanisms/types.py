"""Array conventions shared by every clearing mechanism.

An order book is three arrays of the same shape ``(..., n)`` (optional leading batch
dimensions, orders last):

* ``prices``     limit price of each order ($/kWh): the most a buyer pays, the least a seller takes;
* ``quantities`` offered volume (kWh, >= 0);
* ``sides``      ``SELL`` (+1, an ask), ``BUY`` (-1, a bid) or ``IDLE`` (0, ignored).

A mechanism is a pure function ``clear(prices, quantities, sides, **params) -> Clearing``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numba
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
    p = np.ascontiguousarray(prices, dtype=np.float64)
    q = np.ascontiguousarray(quantities, dtype=np.float64)
    s = np.asarray(sides)
    if not (p.shape == q.shape == s.shape):
        raise ValueError(
            f"order book arrays must share a shape: prices {p.shape}, quantities {q.shape}, sides {s.shape}"
        )
    if p.ndim == 0:
        raise ValueError("order book arrays must have at least one dimension (orders last)")
    if p.size == 0:
        return p, q, s.astype(np.int8)
    s8 = s if s.dtype == np.int8 and s.flags.c_contiguous else np.ascontiguousarray(s, dtype=np.int8)
    if (s.dtype.kind in "biu" or bool((s8 == s).all())) and _book_ok(p.reshape(-1), q.reshape(-1), s8.reshape(-1)):
        return p, q, s8
    if not np.all(np.isfinite(p)):
        raise ValueError(f"prices: non-finite value at index {np.argwhere(~np.isfinite(p))[0].tolist()}")
    if not np.all(np.isfinite(q)) or np.any(q < 0):
        bad = np.argwhere(~np.isfinite(q) | (q < 0))[0].tolist()
        raise ValueError(f"quantities: must be finite and >= 0, bad value at index {bad}")
    raise ValueError("sides: values must be SELL (+1), BUY (-1) or IDLE (0)")


def clearing_from_kernel(out: tuple, sides: np.ndarray) -> Clearing:
    """Wrap a clearing kernel's 2-D output ``(matched, unit, price, volume, surplus, welfare)``
    in the book's original shape ``sides.shape`` (``(..., n)``; per-book fields ``(...)``)."""
    matched, unit, price, volume, surplus, welfare = out
    if sides.ndim == 2:  # already the kernel's (B, n) layout
        return Clearing(matched, unit, price, volume, surplus, welfare, sides)
    shape, batch = sides.shape, sides.shape[:-1]
    return Clearing(matched.reshape(shape), unit.reshape(shape), price.reshape(batch), volume.reshape(batch),
                    surplus.reshape(batch), welfare.reshape(batch), sides)


@numba.njit(cache=True, nogil=True)
def _book_ok(p, q, s):
    """True when every price and quantity is finite, quantities are >= 0 and sides in {-1, 0, 1}."""
    for i in range(p.shape[0]):
        if not (np.isfinite(p[i]) and np.isfinite(q[i]) and q[i] >= 0.0 and -1 <= s[i] <= 1):
            return False
    return True
