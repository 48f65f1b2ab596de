"""Experiment output: CSV/JSON files, plain-text tables, figures (all files written atomically)."""
from __future__ import annotations

import csv
import io
import sys
from pathlib import Path
from typing import Sequence

import numpy as np

from p2penv.agents.checkpoint import atomic_savefig, atomic_write_json, atomic_write_text


def write_csv(path: str | Path, rows: list[dict]) -> Path:
    """CSV of dict rows (union of keys, first-seen order), written atomically."""
    cols: list[str] = []
    for r in rows:
        cols += [k for k in r if k not in cols]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols)
    w.writeheader()
    w.writerows(rows)
    return atomic_write_text(path, buf.getvalue())


def format_table(rows: list[dict], cols: Sequence[str], ci: bool = True) -> str:
    """Plain-text table; ``x +- ci`` when ``<col>_ci`` exists."""
    def num(x: float) -> str:
        # solver round-off (1e-9 markups of an exact benchmark) reads as 0, not as 9.2e-09
        return "0" if abs(x) < 5e-7 else f"{x:.4g}"

    def cell(r, c):
        v = r.get(c, "")
        if isinstance(v, float):
            e = r.get(c + "_ci")
            show = ci and isinstance(e, float) and np.isfinite(e) and abs(e) >= 5e-7
            return num(v) + (f" +- {e:.2g}" if show else "")
        return str(v)

    cells = [[cell(r, c) for c in cols] for r in rows]
    wid = [max(len(c), *(len(x[i]) for x in cells)) if cells else len(c) for i, c in enumerate(cols)]
    lines = ["  ".join(c.rjust(w) for c, w in zip(cols, wid)), "  ".join("-" * w for w in wid)]
    lines += ["  ".join(x.rjust(w) for x, w in zip(row, wid)) for row in cells]
    return "\n".join(lines)


def save_outputs(out_dir: str | Path, name: str, rows: list[dict], summary: list[dict], meta: dict,
                 **extra) -> Path:
    """``<name>_runs.csv``, ``<name>_summary.csv`` and ``<name>.json`` (``{"meta", "runs", "summary", **extra}``)
    in ``out_dir`` (atomic)."""
    out = Path(out_dir)
    write_csv(out / f"{name}_runs.csv", rows)
    write_csv(out / f"{name}_summary.csv", summary)
    atomic_write_json(out / f"{name}.json", dict(meta=meta, runs=rows, summary=summary, **extra))
    return out


def new_figure(ncols: int = 1, width: float = 4.5, height: float = 3.4):
    """Figure with ``ncols`` axes in a row; size in inches per axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, ncols, figsize=(width * ncols, height), squeeze=False)
    return fig, axes[0]


def save_figure(fig, path: str | Path) -> Path:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    p = atomic_savefig(fig, path, dpi=110)
    plt.close(fig)
    return p


def echo(text: str) -> None:
    print(text, file=sys.stdout, flush=True)
