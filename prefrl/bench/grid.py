"""A benchmark grid: a small TOML file, checked, and expanded into cells (one run each).

Schema (every key optional unless marked)::

    [grid]
    description = "..."          # one line, shown in report.md
    jobs = 2                     # runs at a time (``--jobs`` overrides)
    video = false                # record each run's final-policy video
    # Defaults for every env; any of these may also be set in an [envs.X] table, where it wins
    # (ppo, reward_model and train tables are merged key by key):
    seeds = [0, 1, 2]
    teachers = ["perfect", "mistake:eps=0.2"]  # prefrl's teacher specs (parse_teacher)
    selections = ["random", "disagreement"]
    budgets = [50, 100]          # label budgets (required here or per env; each >= 2)
    steps = 0                    # env steps of every run (0: the env's default budget)
    clip_length = 0              # steps per clip (0: per-env default)
    fixed_length = true          # true/false/STEPS (default: per env)
    task = "spin"                # a behaviour task on this env (prefrl.tasks)
    constant_control = false     # also run PPO on a constant reward (envs whose termination leaks reward)
    backend = "multiprocess"     # or "inprocess"
    num_evals = 10               # evaluations during each run
    eval_episodes = 10           # episodes per evaluation (and of the random policy)
    ppo = { num_envs = 4 }       # PPO overrides (preference runs and baselines alike)
    reward_model = { epochs_per_round = 10 }
    train = { initial_fraction = 0.5 }   # other TrainConfig fields of the preference runs

    [envs.Pendulum-v1]           # one table per env (at least one); the name is the env id ...
    budgets = [25, 50, 100, 200]

    [envs.CartPole-short]        # ... or a label, with the env id in `env`
    env = "CartPole-v1"
    steps = 50_000

Each env gets one preference run per budget x teacher x selection x seed and, per seed,
the baselines at the same step budget and env settings: ``random`` (a uniformly random
policy), ``ppo_true`` (PPO on the true reward) and, with ``constant_control``,
``ppo_constant`` (PPO on a reward of 1 per step).
"""

from __future__ import annotations

import difflib
import json
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, cast

from prefrl.agent.hyperparams import resolve_ppo_config
from prefrl.envs.make import make_env
from prefrl.errors import ConfigError, MissingFileError
from prefrl.oracles import make_oracle, parse_teacher
from prefrl.runtime.choices import BACKENDS, SELECTIONS, Backend, Selection
from prefrl.runtime.config import SEEDS_BELOW, TrainConfig
from prefrl.tasks import trust_task

ARMS = ("prefrl", "ppo_true", "ppo_constant", "random")
"""Kinds of cell: a preference run and the three baselines."""

# TrainConfig fields the grid sets itself; a `train` table must not set them.
_GRID_OWNED = {
    "env_id",
    "steps",
    "labels",
    "oracle",
    "teacher",
    "selection",
    "seed",
    "backend",
    "clip_length",
    "fixed_length",
    "task",
    "eval_episodes",
    "num_evals",
    "query_videos",
    "ppo",
    "reward_model",
}
# Settings a [grid] table and an [envs.X] table share (env wins).
_SETTINGS = (
    "seeds",
    "teachers",
    "selections",
    "budgets",
    "steps",
    "clip_length",
    "fixed_length",
    "task",
    "constant_control",
    "backend",
    "num_evals",
    "eval_episodes",
    "ppo",
    "reward_model",
    "train",
)
_MERGED_TABLES = ("ppo", "reward_model", "train")
_GRID_KEYS = ("description", "jobs", "video", *_SETTINGS)
_ENV_KEYS = ("env", *_SETTINGS)
_TOP_KEYS = ("grid", "envs")


class GridError(ConfigError):
    """A grid file that cannot be run; the message names the file, the key and the fix."""


@dataclass(frozen=True)
class EnvSettings:
    """The resolved settings of one ``[envs.X]`` table (grid defaults applied)."""

    label: str
    """the table's name: names the env's directory and its rows in the report"""
    env_id: str
    """the id every run of this env uses (a task's own gymnasium id when ``task`` is set)"""
    task: str | None
    steps: int
    """env steps of every run of this env, baselines included"""
    budgets: tuple[int, ...]
    teachers: tuple[str, ...]
    selections: tuple[str, ...]
    seeds: tuple[int, ...]
    clip_length: int
    fixed_length: bool | int
    constant_control: bool
    backend: str
    num_evals: int
    eval_episodes: int
    ppo: dict[str, Any] = field(default_factory=dict)
    reward_model: dict[str, Any] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)


