"""The reward-trainer role: trains the ensemble on the store's labels and publishes
versioned weights to the agent and the labeler."""

from __future__ import annotations

import time
from pathlib import Path

import torch

from prefrl.envs.make import make_env
from prefrl.prefs.store import Label, PreferenceStore
from prefrl.reward.model import RewardModel
from prefrl.reward.trainer import PreferenceTrainer
from prefrl.rundir import RunDir
from prefrl.runtime.channels import Status, StatusSender, WeightPublisher
from prefrl.runtime.config import TrainConfig
from prefrl.runtime.role import Role
from prefrl.utils.checkpoint import load_checkpoint

REUSED_KEY = 1 << 40
"""the trainer's key of a reused label is this plus its query id in the reused store"""


class RewardTrainerRole(Role):
    """Reads new labels from the store, trains a round, publishes the new version.

    The first round waits for the initial labels (those asked about the untrained
    policy) and at least one of them it can train on. After each new batch of labels it
    trains one round; with no new labels it keeps refining for ``extra_rounds`` more
    rounds, then rests until labels arrive. Each round reports ``reward/labels``, the
    labels it trained on: the run is not over before that covers every trainable answer.
    """

    name = "reward_trainer"
    idle_sleep = 0.1

    def __init__(
        self,
        config: TrainConfig,
        run_dir: Path,
        weights: WeightPublisher,
        status: StatusSender,
        extra_rounds: int = 2,
    ):
        torch.set_num_threads(1)
        self.cfg = config
        self.rundir = RunDir(run_dir)
        self.weights, self.status = weights, status
        self.store = PreferenceStore(self.rundir.store_path, env_id=config.env_id)
        env = make_env(config.env_id)
        obs_shape = env.observation_space.shape
        assert obs_shape is not None
        self.model = RewardModel(obs_shape, env.action_space, config.reward_model_config(), seed=config.seed)
        env.close()
        self.trainer = PreferenceTrainer(self.model, seed=config.seed)
        self.initial_labels = config.schedule().initial_labels
        self.extra_rounds = extra_rounds
        self.rounds_without_new = extra_rounds  # nothing to refine before the first labels
        self.known: dict[int, float] = {}
        """query id -> mu of each label the trainer holds"""
        self.last_metrics: dict[str, float] = {}
        self._labels_cache: list[Label] = []
        self.reused = self._add_reused_labels()

        if self.rundir.reward_checkpoint.exists():
            self.model.load_state_dict(load_checkpoint(self.rundir.reward_checkpoint, "reward_model"))
            if self.rundir.trainer_checkpoint.exists():
                self.trainer.load(self.rundir.trainer_checkpoint)

    def step(self) -> bool:
        new = self._read_new_labels()
        if self.trainer.num_labels == 0:
            return False
        if self.model.version == 0 and not self.reused and self.store.num_answered() < self.initial_labels:
            return False  # the first model learns from all the initial labels at once
        if new or self.model.version == 0:  # the first round is owed (reused labels: at once)
            self.rounds_without_new = 0
        elif self.rounds_without_new >= self.extra_rounds:
            return False
        else:
            self.rounds_without_new += 1
        started = time.perf_counter()
        metrics = self.trainer.train_round()
        metrics["reward/labels"] = len(self.known)  # this run's own labels: the run ends on them
        metrics["reward/labels_reused"] = self.reused
        self.model.fit_output_normalization(self.trainer.recent_features())
        self.model.version += 1
        metrics["reward/recent_clip_return_corr"] = self.trainer.recent_return_correlation()
        metrics["reward/version"] = self.model.version
        metrics["reward/round_time_s"] = time.perf_counter() - started
        self.weights.publish(self.model.state_dict())
        self.save()
        self.last_metrics = metrics
        agent_step = max((lbl.agent_step for lbl in self._labels_cache), default=0)
        self.status.put(Status(self.name, "metrics", agent_step, metrics))
        return True

    def _add_reused_labels(self) -> int:
        """Add the trainable labels of other runs this run reuses (``--labels-from``, copied
        into the run directory when it was made); returns how many. They never change, and
        their keys (``REUSED_KEY + query id there``) stay clear of this run's query ids."""
        path = self.rundir.reused_store_path
        if not path.exists():
            return 0
        with PreferenceStore(path, env_id=self.cfg.env_id) as reused:
            labels = reused.trainable_labels()
            self.trainer.add_labels(labels, reused.clips_of(labels), key_offset=REUSED_KEY)
        return len(labels)

    def _read_new_labels(self) -> int:
        """Bring the trainer's data in line with the store's trainable labels; returns how
        many labels were added or dropped (0: nothing changed)."""
        # All labels are listed (cheap: no clip data), so an answer to an older query that
        # was re-asked after a crash is still picked up, and one taken back (the labelling
        # window's undo) or set aside is dropped; an answer given anew replaces the old one.
        labels = self.store.trainable_labels()
        self._labels_cache = labels
        current = {lbl.query_id: lbl.mu for lbl in labels}
        gone = [qid for qid, mu in self.known.items() if current.get(qid) != mu]
        for qid in gone:
            self.trainer.remove(qid)
            del self.known[qid]
        new = [lbl for lbl in labels if lbl.query_id not in self.known]
        if new:
            self.trainer.add_labels(new, self.store.clips_of(new))
            self.known.update({lbl.query_id: lbl.mu for lbl in new if lbl.mu is not None})  # trainable: all
        return len(new) + len(gone)

    def save(self) -> None:
        self.model.save(self.rundir.reward_checkpoint)
        self.trainer.save(self.rundir.trainer_checkpoint)

    def close(self) -> None:
        self.store.close()
