import os
import re
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest

from prefrl.envs import EnvError, FixedLengthEpisodes, make_env
from prefrl.envs.make import base_env_id, check_spaces, is_mujoco_id, split_env_kwargs

CLASSIC = ["CartPole-v1", "Pendulum-v1", "Acrobot-v1", "MountainCar-v0", "MountainCarContinuous-v0"]
MUJOCO = ["Hopper-v5", "HalfCheetah-v5", "Walker2d-v5"]


def step_both(env_id, actions=None, steps=5, **kwargs):
    """Step ``make_env(env_id, **kwargs)`` and plain ``gymnasium.make(env_id)`` from one
    seed with the same actions (``actions``, or sampled ones); returns the wrapped env's
    steps, the plain env's steps and the observation each action was taken in."""
    wrapped = make_env(env_id, **kwargs)
    plain = gym.make(env_id)
    obs, _ = wrapped.reset(seed=0)
    plain_obs, _ = plain.reset(seed=0)
    np.testing.assert_array_equal(obs, plain_obs)
    wrapped.action_space.seed(0)
    if actions is None:
        actions = [wrapped.action_space.sample() for _ in range(steps)]
    out, ref, before = [], [], []
    for action in actions:
        before.append(obs)
        out.append(wrapped.step(action))
        ref.append(plain.step(action))
        obs = out[-1][0]
        if out[-1][2] or out[-1][3]:
            break
    return out, ref, before


@pytest.mark.parametrize("env_id", CLASSIC + MUJOCO)
def test_make_env_steps_like_gymnasium_and_reports_its_reward(env_id):
    out, ref, _ = step_both(env_id)
    for (obs, reward, terminated, truncated, info), (r_obs, r_reward, r_term, r_trunc, _) in zip(
        out, ref, strict=True
    ):
        np.testing.assert_array_equal(obs, r_obs)
        assert (terminated, truncated) == (r_term, r_trunc)
        # no reward_fn: the step reward is the env's own, and info carries it too
        assert reward == float(r_reward)
        assert info["true_reward"] == float(r_reward)


def test_reward_fn_replaces_reward_and_true_reward_stays_in_info():
    seen = []

    def reward_fn(obs, actions):
        seen.append((obs.shape, actions.shape))
        return 10.0 * obs.sum(axis=1) + actions.sum(axis=1)

    actions = [np.array([a], dtype=np.float32) for a in (0.5, -1.5, 2.0, 0.0, -0.25)]
    out, ref, before = step_both("Pendulum-v1", actions, reward_fn=reward_fn)
    assert len(out) == len(actions)
    for (_, reward, _, _, info), (_, r_reward, *_), obs, action in zip(
        out, ref, before, actions, strict=True
    ):
        # the step reward is reward_fn of the observation the action was taken in, and the action
        assert reward == pytest.approx(10.0 * float(obs.sum()) + float(action[0]), rel=1e-6)
        # the env's own reward, as plain gymnasium gives it, travels in info
        assert info["true_reward"] == float(r_reward)
        assert reward != info["true_reward"]
    assert seen == [((1, 3), (1, 1))] * len(actions)


def test_unknown_env_id_suggests_the_closest():
    with pytest.raises(EnvError, match=r"Unknown env id 'CartPol-v1'.*Did you mean 'CartPole-v1'"):
        make_env("CartPol-v1")


def test_unsupported_spaces_name_the_fix():
    class DictObs(gym.Env):
        observation_space = gym.spaces.Dict({"a": gym.spaces.Box(-1, 1, (2,))})
        action_space = gym.spaces.Discrete(2)

    class MultiDiscreteAct(gym.Env):
        observation_space = gym.spaces.Box(-1, 1, (2,))
        action_space = gym.spaces.MultiDiscrete([2, 3])

    with pytest.raises(EnvError, match="flatten into a vector"):
        check_spaces(DictObs())
    with pytest.raises(EnvError, match="Discrete"):
        check_spaces(MultiDiscreteAct())


