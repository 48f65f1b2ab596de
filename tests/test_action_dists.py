"""Action distributions of the vector PPO (agents.action_dists): densities, entropies, grids, draws."""
import math

import numpy as np
import pytest
import torch

from p2penv.agents.action_dists import CategoricalDist, GaussianDist, TanhGaussianDist, inverse_cdf_index, make_dist


def test_categorical_grid_log_prob_entropy_and_points():
    d = CategoricalDist(act_dim=2, bins=5)
    assert d.head_dim == 10
    np.testing.assert_allclose(d.env_action(torch.arange(5.0)).numpy(), [-1.0, -0.5, 0.0, 0.5, 1.0])
    head = torch.zeros(1, 3, 10)  # uniform over 5 bins in both dimensions
    assert d.entropy(head, None).item() == pytest.approx(2 * math.log(5))
    lp = d.log_prob(head, None, torch.tensor([[[0.0, 4.0]] * 3]))
    np.testing.assert_allclose(lp.numpy(), np.full((1, 3), 2 * math.log(1 / 5)), rtol=1e-6)
    np.testing.assert_allclose(d.mean(head).numpy(), 0.0, atol=1e-6)  # symmetric grid (float32)
    peaked = torch.full((1, 1, 10), -30.0)
    peaked[0, 0, 1] = 30.0  # dim 0 -> bin 1 (-0.5)
    peaked[0, 0, 5 + 4] = 30.0  # dim 1 -> bin 4 (+1)
    np.testing.assert_allclose(d.mode(peaked).numpy(), [[[-0.5, 1.0]]])
    np.testing.assert_allclose(d.mean(peaked).numpy(), [[[-0.5, 1.0]]], atol=1e-6)


def test_categorical_draws_follow_the_softmax_and_report_their_log_prob():
    d = CategoricalDist(act_dim=1, bins=4)
    logits = torch.tensor([0.0, 1.0, 2.0, -1.0])
    head = logits.expand(1, 200_000, 4).clone()
    stored, logp = d.sample(head, None, torch.Generator().manual_seed(0))
    freq = np.bincount(stored[0, :, 0].long().numpy(), minlength=4) / 200_000
    np.testing.assert_allclose(freq, torch.softmax(logits, 0).numpy(), atol=0.005)
    torch.testing.assert_close(logp, d.log_prob(head, None, stored))
    again, _ = d.sample(head, None, torch.Generator().manual_seed(0))
    assert torch.equal(stored, again)  # the generator makes draws reproducible


def test_inverse_cdf_draws_never_land_on_a_bin_without_mass():
    p = torch.tensor([0.0, 0.3, 0.0, 0.5, 0.2 - 1e-7, 0.0, 0.0])  # total rounded short of 1, empty ends
    c = p.cumsum(0).expand(5, 7)
    u = torch.tensor([0.0, 0.3, 0.31, 0.9, 0.99999994]).unsqueeze(-1)  # 0, on a step, inside, last, above the total
    assert inverse_cdf_index(c, u).tolist() == [1, 1, 3, 4, 4]
    assert float(c[0, -1]) < 0.99999994  # the last u is past the rounded total: clamping would give bin 6


def test_gaussian_log_prob_matches_torch_and_clips_for_the_env():
    d = GaussianDist(act_dim=2)
    head = torch.randn(3, 5, 2, generator=torch.Generator().manual_seed(1))
    log_std = torch.tensor([[[-0.3, 0.2]]])
    stored, logp = d.sample(head, log_std, torch.Generator().manual_seed(2))
    ref = torch.distributions.Normal(head, log_std.exp()).log_prob(stored).sum(-1)
    torch.testing.assert_close(logp, ref)
    torch.testing.assert_close(d.log_prob(head, log_std, stored), ref)
    assert d.env_action(torch.tensor([3.0, -2.0, 0.5])).tolist() == [1.0, -1.0, 0.5]
    assert d.entropy(head, log_std).item() == pytest.approx(float(torch.distributions.Normal(0, log_std.exp())
                                                                  .entropy().sum()))


def test_tanh_squash_stays_inside_the_box():
    d = TanhGaussianDist(act_dim=1)
    a = d.env_action(torch.tensor([-50.0, 0.0, 50.0]))
    assert a.min() >= -1.0 and a.max() <= 1.0 and a[1] == 0.0
    with pytest.raises(ValueError, match="action_dist"):
        make_dist("beta", 2, 41)
    with pytest.raises(ValueError, match="action_bins"):
        CategoricalDist(2, 1)


def test_without_torch_the_import_names_the_extra():
    import subprocess
    import sys

    code = ("import sys; sys.modules['torch'] = None\ntry:\n    import p2penv.agents.vector_ppo\n"
            "except ImportError as e:\n    print(e)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert "needs torch: pip install 'p2penv[train]'" in out.stdout, out.stderr[-500:]
