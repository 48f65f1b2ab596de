"""CLI input errors: one line ``p2penv CMD: error: ...`` on stderr naming the file or field, exit
status 2, no traceback; ``train`` checks the env before it writes anything."""
import json
import shutil

import pytest

from p2penv import cli


@pytest.fixture(scope="module")
def ppo_run(tmp_path_factory):
    """A finished tiny PPO run (2 sellers); tests copy it before breaking it."""
    out = tmp_path_factory.mktemp("trained") / "ppo"
    assert cli.main(["train", "--algo", "ppo", "--sb3", "--sellers", "2", "--steps", "48", "--out", str(out)]) == 0
    return out


@pytest.fixture
def run(ppo_run, tmp_path):
    return shutil.copytree(ppo_run, tmp_path / "run")


def _error(cli_error, argv) -> str:
    """stderr of a CLI call that must fail with status 2 (and nothing else on stderr: one line)."""
    err = cli_error(argv)
    assert err.count("\n") == 1
    return err


def _json_problem(text: str) -> str:
    try:
        json.loads(text)
    except json.JSONDecodeError as e:
        return f"invalid JSON ({e.msg} at line {e.lineno}, column {e.colno})"
    raise AssertionError("valid JSON")


def test_evaluate_missing_model_names_the_file(run, cli_error):
    (run / "policy" / "model.zip").unlink()
    assert _error(cli_error, ["evaluate", str(run)]) == (
        f"p2penv evaluate: error: {run}/policy/model.zip: missing (written by p2penv train when training "
        "finishes; rerun train with --resume to finish it)\n")


@pytest.mark.parametrize("name", ["run.json", "policy/policy.json"])
def test_evaluate_bad_json_names_the_file(run, cli_error, name):
    text = '{"algo": "ppo", '
    (run / name).write_text(text)
    assert _error(cli_error, ["evaluate", str(run)]) == f"p2penv evaluate: error: {run / name}: {_json_problem(text)}\n"


def test_evaluate_run_json_field_is_named(run, cli_error):
    spec = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps(dict(spec, mode="both")))
    assert _error(cli_error, ["evaluate", str(run)]) == (
        f"p2penv evaluate: error: {run}/run.json: mode: expected one of ('shared', 'independent'), got 'both'\n")


def test_evaluate_algorithm_mismatch(run, cli_error):
    meta = json.loads((run / "policy" / "policy.json").read_text())
    (run / "policy" / "policy.json").write_text(json.dumps(dict(meta, algo="sac")))
    assert _error(cli_error, ["evaluate", str(run)]) == (
        f"p2penv evaluate: error: {run}/policy/policy.json: algo 'sac' differs from algo 'ppo' in {run}/run.json\n")
    spec = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps(dict(spec, algo="sac")))
    assert _error(cli_error, ["evaluate", str(run)]) == (
        f"p2penv evaluate: error: {run}/policy/model.zip: a ppo model, but {run}/policy/policy.json says algo 'sac'\n")


def test_evaluate_missing_run_folder(tmp_path, cli_error):
    assert _error(cli_error, ["evaluate", str(tmp_path / "nope")]) == (
        f"p2penv evaluate: error: {tmp_path}/nope: no such run folder (the --out of p2penv train)\n")
    assert _error(cli_error, ["evaluate", str(tmp_path)]) == (
        f"p2penv evaluate: error: {tmp_path}/run.json: missing (written by p2penv train; "
        "is this a train output folder?)\n")


def test_resume_with_another_algorithm_is_refused_before_writing(run, cli_error):
    before = (run / "run.json").read_bytes()
    assert _error(cli_error, ["train", "--algo", "sac", "--sellers", "2", "--steps", "96", "--out", str(run),
                           "--resume"]) == (
        f"p2penv train: error: --resume: {run}/run.json was trained with algo='ppo', this run asks for "
        "algo='sac'; resume with the same options or use a new --out\n")
    assert (run / "run.json").read_bytes() == before
    # run.json gone: the model file itself still tells
    (run / "run.json").unlink()
    assert _error(cli_error, ["train", "--algo", "sac", "--sellers", "2", "--steps", "96", "--out", str(run),
                           "--resume"]) == (
        f"p2penv train: error: --resume: {run}/model.zip is a ppo model, this run asks for algo='sac'\n")


def test_train_config_file_errors(tmp_path, cli_error):
    conf = tmp_path / "conf.json"
    assert _error(cli_error, ["train", "--config", str(conf), "--out", str(tmp_path / "x")]) == (
        f"p2penv train: error: {conf}: missing (the --config file)\n")
    conf.write_text("{")
    assert _error(cli_error, ["train", "--config", str(conf), "--out", str(tmp_path / "x")]) == (
        f"p2penv train: error: {conf}: {_json_problem('{')}\n")
    conf.write_text(json.dumps({"train": {"n_epoch": 3}}))
    err = _error(cli_error, ["train", "--config", str(conf), "--out", str(tmp_path / "x")])
    assert err.startswith(f"p2penv train: error: {conf}: train: VectorPPOConfig: unknown option(s) ['n_epoch']; known [")
    assert not (tmp_path / "x").exists()


def test_train_bad_env_config_writes_nothing(tmp_path, cli_error):
    out = tmp_path / "out"
    assert _error(cli_error, ["train", "--sellers", "2", "--n-prosumers", "2", "--out", str(out)]) == (
        "p2penv train: error: env {'n_prosumers': 2}, sellers=2: does not run (ValueError: n_sellers: need "
        "1 <= n_sellers < n_prosumers, got 2 of 2)\n")
    assert not out.exists()


def test_train_env_failing_at_the_first_step_writes_nothing(tmp_path, cli_error, monkeypatch):
    # what `--mechanism mcafee` did while its clearing rejected the k argument
    from p2penv.envs.auction_env import AuctionEnv

    def broken(self, actions):
        raise TypeError("clear() got an unexpected keyword argument 'k'")

    monkeypatch.setattr(AuctionEnv, "step", broken)
    out = tmp_path / "out"
    assert _error(cli_error, ["train", "--mechanism", "mcafee", "--out", str(out)]) == (
        "p2penv train: error: env {'mechanism': 'mcafee'}: does not run "
        "(TypeError: clear() got an unexpected keyword argument 'k')\n")
    assert not out.exists()
