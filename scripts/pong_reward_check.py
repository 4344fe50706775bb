"""Does the paper's CNN reward model learn Pong's score from comparisons of frames?

Clips of 25 steps (1.7 s) of ``ALE/Pong-v5`` as prefrl preprocesses it (score blacked
out) come from a mix of policies: random, and a scripted paddle that follows the ball
(read from RAM) with some of its actions replaced by random ones. A synthetic teacher
compares random pairs of training clips by their true score (``--non-tie``: only pairs
whose scores differ; ``--tie-share F``: a share F of the pairs with equal scores, labelled
equal, the rest pairs whose scores differ); the reward model (prefrl's
image defaults: the paper's CNN ensemble) is trained on those labels, one pass over them
per round. After every round, on clips it never saw:

- accuracy: pairs whose true scores differ, ranked as the score ranks them;
- correlation: Pearson's r between the predicted clip sums and the true clip scores, and
  Spearman's rank correlation between them.

    python scripts/pong_reward_check.py --out docs/benchmarks/atari/pong_reward
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

import numpy as np
import torch

from prefrl.cli import parse_overrides
from prefrl.envs import make_env
from prefrl.envs.atari import find_atari_frames
from prefrl.prefs.clips import Clip
from prefrl.reward.model import RewardModel, RewardModelConfig
from prefrl.reward.trainer import PreferenceTrainer
from prefrl.runtime.config import preference_defaults
from prefrl.utils.stats import spearman

ENV_ID = "ALE/Pong-v5"
CLIP_LENGTH = 25
PLAYER_Y, BALL_Y = 51, 54  # Pong's RAM: the right paddle's and the ball's heights
UP, DOWN = 2, 3  # RIGHT and LEFT in Pong's action set move the paddle up and down

# (name, paddle offset from the ball or None for random play, share of random actions)
POLICIES: tuple[tuple[str, int | None, float], ...] = (
    ("random", None, 1.0),
    ("follow", 6, 0.0),
    ("follow_noisy", 6, 0.3),
    ("follow_low", 0, 0.1),
    ("follow_high", 12, 0.1),
)


def collect(steps_per_policy: int, seed: int) -> list[Clip]:
    """Consecutive clips of every policy (a clip never spans two episodes: episodes are
    fixed-length and game over restarts the game inside them)."""
    clips: list[Clip] = []
    for p, (_, offset, noise) in enumerate(POLICIES):
        env = make_env(ENV_ID, fixed_length=True)
        ale = find_atari_frames(env).ale  # type: ignore[union-attr]
        rng = np.random.default_rng([seed, p])
        obs, _ = env.reset(seed=seed * 100 + p)
        frames, rewards = [], []
        for _ in range(steps_per_policy):
            ram = ale.getRAM()
            if offset is None or rng.random() < noise:
                action = int(rng.integers(env.action_space.n))
            else:
                action = DOWN if int(ram[BALL_Y]) > int(ram[PLAYER_Y]) + offset else UP
            frames.append(obs)
            obs, _, _, truncated, info = env.step(action)
            rewards.append(info["true_reward"])
            if len(frames) == CLIP_LENGTH:
                clips.append(
                    Clip(
                        obs=np.stack(frames),
                        actions=np.zeros(CLIP_LENGTH, np.int64),
                        true_rewards=np.asarray(rewards, np.float32),
                        snapshots=None,
                        env_id=ENV_ID,
                    )
                )
                frames, rewards = [], []
            if truncated:
                obs, _ = env.reset()
                frames, rewards = [], []
        env.close()
    return clips


def label(left: Clip, right: Clip) -> float:
    """The synthetic teacher: the clip that scored more, equal on a tie."""
    diff = left.true_return - right.true_return
    return 0.5 if diff == 0 else float(diff > 0)


def evaluate(model: RewardModel, clips: list[Clip], rng: np.random.Generator) -> tuple[float, float, float]:
    """(accuracy on random non-tie pairs of ``clips``, Pearson's and Spearman's correlation
    of clip sums with the clips' scores)."""
    predicted = np.array([model.predict(c.obs, c.actions).sum() for c in clips])
    true = np.array([c.true_return for c in clips])
    left, right = rng.integers(len(clips), size=(2, 20 * len(clips)))
    strict = true[left] != true[right]
    agree = (predicted[left] > predicted[right]) == (true[left] > true[right])
    pearson = float(np.corrcoef(predicted, true)[0, 1])
    return float(agree[strict].mean()), pearson, spearman(predicted, true)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps-per-policy", type=int, default=5000)
    parser.add_argument("--labels", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=8, help="passes over the labels")
    parser.add_argument("--test-share", type=float, default=0.3, help="share of clips held out")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("runs/pong_reward_check"))
    parser.add_argument(
        "--non-tie", action="store_true", help="label only pairs whose scores differ (default: random pairs)"
    )
    parser.add_argument(
        "--tie-share",
        type=float,
        default=None,
        metavar="F",
        help="label a share F of pairs with equal scores (as equal), the rest with scores that differ",
    )
    parser.add_argument(
        "--reward-model",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="reward-model setting overrides",
    )
    args = parser.parse_args()
    if args.non_tie:
        if args.tie_share not in (None, 0.0):
            parser.error("--non-tie is --tie-share 0; give one of them")
        args.tie_share = 0.0
    if args.tie_share is not None and not 0.0 <= args.tie_share < 1.0:
        parser.error("--tie-share must be at least 0 and below 1")
    pairs = (
        "random"
        if args.tie_share is None
        else "non-tie"
        if args.tie_share == 0
        else f"tie share {args.tie_share:g}"
    )
    torch.manual_seed(args.seed)

    start = time.perf_counter()
    clips = collect(args.steps_per_policy, args.seed)
    rng = np.random.default_rng(args.seed)
    order = rng.permutation(len(clips))
    n_test = int(len(clips) * args.test_share)
    test, train = [clips[i] for i in order[:n_test]], [clips[i] for i in order[n_test:]]
    scores = np.array([c.true_return for c in clips])
    print(
        f"{len(clips)} clips in {time.perf_counter() - start:.0f} s: {int((scores > 0).sum())} won a "
        f"point, {int((scores < 0).sum())} lost one; {len(train)} to train on, {len(test)} held out"
    )

    settings = dict(preference_defaults(ENV_ID)["reward_model"])
    overrides = parse_overrides(args.reward_model)
    config = RewardModelConfig().override(
        {**settings, "epochs_per_round": 1, "first_round_multiplier": 1, **overrides}
    )
    model = RewardModel(train[0].obs.shape[1:], make_env(ENV_ID).action_space, config, seed=args.seed)
    trainer = PreferenceTrainer(model, seed=args.seed)
    for key in range(args.labels):
        i, j = rng.choice(len(train), size=2, replace=False)
        if args.tie_share is not None:
            tie = rng.random() < args.tie_share
            while (train[i].true_return == train[j].true_return) != tie:
                i, j = rng.choice(len(train), size=2, replace=False)
        trainer.add(key, train[i], train[j], label(train[i], train[j]))
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    print(
        f"{'round':>5} {'minutes':>8} {'val acc':>8} {'held-out acc':>13} {'clip-sum r':>11} {'spearman':>9}"
    )
    train_start = time.perf_counter()
    for round_ in range(1, args.rounds + 1):
        stats = trainer.train_round()
        model.fit_output_normalization(trainer.recent_features())
        accuracy, correlation, spearman = evaluate(model, test, np.random.default_rng(args.seed + 1))
        minutes = (time.perf_counter() - train_start) / 60
        rows.append(
            dict(
                round=round_,
                labels=args.labels,
                pairs=pairs,
                overrides=" ".join(args.reward_model),
                train_minutes=round(minutes, 2),
                val_accuracy=round(stats["reward/val_accuracy"], 4),
                heldout_accuracy=round(accuracy, 4),
                clip_sum_correlation=round(correlation, 4),
                clip_sum_spearman=round(spearman, 4),
            )
        )
        print(
            f"{round_:>5} {minutes:>8.1f} {stats['reward/val_accuracy']:>8.3f} {accuracy:>13.3f} "
            f"{correlation:>11.3f} {spearman:>9.3f}",
            flush=True,
        )
        with open(args.out / "results.csv", "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    print(f"wrote {args.out / 'results.csv'}")


if __name__ == "__main__":
    main()
