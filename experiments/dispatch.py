"""Where an experiment's rows are computed: in this process, or as Ray tasks on a local or remote cluster.

An experiment is a list of ``Task`` records. A task is one unit of work (usually one
(scenario, N, mechanism, method, seed) cell; a vectorised Q-learning run that trains every seed in one
batch is one task with one row per seed): a module-level function and its arguments, and the keys of
the rows it returns. ``run_tasks`` skips tasks whose rows are all in the checkpoint already, runs the
rest and adds each returned row to the driver's ``RowCheckpoint`` as it arrives. The checkpoint (and so
``--resume``) lives on the driver only; workers return rows and write nothing. Tasks must be pure
functions of their arguments (seeded), so a Ray run gives the same rows as the in-process run; the
experiments order their output by their own cell order, not by completion order.

``ray=None``: in this process. ``ray="local"``: start a local Ray cluster (``ray.init(num_cpus=...)``).
Any other string: the address of a running cluster to join (``ray.init(address=...)``, e.g. ``"auto"``
on a cluster node or ``"ray://head:10001"`` through Ray Client); every node needs ``p2penv`` installed
(``pip install "p2penv[ray,train]"``), or ship it with ``runtime_env`` (see docs/training.md).

Each Ray task reserves ``cpus_per_task`` CPUs (default 1) and runs torch with one thread.
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from .checkpoints import CheckpointError, RowCheckpoint


class TaskFailed(CheckpointError):
    """A Ray task whose worker died twice (its retry included): the message is one line naming the task,
    the cause and how to continue (the rows finished so far are in the checkpoint, ``--resume`` reuses them).
    A ``CheckpointError``, so the experiments' command lines print it as one line, not a traceback."""


@dataclass(frozen=True)
class Task:
    """One unit of work: ``fn(*args) -> list[dict]`` returns rows whose key fields are ``row_keys``
    (one dict of key fields per row, in order). ``fn`` must be importable (module level) for Ray."""

    fn: Callable[..., list[dict]]
    args: tuple
    row_keys: tuple[dict, ...]
    label: str = ""

    def done(self, ck: RowCheckpoint) -> bool:
        """Every row of this task is in the checkpoint."""
        return all(ck.find(**k) is not None for k in self.row_keys)


@dataclass(frozen=True)
class RayOptions:
    """``address``: "local" (a fresh local cluster) or a cluster address; ``num_cpus``: CPUs of the local
    cluster (None: all); ``cpus_per_task``; ``runtime_env``: Ray runtime environment (dict) for the workers."""

    address: str = "local"
    num_cpus: int | None = None
    cpus_per_task: float = 1.0
    runtime_env: dict | None = field(default=None)


def add_ray_option(parser, what: str = "rows") -> None:
    """The experiments' shared ``--ray local|ADDRESS`` command-line option (value: ``run_tasks``'s ``ray``)."""
    parser.add_argument("--ray", metavar="local|ADDRESS", help=f"run the {what} as Ray tasks: 'local' starts a "
                        "local cluster, anything else is the address of a running one (e.g. auto, ray://head:10001)")


def run_tasks(tasks: Sequence[Task], ck: RowCheckpoint, ray: str | RayOptions | None = None) -> int:
    """Compute the rows of every task not yet done and add them to ``ck``; returns the number of tasks run."""
    todo = [t for t in tasks if not t.done(ck)]
    if not todo:
        return 0
    if ray is None:
        for t in todo:
            _add(ck, t, _run_one(t.fn, t.args))
        return len(todo)
    opts = ray if isinstance(ray, RayOptions) else RayOptions(address=ray)
    return _run_on_ray(todo, ck, opts)


def _add(ck: RowCheckpoint, t: Task, rows: list[dict]) -> None:
    if len(rows) != len(t.row_keys):
        raise RuntimeError(f"task {t.label or t.fn.__name__}: returned {len(rows)} rows, expected {len(t.row_keys)}")
    for key, row in zip(t.row_keys, rows):
        bad = {k: (v, row.get(k)) for k, v in key.items() if row.get(k) != v}
        if bad:
            raise RuntimeError(f"task {t.label or t.fn.__name__}: row keys differ from the declared ones: {bad}")
        if ck.find(**key) is None:
            ck.add(row)


def _run_one(fn: Callable[..., list[dict]], args: tuple) -> list[dict]:
    return list(fn(*args))


def _ray_worker(fn: Callable[..., list[dict]], args: tuple) -> list[dict]:
    """Body of a Ray task: one torch thread (tasks share the node's cores), then the row function."""
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # env-only installs train nothing with torch
        pass
    return _run_one(fn, args)


def _init_ray(opts: RayOptions):
    try:
        import ray
    except ImportError:
        raise RuntimeError('--ray needs Ray: pip install "p2penv[ray]"') from None
    if ray.is_initialized():
        return ray, False
    kw: dict[str, Any] = dict(include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    if opts.runtime_env:
        kw["runtime_env"] = opts.runtime_env
    if opts.address == "local":
        ray.init(num_cpus=opts.num_cpus or os.cpu_count(), **kw)
    else:
        ray.init(address=opts.address, **kw)
    return ray, True


def _run_on_ray(todo: Sequence[Task], ck: RowCheckpoint, opts: RayOptions) -> int:
    ray, started = _init_ray(opts)
    try:
        remote = ray.remote(num_cpus=opts.cpus_per_task, max_retries=1)(_ray_worker)
        pending = {remote.remote(t.fn, t.args): t for t in todo}
        print(f"{ck.name}: {len(pending)} task(s) on Ray ({opts.address}, "
              f"{ray.cluster_resources().get('CPU', 0):.0f} CPUs)", file=sys.stderr, flush=True)
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            t = pending.pop(done[0])
            try:
                rows = ray.get(done[0])
            except ray.exceptions.RayTaskError:  # an exception in the task's own code: its traceback is the news
                raise
            except ray.exceptions.RayError as e:  # the worker (or its node) died, on the retry too
                raise TaskFailed(task_failed_message(t, e, ck)) from None
            _add(ck, t, rows)
    finally:
        if started:
            ray.shutdown()
    return len(todo)


def task_failed_message(t: Task, e: BaseException, ck: RowCheckpoint) -> str:
    """One line: which task failed, Ray's reason (its first line), and how to continue."""
    reason = (str(e).strip().splitlines() or [""])[0][:200]
    where = (f"the {len(ck.rows)} finished row(s) are saved in {ck.path}; rerun with --resume to continue"
             if ck.path is not None else "no --out was given, so nothing was saved; rerun to start over")
    return (f"{ck.name}: task {t.label or t.fn.__name__} failed on Ray after its retry "
            f"({type(e).__name__}: {reason}); {where}")
