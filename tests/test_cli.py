"""CLI smoke tests: train (+ resume), evaluate, experiment, bench."""
import json

import pytest

from p2penv import cli


def test_train_resume_evaluate_ppo(tmp_path, capsys):
    out = tmp_path / "ppo"
    base = ["train", "--algo", "ppo", "--sb3", "--sellers", "2", "--out", str(out), "--checkpoint-every", "48"]
    assert cli.main(base + ["--steps", "200"]) == 0
    first = json.loads((out / "state.json").read_text())["num_timesteps"]
    assert cli.main(base + ["--steps", "600", "--resume"]) == 0
    assert json.loads((out / "state.json").read_text())["num_timesteps"] > first
    assert cli.main(["evaluate", str(out)]) == 0
    ev = json.loads((out / "eval.json").read_text())
    assert ev["hhi"] > 0 and "nash_conv" in ev
    assert "ppo/shared" in capsys.readouterr().out


def test_train_from_json_config_qlearning_and_evaluate(tmp_path):
    conf = tmp_path / "run.json"
    conf.write_text(json.dumps({"algo": "qlearning", "sellers": 2, "seed": 3,
                                "train": {"total_steps": 300, "n_sessions": 2, "checkpoint_every": 100}}))
    out = tmp_path / "q"
    assert cli.main(["train", "--config", str(conf), "--out", str(out)]) == 0
    assert cli.main(["train", "--config", str(conf), "--out", str(out), "--steps", "600", "--resume"]) == 0
    assert json.loads((out / "summary.json").read_text())["t"] == 600
    assert cli.main(["evaluate", str(out)]) == 0


def test_independent_sac_cli(tmp_path):
    out = tmp_path / "sac"
    assert cli.main(["train", "--algo", "sac", "--mode", "independent", "--n-prosumers", "2", "--steps", "96",
                     "--out", str(out)]) == 0
    assert (out / "policy" / "agents.json").exists()
    assert cli.main(["evaluate", str(out)]) == 0


def test_vector_ppo_cli_train_resume_evaluate(tmp_path, capsys):
    out = tmp_path / "vppo"
    base = ["train", "--algo", "ppo", "--sellers", "2", "--num-envs", "4", "--critic", "central", "--out", str(out)]
    # only the 2 sellers learn (the buyers bid truthfully): one rollout = 24 steps x 4 markets x 2 sellers
    assert cli.main(base + ["--steps", "192"]) == 0
    spec = json.loads((out / "run.json").read_text())
    assert spec["train"]["num_envs"] == 4 and spec["train"]["critic"] == "central"
    assert cli.main(base + ["--steps", "384", "--resume"]) == 0
    assert "ppo/shared: 384 agent-steps" in capsys.readouterr().out
    assert (out / "progress.csv").read_text().count("\n") == 3  # header + 2 updates
    assert cli.main(["evaluate", str(out)]) == 0
    assert "nash_conv" in json.loads((out / "eval.json").read_text())
    ind = tmp_path / "ind"
    assert cli.main(["train", "--algo", "ppo", "--mode", "independent", "--n-prosumers", "3", "--num-envs", "2",
                     "--steps", "144", "--out", str(ind)]) == 0
    assert cli.main(["evaluate", str(ind)]) == 0


def test_train_and_evaluate_a_registered_storage_scenario(tmp_path, capsys):
    out = tmp_path / "storage"
    assert cli.main(["train", "--scenario", "auction_v0/storage-community-v0", "--algo", "ppo", "--num-envs", "2",
                     "--steps", "480", "--out", str(out)]) == 0
    spec = json.loads((out / "run.json").read_text())
    assert spec["env"]["scenario_id"] == "auction_v0/storage-community-v0"
    assert cli.main(["evaluate", str(out)]) == 0
    with pytest.raises(SystemExit) as e:
        cli.main(["train", "--scenario", "auction_v0/nope-v0", "--out", str(tmp_path / "bad")])
    assert e.value.code == 2 and "invalid choice: 'auction_v0/nope-v0'" in capsys.readouterr().err


def test_bad_config_key_is_named(tmp_path, capsys):
    conf = tmp_path / "bad.json"
    conf.write_text(json.dumps({"algorithm": "ppo"}))
    with pytest.raises(SystemExit) as e:
        cli.main(["train", "--config", str(conf), "--out", str(tmp_path / "x")])
    assert e.value.code == 2
    assert capsys.readouterr().err == (f"p2penv train: error: {conf}: unknown key(s) ['algorithm']; "
                                       "known env, algo, mode, sellers, seed, train\n")
    assert not (tmp_path / "x").exists()


