"""Behaviour tasks: teaching something nobody wrote a reward for ("backflip", "spin", ...).

A task is an env, an instruction shown to the person labelling, and a scripted
behaviour oracle that stands in for a person who wants that behaviour: a per-step
*behaviour reward* the scripted oracle sums over each clip, and a *measure* of the
behaviour per episode (e.g. full rotations) to report before and after training, with
more measures if one number does not say it (backflip: turns and clean flips). The
agent never sees either; it only learns from the labels. A task may append to the
observation what a person sees in the video and the env's observation lacks (backflip:
whether the foot touches the floor). A walk-through: docs/tasks.md.

Each task is registered as a gymnasium id (``prefrl/PendulumSpin-v0``, ...) whose "true
reward" is the behaviour reward, so the whole pipeline (synthetic oracle, evaluation,
baselines) works on it unchanged. Episodes have a fixed length: a flip or a fall must
not end the episode.

Define a new task in a few lines::

    from prefrl.tasks import Task, register_task

    def tilt_right(env, obs, action, next_obs):          # the scripted person's taste
        return float(next_obs[2] > 0.05)                  # pole leaning right

    register_task(Task(
        name="lean", env_id="CartPole-v1", instruction="Which pole leans to the right?",
        behaviour_reward=tilt_right, measure=lambda env, rewards: float(sum(rewards)),
        measure_name="steps leaning right",
    ))

in a file ``my_tasks.py``, and run ``prefrl train --task my_tasks.py:lean`` (or
``--task my_package.tasks:lean`` for a module): every process of the run, and ``prefrl
resume``, loads that file again to find the task.

A task file is Python: loading it runs it. So it is loaded only once the user has said
they trust it: ``prefrl train --task FILE.py:NAME`` names it; a run directory's
``config.json`` naming it is not enough (it may come from someone else), and ``prefrl
resume`` / ``prefrl play`` ask for ``--trust-task-file`` or ``--task FILE.py:NAME`` again.
In Python, :func:`trust_task_file` does the same. Trust is handed to the run's child
processes through the environment variable ``PREFRL_TRUSTED_TASK_FILES``.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import math
import os
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from prefrl.envs.make import make_env, own_time_limit, register_base_env
from prefrl.envs.wrappers import RestartWhen
from prefrl.errors import ConfigError, PrefrlError
from prefrl.task_library import (
    cartpole_right_reward,
    count_clean_flips,
    hopper_backflip_reward,
    hopper_fallen,
    hopper_flight_turn,
    hopper_flip_reward,
    hopper_foot_down,
    hopper_landing_credit,
    hopper_touching,
    hopper_trace,
    hopper_turning_rate,
    pendulum_rotations,
    pendulum_spin_reward,
    seconds_on_one_leg,
    seconds_right,
    walker_left_foot_down,
    walker_right_foot_down,
    walker_stork_reward,
    walker_trace,
)
from prefrl.task_spec import (
    AnglesAsCosSin,
    BehaviourReward,
    EpisodeTrace,
    Measure,
    ObservationExtras,
    ObsExtra,
    Task,
)


# ----------------------------------------------------------------------- tasks
def _hopper_clean_flips(episode: EpisodeTrace) -> float:
    flips = 0
    for stretch in episode.stretches():
        angle, height, foot_down = episode.states[stretch].T
        flips += count_clean_flips(angle, height, foot_down > 0.5)
    return float(flips)


def _hopper_backward_turns(episode: EpisodeTrace) -> float:
    # the torso's hinge is not limited: its angle at a stretch's end is the net turn since
    # the stretch began (a restart stands it up at about 0 again)
    angle = episode.states[:, 0]
    return float(sum(max(0.0, -angle[s][-1]) for s in episode.stretches()) / (2 * math.pi))


def _walker_seconds_on_left_leg(episode: EpisodeTrace) -> float:
    left_down, right_down, angle, height = episode.states.T
    return seconds_on_one_leg(
        left_down > 0.5,
        right_down > 0.5,
        angle,
        height,
        float(episode.env.unwrapped.dt),  # type: ignore[attr-defined]
    )


TASKS: dict[str, Task] = {}


def register_task(task: Task) -> Task:
    """Add a task (and its gymnasium id) so ``--task NAME`` finds it."""
    TASKS[task.name] = task
    register_base_env(task.gym_id, task.env_id)
    if task.gym_id not in gym.registry:
        gym.register(
            id=task.gym_id,
            entry_point=_make_task_env,  # type: ignore[arg-type]
            max_episode_steps=task.horizon,
            kwargs={"task_name": task.name},
        )
    return task


def _make_task_env(task_name: str, render_mode: str | None = None, **kwargs: Any) -> gym.Env:
    task = TASKS[task_name]
    # own_time_limit registers a namespace gymnasium learns of on first use (MinAtar/,
    # ALE/), and names an unknown env id in one line
    own_time_limit(task.env_id)
    env: gym.Env = gym.make(
        task.env_id, render_mode=render_mode, **{**dict(task.env_kwargs), **kwargs}
    ).unwrapped
    if task.restart_when is not None:
        env = RestartWhen(env, task.restart_when, task.restart_after)
    if task.angle_obs:
        env = AnglesAsCosSin(env, task.angle_obs)
    if task.obs_extras:
        env = ObservationExtras(env, task.obs_extras)
    return BehaviourReward(env, task)


register_task(
    Task(
        name="spin",
        env_id="Pendulum-v1",
        instruction="Which pendulum is spinning counter-clockwise more?",
        behaviour_reward=pendulum_spin_reward,
        measure=pendulum_rotations,
        measure_name="counter-clockwise rotations per episode",
        horizon=200,
        clip_length=50,
        labels=200,
        steps=200_000,
    )
)
HOPPER_CONTACT_EXTRAS = (
    ObsExtra("foot on the floor", hopper_foot_down, 0.0, 1.0),
    ObsExtra("touching the floor", hopper_touching, 0.0, 1.0),
    ObsExtra("torso turning rate", hopper_turning_rate),
)
# The backflip as it was before a landing was paid (commit 046d2a3): not registered, kept
# for the persons in docs/benchmarks/data/backflip_trials that build on it.
BACKFLIP_TUMBLING = Task(
    name="backflip_tumbling",
    env_id="Hopper-v5",
    instruction="Which one is closer to a backflip?",
    behaviour_reward=hopper_backflip_reward,
    measure=Measure("backward turns per episode", _hopper_backward_turns),
    horizon=1000,
    clip_length=64,
    env_kwargs=(("terminate_when_unhealthy", False),),
    labels=900,  # as many as the paper's human gave for its backflip
    steps=1_000_000,
    angle_obs=(1,),  # the torso angle
    obs_extras=HOPPER_CONTACT_EXTRAS,
    trace=hopper_trace,
    more_measures=(Measure("clean flips per episode", _hopper_clean_flips),),
)
register_task(
    dataclasses.replace(
        BACKFLIP_TUMBLING,
        name="backflip",
        behaviour_reward=hopper_flip_reward,
        obs_extras=(
            *HOPPER_CONTACT_EXTRAS,
            ObsExtra("turned in this flight (turns)", hopper_flight_turn),
            ObsExtra("landing credit", hopper_landing_credit, 0.0, 1.0),
        ),
        # a hopper lying on the floor is stood up again: a failed flip costs a moment, not
        # the rest of the episode
        restart_when=hopper_fallen,
        restart_after=50,
        # PPO's per-step noise did not find the lean, jump and tuck of a flip; pink noise,
        # correlated over tens of steps, did (docs/benchmarks/tasks.md)
        ppo=(("noise_beta", 1.0),),
    )
)
register_task(
    Task(
        name="right",
        env_id="CartPole-v1",
        instruction="Which cart keeps its pole up on the right side of the track?",
        behaviour_reward=cartpole_right_reward,
        measure=seconds_right,
        measure_name="seconds upright on the right side per episode",
        horizon=200,
        clip_length=50,
        labels=400,
        # Balancing is learned before moving right, and moving right pays off over more
        # steps than CartPole's discount of 0.98 looks ahead: with 0.98, or with 300k
        # steps, a seed in three stayed in the middle (docs/benchmarks/tasks.md).
        steps=600_000,
        ppo=(("gamma", 0.99),),
    )
)

register_task(
    Task(
        name="stork",
        env_id="Walker2d-v5",
        instruction="Which walker stands still on its purple leg, the other foot off the floor?",
        behaviour_reward=walker_stork_reward,
        measure=Measure("seconds standing on the purple (left) leg per episode", _walker_seconds_on_left_leg),
        horizon=1000,
        clip_length=64,
        env_kwargs=(("terminate_when_unhealthy", False),),
        labels=500,
        steps=500_000,
        obs_extras=(
            ObsExtra("purple foot on the floor", walker_left_foot_down, 0.0, 1.0),
            ObsExtra("other foot on the floor", walker_right_foot_down, 0.0, 1.0),
        ),
        trace=walker_trace,
    )
)


TRUSTED_TASK_FILES_ENV = "PREFRL_TRUSTED_TASK_FILES"
"""the environment variable listing trusted task files (os.pathsep-separated absolute
paths), so that the child processes of a run trust what their parent trusts"""
_TRUSTED: set[str] = set()


class UntrustedTaskFile(PrefrlError):
    """A task file nobody said to trust: loading it would run its code."""

    def __init__(self, path: str, name: str, run_dir: str | Path | None = None):
        self.path, self.name, self.run_dir = path, name, run_dir
        where = f"config.json of {run_dir} names the task file {path}" if run_dir else f"the task file {path}"
        super().__init__(
            f"{where}, which runs code when loaded; run it only if you trust it: add "
            f"--trust-task-file (or pass --task {path}:{name} again)"
        )

    def for_run(self, run_dir: str | Path) -> UntrustedTaskFile:
        """The same refusal, naming the run directory whose config.json named the file."""
        return UntrustedTaskFile(self.path, self.name, run_dir)


class TaskMismatch(PrefrlError):
    """``--task`` names another task than the run's."""


