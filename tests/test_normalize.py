import numpy as np

from prefrl.agent.normalize import ObsNormalizer, RewardScaler, RunningMeanStd


def test_running_mean_std_matches_numpy_over_batches():
    rng = np.random.default_rng(0)
    data = rng.normal(3.0, 2.0, size=(1000, 3)) * np.array([1.0, 10.0, 0.1])
    rms = RunningMeanStd((3,), epsilon=0.0)
    for chunk in np.array_split(data, [1, 10, 250, 600]):
        rms.update(chunk)
    np.testing.assert_allclose(rms.mean, data.mean(0), rtol=1e-12)
    np.testing.assert_allclose(rms.var, data.var(0), rtol=1e-10)
    assert rms.count == 1000


def test_obs_normalizer_clips_and_round_trips():
    norm = ObsNormalizer((2,), clip=5.0)
    norm.update(np.array([[0.0, 0.0], [2.0, 4.0]]))
    out = norm(np.array([[1.0, 2.0], [1000.0, -1000.0]]))
    np.testing.assert_allclose(out[0], [0.0, 0.0], atol=1e-3)
    np.testing.assert_array_equal(out[1], [5.0, -5.0])
    other = ObsNormalizer((2,), clip=5.0)
    other.load_state_dict(norm.state_dict())
    np.testing.assert_array_equal(other(out), norm(out))


def test_reward_scaler_divides_by_std_of_discounted_return():
    gamma = 0.5
    rewards = np.array([[1.0], [2.0], [4.0], [8.0]], dtype=np.float32)
    dones = np.array([[False], [True], [False], [False]])
    scaler = RewardScaler(num_envs=1, gamma=gamma, clip=100.0)
    scaled = scaler(rewards, dones)
    # discounted returns by hand: 1, 0.5*1+2=2.5, (reset) 4, 0.5*4+8=10
    returns = np.array([1.0, 2.5, 4.0, 10.0])
    expected_var = (1e-4 * 1.0 + 4 * returns.var() + 1e-4 * 4 * returns.mean() ** 2 / (4 + 1e-4)) / (4 + 1e-4)
    np.testing.assert_allclose(scaled[:, 0], rewards[:, 0] / np.sqrt(expected_var + 1e-8), rtol=1e-5)
    assert scaler.returns[0] == 10.0  # carried into the next rollout
