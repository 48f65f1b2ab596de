"""Built-in feeders.

``ieee33``: the Baran & Wu 33-bus radial feeder, 12.66 kV, base loads 3715 kW / 2300 kvar.
Source: M. E. Baran and F. F. Wu, "Network reconfiguration in distribution systems for loss
reduction and load balancing", IEEE Trans. Power Delivery 4(2):1401-1407, 1989 (line and load
table). Buses are renumbered 0..32 (paper bus i = index i-1, substation = 0). The five normally
open tie lines (paper 8-21, 9-15, 12-22, 18-33, 25-29) are not part of the radial feeder; their
data are in ``TIE_LINES["ieee33"]`` and ``reconfigure`` closes them in place of opened lines.
Voltage limits 0.90/1.10 p.u. follow ``pandapower.networks.case33bw``; lines have no rating in
the paper (unlimited here).

``ieee69``: the 69-bus radial feeder ("a portion of the PG&E distribution system"), 12.66 kV, base
loads 3802.19 kW / 2694.6 kvar. Source: M. E. Baran and F. F. Wu, "Optimal capacitor placement on
radial distribution systems", IEEE Trans. Power Delivery 4(1):725-734, 1989 (line and load data),
as tabulated in D. Das, "Optimal placement of capacitors in radial distribution system using a
Fuzzy-GA method", Int. J. Electrical Power & Energy Systems 30(6-7):361-367, 2008 (Appendix),
cross-checked entry by entry with MATPOWER's ``case69`` (v2, 2020). Buses renumbered 0..68 (paper bus
i = index i-1, substation = 0); the five normally open tie lines are not included. Published base
case at 1.0 p.u. at the substation: total losses 224.95 kW, minimum voltage 0.9092 p.u. at paper bus 65
(index 64); reproduced by ``distflow`` and pandapower in ``tests/test_new_feeders.py``. Voltage limits
0.90/1.10 p.u. as MATPOWER's; lines unrated.

``teaching4``: a 4-bus feeder with round per-unit numbers for hand checks (11 kV, 1000 kVA base):
0 -> 1 (r=0.01, x=0.02), 1 -> 2 (r=0.02, x=0.02), 1 -> 3 (r=0.03, x=0.01) p.u.;
loads 200 kW + 100 kvar at bus 2 and 100 kW + 50 kvar at bus 3.
"""
from __future__ import annotations

from typing import Callable, Sequence

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


# The five normally open tie lines (from, to, r ohm, x ohm), paper order 33..37: paper buses 8-21,
# 9-15, 12-22, 18-33, 25-29 (Baran & Wu 1989, Table 1; identical to the out-of-service lines 32..36
# of pandapower's case33bw, cross-checked in tests/test_resilience_scenarios.py).
_IEEE33_TIES = np.array([
    (7, 20, 2.0, 2.0), (8, 14, 2.0, 2.0), (11, 21, 2.0, 2.0), (17, 32, 0.5, 0.5), (24, 28, 0.5, 0.5),
])
_IEEE33_TIES.setflags(write=False)


