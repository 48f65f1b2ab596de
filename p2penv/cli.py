"""Command line: ``p2penv train | evaluate | experiment NAME | bench``.

    p2penv train --steps 2000000 --out runs/ppo [--resume]   # the validated vector PPO (256 markets)
    p2penv train --algo ppo --num-envs 64 [--critic central] --mode independent --steps 2000000
    p2penv train --algo ppo --sb3 --steps 20000 --out runs/sb3   # stable-baselines3 PPO on the single env
    p2penv train --algo rllib_ppo --mode independent --scenario dlmp_v0/teaching4-v0 --steps 288  # RLlib PPO
    p2penv train --config run.json        # {"env": {...MarketConfig...}, "algo": ..., "train": {...}}
    p2penv evaluate runs/ppo --episodes 3
    p2penv experiment market_power --quick --out results/mp [--resume]   # NAME --help: its own options
    p2penv bench [--quick] [--only vector scaling] [--adapters]

Every output is written atomically; ``train --resume`` continues from the last checkpoint in
``--out`` (SB3: model + replay buffer + step counter; Q-learning: Q-tables + rng state + t).
``train`` runs the env once (reset + one truthful step) before it writes anything to ``--out``.
Bad input (options, config files, run folders) and a missing pip extra end with one line
``p2penv CMD: error: ...`` on stderr naming the file, field or extra, and exit status 2; a mistyped
command, choice or option gets the closest match suggested.
"""
from __future__ import annotations

import argparse
import dataclasses
import difflib
import importlib
import importlib.util
import json
import os
import re
import sys
import time
from contextlib import nullcontext, redirect_stderr
from pathlib import Path
from typing import Any, Callable

EXPERIMENTS = ("market_power", "algorithm_benchmark", "mechanism_comparison", "collusion_probe", "demo",
               "local_market_power", "scenario_baselines", "exploitability_study", "p2p_feeder")
ENVS = ("auction_v0", "dlmp_v0")
ALGOS = ("ppo", "sac", "qlearning", "rllib_ppo")
MODES = ("shared", "independent")
SPEC_KEYS = ("env", "algo", "mode", "sellers", "seed", "train")
RECORD_KEYS = ("env_config",)  # written to run.json for the record; ignored when it is read back as --config
# what `train` uses when neither an option nor the --config file says
DEFAULT_ENV, DEFAULT_ALGO, DEFAULT_MODE, DEFAULT_SEED = "auction_v0", "ppo", "shared", 0
# algo "ppo" trains the validated vector PPO (p2penv.agents.vector_ppo, docs/learner_validation.md) on this
# many markets unless --num-envs or --sb3 says otherwise (VectorPPOConfig.num_envs; a test keeps them equal)
DEFAULT_NUM_ENVS = 256

# pip extra that provides a top-level module (pyproject.toml [project.optional-dependencies])
EXTRA_OF = {"torch": "train", "stable_baselines3": "train", "tensorboard": "train", "supersuit": "train",
            "tqdm": "train", "ray": "ray", "torchrl": "torchrl", "benchmarl": "benchmarl", "pvlib": "profiles",
            "demandlib": "profiles", "pandas": "profiles", "pandapower": "test"}
# experiments that train torch policies (PPO): they need the train extra before they write anything
EXPERIMENT_EXTRAS = {"market_power": ("torch",), "algorithm_benchmark": ("torch",), "demo": ("torch",),
                     "scenario_baselines": ("torch",), "exploitability_study": ("torch",)}


class UsageError(Exception):
    """Bad input (option, config file, run folder) or a missing pip extra: ``main`` prints
    ``p2penv CMD: error: MSG`` as one line on stderr and exits with status 2, like argparse."""


def installed(module: str) -> bool:
    """``module`` (dotted names too) can be imported, checked without importing it or its package."""
    top, _, rest = module.partition(".")
    spec = importlib.util.find_spec(top)
    if spec is None or not rest:
        return spec is not None
    return any(Path(loc, *rest.split(".")).exists() for loc in spec.submodule_search_locations or ())


def missing_extra(module: str, what: str, extra: str | None = None) -> UsageError:
    """The one-line error for a module that is not installed: which pip extra brings it."""
    extra = extra or EXTRA_OF[module.partition(".")[0]]
    return UsageError(f"{what} needs the '{extra}' extra (no module {module!r}): pip install 'p2penv[{extra}]'")


def require(modules, what: str, extra: str | None = None) -> None:
    """UsageError naming the pip extra of the first of ``modules`` that is not installed."""
    for m in modules:
        if not installed(m):
            raise missing_extra(m, what, extra)


