"""Radial distribution feeder data (spec S4 network model).

Impedances are stored in per unit on ``base_kv`` (line-to-line) and ``base_kva`` (three-phase):
``z_base = base_kv**2 * 1000 / base_kva`` ohm. Powers at the interface are kW / kvar.
Lines are stored oriented away from the root (``from_bus`` is the parent of ``to_bus``), so a
positive line flow runs from the substation towards the loads.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


def _bus_indices(values, name: str) -> np.ndarray:
    """Integer bus indices; a non-integer value (1.5) is an error, not truncated."""
    a = np.asarray(values).ravel()
    if a.dtype.kind == "f":
        bad = np.flatnonzero(~np.isfinite(a) | (a != np.round(a)))
        if bad.size:
            raise ValueError(f"feeder: {name}[{bad[0]}] = {a[bad[0]]} is not an integer bus index")
    elif a.dtype.kind not in "iu":
        raise ValueError(f"feeder: {name} must hold integer bus indices, got dtype {a.dtype}")
    return a.astype(np.int64).copy()


def _frozen(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a


@dataclass(frozen=True, eq=False)
class Feeder:
    """A validated radial feeder.

    n_bus:            number of buses (0 .. n_bus-1).
    from_bus, to_bus: (n_line,) line end buses; re-oriented away from ``root`` on construction.
    r_pu, x_pu:       (n_line,) series resistance / reactance (p.u.); r > 0, x >= 0.
    base_kv:          line-to-line base voltage (kV).
    base_kva:         three-phase power base (kVA).
    line_limit_kva:   (n_line,) apparent-power rating (kVA); np.inf = unlimited.
    v_min, v_max:     (n_bus,) voltage magnitude limits (p.u.); the root is held at ``v_root``.
    root:             substation bus index.
    v_root:           substation voltage magnitude (p.u.).
    p_load_kw, q_load_kvar: (n_bus,) nominal (base-case) load per bus, consumption positive.
    """

    n_bus: int
    from_bus: np.ndarray
    to_bus: np.ndarray
    r_pu: np.ndarray
    x_pu: np.ndarray
    base_kv: float
    base_kva: float
    line_limit_kva: np.ndarray | float = np.inf
    v_min: np.ndarray | float = 0.95
    v_max: np.ndarray | float = 1.05
    root: int = 0
    v_root: float = 1.0
    p_load_kw: np.ndarray | float = 0.0
    q_load_kvar: np.ndarray | float = 0.0
    name: str = "feeder"

    # Derived topology (filled in __post_init__).
    parent: np.ndarray = field(init=False, repr=False)       # (n_bus,) parent bus, -1 at root
    parent_line: np.ndarray = field(init=False, repr=False)  # (n_bus,) line feeding the bus, -1 at root
    order: np.ndarray = field(init=False, repr=False)        # (n_bus,) buses root-first (BFS)
    children: tuple = field(init=False, repr=False)          # children[k] = tuple of child buses
    path: np.ndarray = field(init=False, repr=False)         # (n_line, n_bus) 1 if line on root->bus path
    r_path: np.ndarray = field(init=False, repr=False)       # (n_bus, n_bus) shared path resistance (p.u.)
    x_path: np.ndarray = field(init=False, repr=False)       # (n_bus, n_bus) shared path reactance (p.u.)

    def __post_init__(self) -> None:
        n = int(self.n_bus)
        if n < 2:
            raise ValueError(f"feeder: n_bus must be >= 2, got {self.n_bus}")
        f = _bus_indices(self.from_bus, "from_bus")
        t = _bus_indices(self.to_bus, "to_bus")
        r = np.asarray(self.r_pu, dtype=np.float64).ravel().copy()
        x = np.asarray(self.x_pu, dtype=np.float64).ravel().copy()
        n_line = f.size
        for name, arr in (("to_bus", t), ("r_pu", r), ("x_pu", x)):
            if arr.size != n_line:
                raise ValueError(f"feeder: {name} has {arr.size} entries, from_bus has {n_line}")
        if n_line != n - 1:
            raise ValueError(f"feeder: a radial feeder with {n} buses needs {n - 1} lines, got {n_line}")
        if not 0 <= int(self.root) < n:
            raise ValueError(f"feeder: root {self.root} is not a bus index in [0, {n})")
        if not (np.isfinite(self.base_kv) and np.isfinite(self.base_kva) and self.base_kv > 0 and self.base_kva > 0):
            raise ValueError(f"feeder: base_kv and base_kva must be finite and > 0, got {self.base_kv}, {self.base_kva}")
        for l in range(n_line):
            if not (0 <= f[l] < n and 0 <= t[l] < n) or f[l] == t[l]:
                raise ValueError(f"feeder: line {l} ({f[l]}->{t[l]}) has an invalid bus index")
            if not (np.isfinite(r[l]) and r[l] > 0):
                raise ValueError(f"feeder: line {l} ({f[l]}->{t[l]}) has r <= 0")
            if not (np.isfinite(x[l]) and x[l] >= 0):
                raise ValueError(f"feeder: line {l} ({f[l]}->{t[l]}) has x < 0")
        lim = np.broadcast_to(np.asarray(self.line_limit_kva, dtype=np.float64), (n_line,)).copy()
        bad = np.flatnonzero(~(lim > 0))
        if bad.size:
            l = bad[0]
            raise ValueError(f"feeder: line {l} ({f[l]}->{t[l]}) has line_limit_kva <= 0")
        vmin = np.broadcast_to(np.asarray(self.v_min, dtype=np.float64), (n,)).copy()
        vmax = np.broadcast_to(np.asarray(self.v_max, dtype=np.float64), (n,)).copy()
        bad = np.flatnonzero(~((vmin >= 0) & (vmin < vmax)))
        if bad.size:
            raise ValueError(f"feeder: bus {bad[0]} needs 0 <= v_min < v_max, got {vmin[bad[0]]}, {vmax[bad[0]]}")
        if not (np.isfinite(self.v_root) and self.v_root > 0):
            raise ValueError(f"feeder: v_root must be finite and > 0 p.u., got {self.v_root}")
        pl = np.broadcast_to(np.asarray(self.p_load_kw, dtype=np.float64), (n,)).copy()
        ql = np.broadcast_to(np.asarray(self.q_load_kvar, dtype=np.float64), (n,)).copy()
        if not (np.all(np.isfinite(pl)) and np.all(np.isfinite(ql))):
            raise ValueError("feeder: p_load_kw / q_load_kvar must be finite")

        parent, parent_line, order, f, t = _orient(n, int(self.root), f, t)
        children = [[] for _ in range(n)]
        for k in order[1:]:
            children[parent[k]].append(int(k))

        # path[l, k] = 1 iff line l lies between the root and bus k: walking up from k visits it.
        path = np.zeros((n_line, n))
        for k in range(n):
            b = k
            while parent_line[b] >= 0:
                path[parent_line[b], k] = 1.0
                b = parent[b]
        r_path = path.T @ (r[:, None] * path)
        x_path = path.T @ (x[:, None] * path)

        s = object.__setattr__
        for name, val in (
            ("n_bus", n), ("root", int(self.root)), ("from_bus", f), ("to_bus", t), ("r_pu", r),
            ("x_pu", x), ("line_limit_kva", lim), ("v_min", vmin), ("v_max", vmax),
            ("p_load_kw", pl), ("q_load_kvar", ql), ("parent", parent), ("parent_line", parent_line),
            ("order", order), ("path", path), ("r_path", r_path), ("x_path", x_path),
            ("base_kv", float(self.base_kv)), ("base_kva", float(self.base_kva)), ("v_root", float(self.v_root)),
        ):
            s(self, name, _frozen(val) if isinstance(val, np.ndarray) else val)
        s(self, "children", tuple(tuple(c) for c in children))

    @property
    def n_line(self) -> int:
        return self.n_bus - 1

    @property
    def z_base_ohm(self) -> float:
        """Impedance base (ohm)."""
        return self.base_kv**2 * 1000.0 / self.base_kva

    @property
    def non_root(self) -> np.ndarray:
        """Bus indices other than the root, ascending."""
        return np.delete(np.arange(self.n_bus), self.root)

    @classmethod
    def from_ohm(cls, n_bus, from_bus, to_bus, r_ohm, x_ohm, base_kv, base_kva, **kwargs) -> "Feeder":
        """Build from impedances in ohm (converted to p.u. on ``base_kv``, ``base_kva``)."""
        z = base_kv**2 * 1000.0 / base_kva
        return cls(n_bus, from_bus, to_bus, np.asarray(r_ohm, float) / z, np.asarray(x_ohm, float) / z,
                   base_kv, base_kva, **kwargs)

    def r_ohm(self) -> np.ndarray:
        return self.r_pu * self.z_base_ohm

    def x_ohm(self) -> np.ndarray:
        return self.x_pu * self.z_base_ohm

    def downstream(self, line: int) -> np.ndarray:
        """Buses fed through ``line`` (its to-bus and everything below it)."""
        return np.flatnonzero(self.path[line])


def _orient(n: int, root: int, f: np.ndarray, t: np.ndarray):
    """BFS from the root; flips lines so from_bus is the parent; checks connectivity."""
    adj = [[] for _ in range(n)]
    for l in range(f.size):
        adj[f[l]].append((int(t[l]), l))
        adj[t[l]].append((int(f[l]), l))
    parent = np.full(n, -1, dtype=np.int64)
    parent_line = np.full(n, -1, dtype=np.int64)
    seen = np.zeros(n, dtype=bool)
    seen[root] = True
    order = [root]
    i = 0
    while i < len(order):
        b = order[i]
        i += 1
        for nb, l in adj[b]:
            if l == parent_line[b]:
                continue
            if seen[nb]:
                # n-1 lines + a cycle would leave some bus unreached; name the loop line.
                raise ValueError(f"feeder: line {l} ({f[l]}->{t[l]}) closes a loop; the feeder must be radial")
            seen[nb] = True
            parent[nb] = b
            parent_line[nb] = l
            order.append(nb)
    if not seen.all():
        raise ValueError(f"feeder: bus {int(np.flatnonzero(~seen)[0])} is not connected to root {root}")
    f2, t2 = f.copy(), t.copy()
    for k in range(n):
        l = parent_line[k]
        if l >= 0:
            f2[l], t2[l] = parent[k], k
    return parent, parent_line, np.asarray(order, dtype=np.int64), f2, t2


_UNSUPPORTED = ("trafo", "trafo3w", "switch", "gen", "impedance", "dcline", "ward", "xward", "shunt", "storage")


def pandapower_voltage_limits(bus, root: int, v_root: float) -> tuple[np.ndarray, np.ndarray]:
    """(v_min, v_max) p.u. per bus of a pandapower bus table (its ``min_vm_pu``/``max_vm_pu`` columns, else
    0.95/1.05; NaN: unlimited). The root is held at ``v_root``, so its own limits are irrelevant (pandapower
    often sets 1.0/1.0): they are widened to 0.05 p.u. beyond ``v_root``."""
    n = len(bus)
    vmin = bus.min_vm_pu.to_numpy(float) if "min_vm_pu" in bus else np.full(n, 0.95)
    vmax = bus.max_vm_pu.to_numpy(float) if "max_vm_pu" in bus else np.full(n, 1.05)
    vmin[root], vmax[root] = min(vmin[root], v_root) - 0.05, max(vmax[root], v_root) + 0.05
    return np.where(np.isfinite(vmin), vmin, 0.0), np.where(np.isfinite(vmax), vmax, np.inf)


def from_pandapower(net, *, name: str = "pandapower", base_kva: float = 1000.0, **kwargs) -> Feeder:
    """Feeder from a radial pandapower net (in-service lines only; ext_grid bus = root).

    Loads (x scaling) minus static generators become the base loads. Line shunt capacitance is
    ignored (LinDistFlow assumption). Limits: ``max_i_ka`` gives ``line_limit_kva``
    (pandapower's 99999 kA placeholder and anything above 1e6 kVA read as unlimited);
    ``min_vm_pu``/``max_vm_pu`` columns, when present, give bus voltage limits.
    """
    for tab in _UNSUPPORTED:
        if tab in net and len(net[tab]):
            raise ValueError(f"from_pandapower: table '{tab}' is not supported (radial line-only feeders)")
    bus = net.bus[net.bus.in_service]
    idx = {int(b): i for i, b in enumerate(bus.index)}
    eg = net.ext_grid[net.ext_grid.in_service]
    if len(eg) != 1:
        raise ValueError(f"from_pandapower: need exactly one in-service ext_grid (root), found {len(eg)}")
    vn = bus.vn_kv.to_numpy(float)
    if not np.allclose(vn, vn[0]):
        raise ValueError("from_pandapower: buses have different vn_kv; only one voltage level is supported")
    base_kv = float(vn[0])
    lines = net.line[net.line.in_service]
    par = lines.parallel.to_numpy(float)
    length = lines.length_km.to_numpy(float)
    r = lines.r_ohm_per_km.to_numpy(float) * length / par
    x = lines.x_ohm_per_km.to_numpy(float) * length / par
    try:
        f = np.array([idx[int(b)] for b in lines.from_bus])
        t = np.array([idx[int(b)] for b in lines.to_bus])
    except KeyError as e:
        raise ValueError(f"from_pandapower: in-service line connects out-of-service bus {e}") from None
    lim = np.sqrt(3.0) * base_kv * lines.max_i_ka.to_numpy(float) * par * 1000.0
    lim = np.where(lim > 1e6, np.inf, lim)
    n = len(bus)
    p = np.zeros(n)
    q = np.zeros(n)
    for tab, sign in (("load", 1.0), ("sgen", -1.0)):
        if tab in net and len(net[tab]):
            el = net[tab][net[tab].in_service]
            for b, pm, qm, sc in zip(el.bus, el.p_mw, el.q_mvar, el.scaling):
                p[idx[int(b)]] += sign * pm * sc * 1000.0
                q[idx[int(b)]] += sign * qm * sc * 1000.0
    root = idx[int(eg.bus.iloc[0])]
    v_root = float(eg.vm_pu.iloc[0])
    vmin, vmax = pandapower_voltage_limits(bus, root, v_root)
    kw = dict(line_limit_kva=lim, v_min=vmin, v_max=vmax, root=root, v_root=v_root,
              p_load_kw=p, q_load_kvar=q, name=name)
    kw.update(kwargs)
    return Feeder.from_ohm(n, f, t, r, x, base_kv, base_kva, **kw)
