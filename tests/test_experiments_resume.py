"""Row checkpoints of the experiments: resume keeps the CSV columns, a changed config says what it
discards, a corrupt file is named, every experiment (and the demo) accepts --resume."""
import json
import shutil
from dataclasses import replace

import pytest

from p2penv.experiments import algorithm_benchmark as ab
from p2penv.experiments import collusion_probe as cp
from p2penv.experiments import demo
from p2penv.experiments import market_power as mp
from p2penv.experiments import mechanism_comparison as mc
from p2penv.experiments.checkpoints import CheckpointError, RowCheckpoint
from p2penv import cli

# competitive profile only: seconds, no training
MP = replace(mp.QUICK, ns=(2,), seeds=(0, 1), methods=("competitive",))


def test_resume_keeps_the_runs_csv_column_order(tmp_path):
    mp.run(MP, tmp_path)
    csv = tmp_path / "market_power_runs.csv"
    header = csv.read_text().splitlines()[0]
    assert header.startswith("setting,N,method,seed,agent_steps,price,comp_price,markup,")
    res = mp.run(MP, tmp_path, resume=True)  # every row comes back from the checkpoint
    assert res["meta"]["resumed_rows"] == 2
    assert csv.read_text().splitlines()[0] == header
    assert list(res["rows"][0])[:5] == ["setting", "N", "method", "seed", "agent_steps"]


def test_extending_the_sweep_computes_only_the_new_cells(tmp_path, capsys):
    first = mp.run(MP, tmp_path)
    capsys.readouterr()
    more = mp.run(replace(MP, seeds=(0, 1, 2), ns=(2, 3)), tmp_path, resume=True)
    assert more["meta"]["resumed_rows"] == 2  # N = 2, seeds 0 and 1
    assert more["rows"][:2] == first["rows"]
    err = capsys.readouterr().err.splitlines()
    assert [line.split(") ")[0] for line in err] == [
        "market_power: row 3/6 (setting=elastic-uniform, N=2, method=competitive, seed=2",
        "market_power: row 4/6 (setting=elastic-uniform, N=3, method=competitive, seed=0",
        "market_power: row 5/6 (setting=elastic-uniform, N=3, method=competitive, seed=1",
        "market_power: row 6/6 (setting=elastic-uniform, N=3, method=competitive, seed=2"]


def test_changed_config_says_it_discards_the_checkpoint_rows(tmp_path, capsys):
    mp.run(MP, tmp_path)
    capsys.readouterr()
    res = mp.run(replace(MP, seeds=(0,), nash_method="grid"), tmp_path, resume=True)
    assert res["meta"]["resumed_rows"] == 0
    ck = tmp_path / "market_power_checkpoint.json"
    err = capsys.readouterr().err.splitlines()
    assert err[0] == (f"market_power: {ck} was made with a different config (differs in nash_method); "
                      "discarded its 2 row(s), starting over")
    # then one progress line per new row: count of the total, the cell, elapsed time
    assert [line.split(") ")[0] for line in err[1:]] == ["market_power: row 1/1 (setting=elastic-uniform, N=2, method=competitive, seed=0"]
    assert len(json.loads(ck.read_text())["rows"]) == 1  # rewritten for the new config


@pytest.mark.parametrize("text, problem", [
    ('{"config": {"ns": [2]}, "rows": [{"N": 2, ', "corrupt checkpoint (Expecting property name enclosed in "
                                                  "double quotes: line 1 column 43 (char 42))"),
    ('[1, 2]', 'not a row checkpoint (expected {"config": {...}, "rows": [{...}, ...]})'),
])
def test_corrupt_checkpoint_names_the_file_and_the_way_out(tmp_path, capsys, text, problem):
    ck = tmp_path / "market_power_checkpoint.json"
    ck.write_text(text)
    msg = f"{ck}: {problem}; delete it, or run without --resume to start over"
    with pytest.raises(CheckpointError) as e:
        mp.run(MP, tmp_path, resume=True)
    assert str(e.value) == msg
    # the command line: one line on stderr, status 2
    with pytest.raises(SystemExit) as e:
        mp.main(["--quick", "--ns", "2", "--out", str(tmp_path), "--resume"])
    assert e.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1].endswith(f"error: {msg}")
    with pytest.raises(SystemExit) as e:
        cli.main(["experiment", "market_power", "--quick", "--ns", "2", "--out", str(tmp_path), "--resume"])
    assert e.value.code == 2
    assert capsys.readouterr().err == f"p2penv experiment market_power: error: {msg}\n"
    assert ck.read_text() == text  # left alone for the user to inspect
    # without --resume the file is simply replaced
    assert len(mp.run(MP, tmp_path)["rows"]) == 2
    assert len(json.loads(ck.read_text())["rows"]) == 2


