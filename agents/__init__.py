"""Trainers and agents (torch extras). Importing the package sets ``OMP_WAIT_POLICY=PASSIVE`` (unless set)
before any submodule loads torch: see ``p2penv.agents.torch_threads``."""
from . import torch_threads  # noqa: F401  (first: the OpenMP wait policy must precede torch)
