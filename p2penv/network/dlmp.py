"""Network-constrained clearing with distribution locational marginal prices (spec S5, S6).

One step lasts ``dt_h`` hours (default 1 h, so kW == kWh). Orders use the book convention of
``p2penv.market.mechanisms.types``: prices ($/kWh), quantities (kWh, >= 0), sides (+1 sell/ask,
-1 buy/bid, 0 idle), plus the bus of each order. Fixed nodal loads (kW, kvar; consumption positive)
are inelastic. The substation (root) imports or exports at the wholesale price lambda_0 ($/kWh).

LP (all powers in kW over the step):

    max  sum_bids price*x - sum_asks price*x - lambda_0 * P0 * dt  - penalty * slacks * dt
    s.t. P0 = sum_k MLF_k d_k + L_const          (P balance; linearised losses supplied by P0)
         -Pmax_l <= (path @ d)_l <= Pmax_l       (lines with a finite rating)
         v_min^2 <= v_root^2 - 2 (R d + X dq)/S_base <= v_max^2   (LinDistFlow voltages)
         -export_limit <= P0 <= import_limit,   0 <= x <= quantity/dt

with d = nodal net load (fixed load + bids - asks), dq the fixed reactive load. Reactive power has
no decision variable, so nodal Q balance is solved in closed form: Q flows = path @ dq, and the
apparent-power rating S_l becomes the exact active limit Pmax_l = sqrt(S_l^2 - Q_l^2).

DLMP_k ($/kWh) = marginal cost of serving one more kW of *load* at bus k for one step, split as
energy (dual of the balance = price at the substation) + loss (energy * dL/dP_load,k)
+ congestion (sum over line rows of shadow price * dP_l/dP_load,k)
+ voltage (sum over voltage rows of shadow price * dv_j/dP_load,k). The four parts are the terms of
the envelope-theorem derivative, so they sum to the DLMP by construction.

Violations are priced by penalised slacks (``penalty`` $/kWh): unserved/spilled energy at the
substation, line overload (kW), and voltage slack in kW-equivalents (the virtual injection at the
violating bus that would restore its limit). A solve therefore never fails; ``violated`` flags it.
"""
from __future__ import annotations

from dataclasses import dataclass

import highspy

from .basis_cache import BasisCache
from .basis_cache import configure as configure_highs
from .highs import new_highs
from .kernels import clearing_arrays, write_book
import numpy as np
import scipy.sparse as sp
from scipy.optimize import linprog

from ..market.mechanisms.types import check_book
from .feeder import Feeder
from .lindistflow import LossModel, distflow, distflow_loss_model, linearise_losses, loss_model_at

_INF = highspy.kHighsInf
LOSS_ITERATION_TOL_KW = 1e-6  # successive LPs stop when no order column moves by more (kW)
# Step bound of an order column after its step reversed direction, as a fraction of that step: a
# column whose offer is worth exactly its loss-adjusted price at a point between two LP vertices
# jumps between them forever (the LP of a linearisation is bang-bang); halving the bound on every
# reversal is bisection towards that point (successive LP with step bounds, Griffith & Stewart 1961).
STEP_BOUND_SHRINK = 0.5
LOSS_POINTS = ("lindistflow", "distflow")
_NO_OFFSET = np.empty(0)  # clearing_arrays: no loss correction of the line flows


