"""Compiled part of ``DlmpCore``: the DLMP observation columns of every market and agent in one pass
(as numpy: a transpose, five column updates, a clip and a cast per step, each costing more in call
overhead than in arithmetic at the size of one feeder)."""
from __future__ import annotations

import numba
import numpy as np

from .fields import DLMP_OBS_FIELDS, names

# the components arrive in this order (DlmpBatchClearing.components): DLMP, energy, loss, congestion, voltage
assert names(DLMP_OBS_FIELDS) == ("dlmp", "dlmp_energy", "dlmp_loss", "dlmp_congestion", "dlmp_voltage")
N_DLMP_OBS = len(DLMP_OBS_FIELDS)


@numba.njit(cache=True, nogil=True)
def dlmp_obs_kernel(components, buses, price_floor, price_span):
    """(E, N, 5) float32 observation columns from ``components`` (E, 5, n_bus) $/kWh at the agents'
    buses: the DLMP and its energy part map [floor, floor + span] to [-1, 1] like prices, the loss,
    congestion and voltage parts are differences, scaled by 2 / span without offset; all clipped."""
    e_n = components.shape[0]
    n = buses.shape[0]
    out = np.empty((e_n, n, N_DLMP_OBS), np.float32)
    scale = 2.0 / price_span
    for e in range(e_n):
        for i in range(n):
            b = buses[i]
            for c in range(N_DLMP_OBS):
                x = components[e, c, b]
                if c < 2:
                    x = 2.0 * (x - price_floor) / price_span - 1.0
                else:
                    x = x * scale
                out[e, i, c] = min(max(x, -1.0), 1.0)
    return out
