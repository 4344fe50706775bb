"""prefrl: deep reinforcement learning from human preferences for gymnasium control tasks."""

__version__ = "0.1.0"