def trust_task_file(*paths: str | Path) -> None:
    """Let :func:`get_task` load the task files ``paths`` in this process and in the
    processes it starts from now on (the user said they trust them)."""
    _TRUSTED.update(str(Path(path).resolve()) for path in paths)
    os.environ[TRUSTED_TASK_FILES_ENV] = os.pathsep.join(sorted(_trusted_files()))


def trusted_task_files() -> list[str]:
    """The task files this process trusts: what a process that does not inherit its
    environment (a Ray actor on a cluster started elsewhere) is given to trust."""
    return sorted(_trusted_files())


def trust_task(name: str) -> None:
    """Trust the file of a task named ``FILE.py:NAME`` (other names load no file)."""
    source = name.rpartition(":")[0]
    if source.endswith(".py"):
        trust_task_file(source)


def is_trusted_task_file(path: str | Path) -> bool:
    return str(Path(path).resolve()) in _trusted_files()


def _trusted_files() -> set[str]:
    inherited = os.environ.get(TRUSTED_TASK_FILES_ENV, "")
    return _TRUSTED | {p for p in inherited.split(os.pathsep) if p}


def trust_run_task(
    run_task: str | None, *, named: str | None = None, trust: bool = False, run_dir: str | Path = ""
) -> None:
    """Trust the task file a run's ``config.json`` names (``run_task``) if the user said
    so: ``trust`` (--trust-task-file), or ``named`` the same task again (--task).

    Raises:
        TaskMismatch: ``named`` is not the run's task.
    """
    if named is not None:
        if not run_task or portable_task_name(named) != run_task:
            named_source = named.rpartition(":")[0]
            if named_source.endswith(".py") and not Path(named_source).is_file():
                raise ConfigError(f"--task {named}: task file {named_source} not found")
            raise TaskMismatch(
                f"--task {named} is not the task of {run_dir or 'the run'} ({run_task or 'none'}); "
                "pass the task its config.json names, or --trust-task-file"
            )
    if run_task and (trust or named is not None):
        trust_task(run_task)