@dataclass(frozen=True, eq=False)
class DlmpClearing:
    """Outcome of one DLMP clearing (n orders, n_bus buses, n_line lines).

    matched:          (n,) kWh traded per order.
    unit_price:       (n,) $/kWh per order = DLMP at its bus.
    sides:            (n,) int8 copy of the book's sides.
    dlmp:             (n_bus,) $/kWh = energy + loss + congestion + voltage.
    energy, loss, congestion, voltage: (n_bus,) DLMP components ($/kWh).
    mlf:              (n_bus,) marginal loss factors 1 + dL/dP_load.
    net_load_kw:      (n_bus,) fixed load + bids - asks (kW).
    substation_import_kw: P0 (kW, negative = export).
    losses_kw:        linearised losses at the dispatch (kW).
    voltages:         (n_bus,) LinDistFlow |V| (p.u.).
    line_flows_kw, line_flows_kvar: (n_line,) parent -> child flows.
    loading:          (n_line,) |S| / rating (0 for unrated lines).
    operator_surplus: $ merchandising surplus: sum_k DLMP_k d_k dt - lambda_0 P0 dt (fixed loads pay
                      DLMP too, sellers receive it, the substation is paid lambda_0).
    welfare:          $ declared: bids*price - asks*price - lambda_0 P0 dt (no penalties).
    objective:        $ LP cost = -welfare + penalty cost.
    unserved_kw:      balance slack (> 0 load not served, < 0 energy spilled).
    line_violation_kw: (n_line,) overload beyond the rating's active limit.
    voltage_violation_pu: (n_bus,) max(v_min - V, V - v_max, 0) on the LinDistFlow voltages.
    violated:         True when any penalised slack is active.
    loss_iterations:  LP solves used (``clear(loss_iterations=n)``: 1 = losses linearised once; more =
                      successive linear programming, re-linearised at each cleared point): the iteration
                      count of the loss iteration.
    converged:        the loss iteration met its tolerance: the last solve moved no order column by more
                      than ``loss_tol_kw`` from the point its losses were linearised at (False for a single
                      solve, which checks nothing, and when the budget ran out first).
    """

    matched: np.ndarray
    unit_price: np.ndarray
    sides: np.ndarray
    dlmp: np.ndarray
    energy: np.ndarray
    loss: np.ndarray
    congestion: np.ndarray
    voltage: np.ndarray
    mlf: np.ndarray
    net_load_kw: np.ndarray
    substation_import_kw: float
    losses_kw: float
    voltages: np.ndarray
    line_flows_kw: np.ndarray
    line_flows_kvar: np.ndarray
    loading: np.ndarray
    operator_surplus: float
    welfare: float
    objective: float
    unserved_kw: float
    line_violation_kw: np.ndarray
    voltage_violation_pu: np.ndarray
    violated: bool
    loss_iterations: int = 1
    converged: bool = False

    @property
    def cash(self) -> np.ndarray:
        """(n,) $ received (sell, > 0) or paid (buy, < 0) per order."""
        return self.sides * self.matched * self.unit_price


@dataclass(frozen=True, eq=False)
class LpArrays:
    """The DLMP LP of one book, as copies: ``min cost.x  s.t.  row_lo <= A x <= row_hi,
    col_lo <= x <= col_hi`` (column and row layout as in ``DlmpMarket``; inf = unbounded)."""

    A: np.ndarray
    cost: np.ndarray
    col_lo: np.ndarray
    col_hi: np.ndarray
    row_lo: np.ndarray
    row_hi: np.ndarray


