"""S6 on the AC power flow: MLF-scaled peer-to-peer trades leave the substation injection unchanged.

Spec item S6: a trade from bus i to bus j has zero effect on the reference-bus injection when
``dP_i * MLF_i = dP_j * MLF_j``, so a settlement may scale traded volumes by MLF. With
MLF_k = 1 + dL/dP_load,k (``lindistflow.LossModel.mlf``), a seller injecting dP_i kW at bus i lowers
the substation import by MLF_i dP_i and a buyer drawing dP_j kW at bus j raises it by MLF_j dP_j
(to first order), hence the delivered volume ``dP_j = dP_i MLF_i / MLF_j``.

``check_trades_ac`` measures it on the AC power flow (pandapower Newton-Raphson, the independent
reference): for each (seller, buyer) pair it adds one trade of ``sold_kw`` to the operating point
and reports the change of the substation import for full delivery (dP_j = dP_i: the change is the
loss the trade causes or saves) and for MLF-scaled delivery (the S6 residual, ~0 within the MLF's
accuracy). The MLFs can come from the suite's loss models or be given:

* ``"lindistflow"``: ``loss_model_at`` at the LinDistFlow point of the operating injections (what
  ``dlmp_v0`` prices with; first order in the flows, V from LinDistFlow);
* ``"ac_point"``: ``linearise_losses`` at the AC flows and voltages (first-order formula, AC point);
* ``"distflow"``: ``distflow_loss_model``, the exact derivative of the branch-flow losses (equal to
  AC finite differences on shunt-free radial feeders): the residual is then second order in dP.

``check_settlement_ac`` does the same for a whole book of bilateral trades at once (``p2p_settlement``:
every trade of a cleared book, full and MLF-scaled delivery; three power flows; docs/p2p.md).

Pure functions of a feeder and its injections; pandapower is imported on call only.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .feeder import Feeder
from .lindistflow import distflow_loss_model, linearise_losses, loss_model_at

MLF_SOURCES = ("lindistflow", "ac_point", "distflow")


@dataclass(frozen=True, eq=False)
class TradeAcCheck:
    """AC effect of single P2P trades at one operating point (m trades, n buses).

    seller_bus, buyer_bus:  (m,) bus indices.
    sold_kw:                kW the seller injects (dP_i), the same for every trade.
    delivered_kw:           (m,) MLF-scaled kW drawn by the buyer, dP_i MLF_i / MLF_j.
    mlf:                    (n,) marginal loss factors used; mlf_source names where they came from.
    d_import_unscaled_kw:   (m,) AC change of the substation import (kW) when the buyer draws dP_i:
                            the trade's own effect on losses (< 0 when it relieves the feeder).
    d_import_scaled_kw:     (m,) the same when the buyer draws ``delivered_kw``: the S6 residual.
    """

    seller_bus: np.ndarray
    buyer_bus: np.ndarray
    sold_kw: float
    delivered_kw: np.ndarray
    mlf: np.ndarray
    mlf_source: str
    d_import_unscaled_kw: np.ndarray
    d_import_scaled_kw: np.ndarray

    @property
    def max_residual_kw(self) -> float:
        """Largest |substation change| of an MLF-scaled trade (kW)."""
        return float(np.abs(self.d_import_scaled_kw).max())

    @property
    def residual_share(self) -> float:
        """sum |scaled residual| / sum |unscaled loss change|: how much of the trades' loss effect the
        MLF scaling leaves at the substation (0 = S6 holds exactly)."""
        return float(np.abs(self.d_import_scaled_kw).sum() / np.abs(self.d_import_unscaled_kw).sum())


def mlf_scaled_delivery(mlf, seller_bus, buyer_bus, sold_kw) -> np.ndarray:
    """kW a buyer at ``buyer_bus`` receives for ``sold_kw`` injected at ``seller_bus``: dP_i MLF_i / MLF_j
    (S6). Arrays broadcast; ``mlf`` is the (n_bus,) vector."""
    m = np.asarray(mlf, dtype=np.float64)
    return np.asarray(sold_kw, dtype=np.float64) * m[np.asarray(seller_bus)] / m[np.asarray(buyer_bus)]


def feeder_mlf(feeder: Feeder, source: str, p_inj_kw=None, q_inj_kvar=None) -> np.ndarray:
    """(n_bus,) MLFs of the feeder at the given injections (default: minus the base loads) from one
    of ``MLF_SOURCES`` (see module docstring); ``"ac_point"`` runs pandapower once."""
    p = -feeder.p_load_kw if p_inj_kw is None else np.asarray(p_inj_kw, dtype=np.float64)
    q = -feeder.q_load_kvar if q_inj_kvar is None else np.asarray(q_inj_kvar, dtype=np.float64)
    if source == "lindistflow":
        return loss_model_at(feeder, p, q).mlf
    if source == "ac_point":
        from .ac_check import ac_power_flow

        ac = ac_power_flow(feeder, p, q)
        return linearise_losses(feeder, ac.p_flow_kw, ac.q_flow_kvar, ac.v).mlf
    if source == "distflow":
        return distflow_loss_model(feeder, -p, -q).mlf
    raise ValueError(f"mlf source: expected one of {MLF_SOURCES}, got {source!r}")


def check_trades_ac(feeder: Feeder, pairs, sold_kw: float = 10.0, *, mlf="lindistflow", p_inj_kw=None,
                    q_inj_kvar=None) -> TradeAcCheck:
    """AC substation response to single trades ``pairs`` ((seller bus, buyer bus), ...) of ``sold_kw``
    on top of the injections ``p_inj_kw`` / ``q_inj_kvar`` (kW / kvar, generation positive; default
    minus the base loads). ``mlf``: a source in ``MLF_SOURCES`` or an (n_bus,) array. Two pandapower
    power flows per pair on one net (tolerance 1e-10 MVA); ValueError if one does not converge."""
    import pandapower as pp

    from .ac_check import to_pandapower

    pr = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    nonroot = np.ones(feeder.n_bus, dtype=bool)
    nonroot[feeder.root] = False
    bad = ~(((pr >= 0) & (pr < feeder.n_bus)).all(1)) | (pr[:, 0] == pr[:, 1])
    bad |= ~nonroot[np.clip(pr, 0, feeder.n_bus - 1)].all(1)
    if bad.any():
        raise ValueError(f"pairs: trade {int(np.flatnonzero(bad)[0])} {tuple(pr[bad][0])} needs two distinct "
                         f"non-root buses in [0, {feeder.n_bus}) (root {feeder.root})")
    if not (np.isfinite(sold_kw) and sold_kw > 0):
        raise ValueError(f"sold_kw: must be a finite kW amount > 0, got {sold_kw}")
    p = -feeder.p_load_kw if p_inj_kw is None else np.asarray(p_inj_kw, dtype=np.float64)
    q = -feeder.q_load_kvar if q_inj_kvar is None else np.asarray(q_inj_kvar, dtype=np.float64)
    if isinstance(mlf, str):
        source, mlf = mlf, feeder_mlf(feeder, mlf, p, q)
    else:
        source, mlf = "given", np.asarray(mlf, dtype=np.float64)
        if mlf.shape != (feeder.n_bus,) or not np.all(np.isfinite(mlf) & (mlf > 0)):
            raise ValueError(f"mlf: expected ({feeder.n_bus},) finite positive factors, got shape {mlf.shape}")
    delivered = mlf_scaled_delivery(mlf, pr[:, 0], pr[:, 1], sold_kw)

    net = to_pandapower(feeder, p, q)
    # one extra load per non-root bus carries the trade (p < 0 = the seller's injection)
    trade = {int(k): pp.create_load(net, int(k), p_mw=0.0, q_mvar=0.0, name="trade") for k in feeder.non_root}

    def run() -> float:
        pp.runpp(net, tolerance_mva=1e-10, calculate_voltage_angles=True, numba=False)
        if not net.converged:
            raise ValueError("check_trades_ac: pandapower did not converge")
        return float(net.res_ext_grid.p_mw.sum()) * 1000.0

    base = run()
    out = np.empty((len(pr), 2))
    for t, (i, j) in enumerate(pr):
        for c, draw in enumerate((sold_kw, delivered[t])):
            net.load.loc[trade[int(i)], "p_mw"] = -sold_kw / 1000.0
            net.load.loc[trade[int(j)], "p_mw"] = draw / 1000.0
            out[t, c] = run() - base
        net.load.loc[[trade[int(i)], trade[int(j)]], "p_mw"] = 0.0
    return TradeAcCheck(pr[:, 0].copy(), pr[:, 1].copy(), float(sold_kw), delivered, mlf, source, out[:, 0], out[:, 1])


@dataclass(frozen=True, eq=False)
class BookAcCheck:
    """AC effect of a whole book of bilateral trades at once (``check_settlement_ac``).

    inject_kw:            (n_bus,) kW the sellers inject for their trades, per bus.
    draw_unscaled_kw:     (n_bus,) kW the buyers draw with full delivery (= the trades' kWh per hour).
    draw_scaled_kw:       (n_bus,) kW the buyers draw when credited the MLF-scaled volume.
    loss_first_order_kw:  sum_trades T (MLF_j - MLF_i): the trades' loss by the MLFs (per hour).
    d_import_unscaled_kw: AC change of the substation import with full delivery (the trades' loss).
    d_import_scaled_kw:   the same with MLF-scaled delivery: the S6 residual of the book.
    """

    inject_kw: np.ndarray
    draw_unscaled_kw: np.ndarray
    draw_scaled_kw: np.ndarray
    loss_first_order_kw: float
    d_import_unscaled_kw: float
    d_import_scaled_kw: float


def check_settlement_ac(feeder: Feeder, buses, trades_kw, mlf, p_inj_kw=None, q_inj_kvar=None) -> BookAcCheck:
    """S6 for a book: every trade of ``trades_kw`` ((n, n) kW, [seller, buyer], agents at ``buses``) at
    once on top of the injections ``p_inj_kw`` / ``q_inj_kvar`` (kW / kvar, generation positive; default
    minus the base loads), delivered in full or scaled by ``mlf`` ((n_bus,)); three pandapower power
    flows (tolerance 1e-10 MVA). ValueError if one does not converge."""
    import pandapower as pp

    from .ac_check import to_pandapower

    b = np.asarray(buses, dtype=np.int64)
    t = np.asarray(trades_kw, dtype=np.float64)
    m = np.asarray(mlf, dtype=np.float64)
    if t.shape != (len(b), len(b)) or np.any(t < 0) or m.shape != (feeder.n_bus,):
        raise ValueError(f"trades_kw: expected ({len(b)}, {len(b)}) kW >= 0; mlf: ({feeder.n_bus},)")
    scaled = t * (m[b][:, None] / m[b][None, :])
    inj, d_full, d_scaled = (np.bincount(b, w, minlength=feeder.n_bus)
                             for w in (t.sum(1), t.sum(0), scaled.sum(0)))
    p = -feeder.p_load_kw if p_inj_kw is None else np.asarray(p_inj_kw, dtype=np.float64)
    q = -feeder.q_load_kvar if q_inj_kvar is None else np.asarray(q_inj_kvar, dtype=np.float64)
    net = to_pandapower(feeder, p, q)
    extra = {int(k): pp.create_load(net, int(k), p_mw=0.0, q_mvar=0.0, name="trade") for k in feeder.non_root}
    idx = [extra[int(k)] for k in feeder.non_root]

    def run(draw) -> float:
        net.load.loc[idx, "p_mw"] = (draw - inj)[feeder.non_root] / 1000.0
        pp.runpp(net, tolerance_mva=1e-10, calculate_voltage_angles=True, numba=False)
        if not net.converged:
            raise ValueError("check_settlement_ac: pandapower did not converge")
        return float(net.res_ext_grid.p_mw.sum()) * 1000.0

    base = run(inj)  # draw = inject: no net trade
    loss = float((t * (m[b][None, :] - m[b][:, None])).sum())
    return BookAcCheck(inj, d_full, d_scaled, loss, run(d_full) - base, run(d_scaled) - base)
