"""What the three roles send each other, and the channels that carry it.

Every message is plain data (dataclasses of numpy arrays, numbers, strings, and CPU
tensors in state dicts): never an env, a file handle, a lock or a lambda. So a backend
can carry them over threads, processes or machines without the roles knowing.

- clips: agent -> labeler, bounded; the agent never waits (a full queue drops the batch).
  Once the agent has taken all its steps the backend sends the labeler one last, empty
  batch marked ``final``: from then on the labeler asks for the whole remaining budget.
- weights: reward trainer -> agent and labeler, versioned, latest wins.
- status: every role -> the backend (metrics, "done", errors).

The in-process versions live here; :mod:`prefrl.runtime.multiprocess` carries the same
messages between processes. Both satisfy the same small interfaces.
"""

from __future__ import annotations

import collections
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from prefrl.prefs.clips import Clip


@dataclass
class ClipBatch:
    """Clips the agent cut from one rollout; ``agent_step`` is its env-step count after it.

    ``final``: the agent has finished; no clips will follow this batch.
    """

    clips: list[Clip]
    agent_step: int
    final: bool = False


@dataclass
class Status:
    """A report from a role: ``kind`` is ``metrics``, ``done`` or ``error``."""

    role: str
    kind: str
    agent_step: int
    values: dict[str, Any] = field(default_factory=dict)
    time: float = field(default_factory=time.time)


class ClipSender(Protocol):
    def put(self, batch: ClipBatch) -> bool:
        """Offer a batch without waiting; False if it was dropped (the labeler is behind)."""
        ...


class ClipReceiver(Protocol):
    def get_all(self, timeout: float = 0.0) -> list[ClipBatch]:
        """Every waiting batch; waits up to ``timeout`` seconds for the first one."""
        ...


class WeightPublisher(Protocol):
    def publish(self, state: dict[str, Any]) -> None:
        """Send a reward-model state dict (with its ``version``) to every subscriber."""
        ...


class WeightSubscriber(Protocol):
    def latest(self) -> dict[str, Any] | None:
        """The newest state published since the last call, or None if nothing new."""
        ...


class StatusSender(Protocol):
    def put(self, status: Status) -> None: ...


class StopFlag(Protocol):
    def is_set(self) -> bool: ...


# ------------------------------------------------------------------- in-process
class LocalClipQueue:
    """A bounded FIFO in one process (drops the batch when full, like the process queue)."""

    def __init__(self, maxsize: int = 64):
        self.items: collections.deque[ClipBatch] = collections.deque()
        self.maxsize = maxsize

    def put(self, batch: ClipBatch) -> bool:
        if len(self.items) >= self.maxsize:
            return False
        self.items.append(batch)
        return True

    def get_all(self, timeout: float = 0.0) -> list[ClipBatch]:
        out = list(self.items)
        self.items.clear()
        return out


class LocalWeights:
    """Latest-wins weight channel for one subscriber in the same process."""

    def __init__(self) -> None:
        self._state: dict[str, Any] | None = None

    def publish(self, state: dict[str, Any]) -> None:
        self._state = state

    def latest(self) -> dict[str, Any] | None:
        state, self._state = self._state, None
        return state


class Fanout:
    """Publishes to several subscribers' channels at once."""

    def __init__(self, *channels: WeightPublisher):
        self.channels = channels

    def publish(self, state: dict[str, Any]) -> None:
        for channel in self.channels:
            channel.publish(state)


class LocalStatus:
    """Collects statuses in a list (the in-process backend reads them after each step)."""

    def __init__(self) -> None:
        self.items: list[Status] = []

    def put(self, status: Status) -> None:
        self.items.append(status)

    def drain(self) -> list[Status]:
        out, self.items = self.items, []
        return out


# ------------------------------------------------------------------ restarts
class RunMemory:
    """What a backend keeps for a role that starts again: the newest weights (or a
    reference to them), the recent clips (enough for a pool of ``pool_size``) and the
    agent's final batch once it has finished."""

    def __init__(self, pool_size: int):
        self.pool_size = pool_size
        self.weights: Any = None
        self.recent_clips: collections.deque[ClipBatch] = collections.deque()
        self.final: ClipBatch | None = None

    def keep_clips(self, batch: ClipBatch) -> None:
        self.recent_clips.append(batch)
        kept = sum(len(b.clips) for b in self.recent_clips)
        while kept - len(self.recent_clips[0].clips) >= self.pool_size:
            kept -= len(self.recent_clips.popleft().clips)

    def for_new(self, role: str) -> list[tuple[str, Any]]:
        """The ``(kind, payload)`` messages a new incarnation of ``role`` is sent first."""
        messages: list[tuple[str, Any]] = []
        if self.weights is not None and role != "reward_trainer":
            messages.append(("weights", self.weights))
        if role == "labeler":
            messages += [("clips", batch) for batch in self.recent_clips]
            if self.final is not None:
                messages.append(("final", self.final))
        return messages