class DlmpMarket:
    """DLMP clearing for a fixed feeder and fixed order buses; built once, warm re-solved.

    Columns: per order a buy and a sell variable (kW; the idle one is fixed at 0 so the matrix never
    changes with sides), P0, 2 balance slacks, 2 slacks per rated line, 2 per non-root bus.
    Rows: balance, rated lines, non-root voltages (scaled by S_base/2 to kW*p.u. units).

    Repeated clearing is incremental, which is what makes an environment step cheap:
    * the last optimal basis is kept (``basis_cache``, ``network.basis_cache``): each solve first
      certifies it on the new LP (primal and dual feasibility, compiled) and calls HiGHS only when it
      fails; a degenerate optimum (a tie) is re-solved cold, so the answer never depends on what was
      solved before. ``reuse_basis=False`` calls HiGHS every step (same answers);
    * loss factors reach HiGHS lazily, only for columns that can be nonzero (an idle column is
      fixed at 0, so its coefficient changes neither the primal optimum nor the duals);
    * line and voltage row bounds depend only on the fixed loads; when the loads are passed as
      read-only arrays (the environments do), they are recomputed only when those arrays change
      (by identity), otherwise only the balance row's bounds are sent.
    ``tests/test_dlmp.py`` checks the warm path against a one-shot cold build on random books.
    A market can be pickled and deep-copied: the HiGHS model is rebuilt on load (its basis and the kept
    basis travel with the copy).
    """

    def __init__(self, feeder: Feeder, order_buses, *, dt_h: float = 1.0, import_limit_kw: float = np.inf,
                 export_limit_kw: float = np.inf, penalty: float = 1000.0, loss_model: LossModel | None = None,
                 reuse_basis: bool = True):
        buses = np.asarray(order_buses, dtype=np.int64).ravel()
        if buses.size == 0:
            raise ValueError("order_buses: need at least one order")
        if np.any((buses < 0) | (buses >= feeder.n_bus)):
            raise ValueError(f"order_buses: bus index outside [0, {feeder.n_bus})")
        if not (np.isfinite(dt_h) and dt_h > 0):
            raise ValueError(f"dt_h: must be finite and > 0, got {dt_h}")
        if not (import_limit_kw >= 0 and export_limit_kw >= 0):
            raise ValueError("import_limit_kw/export_limit_kw: must be >= 0")
        if not (np.isfinite(penalty) and penalty > 0):
            raise ValueError(f"penalty: must be finite and > 0 $/kWh, got {penalty}")
        self.feeder, self.buses, self.dt_h, self.penalty = feeder, buses, float(dt_h), float(penalty)
        n = buses.size
        self.n_orders = n
        self.rated = np.flatnonzero(np.isfinite(feeder.line_limit_kva))
        self.vrows = feeder.non_root
        nl, nv = self.rated.size, self.vrows.size
        # Column layout.
        self.c_buy, self.c_sell = np.arange(n), np.arange(n, 2 * n)
        self.c_p0 = 2 * n
        self.c_bal = 2 * n + 1 + np.arange(2)
        self.c_line = 2 * n + 3 + np.arange(2 * nl)
        self.c_volt = 2 * n + 3 + 2 * nl + np.arange(2 * nv)
        self.n_col = 2 * n + 3 + 2 * nl + 2 * nv
        self.n_row = 1 + nl + nv
        half = feeder.base_kva / 2.0
        A = np.zeros((self.n_row, self.n_col))
        A[0, self.c_p0] = 1.0
        A[0, self.c_bal] = (1.0, -1.0)           # shed acts as supply, spill as demand
        path_o = feeder.path[self.rated][:, buses]
        A[1:1 + nl, self.c_buy] = path_o
        A[1:1 + nl, self.c_sell] = -path_o
        A[1 + np.arange(nl), self.c_line[:nl]] = -1.0   # over: flow beyond +Pmax
        A[1 + np.arange(nl), self.c_line[nl:]] = 1.0    # under: flow beyond -Pmax
        r_o = feeder.r_path[self.vrows][:, buses]
        A[1 + nl:, self.c_buy] = -r_o
        A[1 + nl:, self.c_sell] = r_o
        rjj = feeder.r_path[self.vrows, self.vrows]
        A[1 + nl + np.arange(nv), self.c_volt[:nv]] = rjj    # virtual injection raising v_j
        A[1 + nl + np.arange(nv), self.c_volt[nv:]] = -rjj
        self._A = A
        cost = np.zeros(self.n_col)
        cost[2 * n + 1:] = self.penalty * self.dt_h
        lo = np.zeros(self.n_col)
        hi = np.full(self.n_col, np.inf)
        lo[self.c_p0], hi[self.c_p0] = -export_limit_kw, import_limit_kw
        self._cost, self._col_lo, self._col_hi = cost, lo, hi
        self._row_lo = np.zeros(self.n_row)
        self._row_hi = np.zeros(self.n_row)
        # Static parts of the row bounds (before subtracting the fixed-load terms).
        v0 = feeder.v_root**2
        self._v_lo = (feeder.v_min[self.vrows] ** 2 - v0) * half
        vmax = feeder.v_max[self.vrows]
        self._v_hi = np.where(np.isfinite(vmax), (vmax**2 - v0) * half, np.inf)
        # Sub-matrices sliced once for the results.
        self._path_r = np.ascontiguousarray(feeder.path[self.rated])
        self._rpath_v = np.ascontiguousarray(feeder.r_path[self.vrows])
        self._lim_r = feeder.line_limit_kva[self.rated]
        self._orders_idx = np.arange(2 * n + 1, dtype=np.int32)
        self._rows_idx = np.arange(self.n_row, dtype=np.int32)
        self._col_lo_orders = np.maximum(self._col_lo[:2 * n + 1], -_INF)  # never changes
        self._loads_key = None
        self.basis_cache = BasisCache(reuse_basis)  # last optimal basis; certified before HiGHS is called
        self._pf_off = None  # loss correction of the line flows (kW) after a loss_point="distflow" iteration
        self.set_loss_model(loss_model_at(feeder) if loss_model is None else loss_model)
        self._new_solver()

    # -- solver lifecycle (pickle / deepcopy rebuild the HiGHS model) -----------------------------
    def _new_solver(self) -> None:
        self._h = new_highs()
        configure_highs(self._h)
        self._loaded = False
        self._rows_dirty = True

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state.pop("_h")
        state["_loads_key"] = None  # identity of the caller's arrays does not survive a copy
        if self._loaded:  # the warm basis travels with the copy, so both continue identically
            b = self._h.getBasis()
            state["_basis"] = ([int(x) for x in b.col_status], [int(x) for x in b.row_status]) if b.valid else None
        return state

    def __setstate__(self, state: dict) -> None:
        basis = state.pop("_basis", None)
        loaded = state["_loaded"]
        self.__dict__.update(state)
        self._new_solver()
        if loaded:
            # rebuild the model exactly as HiGHS held it (its lazily updated balance row included)
            n2 = 2 * self.n_orders
            held = self._A[0, :n2].copy()
            self._A[0, :n2] = self._in_lp
            self._load()
            self._A[0, :n2] = held
            if basis is not None:
                b = highspy.HighsBasis()
                b.col_status = [highspy.HighsBasisStatus(x) for x in basis[0]]
                b.row_status = [highspy.HighsBasisStatus(x) for x in basis[1]]
                b.valid = True
                self._h.setBasis(b)

    def forget_basis(self) -> None:
        """Drop the warm state: the next solve is cold (a new HiGHS model from the slack basis, no kept
        basis), as in a freshly built market. Reference solves for tests and benchmarks."""
        self._new_solver()
        self.basis_cache.forget()

    # -- model updates -------------------------------------------------------------------------
    def set_loss_model(self, loss_model: LossModel) -> None:
        """Change the loss linearisation (e.g. to the previous step's flows); keeps the basis."""
        nb = self.feeder.n_bus
        if loss_model.g.shape != (nb,) or loss_model.h.shape != (nb,):
            raise ValueError(f"loss_model: g and h must have shape ({nb},)")
        self.loss_model = loss_model
        self._mlf = loss_model.mlf
        coef = self._mlf[self.buses]
        self._A[0, self.c_buy] = -coef
        self._A[0, self.c_sell] = coef

    def _load(self) -> None:
        csc = sp.csc_matrix(self._A)
        lo = np.where(np.isfinite(self._col_lo), self._col_lo, -_INF)
        hi = np.where(np.isfinite(self._col_hi), self._col_hi, _INF)
        rlo = np.where(np.isfinite(self._row_lo), self._row_lo, -_INF)
        rhi = np.where(np.isfinite(self._row_hi), self._row_hi, _INF)
        lp = highspy.HighsLp()
        lp.num_col_, lp.num_row_ = self.n_col, self.n_row
        lp.col_cost_, lp.col_lower_, lp.col_upper_ = self._cost, lo, hi
        lp.row_lower_, lp.row_upper_ = rlo, rhi
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        lp.a_matrix_.start_ = csc.indptr.astype(np.int32)
        lp.a_matrix_.index_ = csc.indices.astype(np.int32)
        lp.a_matrix_.value_ = csc.data
        self._h.passModel(lp)
        self._in_lp = self._A[0, :2 * self.n_orders].copy()  # balance-row coefficients HiGHS holds
        self._loaded = True
        self._rows_dirty = False

    def _load_orders(self, prices, quantities, sides, wholesale_price, d, dq):
        """Validate the book and write its bounds, costs and the balance row (loads ``d``, ``dq``)."""
        p, q, s = check_book(prices, quantities, sides)
        if p.shape != (self.n_orders,):
            raise ValueError(f"prices: expected shape ({self.n_orders},) (one per order bus), got {p.shape}")
        if not np.isfinite(wholesale_price):
            raise ValueError("wholesale_price: must be finite")
        lm = self.loss_model
        self._row_lo[0] = self._row_hi[0] = write_book(p, q, s, self.dt_h, float(wholesale_price), self._col_hi,
                                                       self._cost, lm.const_kw, lm.h, dq, self._mlf, d)
        return p, q, s

    def _prepare(self, prices, quantities, sides, wholesale_price, p_load_kw, q_load_kvar):
        """Write the book and the fixed loads into the LP arrays; row bounds only when loads change."""
        key = self._loads_key
        if (key is not None and p_load_kw is key[0] and q_load_kvar is key[1]
                and not p_load_kw.flags.writeable and not q_load_kvar.flags.writeable):
            d, dq = p_load_kw, q_load_kvar  # unchanged read-only loads: line/voltage rows stay as they are
            p, q, s = self._load_orders(prices, quantities, sides, wholesale_price, d, dq)
            return p, q, s, d, dq, float(wholesale_price)
        f, nb = self.feeder, self.feeder.n_bus
        d = np.zeros(nb) if p_load_kw is None else np.asarray(p_load_kw, dtype=np.float64)
        dq = np.zeros(nb) if q_load_kvar is None else np.asarray(q_load_kvar, dtype=np.float64)
        for name, a in (("p_load_kw", d), ("q_load_kvar", dq)):
            if a.shape != (nb,) or not np.all(np.isfinite(a)):
                raise ValueError(f"{name}: expected {nb} finite values (one per bus)")
        p, q, s = self._load_orders(prices, quantities, sides, wholesale_price, d, dq)
        nl = self.rated.size
        if nl:
            pf = self._path_r @ d
            qf = self._path_r @ dq
            pmax = np.sqrt(np.maximum(f.line_limit_kva[self.rated] ** 2 - qf**2, 0.0))
            self._row_lo[1:1 + nl] = -pmax - pf
            self._row_hi[1:1 + nl] = pmax - pf
        c = (f.r_path[self.vrows] @ d + f.x_path[self.vrows] @ dq)
        self._row_lo[1 + nl:] = self._v_lo + c
        self._row_hi[1 + nl:] = self._v_hi + c
        self._qf_all = f.path @ dq  # reactive flows and voltage terms are fixed with the loads
        self._vq_all = f.x_path @ dq
        self._pf_off = None
        read_only = (p_load_kw is not None and q_load_kvar is not None and not p_load_kw.flags.writeable
                     and not q_load_kvar.flags.writeable)
        self._loads_key = (p_load_kw, q_load_kvar) if read_only else None
        self._rows_dirty = True
        return p, q, s, d, dq, float(wholesale_price)

    def lp_arrays(self, prices, quantities, sides, wholesale_price: float, p_load_kw=None,
                  q_load_kvar=None) -> LpArrays:
        """The LP this market would solve for a book (copies; the market's state is not changed
        beyond its cached load terms). Used by the exact best response (a MILP around this LP)."""
        self._prepare(prices, quantities, sides, wholesale_price, p_load_kw, q_load_kvar)
        return LpArrays(self._A.copy(), self._cost.copy(), self._col_lo.copy(), self._col_hi.copy(),
                        self._row_lo.copy(), self._row_hi.copy())

    # -- clearing -------------------------------------------------------------------------------
    def clear(self, prices, quantities, sides, wholesale_price: float, p_load_kw=None, q_load_kvar=None,
              *, loss_model: LossModel | None = None, solver: str = "highs", loss_iterations: int = 1,
              loss_point: str = "lindistflow", loss_tol_kw: float = LOSS_ITERATION_TOL_KW) -> DlmpClearing:
        """Clear one step. ``solver``: 'highs' (warm-started highspy) or 'linprog' (scipy, cold).

        ``loss_iterations`` = n >= 1: successive linear programming on the losses. After each solve the
        losses are re-linearised at the cleared point and the LP re-solved (warm), at most n solves in
        all, stopping early (``converged=True``) once no order column moved by more than ``loss_tol_kw``
        (default ``LOSS_ITERATION_TOL_KW`` = 1e-6 kW) since the previous solve. n = 1 is the single
        solve with the given loss model (unchanged).

        Damping: the LP of a linearisation is bang-bang in an order whose offer price lies between its
        loss-adjusted values at two vertices, so the plain iteration can alternate between them for
        ever. An order column whose step reverses direction gets a step bound around the
        linearisation point of ``STEP_BOUND_SHRINK`` (0.5) times that step, shrunk again at every
        further reversal: bisection towards the point where the offer is worth exactly its price. A
        sequence that never reverses (the usual contraction) is the plain iteration, solve for solve.
        Step bounds are column bounds, so the DLMPs stay the row duals of the LP.
        ``loss_point`` says what "the cleared point" is:

        * ``"lindistflow"``: the LP's own LinDistFlow flows and voltages (``linearise_losses``); the
          line and voltage rows stay lossless LinDistFlow;
        * ``"distflow"``: the exact branch-flow (DistFlow = AC on a radial feeder) solution at the
          cleared net loads: losses linearised exactly there (``distflow_loss_model``), and the line
          and voltage rows shifted by the losses' effect at that point (flows carry the downstream
          losses, voltages drop by them), so a converged LP meets its limits in AC. The shift moves
          only row bounds; the sensitivities stay LinDistFlow's. It is undone by the next ``clear``.

        The market keeps the last loss model (``self.loss_model``); the result reports the solves used.
        """
        if isinstance(loss_iterations, bool) or not isinstance(loss_iterations, (int, np.integer)) or loss_iterations < 1:
            raise ValueError(f"loss_iterations: expected an integer >= 1, got {loss_iterations!r}")
        if solver not in ("highs", "linprog"):
            raise ValueError(f"solver: expected 'highs' or 'linprog', got {solver!r}")
        if loss_point not in LOSS_POINTS:
            raise ValueError(f"loss_point: expected one of {LOSS_POINTS}, got {loss_point!r}")
        if loss_model is not None:
            self.set_loss_model(loss_model)
        if not (np.isfinite(loss_tol_kw) and loss_tol_kw > 0):
            raise ValueError(f"loss_tol_kw: must be finite and > 0 kW, got {loss_tol_kw!r}")
        p, q, s, d, dq, lam = self._prepare(prices, quantities, sides, wholesale_price, p_load_kw, q_load_kvar)
        solve = self._solve_highs if solver == "highs" else self._solve_linprog
        x, y = solve()
        n2, it, converged = 2 * self.n_orders, 1, False
        bound = np.full(n2, np.inf)  # step bound per order column (kW); inf until its step reverses
        step_prev = np.zeros(n2)
        while it < loss_iterations:
            d_tot, pf, qf, v = self._point(x, d)
            if loss_point == "lindistflow":
                self.set_loss_model(linearise_losses(self.feeder, pf, qf, v))
            else:
                st = distflow(self.feeder, d_tot, dq)
                self.set_loss_model(distflow_loss_model(self.feeder, d_tot, dq, st))
                self._shift_rows(d, dq, d_tot, st)
            lm = self.loss_model
            self._row_lo[0] = self._row_hi[0] = lm.const_kw - lm.h @ dq + self._mlf @ d
            x_prev = x
            if np.isfinite(bound).any():
                top = self._col_hi[:n2]
                x, y = solve(np.clip(x_prev[:n2] - bound, 0.0, top), np.clip(x_prev[:n2] + bound, 0.0, top))
            else:
                x, y = solve()
            it += 1
            step = x[:n2] - x_prev[:n2]
            if np.max(np.abs(step)) < loss_tol_kw:
                converged = True
                break
            rev = step * step_prev < 0.0
            bound[rev] = np.minimum(bound[rev], STEP_BOUND_SHRINK * np.abs(step[rev]))
            step_prev = np.where(step != 0.0, step, step_prev)
        return self._result(x, y, p, s, d, dq, lam, loss_iterations=it, converged=converged)

    def _point(self, x, d_fixed):
        """Net loads, flows and voltages of a solution (as ``_result`` reports them)."""
        f = self.feeder
        d = d_fixed + np.bincount(self.buses, x[self.c_buy] - x[self.c_sell], minlength=f.n_bus)
        pf = f.path @ d
        if self._pf_off is not None:
            pf = pf + self._pf_off
        v = np.sqrt(np.maximum(f.v_root**2 - 2.0 * (f.r_path @ d + self._vq_all) / f.base_kva, 0.0))
        return d, pf, self._qf_all, v

    def _shift_rows(self, d, dq, d_tot, st) -> None:
        """Line and voltage rows (and the result's flows/voltages) with the DistFlow loss terms of the
        point ``d_tot`` added as constants: P_l = path@d + dP_l, Q_l = path@dq + dQ_l, v = v_lin + dv."""
        f, nl, half = self.feeder, self.rated.size, self.feeder.base_kva / 2.0
        p_off = st.p_flow_kw - f.path @ d_tot
        q_off = st.q_flow_kvar - f.path @ dq
        v_lin = f.v_root**2 - 2.0 * (f.r_path @ d_tot + f.x_path @ dq) / f.base_kva
        v_off = st.v**2 - v_lin
        self._qf_all = f.path @ dq + q_off
        self._vq_all = f.x_path @ dq - v_off * half
        self._pf_off = p_off
        if nl:
            qf = self._qf_all[self.rated]
            pf = self._path_r @ d + p_off[self.rated]
            pmax = np.sqrt(np.maximum(f.line_limit_kva[self.rated] ** 2 - qf**2, 0.0))
            self._row_lo[1:1 + nl] = -pmax - pf
            self._row_hi[1:1 + nl] = pmax - pf
        c = f.r_path[self.vrows] @ d + self._vq_all[self.vrows]
        self._row_lo[1 + nl:] = self._v_lo + c
        self._row_hi[1 + nl:] = self._v_hi + c
        self._rows_dirty = True
        self._loads_key = None  # the next clear recomputes the unshifted rows

    def _solve_highs(self, lo_orders=None, hi_orders=None):
        """(x, row duals): the kept optimal basis when it still certifies, else HiGHS (``basis_cache``)."""
        lo, hi = self._col_lo, self._col_hi
        if lo_orders is not None:
            lo, hi = lo.copy(), hi.copy()
            lo[:lo_orders.size], hi[:hi_orders.size] = lo_orders, hi_orders
        return self.basis_cache.solve(self._A, self._cost, lo, hi, self._row_lo, self._row_hi,
                                      lambda: self._run_highs(lo_orders, hi_orders))

    def _run_highs(self, lo_orders=None, hi_orders=None) -> highspy.Highs:
        """Solve (warm); returns the HiGHS instance at its optimum. ``lo_orders``/``hi_orders`` (2n,) replace
        the order columns' bounds for this solve only (the loss iteration's step bounds): every solve sends
        the bounds it uses."""
        h = self._h
        if not self._loaded:
            self._load()
            if lo_orders is not None:
                m = self._orders_idx.size
                h.changeColsBounds(m - 1, self._orders_idx[:-1], lo_orders, hi_orders)
        else:
            n2 = 2 * self.n_orders
            row = self._A[0, :n2]
            stale = np.flatnonzero((self._col_hi[:n2] > 0) & (row != self._in_lp))
            for j, c in zip(stale.tolist(), row[stale].tolist()):
                h.changeCoeff(0, j, c)
            self._in_lp[stale] = row[stale]
            idx = self._orders_idx
            m = idx.size
            h.changeColsCost(m, idx, self._cost[:m])
            hi = self._col_hi[:m].copy()
            hi[-1] = min(hi[-1], _INF)  # P0's import limit may be inf; order columns are finite
            lo = self._col_lo_orders
            if lo_orders is not None:
                lo = lo.copy()
                lo[:-1], hi[:-1] = lo_orders, hi_orders
            h.changeColsBounds(m, idx, lo, hi)
            if self._rows_dirty:
                h.changeRowsBounds(self.n_row, self._rows_idx, np.maximum(self._row_lo, -_INF),
                                   np.minimum(self._row_hi, _INF))
                self._rows_dirty = False
            else:
                h.changeRowBounds(0, float(self._row_lo[0]), float(self._row_hi[0]))
        h.run()
        if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
            # Slacks make every instance feasible and bounded; a failure is numerical: retry cold.
            h.clearSolver()
            h.run()
            if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
                raise RuntimeError(f"DLMP LP: HiGHS status {h.modelStatusToString(h.getModelStatus())}")
        return h

    def _solve_linprog(self, lo_orders=None, hi_orders=None):
        A = self._A
        rows_ub, b_ub, sign = [], [], []
        for i in range(1, self.n_row):
            if np.isfinite(self._row_hi[i]):
                rows_ub.append(A[i]); b_ub.append(self._row_hi[i]); sign.append((i, 1.0))
            if np.isfinite(self._row_lo[i]):
                rows_ub.append(-A[i]); b_ub.append(-self._row_lo[i]); sign.append((i, -1.0))
        bounds = np.column_stack([self._col_lo, np.where(np.isfinite(self._col_hi), self._col_hi, np.nan)])
        if lo_orders is not None:
            bounds[:lo_orders.size, 0], bounds[:lo_orders.size, 1] = lo_orders, hi_orders
        bounds = [(lo, None if np.isnan(hi) else hi) for lo, hi in bounds]
        bounds[self.c_p0] = (None if np.isinf(self._col_lo[self.c_p0]) else self._col_lo[self.c_p0],
                             None if np.isinf(self._col_hi[self.c_p0]) else self._col_hi[self.c_p0])
        res = linprog(self._cost, A_ub=np.array(rows_ub) if rows_ub else None, b_ub=b_ub or None,
                      A_eq=A[:1], b_eq=self._row_lo[:1], bounds=bounds, method="highs")
        if res.status != 0:
            raise RuntimeError(f"DLMP LP (linprog): {res.message}")
        y = np.zeros(self.n_row)
        y[0] = res.eqlin.marginals[0]
        # A ranged row's bounds move together with the fixed load, so its dual is the sum of both sides'.
        for (i, sg), m in zip(sign, res.ineqlin.marginals):
            y[i] += sg * m
        return res.x, y

    def _result(self, x, y, p, s, d_fixed, dq, lam, loss_iterations: int = 1, converged: bool = False) -> DlmpClearing:
        f, lm = self.feeder, self.loss_model
        orders, buses, lines, p0, losses, surplus, welfare, objective, unserved, slack_tot = clearing_arrays(
            x, y, self.dt_h, self.buses, d_fixed, self._mlf, f.order, f.parent, f.parent_line, f.r_pu, self.rated,
            f.r_path, self.vrows, _NO_OFFSET if self._pf_off is None else self._pf_off, self._qf_all, self._vq_all,
            f.v_root, f.base_kva, self._lim_r, lm.const_kw, lm.g, lm.h, dq, f.v_min, f.v_max, f.root, self._cost, p,
            lam)
        qf = self._qf_all
        matched, unit_price = orders
        d, energy, loss, congestion, voltage, dlmp, v, vv = buses
        pf, loading, line_v = lines
        return DlmpClearing(
            matched=matched, unit_price=unit_price, sides=s, dlmp=dlmp, energy=energy, loss=loss,
            congestion=congestion, voltage=voltage, mlf=self._mlf.copy(), net_load_kw=d,
            substation_import_kw=p0, losses_kw=losses, voltages=v, line_flows_kw=pf,
            line_flows_kvar=qf.copy(), loading=loading, operator_surplus=surplus,
            welfare=welfare, objective=objective, unserved_kw=unserved, line_violation_kw=line_v,
            voltage_violation_pu=vv, violated=slack_tot > 1e-6, loss_iterations=loss_iterations, converged=converged,
        )


def clear_dlmp(prices, quantities, sides, buses, feeder: Feeder, wholesale_price: float, p_load_kw=None,
               q_load_kvar=None, *, solver: str = "highs", loss_iterations: int = 1, **market_kwargs) -> DlmpClearing:
    """One-shot DLMP clearing (builds a ``DlmpMarket``; use the class for repeated steps)."""
    m = DlmpMarket(feeder, buses, **market_kwargs)
    return m.clear(prices, quantities, sides, wholesale_price, p_load_kw, q_load_kvar, solver=solver,
                   loss_iterations=loss_iterations)
