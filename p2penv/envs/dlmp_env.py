"""Parallel PettingZoo environment behind ``p2penv.dlmp_v0`` (see the class docstring)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import highspy
import numpy as np
from gymnasium import spaces

from ..market.pipeline import MarketRules, StepOutcome
from ..network.dlmp import _INF, DlmpClearing, DlmpMarket
from ..network.lindistflow import LossModel
from .auction_env import INFO_FIELDS, OBS_FIELDS, AuctionEnv
from .dlmp_config import DlmpConfig
from .feeder_viewer import bus_table, feeder_rgb, tree_layout

DLMP_FIELDS = ("dlmp", "dlmp_energy", "dlmp_loss", "dlmp_congestion", "dlmp_voltage")
OBS_FIELDS_DLMP = OBS_FIELDS + DLMP_FIELDS  # the 5 new ones: own bus, last step, mapped like prices
INFO_FIELDS_DLMP = INFO_FIELDS + DLMP_FIELDS + ("voltage_pu",)  # plus "bus" (int)

V_OBS_HALF_SPAN = 0.2  # p.u.: state() maps V in [1 - 0.2, 1 + 0.2] to [-1, 1]
_V_TOL = 1e-9  # p.u. tolerance of the realised voltage-limit check
_KW_TOL = 1e-6  # kW tolerance of the realised line-rating check


@dataclass(frozen=True)
class DlmpStepClearing:
    """What the auction pipeline needs from a clearing, plus the full LP result.

    matched, unit_price, sides: (N,) kWh, $/kWh (the DLMP at the agent's bus), +1/-1/0.
    clearing_price:   $/kWh, the energy component (price at the substation; lambda_0 unless the
                      import/export limit binds).
    volume:           kWh, matched buys plus matched sells (the substation takes the imbalance).
    operator_surplus: $, merchandising surplus of the LP (fixed loads pay their DLMP too).
    welfare:          $, declared: bids - asks - lambda_0 x import.
    lp:               the ``DlmpClearing``.
    """

    matched: np.ndarray
    unit_price: np.ndarray
    sides: np.ndarray
    clearing_price: float
    volume: float
    operator_surplus: float
    welfare: float
    lp: DlmpClearing


@dataclass(frozen=True, eq=False)
class NetworkState:
    """Realised network state of a step: LinDistFlow at the agents' physical net positions.

    net_load_kw:  (n_bus,) fixed load + every agent's physical net load (matched or backstop).
    voltages:     (n_bus,) |V| p.u.;  flows_kw, flows_kvar: (n_line,) parent -> child.
    loading:      (n_line,) |S| / rating (0 on unrated lines).
    losses_kw:    affine loss model of the step at this point;  import_kw = sum(net load) + losses.
    overload_kw:  (n_line,) |P| beyond the active limit sqrt(S^2 - Q^2);  undervoltage/overvoltage
                  in voltage_violation_pu (n_bus,).  violated: any of them beyond tolerance.
    """

    net_load_kw: np.ndarray
    voltages: np.ndarray
    flows_kw: np.ndarray
    flows_kvar: np.ndarray
    loading: np.ndarray
    losses_kw: float
    import_kw: float
    overload_kw: np.ndarray
    voltage_violation_pu: np.ndarray
    violated: bool


class _EnvMarket(DlmpMarket):
    """``DlmpMarket`` specialised for the environment's hot path; same LP, same results.

    * Loss factors reach HiGHS lazily, only for columns that can be nonzero: an order's idle column
      is fixed at 0, so its coefficient changes neither the primal optimum nor the duals (a fixed
      variable's reduced cost is free in sign). Halves the ``changeCoeff`` calls.
    * Row bounds of lines and voltages depend only on the fixed loads; they are recomputed only when
      the load arrays change (by identity: the env passes read-only arrays), and HiGHS then gets all
      row bounds, otherwise only the balance row's.
    * Sub-matrices (rated lines, non-root rows) are sliced once, and the fixed-reactive parts of
      flows and voltages are cached with the loads.
    ``tests/test_dlmp_env.py`` checks every field against ``DlmpMarket.clear`` on random books.
    """

    def __init__(self, feeder, order_buses, **kwargs):
        super().__init__(feeder, order_buses, **kwargs)
        f = feeder
        self._path_r = np.ascontiguousarray(f.path[self.rated])
        self._rpath_v = np.ascontiguousarray(f.r_path[self.vrows])
        self._xpath_v = np.ascontiguousarray(f.x_path[self.vrows])
        self._lim_r = f.line_limit_kva[self.rated]
        self._loads_key = None
        self._rows_dirty = True
        self._col_lo_clipped = np.maximum(self._col_lo[:self._orders_idx.size], -_INF)  # never changes

    def set_loss_model(self, loss_model: LossModel) -> None:
        self.loss_model = loss_model
        self._mlf = loss_model.mlf
        coef = self._mlf[self.buses]
        self._A[0, self.c_buy] = -coef
        self._A[0, self.c_sell] = coef

    def _prepare(self, prices, quantities, sides, wholesale_price, p_load_kw, q_load_kvar):
        key = (p_load_kw, q_load_kvar)
        if (p_load_kw is None or q_load_kvar is None or self._loads_key is None
                or key[0] is not self._loads_key[0] or key[1] is not self._loads_key[1]
                or p_load_kw.flags.writeable or q_load_kvar.flags.writeable):
            out = super()._prepare(prices, quantities, sides, wholesale_price, p_load_kw, q_load_kvar)
            d, dq = out[3], out[4]
            f = self.feeder
            self._qf_all = f.path @ dq
            self._vq_all = f.x_path @ dq
            self._loads_key = key if (p_load_kw is not None and q_load_kvar is not None) else None
            self._rows_dirty = True
            return out
        d, dq = p_load_kw, q_load_kvar  # unchanged read-only loads: line/voltage rows stay as they are
        p, q, s = self._load_orders(prices, quantities, sides, wholesale_price, d, dq)
        return p, q, s, d, dq, float(wholesale_price)

    def _solve_highs(self):
        n2 = 2 * self.n_orders
        h = self._h
        if not self._loaded:
            self._in_lp = self._A[0, :n2].copy()
            self._rows_dirty = False
            return super()._solve_highs()
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
        h.changeColsBounds(m, idx, self._col_lo_clipped, hi)
        if self._rows_dirty:
            h.changeRowsBounds(self.n_row, self._rows_idx, np.maximum(self._row_lo, -_INF),
                               np.minimum(self._row_hi, _INF))
            self._rows_dirty = False
        else:
            h.changeRowBounds(0, float(self._row_lo[0]), float(self._row_hi[0]))
        h.run()
        if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
            h.clearSolver()  # numerical trouble: retry from a cold basis, as DlmpMarket does
            h.run()
            if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
                raise RuntimeError(f"DLMP LP: HiGHS status {h.modelStatusToString(h.getModelStatus())}")
        sol = h.getSolution()
        return np.asarray(sol.col_value), np.asarray(sol.row_dual)

    def _result(self, x, y, p, s, d_fixed, dq, lam) -> DlmpClearing:
        if self._loads_key is None:
            return super()._result(x, y, p, s, d_fixed, dq, lam)
        f, dt, n, nl = self.feeder, self.dt_h, self.n_orders, self.rated.size
        xb, xs = x[self.c_buy], x[self.c_sell]
        matched = (xb + xs) * dt
        d = d_fixed + np.bincount(self.buses, xb - xs, minlength=f.n_bus)
        y = y / dt
        energy = np.full(f.n_bus, y[0])
        loss = y[0] * (self._mlf - 1.0)
        congestion = -(y[1:1 + nl] @ self._path_r) if nl else np.zeros(f.n_bus)
        voltage = y[1 + nl:] @ self._rpath_v
        dlmp = energy + loss + congestion + voltage
        pf, qf = f.path @ d, self._qf_all
        v = np.sqrt(np.maximum(f.v_root**2 - 2.0 * (f.r_path @ d + self._vq_all) / f.base_kva, 0.0))
        loading = np.zeros(f.n_line)
        if nl:
            loading[self.rated] = np.hypot(pf[self.rated], qf[self.rated]) / self._lim_r
        lm = self.loss_model
        losses = lm.const_kw - lm.g @ d - lm.h @ dq
        p0 = float(x[self.c_p0])
        line_v = np.zeros(f.n_line)
        if nl:
            line_v[self.rated] = x[self.c_line[:nl]] + x[self.c_line[nl:]]
        vv = np.maximum(np.maximum(f.v_min - v, v - f.v_max), 0.0)
        vv[f.root] = 0.0
        slack_tot = float(x[2 * n + 1:].sum())
        return DlmpClearing(
            matched=matched, unit_price=dlmp[self.buses], sides=s, dlmp=dlmp, energy=energy, loss=loss,
            congestion=congestion, voltage=voltage, mlf=self._mlf.copy(), net_load_kw=d,
            substation_import_kw=p0, losses_kw=float(losses), voltages=v, line_flows_kw=pf,
            line_flows_kvar=qf.copy(), loading=loading, operator_surplus=float(dt * (dlmp @ d - lam * p0)),
            welfare=float(dt * (p @ xb - p @ xs - lam * p0)), objective=float(self._cost @ x),
            unserved_kw=float(x[self.c_bal[0]] - x[self.c_bal[1]]), line_violation_kw=line_v,
            voltage_violation_pu=vv, violated=slack_tot > 1e-6,
        )


class _AcAudit:
    """pandapower AC power flow on the realised injections; one net, loads updated in place."""

    def __init__(self, feeder):
        from ..network.ac_check import to_pandapower

        self.feeder = feeder
        nr = feeder.non_root
        self.net = to_pandapower(feeder, np.where(np.arange(feeder.n_bus) == feeder.root, 0.0, -1.0),
                                 np.zeros(feeder.n_bus))
        self.bus_of_load = nr  # to_pandapower creates one load per non-root bus in this order

    def compare(self, state: NetworkState, q_load_kvar: np.ndarray) -> dict:
        import pandapower as pp

        from ..network.ac_check import results

        b = self.bus_of_load
        self.net.load["p_mw"] = state.net_load_kw[b] / 1000.0
        self.net.load["q_mvar"] = q_load_kvar[b] / 1000.0
        try:
            pp.runpp(self.net, tolerance_mva=1e-10, calculate_voltage_angles=True, numba=False)
        except Exception as e:  # noqa: BLE001 - an AC divergence is reported, never raised
            return {"ac_converged": False, "ac_error": f"{type(e).__name__}: {e}"}
        ac = results(self.net)
        return {
            "ac_converged": True,
            "ac_max_dv_pu": float(np.max(np.abs(ac.v - state.voltages))),
            "ac_max_dflow_kw": float(np.max(np.abs(ac.p_flow_kw - state.flows_kw))),
            "ac_loss_kw": ac.loss_kw,
            "ac_dloss_kw": ac.loss_kw - state.losses_kw,
            "ac_import_kw": ac.p_root_kw,
            "ac_dimport_kw": ac.p_root_kw - state.import_kw,
            "ac_v_min_pu": float(ac.v.min()),
        }


class DlmpEnv(AuctionEnv):
    """P2P energy market on a radial feeder, settled at distribution LMPs: ``p2penv.dlmp_v0``.

    **Agents** ``prosumer_0 .. prosumer_{N-1}`` as in ``auction_v0`` (same generator), each at a bus of
    the scenario's feeder (``DlmpConfig.agent_buses``; default one per load bus: 32 on ``ieee33``).

    **Action** ``Box(-1, 1, (2,), float32)`` ``(price, dispatch)`` with the order semantics of
    ``auction_v0``: net position ``q = eta p - d`` -> one sell/buy order of ``|q| dt`` kWh at ``price``.

    **Clearing**: the DLMP LP of ``p2penv.network.dlmp.DlmpMarket`` (warm-started HiGHS). The
    substation imports/exports at lambda_0 (``wholesale_price``); the scenario's fixed loads
    (``load_scale`` x the case's base loads, kW and kvar, constant over the episode; the agents come on
    top of them) are inelastic and enter the nodal balance. A bid clears when it is at least the DLMP
    of its bus, an ask when it is at most it; ``unit_price`` = the DLMP at the agent's bus.
    Line ratings and voltage limits (LinDistFlow) enter the LP; when they cannot be met the LP's
    penalised slacks (``penalty`` $/kWh) keep it feasible and ``market["lp_violated"]`` says so.
    Losses are linearised around the previous step's realised operating point (at reset: the fixed
    loads plus every agent at its initial dispatch); ``loss_linearisation="fixed"``: once, at the fixed
    loads; ``"none"``: lossless.

    **Settlement and reward** ($ per step): matched kWh x own DLMP; unmatched volume goes to the
    backstop (retail / feed-in tariff) or is curtailed, as in ``auction_v0``; minus the DER cost.

    **Realised network** (``infos[...]["network"]``, ``state()``, ``render``): the energy flows whether
    or not it cleared (backstop energy is physical), so the realised state is LinDistFlow at the fixed
    loads plus every agent's physical net position. Its voltages and line loadings can break limits that
    the LP respected (e.g. a bid shed by congestion still consumes at retail): ``network["violated"]``.

    **Observation** ``Box(-1, 1, (17,), float32)``: the 12 ``auction_v0`` fields (``OBS_FIELDS``; the
    last price is the substation's energy price) plus the agent's own last DLMP and its energy, loss,
    congestion and voltage components (``DLMP_FIELDS``). The DLMP and energy part map [floor, cap] to
    [-1, 1] like prices; the loss, congestion and voltage parts are differences, scaled alike without
    offset (2 x / (cap - floor)); all clipped. Before the first step: lambda_0 plus its loss part at the
    reset point, no congestion or voltage part.
    ``state()``: all observations stacked, t / T, the realised bus voltages ((V - 1) / 0.2) and line
    loadings (|S| / rating - 1; unrated lines -1), clipped to [-1, 1].

    **Episode**: ``max_cycles`` steps, truncation only. ``reset(seed=s)`` also rebuilds the LP (cold
    basis) so a trajectory depends on the seed only; ``reset()`` keeps the warm basis.

    **Infos** per agent: ``INFO_FIELDS_DLMP`` (floats) plus ``"bus"`` (int), ``"market"`` (clearing
    price = energy price, volume = matched buys + sells, welfare, operator surplus, wholesale price, LP
    import and losses, unserved kW, max line / voltage slack, ``lp_violated``) and ``"network"`` (the
    realised state: import, losses, min/max V, max loading, overload, voltage violation, ``violated``;
    with ``audit_ac=True`` also pandapower's AC voltages, flows, losses and import minus the model's).

    **Render**: ``rgb_array`` the feeder as a tree, buses coloured by DLMP (top) and voltage (bottom),
    lines by loading; ``ansi`` a bus table; ``human`` prints it.

    **Version history**: v0 (0.1.0) first release.
    """

    metadata = {"name": "dlmp_v0", "render_modes": ["human", "ansi", "rgb_array"], "is_parallelizable": True}

    def __init__(self, config: DlmpConfig | None = None, render_mode: str | None = None, **kwargs: Any):
        if config is not None and kwargs:
            raise ValueError("give either a DlmpConfig or keyword options, not both")
        cfg = config if config is not None else DlmpConfig.from_kwargs(**kwargs)
        if not isinstance(cfg, DlmpConfig):
            raise ValueError(f"config: expected a DlmpConfig, got {type(cfg).__name__}")
        super().__init__(config=cfg, render_mode=render_mode)
        n, nf, f = cfg.n_prosumers, len(OBS_FIELDS_DLMP), self.feeder
        self._obs_spaces = {a: spaces.Box(-1.0, 1.0, (nf,), np.float32) for a in self.possible_agents}
        self.state_space = spaces.Box(-1.0, 1.0, (n * nf + 1 + f.n_bus + f.n_line,), np.float32)
        self._audit = _AcAudit(f) if cfg.audit_ac else None
        self._layout = None

    # -- clearing hook --------------------------------------------------------------------------
    def _make_rules(self, cfg: DlmpConfig) -> MarketRules:  # type: ignore[override]
        """Build the feeder and the LP once; the pipeline's ``clear`` becomes the DLMP clearing."""
        sc = cfg.scenario_spec
        f = self.feeder = sc.build_feeder()
        self.buses = np.asarray(cfg.agent_buses, dtype=np.int64)
        self._bus_list = self.buses.tolist()
        s = cfg.fixed_scale
        self.p_fixed_kw = s * f.p_load_kw
        self.q_fixed_kvar = s * f.q_load_kvar
        self.p_fixed_kw.setflags(write=False)  # read-only: the LP caches the row bounds they give
        self.q_fixed_kvar.setflags(write=False)
        self._lam = cfg.lam
        # Constant parts of the realised-state formulas (reactive power has no decision variable).
        self._qf = f.path @ self.q_fixed_kvar
        self._vq = f.x_path @ self.q_fixed_kvar
        self._rated = np.isfinite(f.line_limit_kva)
        lim = np.where(self._rated, f.line_limit_kva, 1.0)
        self._inv_lim = np.where(self._rated, 1.0 / lim, 0.0)
        self._pmax = np.where(self._rated, np.sqrt(np.maximum(lim**2 - self._qf**2, 0.0)), np.inf)
        self._w_line = f.r_pu / f.base_kva  # loss weight r_l / S_base before the 1/V^2 factor
        self._fixed_lm = self._linearise(*self._flows(self.p_fixed_kw))
        self._market_kw = dict(dt_h=cfg.dt_h, import_limit_kw=cfg.import_limit_kw,
                               export_limit_kw=cfg.export_limit_kw, penalty=cfg.penalty)
        self.market = self._new_market()
        return MarketRules(cfg.price_floor, cfg.price_cap, cfg.retail_tariff, cfg.feed_in_tariff, cfg.unmatched,
                           self._clear)

    def _new_market(self) -> _EnvMarket:
        lm = LossModel.lossless(self.feeder) if self.config.loss_linearisation == "none" else self._fixed_lm
        return _EnvMarket(self.feeder, self.buses, loss_model=lm, **self._market_kw)

    def _clear(self, prices, quantities, sides) -> DlmpStepClearing:
        lp = self.market.clear(prices, quantities, sides, self._lam, self.p_fixed_kw, self.q_fixed_kvar,
                               solver=self.config.lp_solver)
        self.last_loss_model = self.market.loss_model  # the model this step was cleared with
        e = float(lp.energy[self.feeder.root])
        return DlmpStepClearing(lp.matched, lp.unit_price, lp.sides, e, float(lp.matched.sum()),
                                lp.operator_surplus, lp.welfare, lp)

    # -- network state -------------------------------------------------------------------------
    def _flows(self, net_load_kw: np.ndarray):
        """LinDistFlow (kW, kvar, p.u.) at a net-load vector with the fixed reactive loads."""
        f = self.feeder
        pf = f.path @ net_load_kw
        v_sq = f.v_root**2 - 2.0 * (f.r_path @ net_load_kw + self._vq) / f.base_kva
        return pf, np.sqrt(np.maximum(v_sq, 1e-12))

    def _linearise(self, pf: np.ndarray, v: np.ndarray) -> LossModel:
        """Loss model at flows pf (kW), the fixed Q flows and bus voltages v (as ``linearise_losses``)."""
        f = self.feeder
        w = self._w_line / v[f.from_bus] ** 2
        qf = self._qf
        dp, dq = 2.0 * w * pf, 2.0 * w * qf
        at = float(w @ (pf * pf + qf * qf))
        return LossModel(at - float(dp @ pf + dq @ qf), -(dp @ f.path), -(dq @ f.path), at)

    def _realise(self, agent_net_load_kw: np.ndarray) -> NetworkState:
        f = self.feeder
        d = self.p_fixed_kw + np.bincount(self.buses, agent_net_load_kw, minlength=f.n_bus)
        pf, v = self._flows(d)
        lm = self.market.loss_model
        losses = lm.const_kw - lm.g @ d - lm.h @ self.q_fixed_kvar
        loading = np.hypot(pf, self._qf) * self._inv_lim
        over = np.maximum(np.abs(pf) - self._pmax, 0.0)
        vv = np.maximum(np.maximum(f.v_min - v, v - f.v_max), 0.0)
        vv[f.root] = 0.0
        violated = bool(over.max() > _KW_TOL or vv.max() > _V_TOL)
        return NetworkState(d, v, pf, self._qf, loading, float(losses), float(d.sum() + losses), over, vv, violated)

    def _set_dlmp_obs(self, dlmp, energy, loss, congestion, voltage) -> None:
        b, lo, span = self.buses, self.config.price_floor, self._price_span
        m = np.empty((b.size, 5))
        m[:, 0] = 2.0 * (dlmp[b] - lo) / span - 1.0
        m[:, 1] = 2.0 * (energy[b] - lo) / span - 1.0
        m[:, 2] = loss[b]
        m[:, 3] = congestion[b]
        m[:, 4] = voltage[b]
        m[:, 2:] *= 2.0 / span
        np.clip(m, -1.0, 1.0, out=m)
        self._dlmp_obs = m.astype(np.float32)

    # -- AuctionEnv hooks ----------------------------------------------------------------------
    def reset(self, seed: int | None = None, options: dict | None = None):
        if seed is not None:
            self.market = self._new_market()  # cold basis: the trajectory depends on the seed only
        return super().reset(seed=seed, options=options)

    def _begin_step(self) -> None:
        super()._begin_step()
        mode = self.config.loss_linearisation
        if self.t == 0:  # reset operating point: fixed loads plus every agent at its initial dispatch
            f0 = self.fleet
            self.market.set_loss_model(LossModel.lossless(self.feeder) if mode == "none" else self._fixed_lm)
            self.network = self._realise(f0.demand_kw[0] - f0.eta * self.p_prev)
            self.last_lp = None
        if mode == "previous":
            self.market.set_loss_model(self._linearise(self.network.flows_kw, self.network.voltages))
        if self.t == 0:
            self._set_dlmp_obs(*self._reset_prices())

    def _reset_prices(self):
        lm = self.market.loss_model
        energy = np.full(self.feeder.n_bus, self._lam)
        loss = self._lam * (lm.mlf - 1.0)
        zero = np.zeros(self.feeder.n_bus)
        return energy + loss, energy, loss, zero, zero

    def _observe(self) -> np.ndarray:
        return np.concatenate([super()._observe(), self._dlmp_obs], axis=1)

    def _infos(self, out: StepOutcome) -> dict:
        st, c, cfg = out.settlement, out.clearing, self.config
        lp: DlmpClearing = c.lp
        self.last_lp = lp
        net = self.network = self._realise(st.net_kwh * (-1.0 / cfg.dt_h))
        self._set_dlmp_obs(lp.dlmp, lp.energy, lp.loss, lp.congestion, lp.voltage)
        b = self.buses
        extra = [lp.dlmp[b], lp.energy[b], lp.loss[b], lp.congestion[b], lp.voltage[b], net.voltages[b]]
        cols = np.stack(self._info_columns(out) + extra, axis=1).tolist()
        market = {
            "t": self.t,
            "clearing_price": c.clearing_price,
            "volume_kwh": c.volume,
            "welfare": c.welfare,
            "operator_surplus": c.operator_surplus,
            "wholesale_price": self._lam,
            "substation_import_kw": lp.substation_import_kw,
            "losses_kw": lp.losses_kw,
            "unserved_kw": lp.unserved_kw,
            "max_line_slack_kw": float(lp.line_violation_kw.max()),
            "max_voltage_slack_pu": float(lp.voltage_violation_pu.max()),
            "lp_violated": lp.violated,
        }
        network = {
            "import_kw": net.import_kw,
            "losses_kw": net.losses_kw,
            "v_min_pu": float(net.voltages.min()),
            "v_max_pu": float(net.voltages.max()),
            "max_loading": float(net.loading.max()),
            "max_overload_kw": float(net.overload_kw.max()),
            "max_voltage_violation_pu": float(net.voltage_violation_pu.max()),
            "violated": net.violated,
        }
        if self._audit is not None:
            network.update(self._audit.compare(net, self.q_fixed_kvar))
        infos = {}
        for a, bus, row in zip(self.agents, self._bus_list, cols):
            d = dict(zip(INFO_FIELDS_DLMP, row))
            d["bus"] = bus
            d["market"] = market
            d["network"] = network
            infos[a] = d
        return infos

    def state(self) -> np.ndarray:
        net = self.network
        v = (net.voltages - 1.0) / V_OBS_HALF_SPAN
        ld = np.where(self._rated, net.loading - 1.0, -1.0)
        extra = np.clip(np.concatenate([v, ld]), -1.0, 1.0)
        return np.concatenate([super().state(), extra]).astype(np.float32)

    def render(self):
        if self.render_mode is None:
            return None
        f, net, lp = self.feeder, self.network, self.last_lp
        dlmp = lp.dlmp if lp is not None else self._reset_prices()[0]
        title = f"{self.metadata['name']} [{self.config.scenario}] step {self.t}"
        if self.render_mode == "rgb_array":
            if self._layout is None:
                self._layout = tree_layout(f)
            return feeder_rgb(f, self._layout, dlmp, net.voltages, net.loading, self.buses, title=title)
        text = bus_table(f, self.buses, dlmp, lp, net, title=title)
        if self.render_mode == "human":
            print(text)
            return None
        return text