# (from, to, r ohm, x ohm) for the 68 branches of the 69-bus feeder, paper order (Das 2008, Appendix).
_IEEE69_LINES = np.array([
    (0, 1, 0.0005, 0.0012), (1, 2, 0.0005, 0.0012), (2, 3, 0.0015, 0.0036), (3, 4, 0.0251, 0.0294),
    (4, 5, 0.3660, 0.1864), (5, 6, 0.3810, 0.1941), (6, 7, 0.0922, 0.0470), (7, 8, 0.0493, 0.0251),
    (8, 9, 0.8190, 0.2707), (9, 10, 0.1872, 0.0619), (10, 11, 0.7114, 0.2351), (11, 12, 1.0300, 0.3400),
    (12, 13, 1.0440, 0.3400), (13, 14, 1.0580, 0.3496), (14, 15, 0.1966, 0.0650), (15, 16, 0.3744, 0.1238),
    (16, 17, 0.0047, 0.0016), (17, 18, 0.3276, 0.1083), (18, 19, 0.2106, 0.0690), (19, 20, 0.3416, 0.1129),
    (20, 21, 0.0140, 0.0046), (21, 22, 0.1591, 0.0526), (22, 23, 0.3463, 0.1145), (23, 24, 0.7488, 0.2475),
    (24, 25, 0.3089, 0.1021), (25, 26, 0.1732, 0.0572), (2, 27, 0.0044, 0.0108), (27, 28, 0.0640, 0.1565),
    (28, 29, 0.3978, 0.1315), (29, 30, 0.0702, 0.0232), (30, 31, 0.3510, 0.1160), (31, 32, 0.8390, 0.2816),
    (32, 33, 1.7080, 0.5646), (33, 34, 1.4740, 0.4873), (2, 35, 0.0044, 0.0108), (35, 36, 0.0640, 0.1565),
    (36, 37, 0.1053, 0.1230), (37, 38, 0.0304, 0.0355), (38, 39, 0.0018, 0.0021), (39, 40, 0.7283, 0.8509),
    (40, 41, 0.3100, 0.3623), (41, 42, 0.0410, 0.0478), (42, 43, 0.0092, 0.0116), (43, 44, 0.1089, 0.1373),
    (44, 45, 0.0009, 0.0012), (3, 46, 0.0034, 0.0084), (46, 47, 0.0851, 0.2083), (47, 48, 0.2898, 0.7091),
    (48, 49, 0.0822, 0.2011), (7, 50, 0.0928, 0.0473), (50, 51, 0.3319, 0.1140), (8, 52, 0.1740, 0.0886),
    (52, 53, 0.2030, 0.1034), (53, 54, 0.2842, 0.1447), (54, 55, 0.2813, 0.1433), (55, 56, 1.5900, 0.5337),
    (56, 57, 0.7837, 0.2630), (57, 58, 0.3042, 0.1006), (58, 59, 0.3861, 0.1172), (59, 60, 0.5075, 0.2585),
    (60, 61, 0.0974, 0.0496), (61, 62, 0.1450, 0.0738), (62, 63, 0.7105, 0.3619), (63, 64, 1.0410, 0.5302),
    (10, 65, 0.2012, 0.0611), (65, 66, 0.0047, 0.0014), (11, 67, 0.7394, 0.2444), (67, 68, 0.0047, 0.0016),
])

# Load at buses 1..68 (kW, kvar); bus 0 is the substation.
_IEEE69_LOADS = np.array([
    (0, 0), (0, 0), (0, 0), (0, 0), (2.6, 2.2), (40.4, 30), (75, 54), (30, 22),
    (28, 19), (145, 104), (145, 104), (8, 5.5), (8, 5.5), (0, 0), (45.5, 30), (60, 35),
    (60, 35), (0, 0), (1, 0.6), (114, 81), (5.3, 3.5), (0, 0), (28, 20), (0, 0),
    (14, 10), (14, 10), (26, 18.6), (26, 18.6), (0, 0), (0, 0), (0, 0), (14, 10),
    (19.5, 14), (6, 4), (26, 18.6), (26, 18.6), (0, 0), (24, 17), (24, 17), (1.2, 1),
    (0, 0), (6, 4.3), (0, 0), (39.2, 26.3), (39.2, 26.3), (0, 0), (79, 56.4), (384.7, 274.5),
    (384.7, 274.5), (40.5, 28.3), (3.6, 2.7), (4.3, 3.5), (26.4, 19), (24, 17.2), (0, 0), (0, 0),
    (0, 0), (100, 72), (0, 0), (1244, 888), (32, 23), (0, 0), (227, 162), (59, 42),
    (18, 13), (18, 13), (28, 20), (28, 20),
], dtype=float)


def _baran_wu(name: str, lines: np.ndarray, loads: np.ndarray) -> Feeder:
    """A 12.66 kV feeder of the Baran & Wu tables (1000 kVA base, limits 0.90/1.10 p.u., root bus 0):
    ``lines`` (from, to, r ohm, x ohm), ``loads`` (kW, kvar) at buses 1..n; the substation carries none."""
    p = np.concatenate([[0.0], loads[:, 0]])
    q = np.concatenate([[0.0], loads[:, 1]])
    return Feeder.from_ohm(
        len(loads) + 1, lines[:, 0].astype(int), lines[:, 1].astype(int), lines[:, 2], lines[:, 3], 12.66, 1000.0,
        v_min=0.90, v_max=1.10, root=0, p_load_kw=p, q_load_kvar=q, name=name,
    )


def ieee33() -> Feeder:
    """Baran & Wu 33-bus feeder (12.66 kV, 1000 kVA base)."""
    return _baran_wu("ieee33", _IEEE33_LINES, _IEEE33_LOADS)


def ieee69() -> Feeder:
    """Baran & Wu / Das 69-bus feeder (12.66 kV, 1000 kVA base); see module docstring."""
    return _baran_wu("ieee69", _IEEE69_LINES, _IEEE69_LOADS)


def ieee_eu_lv() -> Feeder:
    """IEEE European LV test feeder, balanced single-phase equivalent (``pandapower_feeders.ieee_eu_lv``;
    needs pandapower)."""
    from .pandapower_feeders import ieee_eu_lv as build

    return build()


