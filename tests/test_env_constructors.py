"""``help()`` on the env constructors lists every option with its unit and default; ``p2penv.make``
envs know their scenario id."""
import copy
import dataclasses
import inspect
import pickle
import pydoc

import pytest

import p2penv
from p2penv import auction_v0, dlmp_v0
from p2penv.envs.config import MarketConfig
from p2penv.envs.dlmp_config import DlmpConfig
from p2penv.envs.options import option_docs

CONSTRUCTORS = [(m, name, cfg) for m, cfg in ((auction_v0, MarketConfig), (dlmp_v0, DlmpConfig))
                for name in ("parallel_env", "env", "raw_env", "vector_env")]


@pytest.mark.parametrize("mod, name, cfg", CONSTRUCTORS, ids=lambda x: getattr(x, "__name__", str(x)))
def test_help_lists_every_option_with_its_default_and_meaning(mod, name, cfg):
    fn = getattr(mod, name)
    params = inspect.signature(fn).parameters
    fields = dataclasses.fields(cfg)
    for f in fields:
        p = params[f.name]
        assert p.kind is inspect.Parameter.KEYWORD_ONLY
        default = f.default_factory() if f.default is dataclasses.MISSING else f.default
        assert p.default == default or (p.default != p.default and default != default)
    assert "render_mode" in params or name == "vector_env"
    assert ("autoreset_mode" in params) == (name == "vector_env")
    text = pydoc.render_doc(fn, renderer=pydoc.plaintext)
    docs = option_docs(cfg)
    for f in fields:
        assert docs.get(f.name), f"{cfg.__name__}.{f.name}: no description (a '# ...' comment or docstring entry)"
        assert f"{f.name}: " in text and docs[f.name][:40] in " ".join(text.split())


def test_units_show_in_the_help():
    text = " ".join(pydoc.render_doc(auction_v0.parallel_env, renderer=pydoc.plaintext).split())
    for piece in ("price_cap: float = 0.4 $/kWh, highest admissible bid/ask", "dt_h: float = 1.0 step length, hours",
                  "obs_kw_scale: float = 10.0 kW mapped to 1.0 in observations"):
        assert piece in text
    text = " ".join(pydoc.render_doc(dlmp_v0.parallel_env, renderer=pydoc.plaintext).split())
    assert "penalty: float = 1000.0 $/kWh of the DLMP LP's slacks" in text and "load_scale" in text


def test_the_documented_signature_is_what_the_constructor_takes():
    env = auction_v0.parallel_env(n_prosumers=3, max_cycles=2, render_mode="ansi")
    assert env.config.n_prosumers == 3 and env.render_mode == "ansi"
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['n_prosumer'\]"):
        auction_v0.parallel_env(n_prosumer=3)
    vec = dlmp_v0.vector_env(2, scenario="teaching4", autoreset_mode="NextStep")
    assert vec.num_envs == 2 and vec.autoreset_mode.value == "NextStep"


@pytest.mark.parametrize("scenario_id", ["auction_v0/household6-v0", "dlmp_v0/teaching4-v0"])
def test_made_envs_carry_their_scenario_id(scenario_id):
    env = p2penv.make(scenario_id)
    vec = p2penv.make_vector(scenario_id, 2)
    for e in (env, vec, pickle.loads(pickle.dumps(env)), copy.deepcopy(vec)):
        assert e.metadata["scenario_id"] == scenario_id
    assert "scenario_id" not in type(env).metadata  # the class (and envs built by hand) untouched
    assert "scenario_id" not in auction_v0.parallel_env().metadata
