"""Settlement of bilateral P2P trades on a radial feeder: MLF-scaled, loss-charged or network fee (issue 21).

A trade ``T_ij`` (kWh, ``market.bilateral``) has seller ``i`` at bus ``b_i`` inject ``T_ij`` and buyer
``j`` at bus ``b_j`` draw it. To first order it changes the substation import by its **loss**
``L_ij = T_ij (MLF_{b_j} - MLF_{b_i})`` kWh (MLF_k = 1 + dL/dP_load,k, ``lindistflow.LossModel.mlf``;
negative when the trade relieves the feeder, e.g. a seller far out selling towards the substation).
Three settlements say who bears it (``OPTIONS``):

* ``"mlf_scaled"`` (spec S6): the buyer is credited ``D_ij = T_ij MLF_{b_i} / MLF_{b_j}`` kWh, which
  leaves the substation import unchanged to first order (validated on the AC power flow in
  ``p2p_trades`` and ``tests/test_p2p_settlement.py``). The buyer pays for ``T_ij`` and bears the loss
  in kind: its credit falls ``T_ij - D_ij`` kWh short of what it bought (``shortfall_kwh``, < 0 when the
  trade relieves the feeder), which its backstop supplies (``backstop_adjustment``). The utility that
  delivers that shortfall at bus ``b_j`` imports ``(T_ij - D_ij) MLF_{b_j} = L_ij``: exactly the
  trade's loss. No extra cash: **peers' cash balances** (buyers pay what sellers receive plus the
  clearing's operator surplus); the loss is paid through the backstop tariff.
* ``"loss_charged"``: full delivery (``D_ij = T_ij``); the trade pays ``loss_price x L_ij`` $ (a credit
  when ``L_ij < 0``), ``buyer_share`` of it by the buyer and the rest by the seller, **received by the
  DSO**, which buys the losses at the substation (``loss_price``: the wholesale price lambda_0).
* ``"network_fee"``: full delivery; the trade pays an exogenous per-kWh fee ``F_ij T_ij`` $
  (``network_fee_matrix``: electrical distance or PTDF-based, as in the P2P cost-allocation
  literature, e.g. Baroche et al., IEEE Trans. Power Syst. 34(5), 2019), split like the loss charge,
  **received by the DSO**. Losses are reported but not charged.

Budget balance, per book (``FeederSettlement.budget_residual`` = 0, tested): buyers' payments =
sellers' receipts + DSO receipts + the clearing's operator surplus (0 under a uniform price). The DSO's
receipts are 0 (mlf_scaled), ``loss_price sum L`` (loss_charged: its first-order loss cost) and
``sum F T`` (network_fee, >= 0).

Pure array functions over any leading batch ``(..., n)`` agents / ``(..., n, n)`` trades.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .feeder import Feeder

OPTIONS = ("mlf_scaled", "loss_charged", "network_fee")
FEE_KINDS = ("distance", "ptdf", "uniform")


@dataclass(frozen=True)
class FeederSettlement:
    """Per-trade settlement of books ``(..., n)`` (agents) on a feeder; trade arrays ``(..., n, n)``
    are indexed [seller, buyer].

    option:          one of ``OPTIONS``.
    trades_kwh:      kWh the seller injects (the bilateral trade).
    delivered_kwh:   kWh credited to the buyer (mlf_scaled: T MLF_i / MLF_j; otherwise T).
    loss_kwh:        first-order change of the substation import the trade causes, T (MLF_j - MLF_i).
    loss_charge:     $ charged for it (loss_charged only; signed).
    fee:             $ network fee (network_fee only; >= 0).
    buyer_pays:      $ the buyer pays (energy at its unit price + its share of charge and fee).
    seller_receives: $ the seller receives (energy at its unit price - its share).
    dso_receives:    $ (loss_charge + fee).
    agent_cash:      (..., n) $ each agent receives from its trades (> 0) or pays (< 0).
    shortfall_kwh:   (..., n) kWh a buyer's credit falls short of the kWh it bought (mlf_scaled; else 0).
    operator_surplus: (...,) $ the trades leave with the market operator (the clearing's).
    """

    option: str
    trades_kwh: np.ndarray
    delivered_kwh: np.ndarray
    loss_kwh: np.ndarray
    loss_charge: np.ndarray
    fee: np.ndarray
    buyer_pays: np.ndarray
    seller_receives: np.ndarray
    dso_receives: np.ndarray
    agent_cash: np.ndarray
    shortfall_kwh: np.ndarray
    operator_surplus: np.ndarray

    @property
    def budget_residual(self) -> np.ndarray:
        """(...,) $: buyers' payments - sellers' receipts - DSO receipts - operator surplus (0: balanced)."""
        ax = (-2, -1)
        return (self.buyer_pays.sum(ax) - self.seller_receives.sum(ax) - self.dso_receives.sum(ax)
                - self.operator_surplus)

    @property
    def dso_cash(self) -> np.ndarray:
        """(...,) $ the DSO receives from the trades of each book."""
        return self.dso_receives.sum((-2, -1))

    @property
    def loss_total_kwh(self) -> np.ndarray:
        """(...,) kWh, the trades' first-order loss change summed per book."""
        return self.loss_kwh.sum((-2, -1))


def network_fee_matrix(feeder: Feeder, buses, rate: float, kind: str = "distance", line_weight=None) -> np.ndarray:
    """(n, n) per-kWh fees $/kWh between agents at ``buses`` (bus index per agent), mean ``rate`` over
    the pairs of agents on distinct buses (0 between agents on one bus).

    On a radial feeder the PTDF of a transfer from bus a to bus b is 1 on the lines of the path between
    them and 0 elsewhere, so a fee from line usage is ``sum_l |PTDF_l,ab| w_l``:

    * ``"distance"``: ``w_l = |z_l|`` (ohm): the electrical distance, the path impedance;
    * ``"ptdf"``: ``w_l = line_weight`` (per-line charges, e.g. each line's cost share; default 1:
      the number of lines crossed);
    * ``"uniform"``: the same fee for every pair (a postage stamp).
    """
    if kind not in FEE_KINDS:
        raise ValueError(f"kind: expected one of {FEE_KINDS}, got {kind!r}")
    if not (np.isfinite(rate) and rate >= 0):
        raise ValueError(f"rate: must be a finite $/kWh >= 0, got {rate}")
    b = np.asarray(buses, dtype=np.int64)
    if b.ndim != 1 or np.any((b < 0) | (b >= feeder.n_bus)):
        raise ValueError(f"buses: expected (n,) bus indices in [0, {feeder.n_bus})")
    on_path = np.abs(feeder.path[:, b][:, :, None] - feeder.path[:, b][:, None, :])  # (n_line, n, n)
    if kind == "uniform":
        w = np.ones(feeder.n_line)
        d = (on_path.sum(0) > 0).astype(np.float64)
    else:
        if kind == "distance":
            w = np.hypot(feeder.r_pu, feeder.x_pu) * feeder.z_base_ohm
        else:
            w = np.ones(feeder.n_line) if line_weight is None else np.asarray(line_weight, dtype=np.float64)
            if w.shape != (feeder.n_line,) or not np.all(np.isfinite(w) & (w >= 0)):
                raise ValueError(f"line_weight: expected ({feeder.n_line},) finite weights >= 0")
        d = np.einsum("l,lij->ij", w, on_path)
    distinct = b[:, None] != b[None, :]
    mean = d[distinct].mean() if distinct.any() else 0.0
    return np.where(distinct, d * (rate / mean if mean > 0 else 0.0), 0.0)


def settle_trades(trades_kwh, unit_price, buses, mlf, option: str, *, loss_price: float = 0.10, fee_per_kwh=None,
                  buyer_share: float = 1.0, operator_surplus=None) -> FeederSettlement:
    """Settle trade matrices ``(..., n, n)`` (kWh, [seller, buyer]) on a feeder.

    unit_price:  (..., n) $/kWh each agent pays or receives per traded kWh (``Clearing.unit_price``).
    buses:       (n,) bus of each agent.
    mlf:         (n_bus,) or (..., n_bus) marginal loss factors at the operating point.
    option:      one of ``OPTIONS`` (module docstring).
    loss_price:  $/kWh the DSO pays for losses at the substation (loss_charged).
    fee_per_kwh: (n, n) $/kWh between agents (network_fee; ``network_fee_matrix``).
    buyer_share: share of the loss charge / fee the buyer pays, in [0, 1]; the seller pays the rest.
    operator_surplus: (...,) $ the clearing keeps; default: what the unit prices leave.
    """
    if option not in OPTIONS:
        raise ValueError(f"option: expected one of {OPTIONS}, got {option!r}")
    if not 0.0 <= buyer_share <= 1.0:
        raise ValueError(f"buyer_share: must lie in [0, 1], got {buyer_share}")
    t = np.asarray(trades_kwh, dtype=np.float64)
    u = np.asarray(unit_price, dtype=np.float64)
    b = np.asarray(buses, dtype=np.int64)
    n = t.shape[-1]
    if t.shape[-2:] != (n, n) or u.shape != t.shape[:-1] or b.shape != (n,):
        raise ValueError(f"trades_kwh (..., n, n), unit_price (..., n), buses (n,): got {t.shape}, {u.shape}, {b.shape}")
    m = np.asarray(mlf, dtype=np.float64)[..., b]  # (..., n) MLF at each agent's bus
    if not np.all(np.isfinite(m) & (m > 0)):
        raise ValueError("mlf: marginal loss factors must be finite and > 0")
    mi, mj = m[..., :, None], m[..., None, :]
    loss = t * (mj - mi)
    zero = np.zeros_like(t)
    delivered, charge, fee = t, zero, zero
    if option == "mlf_scaled":
        delivered = t * mi / mj
    elif option == "loss_charged":
        charge = loss_price * loss
    else:
        if fee_per_kwh is None:
            raise ValueError("fee_per_kwh: network_fee needs an (n, n) $/kWh matrix (network_fee_matrix)")
        f = np.asarray(fee_per_kwh, dtype=np.float64)
        if f.shape != (n, n) or not np.all(np.isfinite(f) & (f >= 0)):
            raise ValueError(f"fee_per_kwh: expected ({n}, {n}) finite fees >= 0 $/kWh")
        fee = t * f
    dso = charge + fee
    pays = t * u[..., None, :] + buyer_share * dso
    gets = t * u[..., :, None] - (1.0 - buyer_share) * dso
    cash = gets.sum(-1) - pays.sum(-2)
    surplus = (t * u[..., None, :]).sum((-2, -1)) - (t * u[..., :, None]).sum((-2, -1))
    if operator_surplus is not None:
        surplus = np.broadcast_to(np.asarray(operator_surplus, dtype=np.float64), surplus.shape)
    return FeederSettlement(option, t, delivered, loss, charge, fee, pays, gets, dso, cash,
                            (t - delivered).sum(-2), surplus)


def backstop_adjustment(shortfall_kwh, backstop_import_kwh, retail_tariff: float, feed_in_tariff: float):
    """(..., n) $ an agent pays its backstop for an MLF-scaled credit (> 0 paid): a shortfall s > 0 is
    imported at retail; a surplus (s < 0) first replaces backstop imports (saving retail), the rest is
    exported at feed-in. Returns ($, extra import kWh, extra export kWh)."""
    s = np.asarray(shortfall_kwh, dtype=np.float64)
    imp = np.asarray(backstop_import_kwh, dtype=np.float64)
    extra_import = np.maximum(s, -imp)  # < 0: less imported
    extra_export = np.maximum(-s - imp, 0.0)
    return retail_tariff * extra_import - feed_in_tariff * extra_export, extra_import, extra_export


@dataclass(frozen=True)
class FeederOutcome:
    """``settle_on_feeder``'s result: the settlement, the realised network and the MLFs it used.

    settlement: ``FeederSettlement`` of the books ``(E, n)``.
    network:    ``lindistflow.NetworkStates`` at the agents' physical net loads plus the fixed loads.
    mlf:        (E, n_bus) marginal loss factors at that realised point.
    """

    settlement: FeederSettlement
    network: object
    mlf: np.ndarray


def settle_on_feeder(feeder: Feeder, buses, prices, matched, sides, unit_price, net_load_kw, option: str, *,
                     p_fixed_kw=None, q_fixed_kvar=None, matching: str = "price_priority", loss_price: float = 0.10,
                     fee_per_kwh=None, buyer_share: float = 1.0, operator_surplus=None,
                     mlf_point: str = "lindistflow") -> FeederOutcome:
    """Bilateral trades of cleared books and their settlement on ``feeder``, batched over E books.

    buses:        (n,) bus of each agent (non-root).
    prices, matched, sides, unit_price: (E, n) or (n,) the book and its clearing ($/kWh, kWh, +1/-1/0).
    net_load_kw:  (E, n) or (n,) kW each agent draws from the feeder (< 0: injects), what it physically does
                  this step (matched or not); with ``p_fixed_kw`` / ``q_fixed_kvar`` ((n_bus,) kW / kvar,
                  default 0) it sets the operating point (LinDistFlow, ``RealisedNetwork``) whose MLFs
                  (losses linearised at the realised flows and voltages) settle the trades.
    option, loss_price, fee_per_kwh, buyer_share: as in ``settle_trades``; matching: ``bilateral.MATCHINGS``.
    mlf_point:    "lindistflow" (default; what ``dlmp_v0`` prices with: first-order losses at the LinDistFlow
                  point) or "distflow" (exact derivative of the branch-flow losses, one DistFlow solve per
                  book: the MLF-scaled trades' AC residual falls from ~17 % to ~1 % of their loss,
                  docs/p2p.md).
    """
    from ..market.bilateral import match_trades
    from .lindistflow import LossModel, RealisedNetwork

    if mlf_point not in ("lindistflow", "distflow"):
        raise ValueError(f"mlf_point: expected 'lindistflow' or 'distflow', got {mlf_point!r}")
    b = np.asarray(buses, dtype=np.int64)
    if b.ndim != 1 or np.any((b < 0) | (b >= feeder.n_bus)) or np.any(b == feeder.root):
        raise ValueError(f"buses: expected (n,) non-root bus indices in [0, {feeder.n_bus}) (root {feeder.root})")
    arrs = [np.atleast_2d(np.asarray(x, dtype=np.float64)) for x in (prices, matched, unit_price, net_load_kw)]
    s = np.atleast_2d(np.asarray(sides))
    if any(a.shape != s.shape for a in arrs) or s.shape[1] != len(b):
        raise ValueError(f"prices, matched, sides, unit_price, net_load_kw: need one shape (E, {len(b)})")
    p, m, u, d = arrs
    pf = np.zeros(feeder.n_bus) if p_fixed_kw is None else np.asarray(p_fixed_kw, dtype=np.float64)
    qf = np.zeros(feeder.n_bus) if q_fixed_kvar is None else np.asarray(q_fixed_kvar, dtype=np.float64)
    grid = RealisedNetwork(feeder, qf)
    states = grid.states(d, b, pf, [LossModel.lossless(feeder)] * len(d), "net load of book {e}")
    models = grid.loss_models(states)
    if mlf_point == "distflow":
        from .lindistflow import distflow_loss_model

        mlf = np.array([distflow_loss_model(feeder, dl, qf).mlf for dl in states.net_load_kw])
    else:
        mlf = np.array([lm.mlf for lm in models])
    # the network's losses at the realised point (the lossless model only served to find the flows)
    states = grid.states(d, b, pf, models, "net load of book {e}")
    t = match_trades(p, m, s, matching)
    st = settle_trades(t, u, b, mlf, option, loss_price=loss_price, fee_per_kwh=fee_per_kwh,
                       buyer_share=buyer_share, operator_surplus=operator_surplus)
    return FeederOutcome(st, states, mlf)
