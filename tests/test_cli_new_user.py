"""What a new user met on a fresh clone (issue 19, items 6 and 7), each pinned: help with defaults and
choices, --version, close-match suggestions, one-line errors for missing extras (writing nothing), the
progress display, ``p2penv bench`` from any folder, no files left in the temp dir, and the CLI defects
found by fuzzing (evaluate --episodes 0, --resume on a missing folder or a truncated checkpoint, a Ray task
killed twice, a hand-edited checkpoint row)."""
import json
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest

from p2penv import cli
from p2penv.experiments.checkpoints import CheckpointError, RowCheckpoint
from p2penv.experiments.dispatch import Task, TaskFailed, run_tasks

REPO = Path(__file__).resolve().parents[1]


def _error(cli_error, argv) -> str:
    """stderr's last line of a CLI call that must fail with status 2 (one error line, no traceback)."""
    return cli_error(argv).strip().splitlines()[-1]


def _help(capsys, argv) -> str:
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        cli.main(argv)
    assert e.value.code == 0
    return capsys.readouterr().out


# -- help, version, suggestions ---------------------------------------------------------------------------
def test_version(capsys):
    import p2penv

    assert _help(capsys, ["--version"]) == f"p2penv {p2penv.__version__}\n"


def test_train_help_shows_defaults_choices_and_the_trainers_own_defaults(capsys):
    from p2penv.agents.qlearning import QConfig
    from p2penv.agents.sb3_shared import SB3Config
    from p2penv.agents.vector_ppo import VectorPPOConfig
    from p2penv.market.mechanisms import MECHANISMS

    text = " ".join(_help(capsys, ["train", "--help"]).split())
    assert "{" + ",".join(sorted(MECHANISMS)) + "}" in text  # --mechanism lists its choices
    assert "(default: runs/train)" in text
    assert (f"(default: SB3 {SB3Config.total_steps}; vector PPO {VectorPPOConfig.total_steps}; "
            f"Q-learning {QConfig.total_steps})") in text
    assert f"(default: SB3 {SB3Config.torch_threads}; vector PPO {VectorPPOConfig.torch_threads})" in text
    assert "(default: None)" not in text
    for opt in ("--config", "--scenario", "--env", "--algo", "--mode", "--steps", "--seed", "--n-prosumers",
                "--mechanism", "--sellers", "--num-envs", "--critic", "--checkpoint-every", "--torch-threads",
                "--tensorboard", "--nash-conv-every", "--progress", "--resume", "--out"):
        assert f"{opt} " in text or f"{opt}," in text


def test_experiment_help_lists_the_experiments_and_each_has_its_own(capsys):
    text = _help(capsys, ["experiment", "--help"])
    for name in cli.EXPERIMENTS:
        assert f"\n  {name} " in text
    own = _help(capsys, ["experiment", "collusion_probe", "--help"])
    assert own.startswith("usage: p2penv experiment collusion_probe") and "--sessions" in own


@pytest.mark.parametrize("argv, hint", [
    (["trian"], "did you mean 'train'?"),
    (["train", "--stpes", "5"], "did you mean '--steps'?"),
    (["train", "--mechanism", "unifrom"], "did you mean 'uniform'?"),
    (["experiment", "market_pwoer"], "did you mean 'market_power'?"),
    (["evaluate", "runs/x", "--epsiodes", "2"], "did you mean '--episodes'?"),
])
def test_typos_get_the_closest_match(cli_error, argv, hint):
    assert _error(cli_error, argv).endswith(hint)


# -- missing extras: one line naming the extra, nothing written ---------------------------------------------
@pytest.fixture
def lean(monkeypatch):
    """The core install: torch, SB3, tqdm, tensorboard, supersuit and Ray cannot be imported."""
    for mod in ("torch", "stable_baselines3", "tqdm", "tensorboard", "supersuit", "ray"):
        monkeypatch.setitem(sys.modules, mod, None)


