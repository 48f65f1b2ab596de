"""p2penv: multi-agent RL environments for peer-to-peer and transactive energy markets."""
from .registry import get_spec, list_scenarios, make, make_vector

__version__ = "0.1.0"
__all__ = ["get_spec", "list_scenarios", "make", "make_vector"]
