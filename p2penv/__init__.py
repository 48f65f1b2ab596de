"""p2penv: multi-agent RL environments for peer-to-peer and transactive energy markets."""
__version__ = "0.1.0"
