"""prefrl: deep reinforcement learning from human preferences for gymnasium control tasks.

``prefrl.load_reward_model(run_dir)`` and ``prefrl.LearnedRewardWrapper(env, model)`` put a
learned reward into any gymnasium env; ``prefrl.make_env`` builds envs the way prefrl does.
"""

from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "load_reward_model": "prefrl.reward.wrapper",
    "LearnedRewardWrapper": "prefrl.reward.wrapper",
    "RewardModel": "prefrl.reward.model",
    "make_env": "prefrl.envs.make",
}


def __getattr__(name: str) -> Any:
    # keeps `import prefrl` light: torch and gymnasium load on first use
    if name in _LAZY:
        import importlib

        if name == "make_env":  # the behaviour tasks' ids (prefrl/...) too
            importlib.import_module("prefrl.tasks")
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'prefrl' has no attribute {name!r}")
