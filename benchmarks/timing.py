"""Timing helpers shared by the benchmark scripts (medians of repeated blocks, perf_counter), and the
JSON writer they all end with."""
from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np


def median_rate(fn, n_inner: int, repeats: int = 7) -> float:
    """Median over ``repeats`` blocks of ``n_inner`` iterations per second of ``fn(n_inner)``."""
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(n_inner)
        rates.append(n_inner / (time.perf_counter() - t0))
    return float(np.median(rates))


def dict_only_steps_per_second(n_agents: int, n_obs: int, n_info_keys: int, n_steps: int = 3000) -> float:
    """Steps/s of a PettingZoo parallel step that only builds its five dicts (observations,
    rewards, terminations, truncations, per-agent infos with ``n_info_keys`` floats): the floor any
    environment of that size adds its work to."""
    agents = [f"prosumer_{i}" for i in range(n_agents)]
    obs = np.zeros((n_agents, n_obs), dtype=np.float32)
    keys = [f"k{j}" for j in range(n_info_keys)]
    rows = np.zeros((n_agents, n_info_keys)).tolist()

    def run(k):
        for _ in range(k):
            o = {a: obs[i] for i, a in enumerate(agents)}
            r = dict(zip(agents, obs[:, 0].tolist()))
            t = dict.fromkeys(agents, False)
            tr = dict.fromkeys(agents, False)
            inf = {a: dict(zip(keys, row)) for a, row in zip(agents, rows)}
            del o, r, t, tr, inf

    return median_rate(run, n_steps, 5)


def median_us(fn, items) -> float:
    """Median microseconds of ``fn(item)`` over ``items`` (one timing per call)."""
    ts = []
    for it in items:
        t0 = time.perf_counter()
        fn(it)
        ts.append(time.perf_counter() - t0)
    return float(np.median(ts) * 1e6)


def vector_stepper(vec, n_acts: int = 16, seed: int = 0):
    """``run(k)``: k steps of a (reset) vector env on ``n_acts`` pre-generated random joint actions,
    cycling; the action generation stays out of the timed loop."""
    shape = vec.action_space.shape
    acts = np.random.default_rng(seed).uniform(-1, 1, (n_acts,) + shape)
    vec.reset(seed=seed)
    state = {"i": 0}

    def run(k):
        i = state["i"]
        for _ in range(k):
            vec.step(acts[i % n_acts])
            i += 1
        state["i"] = i

    return run


def parallel_stepper(env, n_acts: int = 256, seed: int = 0, dtype=np.float32):
    """``run(k)``: k steps of a (reset) PettingZoo parallel env on ``n_acts`` pre-generated random
    joint actions (uniform in [-1, 1], as ``dtype``), cycling on from one call to the next and
    resetting at the end of an episode; the action generation stays out of the timed loop."""
    env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    acts = [{a: rng.uniform(-1, 1, env.action_space(a).shape).astype(dtype) for a in env.possible_agents}
            for _ in range(n_acts)]
    state = {"i": 0}

    def run(k):
        i = state["i"]
        for _ in range(k):
            if not env.agents:
                env.reset()
            env.step(acts[i % n_acts])
            i += 1
        state["i"] = i

    return run


def quick_flag(argv: list[str] | None, help: str) -> bool:
    """A script's one option, ``--quick`` (a smoke run: ``help`` says what it does), parsed from
    ``argv`` (None: no options)."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help=help)
    return ap.parse_args(argv if argv is not None else []).quick


def write_json(path: str, data: dict, quick: bool = False, echo: bool = True, **dump_kw) -> str:
    """Write ``data`` as indented JSON to ``path`` (to ``*_quick.json`` for a ``--quick`` smoke run, so
    the full numbers stay), through a ``.tmp`` file and ``os.replace``; print it too if ``echo``.
    Returns the path written."""
    if quick:
        path = path.replace(".json", "_quick.json")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as fh:
        json.dump(data, fh, indent=2, **dump_kw)
    os.replace(tmp, path)
    if echo:
        print(json.dumps(data, indent=2, **dump_kw))
    return path