def open_run_task(
    run_task: str | None, *, named: str | None = None, trust: bool = False, run_dir: str | Path = ""
) -> Task | None:
    """The task a run's ``config.json`` names (``run_task``; None for a run without one),
    loaded so that its env id is registered in this process; a task file only if the user
    trusts it (see :func:`trust_run_task`), and from the user's copy (``named``) if the
    file is not where the run recorded it (:func:`locate_run_task`).

    Raises:
        UntrustedTaskFile: the file is not trusted (naming ``run_dir``).
        TaskMismatch: ``named`` is not the run's task.
        ConfigError: the task is unknown to this prefrl, or its file is gone.
    """
    run_task = locate_run_task(run_task, named)
    trust_run_task(run_task, named=named, trust=trust, run_dir=run_dir)
    if not run_task:
        return None
    try:
        return get_task(run_task)
    except UntrustedTaskFile as err:
        raise err.for_run(run_dir) from None
    except ConfigError as err:
        source, _, short = run_task.rpartition(":")
        if source.endswith(".py") and not Path(source).is_file():
            raise ConfigError(
                f"config.json of {run_dir} names the task file {source}, which is not on this machine "
                f"(the run was made or moved elsewhere): pass --task FILE.py:{short} with your copy of "
                "that file"
            ) from None
        raise ConfigError(f"config.json of {run_dir} names the task {run_task}: {err}") from None