def test_row_checkpoint_records_its_config_before_the_first_row(tmp_path):
    RowCheckpoint(tmp_path, "x", dict(a=(1, 2)))
    assert json.loads((tmp_path / "x_checkpoint.json").read_text()) == {"config": {"a": [1, 2]}, "rows": [],
                                                                        "fields": []}
    ck = RowCheckpoint(tmp_path, "x", dict(a=(1, 2)), resume=True)
    assert ck.matched and ck.reused == 0


def _cut(src, dst, name, keep):
    """Copy ``src`` to ``dst`` keeping the first ``keep`` checkpointed rows (an interrupted run)."""
    shutil.copytree(src, dst)
    p = dst / f"{name}_checkpoint.json"
    saved = json.loads(p.read_text())
    n = len(saved["rows"])
    saved["rows"] = saved["rows"][:keep]
    p.write_text(json.dumps(saved))
    return n


def test_mechanism_comparison_resumes(tmp_path, monkeypatch):
    from p2penv.agents.qlearning import QLearners

    cfg = replace(mc.QUICK, mechanisms=("uniform",), profiles=("truthful", "qlearning"), seeds=(0, 1), q_steps=300)
    full = mc.run(cfg, tmp_path / "full")
    assert _cut(tmp_path / "full", tmp_path / "cut", "mechanism_comparison", 3) == 4
    res = mc.run(cfg, tmp_path / "cut", resume=True)  # retrains Q-learning for the missing row
    assert res["meta"]["resumed_rows"] == 3
    assert res["rows"] == full["rows"]

    def no_training(self, *a, **k):
        raise AssertionError("Q-learning retrained although all its rows were checkpointed")

    monkeypatch.setattr(QLearners, "train", no_training)
    again = mc.run(cfg, tmp_path / "cut", resume=True)
    assert again["meta"]["resumed_rows"] == 4 and again["rows"] == full["rows"]


@pytest.mark.parametrize("mod", [mc, cp, mp, ab])
def test_experiments_accept_resume_and_ray(monkeypatch, tmp_path, mod):
    calls = []
    monkeypatch.setattr(mod, "run", lambda cfg, out, resume=False, ray=None, **kw: calls.append((out, resume, ray)))
    mod.main(["--quick", "--out", str(tmp_path), "--resume"])
    mod.main(["--quick", "--out", str(tmp_path), "--ray", "auto"])
    assert calls == [(str(tmp_path), True, None), (str(tmp_path), False, "auto")]


def test_demo_honours_out_quick_and_resume(monkeypatch, tmp_path, capsys):
    calls = []

    def fake_run(cfg, out, resume=False):
        calls.append((cfg, out, resume))
        return dict(meta=dict(wall_s=1.0))

    monkeypatch.setattr(mp, "run", fake_run)
    demo.main(["--quick", "--out", str(tmp_path), "--resume"])
    assert cli.main(["experiment", "demo", "--quick", "--out", str(tmp_path / "x"), "--resume"]) == 0
    demo.main([])
    assert calls == [(mp.QUICK, str(tmp_path), True), (mp.QUICK, str(tmp_path / "x"), True),
                     (mp.DEMO, "results/demo", False)]
    assert f"figures and tables in {tmp_path}/ (1 s)" in capsys.readouterr().out
