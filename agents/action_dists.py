"""Action distributions of the vector PPO: how an actor head becomes an action in ``[-1, 1]^A``.

Every distribution works on agent-major tensors ``(N, B, ...)`` (N agents, B samples each) and draws
its randomness from an explicit ``torch.Generator`` (bit-for-bit reproducible runs). What the trainer
stores per sample (``stored``) is what the log-probability is evaluated on in the update; the env gets
``env_action(stored)``.

==============  ================================================  ====================================
name            actor head (per agent and sample)                  env action
==============  ================================================  ====================================
``gaussian``    A means; a state-independent log-std parameter     the sample clipped to [-1, 1]
``tanh``        A means (pre-squash); log-std parameter            tanh(sample), never clipped
``categorical`` A x K logits (K = ``bins`` per action dimension)   bin k of dim a -> -1 + 2k/(K-1)
==============  ================================================  ====================================

Why three: the clipped Gaussian (PPO's classic choice) puts the mass past a bound on the bound, where
the gradient of the log-density no longer says anything about the reward; a pricing problem whose
optimum sits at a cliff (ask just below a buyer's value) or at a bound (full dispatch) is then learned
slowly. The tanh squash keeps the action inside the box with a smooth density. The factorised
categorical over an even grid can put all its mass on one bin (the bounds included) and can represent
a mixed strategy over prices, which pay-as-bid equilibria need; its resolution is ``2/(K-1)`` in
normalised units (with K = 41 and a 0.40 $/kWh price span: 0.01 $/kWh).
"""
from __future__ import annotations

import math
from abc import ABC, abstractmethod

try:
    import torch
except ImportError as e:  # the core install has no torch: say which extra brings it
    raise ImportError("p2penv.agents.action_dists needs torch: pip install 'p2penv[train]' "
                      "(torch==2.13.0 first on CPU-only machines; docs/install.md)") from e

DISTRIBUTIONS = ("gaussian", "tanh", "categorical")
_LOG_2PI = math.log(2.0 * math.pi)