def _read_json(path: Path, what: str) -> Any:
    """JSON content of ``path``; UsageError naming the file when it is missing or not valid JSON."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise UsageError(f"{path}: missing ({what})") from None
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"{path}: cannot read {what} ({e})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise UsageError(f"{path}: invalid JSON ({e.msg} at line {e.lineno}, column {e.colno})") from None


def _env_fn(env_opts: dict, sellers: int | None, seed: int, vector: bool = False):
    import importlib

    opts = dict(env_opts)
    scenario_id = opts.pop("scenario_id", None)
    if scenario_id is not None:  # a registered, versioned scenario (p2penv.list_scenarios())
        import p2penv

        try:
            p2penv.get_spec(scenario_id)  # a clear error for an unknown id before anything runs
        except ValueError as e:
            raise UsageError(str(e)) from None
        if sellers:
            raise UsageError("sellers: give either --scenario or --sellers")
        opts.pop("name", None)
        opts.setdefault("seed", seed)
        if vector:
            return lambda num_envs, seed: p2penv.make_vector(scenario_id, num_envs, **dict(opts, seed=seed))
        return lambda: p2penv.make(scenario_id, **opts)
    name = opts.pop("name", DEFAULT_ENV)
    if name not in ENVS:
        raise UsageError(f"env: unknown {name!r}; known {ENVS}")
    mod = importlib.import_module(f"p2penv.{name}")
    opts.setdefault("seed", seed)
    if sellers:
        if name != "auction_v0":
            raise UsageError("sellers: the SellerBuyerMarket scenario exists for auction_v0 only")
        from p2penv.generators.sellers_buyers import SellerBuyerMarket

        opts["generator"] = SellerBuyerMarket(sellers)
        opts.setdefault("n_prosumers", sellers + 3)
    if vector:  # env_fn(num_envs, seed) of agents.vector_ppo
        return lambda num_envs, seed: mod.vector_env(num_envs, **dict(opts, seed=seed))
    return lambda: mod.parallel_env(**opts)


def _check_env(env_fn, spec: dict):
    """Build the env, reset it and play one truthful step; returns the env. A failure is a
    UsageError naming the env options (nothing has been written yet)."""
    from p2penv.agents.baselines import TruthfulAgent
    from p2penv.agents.rollout import Assigned

    try:
        env = env_fn()
        obs, _ = env.reset(seed=spec["seed"])
        env.step(Assigned(TruthfulAgent(env.config))(env, obs))
    except Exception as e:  # noqa: BLE001 - any failure here is reported as a bad env config
        sel = f", sellers={spec['sellers']}" if spec["sellers"] else ""
        raise UsageError(f"env {spec['env']}{sel}: does not run ({type(e).__name__}: {e})") from None
    return env


def _load_spec(a) -> dict:
    spec = {}
    if a.config:
        spec = _read_json(Path(a.config), "the --config file")
        if not isinstance(spec, dict):
            raise UsageError(f"{a.config}: expected a JSON object with keys {', '.join(SPEC_KEYS)}")
        bad = sorted(set(spec) - set(SPEC_KEYS) - set(RECORD_KEYS))  # a run.json works as --config
        if bad:
            raise UsageError(f"{a.config}: unknown key(s) {bad}; known {', '.join(SPEC_KEYS)}")
    env = dict(spec.get("env", {}))
    if getattr(a, "env", None) is not None:
        env["name"] = a.env
    if getattr(a, "scenario", None) is not None:
        env["scenario_id"] = a.scenario
    if a.n_prosumers is not None:
        env["n_prosumers"] = a.n_prosumers
    if a.mechanism is not None:
        env["mechanism"] = a.mechanism
    train = dict(spec.get("train", {}))
    for k, v in dict(total_steps=a.steps, checkpoint_every=a.checkpoint_every, num_envs=getattr(a, "num_envs", None),
                     critic=getattr(a, "critic", None)).items():
        if v is not None:
            train[k] = v
    if a.tensorboard:
        train["tensorboard"] = True
    if getattr(a, "nash_conv_every", None) is not None:  # SB3: nash_conv_every; vector PPO: eval_every
        train["eval_every" if "num_envs" in train else "nash_conv_every"] = a.nash_conv_every
    if a.progress is not None:  # --progress / --no-progress; unset: decided at train time (see with_progress)
        train["progress"] = a.progress
    if getattr(a, "torch_threads", None) is not None:
        train["torch_threads"] = a.torch_threads
    seed = a.seed if a.seed is not None else spec.get("seed", DEFAULT_SEED)
    train["seed"] = seed
    algo = a.algo or spec.get("algo", DEFAULT_ALGO)
    _choose_ppo_trainer(train, algo, sb3=bool(getattr(a, "sb3", False)), where=a.config or "options")
    out = dict(env=env, algo=algo, mode=a.mode or spec.get("mode", DEFAULT_MODE),
               sellers=a.sellers if a.sellers is not None else spec.get("sellers"), seed=seed, train=train)
    _check_spec(out, a.config or "options")
    return out


def _choose_ppo_trainer(train: dict, algo: str, sb3: bool, where: str | Path) -> None:
    """Which PPO trains (in place on ``train``): the validated vector PPO by default (``num_envs`` set to
    ``DEFAULT_NUM_ENVS`` unless given), or stable-baselines3's PPO on the single env with ``--sb3`` (recorded
    as ``train["sb3"] = true`` so that the run.json replays it). SB3 PPO failed the learner validation (see
    docs/learner_validation.md); it stays for compatibility and for comparison."""
    sb3 = sb3 or bool(train.get("sb3"))
    if not sb3:
        train.pop("sb3", None)
        if algo == "ppo":
            train.setdefault("num_envs", DEFAULT_NUM_ENVS)
        return
    if algo != "ppo":
        raise UsageError(f"{where}: --sb3 selects stable-baselines3's PPO; it goes with algo 'ppo', got {algo!r}")
    if "num_envs" in train:
        raise UsageError(f"{where}: --sb3 and num_envs: SB3 PPO trains on the single env; drop one of them")
    train["sb3"] = True


def _check_spec(spec: dict, where: str | Path) -> None:
    """UsageError naming ``where`` and the field when a run spec is malformed."""
    if not isinstance(spec, dict):
        raise UsageError(f"{where}: expected a JSON object with keys {', '.join(SPEC_KEYS)}")
    missing = [k for k in SPEC_KEYS if k not in spec]
    if missing:
        raise UsageError(f"{where}: missing key(s) {missing}")
    for k, ok, want in (("env", isinstance(spec["env"], dict), "an object of env options"),
                        ("train", isinstance(spec["train"], dict), "an object of trainer options"),
                        ("algo", spec["algo"] in ALGOS, f"one of {ALGOS}"),
                        ("mode", spec["mode"] in MODES, f"one of {MODES}"),
                        ("seed", isinstance(spec["seed"], int), "an integer"),
                        ("sellers", spec["sellers"] is None or (isinstance(spec["sellers"], int) and spec["sellers"] > 0),
                         "a positive integer or null")):
        if not ok:
            raise UsageError(f"{where}: {k}: expected {want}, got {spec[k]!r}")


def _trainer_config(spec: dict, where: str | Path):
    """QConfig or SB3Config of a spec; UsageError naming ``where`` on a bad option."""
    try:
        if spec["algo"] == "qlearning":
            from p2penv.agents.qlearning import QConfig

            return QConfig.from_dict(spec["train"])
        if spec["algo"] == "rllib_ppo":
            return _rllib_config(spec, where)
        if "num_envs" in spec["train"]:  # torch PPO on the vector env (agents.vector_ppo)
            if spec["algo"] != "ppo":
                raise ValueError(f"num_envs: the vector-env trainer is PPO only, got algo {spec['algo']!r}")
            from p2penv.agents.vector_ppo import VectorPPOConfig

            sellers = spec["sellers"]
            learners = dict(learners=[f"prosumer_{i}" for i in range(sellers)]) if sellers else {}
            return VectorPPOConfig.from_dict(dict(spec["train"], mode=spec["mode"], **learners))
        from p2penv.agents.sb3_shared import SB3Config

        return SB3Config.from_dict({**{k: v for k, v in spec["train"].items() if k != "sb3"}, "algo": spec["algo"]})
    except (TypeError, ValueError) as e:
        raise UsageError(f"{where}: train: {e}") from None


def _rllib_config(spec: dict, where: str | Path):
    """RLlibPPOConfig of an ``rllib_ppo`` spec: ``mode`` -> ``policies``; ``train.total_steps`` (--steps)
    -> ``iterations``: enough iterations of ``train_batch_size`` agent-steps to sample that many."""
    import dataclasses

    from p2penv.agents.rllib_ppo import RLlibPPOConfig, iterations_for

    if spec["sellers"]:
        raise UsageError(f"{where}: sellers: algo 'rllib_ppo' trains every agent; use --n-prosumers or --scenario "
                         "(e.g. auction_v0/sellers3-v0)")
    tr = dict(spec["train"])
    bad = sorted(k for k in ("checkpoint_every", "num_envs", "critic", "tensorboard", "progress", "policies",
                             "torch_threads") if k in tr)
    if bad:
        raise ValueError(f"{bad[0]}: not an option of algo 'rllib_ppo' (policies: use mode)")
    total = tr.pop("total_steps", None)
    cfg = RLlibPPOConfig.from_dict(dict(tr, policies=spec["mode"]))
    return cfg if total is None else dataclasses.replace(cfg, iterations=iterations_for(total, cfg.train_batch_size))


def _rllib_env(spec: dict) -> tuple[str, dict]:
    """(env name or scenario id, env options with the run's seed) of an ``rllib_ppo`` spec."""
    opts = dict(spec["env"])
    scenario_id = opts.pop("scenario_id", None)
    name = opts.pop("name", DEFAULT_ENV)
    opts.setdefault("seed", spec["seed"])
    return scenario_id or name, opts


def _model_algo(path: Path) -> str | None:
    """'ppo' or 'sac' from the data of a stable-baselines3 model file (None: neither)."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as z:
            data = json.loads(z.read("data"))
    except (OSError, zipfile.BadZipFile, KeyError, ValueError) as e:
        raise UsageError(f"{path}: not a stable-baselines3 model file ({e})") from None
    return "sac" if "tau" in data else "ppo" if "clip_range" in data else None


def _check_resume(out: Path, spec: dict) -> None:
    """``--resume`` into ``out``: the folder must exist, the saved run must have the same env, algo, mode
    and sellers, and the checkpoint it continues from must load."""
    if not out.is_dir():
        raise UsageError(f"--resume: {out}: no such folder, so nothing to resume; drop --resume to start a new run")
    prev_path = out / "run.json"
    prev = _read_json(prev_path, "the spec of the run to resume") if prev_path.exists() else spec
    diff = [k for k in ("env", "algo", "mode", "sellers") if not isinstance(prev, dict) or prev.get(k) != spec[k]]
    if diff:
        saved = ", ".join(f"{k}={prev.get(k)!r}" for k in diff) if isinstance(prev, dict) else repr(prev)
        asked = ", ".join(f"{k}={spec[k]!r}" for k in diff)
        raise UsageError(f"--resume: {prev_path} was trained with {saved}, this run asks for {asked}; "
                         "resume with the same options or use a new --out")
    model = out / "model.zip"
    if spec["algo"] != "qlearning" and spec["mode"] == "shared" and model.is_file():
        saved = _model_algo(model)
        if saved is not None and saved != spec["algo"]:
            raise UsageError(f"--resume: {model} is a {saved} model, this run asks for algo={spec['algo']!r}")
    _check_checkpoint(out, spec)


def _check_checkpoint(out: Path, spec: dict) -> None:
    """UsageError naming the file when the checkpoint ``--resume`` would continue from does not load
    (a truncated write, a file from elsewhere): the trainer would fail deep inside torch or pickle."""
    if spec["algo"] == "qlearning":
        path, load = out / "checkpoint.pkl", _load_pickle
    elif "num_envs" in spec["train"]:
        path, load = out / "model.pt", _load_torch
    else:
        return  # SB3's model.zip is checked by _model_algo
    if path.is_file():
        try:
            load(path)
        except Exception as e:  # noqa: BLE001 - one line naming the file instead of a library traceback
            reason = (str(e).strip().splitlines() or [""])[0][:200]
            raise UsageError(f"--resume: {path}: cannot load ({type(e).__name__}: {reason}); delete it to start "
                             "over, or train into a new --out") from None


def _load_torch(path: Path) -> None:
    import torch

    torch.load(path, map_location="cpu", weights_only=True)


def _load_pickle(path: Path) -> None:
    import pickle

    with open(path, "rb") as f:
        pickle.load(f)


def config_record(x: Any) -> Any:
    """JSON-able record of a config value: a dataclass becomes ``{"class": module.Name, field: ...}``
    (recursively), numpy values and arrays plain numbers and lists, tuples lists; any other object
    ``{"class": ..., "repr": repr(obj)}``."""
    import dataclasses

    import numpy as np

    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        rec = {"class": f"{type(x).__module__}.{type(x).__qualname__}"}
        rec.update({f.name: config_record(getattr(x, f.name)) for f in dataclasses.fields(x)})
        return rec
    if x is None or isinstance(x, (str, bool, int, float)):
        return x
    if isinstance(x, (np.generic, np.ndarray)):
        return x.tolist()
    if isinstance(x, (list, tuple)):
        return [config_record(v) for v in x]
    if isinstance(x, dict):
        return {str(k): config_record(v) for k, v in x.items()}
    return {"class": f"{type(x).__module__}.{type(x).__qualname__}", "repr": repr(x)}


def env_record(env) -> dict:
    """``run.json["env_config"]``: the env's name and its resolved config, every field of its
    ``MarketConfig`` (dlmp_v0: ``DlmpConfig``) with defaults filled in, the scenario generator's
    parameters (e.g. ``SellerBuyerMarket(n_sellers, capacity_ratio, demand_kw, a0, b, buyer_values)``)
    and the seed included. For the record: the run is rebuilt from ``run.json["env"]`` + ``sellers``."""
    return {"name": env.metadata.get("name"), **config_record(env.config)}


def _needs(spec: dict, training: bool) -> tuple[list[str], str | None]:
    """(modules, extra) a run of ``spec`` imports: torch and SB3 (train), Ray's RLlib (rllib); training also
    tensorboard and the progress bar's tqdm when asked for."""
    tr = spec["train"]
    if spec["algo"] == "rllib_ppo":
        return ["ray", "ray.rllib", "torch"], "rllib"
    mods = []
    if spec["algo"] in ("ppo", "sac"):
        mods += ["torch"] if "num_envs" in tr else ["torch", "stable_baselines3"]
    if training:
        mods += ["tensorboard"] * bool(tr.get("tensorboard")) + ["tqdm"] * bool(tr.get("progress"))
    return mods, None


def with_progress(cfg, spec: dict):
    """(cfg, lines): the trainer config with its ``progress`` decided, and whether to print it as lines.
    --progress / --no-progress as given; neither: on when tqdm is installed. A bar when stderr is a
    terminal, else a line per update (``ProgressLines``). RLlib's trainer has no progress option."""
    if not any(f.name == "progress" for f in dataclasses.fields(cfg)):
        return cfg, False
    on = spec["train"].get("progress")
    on = installed("tqdm") if on is None else bool(on)
    return dataclasses.replace(cfg, progress=on), on and not sys.stderr.isatty()


class ProgressLines:
    """stderr for a progress bar when stderr is not a terminal (a log file, CI): each of tqdm's
    carriage-return refreshes becomes a line of its own, at most one per ``interval`` seconds plus the
    last, so a log gets about a line per policy update instead of one endless line. Other text passes
    through. No ``encoding`` attribute, so tqdm draws its bar in ASCII."""

    def __init__(self, stream, interval: float = 1.0, clock: Callable[[], float] = time.monotonic):
        self.stream, self.interval, self.clock = stream, interval, clock
        self._pending, self._last, self._in_bar = "", -float("inf"), False

    def write(self, text: str) -> int:
        if "\r" in text:  # a bar refresh: "\r" + status (+ padding)
            status = text.rsplit("\r", 1)[1].rstrip()
            self._pending = status or self._pending
            self._in_bar = True
            if self._pending and self.clock() - self._last >= self.interval:
                self._emit()
        elif self._in_bar and text == "\n":  # the bar closes: its last state is the line
            self._emit()
            self._in_bar = False
        else:
            self._emit()
            self._in_bar = False
            self.stream.write(text)
        return len(text)

    def _emit(self) -> None:
        if self._pending:
            self.stream.write(self._pending + "\n")
            self._pending, self._last = "", self.clock()

    def flush(self) -> None:
        self._emit()
        self.stream.flush()


def cmd_train(a) -> int:
    from p2penv.agents.baselines import TruthfulAgent
    from p2penv.agents.checkpoint import atomic_write_json

    spec = _load_spec(a)
    out = Path(a.out)
    # everything is checked before run.json (or anything else) is written
    mods, extra = _needs(spec, training=True)
    require(mods, f"algo {spec['algo']!r}", extra)
    f = _env_fn(spec["env"], spec["sellers"], spec["seed"])
    env = _check_env(f, spec)
    cfg, lines = with_progress(_trainer_config(spec, a.config or "options"), spec)
    learners = [f"prosumer_{i}" for i in range(spec["sellers"])] if spec["sellers"] else None
    others = TruthfulAgent(env.config)
    if a.resume:
        _check_resume(out, spec)
    atomic_write_json(out / "run.json", dict(spec, env_config=env_record(env)))
    # SB3 makes an (empty) log folder tempdir/SB3-<time> per model unless told where: the run's own folder
    os.environ.setdefault("SB3_LOGDIR", str(out))
    with redirect_stderr(ProgressLines(sys.stderr)) if lines else nullcontext():
        return _train(spec, cfg, f, env, out, learners, others, a.resume)


def _train(spec: dict, cfg, f, env, out: Path, learners, others, resume: bool) -> int:
    """Run the trainer of ``spec`` (everything is checked and run.json written)."""
    if spec["algo"] == "qlearning":
        from p2penv.agents.qlearning import QLearners

        q = QLearners(f, cfg, learners=learners, env_seed=spec["seed"])
        res = q.train(out, resume=resume)
        print(f"qlearning: t={res.t} state={res.state_kind} converged={res.converged.tolist()} -> {out}")
        return 0
    if spec["algo"] == "rllib_ppo":  # RLlib PPO, every agent learns (agents.rllib_ppo)
        from p2penv.agents.rllib_ppo import result_summary, train_rllib_ppo

        r = train_rllib_ppo(*_rllib_env(spec), cfg, out, resume=resume)
        print(f"rllib_ppo/{spec['mode']}: {result_summary(r)} -> {out}")
        return 0
    if "num_envs" in spec["train"]:  # torch PPO on the vector env; with --sellers only the sellers learn
        from p2penv.agents.market_log import eval_nash_conv, supports_market_power
        from p2penv.agents.vector_ppo import train_vector_ppo

        evaluator = None
        if cfg.eval_every and supports_market_power(env):
            names = list(env.possible_agents)
            players = [names.index(n) for n in (learners or names)]
            evaluator = lambda pol: dict(nash_conv=eval_nash_conv(f(), pol.joint(others), seed=spec["seed"],  # noqa: E731
                                                                  players=players))
        r = train_vector_ppo(_env_fn(spec["env"], spec["sellers"], spec["seed"], vector=True), cfg, out,
                             resume=resume, others=others, evaluator=evaluator)
    else:
        if spec["mode"] == "shared":
            from p2penv.agents.sb3_shared import train_shared as train
        else:
            from p2penv.agents.independent import train_independent as train
        r = train(f, cfg, out, learners=learners, others=others, resume=resume)
    print(f"{spec['algo']}/{spec['mode']}: {r.num_timesteps} agent-steps, {r.steps_per_s:.0f} steps/s -> {out}")
    return 0


def _run_spec(run_dir: Path) -> dict:
    """The checked ``run.json`` of a ``train`` output folder."""
    if not run_dir.is_dir():
        raise UsageError(f"{run_dir}: no such run folder (the --out of p2penv train)")
    path = run_dir / "run.json"
    spec = _read_json(path, "written by p2penv train; is this a train output folder?")
    _check_spec(spec, path)
    return spec


def _load_shared(folder: Path, algo: str, run_json: Path):
    """SharedPolicy of ``folder`` after checking policy.json and model.zip (UsageError naming the file)."""
    from p2penv.agents.sb3_shared import SharedPolicy

    meta_path, model = folder / "policy.json", folder / "model.zip"
    meta = _read_json(meta_path, "written by p2penv train when training finishes")
    if not isinstance(meta, dict) or meta.get("algo") not in ("ppo", "sac") \
            or not isinstance(meta.get("pad"), bool) or not isinstance(meta.get("max_dim"), int):
        raise UsageError(f'{meta_path}: expected {{"algo": "ppo" | "sac", "pad": bool, "max_dim": int}}, got {meta!r}')
    if meta["algo"] != algo:
        raise UsageError(f"{meta_path}: algo {meta['algo']!r} differs from algo {algo!r} in {run_json}")
    if not model.is_file():
        raise UsageError(f"{model}: missing (written by p2penv train when training finishes; "
                         "rerun train with --resume to finish it)")
    saved = _model_algo(model)
    if saved is not None and saved != algo:
        raise UsageError(f"{model}: a {saved} model, but {meta_path} says algo {algo!r}")
    try:
        return SharedPolicy.load(folder)
    except Exception as e:  # noqa: BLE001 - one line naming the file instead of a library traceback
        raise UsageError(f"{model}: cannot load ({type(e).__name__}: {e})") from None


def load_policy(run_dir: Path, env_fn, spec: dict | None = None):
    """Joint policy of a finished ``train`` run folder and its spec; UsageError naming the file
    when something in the folder is missing, malformed or inconsistent."""
    from p2penv.agents.baselines import TruthfulAgent
    from p2penv.agents.rollout import Assigned

    spec = _run_spec(run_dir) if spec is None else spec
    run_json = run_dir / "run.json"
    truth = TruthfulAgent(env_fn().config)
    if spec["algo"] == "qlearning":
        from p2penv.agents.qlearning import QLearners

        ck = run_dir / "checkpoint.pkl"
        if not ck.is_file():
            raise UsageError(f"{ck}: missing (the Q-tables written by p2penv train)")
        learners = [f"prosumer_{i}" for i in range(spec["sellers"])] if spec["sellers"] else None
        q = QLearners(env_fn, _trainer_config(spec, run_json), learners=learners, env_seed=spec["seed"])
        try:
            q.load(ck)
        except Exception as e:  # noqa: BLE001
            raise UsageError(f"{ck}: cannot load ({type(e).__name__}: {e})") from None
        return q.policy(0), spec
    if spec["algo"] == "rllib_ppo":
        from p2penv.agents.rllib_ppo import RLlibPolicy

        try:
            return RLlibPolicy.load(run_dir), spec
        except Exception as e:  # noqa: BLE001 - one line naming the folder instead of a library traceback
            raise UsageError(f"{run_dir}: cannot load the rllib_ppo policy ({type(e).__name__}: {e})") from None
    if "num_envs" in spec["train"]:
        from p2penv.agents.vector_ppo import VectorPolicy

        model = run_dir / "model.pt"
        if not model.is_file():
            raise UsageError(f"{model}: missing (written by p2penv train --num-envs)")
        try:
            return VectorPolicy.load(model).joint(truth), spec  # truthful non-learners (--sellers)
        except Exception as e:  # noqa: BLE001 - one line naming the file instead of a library traceback
            raise UsageError(f"{model}: cannot load ({type(e).__name__}: {e})") from None
    if spec["mode"] == "independent":
        from p2penv.agents.independent import IndependentPolicy

        names_path = run_dir / "policy" / "agents.json"
        names = _read_json(names_path, "written by p2penv train when training finishes")
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise UsageError(f"{names_path}: expected a list of agent names, got {names!r}")
        pols = {n: _load_shared(run_dir / "policy" / n, spec["algo"], run_json) for n in names}
        return IndependentPolicy(pols).joint(truth), spec
    p = _load_shared(run_dir / "policy", spec["algo"], run_json)
    names = [f"prosumer_{i}" for i in range(spec["sellers"])] if spec["sellers"] else env_fn().possible_agents
    return Assigned({a: p for a in names}, default=truth), spec


def cmd_evaluate(a) -> int:
    from p2penv.agents.checkpoint import atomic_write_json
    from p2penv.experiments.metrics import evaluate

    run = Path(a.run)
    spec = _run_spec(run)
    mods, extra = _needs(spec, training=False)
    require(mods, f"evaluating algo {spec['algo']!r}", extra)
    seed = a.seed if a.seed is not None else spec["seed"]
    f = _env_fn(spec["env"], spec["sellers"], seed)
    pol, _ = load_policy(run, f, spec)
    ns = spec["sellers"]
    auction = f().metadata["name"] == "auction_v0"  # stage-game NashConv: auction_v0 only
    res = evaluate(f, pol, seed=seed, n_sellers=ns, episodes=a.episodes, nash_players=range(ns) if ns else None,
                   nash_conv=auction)
    atomic_write_json(run / "eval.json", dict(seed=seed, episodes=a.episodes, **res))
    print(evaluation_table(res, auction, a.episodes, seed))
    return 0


# metric -> (unit, meaning) for ``p2penv evaluate``; means over the evaluated episodes
EVAL_METRICS = {
    "price": ("$/kWh", "mean clearing price (dlmp_v0: the substation's energy price)"),
    "comp_price": ("$/kWh", "competitive (S1) price of the same steps"),
    "markup": ("$/kWh", "price - competitive price"),
    "markup_rel": ("-", "markup / competitive price"),
    "lerner": ("-", "sellers' share-weighted (P - MC) / P"),
    "hhi": ("-", "Herfindahl index of the sellers' sold volumes"),
    "welfare": ("$/episode", "gains from trade against every buyer importing at retail"),
    "welfare_comp": ("$/episode", "the same under the competitive benchmark"),
    "welfare_loss": ("$/episode", "welfare_comp - welfare"),
    "welfare_loss_rel": ("-", "welfare_loss / welfare_comp"),
    "profit": ("$/episode", "mean profit per learning seller (per agent when every agent learns)"),
    "profit_all": ("$/episode", "summed profit of all agents"),
    "nash_conv": ("$/step", "stage-game NashConv: what unilateral deviations would gain, summed"),
}


def evaluation_table(res: dict, auction: bool, episodes: int, seed: int) -> str:
    """Labelled table of ``p2penv evaluate``, with a line for each metric that does not apply."""
    rows = [f"{'metric':<17} {'value':>12}  {'unit':<10} meaning", "-" * 96]
    notes = []
    for k, v in res.items():
        unit, meaning = EVAL_METRICS.get(k, ("", ""))
        rows.append(f"{k:<17} {v:>12.6g}  {unit:<10} {meaning}")
    nan = [k for k, v in res.items() if v != v]
    if nan:
        notes.append(f"{', '.join(nan)}: nan, " + ("not defined on this run (no trade, or a zero competitive price)"
                                                  if auction else "seller markups against the auction's competitive "
                                                  "price do not apply to DLMPs; see p2penv.diagnostics."
                                                  "local_market_power"))
    if not auction:
        notes.append("nash_conv: not computed on dlmp_v0 (its exact best response is a MILP per agent: "
                     "p2penv.diagnostics.feeder_equilibrium)")
    head = f"evaluation over {episodes} episode(s) from seed {seed}; means over episodes"
    return "\n".join([head] + rows + [""] * bool(notes) + notes)


def experiment_summary(name: str) -> str:
    """The first paragraph of an experiment module's docstring (cut at 100 characters), read from its
    source: importing the module would import torch for most of them."""
    import ast

    spec = importlib.util.find_spec(f"p2penv.experiments.{name}")
    try:
        doc = ast.get_docstring(ast.parse(Path(spec.origin).read_text()))
    except (AttributeError, OSError, SyntaxError, TypeError):
        doc = None
    para = " ".join((doc or "").strip().split("\n\n")[0].split()).replace("``", "").replace("`", "")
    return para if len(para) <= 100 else para[:97].rsplit(" ", 1)[0] + " ..."


def cmd_experiment(a) -> int:
    """``p2penv experiment NAME ARGS``: the experiment's own command line (``--help`` lists its options)."""
    require(EXPERIMENT_EXTRAS.get(a.name, ()), f"experiment {a.name!r}")
    if "--ray" in a.args or any(x.startswith("--ray=") for x in a.args):
        require(["ray"], "--ray")
    mod = importlib.import_module(f"p2penv.experiments.{a.name}")
    mod.main(list(a.args), prog=f"p2penv experiment {a.name}")
    return 0


def benchmarks_package(name: str = "p2penv_benchmarks"):
    """The repository's ``benchmarks/`` folder imported by file path as the package ``name``.

    TorchRL installs a top-level ``benchmarks`` package of its own, so ``import benchmarks`` finds
    whichever comes first on sys.path; loading ours from its file under a name nobody else uses works
    from any folder and any venv of an editable install (a wheel has no benchmarks: UsageError).
    """
    if name in sys.modules:
        return sys.modules[name]
    folder = Path(__file__).resolve().parents[1] / "benchmarks"
    init = folder / "__init__.py"
    if not init.is_file():
        raise UsageError(f"the benchmark scripts live in the source tree ({folder} is missing): clone the "
                         "repository and pip install -e . there")
    spec = importlib.util.spec_from_file_location(name, init, submodule_search_locations=[str(folder)])
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def cmd_bench(a) -> int:
    pkg = benchmarks_package()
    run_all = importlib.import_module(f"{pkg.__name__}.run_all")
    argv = (["--quick"] * a.quick + (["--only", *a.only] if a.only else []) + (["--out", a.out] if a.out else [])
            + ["--list"] * a.list)
    if a.adapters:
        require(["torch", "supersuit"], "--adapters")
    scripts = not (a.adapters and a.only == [])  # `--adapters --only`: the adapter timing alone
    rc = run_all.main(argv) if scripts else 0
    if a.adapters:
        from p2penv.agents.vec_adapter import adapter_steps_per_s
        from p2penv import auction_v0

        for n in (1, 4):
            r = adapter_steps_per_s(lambda: auction_v0.parallel_env(n_prosumers=6, seed=0), n, a.steps)
            print(f"copies={n}: " + ", ".join(f"{k} {v:.0f} agent-steps/s" for k, v in r.items()))
    return rc


# -- command line --------------------------------------------------------------------------------------
class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """argparse's defaults in --help, except the uninformative ones (None: see the option's text; False
    of a flag)."""

    def _get_help_string(self, action):
        if action.default is None or action.default is False:
            return action.help or ""
        return super()._get_help_string(action)


def close_match(message: str, options: list[str]) -> str:
    """``"; did you mean 'X'?"`` for argparse's invalid-choice and unrecognized-argument errors."""
    m = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
    if m:
        word, known = m[1], re.findall(r"'([^']*)'", m[2]) or [c.strip() for c in m[2].split(",")]
    else:
        m = re.search(r"unrecognized arguments: (\S+)", message)
        if not m or not m[1].startswith("-"):
            return ""
        word, known = m[1].split("=")[0], options
    best = difflib.get_close_matches(word, known, n=1, cutoff=0.6)
    return f"; did you mean {best[0]!r}?" if best else ""


class Parser(argparse.ArgumentParser):
    """argparse with defaults in --help (``HelpFormatter``), the closest match suggested on a typo, and
    help text filled in when it is shown (``help_defaults``: dest -> text, for defaults that would cost
    an import of torch on every call)."""

    def __init__(self, *args, help_defaults: Callable[[], dict[str, str]] | None = None, **kwargs):
        kwargs.setdefault("formatter_class", HelpFormatter)
        self.options: list[argparse.Action] = []  # every add_argument, for suggestions and help_defaults
        self.help_defaults = help_defaults
        super().__init__(*args, **kwargs)

    def add_argument(self, *args, **kwargs):
        action = super().add_argument(*args, **kwargs)
        self.options.append(action)
        return action

    def format_help(self) -> str:
        if self.help_defaults is not None:
            extra, self.help_defaults = self.help_defaults(), None
            for action in self.options:
                if extra.get(action.dest):
                    action.help = f"{action.help} ({extra[action.dest]})"
        return super().format_help()

    def error(self, message: str):
        names = [s for action in self.options for s in action.option_strings]
        super().error(message + close_match(message, names))


TRAINERS = (("SB3", "p2penv.agents.sb3_shared", "SB3Config"),
            ("vector PPO", "p2penv.agents.vector_ppo", "VectorPPOConfig"),
            ("Q-learning", "p2penv.agents.qlearning", "QConfig"))
TRAINER_OPTIONS = {"steps": "total_steps", "checkpoint_every": "checkpoint_every", "torch_threads": "torch_threads"}


def trainer_defaults() -> dict[str, str]:
    """``train --help``: the defaults of the options the trainers' config dataclasses decide, per trainer
    (imports torch and SB3, so it runs only when the help is shown)."""
    configs, missing = {}, []
    for label, module, cls in TRAINERS:
        try:
            config = getattr(importlib.import_module(module), cls)
            configs[label] = {f.name: f.default for f in dataclasses.fields(config)}
        except ImportError:
            missing.append(label)
    out = {}
    for dest, name in TRAINER_OPTIONS.items():
        parts = [f"{label} {c[name]}" for label, c in configs.items() if name in c]
        if missing:
            parts.append(f"{', '.join(missing)}: pip install 'p2penv[train]' to see")
        out[dest] = "default: " + "; ".join(parts) if parts else ""
    return out


def build_parser() -> Parser:
    import p2penv
    from p2penv.market.mechanisms import MECHANISMS

    ap = Parser(prog="p2penv", description="p2penv: train, evaluate, experiments, benchmarks")
    ap.add_argument("--version", action="version", version=f"p2penv {p2penv.__version__}")
    sub = ap.add_subparsers(dest="cmd", required=True, metavar="{train,evaluate,experiment,bench}")
    t = sub.add_parser("train", help="train learners (PPO/SAC shared or independent, vector PPO/MAPPO, "
                       "Q-learning, RLlib PPO)", help_defaults=trainer_defaults,
                       description="Train learners. An option given here beats the same field of --config; "
                       "what neither sets comes from the trainer's config dataclass (SB3Config, VectorPPOConfig, "
                       "QConfig, RLlibPPOConfig).")
    t.add_argument("--config", metavar="JSON", help="file: {env, algo, mode, sellers, seed, train}; a run.json works")
    t.add_argument("--scenario", metavar="ID", choices=p2penv.list_scenarios(),
                   help="a registered scenario (p2penv.list_scenarios()): " + ", ".join(p2penv.list_scenarios()))
    t.add_argument("--env", choices=ENVS, help=f"environment (default {DEFAULT_ENV}, or --config's env.name)")
    t.add_argument("--algo", choices=ALGOS, help=f"default {DEFAULT_ALGO}, or --config's; ppo: the validated vector PPO "
                   "(--sb3: stable-baselines3's); rllib_ppo: RLlib multi-agent PPO, every agent learns (needs the "
                   "rllib extra)")
    t.add_argument("--mode", choices=MODES, help=f"one policy for all learners or one each (default {DEFAULT_MODE}, "
                   "or --config's)")
    t.add_argument("--steps", type=int, help="agent-steps (SB3, vector PPO; rllib_ppo: rounded up to whole "
                   "iterations of train_batch_size agent-steps) or steps per session (Q-learning)")
    t.add_argument("--seed", type=int, help=f"seed of the trainer and the env (default {DEFAULT_SEED}, or --config's)")
    t.add_argument("--n-prosumers", type=int, metavar="N", help="agents in the market (env option n_prosumers)")
    t.add_argument("--mechanism", choices=sorted(MECHANISMS), help="auction_v0 clearing (env option mechanism; "
                   "default uniform)")
    t.add_argument("--sellers", type=int, metavar="N", help="SellerBuyerMarket with N learning sellers and 3 "
                   "truthful buyers")
    t.add_argument("--num-envs", type=int, metavar="E", help="algo ppo: markets of the batched vector env "
                   f"(p2penv.agents.vector_ppo, the validated PPO; default {DEFAULT_NUM_ENVS}); every agent learns, "
                   "or the --sellers only")
    t.add_argument("--sb3", action="store_true", help="algo ppo: stable-baselines3's PPO on the single env instead "
                   "of the validated vector PPO (it failed the learner validation: docs/learner_validation.md)")
    t.add_argument("--critic", choices=("auto", "local", "central"), help="with --num-envs: central = MAPPO critic "
                   "on the global state; local = V(own observation); auto (default): central with --mode shared, "
                   "local with --mode independent (the validated pairs: docs/learner_validation.md)")
    t.add_argument("--checkpoint-every", type=int, metavar="STEPS", help="agent-steps between checkpoints "
                   "(0: only at the end)")
    t.add_argument("--torch-threads", type=threads_arg, metavar="N", help="torch.set_num_threads for SB3 and vector "
                   "PPO: an int, or auto (vector PPO's default: every core, with passively waiting OpenMP threads)")
    t.add_argument("--tensorboard", action="store_true", help="also write tensorboard scalars to OUT/tb")
    t.add_argument("--nash-conv-every", type=int, metavar="K", help="log the learners' stage-game NashConv every "
                   "K updates (market_log.csv, tensorboard market/nash_conv; auction_v0)")
    t.add_argument("--progress", action=argparse.BooleanOptionalAction, help="progress display (default: on when "
                   "tqdm is installed: a bar on a terminal, a line per update when stderr is a file or pipe)")
    t.add_argument("--resume", action="store_true", help="continue from the last checkpoint in --out")
    t.add_argument("--out", default="runs/train", help="output folder")
    e = sub.add_parser("evaluate", help="evaluate a trained run folder (writes RUN/eval.json, prints a table)")
    e.add_argument("run", help="the --out folder of p2penv train")
    e.add_argument("--episodes", type=positive_int, default=1, help="episodes to average over")
    e.add_argument("--seed", type=int, help="evaluation seed (default: the run's seed)")
    x = sub.add_parser("experiment", help="run an experiment: p2penv experiment NAME --help lists its options",
                       description="Run an experiment; everything after NAME goes to the experiment's own command "
                       "line (p2penv experiment NAME --help).\n\nexperiments:\n" + "\n".join(
                           f"  {n:<22}{experiment_summary(n)}" for n in EXPERIMENTS),
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    x.add_argument("name", choices=EXPERIMENTS, metavar="NAME", help="one of: " + ", ".join(EXPERIMENTS))
    x.add_argument("args", nargs=argparse.REMAINDER, help="the experiment's options, e.g. --quick --out DIR --resume")
    b = sub.add_parser("bench", help="speed benchmarks (the repository's benchmarks/ scripts; JSON to "
                       "benchmarks/results/)")
    b.add_argument("--quick", action="store_true", help="smoke runs of the scripts that have one (*_quick.json)")
    b.add_argument("--only", nargs="*", metavar="NAME", help="run only these (vector, scaling, auction, dlmp, "
                   "dlmp_env); empty with --adapters: none of them")
    b.add_argument("--out", metavar="DIR", help="write the JSON files here instead of benchmarks/results/")
    b.add_argument("--list", action="store_true", help="list the benchmark scripts and exit")
    b.add_argument("--adapters", action="store_true", help="also time the VecEnv adapters (native vs SuperSuit)")
    b.add_argument("--steps", type=int, default=300, help="env steps per adapter timing")
    ap.commands = {"train": t, "evaluate": e, "experiment": x, "bench": b}
    return ap


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {v}")
    return v


def threads_arg(text: str) -> int | str:
    """argparse type of ``--torch-threads``: ``auto`` or an integer >= 1."""
    if text.strip().lower() == "auto":
        return "auto"
    try:
        return positive_int(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"expected auto or an integer >= 1, got {text!r}") from None


def main(argv=None) -> int:
    ap = build_parser()
    a, extra = ap.parse_known_args(argv)
    if extra:  # the command's own parser knows its options, so it can suggest the one meant
        ap.commands[a.cmd].error(f"unrecognized arguments: {' '.join(extra)}")
    prog = f"p2penv experiment {a.name}" if a.cmd == "experiment" else f"p2penv {a.cmd}"
    try:
        if a.cmd == "train":
            return cmd_train(a)
        if a.cmd == "evaluate":
            return cmd_evaluate(a)
        if a.cmd == "experiment":
            return cmd_experiment(a)
        return cmd_bench(a)
    except UsageError as e:
        ap.exit(2, f"{prog}: error: {e}\n")
    except ModuleNotFoundError as e:  # a missing extra the checks above did not foresee
        if (e.name or "").partition(".")[0] not in EXTRA_OF:
            raise
        ap.exit(2, f"{prog}: error: {missing_extra(e.name, prog)}\n")


if __name__ == "__main__":
    sys.exit(main())