def cigre_lv() -> Feeder:
    """CIGRE LV benchmark network (``pandapower_feeders.cigre_lv``; needs pandapower)."""
    from .pandapower_feeders import cigre_lv as build

    return build()


def kerber_dorfnetz() -> Feeder:
    """Kerber village LV network (``pandapower_feeders.kerber_dorfnetz``; needs pandapower)."""
    from .pandapower_feeders import kerber_dorfnetz as build

    return build()


def teaching4() -> Feeder:
    """4-bus hand-check feeder (see module docstring)."""
    return Feeder(
        4, [0, 1, 1], [1, 2, 3], [0.01, 0.02, 0.03], [0.02, 0.02, 0.01], 11.0, 1000.0,
        v_min=0.95, v_max=1.05, p_load_kw=[0, 0, 200, 100], q_load_kvar=[0, 0, 100, 50], name="teaching4",
    )


# ieee_eu_lv, cigre_lv and kerber_dorfnetz are built by pandapower's network functions (imported on call).
FEEDERS: dict[str, Callable[[], Feeder]] = {
    "ieee33": ieee33, "teaching4": teaching4, "ieee69": ieee69,
    "ieee_eu_lv": ieee_eu_lv, "cigre_lv": cigre_lv, "kerber_dorfnetz": kerber_dorfnetz,
}

# Normally open tie lines per feeder: (k, 4) rows (from bus, to bus, r ohm, x ohm), read-only.
TIE_LINES: dict[str, np.ndarray] = {"ieee33": _IEEE33_TIES}


def reconfigure(feeder: Feeder, switching: Sequence[tuple[int, int]], ties_ohm) -> Feeder:
    """The feeder with lines opened and tie lines closed: ``switching`` = ((line, tie), ...).

    Each pair opens ``line`` and closes row ``tie`` of ``ties_ohm`` ((k, 4): from bus, to bus,
    r ohm, x ohm, as ``TIE_LINES``) in the same slot, so every other line keeps its index (line
    ratings and diagnostics by index stay valid). The closed tie is unrated (``inf`` kVA); loads,
    voltage limits and bases are unchanged. ``Feeder`` re-orients the lines away from the root and
    raises ValueError if the result is not radial and connected (e.g. a tie that closes a loop
    while the opened line leaves buses without supply).
    """
    ties = np.asarray(ties_ohm, dtype=np.float64)
    if ties.ndim != 2 or ties.shape[1] != 4:
        raise ValueError(f"ties_ohm: expected (k, 4) rows (from, to, r ohm, x ohm), got shape {ties.shape}")
    fb, tb = feeder.from_bus.copy(), feeder.to_bus.copy()
    r, x = feeder.r_pu.copy(), feeder.x_pu.copy()
    lim = feeder.line_limit_kva.copy()
    z = feeder.z_base_ohm
    lines = [int(l) for l, _ in switching]
    tie_ids = [int(t) for _, t in switching]
    if len(set(lines)) != len(lines) or len(set(tie_ids)) != len(tie_ids):
        raise ValueError(f"switching: each line and each tie may be switched once, got {tuple(switching)}")
    for line, tie in zip(lines, tie_ids):
        if not 0 <= line < feeder.n_line:
            raise ValueError(f"switching: line {line} outside [0, {feeder.n_line}) of feeder {feeder.name!r}")
        if not 0 <= tie < len(ties):
            raise ValueError(f"switching: tie {tie} outside [0, {len(ties)}) of feeder {feeder.name!r}")
        a, b, r_ohm, x_ohm = ties[tie]
        fb[line], tb[line], r[line], x[line], lim[line] = int(a), int(b), r_ohm / z, x_ohm / z, np.inf
    name = feeder.name + "".join(f"-open{l}-close{t}" for l, t in zip(lines, tie_ids))
    try:
        return Feeder(feeder.n_bus, fb, tb, r, x, feeder.base_kv, feeder.base_kva, line_limit_kva=lim,
                      v_min=feeder.v_min, v_max=feeder.v_max, root=feeder.root, v_root=feeder.v_root,
                      p_load_kw=feeder.p_load_kw, q_load_kvar=feeder.q_load_kvar, name=name)
    except ValueError as e:
        raise ValueError(f"switching {tuple(switching)} of feeder {feeder.name!r}: {e}") from None


def get_feeder(name: str) -> Feeder:
    """Build a registered feeder by name."""
    try:
        return FEEDERS[name]()
    except KeyError:
        raise ValueError(f"feeder: unknown name {name!r}; known: {sorted(FEEDERS)}") from None