def test_discrete_and_composite_observations_become_flat_vectors():
    lake = make_env("FrozenLake-v1")
    obs, _ = lake.reset(seed=0)
    assert lake.observation_space == gym.spaces.Box(0, 1, (16,), np.float32)
    np.testing.assert_array_equal(obs, np.eye(16, dtype=np.float32)[0])  # the start: state 0
    obs, *_ = lake.step(2)  # right, on the non-slippery part of the map or not: a one-hot state
    assert obs.dtype == np.float32 and obs.sum() == 1.0 and lake.observation_space.contains(obs)

    blackjack = make_env("Blackjack-v1")
    obs, _ = blackjack.reset(seed=0)
    inner = blackjack.unwrapped
    hand, dealer = sum(inner.player), inner.dealer[0]
    assert blackjack.observation_space.shape == (32 + 11 + 2,)
    assert obs[hand] == 1.0 and obs[32 + dealer] == 1.0 and obs.sum() == 3.0


def test_an_observation_space_that_cannot_be_flattened_is_refused():
    class GraphObs(gym.Env):
        observation_space = gym.spaces.Dict({"graph": gym.spaces.Graph(gym.spaces.Box(0, 1, (2,)), None)})
        action_space = gym.spaces.Discrete(2)

        def __init__(self, render_mode=None):
            pass

    gym.register("test/GraphObs-v0", entry_point=GraphObs)
    try:
        with pytest.raises(EnvError, match=r"needs a Box observation space.*Graph"):
            make_env("test/GraphObs-v0")
    finally:
        del gym.registry["test/GraphObs-v0"]


def test_an_env_without_a_time_limit_gets_one():
    env = make_env(
        "CliffWalking-v1"
    )  # registered without one: a policy that never reaches the goal walks forever
    assert env.spec.max_episode_steps == 1000
    env.reset(seed=0)
    steps, truncated = 0, False
    while not truncated:
        *_, terminated, truncated, _ = env.step(3)  # left, into the wall: never terminates
        assert not terminated
        steps += 1
    assert steps == 1000
    assert make_env("CliffWalking-v1(max_episode_steps=30)").spec.max_episode_steps == 30
    fixed = make_env("CliffWalking-v1", fixed_length=True)
    assert isinstance(fixed.env, FixedLengthEpisodes) and fixed.env.horizon == 1000
    assert make_env("CartPole-v1").spec.max_episode_steps == 500  # a registered limit stays


def test_atari_gives_frames_or_ram():
    assert make_env("ALE/Pong-v5").observation_space.shape == (4, 84, 84)
    env = make_env("ALE/Pong-v5", obs_type="ram")
    assert env.observation_space.shape == (128,)


def run_episode(env, action, seed=0):
    env.reset(seed=seed)
    steps, total, terminated_seen = 0, 0.0, False
    while True:
        _, _, terminated, truncated, info = env.step(action)
        steps += 1
        total += info["true_reward"]
        terminated_seen |= terminated
        if terminated or truncated:
            return steps, total, terminated_seen


def test_fixed_length_cartpole_hides_the_fall_and_absorbs_it():
    env = make_env("CartPole-v1", fixed_length=True)
    steps, total, terminated_seen = run_episode(env, 1)  # always push right: falls in ~10 steps
    assert (steps, terminated_seen) == (500, False)
    assert 5 <= total <= 20  # reward 1 only while upright
    assert env.env.after_termination == "absorb"
    inner = make_env("CartPole-v1")
    assert run_episode(inner, 1)[0] == total  # same physics: upright steps = normal episode length


def test_fixed_length_absorbs_after_success():
    env = make_env("MountainCar-v0", fixed_length=50)
    assert isinstance(env.env, FixedLengthEpisodes)
    assert env.env.after_termination == "absorb"
    steps, total, terminated_seen = run_episode(env, 2)
    assert (steps, total, terminated_seen) == (50, -50.0, False)


def test_fixed_length_absorbing_state_repeats_and_pays_nothing():
    class Ends(gym.Env):
        observation_space = gym.spaces.Box(-10, 10, (1,))
        action_space = gym.spaces.Discrete(2)

        def reset(self, seed=None, options=None):
            self.t = 0
            return np.zeros(1, dtype=np.float32), {}

        def step(self, action):
            self.t += 1
            return np.full(1, self.t, dtype=np.float32), -1.0, self.t == 3, False, {}

    env = FixedLengthEpisodes(Ends(), horizon=6, after_termination="absorb")
    env.reset()
    out = [env.step(0) for _ in range(6)]
    assert [o[0][0] for o in out] == [1, 2, 3, 3, 3, 3]
    assert [o[1] for o in out] == [-1, -1, -1, 0, 0, 0]
    assert [o[2] for o in out] == [False] * 6
    assert [o[3] for o in out] == [False] * 5 + [True]


