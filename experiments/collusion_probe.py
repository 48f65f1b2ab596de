"""Collusion probe (Calvano et al. 2020): train Q-learning sellers, then force seller 0 to its
static best-response price for one step and trace prices and profits afterwards (impulse response).

Benchmarks on the price grid of the learners (same dispatch rule), from the stage game's profit
matrix: Nash profit pi_N (pure Nash equilibrium of the grid game with the lowest joint profit) and
collusive profit pi_M (joint-profit maximum over symmetric profiles).
Delta = (mean learner profit - pi_N) / (pi_M - pi_N): 0 = competitive (Nash), 1 = full collusion.

    python -m p2penv.experiments.collusion_probe [--quick] [--out results/collusion_probe]
"""
from __future__ import annotations

import argparse
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from p2penv.scenarios.sellers_buyers import seller_buyer_env_fn, sellers

from .checkpoints import CheckpointError, RowCheckpoint
from .metrics import mean_ci
from .output import echo, format_table, new_figure, save_figure, save_outputs


@dataclass(frozen=True)
class CollusionConfig:
    n_sellers: int = 2
    n_prices: int = 15
    sessions: int = 4  # independent Q-learning sessions (the seeds)
    q_steps: int = 150_000
    q_beta: float = 4e-5
    seed: int = 0
    pre: int = 5  # greedy steps before the deviation
    post: int = 15  # steps traced after it
    mechanism: str = "uniform"
    # elastic demand (flexible-load buyers, as in the market-power experiment): with inelastic buyers
    # the stage game already has equilibria at the retail cap, so Nash and collusion coincide
    n_buyers: int = 6
    demand_kw: float = 1.0
    buyer_values: tuple[float, float] | None = (0.10, 0.30)

    def env_fn(self, max_cycles: int = 24):
        return seller_buyer_env_fn(self.n_sellers, self.n_buyers, seed=self.seed, mechanism=self.mechanism,
                                   max_cycles=max_cycles, demand_kw=self.demand_kw, buyer_values=self.buyer_values)


QUICK = CollusionConfig(sessions=2, q_steps=1500, q_beta=2e-3, post=6)


def profit_matrix(q) -> np.ndarray:
    """(m,)*L + (L,) stage profit $/step of the learners for every joint price-index profile."""
    k, m, L = q.kernel, q.cfg.n_prices, len(q.learners)
    idx = np.stack(np.unravel_index(np.arange(m**L), (m,) * L), -1)
    saved = (k.B, k.state())
    k.B = idx.shape[0]
    k.reset_market()
    ctx = k.context()
    from p2penv.market.pipeline import run_step

    r = run_step(k.joint_action(ctx, idx), ctx, k.rules).settlement.reward[:, k.learn_idx]
    k.B = saved[0]
    k.load_state(saved[1])
    return r.reshape((m,) * L + (L,))


def benchmarks(pm: np.ndarray) -> tuple[float, float, tuple]:
    """(pi_N, pi_M, Nash profile) per-learner profit $/step; see module doc."""
    L = pm.shape[-1]
    m = pm.shape[0]
    is_ne = np.ones(pm.shape[:-1], bool)
    for i in range(L):
        is_ne &= pm[..., i] >= pm[..., i].max(axis=i, keepdims=True) - 1e-12
    joint = pm.sum(-1)
    if is_ne.any():
        cand = np.argwhere(is_ne)
        ne = tuple(cand[int(np.argmin([joint[tuple(c)] for c in cand]))])
    else:  # no pure equilibrium on the grid: fall back to the profile with the smallest max gain
        gain = sum(pm[..., i].max(axis=i, keepdims=True) - pm[..., i] for i in range(L))
        ne = np.unravel_index(int(np.argmin(gain)), gain.shape)
    sym = np.array([joint[(j,) * L] for j in range(m)])
    return float(pm[ne].mean()), float(sym.max() / L), tuple(int(x) for x in ne)


def impulse(q, session: int, pm: np.ndarray, cfg: CollusionConfig):
    """(prices (pre+1+post,), learner profits (.., L), deviation index) of one session."""
    from p2penv.agents.rollout import rollout

    pol = q.policy(session)
    f = cfg.env_fn(max_cycles=cfg.pre + 1 + cfg.post)
    env = f()
    dev = {}

    class Forced:
        def __init__(self):
            self.t = 0

        def reset(self):
            pol.reset()
            self.t = 0

        def __call__(self, env, obs):
            if self.t == cfg.pre:
                a = pol.q.Q[pol.b, np.arange(len(pol.q.learners)), pol.s].argmax(-1)
                rivals = list(a)
                prof = [pm[tuple([j] + rivals[1:])][0] for j in range(pm.shape[0])]
                dev["idx"] = int(np.argmax(prof))
                pol.force = {0: dev["idx"]}
            self.t += 1
            return pol(env, obs)

        def observe(self, outcome):
            pol.observe(outcome)

    tr = rollout(env, Forced(), seed=cfg.seed)[0]
    return tr.prices, tr.rewards[:, q.kernel.learn_idx], dev.get("idx", -1)


