"""``make_env``: any gymnasium env id, checked, with prefrl's wrappers.

Every env prefrl builds puts the true reward in ``info["true_reward"]``. The reward it
returns from ``step`` is the true reward, unless a ``reward_fn`` (e.g. a learned reward
model) is given: then the agent only ever sees ``reward_fn``'s output. prefrl's own PPO
does not use the step reward at all: it hands whole rollouts to a reward source (see
:mod:`prefrl.reward.sources`), which is faster than one model call per step.
"""

from __future__ import annotations

import ast
import difflib
import functools
import importlib
import os
import re
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import gymnasium as gym
import numpy as np

from prefrl.envs.atari import DEFAULT_HORIZON as ATARI_HORIZON
from prefrl.envs.atari import is_atari_id, make_atari
from prefrl.envs.errors import EnvError
from prefrl.envs.snapshot import can_snapshot
from prefrl.envs.wrappers import (
    AfterTermination,
    FixedLengthEpisodes,
    FlatObservations,
    RewardFromSource,
    ZeroBasedActions,
)

# Headless rendering: EGL (Mesa's llvmpipe on a CPU machine) unless the user chose otherwise.
# It must be decided before MuJoCo creates its first GL context.
os.environ.setdefault("MUJOCO_GL", "egl")

MUJOCO_INSTALL_FIX = 'pip install "gymnasium[mujoco]"'
MESA_INSTALL_FIX = (
    "apt-get update && apt-get install -y libegl1 libegl-mesa0 libgl1-mesa-dri "
    "(or set MUJOCO_GL=osmesa after apt-get install -y libosmesa6)"
)


_BASE_ENV_IDS: dict[str, str] = {}


def register_base_env(env_id: str, base: str) -> None:
    """Record that ``env_id`` (registered with gymnasium by a layer above, e.g. a behaviour
    task) is built on the gymnasium env ``base``: per-env defaults and MuJoCo checks follow
    ``base``. The env layer never imports what registers here."""
    _BASE_ENV_IDS[env_id] = base


def _ensure_registered(env_id: str) -> None:
    if env_id.startswith("MinAtar/"):
        from prefrl.envs.minatar import register_minatar

        register_minatar()
    if is_atari_id(env_id):
        try:
            import ale_py
        except ImportError as err:  # pragma: no cover - ale-py is a dependency
            raise EnvError(f"{env_id} needs the Arcade Learning Environment: pip install ale-py") from err
        gym.register_envs(ale_py)
    if env_id in gym.registry:
        return
    known = sorted(gym.registry)
    close = difflib.get_close_matches(env_id, known, n=3, cutoff=0.6)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    if env_id.startswith("prefrl/"):
        hint += (
            " A behaviour task's id is registered by loading its task: --task NAME for a built-in"
            " one (or import prefrl.tasks), --task FILE.py:NAME for one of a task file."
        )
    raise EnvError(
        f"Unknown env id {env_id!r}.{hint} prefrl builds any id registered with gymnasium "
        '(list them with `python -c "import gymnasium; gymnasium.pprint_registry()"`); '
        "Atari ids look like 'ALE/Pong-v5'; an env of your own, MODULE:ID, imports MODULE, "
        "which registers ID."
    )


ENV_KWARGS_EXAMPLE = "ALE/Pong-v5(repeat_action_probability=0.25)"


def split_env_kwargs(env_id: str) -> tuple[str, dict[str, Any]]:
    """An env id may carry keyword arguments for ``gymnasium.make`` in parentheses, as
    Python literals: ``"Hopper-v5(ctrl_cost_weight=0.01)"`` gives ``("Hopper-v5",
    {"ctrl_cost_weight": 0.01})``; a plain id gives ``(env_id, {})``. Such an id goes
    wherever an env id does (``prefrl train``, a run's config.json, a benchmark's TOML).
    An env of one's own, ``"MODULE:ID(...)"``, has its module imported
    (:func:`import_env_module`) and gives ``ID``.

    Raises:
        EnvError: the parentheses hold anything but ``NAME=LITERAL`` pairs, or MODULE
            cannot be imported.
    """
    base, paren, inside = env_id.partition("(")
    if not paren:
        return import_env_module(env_id), {}
    try:
        call = ast.parse(f"f({inside}", mode="eval").body
        if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name)) or call.args:
            raise ValueError("not only NAME=VALUE pairs")
        kwargs = {kw.arg: ast.literal_eval(kw.value) for kw in call.keywords if kw.arg is not None}
        if len(kwargs) != len(call.keywords):
            raise ValueError("** arguments")
    except (SyntaxError, ValueError) as err:
        raise EnvError(
            f"{env_id!r}: the keyword arguments in parentheses must be NAME=VALUE pairs of Python "
            f"literals, e.g. {ENV_KWARGS_EXAMPLE!r} ({err})"
        ) from err
    return import_env_module(base.strip()), kwargs


