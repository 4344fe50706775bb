"""CNN policies for image observations: the networks, acting, PPO on uint8 rollouts,
checkpoints and the device setting."""

import importlib.util

import gymnasium as gym
import numpy as np
import pytest
import torch
from conftest import assert_same_next_update

from prefrl.agent import PPOAgent, PPOConfig
from prefrl.agent.checkpoint import TrainedPolicy
from prefrl.agent.cnn import CnnActorCritic, TorchActor, choose_cnn
from prefrl.agent.hyperparams import default_config, resolve_ppo_config
from prefrl.agent.policies import ActorCritic
from prefrl.envs import VecEnv, is_image_space
from prefrl.errors import ConfigError
from prefrl.reward import TrueReward

torch.set_num_threads(1)


class LitPixelEnv(gym.Env):
    """Images of one lit pixel; the reward is 1 when the action names the lit pixel's side
    (0: left half, 1: right half, 2: never right). Episodes are ``horizon`` steps long.

    Observations are ``(C, size, size)`` uint8 with ``high`` as the lit value (255 like ALE
    frames, 1 like MinAtar's channels); the pixel is lit in channel 0, the rest stay 0.
    """

    def __init__(self, size: int = 10, channels: int = 4, high: int = 1, horizon: int = 16):
        self.observation_space = gym.spaces.Box(0, high, (channels, size, size), np.uint8)
        self.action_space = gym.spaces.Discrete(3)
        self.size, self.high, self.horizon = size, high, horizon

    def _observe(self) -> np.ndarray:
        self.col = int(self.np_random.integers(self.size))
        obs = np.zeros(self.observation_space.shape, dtype=np.uint8)
        obs[0, int(self.np_random.integers(self.size)), self.col] = self.high
        return obs

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self._observe(), {}

    def step(self, action):
        reward = float(int(action) == int(self.col >= self.size // 2))
        self.t += 1
        return self._observe(), reward, False, self.t >= self.horizon, {}


def make_agent(seed=0, size=10, high=1, total_steps=10_000, **overrides):
    cfg = default_config("ALE/Pong-v5").replace(
        **{"num_envs": 2, "num_steps": 16, "minibatch_size": 8, **overrides}
    )
    envs = VecEnv([lambda: LitPixelEnv(size=size, high=high)] * cfg.num_envs)
    return PPOAgent(envs, cfg, total_steps=total_steps, seed=seed)


def test_image_spaces_are_uint8_channels_first_boxes():
    assert is_image_space(gym.spaces.Box(0, 255, (4, 84, 84), np.uint8))
    assert is_image_space(gym.spaces.Box(0, 1, (6, 10, 10), np.uint8))
    assert not is_image_space(gym.spaces.Box(0, 255, (84, 84), np.uint8))  # no channel axis
    assert not is_image_space(gym.spaces.Box(0.0, 1.0, (4, 10, 10), np.float32))
    assert not is_image_space(gym.spaces.Box(-1.0, 1.0, (4,), np.float32))
    assert not is_image_space(gym.spaces.Discrete(3))


def test_cnn_choice_follows_the_image_size_unless_set():
    assert choose_cnn((4, 84, 84)) == "nature"
    assert choose_cnn((4, 36, 36)) == "nature"
    assert choose_cnn((4, 35, 84)) == "small"
    assert choose_cnn((6, 10, 10)) == "small"
    assert choose_cnn((4, 84, 84), "small") == "small"
    with pytest.raises(
        ConfigError, match=r"cnn='nature' needs images of at least 36x36 pixels; these are 10x10"
    ):
        choose_cnn((4, 10, 10), "nature")


@pytest.mark.parametrize(
    ("shape", "kind", "layers", "hidden"),
    [
        # Nature CNN: 84 -> 20 -> 9 -> 7 pixels; 64 * 7 * 7 = 3136 features into 512
        ((4, 84, 84), "nature", [(32, 4, 8, 4), (64, 32, 4, 2), (64, 64, 3, 1)], (3136, 512)),
        # MinAtar's: 10 -> 8 pixels; 16 * 8 * 8 = 1024 features into 128
        ((4, 10, 10), "small", [(16, 4, 3, 1)], (1024, 128)),
    ],
)
def test_cnn_layers_and_output_shapes(shape, kind, layers, hidden):
    net = CnnActorCritic(gym.spaces.Box(0, 255, shape, np.uint8), gym.spaces.Discrete(6))
    assert net.kind == kind
    convs = [m for m in net.trunk if isinstance(m, torch.nn.Conv2d)]
    assert [(c.out_channels, c.in_channels, c.kernel_size[0], c.stride[0]) for c in convs] == layers
    (fc,) = [m for m in net.trunk if isinstance(m, torch.nn.Linear)]
    assert (fc.in_features, fc.out_features) == hidden
    assert (net.actor.in_features, net.actor.out_features) == (hidden[1], 6)
    assert (net.critic.in_features, net.critic.out_features) == (hidden[1], 1)
    obs = torch.randint(0, 256, (5, *shape), dtype=torch.uint8)
    logits, values = net.logits_and_value(obs)
    assert logits.shape == (5, 6) and values.shape == (5,)
    log_prob, entropy, values2 = net.evaluate(obs, torch.zeros(5, dtype=torch.int64))
    assert log_prob.shape == entropy.shape == (5,)
    torch.testing.assert_close(values2, values)


def test_orthogonal_init_gains_of_the_heads():
    torch.manual_seed(0)
    net = CnnActorCritic(gym.spaces.Box(0, 1, (4, 10, 10), np.uint8), gym.spaces.Discrete(4))
    # an orthogonal (4 x 128) matrix of gain g has rows of norm g
    torch.testing.assert_close(net.actor.weight.norm(dim=1), torch.full((4,), 0.01))
    torch.testing.assert_close(net.critic.weight.norm(dim=1), torch.ones(1))
    assert float(net.actor.bias.detach().abs().sum()) == 0.0


@pytest.mark.parametrize("high", [1, 255])
def test_pixels_are_scaled_by_the_space_high(high):
    torch.manual_seed(0)
    net = CnnActorCritic(gym.spaces.Box(0, high, (4, 10, 10), np.uint8), gym.spaces.Discrete(3))
    obs = torch.randint(0, high + 1, (7, 4, 10, 10), dtype=torch.uint8)
    expected = net.trunk(obs.float() / high)
    torch.testing.assert_close(net.features(obs), expected, rtol=1e-5, atol=1e-6)


def test_channels_last_computes_the_same_function():
    space = gym.spaces.Box(0, 255, (4, 84, 84), np.uint8)
    torch.manual_seed(0)
    plain = CnnActorCritic(space, gym.spaces.Discrete(6), channels_last=False)
    fast = CnnActorCritic(space, gym.spaces.Discrete(6), channels_last=True)
    fast.load_state_dict(plain.state_dict())
    conv = fast.trunk[0]
    assert isinstance(conv, torch.nn.Conv2d)
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    obs = torch.randint(0, 256, (6, 4, 84, 84), dtype=torch.uint8)
    actions = torch.arange(6) % 6
    for a, b in zip(plain.evaluate(obs, actions), fast.evaluate(obs, actions), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("shape", [(4, 84, 84), (4, 10, 10)])
def test_acting_matches_evaluate(shape):
    torch.manual_seed(0)
    net = CnnActorCritic(gym.spaces.Box(0, 255, shape, np.uint8), gym.spaces.Discrete(6))
    actor = TorchActor(net, seed=0)
    obs = np.random.default_rng(0).integers(0, 256, (16, *shape), dtype=np.uint8)
    actions, log_probs, values = actor.sample(obs)
    assert actions.shape == (16,) and actions.dtype == np.int64
    t_log_probs, _, t_values = net.evaluate(torch.from_numpy(obs), torch.from_numpy(actions))
    np.testing.assert_allclose(log_probs, t_log_probs.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(values, t_values.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(actor.value(obs), values, rtol=1e-6, atol=1e-7)
    logits, _ = net.logits_and_value(torch.from_numpy(obs))
    np.testing.assert_array_equal(actor.mode(obs), logits.argmax(1).numpy())


def test_sampled_actions_follow_the_policy_distribution():
    torch.manual_seed(0)
    net = CnnActorCritic(gym.spaces.Box(0, 1, (1, 10, 10), np.uint8), gym.spaces.Discrete(3))
    with torch.no_grad():
        net.actor.bias.copy_(torch.log(torch.tensor([0.2, 0.3, 0.5])))
        net.actor.weight.zero_()
    actor = TorchActor(net, seed=1)
    obs = np.zeros((20_000, 1, 10, 10), dtype=np.uint8)
    actions, log_probs, _ = actor.sample(obs)
    freq = np.bincount(actions, minlength=3) / len(actions)
    # three standard errors of a frequency near 0.5 over 20k draws: 0.011
    np.testing.assert_allclose(freq, [0.2, 0.3, 0.5], atol=0.011)
    np.testing.assert_allclose(np.exp(log_probs), np.array([0.2, 0.3, 0.5])[actions], rtol=1e-5)


def test_image_rollouts_keep_raw_uint8_observations_once():
    agent = make_agent(high=255)
    assert isinstance(agent.policy, CnnActorCritic) and agent.policy.kind == "small"
    rollout = agent.collect()
    assert rollout.obs.dtype == np.uint8 and rollout.obs.shape == (16, 2, 4, 10, 10)
    assert rollout.policy_obs is rollout.obs
    assert set(np.unique(rollout.obs)) == {0, 255}
    # an episode is 16 steps: both envs are truncated at step 15 and bootstrap from V(final obs)
    assert list(np.flatnonzero(rollout.truncated[:, 0])) == [15]
    assert np.all(rollout.bootstrap_values[15] != 0) and np.count_nonzero(rollout.bootstrap_values) == 2
    assert agent.obs_norm.enabled is False


def test_flat_observations_keep_the_mlp():
    cfg = PPOConfig(num_envs=2, num_steps=8)
    envs = VecEnv([lambda: gym.make("CartPole-v1")] * 2)
    agent = PPOAgent(envs, cfg, total_steps=100)
    assert type(agent.policy) is ActorCritic
    assert type(agent.actor).__name__ == "NumpyActor"


def test_ppo_updates_on_images_and_checkpoints_round_trip(tmp_path):
    agent = make_agent(seed=3)
    before = [p.detach().clone() for p in agent.policy.parameters()]
    for _ in range(3):
        stats = agent.train(agent.collect(), TrueReward())
    assert all(np.isfinite(v) for v in stats.values())
    assert stats["losses/approx_kl"] > 0
    assert all(not torch.equal(a, b) for a, b in zip(before, agent.policy.parameters(), strict=True))
    agent.save(tmp_path / "agent.pt")

    obs = np.random.default_rng(1).integers(0, 2, (8, 4, 10, 10), dtype=np.uint8)
    clone = make_agent(seed=99)
    clone.load(tmp_path / "agent.pt")
    assert clone.env_steps == agent.env_steps == 96
    np.testing.assert_array_equal(clone.act(obs), agent.act(obs))
    np.testing.assert_array_equal(clone.actor.value(obs), agent.actor.value(obs))
    trained = TrainedPolicy.load(tmp_path / "agent.pt", agent.envs.observation_space, agent.envs.action_space)
    np.testing.assert_array_equal(trained.act(obs), agent.act(obs))

    assert_same_next_update(agent, clone)  # the optimiser state came along


def test_image_envs_get_cleanrl_atari_settings():
    minatar = importlib.util.find_spec("minatar") is not None
    for env_id in ["ALE/Pong-v5", "BreakoutNoFrameskip-v4"] + ["MinAtar/Breakout-v1"] * minatar:
        c = default_config(env_id)
        assert (c.num_envs, c.num_steps, c.minibatch_size, c.update_epochs) == (8, 128, 256, 4), env_id
        assert (c.learning_rate, c.clip_coef, c.ent_coef, c.clip_vloss, c.norm_obs) == (
            2.5e-4,
            0.1,
            0.01,
            True,
            False,
        )
    classic = default_config("Acrobot-v1")
    assert (classic.ent_coef, classic.update_epochs, classic.norm_obs) == (0.0, 4, True)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_asking_for_cuda_without_it_is_a_config_error():
    with pytest.raises(ConfigError, match=r"^--ppo device='cuda': .*; use device=cpu$"):
        resolve_ppo_config("ALE/Pong-v5", {"device": "cuda"})
    with pytest.raises(ConfigError, match=r"^device='cuda:1': .*; use device=cpu$"):
        make_agent(device="cuda:1")


def test_unknown_devices_are_config_errors():
    with pytest.raises(ConfigError, match=r"^--ppo device='gpu': not a device; use cpu, cuda or cuda:N$"):
        resolve_ppo_config("ALE/Pong-v5", {"device": "gpu"})
    with pytest.raises(ConfigError, match=r"^device='meta': prefrl runs on cpu or cuda, not meta$"):
        make_agent(device="meta")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_an_agent_learns_on_cuda_and_its_checkpoint_acts_on_the_cpu(tmp_path):
    agent = make_agent(seed=2, device="cuda")
    assert agent.policy.scale.device.type == "cuda" and agent.device.type == "cuda"
    for _ in range(2):
        stats = agent.train(agent.collect(), TrueReward())
    assert all(np.isfinite(v) for v in stats.values())
    agent.save(tmp_path / "agent.pt")
    space = agent.envs.observation_space
    trained = TrainedPolicy.load(tmp_path / "agent.pt", space, agent.envs.action_space)
    assert trained.network.scale.device.type == "cpu"
    for a, b in zip(agent.policy.parameters(), trained.network.parameters(), strict=True):
        torch.testing.assert_close(a.detach().cpu(), b.detach(), rtol=0, atol=0)
    obs = np.random.default_rng(1).integers(0, 2, (8, *space.shape), dtype=np.uint8)
    np.testing.assert_allclose(trained.actor.value(obs), agent.actor.value(obs), rtol=1e-4, atol=1e-5)


@pytest.mark.learning
def test_small_cnn_learns_which_side_the_pixel_is_on():
    # A contextual bandit: the best policy earns 16 per episode, a random one 16/3.
    agent = make_agent(
        seed=0, num_envs=8, num_steps=64, minibatch_size=128, learning_rate=1e-3, total_steps=30_000
    )
    agent.learn(30_000, TrueReward())
    returns = agent.recent_returns(40)
    assert np.mean(returns) >= 14.5, returns
