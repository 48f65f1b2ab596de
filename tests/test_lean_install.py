"""The core install is the environments, network and diagnostics: no torch, SB3 or tqdm needed."""
import subprocess
import sys

CODE = r"""
import sys
for mod in ("torch", "stable_baselines3", "tqdm", "tensorboard", "supersuit", "simbench"):
    sys.modules[mod] = None  # any import of them now raises ImportError
import numpy as np
import p2penv
assert "auction_v0/simbench-semiurb5-v0" in p2penv.list_scenarios()  # listed without the simbench extra
from p2penv import auction_v0, dlmp_v0
from p2penv.diagnostics.nash import env_nash_conv
for env in (auction_v0.parallel_env(n_prosumers=4), dlmp_v0.parallel_env(scenario="teaching4"),
            p2penv.make("auction_v0/storage-community-v0")):
    obs, _ = env.reset(seed=0)
    acts = {a: np.zeros(env.action_space(a).shape) for a in env.agents}
    env_nash_conv(env, acts) if env.metadata["name"] == "auction_v0" else None
    env.step(acts)
vec = auction_v0.vector_env(3, n_prosumers=4)
vec.reset(seed=0)
vec.step(np.zeros((3, 4, 2)))
print("ok")
"""


def test_envs_and_diagnostics_run_without_the_training_stack():
    out = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().endswith("ok")
