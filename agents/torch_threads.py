"""Torch's CPU threads for the trainers: a default that holds up when another process holds a core.

Torch's OpenMP threads spin while they wait for each other, so with every core in use and one core
taken by another process they collapse (``benchmarks/results/ppo.json``, 2 cores, vector PPO, E = 256,
N = 10: 44k agent-steps/s with 2 threads against 89k with 1). With ``OMP_WAIT_POLICY=PASSIVE`` they sleep
instead: 2 threads then ran 85k beside the busy core and 117k on the idle machine (1 thread: 89k and 90k;
spinning threads 133k idle). A bounded spin does not get both: ``GOMP_SPINCOUNT`` 10^4 and 10^5 ran 121k and
129k idle but 50k and 28k beside the busy core (a one-off probe, 2 threads).
The OpenMP runtime reads the policy once, when torch loads, so ``p2penv.agents`` sets it (unless it is
set already) on import, before any of its modules imports torch. ``"auto"`` then means every core where
the policy is passive, and 1 thread where torch was loaded before the policy could be set.
"""
from __future__ import annotations

import os
import sys

WAIT_POLICY = "OMP_WAIT_POLICY"


def _set_wait_policy() -> bool:
    """Set ``OMP_WAIT_POLICY=PASSIVE`` unless set; return whether torch's OpenMP threads wait passively."""
    given = os.environ.get(WAIT_POLICY)
    if given is not None:  # the user's choice, assumed made before torch loaded
        return given.strip().upper() == "PASSIVE"
    if "torch" in sys.modules:  # too late: the runtime has read its policy (active by default)
        return False
    os.environ[WAIT_POLICY] = "PASSIVE"
    return True


PASSIVE_WAIT = _set_wait_policy()


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity where the OS reports it, else ``os.cpu_count()``)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def resolve_threads(n: int | str | None) -> int | None:
    """A trainer's ``torch_threads``: ``"auto"`` -> every core (``available_cores()``) where ``PASSIVE_WAIT``,
    else 1; an int as given; None: leave torch's setting."""
    if n == "auto":
        return available_cores() if PASSIVE_WAIT else 1
    if n is not None and (not isinstance(n, int) or isinstance(n, bool) or n < 1):
        raise ValueError(f"torch_threads: must be 'auto', an int >= 1 or None, got {n!r}")
    return n


def set_torch_threads(n: int | str | None) -> int | None:
    """``torch.set_num_threads(resolve_threads(n))`` (None: leave torch's setting); returns the count set."""
    k = resolve_threads(n)
    if k is not None:
        import torch

        torch.set_num_threads(k)
    return k