@pytest.mark.parametrize("argv, line", [
    (["train", "--algo", "ppo", "--sellers", "2"],
     "p2penv train: error: algo 'ppo' needs the 'train' extra (no module 'torch'): pip install 'p2penv[train]'"),
    (["train", "--algo", "ppo", "--num-envs", "4"],
     "p2penv train: error: algo 'ppo' needs the 'train' extra (no module 'torch'): pip install 'p2penv[train]'"),
    (["train", "--algo", "rllib_ppo", "--n-prosumers", "3"],
     "p2penv train: error: algo 'rllib_ppo' needs the 'rllib' extra (no module 'ray'): pip install 'p2penv[rllib]'"),
    (["train", "--algo", "qlearning", "--tensorboard"],
     "p2penv train: error: algo 'qlearning' needs the 'train' extra (no module 'tensorboard'): "
     "pip install 'p2penv[train]'"),
    (["experiment", "demo", "--quick"],
     "p2penv experiment demo: error: experiment 'demo' needs the 'train' extra (no module 'torch'): "
     "pip install 'p2penv[train]'"),
    (["experiment", "mechanism_comparison", "--quick", "--ray", "local"],
     "p2penv experiment mechanism_comparison: error: --ray needs the 'ray' extra (no module 'ray'): "
     "pip install 'p2penv[ray]'"),
])
def test_a_missing_extra_is_one_line_and_writes_nothing(lean, cli_error, tmp_path, argv, line):
    out = tmp_path / "out"
    assert _error(cli_error, argv + ["--out", str(out)]) == line
    assert not out.exists()


def test_evaluate_names_the_extra_a_run_needs(lean, cli_error, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text(json.dumps(dict(env={}, algo="sac", mode="shared", sellers=2, seed=0, train={})))
    assert _error(cli_error, ["evaluate", str(run)]) == (
        "p2penv evaluate: error: evaluating algo 'sac' needs the 'train' extra (no module 'torch'): "
        "pip install 'p2penv[train]'")


def test_an_unforeseen_missing_module_is_still_one_line(cli_error, monkeypatch):
    def bench(a):
        raise ModuleNotFoundError("No module named 'torchrl'", name="torchrl")

    monkeypatch.setattr(cli, "cmd_bench", bench)
    assert _error(cli_error, ["bench"]) == ("p2penv bench: error: p2penv bench needs the 'torchrl' extra (no module "
                                         "'torchrl'): pip install 'p2penv[torchrl]'")


# -- progress: a bar on a terminal, a line per update otherwise ---------------------------------------------
def test_progress_lines_turn_bar_refreshes_into_lines():
    class Clock:
        t = 0.0

        def __call__(self):
            return self.t

    clock, sink = Clock(), []
    w = cli.ProgressLines(types.SimpleNamespace(write=sink.append, flush=lambda: None), interval=1.0, clock=clock)
    w.write("\r  0%|          | 0/96 [00:00<?, ?step/s]")
    clock.t = 0.5
    w.write("\r 50%|#####     | 48/96 [00:00<00:00, 96step/s]")  # within the interval: held back
    clock.t = 2.0
    w.write("\r100%|##########| 96/96 [00:02<00:00, 48step/s]   ")
    w.write("\n")  # the bar closes
    w.write("a warning\n")  # anything else passes through
    assert "".join(sink) == ("  0%|          | 0/96 [00:00<?, ?step/s]\n"
                             "100%|##########| 96/96 [00:02<00:00, 48step/s]\n"
                             "a warning\n")


def test_progress_is_on_by_default_and_follows_the_terminal(monkeypatch):
    from p2penv.agents.qlearning import QConfig

    spec = dict(train={})
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    assert cli.with_progress(QConfig(), spec) == (QConfig(progress=True), False)  # a bar
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False, raising=False)
    assert cli.with_progress(QConfig(), spec) == (QConfig(progress=True), True)  # lines
    assert cli.with_progress(QConfig(), dict(train=dict(progress=False))) == (QConfig(progress=False), False)


