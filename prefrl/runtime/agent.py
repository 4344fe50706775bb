"""The agent role: PPO on the learned reward, cutting clips of its behaviour as it goes."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from prefrl.agent.evaluate import evaluate_both
from prefrl.agent.hyperparams import resolve_ppo_config
from prefrl.agent.ppo import PPOAgent, PPOConfig, Rollout, RolloutCollector
from prefrl.envs.make import make_env, snapshots_supported
from prefrl.envs.vector import VecEnv
from prefrl.interfaces import RewardSource
from prefrl.prefs.clips import Answer, ClipCutter
from prefrl.prefs.store import PreferenceStore, StoreError
from prefrl.reward.intrinsic import ExplorationReward, KnnStateEntropy, exploration_weight
from prefrl.reward.model import RewardModel
from prefrl.reward.sources import LearnedReward, true_reward_correlation
from prefrl.rundir import RunDir
from prefrl.runtime.channels import ClipBatch, ClipSender, Status, StatusSender, WeightSubscriber
from prefrl.runtime.config import TrainConfig
from prefrl.runtime.pacing import Pacer
from prefrl.runtime.role import Role
from prefrl.utils.checkpoint import load_checkpoint, save_checkpoint


class AgentRole(Role):
    """Acts, learns from the newest reward model, and sends clips to the labeler.

    Before the first reward model exists the policy is the untrained one: the agent
    collects rollouts only to cut clips for the initial labels (enough for
    ``2 x initial labels`` clips), then waits. From the first model on, every step is
    one PPO rollout and update; new weights are picked up before each rollout, so the
    agent always uses weights at most one rollout old.

    With exploration on (``config.explore_labels`` > 0) the agent does not wait for the
    first model: it learns from the state-entropy reward alone until then, and from a
    mix of it and the learned reward after, the intrinsic share falling to 0 as
    informative answers arrive (:mod:`prefrl.reward.intrinsic`).
    """

    name = "agent"

    def __init__(
        self,
        config: TrainConfig,
        run_dir: Path,
        clips: ClipSender,
        weights: WeightSubscriber,
        status: StatusSender,
    ):
        torch.set_num_threads(1)
        self.cfg = config
        self.rundir = RunDir(run_dir)
        self.clips, self.weights, self.status = clips, weights, status
        env_id = config.env_id
        # A learned reward has no fixed scale and shifts with every new version: PPO always
        # scales it (CartPole's table turns scaling off for the true reward; with a learned
        # one it lost a seed in three without it).
        self.ppo_config = resolve_ppo_config(env_id, {"norm_reward": True, **config.ppo})
        # Every step is snapshotted where the env family allows, so that any clip can be
        # shown later (a run a person labels needs that: prefrl.runtime.run checks it).
        self.snapshots = snapshots_supported(env_id)
        self.envs = _agent_envs(config, self.ppo_config, self.snapshots)
        self.agent = PPOAgent(self.envs, self.ppo_config, total_steps=config.steps, seed=config.seed)
        self.cutter = ClipCutter(env_id, config.clip_length, self.ppo_config.num_envs)
        self.initial_clips_wanted = 2 * config.schedule().initial_labels
        self.clips_sent = 0
        self.clips_dropped = 0
        self.model: RewardModel | None = None
        self.eval_every = max(1, config.steps // max(1, config.num_evals))
        self.next_eval = self.eval_every
        self.last_eval: list[float] = []  # deterministic policy
        self.last_eval_stochastic: list[float] = []
        self.busy_time = 0.0  # seconds spent acting and learning (not evaluating, not waiting)
        self.busy_steps = 0
        self.pacer = Pacer(config.schedule(), enabled=config.pace == "wait")
        self.told_waiting = False  # the run has been told the agent waits for answers
        self._store: PreferenceStore | None = None  # opened once the labeler has made it
        self.entropy = KnnStateEntropy(seed=config.seed) if config.explore_labels > 0 else None
        self.informative = 0  # answers that said one clip is better, read with each new model

        self.evaluating = False  # saved with the agent: see save()
        if self.rundir.agent_checkpoint.exists():
            state = load_checkpoint(self.rundir.agent_checkpoint, "agent")
            self.agent.load_state_dict(state)
            self.agent.total_steps = config.steps  # a resumed run may have been given more
            self.next_eval = (self.agent.env_steps // self.eval_every + 1) * self.eval_every
            if state.get("evaluating"):  # stopped during an evaluation: run again at the first rollout
                self.next_eval = self.agent.env_steps
            # the initial clips cut before the crash are those the labeler stored (a run that
            # stopped before it had any must still send them, or it waits for a first model forever)
            store = self._open_store()
            self.clips_sent = min(self.initial_clips_wanted, 0 if store is None else store.num_clips())
        if self.rundir.reward_checkpoint.exists():
            self.model = RewardModel.load(self.rundir.reward_checkpoint)

    # ------------------------------------------------------------------ step
    def step(self) -> bool:
        if self.agent.env_steps >= self.cfg.steps:  # e.g. resumed after a crash at the very end
            self._finish()
            return True
        self._refresh_weights()
        started, steps_before = time.perf_counter(), self.agent.env_steps
        if self.model is None:
            if self.entropy is not None:  # explore while the first model is trained
                rollout = self.agent.collect(capture_snapshots=self.snapshots)
                self.agent.train(rollout, self._reward_source())
                self._send_clips(rollout)
                self._count_busy(started, steps_before)
                return True
            if self.clips_sent >= self.initial_clips_wanted and not self._labeler_out_of_pairs():
                return self._waiting(True)  # for the first reward model
            self._waiting(False)
            self._send_clips(self.agent.collect(capture_snapshots=self.snapshots))
            self._count_busy(started, steps_before)
            return True

        if self.pacer.must_wait(self.agent.env_steps, self._answered) and not self._labeler_out_of_pairs():
            return self._waiting(True)
        self._waiting(False)
        rollout = self.agent.collect(capture_snapshots=self.snapshots)
        stats = self.agent.train(rollout, self._reward_source())
        self._send_clips(rollout)
        self._count_busy(started, steps_before)
        self._report(rollout, stats)
        if self.agent.num_updates % self.cfg.checkpoint_every == 0:
            self.save()
        if self.agent.env_steps >= self.cfg.steps:
            self._finish()
        return True

    def _waiting(self, waiting: bool) -> bool:
        """Whether the agent waits for answers now, told to the run when it changes (its
        status line and status.json say so); returns whether a step was taken: not while
        waiting."""
        if waiting != self.told_waiting:
            self.status.put(
                Status(self.name, "metrics", self.agent.env_steps, {"pace/waiting": int(waiting)})
            )
            self.told_waiting = waiting
        return not waiting

    def _count_busy(self, started: float, steps_before: int) -> None:
        self.busy_time += time.perf_counter() - started
        self.busy_steps += self.agent.env_steps - steps_before

    def _refresh_weights(self) -> None:
        state = self.weights.latest()
        if state is None:
            return
        if self.model is None:
            self.model = RewardModel.from_state_dict(state)
        else:
            self.model.load_state_dict(state)
        if self.entropy is not None:
            self.informative = self._informative()

    def exploration_weight(self) -> float:
        """The intrinsic reward's share of what the agent learns from now (0: exploration off)."""
        if self.entropy is None:
            return 0.0
        if self.model is None:
            return 1.0
        return exploration_weight(self.informative, self.cfg.explore_labels)

    def _reward_source(self) -> RewardSource:
        learned = None if self.model is None else LearnedReward(self.model)
        weight = self.exploration_weight()
        if learned is not None and weight == 0.0:
            return learned
        assert self.entropy is not None
        return ExplorationReward(learned, self.entropy, weight)

    def _send_clips(self, rollout: Rollout) -> None:
        clips = self.cutter.cut(
            rollout.obs,
            rollout.actions,
            rollout.true_rewards,
            rollout.episode_starts,
            rollout.snapshots,
            rollout.env_steps,
        )
        if not clips:
            return
        if self.clips.put(ClipBatch(clips, rollout.env_steps)):
            self.clips_sent += len(clips)
        else:
            self.clips_dropped += len(clips)

    def _report(self, rollout: Rollout, stats: dict[str, float]) -> None:
        assert self.model is not None
        values: dict[str, Any] = dict(stats)
        recent = self.agent.recent_returns(10)
        values["charts/episodic_return"] = float(np.mean(recent)) if recent else None
        values["charts/episodes"] = len(self.agent.episodes)
        values["reward/version_used"] = self.model.version
        values["reward/rollout_true_corr"] = true_reward_correlation(
            self.agent.rewards_for(rollout, LearnedReward(self.model)), rollout.true_rewards
        )
        values["charts/clips_dropped"] = self.clips_dropped
        values["charts/SPS"] = self.busy_steps / max(self.busy_time, 1e-9)
        values["charts/wait_share"] = self.pacer.wait_share()
        values["charts/explore_weight"] = self.exploration_weight()
        if self.agent.env_steps >= self.next_eval or self.agent.env_steps >= self.cfg.steps:
            values.update(self._evaluate())
            while self.next_eval <= self.agent.env_steps:
                self.next_eval += self.eval_every
        self.status.put(Status(self.name, "metrics", self.agent.env_steps, values))

    def _evaluate(self) -> dict[str, Any]:
        """Evaluate the policy; returns its metrics. The agent is saved first, marked as
        evaluating: a run stopped in a long evaluation (Atari: 27,000-step episodes, minutes)
        keeps its steps and evaluates again when resumed; and the policy evaluated is the one
        a progress video will show."""
        self.evaluating = True
        self.save()
        running = {"eval/episodes_running": 2 * self.cfg.eval_episodes}  # said first: it may take long
        self.status.put(Status(self.name, "metrics", self.agent.env_steps, running))
        self.last_eval, self.last_eval_stochastic = evaluate_both(
            self.agent,
            self.cfg.env_id,
            self.cfg.eval_episodes,
            seed=10_000,
            fixed_length=self.cfg.fixed_length or False,
        )
        self.evaluating = False
        return {
            "eval/mean_return": float(np.mean(self.last_eval)),
            "eval/mean_return_stochastic": float(np.mean(self.last_eval_stochastic)),
            "eval/episodes_running": 0,
        }

    def _finish(self) -> None:
        if not self.last_eval:  # resumed at the very end: its final evaluation, and its row
            self.status.put(Status(self.name, "metrics", self.agent.env_steps, self._evaluate()))
        self.save()
        recent = self.agent.recent_returns(10)
        final = {
            "final_train_return": float(np.mean(recent)) if recent else None,
            "final_eval_return": float(np.mean(self.last_eval)),
            "eval_returns": self.last_eval,
            "final_eval_return_stochastic": float(np.mean(self.last_eval_stochastic)),
            "eval_returns_stochastic": self.last_eval_stochastic,
            "episodes": len(self.agent.episodes),
            "wait_share": self.pacer.wait_share(),
        }
        self.status.put(Status(self.name, "done", self.agent.env_steps, final))
        self.done = True

    def _answered(self) -> int:
        """Answers in the store now (0 before the labeler has created it)."""
        store = self._open_store()
        return 0 if store is None else store.num_answered()

    def _labeler_out_of_pairs(self) -> bool:
        """Whether every pair of the labeler's pool has been asked and none waits for an
        answer (a pair is never asked twice): waiting for answers would then wait forever,
        and new clips let the labeler go on. Counted over the whole store, so it may say
        so early, never late."""
        store = self._open_store()
        if store is None:
            return False
        clips = min(store.num_clips(), self.cfg.pool_size)  # under 2: nothing paired yet
        return clips >= 2 and store.num_queries() >= clips * (clips - 1) // 2 and not store.pending_queries()

    def _informative(self) -> int:
        """Answers in the store that said one clip is better (ties and skips do not count)."""
        store = self._open_store()
        if store is None:
            return 0
        counts = store.answer_counts()
        return counts[Answer.LEFT] + counts[Answer.RIGHT]

    def _open_store(self) -> PreferenceStore | None:
        if self._store is None:
            try:
                self._store = PreferenceStore(self.rundir.store_path)
            except StoreError:  # not there yet, or the labeler is creating it
                return None
        return self._store

    def save(self) -> None:
        """The agent's checkpoint, and whether an evaluation was under way (a run stopped
        in one runs it again when resumed)."""
        state = {**self.agent.state_dict(), "evaluating": self.evaluating}
        save_checkpoint(state, self.rundir.agent_checkpoint, "agent")

    def close(self) -> None:
        if self.model is not None:  # before the first model there is nothing worth resuming
            self.save()
        self.envs.close()
        if self._store is not None:
            self._store.close()


def _agent_envs(config: TrainConfig, ppo: PPOConfig, snapshots: bool) -> VecEnv | RolloutCollector:
    """The agent's envs: stepped here, or spread over ``config.workers`` rollout workers."""
    if config.workers:
        from prefrl.runtime.rollout_workers import RolloutWorkers

        return RolloutWorkers(
            config.to_dict(), ppo, config.workers, seed=config.seed, capture_snapshots=snapshots
        )
    make = lambda: make_env(config.env_id, fixed_length=config.fixed_length or False)  # noqa: E731
    return VecEnv([make] * ppo.num_envs, capture_snapshots=snapshots)
