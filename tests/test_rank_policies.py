"""scripts/rank_policies.py: each run's reward model against the scripted person, on every run's policy."""

import csv
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from prefrl.agent.checkpoint import load_policy
from prefrl.envs.make import make_env
from prefrl.reward import load_reward_model
from prefrl.runtime.config import TrainConfig
from prefrl.runtime.run import train
from prefrl.tasks import Measure, get_task, measure_all

torch.set_num_threads(1)
SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "rank_policies.py"
spec = importlib.util.spec_from_file_location("rank_policies", SCRIPT)
rank_policies = importlib.util.module_from_spec(spec)
spec.loader.exec_module(rank_policies)
SCRIPTED_RETURN = Measure("scripted return", lambda episode: float(sum(episode.rewards)))


def test_ranks_count_from_the_largest():
    assert rank_policies.ranks([3.0, -1.0, 7.5, 0.0]) == [2, 4, 1, 3]


@pytest.fixture(scope="module")
def spin_runs(tmp_path_factory):
    """Two finished 6-label runs of the spin task (in-process), seeds 0 and 1."""
    runs = []
    for seed in (0, 1):
        run_dir = tmp_path_factory.mktemp(f"spin{seed}") / "run"
        config = TrainConfig(
            task="spin",
            steps=2048,
            labels=6,
            seed=seed,
            backend="inprocess",
            num_evals=1,
            eval_episodes=1,
            ppo={"num_envs": 2, "num_steps": 256},
            reward_model={"epochs_per_round": 2, "min_steps_per_round": 5},
        )
        assert train(config, run_dir, progress=False, video=False)["complete"]
        runs.append(run_dir)
    return runs


def model_return(model_dir: Path, policy_dir: Path, episodes: int) -> float:
    """The model's summed reward over the policy's episodes, played here step by step."""
    model, env = load_reward_model(model_dir), make_env(get_task("spin").gym_id, fixed_length=True)
    policy, sums = load_policy(policy_dir, env), []
    for episode in range(episodes):
        obs, _ = env.reset(seed=10_000 + episode)
        total, done = 0.0, False
        while not done:
            action = policy.act(obs[None])[0]
            total += float(model.predict(obs[None], action[None])[0])
            obs, _, terminated, truncated, _ = env.step(action)
            done = terminated or truncated
        sums.append(total)
    return float(np.mean(sums))


def test_every_model_scores_every_policy_and_the_person_as_the_measures_do(spin_runs, tmp_path, monkeypatch):
    out = tmp_path / "ranking.csv"
    argv = ["rank_policies.py", "--task", "spin", *map(str, spin_runs), "--episodes", "2", "--csv", str(out)]
    monkeypatch.setattr(sys, "argv", argv)
    rank_policies.main()
    rows = list(csv.DictReader(out.open()))
    assert [(r["reward_model"], r["policy"]) for r in rows] == [
        (str(m), str(p)) for m in spin_runs for p in spin_runs
    ]
    task = get_task("spin")
    for row in rows:
        policy = load_policy(Path(row["policy"]), make_env(task.gym_id, fixed_length=True))
        person = np.mean(
            measure_all(policy.act, task, episodes=2, extra=(SCRIPTED_RETURN,))["scripted return"]
        )
        assert float(row["person_return"]) == round(float(person), 1)
        expected = model_return(Path(row["reward_model"]), Path(row["policy"]), episodes=2)
        assert float(row["model_return"]) == pytest.approx(expected, abs=0.006)
    for model_dir in spin_runs:
        mine = [r for r in rows if r["reward_model"] == str(model_dir)]
        assert [int(r["model_rank"]) for r in mine] == rank_policies.ranks(
            [float(r["model_return"]) for r in mine]
        )
        assert [int(r["person_rank"]) for r in mine] == rank_policies.ranks(
            [float(r["person_return"]) for r in mine]
        )