def run(cfg: CollusionConfig, out_dir: str | Path | None = None, resume: bool = False) -> dict:
    """Run the probe; writes CSV/JSON/PNG to ``out_dir`` when given; returns the summary. The
    Q-tables (``<out_dir>/q``) and every finished session row are checkpointed; ``resume=True``
    continues the training and skips the finished sessions (only with a checkpoint of this config)."""
    from p2penv.agents.qlearning import QConfig, QLearners

    t0 = time.perf_counter()
    out = Path(out_dir) if out_dir is not None else None
    ck = RowCheckpoint(out, "collusion_probe", asdict(cfg), resume, total=cfg.sessions)
    f = cfg.env_fn()
    q = QLearners(f, QConfig(n_prices=cfg.n_prices, total_steps=cfg.q_steps, n_sessions=cfg.sessions, beta=cfg.q_beta,
                             seed=cfg.seed, converge_steps=0, checkpoint_every=max(1, cfg.q_steps // 10)),
                  learners=sellers(cfg.n_sellers))
    res = q.train(None if out is None else out / "q", resume=ck.matched)
    pm = profit_matrix(q)
    pi_n, pi_m, ne = benchmarks(pm)
    for b in range(cfg.sessions):
        if ck.find(session=b) is not None:
            continue
        prices, profits, didx = impulse(q, b, pm, cfg)
        base = profits[: cfg.pre].mean()
        delta = (base - pi_n) / (pi_m - pi_n) if pi_m != pi_n else float("nan")
        ck.add(dict(session=b, delta=float(delta), profit=float(base), price_pre=float(prices[: cfg.pre].mean()),
                    price_dev=float(prices[cfg.pre]), price_end=float(prices[-1]), deviation_idx=didx,
                    deviator_gain=float(profits[cfg.pre, 0] - profits[cfg.pre - 1, 0]),
                    deviator_post_loss=float((profits[cfg.pre + 1:, 0] - base).sum()),
                    trace_prices=prices, trace_profits=profits))
    saved = [ck.find(session=b) for b in range(cfg.sessions)]
    rows = [{k: v for k, v in r.items() if not k.startswith("trace_")} for r in saved]
    traces = [dict(session=r["session"], prices=np.asarray(r["trace_prices"], dtype=np.float64),
                   profits=np.asarray(r["trace_profits"], dtype=np.float64)) for r in saved]
    summary = [dict(metric=k, **dict(zip(("mean", "ci"), mean_ci([r[k] for r in rows]))))
               for k in ("delta", "profit", "price_pre", "price_dev", "price_end", "deviator_post_loss")]
    meta = dict(config=asdict(cfg), pi_nash=pi_n, pi_collusive=pi_m, nash_profile=ne, prices=res.prices,
                state_kind=res.state_kind, train_s=res.wall_s, wall_s=time.perf_counter() - t0, resumed_rows=ck.reused,
                traces=[dict(session=t["session"], prices=t["prices"], profits=t["profits"]) for t in traces])
    if out is not None:
        save_outputs(out, "collusion_probe", rows, summary, meta)
        plot(traces, cfg, pi_n, pi_m, res, out / "collusion_probe.png")
    echo(f"pi_Nash = {pi_n:.4f} $/step, pi_collusive = {pi_m:.4f} $/step (grid Nash profile {ne})")
    echo(format_table(rows, ("session", "delta", "profit", "price_pre", "price_dev", "price_end", "deviator_post_loss"),
                      ci=False))
    echo(format_table([dict(metric=s["metric"], mean=s["mean"], mean_ci=s["ci"]) for s in summary], ("metric", "mean")))
    return dict(rows=rows, summary=summary, meta=meta)


def plot(traces, cfg, pi_n, pi_m, res, path):
    fig, axes = new_figure(3, 4.0, 3.2)
    t = np.arange(cfg.pre + 1 + cfg.post) - cfg.pre
    for tr in traces:
        axes[0].plot(t, tr["prices"], marker=".", alpha=0.7)
        axes[1].plot(t, tr["profits"][:, 0], marker=".", alpha=0.7)
    axes[0].axvline(0, color="k", lw=0.5)
    axes[0].set_title("clearing price $/kWh")
    axes[1].axhline(pi_n, ls="--", color="r", label="Nash")
    axes[1].axhline(pi_m, ls="--", color="g", label="collusive")
    axes[1].set_title("deviator profit $/step")
    axes[1].legend(fontsize=7)
    if res.trace_t.size:
        axes[2].plot(res.trace_t, res.trace_price)
    axes[2].set_title("training: mean price")
    axes[2].set_xlabel("step")
    return save_figure(fig, path)


def main(argv=None, prog: str | None = None) -> dict:
    ap = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default="results/collusion_probe")
    ap.add_argument("--q-steps", type=int)
    ap.add_argument("--sessions", type=int)
    ap.add_argument("--resume", action="store_true", help="continue the run checkpointed in --out")
    a = ap.parse_args(argv)
    cfg = QUICK if a.quick else CollusionConfig()
    over = {k: v for k, v in dict(q_steps=a.q_steps, sessions=a.sessions).items() if v}
    try:
        return run(replace(cfg, **over), a.out, resume=a.resume)
    except CheckpointError as e:
        ap.exit(2, f"{ap.prog}: error: {e}\n")


if __name__ == "__main__":
    main()
