"""Driving the labelling window without a person: for tests, benchmarks and demos.

- :func:`collect_clips`: clips (with snapshots) of real rollouts of a random policy;
- :func:`make_human_run`: a run directory as ``prefrl train ENV --oracle human`` makes it
  (``config.json`` and the preference store), for the window to attach to;
- :class:`ScriptedPerson`: an observer for :func:`~prefrl.ui.window.run_labeling` that
  presses the key a synthetic oracle chooses, a set time after each pair appears (never
  before answers open), through pygame's real event queue.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pygame

from prefrl import __version__
from prefrl.envs.make import make_env
from prefrl.envs.vector import VecEnv
from prefrl.oracles import Oracle, PerfectOracle
from prefrl.prefs.clips import Answer, Clip, ClipCutter
from prefrl.prefs.store import PreferenceStore
from prefrl.rundir import RunDir
from prefrl.runtime.config import TrainConfig
from prefrl.ui.screen import LabelEvent

KEY_FOR_ANSWER = {
    Answer.LEFT: pygame.K_LEFT,
    Answer.RIGHT: pygame.K_RIGHT,
    Answer.EQUAL: pygame.K_UP,
    Answer.CANT_TELL: pygame.K_DOWN,
    Answer.SKIPPED: pygame.K_DOWN,  # a person has no "skip": can't tell is the nearest
}


def collect_clips(
    env_id: str,
    num_clips: int,
    clip_length: int,
    *,
    fixed_length: bool | int = False,
    seed: int = 0,
    num_envs: int = 2,
) -> list[Clip]:
    """``num_clips`` clips of ``clip_length`` steps from rollouts of a uniformly random policy.

    Each clip has its snapshots ``(clip_length, S)``, so it renders exactly. Episodes
    shorter than a clip give none (the rollout goes on until enough are cut).
    """
    envs = VecEnv([lambda: make_env(env_id, fixed_length=fixed_length)] * num_envs, capture_snapshots=True)
    envs.action_space.seed(seed)
    cutter = ClipCutter(env_id, clip_length, num_envs)
    obs = envs.reset(seed=seed)
    starts = np.ones(num_envs, dtype=bool)
    clips: list[Clip] = []
    step = 0
    try:
        while len(clips) < num_clips:
            actions = np.stack([envs.action_space.sample() for _ in range(num_envs)])
            snapshots = envs.snapshots()
            result = envs.step(actions)
            step += num_envs
            clips += cutter.cut(
                obs[None],
                actions[None],
                result.true_rewards[None],
                starts[None],
                snapshots[None],
                agent_step=step,
            )
            starts = result.terminated | result.truncated
            obs = result.obs
    finally:
        envs.close()
    return clips[:num_clips]


def make_human_run(run_dir: str | Path, env_id: str, *, labels: int = 100, **config: Any) -> RunDir:
    """A run directory as ``prefrl train ENV_ID --oracle human`` starts it: ``config.json``
    (``kind`` train, ``oracle`` human, the given settings) and an empty preference store.

    Args:
        run_dir: created if needed.
        env_id, labels, config: :class:`~prefrl.runtime.config.TrainConfig` fields.

    Raises:
        RunExistsError: the directory already holds a run (a ValueError).
    """
    run = RunDir.create(run_dir, "train", env_id, 0)
    cfg = TrainConfig(env_id=env_id, labels=labels, oracle="human", **config)
    run.write_config({"kind": "train", **cfg.to_dict(), "prefrl_version": __version__})
    PreferenceStore(run.store_path, env_id=env_id).close()
    return run


@dataclass(frozen=True)
class Press:
    """A key the scripted person pressed: the query it answers, the key, and when it was
    posted (``time.perf_counter()``)."""

    query_id: int
    key: int
    time: float


class ScriptedPerson:
    """Answers in the labelling window as ``oracle`` would, ``think_s`` after each pair
    appears, or as soon as answers open (the minimum viewing time) if that is later.

    Pass it as ``run_labeling(..., on_event=person)``. It reads the clips of each shown
    query from the run's store and posts the key of the oracle's answer (Left, Right, Up,
    Down) to pygame's event queue: right away when the time has come as answers open,
    else from a timer thread, as a person pressing a key would. Everything it saw and did is kept in
    ``shown``, ``answered`` and ``presses``.

    Args:
        store_path: the run's ``prefs.sqlite``.
        oracle: who decides (default: the perfect oracle on the true reward).
        think_s: seconds between a pair appearing and the key press.
        jitter_s: each press comes up to this many seconds earlier or later (uniform, ``seed``).
    """

    def __init__(
        self,
        store_path: str | Path,
        oracle: Oracle | None = None,
        think_s: float = 0.0,
        jitter_s: float = 0.0,
        seed: int = 0,
    ):
        self.store_path = Path(store_path)
        self.oracle = oracle if oracle is not None else PerfectOracle()
        self.think_s, self.jitter_s = think_s, jitter_s
        self.rng = np.random.default_rng(seed)
        self.shown: list[LabelEvent] = []
        self.answered: list[LabelEvent] = []
        self.presses: list[Press] = []
        self.expected: dict[int, Answer] = {}
        self._timers: list[threading.Timer] = []
        self._lock = threading.Lock()
        self._closed = False

    def __call__(self, event: LabelEvent) -> None:
        if event.kind == "answered":
            self.answered.append(event)
            return
        if event.kind == "shown":
            self.shown.append(event)
            self.expected[event.query_id] = self.decide(event.query_id)
            return
        if event.kind != "open" or not self.shown or self.shown[-1].query_id != event.query_id:
            return
        key = KEY_FOR_ANSWER[self.expected[event.query_id]]
        think = self.think_s + (self.rng.uniform(-self.jitter_s, self.jitter_s) if self.jitter_s else 0.0)
        delay = self.shown[-1].time + think - event.time
        if delay <= 0:
            self._press(event.query_id, key)
            return
        timer = threading.Timer(delay, self._press, args=(event.query_id, key))
        timer.daemon = True
        with self._lock:
            self._timers.append(timer)
        timer.start()

    def decide(self, query_id: int) -> Answer:
        """The oracle's answer to query ``query_id`` (clips read from the store)."""
        # A store of its own, opened and closed in the calling thread (a store object
        # belongs to the thread that opened it).
        with PreferenceStore(self.store_path) as store:
            query = next(q for q in store.pending_queries() if q.query_id == query_id)
            clips = store.get_clips([query.left_clip_id, query.right_clip_id])
        return self.oracle.answer(clips[query.left_clip_id], clips[query.right_clip_id])

    def _press(self, query_id: int, key: int) -> None:
        with self._lock:
            if self._closed:
                return
            posted = time.perf_counter()
            try:
                pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=key, mod=0, unicode="", scancode=0))
            except pygame.error:
                return  # the window has closed meanwhile
            self.presses.append(Press(query_id, key, posted))

    def close(self) -> None:
        """Cancel the key presses not made yet (idempotent)."""
        with self._lock:
            self._closed = True
            for timer in self._timers:
                timer.cancel()
            self._timers.clear()
