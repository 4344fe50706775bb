"""Does the paper's CNN reward model learn Pong's score from comparisons of frames?

Clips of 25 steps (1.7 s) of ``ALE/Pong-v5`` as prefrl preprocesses it (score blacked
out) come from a mix of policies: random, and a scripted paddle that follows the ball
(read from RAM) with some of its actions replaced by random ones. A synthetic teacher
compares random pairs of training clips by their true score (``--non-tie``: only pairs
whose scores differ; ``--balanced``: those too, each pair of scores as often as the
others; ``--tie-share F``: a share F of the pairs with equal scores, labelled equal, the
rest pairs whose scores differ; ``--within-policy``: both clips of a pair played by one
policy); the reward model (prefrl's
image defaults: the paper's CNN ensemble) is trained on those labels, one pass over them
per round. After every round, on clips it never saw:

- accuracy: pairs whose true scores differ, ranked as the score ranks them;
- correlation: Pearson's r between the predicted clip sums and the true clip scores, and
  Spearman's rank correlation between them.

``heldout_clips.csv`` in ``--out`` has each held-out clip after the last round: the policy
that played it, the steps since the point before it and to the point after it, its score
and the reward model's prediction.

    python scripts/pong_reward_check.py --out docs/benchmarks/atari/pong_reward
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path
from typing import Any

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

# Mixes of policies: (name, paddle offset from the ball or None for random play, share of
# random actions). In "wide", most points are lost (40 won, 210 lost in 4,000 steps each);
# "even" takes the followers that win about as many points as they lose (offsets 3 and 12
# without noise win 21 and 14 points for 12 and 7 lost in 3,000 steps), so that a clip's
# policy says little about its score.
MIXES: dict[str, tuple[tuple[str, int | None, float], ...]] = {
    "wide": (
        ("random", None, 1.0),
        ("follow", 6, 0.0),
        ("follow_noisy", 6, 0.3),
        ("follow_low", 0, 0.1),
        ("follow_high", 12, 0.1),
    ),
    "even": (
        ("random", None, 1.0),
        ("follow_0", 0, 0.0),
        ("follow_3", 3, 0.0),
        ("follow_6_noisy", 6, 0.1),
        ("follow_12", 12, 0.0),
    ),
}


def collect(steps_per_policy: int, seed: int, mix: str = "wide") -> tuple[list[Clip], list[dict]]:
    """Consecutive clips of every policy (a clip never spans two episodes: episodes are
    fixed-length and game over restarts the game inside them), and for each clip where it
    came from: the policy, and the steps since the last point before it and until the next
    point after it (None where there was none in its episode)."""
    clips: list[Clip] = []
    origins: list[dict] = []
    for p, (name, offset, noise) in enumerate(MIXES[mix]):
        env = make_env(ENV_ID, fixed_length=True)
        ale = find_atari_frames(env).ale  # type: ignore[union-attr]
        rng = np.random.default_rng([seed, p])
        obs, _ = env.reset(seed=seed * 100 + p)
        frames, rewards = [], []
        episode_rewards: list[float] = []
        episode_clips: list[tuple[int, int]] = []  # (index in clips, first step in episode)
        for _ in range(steps_per_policy):
            ram = ale.getRAM()
            if offset is None or rng.random() < noise:
                action = int(rng.integers(env.action_space.n))
            else:
                action = DOWN if int(ram[BALL_Y]) > int(ram[PLAYER_Y]) + offset else UP
            frames.append(obs)
            obs, _, _, truncated, info = env.step(action)
            rewards.append(info["true_reward"])
            episode_rewards.append(info["true_reward"])
            if len(frames) == CLIP_LENGTH:
                episode_clips.append((len(clips), len(episode_rewards) - CLIP_LENGTH))
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
                origins.extend(_origins(name, episode_rewards, episode_clips))
                obs, _ = env.reset()
                frames, rewards, episode_rewards, episode_clips = [], [], [], []
        origins.extend(_origins(name, episode_rewards, episode_clips))
        env.close()
    return clips, origins


def _origins(policy: str, rewards: list[float], clips: list[tuple[int, int]]) -> list[dict]:
    points = np.flatnonzero(rewards)
    origins = []
    for _, first in clips:
        before = points[points < first]
        after = points[points >= first + CLIP_LENGTH]
        origins.append(
            dict(
                policy=policy,
                steps_since_point=int(first - before[-1]) if len(before) else None,
                steps_to_point=int(after[0] - first - CLIP_LENGTH + 1) if len(after) else None,
            )
        )
    return origins


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
    parser.add_argument(
        "--lr-decay",
        type=float,
        default=1.0,
        metavar="F",
        help="multiply the reward model's learning rate by F after each pass (default 1: constant)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--mix", choices=sorted(MIXES), default="wide", help="the policies that play the clips"
    )
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
        "--balanced",
        action="store_true",
        help="label only pairs whose scores differ, each pair of scores (won/lost, won/none, "
        "none/lost) as often as the others",
    )
    parser.add_argument(
        "--within-policy",
        action="store_true",
        help="label only pairs of two clips of one policy (as a run's pairs mostly are), so that "
        "what tells the policies apart cannot stand in for the score",
    )
    parser.add_argument(
        "--reward-model",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="reward-model setting overrides",
    )
    parser.add_argument(
        "--groups",
        type=Path,
        metavar="CSV",
        help="print the predicted clip sums of a heldout_clips.csv by score, and those of the clips "
        "that scored nothing by the steps since the last point and by policy; then stop",
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.groups:
        print(groups(args.groups))
        return
    if args.non_tie or args.balanced:
        if args.tie_share not in (None, 0.0):
            parser.error("--non-tie and --balanced are --tie-share 0; give one of them")
        args.tie_share = 0.0
    if not 0.0 < args.lr_decay <= 1.0:
        parser.error("--lr-decay must be above 0 and at most 1")
    if args.tie_share is not None and not 0.0 <= args.tie_share < 1.0:
        parser.error("--tie-share must be at least 0 and below 1")
    pairs = (
        "random"
        if args.tie_share is None
        else "balanced"
        if args.balanced
        else "non-tie"
        if args.tie_share == 0
        else f"tie share {args.tie_share:g}"
    )
    torch.manual_seed(args.seed)

    start = time.perf_counter()
    clips, origins = collect(args.steps_per_policy, args.seed, args.mix)
    rng = np.random.default_rng(args.seed)
    order = rng.permutation(len(clips))
    n_test = int(len(clips) * args.test_share)
    test, train = [clips[i] for i in order[:n_test]], [clips[i] for i in order[n_test:]]
    test_origins = [origins[i] for i in order[:n_test]]
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
    by_score = {
        score: np.flatnonzero([c.true_return == score for c in train])
        for score in sorted({c.true_return for c in train})
    }
    train_policies = [origins[i]["policy"] for i in order[n_test:]]

    def draw() -> tuple[int, int]:
        i, j = rng.choice(len(train), size=2, replace=False)
        if args.balanced:
            a, b = rng.choice(list(by_score), size=2, replace=False)
            i, j = rng.choice(by_score[a]), rng.choice(by_score[b])
        elif args.tie_share is not None:
            tie = rng.random() < args.tie_share
            while (train[i].true_return == train[j].true_return) != tie:
                i, j = rng.choice(len(train), size=2, replace=False)
        return i, j

    for key in range(args.labels):
        i, j = draw()
        while args.within_policy and train_policies[i] != train_policies[j]:
            i, j = draw()
        trainer.add(key, train[i], train[j], label(train[i], train[j]))
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    print(
        f"{'round':>5} {'minutes':>8} {'val acc':>8} {'held-out acc':>13} {'clip-sum r':>11} {'spearman':>9}"
    )
    train_start = time.perf_counter()
    for round_ in range(1, args.rounds + 1):
        learning_rate = trainer.optimizer.param_groups[0]["lr"]
        stats = trainer.train_round()
        for group in trainer.optimizer.param_groups:
            group["lr"] *= args.lr_decay
        model.fit_output_normalization(trainer.recent_features())
        accuracy, correlation, spearman = evaluate(model, test, np.random.default_rng(args.seed + 1))
        minutes = (time.perf_counter() - train_start) / 60
        rows.append(
            dict(
                round=round_,
                labels=args.labels,
                pairs=pairs,
                mix=args.mix,
                within_policy=args.within_policy,
                overrides=" ".join(args.reward_model),
                learning_rate=f"{learning_rate:.3g}",
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
        write_heldout(args.out / "heldout_clips.csv", model, test, test_origins)
    print(f"wrote {args.out / 'results.csv'} and {args.out / 'heldout_clips.csv'}")


def groups(path: Path) -> str:
    """Markdown tables of the predicted clip sums in a ``heldout_clips.csv``: by score, and
    for the clips that scored nothing, by the steps since the last point and by policy."""
    with open(path) as f:
        rows = list(csv.DictReader(f))
    buckets = ((1, 10), (11, 25), (26, 50))
    last = "over 50 steps after a point, or none before"

    def since(row: dict) -> str:
        steps = int(row["steps_since_point"]) if row["steps_since_point"] else None
        for low, high in buckets:
            if steps is not None and steps <= high:
                return f"{low}-{high} steps after a point"
        return last

    def table(title: str, keys: list[str], key_of: Any, of: list[dict]) -> str:
        lines = [f"| {title} | clips | mean | std |", "| --- | ---: | ---: | ---: |"]
        for key in keys:
            sums = np.array([float(r["predicted_sum"]) for r in of if key_of(r) == key])
            if len(sums):
                lines.append(f"| {key} | {len(sums)} | {sums.mean():.2f} | {sums.std(ddof=1):.2f} |")
        return "\n".join(lines)

    nothing = [r for r in rows if float(r["score"]) == 0]
    return "\n\n".join(
        [
            table(
                "held-out clips",
                ["score 1", "score 0", "score -1"],
                lambda r: f"score {float(r['score']):g}",
                rows,
            ),
            table(
                "clips that scored nothing",
                [f"{low}-{high} steps after a point" for low, high in buckets] + [last],
                since,
                nothing,
            ),
            table(
                "clips that scored nothing, by policy",
                sorted({r["policy"] for r in nothing}),
                lambda r: r["policy"],
                nothing,
            ),
        ]
    )


def write_heldout(path: Path, model: RewardModel, clips: list[Clip], origins: list[dict]) -> None:
    """Each held-out clip's origin, true score and predicted reward: its sum, and the step
    (and value) where the predicted reward is highest and lowest."""
    with open(path, "w", newline="") as f:
        writer = None
        for clip, origin in zip(clips, origins, strict=True):
            reward = model.predict(clip.obs, clip.actions)
            row = dict(
                **origin,
                score=clip.true_return,
                point_step=int(np.flatnonzero(clip.true_rewards)[0]) if clip.true_return else None,
                predicted_sum=round(float(reward.sum()), 4),
                max_step=int(reward.argmax()),
                max_reward=round(float(reward.max()), 4),
                min_step=int(reward.argmin()),
                min_reward=round(float(reward.min()), 4),
            )
            if writer is None:
                writer = csv.DictWriter(f, fieldnames=list(row))
                writer.writeheader()
            writer.writerow(row)


if __name__ == "__main__":
    main()