def test_fixed_length_mujoco_never_terminates():
    env = make_env("Hopper-v5", fixed_length=300)
    steps, _, terminated_seen = run_episode(env, np.zeros(3, dtype=np.float32))
    assert (steps, terminated_seen) == (300, False)


def test_missing_gl_library_names_the_fix():
    # osmesa's library is not installed on these machines: MuJoCo cannot load that backend
    code = "from prefrl.envs import make_env\nmake_env('Hopper-v5')"
    env = {k: v for k, v in os.environ.items() if k != "PYOPENGL_PLATFORM"}  # set by earlier EGL use
    env["MUJOCO_GL"] = "osmesa"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    if out.returncode == 0:
        pytest.skip("this machine has OSMesa: the failure cannot be provoked")
    assert "EnvError" in out.stderr and "MUJOCO_GL=osmesa" in out.stderr
    assert "apt-get install -y libegl1 libegl-mesa0 libgl1-mesa-dri" in out.stderr


def test_an_env_id_may_carry_keyword_arguments_for_gymnasium_make():
    assert split_env_kwargs("Pendulum-v1") == ("Pendulum-v1", {})
    assert split_env_kwargs("ALE/Pong-v5(repeat_action_probability=0.25, full_action_space=True)") == (
        "ALE/Pong-v5",
        {"repeat_action_probability": 0.25, "full_action_space": True},
    )
    assert make_env("Pendulum-v1(g=2.0)").unwrapped.g == 2.0
    assert make_env("Pendulum-v1(g=2.0)", g=3.0).unwrapped.g == 3.0  # an explicit argument wins
    hopper = make_env("Hopper-v5(ctrl_cost_weight=0.5)", fixed_length=True)
    assert hopper.unwrapped._ctrl_cost_weight == 0.5
    assert hopper.unwrapped._terminate_when_unhealthy is False  # fixed length still applies
    # per-env defaults follow the id without its arguments
    assert base_env_id("Hopper-v5(ctrl_cost_weight=0.5)") == "Hopper-v5"
    assert is_mujoco_id("Hopper-v5(ctrl_cost_weight=0.5)")


@pytest.mark.parametrize(
    "env_id, says",
    [
        ("Pendulum-v1(g=2.0", "NAME=VALUE pairs of Python literals"),
        ("Pendulum-v1(2.0)", "NAME=VALUE pairs of Python literals"),
        ("Pendulum-v1(g=len('x'))", "NAME=VALUE pairs of Python literals"),  # never run
        ("Pendulum-v1(g=1)(h=2)", "NAME=VALUE pairs of Python literals"),
        ("Hopper-v5(gravity=1.0)", "Hopper-v5 takes no keyword argument 'gravity'"),
        ("Pendulm-v1(g=2.0)", "Unknown env id 'Pendulm-v1'"),
        # a value the env cannot take: named, not taken for a missing OpenGL library
        ("Reacher-v5(frame_skip=0)", "Reacher-v5(frame_skip=0) cannot be built: ZeroDivisionError"),
        ("Hopper-v5(xml_file='no.xml')", "Hopper-v5(xml_file='no.xml') cannot be built: OSError: File "),
        ("CartPole-v1(max_episode_steps='x')", "max_episode_steps='x': must be a whole number of steps"),
        ("CartPole-v1(max_episode_steps=0)", "max_episode_steps=0: must be a whole number of steps"),
        ("CartPole-v1(render_mode='human')", "prefrl chooses the render mode itself"),
    ],
)
def test_bad_env_keyword_arguments_are_a_clear_error(env_id, says):
    with pytest.raises(EnvError, match=re.escape(says)):
        make_env(env_id)


@pytest.mark.parametrize("command", ["train", "baseline"])
def test_a_value_an_env_takes_but_cannot_step_with_is_named_before_anything_is_written(
    tmp_path, capsys, command
):
    from prefrl.cli import main

    run = tmp_path / "run"
    assert main([command, 'Pendulum-v1(g="x")', "--steps", "4096", "--run-dir", str(run)]) == 2
    assert capsys.readouterr().err == (
        f"prefrl {command}: error: Pendulum-v1(g='x') fails on its first step: TypeError: unsupported "
        "operand type(s) for /: 'str' and 'float'. Fix: most likely one of these values; check them "
        "against the env's documentation.\n"
    )
    assert not run.exists()


