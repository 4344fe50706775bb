import os
import signal

# A suite started in the background by a shell without job control (`cmd &` in a
# script, `(cmd &)`) inherits SIGINT ignored, and so would every process it starts: no
# test could send them a Ctrl-C. Take it back, as a terminal's foreground job has it (a
# process started after this gets SIGINT's default).
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
os.environ.setdefault("MUJOCO_GL", "egl")

import pytest
import torch

from prefrl.oracles import Oracle, make_oracle
from prefrl.prefs.clips import Answer, Clip

torch.set_num_threads(1)


class InterruptAfter(Oracle):
    """The perfect teacher, until Ctrl-C arrives after ``answers`` answers."""

    def __init__(self, answers: int):
        self.inner = make_oracle("perfect")
        self.name = self.inner.name
        self.left = answers

    def answer(self, left: Clip, right: Clip) -> Answer:
        if self.left == 0:
            raise KeyboardInterrupt
        self.left -= 1
        return self.inner.answer(left, right)


@pytest.fixture
def no_run(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """A run's execution replaced (train and resume check and prepare as usual): records
    the run directories it would have run."""
    started: list[str] = []

    def execute(config: object, run: object, **kwargs: object) -> dict[str, object]:
        started.append(str(run.path))  # type: ignore[attr-defined]
        return {"run_dir": str(run.path), "complete": True}  # type: ignore[attr-defined]

    monkeypatch.setattr("prefrl.runtime.run._execute", execute)
    return started


# `prefrl train` flags for a small run that finishes in seconds (tests that start the CLI)
SMALL_RUN_FLAGS = [
    "--clip-length",
    "25",
    "--quiet",
    "--no-video",
    "--ppo",
    "num_envs=2",
    "--ppo",
    "num_steps=256",
    "--reward-model",
    "epochs_per_round=2",
]


def assert_same_next_update(agent, clone) -> None:
    """``clone`` (an agent restored from ``agent``'s checkpoint) makes the same next PPO
    update as ``agent``: on the same rollout, identical weights after it."""
    from prefrl.reward import TrueReward

    rollout = agent.collect()
    clone_rollout = clone.collect()
    clone_rollout.__dict__.update(rollout.__dict__)
    torch.manual_seed(0)
    agent.train(rollout, TrueReward())
    torch.manual_seed(0)
    clone.train(clone_rollout, TrueReward())
    for a, b in zip(agent.policy.parameters(), clone.policy.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.fixture(autouse=True)
def _task_registry_as_it_was():
    """Tasks a test registers (from its own task files) do not outlive it."""
    from prefrl import tasks

    registered, loaded = dict(tasks.TASKS), set(tasks._LOADED_SOURCES)
    yield
    tasks.TASKS.clear()
    tasks.TASKS.update(registered)
    tasks._LOADED_SOURCES.clear()
    tasks._LOADED_SOURCES.update(loaded)
