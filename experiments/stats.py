"""Statistics of seeded results as MARL evaluation practice asks for them (issue 18, item 3).

Agarwal et al. (2021, "Deep RL at the edge of the statistical precipice", the ``rliable`` library)
and Gorsane et al. (2022, "Towards a standardised performance evaluation protocol for cooperative
MARL", the ``marl-eval`` tools): few seeds, skewed or discrete outcomes, so

* point estimates are robust aggregates: the **IQM** (interquartile mean: the mean of the middle 50 %
  of the runs, ``scipy.stats.trim_mean(x, 0.25)``, as ``rliable.metrics.aggregate_iqm``) beside the
  mean and median;
* intervals are **stratified percentile bootstraps** (runs resampled with replacement within each
  task, ``reps`` replicates, 95 %), not t intervals, which assume a normal mean;
* algorithms are compared by the **probability of improvement** P(X > Y) (Mann-Whitney U / (n m),
  ties count 1/2, averaged over tasks) and by **performance profiles** (fraction of runs above tau);
* methods scored on the *same* seeded episodes are compared **paired**: the bootstrap of the mean of
  the per-seed differences and the Wilcoxon signed-rank test (``wilcoxon_exact``: the exact null
  distribution of the signed-rank statistic with tied ranks averaged and zero differences dropped, by
  dynamic programming, for any n; equal to ``scipy.stats.wilcoxon``'s exact p without ties, e.g. 10 of
  10 seeds one way: p = 2 / 2^10 = 0.00195, and deterministic where scipy falls back to a random
  permutation test with ties).

Missing values are never dropped silently: every result carries ``n_finite`` and ``n_total``
(NaN / inf seeds are counted and excluded), and a paired comparison counts the pairs where both are
finite. An interval has zero width only when ``deterministic`` is True (all finite values equal);
the formatter (``format_interval``) prints such a cell as "identical over n seeds", never as
"x ± 0". No ``rliable`` dependency: numpy/scipy only; ``tests/test_stats.py`` cross-checks IQM,
bootstrap and Wilcoxon against ``scipy.stats`` (``trim_mean``, ``bootstrap``, ``mannwhitneyu``).

``marl_eval_json`` writes rows in the marl-eval layout env -> task -> algorithm -> run -> metrics
(``{"step_0": {"step_count": ..., metric: [value]}, "absolute_metrics": {metric: [value]}}``).

Units are those of the metric passed in ($/episode, $/step, ...): every function here is unit-free.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np
from scipy import stats as sps

DEFAULT_REPS = 2000
ALPHA = 0.05
TIE_ATOL = 1e-6  # paired differences this small (metric units) are ties: solver round-off, not a win


@dataclass(frozen=True)
class Interval:
    """A point estimate with its 95 % interval (``lo``, ``hi``), in the metric's unit.

    n_finite / n_total: seeds (runs) used / given; NaN and inf are the difference.
    deterministic: every finite value is the same, so the interval has zero width by construction.
    method: "<statistic>/<interval>", e.g. "iqm/stratified-bootstrap-percentile".
    """

    point: float
    lo: float
    hi: float
    n_finite: int
    n_total: int
    deterministic: bool
    method: str

    @property
    def width(self) -> float:
        return self.hi - self.lo


@dataclass(frozen=True)
class PairedComparison:
    """x - y on seeds shared by two methods (metric units; > 0: x higher).

    mean_diff with its paired-bootstrap 95 % interval (lo, hi); p_wilcoxon: two-sided Wilcoxon
    signed-rank p-value (nan with fewer than 1 non-zero difference); wins / losses / ties: seeds
    with x > y, x < y, x == y; n_pairs: seeds where both are finite, of n_total given.
    """

    mean_diff: float
    lo: float
    hi: float
    p_wilcoxon: float
    wins: int
    losses: int
    ties: int
    n_pairs: int
    n_total: int


@dataclass(frozen=True)
class CellSummary:
    """One table cell over seeds: counts, mean / median / IQM, and the IQM's and mean's bootstrap intervals."""

    n_finite: int
    n_total: int
    mean: float
    median: float
    iqm: Interval
    mean_ci: Interval
    deterministic: bool


# -- finite values, counted ------------------------------------------------------------------------
def finite(values) -> tuple[np.ndarray, int, int]:
    """(finite values as float64, their count, the count given): NaN/inf are excluded and counted."""
    a = np.asarray(values, dtype=np.float64).ravel()
    keep = np.isfinite(a)
    return a[keep], int(keep.sum()), int(a.size)


def _as_tasks(scores) -> list[np.ndarray]:
    """Scores as a list of 1-D arrays of runs, one per task: a 1-D array is one task; a 2-D array is
    (runs, tasks) as in rliable; a mapping or sequence of arrays is one array per task (ragged)."""
    if isinstance(scores, Mapping):
        return [np.asarray(v, dtype=np.float64).ravel() for v in scores.values()]
    if isinstance(scores, np.ndarray) or (isinstance(scores, Sequence) and scores and np.isscalar(scores[0])):
        a = np.asarray(scores, dtype=np.float64)
        if a.ndim == 1:
            return [a]
        if a.ndim == 2:
            return [a[:, j] for j in range(a.shape[1])]
        raise ValueError(f"scores: expected 1-D (runs) or 2-D (runs, tasks), got shape {a.shape}")
    return [np.asarray(v, dtype=np.float64).ravel() for v in scores]


# -- aggregates ------------------------------------------------------------------------------------
def iqm(values) -> float:
    """Interquartile mean of the finite values: ``scipy.stats.trim_mean(x, 0.25)`` (drops
    floor(n/4) runs at each end, as rliable does); nan when none is finite."""
    a, n, _ = finite(values)
    return float(sps.trim_mean(a, 0.25)) if n else float("nan")


def _iqm_rows(x: np.ndarray) -> np.ndarray:
    """IQM of each row of (B, n) as ``trim_mean`` (axis=1)."""
    n = x.shape[1]
    k = int(0.25 * n)
    s = np.sort(x, axis=1)
    return s[:, k:n - k].mean(axis=1)


STATISTICS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "iqm": _iqm_rows,
    "mean": lambda x: x.mean(axis=1),
    "median": lambda x: np.median(x, axis=1),
}


def stratified_bootstrap(scores, statistic: str = "iqm", *, reps: int = DEFAULT_REPS, seed: int = 0,
                         alpha: float = ALPHA) -> Interval:
    """``statistic`` ("iqm", "mean", "median") of all runs of all tasks pooled, with a stratified
    percentile-bootstrap interval: each replicate resamples every task's finite runs with replacement
    (rliable's ``StratifiedBootstrap``). ``scores``: see ``_as_tasks``. A task with no finite run
    raises (it cannot be resampled); NaNs are counted in ``n_finite`` / ``n_total``."""
    if statistic not in STATISTICS:
        raise ValueError(f"statistic: expected one of {sorted(STATISTICS)}, got {statistic!r}")
    if reps < 1:
        raise ValueError(f"reps: need >= 1 bootstrap replicates, got {reps}")
    tasks = _as_tasks(scores)
    kept, nf, nt = [], 0, 0
    for j, t in enumerate(tasks):
        a, f, n = finite(t)
        if f == 0:
            raise ValueError(f"scores: task {j} has no finite run ({n} given)")
        kept.append(a)
        nf, nt = nf + f, nt + n
    fn = STATISTICS[statistic]
    pooled = np.concatenate(kept)
    point = float(fn(pooled[None])[0])
    deterministic = bool(np.all(pooled == pooled[0]))
    method = f"{statistic}/stratified-bootstrap-percentile"
    if deterministic:
        return Interval(point, point, point, nf, nt, True, method)
    rng = np.random.default_rng(seed)
    boot = np.concatenate([a[rng.integers(0, a.size, size=(reps, a.size))] for a in kept], axis=1)
    vals = fn(boot)
    lo, hi = np.percentile(vals, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    return Interval(point, float(lo), float(hi), nf, nt, False, method)


def summarise_cell(values, *, reps: int = DEFAULT_REPS, seed: int = 0) -> CellSummary:
    """Counts, mean, median and the IQM and mean with bootstrap intervals of one cell's seeds
    (all nan, with the counts, when no value is finite)."""
    a, nf, nt = finite(values)
    if nf == 0:
        nan = float("nan")
        empty = Interval(nan, nan, nan, 0, nt, False, "none")
        return CellSummary(0, nt, nan, nan, empty, empty, False)
    q = stratified_bootstrap(a, "iqm", reps=reps, seed=seed)
    m = stratified_bootstrap(a, "mean", reps=reps, seed=seed)
    return CellSummary(nf, nt, float(a.mean()), float(np.median(a)), q, m, q.deterministic)


def group_rows(rows: Iterable[dict], keys: Sequence[str]) -> list[tuple[dict, list[dict]]]:
    """``rows`` grouped by their values of ``keys``, groups in first-seen order: (``{key: value}``, the
    group's rows) per group."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault(tuple(r[k] for k in keys), []).append(r)
    return [(dict(zip(keys, g)), rs) for g, rs in groups.items()]


def summarise_rows(rows: Sequence[dict], keys: Sequence[str], metrics: Sequence[str], *,
                   reps: int = DEFAULT_REPS, seed: int = 0) -> list[dict]:
    """Group ``rows`` by ``keys``; per metric: ``<m>_n`` (finite seeds), ``<m>_n_total``, ``<m>_mean``,
    ``<m>_median``, ``<m>_iqm`` with ``<m>_iqm_lo``/``_hi`` and ``<m>_mean_lo``/``_hi`` (stratified
    bootstrap), ``<m>_deterministic``. A row without the metric counts as a missing (NaN) seed."""
    out = []
    for d, rs in group_rows(rows, keys):
        for m in metrics:
            c = summarise_cell([r.get(m, float("nan")) for r in rs], reps=reps, seed=seed)
            d.update({f"{m}_n": c.n_finite, f"{m}_n_total": c.n_total, f"{m}_mean": c.mean,
                      f"{m}_median": c.median, f"{m}_iqm": c.iqm.point, f"{m}_iqm_lo": c.iqm.lo,
                      f"{m}_iqm_hi": c.iqm.hi, f"{m}_mean_lo": c.mean_ci.lo, f"{m}_mean_hi": c.mean_ci.hi,
                      f"{m}_deterministic": c.deterministic})
        out.append(d)
    return out


def format_interval(iv: Interval, digits: int = 3) -> str:
    """Table cell: "x [lo, hi] (n/N)"; "x (identical over n seeds)" when deterministic; "nan (0/N)"."""
    if iv.n_finite == 0:
        return f"nan (0/{iv.n_total})"
    counts = f"{iv.n_finite}/{iv.n_total}"
    if iv.deterministic:
        return f"{iv.point:.{digits}f} (identical over {counts} seeds)"
    return f"{iv.point:.{digits}f} [{iv.lo:.{digits}f}, {iv.hi:.{digits}f}] ({counts})"


# -- comparisons -----------------------------------------------------------------------------------
def _prob_improvement_one(x: np.ndarray, y: np.ndarray) -> float:
    """P(X > Y) + P(X = Y)/2 for one task (Mann-Whitney U / (n m))."""
    return float(((x[:, None] > y[None, :]).sum() + 0.5 * (x[:, None] == y[None, :]).sum()) / (x.size * y.size))


def probability_of_improvement(x_scores, y_scores, *, reps: int = DEFAULT_REPS, seed: int = 0,
                               alpha: float = ALPHA) -> Interval:
    """P(X > Y) of algorithm X over Y, averaged over tasks (rliable's ``probability_of_improvement``),
    with a stratified-bootstrap interval (runs of X and Y resampled independently within each task).
    Per task the value equals ``mannwhitneyu(x, y).statistic / (n m)``. 0.5: no improvement either way."""
    xs, ys = _as_tasks(x_scores), _as_tasks(y_scores)
    if len(xs) != len(ys):
        raise ValueError(f"x_scores, y_scores: {len(xs)} and {len(ys)} tasks; need the same tasks")
    fx, fy = [finite(a) for a in xs], [finite(a) for a in ys]
    for j, ((_, nx, _), (_, ny, _)) in enumerate(zip(fx, fy)):
        if nx == 0 or ny == 0:
            raise ValueError(f"task {j}: no finite run for {'x' if nx == 0 else 'y'}")
    point = float(np.mean([_prob_improvement_one(a, b) for (a, _, _), (b, _, _) in zip(fx, fy)]))
    nf = sum(f for _, f, _ in fx) + sum(f for _, f, _ in fy)
    nt = sum(n for _, _, n in fx) + sum(n for _, _, n in fy)
    values = np.concatenate([a for a, _, _ in fx] + [b for b, _, _ in fy])
    if np.all(values == values[0]):
        return Interval(point, point, point, nf, nt, True, "probability_of_improvement")
    rng = np.random.default_rng(seed)
    acc = np.zeros(reps)
    for (a, _, _), (b, _, _) in zip(fx, fy):
        ra = a[rng.integers(0, a.size, size=(reps, a.size))]
        rb = b[rng.integers(0, b.size, size=(reps, b.size))]
        gt = (ra[:, :, None] > rb[:, None, :]).sum(axis=(1, 2))
        eq = (ra[:, :, None] == rb[:, None, :]).sum(axis=(1, 2))
        acc += (gt + 0.5 * eq) / (a.size * b.size)
    acc /= len(fx)
    lo, hi = np.percentile(acc, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    return Interval(point, float(lo), float(hi), nf, nt, False, "probability_of_improvement/stratified-bootstrap")


def performance_profile(scores, taus) -> np.ndarray:
    """(len(taus),) run-score distribution: the fraction of a task's finite runs with score > tau,
    averaged over tasks (rliable's ``create_performance_profile`` without its bootstrap band)."""
    t = np.asarray(taus, dtype=np.float64)
    fr = []
    for j, task in enumerate(_as_tasks(scores)):
        a, n, _ = finite(task)
        if n == 0:
            raise ValueError(f"scores: task {j} has no finite run")
        fr.append((a[None, :] > t[:, None]).mean(axis=1))
    return np.mean(fr, axis=0)


def wilcoxon_exact(d) -> float:
    """Two-sided p of the Wilcoxon signed-rank test of differences ``d`` (zeros dropped, ties of |d| given
    their average rank): 2 min(P(T+ <= t), P(T+ >= t)) capped at 1 under the exact null (every sign
    equally likely), the distribution of T+ summed over the ranks by dynamic programming (ranks doubled
    to integers). nan when no difference is non-zero."""
    a = np.asarray(d, dtype=np.float64).ravel()
    a = a[np.isfinite(a) & (a != 0)]
    if a.size == 0:
        return float("nan")
    w = np.rint(2 * sps.rankdata(np.abs(a))).astype(np.int64)  # average ranks x 2: integers
    t = int(w[a > 0].sum())
    dist = np.zeros(int(w.sum()) + 1)
    dist[0] = 1.0
    for k in w:
        dist[k:] = dist[k:] + dist[:-k].copy() if k > 0 else 2 * dist
    dist /= dist.sum()
    cdf = float(dist[:t + 1].sum())
    sf = float(dist[t:].sum())
    return float(min(1.0, 2 * min(cdf, sf)))


def paired_comparison(x, y, *, reps: int = DEFAULT_REPS, seed: int = 0, alpha: float = ALPHA,
                      atol: float = TIE_ATOL) -> PairedComparison:
    """x - y over seeds shared by two methods (``x[i]``, ``y[i]``: the same seed and episode).

    Pairs where either value is not finite are excluded and counted (``n_pairs`` of ``n_total``).
    Interval: percentile bootstrap of the mean difference resampling whole pairs; test: two-sided
    Wilcoxon signed-rank (``wilcoxon_exact``: zero differences dropped as in scipy's default
    ``zero_method="wilcox"``, exact null distribution with tied ranks averaged). Differences with
    |x - y| <= ``atol`` count as ties in the test and in wins / losses / ties (round-off of an exact
    solver, e.g. 1e-9 markups); the mean and its interval use the raw differences."""
    a = np.asarray(x, dtype=np.float64).ravel()
    b = np.asarray(y, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"x, y: paired values need the same length, got {a.size} and {b.size}")
    keep = np.isfinite(a) & np.isfinite(b)
    d = a[keep] - b[keep]
    n = int(d.size)
    nan = float("nan")
    if n == 0:
        return PairedComparison(nan, nan, nan, nan, 0, 0, 0, 0, int(a.size))
    dt = np.where(np.abs(d) <= atol, 0.0, d)  # round-off differences are ties
    wins, losses = int((dt > 0).sum()), int((dt < 0).sum())
    ties = n - wins - losses
    mean = float(d.mean())
    if np.all(d == d[0]):
        lo = hi = mean
    else:
        rng = np.random.default_rng(seed)
        boot = d[rng.integers(0, n, size=(reps, n))].mean(axis=1)
        lo, hi = (float(v) for v in np.percentile(boot, [100 * alpha / 2, 100 * (1 - alpha / 2)]))
    p = wilcoxon_exact(dt) if wins + losses > 0 else nan
    return PairedComparison(mean, lo, hi, p, wins, losses, ties, n, int(a.size))


def paired_by_seed(rows: Sequence[dict], metric: str, x_method: str, y_method: str, *,
                   method_key: str = "method", seed_key: str = "seed", where: Mapping | None = None,
                   **kw) -> PairedComparison:
    """``paired_comparison`` of ``metric`` between two methods' rows matched on ``seed_key`` (rows
    filtered by ``where``, e.g. ``{"scenario": ...}``); seeds present for one method only count as
    missing pairs."""
    sel = [r for r in rows if all(r.get(k) == v for k, v in (where or {}).items())]
    xs = {r[seed_key]: r.get(metric, float("nan")) for r in sel if r[method_key] == x_method}
    ys = {r[seed_key]: r.get(metric, float("nan")) for r in sel if r[method_key] == y_method}
    seeds = sorted(set(xs) | set(ys))
    nan = float("nan")
    return paired_comparison([xs.get(s, nan) for s in seeds], [ys.get(s, nan) for s in seeds], **kw)


def paired_dict(c: PairedComparison) -> dict:
    """A ``PairedComparison`` as a JSON-ready dict (the studies' ``paired`` entries)."""
    return dict(mean_diff=c.mean_diff, lo=c.lo, hi=c.hi, p_wilcoxon=c.p_wilcoxon, wins=c.wins, losses=c.losses,
                ties=c.ties, n_pairs=c.n_pairs, n_total=c.n_total)


def sum_of_means_bootstrap(groups: Sequence, *, reps: int = DEFAULT_REPS, seed: int = 0,
                           alpha: float = ALPHA) -> Interval:
    """Sum over groups of each group's mean, with a two-level percentile bootstrap.

    ``groups``: one (runs, episodes) array per group (e.g. per player: responder seeds x evaluation
    markets), the episodes shared by every group (the same evaluation markets). Each replicate
    resamples the episodes once for all groups (they are paired) and each group's runs on their own.
    A run with a non-finite value is excluded and counted (``n_finite`` / ``n_total`` count runs);
    a group with no finite run makes the sum nan. Zero width only when every value of every group
    is the same within its group (``deterministic``)."""
    mats = [np.atleast_2d(np.asarray(g, dtype=np.float64)) for g in groups]
    if not mats:
        raise ValueError("groups: need at least one group")
    m = mats[0].shape[1]
    if any(a.shape[1] != m for a in mats):
        raise ValueError(f"groups: every group needs the same episodes, got {[a.shape[1] for a in mats]}")
    kept = [a[np.isfinite(a).all(axis=1)] for a in mats]
    nf, nt = sum(a.shape[0] for a in kept), sum(a.shape[0] for a in mats)
    method = "sum-of-means/two-level-bootstrap-percentile"
    if any(a.shape[0] == 0 for a in kept):
        nan = float("nan")
        return Interval(nan, nan, nan, nf, nt, False, method)
    point = float(sum(a.mean() for a in kept))
    if all(np.all(a == a.flat[0]) for a in kept):
        return Interval(point, point, point, nf, nt, True, method)
    rng = np.random.default_rng(seed)
    cols = rng.integers(0, m, size=(reps, m))
    acc = np.zeros(reps)
    for a in kept:
        rows = rng.integers(0, a.shape[0], size=(reps, a.shape[0]))
        acc += a[rows[:, :, None], cols[:, None, :]].mean(axis=(1, 2))
    lo, hi = np.percentile(acc, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    return Interval(point, float(lo), float(hi), nf, nt, False, method)


# -- marl-eval export ------------------------------------------------------------------------------
def marl_eval_json(rows: Iterable[dict], metrics: Sequence[str], *, env_key: str = "env", task_key: str = "task",
                   algorithm_key: str = "method", run_key: str = "seed", step_key: str | None = "agent_steps",
                   env_name: str | None = None) -> dict:
    """Rows as the marl-eval layout: ``{env: {task: {algorithm: {"run_<seed>": {"step_0":
    {"step_count": steps, metric: [value]}, "absolute_metrics": {metric: [value]}}}}}}`` (one
    evaluation per run: lists of one value; NaN kept as NaN, which Python's json writes and reads).
    ``env_name`` names the environment when the rows carry no ``env_key`` (e.g. "p2penv")."""
    out: dict = {}
    for r in rows:
        env = str(r[env_key]) if env_key in r else (env_name or "p2penv")
        run = out.setdefault(env, {}).setdefault(str(r[task_key]), {}).setdefault(str(r[algorithm_key]), {})
        name = f"run_{r[run_key]}"
        if name in run:
            raise ValueError(f"rows: two rows for env {env!r}, task {r[task_key]!r}, algorithm "
                             f"{r[algorithm_key]!r}, run {r[run_key]!r}")
        vals = {m: [float(r.get(m, float("nan")))] for m in metrics}
        steps = int(r.get(step_key, 0) or 0) if step_key else 0
        run[name] = {"step_0": {"step_count": steps, **vals}, "absolute_metrics": dict(vals)}
    return out