def test_train_writes_progress_lines_to_a_log(tmp_path, capsys):
    assert cli.main(["train", "--algo", "qlearning", "--sellers", "2", "--steps", "2000", "--out",
                     str(tmp_path / "q")]) == 0
    err = capsys.readouterr().err
    assert "\r" not in err and "| 2000/2000 [" in err.splitlines()[-1]  # no terminal: lines, the last complete


# -- p2penv bench from any folder, whatever else is called `benchmarks` --------------------------------------
@pytest.fixture
def foreign_benchmarks(tmp_path):
    """Environment variables that put a foreign top-level `benchmarks` package first on sys.path (TorchRL
    installs one); p2penv's is loaded by its path, under another name."""
    shadow = tmp_path / "site" / "benchmarks"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('not p2penv benchmarks')\n")
    return dict(os.environ, PYTHONPATH=str(tmp_path / "site"))


def test_bench_loads_from_another_folder_next_to_a_foreign_benchmarks_package(tmp_path, foreign_benchmarks):
    code = ("import importlib; from p2penv import cli; pkg = cli.benchmarks_package(); "
            "run_all = importlib.import_module(pkg.__name__ + '.run_all'); "
            "[importlib.import_module(pkg.__name__ + '.' + n) for n in run_all.names()]; print(pkg.__name__)")
    res = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=foreign_benchmarks, capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0 and res.stdout.strip() == "p2penv_benchmarks", res.stderr[-2000:]
    listed = subprocess.run([sys.executable, "-m", "p2penv.cli", "bench", "--list"], cwd=tmp_path,
                            env=foreign_benchmarks, capture_output=True, text=True, timeout=120)
    scripts = sorted(p.stem for p in (Path(__file__).resolve().parents[1] / "benchmarks").glob("bench_*.py"))
    assert listed.stdout.split() == scripts and "bench_vector" in scripts