def locate_run_task(run_task: str | None, named: str | None) -> str | None:
    """The name under which this machine finds a run's task: ``run_task`` (its
    ``config.json``'s), or, where that names a task file that is not here (a run made
    on another machine, or moved), ``named`` (``--task``) if it names the same task in a
    file that is here: the user's copy of the file."""
    if not run_task or named is None:
        return run_task
    source, _, short = run_task.rpartition(":")
    named_source, _, named_short = named.rpartition(":")
    if (
        source.endswith(".py")
        and not Path(source).is_file()
        and named_short == short
        and named_source.endswith(".py")
        and Path(named_source).is_file()
    ):
        return portable_task_name(named)
    return run_task


def open_named_task(name: str) -> Task:
    """The task the user named with ``--task`` (``NAME`` or ``FILE.py:NAME``), loaded:
    naming a file says they trust it.

    Raises:
        ConfigError: no such task or file, naming ``--task``.
    """
    trust_task(name)
    try:
        return get_task(name)
    except ConfigError as err:
        raise ConfigError(f"--task {name}: {err}") from None


def get_task(name: str) -> Task:
    """The task ``name``: a registered one, or ``FILE.py:NAME`` / ``MODULE:NAME``, a task
    that file or module registers (loaded once per process, on first use).

    Raises:
        UntrustedTaskFile: ``FILE.py`` was not trusted (:func:`trust_task_file`).
        ConfigError (a ValueError): no such task, file or module.
    """
    source, _, short = name.rpartition(":")
    if source and source not in _LOADED_SOURCES:
        if source.endswith(".py") and Path(source).is_file() and not is_trusted_task_file(source):
            raise UntrustedTaskFile(source, short)
        _load_task_source(source)
        _LOADED_SOURCES.add(source)
    if short not in TASKS:
        if source:
            what = f"{source} registers no task {short!r}"
        elif short.endswith(".py"):
            what = f"{short} is a file: name its task too, {short}:NAME"
        else:
            what = f"unknown task {short!r}"
        raise ConfigError(
            f"{what}; known tasks: {', '.join(sorted(TASKS))}. Your own: --task FILE.py:NAME "
            "with a file that calls prefrl.tasks.register_task(Task(name=NAME, ...))"
        )
    return TASKS[short]


_LOADED_SOURCES: set[str] = set()


def portable_task_name(name: str) -> str:
    """``name`` with a task file's path made absolute (``FILE.py:NAME``), so that child
    processes and ``prefrl resume`` find the file from any working directory."""
    source, _, short = name.rpartition(":")
    return f"{Path(source).resolve()}:{short}" if source.endswith(".py") else name


