"""Built-in feeders.

``ieee33``: the Baran & Wu 33-bus radial feeder, 12.66 kV, base loads 3715 kW / 2300 kvar.
Source: M. E. Baran and F. F. Wu, "Network reconfiguration in distribution systems for loss
reduction and load balancing", IEEE Trans. Power Delivery 4(2):1401-1407, 1989 (line and load
table). Buses are renumbered 0..32 (paper bus i = index i-1, substation = 0); the five normally
open tie lines are omitted. Voltage limits 0.90/1.10 p.u. follow ``pandapower.networks.case33bw``;
lines have no rating in the paper (unlimited here).

``teaching4``: a 4-bus feeder with round per-unit numbers for hand checks (11 kV, 1000 kVA base):
0 -> 1 (r=0.01, x=0.02), 1 -> 2 (r=0.02, x=0.02), 1 -> 3 (r=0.03, x=0.01) p.u.;
loads 200 kW + 100 kvar at bus 2 and 100 kW + 50 kvar at bus 3.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from .feeder import Feeder

# (from, to, r ohm, x ohm) for the 32 in-service branches, paper order.
_IEEE33_LINES = np.array([
    (0, 1, 0.0922, 0.0470), (1, 2, 0.4930, 0.2511), (2, 3, 0.3660, 0.1864), (3, 4, 0.3811, 0.1941),
    (4, 5, 0.8190, 0.7070), (5, 6, 0.1872, 0.6188), (6, 7, 0.7114, 0.2351), (7, 8, 1.0300, 0.7400),
    (8, 9, 1.0440, 0.7400), (9, 10, 0.1966, 0.0650), (10, 11, 0.3744, 0.1238), (11, 12, 1.4680, 1.1550),
    (12, 13, 0.5416, 0.7129), (13, 14, 0.5910, 0.5260), (14, 15, 0.7463, 0.5450), (15, 16, 1.2890, 1.7210),
    (16, 17, 0.7320, 0.5740), (1, 18, 0.1640, 0.1565), (18, 19, 1.5042, 1.3554), (19, 20, 0.4095, 0.4784),
    (20, 21, 0.7089, 0.9373), (2, 22, 0.4512, 0.3083), (22, 23, 0.8980, 0.7091), (23, 24, 0.8960, 0.7011),
    (5, 25, 0.2030, 0.1034), (25, 26, 0.2842, 0.1447), (26, 27, 1.0590, 0.9337), (27, 28, 0.8042, 0.7006),
    (28, 29, 0.5075, 0.2585), (29, 30, 0.9744, 0.9630), (30, 31, 0.3105, 0.3619), (31, 32, 0.3410, 0.5302),
])

# Load at buses 1..32 (kW, kvar); bus 0 is the substation.
_IEEE33_LOADS = np.array([
    (100, 60), (90, 40), (120, 80), (60, 30), (60, 20), (200, 100), (200, 100), (60, 20),
    (60, 20), (45, 30), (60, 35), (60, 35), (120, 80), (60, 10), (60, 20), (60, 20),
    (90, 40), (90, 40), (90, 40), (90, 40), (90, 40), (90, 50), (420, 200), (420, 200),
    (60, 25), (60, 25), (60, 20), (120, 70), (200, 600), (150, 70), (210, 100), (60, 40),
], dtype=float)


def ieee33() -> Feeder:
    """Baran & Wu 33-bus feeder (12.66 kV, 1000 kVA base)."""
    ln = _IEEE33_LINES
    p = np.concatenate([[0.0], _IEEE33_LOADS[:, 0]])
    q = np.concatenate([[0.0], _IEEE33_LOADS[:, 1]])
    return Feeder.from_ohm(
        33, ln[:, 0].astype(int), ln[:, 1].astype(int), ln[:, 2], ln[:, 3], 12.66, 1000.0,
        v_min=0.90, v_max=1.10, root=0, p_load_kw=p, q_load_kvar=q, name="ieee33",
    )


def teaching4() -> Feeder:
    """4-bus hand-check feeder (see module docstring)."""
    return Feeder(
        4, [0, 1, 1], [1, 2, 3], [0.01, 0.02, 0.03], [0.02, 0.02, 0.01], 11.0, 1000.0,
        v_min=0.95, v_max=1.05, p_load_kw=[0, 0, 200, 100], q_load_kvar=[0, 0, 100, 50], name="teaching4",
    )


FEEDERS: dict[str, Callable[[], Feeder]] = {"ieee33": ieee33, "teaching4": teaching4}


def get_feeder(name: str) -> Feeder:
    """Build a registered feeder by name."""
    try:
        return FEEDERS[name]()
    except KeyError:
        raise ValueError(f"feeder: unknown name {name!r}; known: {sorted(FEEDERS)}") from None
