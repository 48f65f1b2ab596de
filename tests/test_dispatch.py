"""Experiment rows as tasks: in-process and on a local Ray cluster give the same rows; resume
skips finished tasks; a task's rows must carry the keys it declared."""
import json
from dataclasses import replace

import pytest

from p2penv.experiments import market_power as mp
from p2penv.experiments.checkpoints import RowCheckpoint
from p2penv.experiments.dispatch import RayOptions, Task, run_tasks

CFG = replace(mp.QUICK, ns=(2, 3), seeds=(0, 1), ppo_steps=96, q_steps=400)
# the Ray comparison: one cell per kind of task (benchmark, PPO per seed, vectorised Q-learning)
RAY_CFG = replace(CFG, ns=(2,), methods=("nash", "ppo_shared", "qlearning"))


def square_rows(x: int) -> list[dict]:
    return [dict(x=x, y=x * x)]


def test_tasks_cover_every_cell_once():
    ts = mp.tasks(CFG)
    keys = [tuple(sorted(k.items())) for t in ts for k in t.row_keys]
    cells = [(st, n, m, s) for st in CFG.settings for n in CFG.ns for m in CFG.methods for s in CFG.seeds]
    assert len(keys) == len(set(keys)) == len(cells)
    # Q-learning trains every seed in one vectorised run: one task, a row per seed
    q = [t for t in ts if t.args[-1:] == (2,) and t.fn is mp.qlearning_rows]
    assert len(q) == 1 and [k["seed"] for k in q[0].row_keys] == [0, 1]


def test_run_tasks_skips_done_tasks_and_checks_keys(tmp_path):
    ck = RowCheckpoint(tmp_path, "sq", dict(a=1))
    assert run_tasks([Task(square_rows, (2,), (dict(x=2),)), Task(square_rows, (3,), (dict(x=3),))], ck) == 2
    assert [r["y"] for r in ck.rows] == [4, 9]
    again = RowCheckpoint(tmp_path, "sq", dict(a=1), resume=True)
    assert run_tasks([Task(square_rows, (2,), (dict(x=2),)), Task(square_rows, (4,), (dict(x=4),))], again) == 1
    assert [r["y"] for r in again.rows] == [4, 9, 16]
    with pytest.raises(RuntimeError, match=r"row keys differ from the declared ones: \{'x': \(5, 6\)\}"):
        run_tasks([Task(square_rows, (6,), (dict(x=5),), "bad")], RowCheckpoint(None, "sq", {}))
    with pytest.raises(RuntimeError, match="returned 1 rows, expected 2"):
        run_tasks([Task(square_rows, (6,), (dict(x=6), dict(x=7)))], RowCheckpoint(None, "sq", {}))


def test_ray_local_gives_the_in_process_results(tmp_path):
    """`market_power --quick --ray local`: same rows (every field), summary and curves as in-process,
    and an interrupted Ray run resumes from the driver's checkpoint."""
    import ray

    here = mp.run(RAY_CFG, tmp_path / "here")
    there = mp.run(RAY_CFG, tmp_path / "ray", ray=RayOptions("local", num_cpus=2))
    assert not ray.is_initialized()  # the run shut down the cluster it started
    assert there["rows"] == here["rows"]
    assert there["summary"] == here["summary"]
    assert json.dumps(there["curves"]) == json.dumps(here["curves"])  # (nan intervals of one curve seed)
    # interrupt: keep 3 of the 6 rows, resume on Ray, same result
    ck = tmp_path / "ray" / "market_power_checkpoint.json"
    saved = json.loads(ck.read_text())
    saved["rows"] = saved["rows"][:3]
    ck.write_text(json.dumps(saved))
    res = mp.run(RAY_CFG, tmp_path / "ray", resume=True, ray=RayOptions("local", num_cpus=2))
    assert res["meta"]["resumed_rows"] == 3
    assert res["rows"] == here["rows"]
