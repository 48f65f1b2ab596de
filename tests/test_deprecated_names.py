"""One name per concept (issue 19, item 4; docs/glossary.md): the names before the renames stay as deprecated
aliases. Each old name warns (``DeprecationWarning``), is the very object of its new name and so gives the same
result; the new names do not warn and are the only ones exported; an old command-line option still works, with a
``FutureWarning`` a command-line user sees."""
import importlib
import warnings

import numpy as np
import pytest

from p2penv import auction_v0

# (module, old name, new name)
RENAMED = [
    ("p2penv.diagnostics.nash", "stage_nash_gap", "stage_nash_conv"),
    ("p2penv.diagnostics.nash", "env_nash_gap", "env_nash_conv"),
    ("p2penv.diagnostics.nash", "NashGap", "StageNashConv"),
    ("p2penv.diagnostics", "stage_nash_gap", "stage_nash_conv"),
    ("p2penv.diagnostics", "env_nash_gap", "env_nash_conv"),
    ("p2penv.diagnostics", "NashGap", "StageNashConv"),
    ("p2penv.diagnostics.nash_infos", "NashGapInfos", "NashConvInfos"),
    ("p2penv.diagnostics.nash_infos", "NashGapVectorInfos", "NashConvVectorInfos"),
    ("p2penv.generators.protocol", "ScenarioGenerator", "FleetGenerator"),
]


@pytest.mark.parametrize("module, old, new", RENAMED, ids=[f"{m}.{o}" for m, o, _ in RENAMED])
def test_old_name_warns_and_is_the_new_object(module, old, new):
    mod = importlib.import_module(module)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the new name is plain
        obj = getattr(mod, new)
    with pytest.warns(DeprecationWarning, match=rf"{module}\.{old} is deprecated since 0\.1\.0 \(issue 19\): use {new}"):
        assert getattr(mod, old) is obj
    with pytest.warns(DeprecationWarning, match=old):  # ``from module import old`` too
        ns = {}
        exec(f"from {module} import {old}", ns)
    assert ns[old] is obj
    if hasattr(mod, "__all__"):  # exported: the new name only
        assert new in mod.__all__ and old not in mod.__all__
    with pytest.raises(AttributeError, match="no attribute 'no_such_name'"):
        getattr(mod, "no_such_name")


def _step_actions(seed: int = 2):
    env = auction_v0.parallel_env(n_prosumers=3, seed=seed, max_cycles=2)
    env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    return env, {a: rng.uniform(-1, 1, 2) for a in env.agents}


def test_old_nash_functions_give_the_same_result():
    from p2penv.diagnostics import nash

    env, actions = _step_actions()
    joint = np.stack([actions[a] for a in env.agents])
    with pytest.warns(DeprecationWarning):
        old_stage, old_env, old_record = nash.stage_nash_gap, nash.env_nash_gap, nash.NashGap
    for old, new, args in ((old_stage, nash.stage_nash_conv, (joint, env.ctx, env.rules)),
                           (old_env, nash.env_nash_conv, (env, actions))):
        a, b = old(*args, method="grid"), new(*args, method="grid")
        assert isinstance(a, old_record) and isinstance(a, nash.StageNashConv)
        assert a.nash_conv == b.nash_conv and a.method == b.method
        for f in ("rewards", "best_rewards", "gains", "best_actions"):
            np.testing.assert_array_equal(getattr(a, f), getattr(b, f))