def _load_task_source(source: str) -> None:
    if source.endswith(".py"):
        path = Path(source)
        if not path.is_file():
            raise ConfigError(f"task file {source} not found")
        spec = importlib.util.spec_from_file_location(f"prefrl_user_tasks_{path.stem}", path)
        if spec is None or spec.loader is None:
            raise ConfigError(f"cannot load task file {source}")
        module = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(module)
        except SyntaxError as err:
            raise ConfigError(
                f"task file {source} is not valid Python: {err.filename}:{err.lineno}: {err.msg}"
            ) from None
        except ModuleNotFoundError as err:
            if err.name is None:
                raise
            raise ConfigError(
                f"task file {source} imports {err.name}, which is not installed: install the package "
                "that provides it in this Python environment (or fix the import)"
            ) from None
        except ImportError as err:
            raise ConfigError(f"task file {source}: {err}") from None
        except ConfigError as err:  # a Task the file defines, refused
            raise ConfigError(f"task file {_where_raised(err, path)}: {err}") from None
    else:
        try:
            importlib.import_module(source)
        except SyntaxError as err:
            raise ConfigError(
                f"task module {source!r} is not valid Python: {err.filename}:{err.lineno}: {err.msg}"
            ) from None
        except ImportError as err:
            raise ConfigError(f"cannot import task module {source!r}: {err}") from err
        except ConfigError as err:
            raise ConfigError(f"task module {source!r}: {err}") from None


def _where_raised(err: BaseException, path: Path) -> str:
    """``FILE:LINE``, the last line of the task file ``path`` that ``err`` passed through
    (just ``FILE`` if none)."""
    lines = [frame.lineno for frame in traceback.extract_tb(err.__traceback__) if frame.filename == str(path)]
    return f"{path}:{lines[-1]}" if lines else str(path)


def task_for_env(env_id: str) -> Task | None:
    """The task whose gymnasium id is ``env_id`` (None for plain envs)."""
    return next((t for t in TASKS.values() if t.gym_id == env_id), None)


DEFAULT_INSTRUCTION = "Which clip shows the better behaviour?"


def instruction_for(env_id: str) -> str:
    task = task_for_env(env_id)
    return task.instruction if task else DEFAULT_INSTRUCTION


def measure_behaviour(
    act: Callable[[np.ndarray], np.ndarray], task: Task, episodes: int = 10, seed: int = 10_000
) -> list[float]:
    """The task's measure (e.g. rotations) on each of ``episodes`` fixed-length episodes of
    ``act(obs[B, ...]) -> actions[B, ...]``."""
    return measure_all(act, task, episodes, seed)[task.measure_name]


def measure_all(
    act: Callable[[np.ndarray], np.ndarray],
    task: Task,
    episodes: int = 10,
    seed: int = 10_000,
    extra: tuple[Measure, ...] = (),
) -> dict[str, list[float]]:
    """Each of the task's measures (:attr:`Task.measures`, then ``extra``) on each of
    ``episodes`` fixed-length episodes of ``act(obs[B, ...]) -> actions[B, ...]``:
    ``{name: [episodes]}``, in that order."""
    measures = (*task.measures, *extra)
    env = make_env(task.gym_id, fixed_length=True)
    out: dict[str, list[float]] = {m.name: [] for m in measures}
    for episode in range(episodes):
        obs, _ = env.reset(seed=seed + episode)
        rewards: list[float] = []
        states: list[Sequence[float]] = []
        restarted: list[bool] = []
        done = False
        while not done:
            obs, _, terminated, truncated, info = env.step(act(obs[None])[0])
            rewards.append(info["true_reward"])
            restarted.append(bool(info.get("restarted", False)))
            if task.trace is not None:
                states.append(task.trace(env))
            done = terminated or truncated
        trace = EpisodeTrace(
            env, rewards, np.asarray(states, dtype=float).reshape(len(rewards), -1), np.asarray(restarted)
        )
        for m in measures:
            out[m.name].append(float(m.of(trace)))
    env.close()
    return out