INTERRUPTED_EXIT = 130
"""Exit status of a cell process stopped by Ctrl-C (it can be resumed), as a shell reports SIGINT."""


@dataclass(frozen=True)
class Cell:
    """One run of the grid: what to run (``spec``) and how it is reported."""

    env: str
    """the env's label (its table name)"""
    env_id: str
    task: str | None
    arm: str
    """one of :data:`ARMS`"""
    seed: int
    steps: int
    budget: int | None
    teacher: str | None
    selection: str | None
    name: str
    """the run directory's name, unique within the env"""
    spec: dict[str, Any]
    """JSON-able instructions for :mod:`prefrl.bench.cell` (``kind`` + arguments)"""

    @property
    def key(self) -> str:
        """``<env dir>/<name>``: the run directory relative to ``OUT/runs``."""
        return f"{slug(self.env)}/{self.name}"

    def run_dir(self, out: str | Path) -> Path:
        return Path(out) / "runs" / slug(self.env) / self.name


@dataclass(frozen=True)
class Grid:
    """A checked grid file."""

    source: str
    """the TOML text (copied to ``OUT/grid.toml`` so ``prefrl report`` needs no other file)"""
    path: Path | None
    description: str
    jobs: int
    video: bool
    envs: tuple[EnvSettings, ...]
    name: str = "grid"
    """the grid file's name without .toml: names the report"""

    def cells(self) -> list[Cell]:
        """Every run, in the order they start: per env the baselines, then the preference
        runs seed by seed (an interrupted grid then has whole seeds rather than whole budgets)."""
        out: list[Cell] = []
        for env in self.envs:
            for seed in env.seeds:
                arms = ["random", "ppo_true"] + (["ppo_constant"] if env.constant_control else [])
                out.extend(_baseline_cell(env, arm, seed, self.video) for arm in arms)
            for seed in env.seeds:
                for budget in env.budgets:
                    for teacher in env.teachers:
                        for selection in env.selections:
                            out.append(_preference_cell(env, budget, teacher, selection, seed, self.video))
        return out


def slug(text: str) -> str:
    """``text`` made safe for a file name: runs of other characters than ``A-Za-z0-9.+-``
    become ``_`` (``mistake:eps=0.2`` -> ``mistake_eps_0.2``, ``ALE/Pong-v5`` -> ``ALE_Pong-v5``)."""
    return re.sub(r"[^A-Za-z0-9.+-]+", "_", text).strip("_")


