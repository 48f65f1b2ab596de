"""Regenerate the "S6 on the AC power flow" numbers of docs/network_model.md (issue 21).

Run from the repo root: ``python scripts/s6_trades_reference.py [--dp 10] [--out docs/results/s6_trades.json]``.
Every ordered pair of the 32 non-root buses of ``ieee33`` (992 single trades of ``dp`` kW at the
base load), each MLF source of ``p2penv.network.p2p_trades``: the AC change of the substation import
for full and for MLF-scaled delivery. Prints a markdown table and writes the per-pair numbers as
JSON. About 4,000 pandapower power flows (minutes on 2 cores). ``tests/test_p2p_trades.py`` checks
a seeded subset of the pairs.
"""
from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path

import numpy as np

from p2penv.network import ieee33
from p2penv.network.p2p_trades import MLF_SOURCES, check_trades_ac


def _rounded(x):
    """Floats to 1e-7 (kW: far below the 1e-10 MVA power-flow tolerance's effect), recursively."""
    if isinstance(x, float):
        return round(x, 7)
    if isinstance(x, list):
        return [_rounded(v) for v in x]
    if isinstance(x, dict):
        return {k: _rounded(v) for k, v in x.items()}
    return x


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dp", type=float, default=10.0, help="kW the seller injects")
    ap.add_argument("--out", default="docs/results/s6_trades.json")
    a = ap.parse_args(argv)
    f = ieee33()
    pairs = list(itertools.permutations(range(1, f.n_bus), 2))
    res = {}
    t0 = time.perf_counter()
    for src in MLF_SOURCES:
        r = check_trades_ac(f, pairs, a.dp, mlf=src)
        res[src] = r
    un = res[MLF_SOURCES[0]].d_import_unscaled_kw
    print(f"ieee33, base load, {len(pairs)} ordered pairs, {a.dp} kW per trade; |unscaled| mean "
          f"{np.abs(un).mean():.3f} kW, median {np.median(np.abs(un)):.3f}, max {np.abs(un).max():.3f}")
    print("| MLF source | mean \\|residual\\| (kW) | median | max (pair) | residual / unscaled (sum) "
          "| max \\|residual\\| / \\|unscaled\\| |")
    print("|---|---|---|---|---|---|")
    rows = {}
    for src, r in res.items():
        s = np.abs(r.d_import_scaled_kw)
        k = int(s.argmax())
        big = np.abs(r.d_import_unscaled_kw) > 0.01 * a.dp  # ratio only where the trade moves losses
        print(f"| {src} | {s.mean():.4f} | {np.median(s):.4f} | {s.max():.4f} ({r.seller_bus[k]}→{r.buyer_bus[k]}) "
              f"| {r.residual_share:.4f} | {(s[big] / np.abs(r.d_import_unscaled_kw[big])).max():.3f} |")
        rows[src] = dict(mlf=r.mlf.tolist(), delivered_kw=r.delivered_kw.tolist(),
                         d_import_scaled_kw=r.d_import_scaled_kw.tolist(),
                         mean_abs_residual_kw=float(s.mean()), max_abs_residual_kw=float(s.max()),
                         residual_share=r.residual_share)
    out = dict(feeder="ieee33", load="base (3715 kW / 2300 kvar)", sold_kw=a.dp,
               seller_bus=[p[0] for p in pairs], buyer_bus=[p[1] for p in pairs],
               d_import_unscaled_kw=un.tolist(), sources=rows, wall_s=time.perf_counter() - t0)
    if a.out:
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.out).write_text(json.dumps(_rounded(out), separators=(",", ":")))
    return out


if __name__ == "__main__":
    main()
