"""Time-varying tariffs of an episode: what the utility backstop and the substation charge per step.

A scenario generator may provide ``prices(horizon, dt_h, start_hour) -> PriceSeries``; the
environments then settle step t's unmatched buys at ``retail[t]`` and unmatched sells at
``feed_in[t]``, and ``dlmp_v0``'s substation trades at ``wholesale[t]``. Without it the config's
constant tariffs apply.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PriceSeries:
    """(T,) arrays in $/kWh: retail (backstop import), feed_in (backstop export), wholesale."""

    retail: np.ndarray
    feed_in: np.ndarray
    wholesale: np.ndarray

    def validate(self, horizon: int) -> None:
        """ValueError naming the field and step of the first inconsistency."""
        for name in ("retail", "feed_in", "wholesale"):
            a = np.asarray(getattr(self, name), dtype=float)
            if a.shape != (horizon,):
                raise ValueError(f"prices: {name} has shape {a.shape}, expected ({horizon},)")
            bad = np.flatnonzero(~np.isfinite(a))
            if bad.size:
                raise ValueError(f"prices: {name}[{bad[0]}] is {a[bad[0]]}; tariffs must be finite $/kWh")
        bad = np.flatnonzero(np.asarray(self.feed_in) > np.asarray(self.retail))
        if bad.size:
            t = bad[0]
            raise ValueError(f"prices: step {t}: feed_in ({self.feed_in[t]}) must be <= retail ({self.retail[t]})")