def load_grid(path: str | Path) -> Grid:
    """Read and check a grid file (see the module docstring for its schema).

    Raises:
        GridError: unreadable TOML, an unknown key (with the closest known one), a value of
            the wrong type, an unknown env, teacher, selection, task or override, a bad label
            budget or seed, clips longer than an episode, or two cells with one run directory.
        MissingFileError (a FileNotFoundError): no such file.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"there is no grid file {path}; pass a TOML grid, e.g. benchmarks/smoke.toml")
    return parse_grid(path.read_text(), path)


def parse_grid(text: str, path: Path | None = None, *, check_envs: bool = True) -> Grid:
    """Like :func:`load_grid`, from the TOML text itself (``path`` only names it in errors).

    ``check_envs=False`` skips building each env and its PPO config (for reading back the
    grid of finished runs on a machine that may lack, e.g., MuJoCo).
    """
    where = str(path) if path else "grid"
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise GridError(f"{where}: not valid TOML: {err}") from None
    _check_keys(data, _TOP_KEYS, where, "the top level")
    grid = _table(data.get("grid", {}), f"{where}: [grid]")
    _check_keys(grid, _GRID_KEYS, where, "[grid]")
    envs = _table(data.get("envs"), f"{where}: [envs]") if "envs" in data else {}
    if not envs:
        raise GridError(
            f"{where}: no envs; add a table per env, e.g. [envs.Pendulum-v1] with budgets = [50, 100]"
        )
    resolved = []
    for label, table in envs.items():
        section = f"[envs.{label}]"
        table = _table(table, f"{where}: {section}")
        _check_keys(table, _ENV_KEYS, where, section)
        merged = {k: v for k, v in grid.items() if k in _SETTINGS}
        for key, value in table.items():
            if key in _MERGED_TABLES and isinstance(value, dict) and isinstance(merged.get(key), dict):
                merged[key] = {**merged[key], **value}
            else:
                merged[key] = value
        resolved.append(_env_settings(label, merged, f"{where}: {section}", check_envs))
    result = Grid(
        source=text,
        path=path,
        description=_typed(grid, "description", str, "", f"{where}: [grid]"),
        jobs=_positive(grid, "jobs", 1, f"{where}: [grid]"),
        video=_typed(grid, "video", bool, False, f"{where}: [grid]"),
        envs=tuple(resolved),
        name=path.stem if path else "grid",
    )
    _check_unique(result, where)
    return result


def _env_settings(label: str, s: dict[str, Any], where: str, check_env: bool) -> EnvSettings:
    env_id = _typed(s, "env", str, label, where)
    budgets = _int_list(s, "budgets", where, minimum=2, what="label budget", example="[50, 100]")
    _refuse_empty(s, "budgets", budgets, where, "label budget", "[50, 100]")
    if not budgets:
        raise GridError(
            f"{where}: no label budgets; set budgets = [...] (labels per preference run, each >= 2) "
            "here or in [grid]"
        )
    seeds = _int_list(s, "seeds", where, minimum=0, what="seed", example="[0, 1, 2]", below=SEEDS_BELOW)
    _refuse_empty(s, "seeds", seeds, where, "seed", "[0, 1, 2]", "seed 0")
    seeds = seeds or (0,)
    teachers = _str_list(s, "teachers", where)
    _refuse_empty(s, "teachers", teachers, where, "teacher", '["perfect"]', "the perfect teacher")
    teachers = teachers or ("perfect",)
    for i, teacher in enumerate(teachers):
        _check_teacher(teacher, f"{where}: teachers[{i}]")
    selections = _str_list(s, "selections", where)
    _refuse_empty(s, "selections", selections, where, "selection", '["random"]', "random selection")
    selections = selections or ("random",)
    for selection in selections:
        if selection not in SELECTIONS:
            raise GridError(f"{where}: unknown selection {selection!r}; choose from {', '.join(SELECTIONS)}")
    backend = _typed(s, "backend", str, "multiprocess", where)
    if backend not in BACKENDS:
        raise GridError(f"{where}: unknown backend {backend!r}; choose from {', '.join(BACKENDS)}")
    fixed = s.get("fixed_length")
    if fixed is not None and (
        not isinstance(fixed, bool | int) or (not isinstance(fixed, bool) and fixed <= 0)
    ):
        raise GridError(f"{where}: fixed_length must be true, false or a number of steps > 0, not {fixed!r}")
    ppo = _typed(s, "ppo", dict, {}, where)
    reward_model = _typed(s, "reward_model", dict, {}, where)
    train = _typed(s, "train", dict, {}, where)
    owned = sorted(set(train) & _GRID_OWNED)
    if owned:
        raise GridError(f"{where}: train = {{...}} cannot set {owned}; they are grid keys of their own")
    _check_keys(train, tuple(f.name for f in fields(TrainConfig)), where, "train = {...}")
    task = _typed(s, "task", str, None, where)
    if task:
        trust_task(task)  # the grid file names it: the user asked for it to be loaded
    steps, clip_length = _non_negative(s, "steps", where), _non_negative(s, "clip_length", where)
    given: dict[str, Any] = {
        k: v for k, v in (("steps", steps), ("clip_length", clip_length)) if v
    }  # 0: default
    try:
        probe = TrainConfig(
            env_id=env_id,
            task=task,
            labels=budgets[0],
            fixed_length=fixed,
            backend=cast(Backend, backend),
            ppo=ppo,
            reward_model=reward_model,
            **given,
            **train,
        )
    except TypeError as err:  # an unknown TrainConfig field in `train`
        raise GridError(f"{where}: train = {{...}}: {err}") from None
    except ValueError as err:  # unknown task, env id or reward-model setting
        raise GridError(f"{where}: {err}") from None
    fixed_length: bool | int = probe.fixed_length if probe.fixed_length is not None else False
    if probe.labels_from is not None and not Path(probe.labels_from).exists():
        raise GridError(
            f"{where}: train = {{labels_from = {train['labels_from']!r}}}: no run directory, store or "
            f"export at {probe.labels_from}"
        )
    if check_env:
        _check_env(probe.env_id, fixed_length, probe.clip_length, ppo, where)
    return EnvSettings(
        label=label,
        env_id=probe.env_id,
        task=probe.task,
        steps=probe.steps,
        budgets=budgets,
        teachers=teachers,
        selections=selections,
        seeds=seeds,
        clip_length=probe.clip_length,
        fixed_length=fixed_length,
        constant_control=_typed(s, "constant_control", bool, False, where),
        backend=backend,
        num_evals=_positive(s, "num_evals", 10, where),
        eval_episodes=_positive(s, "eval_episodes", 10, where),
        ppo=dict(ppo),
        reward_model=dict(reward_model),
        train=dict(train),
    )


def _check_teacher(spec: str, where: str) -> None:
    try:
        name, params = parse_teacher(spec)
    except ValueError as err:
        raise GridError(f"{where}: {err}") from None
    try:
        make_oracle(name, seed=0, **params)  # checks the values' ranges
    except ValueError as err:
        raise GridError(f"{where}: teacher {spec!r}: {err}") from None


def _check_env(
    env_id: str, fixed_length: bool | int, clip_length: int, ppo: dict[str, Any], where: str
) -> None:
    """Build the env once (unknown id, missing MuJoCo/GL library) and the PPO config."""
    try:
        env = make_env(env_id, fixed_length=fixed_length)
        horizon = env.spec.max_episode_steps if env.spec else None
        env.close()
        resolve_ppo_config(env_id, ppo, flag="ppo")
    except ValueError as err:  # EnvError is a ValueError
        raise GridError(f"{where}: {err}") from None
    if isinstance(fixed_length, int) and not isinstance(fixed_length, bool):
        horizon = fixed_length
    if horizon is not None and clip_length > horizon:
        raise GridError(
            f"{where}: clip_length {clip_length} is longer than an episode of {env_id} ({horizon} steps)"
        )


def _check_unique(grid: Grid, where: str) -> None:
    seen: dict[str, Cell] = {}
    labels: dict[str, str] = {}
    for env in grid.envs:
        other = labels.setdefault(slug(env.label), env.label)
        if other != env.label:
            raise GridError(
                f"{where}: [envs.{env.label}] and [envs.{other}] would share the directory {slug(env.label)!r}"
            )
    for cell in grid.cells():
        if cell.key in seen:
            raise GridError(
                f"{where}: teachers {seen[cell.key].teacher!r} and {cell.teacher!r} of [envs.{cell.env}] "
                f"would share the run directory {cell.key!r}; list each teacher once"
            )
        seen[cell.key] = cell


def _baseline_cell(env: EnvSettings, arm: str, seed: int, video: bool) -> Cell:
    spec: dict[str, Any]
    if arm == "random":
        spec = {
            "kind": "random",
            "env_id": env.env_id,
            "task": env.task,
            "seed": seed,
            "steps": env.steps,
            "fixed_length": env.fixed_length,
            "episodes": env.eval_episodes,
        }
    else:
        spec = {
            "kind": "baseline",
            "env_id": env.env_id,
            "task": env.task,
            "steps": env.steps,
            "seed": seed,
            "reward": arm.removeprefix("ppo_"),
            "fixed_length": env.fixed_length,
            "ppo_overrides": env.ppo,
            "eval_episodes": env.eval_episodes,
            "num_evals": env.num_evals,
            "video": video,
        }
    return Cell(
        env=env.label,
        env_id=env.env_id,
        task=env.task,
        arm=arm,
        seed=seed,
        steps=env.steps,
        budget=None,
        teacher=None,
        selection=None,
        name=f"{arm}-s{seed}",
        spec=_jsonable(spec),
    )


def _preference_cell(
    env: EnvSettings, budget: int, teacher: str, selection: str, seed: int, video: bool
) -> Cell:
    config = TrainConfig(
        env_id=env.env_id,
        task=env.task,
        steps=env.steps,
        labels=budget,
        teacher=teacher,
        selection=cast(Selection, selection),
        seed=seed,
        backend=cast(Backend, env.backend),
        clip_length=env.clip_length,
        fixed_length=env.fixed_length,
        eval_episodes=env.eval_episodes,
        num_evals=env.num_evals,
        ppo=env.ppo,
        reward_model=env.reward_model,
        **env.train,
    )
    return Cell(
        env=env.label,
        env_id=env.env_id,
        task=env.task,
        arm="prefrl",
        seed=seed,
        steps=env.steps,
        budget=budget,
        teacher=teacher,
        selection=selection,
        name=f"prefrl-b{budget}-{slug(teacher)}-{selection}-s{seed}",
        spec=_jsonable({"kind": "train", "config": config.to_dict(), "video": video}),
    )


def _jsonable(data: dict[str, Any]) -> dict[str, Any]:
    # what the cell process (and config.json) will see: tuples as lists
    return dict(json.loads(json.dumps(data)))


# ----------------------------------------------------------------- checking helpers
def _table(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise GridError(f"{where} must be a table, not {type(value).__name__}")
    return value


def _check_keys(table: Mapping[str, Any], allowed: tuple[str, ...], where: str, section: str) -> None:
    for key in table:
        if key not in allowed:
            close = difflib.get_close_matches(key, allowed, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise GridError(
                f"{where}: unknown key {key!r} in {section}{hint}; allowed keys: {', '.join(allowed)}"
            )


def _typed(table: Mapping[str, Any], key: str, kind: type, default: Any, where: str) -> Any:
    if key not in table:
        return default
    value = table[key]
    # TOML has no null; bool is an int subclass, so `steps = true` must not pass as 1
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise GridError(f"{where}: {key} must be {_KIND_NAMES.get(kind, kind.__name__)}, not {_toml(value)}")
    return value


_KIND_NAMES = {
    str: "a string",
    bool: "true or false",
    int: "an integer",
    dict: "a table ({ key = value, ... })",
}


def _toml(value: Any) -> str:
    """A value as it is written in TOML (``true``, ``"10"``), for error messages."""
    try:
        return json.dumps(value)
    except TypeError:
        return repr(value)


def _positive(table: Mapping[str, Any], key: str, default: int, where: str) -> int:
    value = int(_typed(table, key, int, default, where))
    if value < 1:
        raise GridError(f"{where}: {key} must be at least 1, not {value}")
    return value


def _non_negative(table: Mapping[str, Any], key: str, where: str) -> int:
    value = int(_typed(table, key, int, 0, where))
    if value < 0:
        raise GridError(f"{where}: {key} must be 0 (the default) or more, not {value}")
    return value


def _int_list(
    table: Mapping[str, Any],
    key: str,
    where: str,
    *,
    minimum: int,
    what: str,
    example: str,
    below: int | None = None,
) -> tuple[int, ...]:
    values = table.get(key, [])
    if not isinstance(values, list):
        raise GridError(f"{where}: {key} must be a list, e.g. {key} = {example}, not {_toml(values)}")
    for value in values:
        if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
            raise GridError(
                f"{where}: bad {what} {_toml(value)} in {key}: each must be an integer >= {minimum}"
            )
        if below is not None and value >= below:
            raise GridError(f"{where}: bad {what} {_toml(value)} in {key}: each must be below {below}")
    if len(set(values)) != len(values):
        raise GridError(f"{where}: {key} lists a value twice: {_toml(values)}")
    return tuple(values)


def _refuse_empty(
    table: Mapping[str, Any],
    key: str,
    values: tuple[Any, ...],
    where: str,
    what: str,
    example: str,
    default: str | None = None,
) -> None:
    """An empty list that is written (``teachers = []``) runs nothing: refuse it rather than
    fall back to the default meant for a key left out."""
    if key in table and not values:
        fallback = f", or leave {key} out for {default}" if default else ""
        raise GridError(
            f"{where}: {key} = [] (here or in [grid]) runs nothing; list at least one {what}, "
            f"e.g. {key} = {example}{fallback}"
        )


def _str_list(table: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    values = table.get(key, [])
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise GridError(f"{where}: {key} must be a list of strings, not {_toml(values)}")
    if len(set(values)) != len(values):
        raise GridError(f"{where}: {key} lists a value twice: {_toml(values)}")
    return tuple(values)