class ActionDist(ABC):
    """Interface. ``head``: actor output ``(N, B, head_dim)``; ``log_std``: ``(G, 1, A)`` or None."""

    has_log_std = True

    def __init__(self, act_dim: int):
        self.act_dim = act_dim

    @property
    def head_dim(self) -> int:
        return self.act_dim

    @abstractmethod
    def sample(self, head, log_std, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """``(stored (N, B, A), log_prob (N, B))``."""

    @abstractmethod
    def log_prob(self, head, log_std, stored) -> torch.Tensor:
        """Log-probability ``(N, B)`` of stored actions."""

    @abstractmethod
    def entropy(self, head, log_std) -> torch.Tensor:
        """Mean entropy per agent and sample (nats)."""

    def log_prob_entropy(self, head, log_std, stored) -> tuple[torch.Tensor, torch.Tensor]:
        """``(log_prob (N, B), entropy)`` of ``log_prob`` and ``entropy`` together (the PPO loss needs both of
        the same head; a distribution may share the work)."""
        return self.log_prob(head, log_std, stored), self.entropy(head, log_std)

    @abstractmethod
    def env_action(self, stored) -> torch.Tensor:
        """Stored actions -> env actions in [-1, 1]."""

    @abstractmethod
    def mode(self, head) -> torch.Tensor:
        """The deterministic action in [-1, 1] (evaluation)."""

    @abstractmethod
    def mean(self, head) -> torch.Tensor:
        """The expected env action in [-1, 1] (evaluation; equals ``mode`` once the policy is pure)."""


class GaussianDist(ActionDist):
    """Diagonal Gaussian, sampled unbounded; the env gets the sample clipped to [-1, 1]."""

    def sample(self, head, log_std, gen):
        noise = torch.randn(head.shape, generator=gen)
        stored = head + log_std.exp() * noise
        c = log_std.sum(-1) + 0.5 * _LOG_2PI * self.act_dim  # (G, 1)
        return stored, -0.5 * (noise * noise).sum(-1) - c

    def log_prob(self, head, log_std, stored):
        z = (stored - head) * torch.exp(-log_std)
        return (-0.5 * z * z - log_std).sum(-1) - 0.5 * _LOG_2PI * self.act_dim

    def entropy(self, head, log_std):
        return (log_std.sum((1, 2)) + 0.5 * (1.0 + _LOG_2PI) * self.act_dim).mean()

    def env_action(self, stored):
        return stored.clamp(-1.0, 1.0)

    def mode(self, head):
        return head.clamp(-1.0, 1.0)

    def mean(self, head):
        return self.mode(head)  # the clipped mean, as for the mode (the policy's centre)


class TanhGaussianDist(GaussianDist):
    """Gaussian in the pre-squash space, action ``tanh(z)``. The stored value is z: the Jacobian of
    the squash is the same for the old and the new policy, so the PPO ratio needs only the Gaussian
    density of z; the entropy is the Gaussian's (the usual proxy, as in SB3)."""

    def env_action(self, stored):
        return torch.tanh(stored)

    def mode(self, head):
        return torch.tanh(head)

    def mean(self, head):
        return torch.tanh(head)


class CategoricalDist(ActionDist):
    """Independent categoricals, one per action dimension, over ``bins`` evenly spaced points of [-1, 1]."""

    has_log_std = False

    def __init__(self, act_dim: int, bins: int):
        super().__init__(act_dim)
        if bins < 2:
            raise ValueError(f"action_bins: need >= 2 bins, got {bins}")
        self.bins = bins

    @property
    def head_dim(self) -> int:
        return self.act_dim * self.bins

    def _logits(self, head):
        return torch.log_softmax(head.unflatten(-1, (self.act_dim, self.bins)), -1)  # (N, B, A, K)

    def sample(self, head, log_std, gen):
        lp = self._logits(head)
        # inverse CDF: the first bin whose cumulative probability reaches u ~ U(0, 1), one uniform per
        # categorical (Gumbel-max needs one per bin and an argmax: measured 2.4x slower on 61 bins)
        u = torch.rand(lp.shape[:-1] + (1,), generator=gen, dtype=lp.dtype)
        idx = inverse_cdf_index(lp.exp().cumsum_(-1), u)
        return idx.to(head.dtype), lp.gather(-1, idx.unsqueeze(-1)).squeeze(-1).sum(-1)

    def log_prob(self, head, log_std, stored):
        return self._logits(head).gather(-1, stored.long().unsqueeze(-1)).squeeze(-1).sum(-1)

    def entropy(self, head, log_std):
        lp = self._logits(head)
        return -(lp.exp() * lp).sum((-1, -2)).mean()

    def log_prob_entropy(self, head, log_std, stored):
        lp, ent = _LogProbEntropy.apply(head.unflatten(-1, (self.act_dim, self.bins)), stored.long())
        return lp.sum(-1), ent.sum(-1).mean()

    def env_action(self, stored):
        return stored * (2.0 / (self.bins - 1)) - 1.0

    def mode(self, head):
        return self.env_action(torch.argmax(head.unflatten(-1, (self.act_dim, self.bins)), -1).to(head.dtype))

    def mean(self, head):
        k = torch.arange(self.bins, dtype=head.dtype)
        return self.env_action((self.probs(head) * k).sum(-1))

    def probs(self, head) -> torch.Tensor:
        """``(N, B, A, K)`` probabilities of the bins (a mixed strategy over the grid)."""
        return self._logits(head).exp()


def inverse_cdf_index(cdf: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """The bin whose cumulative probability first exceeds ``u`` (``cdf (..., K)`` non-decreasing, ``u (..., 1)``
    in [0, 1)): bin j with probability ``p_j``. The two ends never land on a bin without mass: ``u = 0`` skips
    leading bins whose probability underflowed to 0, and a ``u`` at or above a rounded total just short of 1
    takes the last bin with mass, not bin K - 1."""
    below = (cdf < u.clamp(min=torch.finfo(cdf.dtype).tiny)).sum(-1)
    return torch.minimum(below, (cdf < cdf[..., -1:]).sum(-1))


class _LogProbEntropy(torch.autograd.Function):
    """Per categorical (last axis: logits ``z``, K bins): the log-probability of bin ``idx`` and the entropy,
    from one log-softmax, with the backward written out: d log p_a / dz = onehot(a) - p and
    dH / dz = -p (log p + H). Autograd through ``log_softmax`` twice plus the entropy's product makes ~4x the
    elementwise passes (measured: a third of the PPO update under bf16)."""

    @staticmethod
    def forward(ctx, z, idx):
        lp = torch.log_softmax(z, -1)
        p = lp.exp()
        ent = -(p * lp).sum(-1)
        ctx.save_for_backward(p, lp, ent, idx)
        return lp.gather(-1, idx.unsqueeze(-1)).squeeze(-1), ent

    @staticmethod
    def backward(ctx, g_lp, g_ent):
        p, lp, ent, idx = ctx.saved_tensors
        g = lp + ent.unsqueeze(-1)
        g.mul_(g_ent.unsqueeze(-1)).add_(g_lp.unsqueeze(-1)).mul_(p).neg_()
        g.scatter_add_(-1, idx.unsqueeze(-1), g_lp.unsqueeze(-1))
        return g, None


def make_dist(name: str, act_dim: int, bins: int) -> ActionDist:
    if name == "gaussian":
        return GaussianDist(act_dim)
    if name == "tanh":
        return TanhGaussianDist(act_dim)
    if name == "categorical":
        return CategoricalDist(act_dim, bins)
    raise ValueError(f"action_dist: expected one of {DISTRIBUTIONS}, got {name!r}")