@pytest.mark.slow
def test_bench_quick_runs_from_another_folder(tmp_path, foreign_benchmarks):
    res = subprocess.run([sys.executable, "-m", "p2penv.cli", "bench", "--quick", "--only", "dlmp_env", "--out",
                          str(tmp_path / "res")], cwd=tmp_path, env=foreign_benchmarks, capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    assert json.loads((tmp_path / "res" / "dlmp_env_quick.json").read_text())["env_steps_per_s"]


# -- nothing left outside the run folder ----------------------------------------------------------------------
def test_training_leaves_no_folders_in_the_temp_dir(tmp_path):
    """SB3 made an empty tempdir/SB3-<date-time> per model (about 40 per test run)."""
    tmp, work = tmp_path / "tmp", tmp_path / "work"
    tmp.mkdir()
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "SB3_LOGDIR"}
    env.update(TMPDIR=str(tmp), MPLCONFIGDIR=str(tmp_path / "mpl"))
    res = subprocess.run([sys.executable, "-m", "p2penv.cli", "train", "--algo", "ppo", "--sb3", "--sellers", "2",
                          "--steps", "48", "--no-progress", "--out", "run"], cwd=work, env=env, capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    # torch keeps one fixed-name cache there (torchinductor_<user>), reused by every run: not litter
    assert [p.name for p in tmp.iterdir() if not p.name.startswith("torchinductor_")] == []
    assert sorted(p.name for p in work.iterdir()) == ["run"]


# -- CLI defects found by fuzzing --------------------------------------------------------------------------
@pytest.mark.parametrize("n", ["0", "-2", "x"])
def test_evaluate_needs_at_least_one_episode(cli_error, n):
    """--episodes 0 was an IndexError traceback."""
    assert _error(cli_error, ["evaluate", "runs/x", "--episodes", n]).startswith(
        "p2penv evaluate: error: argument --episodes: expected an integer >= 1, got")


def test_resume_on_a_missing_folder_is_refused(cli_error, tmp_path):
    """It silently started a fresh run."""
    out = tmp_path / "nope"
    assert _error(cli_error, ["train", "--algo", "qlearning", "--sellers", "2", "--out", str(out), "--resume"]) == (
        f"p2penv train: error: --resume: {out}: no such folder, so nothing to resume; drop --resume to start a "
        "new run")
    assert not out.exists()


@pytest.mark.parametrize("argv, name", [(["--algo", "ppo", "--num-envs", "2"], "model.pt"),
                                        (["--algo", "qlearning"], "checkpoint.pkl")])
def test_resume_from_a_truncated_checkpoint_is_one_line(cli_error, tmp_path, argv, name):
    """A truncated model.pt gave torch's traceback."""
    out = tmp_path / "run"
    out.mkdir()
    (out / name).write_bytes(b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + b"\x00" * 20)
    line = _error(cli_error, ["train", "--sellers", "2", "--out", str(out), "--resume"] + argv)
    assert line.startswith(f"p2penv train: error: --resume: {out / name}: cannot load (") and line.endswith(
        "delete it to start over, or train into a new --out")
    assert sorted(p.name for p in out.iterdir()) == [name]  # nothing written


class _FakeRay(types.ModuleType):
    """A running Ray whose every task comes back as WorkerCrashedError (killed on its retry too)."""

    def __init__(self):
        super().__init__("ray")
        import ray.exceptions

        self.exceptions = ray.exceptions

    def is_initialized(self):
        return True

    def cluster_resources(self):
        return {"CPU": 2}

    def remote(self, **kw):
        return lambda fn: types.SimpleNamespace(remote=lambda f, args: (f, args))

    def wait(self, refs, num_returns=1):
        return refs[:1], refs[1:]

    def get(self, ref):
        raise self.exceptions.WorkerCrashedError()


def _rows(seed):
    return [dict(seed=seed, x=1.0)]


def test_a_ray_task_killed_twice_is_one_line_that_says_resume_continues(monkeypatch, tmp_path):
    pytest.importorskip("ray")
    monkeypatch.setitem(sys.modules, "ray", _FakeRay())
    ck = RowCheckpoint(tmp_path, "study", {"a": 1})
    ck.add(dict(seed=0, x=1.0))
    tasks = [Task(_rows, (s,), (dict(seed=s),), f"seed={s}") for s in (0, 1)]
    with pytest.raises(TaskFailed) as e:
        run_tasks(tasks, ck, ray="auto")
    msg = str(e.value)
    assert "\n" not in msg and isinstance(e.value, CheckpointError)
    assert msg.startswith("study: task seed=1 failed on Ray after its retry (WorkerCrashedError: ")
    assert msg.endswith(f"the 1 finished row(s) are saved in {tmp_path / 'study_checkpoint.json'}; rerun with "
                        "--resume to continue")


def test_a_hand_edited_checkpoint_row_with_a_missing_field_is_refused(tmp_path):
    ck = RowCheckpoint(tmp_path, "study", {"a": 1})
    for s in range(3):
        ck.add(dict(method="nash", seed=s, markup_rel=0.1 * s, hhi=0.5))
    path = tmp_path / "study_checkpoint.json"
    saved = json.loads(path.read_text())
    assert RowCheckpoint(tmp_path, "study", {"a": 1}, resume=True).reused == 3  # untouched: resumed
    del saved["rows"][1]["markup_rel"]
    path.write_text(json.dumps(saved))
    with pytest.raises(CheckpointError, match=r"study_checkpoint.json: row 2 \(method=nash, seed=1\): missing "
                                              r"field\(s\) \['markup_rel'\] against the fields the rows were saved "
                                              r"with \(edited by hand\?\); delete it, or run without --resume"):
        RowCheckpoint(tmp_path, "study", {"a": 1}, resume=True)
    saved["rows"][1]["markup_rel"] = 0.1
    saved["rows"][1]["note"] = "x"
    path.write_text(json.dumps(saved))
    with pytest.raises(CheckpointError, match=r"row 2 \(method=nash, seed=1\): unexpected field\(s\) \['note'\]"):
        RowCheckpoint(tmp_path, "study", {"a": 1}, resume=True)
    del saved["rows"][1]  # deleting a whole row is fine: its cell is computed again
    path.write_text(json.dumps(saved))
    assert RowCheckpoint(tmp_path, "study", {"a": 1}, resume=True).reused == 2