def test_old_wrapper_names_give_the_same_infos():
    from p2penv.diagnostics import nash_infos

    with pytest.warns(DeprecationWarning):
        old, old_vec = nash_infos.NashGapInfos, nash_infos.NashGapVectorInfos
    out = []
    for cls in (old, nash_infos.NashConvInfos):
        env = cls(auction_v0.parallel_env(n_prosumers=3, seed=1, max_cycles=2), method="grid")
        env.reset(seed=1)
        infos = env.step({a: np.zeros(2) for a in env.agents})[4]
        out.append(([infos[a]["nash_gain"] for a in infos], infos["prosumer_0"]["market"]["nash_conv"]))
    assert out[0] == out[1]
    vecs = [cls(auction_v0.vector_env(2, n_prosumers=3, max_cycles=2)) for cls in (old_vec, nash_infos.NashConvVectorInfos)]
    res = []
    for vec in vecs:
        vec.reset(seed=3)
        res.append(vec.step(np.zeros((2, 3, 2)))[4]["nash_gain"])
    np.testing.assert_array_equal(res[0], res[1])


def test_old_generator_protocol_checks_the_same():
    from p2penv.generators import HouseholdMix, protocol

    with pytest.warns(DeprecationWarning):
        old = protocol.ScenarioGenerator
    for gen in (HouseholdMix(), lambda n, horizon, dt_h, start_hour, rng: None, 42):
        assert isinstance(gen, old) == isinstance(gen, protocol.FleetGenerator) == callable(gen)


# -- command-line options whose values are not registry ids: --scenarios -> --feeder-settings / --markets ---------

# (experiment module, new option, values)
RENAMED_OPTIONS = [
    ("local_market_power", "--feeder-settings", ["ieee33-base", "ieee33-congested"]),
    ("p2p_feeder", "--feeder-settings", ["ieee33-undervoltage"]),
    ("exploitability_study", "--markets", ["household6", "sellers-buyers"]),
]


@pytest.mark.parametrize("name, new, values", RENAMED_OPTIONS, ids=[n for n, _, _ in RENAMED_OPTIONS])
def test_old_scenarios_option_still_works(name, new, values, monkeypatch, tmp_path, capsys):
    mod = importlib.import_module(f"p2penv.experiments.{name}")
    monkeypatch.setattr(mod, "run", lambda cfg, *args, **kwargs: cfg)  # the config main would run
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cfg_new = mod.main(["--quick", new, *values, "--out", str(tmp_path)])
    with pytest.warns(FutureWarning, match=f"--scenarios is deprecated since 0.1.0 \\(issue 19\\): use {new}"):
        cfg_old = mod.main(["--quick", "--scenarios", *values, "--out", str(tmp_path)])
    assert cfg_new.scenarios == cfg_old.scenarios == tuple(values)
    with pytest.raises(SystemExit):
        mod.main(["--help"])
    text = capsys.readouterr().out
    assert new in text and "--scenarios" not in text  # the old name is hidden
    if name != "p2p_feeder":  # the old name checks its values as the new one does (p2p_feeder: when run)
        with pytest.raises(SystemExit) as e:
            mod.main(["--scenarios", "no-such-thing"])
        assert e.value.code == 2


def test_old_option_through_the_p2penv_command(monkeypatch, tmp_path):
    from p2penv import cli
    from p2penv.experiments import local_market_power as lmp

    seen = []
    monkeypatch.setattr(lmp, "run", lambda cfg, *args, **kwargs: seen.append(cfg.scenarios))
    with pytest.warns(FutureWarning, match="--scenarios"):
        assert cli.main(["experiment", "local_market_power", "--quick", "--scenarios", "ieee33-base",
                         "--out", str(tmp_path)]) == 0
    assert seen == [("ieee33-base",)]


def test_a_command_line_user_sees_the_old_option_warning(tmp_path):
    """Python hides DeprecationWarning outside __main__; the CLI alias warns with FutureWarning, which it shows."""
    import subprocess
    import sys

    res = subprocess.run([sys.executable, "-c", "import sys; from p2penv.experiments import local_market_power as m; "
                          "m.run = lambda cfg, *a, **k: cfg; m.main(sys.argv[1:])", "--quick", "--scenarios",
                          "ieee33-base", "--out", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "--scenarios is deprecated since 0.1.0 (issue 19): use --feeder-settings" in res.stderr