def test_an_env_of_ones_own_is_named_module_colon_id_in_every_process(tmp_path, monkeypatch):
    from test_runtime import small

    from prefrl.runtime.run import train

    (tmp_path / "my_envs_for_prefrl_test.py").write_text(
        "import gymnasium as gym\n"
        "from gymnasium.envs.classic_control.pendulum import PendulumEnv\n"
        'gym.register("Mine/Pendulum-v0", entry_point=PendulumEnv, max_episode_steps=100)\n'
    )
    monkeypatch.syspath_prepend(str(tmp_path))  # the roles' processes start with this path
    try:
        env = make_env("my_envs_for_prefrl_test:Mine/Pendulum-v0(g=9.0)")
        assert env.unwrapped.g == 9.0 and env.spec.max_episode_steps == 100
        summary = train(
            small(env_id="my_envs_for_prefrl_test:Mine/Pendulum-v0", labels=4, steps=1024),
            tmp_path / "run",
            progress=False,
            video=False,
        )
        assert summary["complete"] and summary["labels_used"] == 4
    finally:
        gym.registry.pop("Mine/Pendulum-v0", None)
    with pytest.raises(EnvError) as missing:
        make_env("no_such_module_here:Mine/Pendulum-v0")
    assert str(missing.value) == (
        "'no_such_module_here:Mine/Pendulum-v0': no module 'no_such_module_here' to import (it registers "
        "'Mine/Pendulum-v0'). Fix: put the directory that holds no_such_module_here.py (or the package "
        "no_such_module_here/) on the Python path, e.g. PYTHONPATH=DIR prefrl ..., or install its package"
    )
    (tmp_path / "needs_a_missing_dep.py").write_text("import no_such_dependency_here\n")
    with pytest.raises(ModuleNotFoundError, match="no_such_dependency_here"):  # its own bug: traceback
        make_env("needs_a_missing_dep:Mine/Pendulum-v0")
    (tmp_path / "a_missing_dep_envs.py").write_text("import a_missing_dep\n")  # a prefix of its name
    with pytest.raises(ModuleNotFoundError, match="a_missing_dep"):
        make_env("a_missing_dep_envs:Mine/Pendulum-v0")
    for wrong, hint in (
        (":Mine/Pendulum-v0", ""),
        ("./t.py:lean", " (a task file goes in --task FILE.py:NAME)"),
    ):
        with pytest.raises(EnvError) as err:
            make_env(wrong)
        assert str(err.value) == (
            f"{wrong!r}: an env of your own is named MODULE:ID, a module on the Python path and the id its "
            f"import registers, e.g. 'my_envs:MyEnv-v0'{hint}"
        )


def test_an_observation_of_another_shape_than_declared_is_named():
    class Growing(gym.Env):
        observation_space = gym.spaces.Box(-1.0, 1.0, (3,), np.float32)
        action_space = gym.spaces.Discrete(2)

        def __init__(self, render_mode=None):
            self.t = 0

        def reset(self, *, seed=None, options=None):
            self.t = 0
            return np.zeros(3, np.float32), {}

        def step(self, action):
            self.t += 1
            return np.zeros(3 if self.t < 3 else 4, np.float32), 0.0, False, False, {}

    from prefrl.envs.vector import VecEnv

    gym.register("test/Growing-v0", entry_point=Growing, max_episode_steps=10, disable_env_checker=True)
    try:
        envs = VecEnv([lambda: make_env("test/Growing-v0")] * 2)
        envs.reset(seed=0)
        envs.step(np.zeros(2, np.int64))
        envs.step(np.zeros(2, np.int64))
        with pytest.raises(EnvError) as err:
            envs.step(np.zeros(2, np.int64))
        assert str(err.value) == (
            "test/Growing-v0 gave an observation of shape (4,) where its observation_space says (3,): "
            "an env's observations must keep the shape its observation_space declares"
        )
    finally:
        del gym.registry["test/Growing-v0"]