def import_env_module(env_id: str) -> str:
    """gymnasium's ``"module:Id"`` form for an env of one's own: imports ``module`` (whose
    import registers ``Id`` with gymnasium) from the Python path and returns ``Id``; a plain
    id is returned as it is.

    Raises:
        EnvError: ``module`` is no module name (e.g. a file's path) or is not on the path.
    """
    module, colon, plain = env_id.partition(":")
    if not colon:
        return env_id
    if not re.fullmatch(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*", module) or not plain:
        hint = " (a task file goes in --task FILE.py:NAME)" if module.endswith(".py") or "/" in module else ""
        raise EnvError(
            f"{env_id!r}: an env of your own is named MODULE:ID, a module on the Python path and the id "
            f"its import registers, e.g. 'my_envs:MyEnv-v0'{hint}"
        )
    try:
        importlib.import_module(module)
    except ModuleNotFoundError as err:
        if err.name is None or not (module == err.name or module.startswith(err.name + ".")):
            raise  # a module it imports is missing: its traceback says which and where
        top = module.split(".")[0]
        raise EnvError(
            f"{env_id!r}: no module {module!r} to import (it registers {plain!r}). Fix: put the "
            f"directory that holds {top}.py (or the package {top}/) on the Python path, e.g. "
            "PYTHONPATH=DIR prefrl ..., or install its package"
        ) from None
    return plain


def base_env_id(env_id: str) -> str:
    """The gymnasium env a behaviour task's id (``prefrl/...``) is built on
    (:func:`register_base_env`), or an id's without its keyword arguments
    (:func:`split_env_kwargs`); else ``env_id``.

    Raises:
        EnvError: a ``prefrl/...`` id nobody registered (prefrl.tasks not imported), or
            malformed keyword arguments.
    """
    env_id = split_env_kwargs(env_id)[0]
    if env_id.startswith("prefrl/") and env_id not in _BASE_ENV_IDS:
        _ensure_registered(env_id)  # unknown: say so, rather than give the wrong env's defaults
    return import_env_module(_BASE_ENV_IDS.get(env_id, env_id))


T = TypeVar("T")


def tuned_for(table: Mapping[str, T], env_id: str) -> T | None:
    """``table``'s entry (settings tuned per env) for ``env_id``'s :func:`base_env_id`,
    else for another version of that env (``Hopper-v4`` takes ``Hopper-v5``'s: the same
    body, timestep and rewards), else None."""
    base = base_env_id(env_id)
    if base in table:
        return table[base]
    name = re.sub(r"-v\d+$", "", base)
    return next((value for key, value in table.items() if re.sub(r"-v\d+$", "", key) == name), None)


def is_mujoco_id(env_id: str) -> bool:
    env_id = base_env_id(env_id)
    entry = str(gym.registry[env_id].entry_point) if env_id in gym.registry else ""
    return "mujoco" in entry


DEFAULT_TIME_LIMIT = 1000
"""steps after which an episode of an env registered without a time limit is truncated"""


def own_time_limit(env_id: str) -> int | None:
    """The time limit ``env_id`` comes with: a ``max_episode_steps`` in its keyword
    arguments, else its registered one; None if it has neither.

    Raises:
        EnvError: an unknown id, or malformed keyword arguments.
    """
    plain, kwargs = split_env_kwargs(env_id)
    if "max_episode_steps" in kwargs:
        return int(kwargs["max_episode_steps"])
    _ensure_registered(plain)
    registered = gym.registry[plain].max_episode_steps
    return None if registered is None else int(registered)


def time_limit(env_id: str) -> int:
    """The steps after which an episode of ``env_id`` is truncated: its own time limit
    (:func:`own_time_limit`), else :data:`DEFAULT_TIME_LIMIT`, so that every episode
    prefrl runs (evaluation, videos, fixed-length episodes) ends."""
    own = own_time_limit(env_id)
    return DEFAULT_TIME_LIMIT if own is None else own


def episode_horizon(env: gym.Env) -> int | None:
    """The most steps an episode of ``env`` (from :func:`make_env`) lasts: its fixed length,
    else its time limit; None for a game played to its end (Atari without a fixed length)."""
    wrapper: Any = env
    while isinstance(wrapper, gym.Wrapper):
        if isinstance(wrapper, FixedLengthEpisodes):
            return wrapper.horizon
        wrapper = wrapper.env
    return env.spec.max_episode_steps if env.spec else None


def _accepts_kwarg(env_id: str, name: str) -> bool:
    import inspect

    entry = gym.registry[env_id].entry_point
    if callable(entry):
        target: Any = entry
    else:
        module_name, _, attr = str(entry).partition(":")
        import importlib

        target = getattr(importlib.import_module(module_name), attr)
    return name in inspect.signature(target).parameters


FLATTENED_SPACES = (
    gym.spaces.Discrete,
    gym.spaces.MultiDiscrete,
    gym.spaces.MultiBinary,
    gym.spaces.Tuple,
    gym.spaces.Dict,
)


def flatten_if_composite(env: gym.Env) -> gym.Env:
    """``env`` with :class:`~prefrl.envs.wrappers.FlatObservations` if its observations are
    discrete or composite and can be flattened; else ``env`` as it is (:func:`check_spaces`
    then says what is wrong)."""
    if not isinstance(env.observation_space, FLATTENED_SPACES):
        return env
    try:
        return FlatObservations(env)
    except (ValueError, NotImplementedError, TypeError):
        return env


def check_spaces(env: gym.Env) -> None:
    """Raise :class:`EnvError` unless prefrl can learn on ``env``'s spaces."""
    obs_space, act_space = env.observation_space, env.action_space
    if not isinstance(obs_space, gym.spaces.Box):
        raise EnvError(
            f"prefrl needs a Box observation space, or one it can flatten into a vector (Discrete, "
            f"MultiDiscrete, MultiBinary, and Tuple or Dict of these and Box); "
            f"{env.spec.id if env.spec else env} has {obs_space}. Fix: wrap the env so its "
            "observations are a Box before handing it to prefrl."
        )
    if len(obs_space.shape) != 1 and not is_image_space(obs_space):
        env_id = env.spec.id if env.spec else type(env.unwrapped).__name__
        raise EnvError(
            f"prefrl takes flat (1-D) observations or images as uint8 arrays of shape (channels, "
            f"height, width); {env_id} gives {obs_space.dtype} observations of shape {obs_space.shape}, "
            "and prefrl knows no preprocessing for it. Fix: wrap the env so it gives one of the two "
            "(e.g. gymnasium.wrappers.FlattenObservation for small arrays; for RGB images of shape "
            "(height, width, 3): gymnasium.wrappers.ResizeObservation and GrayscaleObservation, "
            "then frames stacked channels first), or use an Atari id such as 'ALE/Pong-v5', "
            "which prefrl preprocesses itself."
        )
    if is_image_space(obs_space) and not isinstance(act_space, gym.spaces.Discrete):
        raise EnvError(f"prefrl learns from images with Discrete actions only; got {act_space}")
    if isinstance(act_space, gym.spaces.Discrete):
        return
    if isinstance(act_space, gym.spaces.Box) and len(act_space.shape) == 1:
        if not (np.all(np.isfinite(act_space.low)) and np.all(np.isfinite(act_space.high))):
            raise EnvError(
                f"prefrl needs bounded continuous actions; got {act_space}. "
                "Wrap the env with gymnasium.wrappers.ClipAction and finite bounds."
            )
        return
    raise EnvError(
        f"prefrl supports Discrete and 1-D Box action spaces; got {act_space}. "
        "For MultiDiscrete/MultiBinary actions, wrap the env so it takes a Discrete action."
    )


def is_image_space(space: gym.Space) -> bool:
    """A uint8 image observation space, channels first: ``Box`` of shape ``(C, H, W)`` with
    at most 16 channels (a stack of grayscale frames, or object channels)."""
    return (
        isinstance(space, gym.spaces.Box)
        and space.dtype == np.uint8
        and len(space.shape) == 3
        and space.shape[0] <= 16
        and min(space.shape[1:]) >= 4
    )


@functools.lru_cache(maxsize=64)
def _probe(env_id: str) -> tuple[bool, float | None, bool]:
    env = make_env(env_id)
    try:
        fps = env.metadata.get("render_fps")
        return is_image_space(env.observation_space), (float(fps) if fps else None), can_snapshot(env)
    finally:
        env.close()


def observes_images(env_id: str) -> bool:
    """Whether ``make_env(env_id)`` gives image observations (:func:`is_image_space`); the
    env is built once to tell.

    Raises:
        EnvError: as :func:`make_env`.
    """
    return _probe(env_id)[0]


def snapshots_supported(env_id: str) -> bool:
    """Whether prefrl can snapshot ``env_id``'s steps (:mod:`prefrl.envs.snapshot`), and so
    re-render its clips for a person; the env is built once to tell.

    Raises:
        EnvError: as :func:`make_env`.
    """
    return _probe(env_id)[2]


def frame_rate(env_id: str) -> float | None:
    """The frames per second ``env_id``'s renderer shows (its ``render_fps``), None if it
    does not say; the env is built once to tell.

    Raises:
        EnvError: as :func:`make_env`.
    """
    return _probe(env_id)[1]


@functools.lru_cache(maxsize=64)
def random_episode_length(env_id: str, episodes: int = 10, seed: int = 0) -> int:
    """The median length of ``episodes`` episodes of ``env_id`` under random actions
    (each at most its :func:`time_limit`): how long an episode of a new policy lasts.

    Raises:
        EnvError: as :func:`make_env`.
    """
    env = make_env(env_id)
    env.action_space.seed(seed)
    lengths = []
    try:
        for episode in range(episodes):
            env.reset(seed=seed + episode)
            steps, done = 0, False
            while not done:
                _, _, terminated, truncated, _ = env.step(env.action_space.sample())
                steps, done = steps + 1, terminated or truncated
            lengths.append(steps)
    finally:
        env.close()
    return int(np.median(lengths))


def make_env(
    env_id: str,
    *,
    render_mode: str | None = None,
    fixed_length: bool | int = False,
    reward_fn: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
    **env_kwargs: Any,
) -> gym.Env:
    """Build ``env_id`` for prefrl.

    Args:
        env_id: any registered gymnasium id, e.g. ``"CartPole-v1"``, ``"Hopper-v5"``, with
            keyword arguments for ``gymnasium.make`` if wanted
            (``"ALE/Pong-v5(repeat_action_probability=0.25)"``, :func:`split_env_kwargs`).
        render_mode: ``"rgb_array"`` to render frames (only needed for clips someone sees).
            Atari ids give the paper's observations (:mod:`prefrl.envs.atari`); with
            ``obs_type="ram"``, the 128 bytes of RAM.
        fixed_length: ``True`` for fixed-length episodes of the env's usual time limit, an
            ``int`` for a horizon of that many steps, ``False`` for the env as registered
            (an env registered without a time limit gets one of
            :data:`DEFAULT_TIME_LIMIT` steps either way: :func:`time_limit`).
            See :class:`~prefrl.envs.wrappers.FixedLengthEpisodes` for when it matters.
        reward_fn: optional ``(obs[B, ...], actions[B, ...]) -> rewards[B]``; when given,
            the step reward is its output and the true reward only travels in ``info``.
        **env_kwargs: passed to ``gymnasium.make`` (over the id's own).

    Raises:
        EnvError: unknown id, a keyword argument the env does not take, missing MuJoCo/GL
            library, or spaces prefrl cannot handle; the message names the fix.
    """
    env_id, id_kwargs = split_env_kwargs(env_id)
    if "render_mode" in id_kwargs:
        raise EnvError(
            f"{env_id}: render_mode={id_kwargs['render_mode']!r}: prefrl chooses the render mode itself "
            "(frames where it renders clips and videos, none where it trains); take render_mode out of "
            "the env id"
        )
    env_kwargs = {**id_kwargs, **env_kwargs}
    given = dict(env_kwargs)  # the caller's, before prefrl adds its own
    limit = env_kwargs.get("max_episode_steps")
    if limit is not None and (type(limit) is not int or limit < 1):
        raise EnvError(f"{env_id}: max_episode_steps={limit!r}: must be a whole number of steps, at least 1")
    _ensure_registered(env_id)
    mujoco = is_mujoco_id(env_id)
    atari = is_atari_id(env_id) and env_kwargs.get("obs_type", "rgb") != "ram"
    horizon: int | None = None
    after: AfterTermination = "absorb"
    if not is_atari_id(env_id):  # ALE ends its games itself
        env_kwargs.setdefault("max_episode_steps", time_limit(env_id))
    if fixed_length:
        if fixed_length is not True:
            horizon = int(fixed_length)
        elif atari:
            horizon = ATARI_HORIZON
        elif "max_episode_steps" in env_kwargs:
            horizon = int(env_kwargs["max_episode_steps"])
        else:
            raise EnvError(f"{env_id} has no time limit; pass fixed_length=<steps> to choose the horizon.")
        env_kwargs["max_episode_steps"] = horizon
        # MuJoCo walkers keep simulating after a fall. Every other env absorbs: CartPole too,
        # where a simulation kept running lets the pole spin freely and the cart drift off,
        # observations grow without bound and drown the upright states' differences in the
        # reward model's input normalisation (preference runs then failed to learn).
        if mujoco and _accepts_kwarg(env_id, "terminate_when_unhealthy"):
            env_kwargs.setdefault("terminate_when_unhealthy", False)
            after = "continue"
    try:
        if atari:
            env = make_atari(env_id, render_mode=render_mode, env_kwargs=env_kwargs)
        else:
            env = gym.make(env_id, render_mode=render_mode, **env_kwargs)
    except Exception as err:
        error = _build_error(env_id, mujoco, err, given)
        if error is None:
            raise
        raise error from err
    env = flatten_if_composite(env)
    if isinstance(env.action_space, gym.spaces.Discrete) and int(env.action_space.start) != 0:
        env = ZeroBasedActions(env)  # prefrl counts discrete actions from 0
    check_spaces(env)
    if mujoco and render_mode is not None:
        _check_mujoco_render(env, env_id)
    if horizon is not None:
        if is_image_space(env.observation_space):
            after = "restart"  # a game from pixels goes on in a new game: its end must not show
        env = FixedLengthEpisodes(env, horizon, after)
    return RewardFromSource(env, reward_fn)


def _build_error(env_id: str, mujoco: bool, err: Exception, env_kwargs: dict[str, Any]) -> EnvError | None:
    """An :class:`EnvError` naming the fix for a failure to build ``env_id`` with the
    caller's ``env_kwargs``, if there is one."""
    unexpected = re.search(r"unexpected keyword argument '(\w+)'", str(err))
    if isinstance(err, TypeError) and unexpected and unexpected[1] in env_kwargs:
        return EnvError(
            f"{env_id} takes no keyword argument {unexpected[1]!r} ({err}). Fix: pass only "
            f"arguments its constructor (or gymnasium.make) takes, e.g. {ENV_KWARGS_EXAMPLE!r}."
        )
    if mujoco and isinstance(err, ModuleNotFoundError) and (err.name or "").split(".")[0] == "mujoco":
        return EnvError(f"{env_id} needs MuJoCo, which is not installed. Fix: {MUJOCO_INSTALL_FIX}")
    if mujoco and isinstance(err, (ImportError, AttributeError, RuntimeError)):
        # mujoco imports its OpenGL backend (MUJOCO_GL) on import: a missing GL library
        # surfaces here as ImportError, AttributeError or RuntimeError.
        backend = os.environ.get("MUJOCO_GL")
        return EnvError(
            f"{env_id} cannot be built: MuJoCo could not load its OpenGL backend MUJOCO_GL={backend} "
            f"({type(err).__name__}: {err}). Fix: {MESA_INSTALL_FIX}; MUJOCO_GL must be egl, osmesa or glfw."
        )
    if isinstance(err, (gym.error.DependencyNotInstalled, ImportError)):
        return EnvError(f"{env_id} cannot be built: {err}. Fix: pip install the package the message names.")
    if env_kwargs and isinstance(
        err, (TypeError, ValueError, ArithmeticError, LookupError, OSError, AssertionError)
    ):
        # what a value the env cannot take raises
        given = ", ".join(f"{key}={value!r}" for key, value in env_kwargs.items())
        return EnvError(
            f"{env_id}({given}) cannot be built: {type(err).__name__}: {err}. Fix: most likely one of "
            "these values; check them against the env's documentation."
        )
    return None


def check_first_step(env: gym.Env, env_id: str) -> None:
    """Reset ``env`` (built by :func:`make_env` from ``env_id``) and take one random step:
    a keyword argument the env takes but cannot use (``Pendulum-v1(g="x")``: a string
    where it computes with a number) fails here, before a run writes anything, instead of
    in the agent's first rollout.

    Raises:
        EnvError: the first step failed and ``env_id`` gives keyword arguments: the
            message names them. An env that fails with none of its own raises as it did
            (its traceback is what its author needs).
    """
    try:
        env.reset(seed=0)
        env.step(env.action_space.sample())
    except Exception as err:
        name, kwargs = split_env_kwargs(env_id)
        if not kwargs:
            raise
        given = ", ".join(f"{key}={value!r}" for key, value in kwargs.items())
        raise EnvError(
            f"{name}({given}) fails on its first step: {type(err).__name__}: {err}. Fix: most likely "
            "one of these values; check them against the env's documentation."
        ) from err


def _check_mujoco_render(env: gym.Env, env_id: str) -> None:
    """Render once now, so a missing GL library is reported here with its fix."""
    try:
        env.reset(seed=0)
        env.render()
    except Exception as err:  # the GL stack raises many different types
        backend = os.environ.get("MUJOCO_GL")
        raise EnvError(
            f"{env_id} cannot render with MUJOCO_GL={backend}: {err}. Fix: {MESA_INSTALL_FIX}."
        ) from err
