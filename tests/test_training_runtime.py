"""The vector PPO's runtime choices: bf16 autocast (agents.precision), the fused categorical log-prob and
entropy (agents.action_dists), and the torch-threads default with passive OpenMP waits (agents.torch_threads)."""
import argparse
import os
import subprocess
import sys

import pytest
import torch

from p2penv.agents import precision, torch_threads
from p2penv.agents.action_dists import CategoricalDist
from p2penv.agents.vector_ppo import ActorCritic, VectorPPOConfig, train_vector_ppo, vector_env_fn
from p2penv.cli import threads_arg

AUCTION = vector_env_fn("auction_v0", n_prosumers=3)


def test_fused_log_prob_and_entropy_equal_the_separate_ones_and_their_gradients():
    torch.manual_seed(0)
    d = CategoricalDist(2, 7)
    head = torch.randn(3, 5, 14, dtype=torch.double, requires_grad=True)
    head.data[0, 0, :7] = torch.tensor([-200.0, 0, 1, 2, 3, -150, 0], dtype=torch.double)  # near-zero probabilities
    stored = torch.randint(0, 7, (3, 5, 2)).double()
    lp, ent = d.log_prob_entropy(head, None, stored)
    torch.testing.assert_close(lp, d.log_prob(head, None, stored), rtol=0, atol=1e-12)
    torch.testing.assert_close(ent, d.entropy(head, None), rtol=0, atol=1e-12)
    w = torch.randn(3, 5, dtype=torch.double)
    fused = torch.autograd.grad((lp * w).sum() - 0.3 * ent, head)[0]
    plain = torch.autograd.grad((d.log_prob(head, None, stored) * w).sum() - 0.3 * d.entropy(head, None), head)[0]
    torch.testing.assert_close(fused, plain, rtol=0, atol=1e-12)
    assert torch.autograd.gradcheck(lambda h: d.log_prob_entropy(h, None, stored), (head,))


def test_native_bf16_is_read_from_the_cpu_flags():
    sapphire = "processor\t: 0\nflags\t\t: fpu sse avx512f avx512_bf16 amx_bf16 amx_tile\nbogomips\t: 4000\n"
    zen4 = "flags\t\t: fpu avx2 avx512f avx512_bf16\n"
    skylake = "flags\t\t: fpu avx2 avx512f avx512bw\nbugs\t\t: amx_bf16\n"  # only the flags line counts
    assert precision.cpuinfo_has_native_bf16(sapphire) and precision.cpuinfo_has_native_bf16(zen4)
    assert not precision.cpuinfo_has_native_bf16(skylake) and not precision.cpuinfo_has_native_bf16("")


def test_precision_resolves_auto_from_the_cpu_and_rejects_unknown_names():
    assert precision.resolve_precision("auto") == ("bf16" if precision.native_bf16() else "fp32")
    assert precision.resolve_precision("fp32") == "fp32" and precision.resolve_precision("bf16") == "bf16"
    with pytest.raises(ValueError, match="precision"):
        precision.resolve_precision("fp16")
    with pytest.raises(ValueError, match="precision"):
        VectorPPOConfig(precision="half")


def test_under_bf16_autocast_the_hidden_layers_are_bf16_and_the_outputs_fp32():
    cfg = VectorPPOConfig(net_arch=(16, 16), critic="local")
    m = ActorCritic(3, 5, 0, 2, cfg, torch.Generator().manual_seed(0))
    x = torch.randn(3, 8, 5)
    seen = []
    hook = m.critic.register_forward_hook(lambda mod, i, o: seen.append(o.dtype))
    with precision.autocast("bf16"):
        head, value = m.head(x), m.value(x, None)
        inner = torch.baddbmm(torch.zeros(1, 1, 4), torch.randn(1, 8, 3), torch.randn(1, 3, 4))
    hook.remove()
    assert inner.dtype == torch.bfloat16  # autocast is on: the products run in bf16
    assert head.dtype == torch.float32 and value.dtype == torch.float32 and seen == [torch.float32]
    ref_head, ref_value = m.head(x), m.value(x, None)  # the same network in fp32
    torch.testing.assert_close(head, ref_head, rtol=0, atol=0.05)
    torch.testing.assert_close(value, ref_value, rtol=0, atol=0.05)
    assert not torch.equal(head, ref_head)  # bf16 rounding shows: the autocast path was taken