def test_experiment_and_unknown_experiment(tmp_path, capsys):
    assert cli.main(["experiment", "collusion_probe", "--quick", "--q-steps", "300", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "collusion_probe.json").exists()
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        cli.main(["experiment", "nope"])
    assert e.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        "p2penv experiment: error: argument NAME: invalid choice: 'nope' (choose from 'market_power', "
        "'algorithm_benchmark', 'mechanism_comparison', 'collusion_probe', 'demo', 'local_market_power', "
        "'scenario_baselines', 'exploitability_study', 'p2p_feeder')")


def test_bench_times_adapters_alone_and_runs_the_benchmarks_package(monkeypatch, capsys):
    assert cli.main(["bench", "--adapters", "--only", "--steps", "20"]) == 0  # --only with no names: adapters only
    out = capsys.readouterr().out
    assert ("native" in out and "supersuit" in out)
    calls = []
    run_all = __import__(f"{cli.benchmarks_package().__name__}.run_all", fromlist=["main"])
    monkeypatch.setattr(run_all, "main", lambda argv: calls.append(argv) or 0)
    assert cli.main(["bench", "--quick", "--only", "vector", "scaling"]) == 0
    assert calls == [["--quick", "--only", "vector", "scaling"]]


def test_train_and_evaluate_on_dlmp_v0(tmp_path, capsys):
    out = tmp_path / "dlmp"
    cfg = tmp_path / "run.json"
    cfg.write_text(json.dumps({"env": {"name": "dlmp_v0", "scenario": "teaching4", "max_cycles": 6}, "algo": "ppo"}))
    assert cli.main(["train", "--config", str(cfg), "--steps", "96", "--out", str(out)]) == 0
    assert cli.main(["evaluate", str(out)]) == 0
    ev = json.loads((out / "eval.json").read_text())
    assert "nash_conv" not in ev and ev["profit"] == ev["profit"]  # finite, no auction-only diagnostic
    cfg.write_text(json.dumps({"env": {"name": "nope_v0"}}))
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        cli.main(["train", "--config", str(cfg), "--out", str(tmp_path / "x")])
    assert e.value.code == 2
    assert capsys.readouterr().err == ("p2penv train: error: env: unknown 'nope_v0'; "
                                       "known ('auction_v0', 'dlmp_v0')\n")


def test_evaluate_prints_a_labelled_table_and_explains_what_does_not_apply():
    res = {"price": 0.1, "markup": float("nan"), "profit": -2.0}
    text = cli.evaluation_table(res, auction=False, episodes=1, seed=0)
    assert "price                      0.1  $/kWh" in text
    assert "markup: nan, seller markups against the auction's competitive price do not apply to DLMPs" in text
    assert "nash_conv: not computed on dlmp_v0" in text
    assert "nan" not in cli.evaluation_table({"price": 0.1}, auction=True, episodes=1, seed=0)


def test_default_ppo_is_the_validated_vector_ppo(tmp_path):
    """``p2penv train`` with no trainer options trains agents.vector_ppo with its validated defaults (256
    markets); ``--sb3`` picks stable-baselines3's PPO, and run.json replays whichever was chosen."""
    from p2penv.agents.vector_ppo import VectorPPOConfig

    assert cli.DEFAULT_NUM_ENVS == VectorPPOConfig().num_envs
    out = tmp_path / "default"
    assert cli.main(["train", "--sellers", "2", "--steps", "48", "--no-progress", "--out", str(out)]) == 0
    spec = json.loads((out / "run.json").read_text())
    assert spec["algo"] == "ppo" and spec["train"]["num_envs"] == cli.DEFAULT_NUM_ENVS and "sb3" not in spec["train"]
    assert (out / "model.pt").is_file() and not (out / "model.zip").exists()
    sb3 = tmp_path / "sb3"
    assert cli.main(["train", "--sb3", "--sellers", "2", "--steps", "48", "--no-progress", "--out", str(sb3)]) == 0
    spec = json.loads((sb3 / "run.json").read_text())
    assert spec["train"]["sb3"] is True and "num_envs" not in spec["train"] and (sb3 / "model.zip").is_file()
    again = tmp_path / "again"
    assert cli.main(["train", "--config", str(sb3 / "run.json"), "--no-progress", "--out", str(again)]) == 0
    assert (again / "model.zip").is_file() and not (again / "model.pt").exists()


@pytest.mark.parametrize("argv, msg", [(["--sb3", "--num-envs", "4"], "--sb3 and num_envs"),
                                       (["--sb3", "--algo", "sac"], "it goes with algo 'ppo', got 'sac'")])
def test_sb3_switch_conflicts_are_one_line(tmp_path, capsys, argv, msg):
    with pytest.raises(SystemExit) as e:
        cli.main(["train", "--sellers", "2", "--out", str(tmp_path / "x")] + argv)
    assert e.value.code == 2 and msg in capsys.readouterr().err and not (tmp_path / "x").exists()