def test_under_bf16_autocast_every_hidden_activation_is_bf16(monkeypatch):
    # the one-hot paths (the central critic's state + agent one-hot, agent_id) add a per-agent bias to the
    # first product: that bias must not promote the activations back to fp32 (measured: MAPPO's update
    # spent a third more time in copies, sigmoids and their backward when it did)
    dtypes = []
    sigmoid = torch.sigmoid
    monkeypatch.setattr(torch, "sigmoid", lambda z: dtypes.append(z.dtype) or sigmoid(z))
    for critic, agent_id in [("central", False), ("local", True), ("local", False)]:
        cfg = VectorPPOConfig(net_arch=(16, 16), critic=critic, agent_id=agent_id)
        m = ActorCritic(3, 5, 7 if critic == "central" else 0, 2, cfg, torch.Generator().manual_seed(0))
        x, state = torch.randn(3, 8, 5), torch.randn(8, 7) if critic == "central" else None
        dtypes.clear()
        with precision.autocast("bf16"):
            m.head(x), m.value(x, state)
        assert dtypes == [torch.bfloat16] * 4, (critic, agent_id, dtypes)  # 2 hidden layers x (actor, critic)
        dtypes.clear()
        m.head(x), m.value(x, state)  # fp32 without autocast (evaluation)
        assert dtypes == [torch.float32] * 4


def test_a_bf16_run_is_deterministic_and_records_its_precision(tmp_path):
    c = VectorPPOConfig(total_steps=24 * 8 * 3 * 2, num_envs=8, torch_threads=1, seed=2, precision="bf16")
    a = train_vector_ppo(AUCTION, c, tmp_path).policy.model.state_dict()
    b = train_vector_ppo(AUCTION, c).policy.model.state_dict()
    f = train_vector_ppo(AUCTION, VectorPPOConfig(**{**c.__dict__, "precision": "fp32"})).policy.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], f[k]) for k in a)
    ck = torch.load(tmp_path / "model.pt", weights_only=True)
    assert ck["meta"]["precision"] == "bf16" and all(v.dtype == torch.float32 for v in ck["model"].values())


def test_a_saved_config_from_before_bf16_resumes_in_fp32():
    old = {k: v for k, v in VectorPPOConfig().__dict__.items() if k != "precision"}
    assert VectorPPOConfig.from_dict(old).precision == "fp32"
    assert VectorPPOConfig.from_dict({"total_steps": 10}).precision == "auto"  # a partial (user) config


def test_threads_auto_is_every_core_only_with_passive_waits():
    want = torch_threads.available_cores() if torch_threads.PASSIVE_WAIT else 1
    assert torch_threads.resolve_threads("auto") == want
    assert torch_threads.resolve_threads(3) == 3 and torch_threads.resolve_threads(None) is None
    for bad in (0, -1, "all", 1.5, True):
        with pytest.raises(ValueError, match="torch_threads"):
            torch_threads.resolve_threads(bad)
    with pytest.raises(ValueError, match="torch_threads"):
        VectorPPOConfig(torch_threads=0)
    assert threads_arg("auto") == "auto" and threads_arg("2") == 2
    for bad in ("0", "bogus"):
        with pytest.raises(argparse.ArgumentTypeError, match="auto or an integer"):
            threads_arg(bad)


PROBE = ("import os, sys\n{pre}import p2penv.agents.vector_ppo\nfrom p2penv.agents import torch_threads as t\n"
         "print(os.environ.get('OMP_WAIT_POLICY'), t.PASSIVE_WAIT, t.resolve_threads('auto'))")


@pytest.mark.parametrize("pre, env, want", [
    ("", None, ("PASSIVE", "True")),  # p2penv.agents first: it sets the policy before torch loads
    ("import torch\n", None, ("None", "False", "1")),  # torch first: too late, so auto is 1 thread
    ("", "ACTIVE", ("ACTIVE", "False", "1")),  # the user's choice stands
    ("import torch\n", "passive", ("passive", "True")),  # set by the user before torch loaded
])
def test_importing_the_agents_sets_a_passive_wait_policy_before_torch(pre, env, want):
    e = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if env is not None:
        e["OMP_WAIT_POLICY"] = env
    out = subprocess.run([sys.executable, "-c", PROBE.format(pre=pre)], env=e, capture_output=True, text=True,
                         check=True).stdout.split()
    assert tuple(out[:len(want)]) == want, out
    if want[1] == "True":
        assert int(out[2]) == torch_threads.available_cores()


@pytest.mark.slow
def test_a_compiled_loss_trains_like_the_eager_one():
    c = VectorPPOConfig(total_steps=24 * 8 * 3 * 3, num_envs=8, torch_threads=1, seed=2, precision="fp32")
    eager = train_vector_ppo(AUCTION, c)
    comp = train_vector_ppo(AUCTION, VectorPPOConfig(**{**c.__dict__, "compile": True}))
    assert comp.updates == eager.updates == 3
    for k in ("policy_loss", "value_loss", "entropy"):  # same algorithm, other rounding
        assert comp.last[k] == pytest.approx(eager.last[k], rel=1e-3, abs=1e-4), k
