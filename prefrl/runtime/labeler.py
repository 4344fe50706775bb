"""The labeler role: keeps the label budget on schedule, picks pairs, asks the oracle,
and writes every answer to the preference store the moment it is given."""

from __future__ import annotations

import collections
import time
from pathlib import Path
from typing import Any

import numpy as np

from prefrl.oracles import Oracle, make_oracle, parse_teacher
from prefrl.prefs.clips import Answer, Clip
from prefrl.prefs.selection import select_pairs, unasked_pairs
from prefrl.prefs.store import PreferenceStore
from prefrl.render.frames import SnapshotRenderer
from prefrl.render.pair import render_pair_video
from prefrl.reward.model import RewardModel
from prefrl.rundir import RunDir, resume_command
from prefrl.runtime.channels import ClipReceiver, Status, StatusSender, WeightSubscriber
from prefrl.runtime.config import TrainConfig
from prefrl.runtime.role import Role


def build_oracle(config: TrainConfig) -> Oracle:
    """The synthetic oracle a config asks for (the human one is built by the UI)."""
    name, params = parse_teacher(config.teacher)
    return make_oracle(name, seed=config.seed, **params)


def pairs_not_to_ask(store: PreferenceStore, run: RunDir) -> set[tuple[str, str]]:
    """The pairs a labeler never asks: a label that teaches nothing new. Those asked in the
    run's ``store``, and those of the labels the run reuses that have an answer."""
    asked = store.asked_pairs()
    if run.reused_store_path.exists():
        with PreferenceStore(run.reused_store_path) as reused:
            asked |= reused.asked_pairs(answered=True)
    return asked


def reused_trainable_labels(run: RunDir) -> int:
    """Trainable labels the run reuses from others (``--labels-from``); 0 without any."""
    if not run.reused_store_path.exists():
        return 0
    with PreferenceStore(run.reused_store_path) as reused:
        return reused.num_trainable()


class LabelerRole(Role):
    """Asks for labels as the schedule allows, from a pool of the agent's recent clips.

    With a synthetic oracle it asks and records each answer itself; queries left
    unanswered by a crash (or brought by an import) are asked first, as the schedule and
    the budget allow. With ``config.oracle == "human"`` it
    only keeps up to ``human_queue`` queries waiting in the store, ahead of the person:
    the labelling window (``prefrl label RUN_DIR``, a separate process that may come and
    go) shows them and commits each answer to the store the moment it is given.
    """

    name = "labeler"

    def __init__(
        self,
        config: TrainConfig,
        run_dir: Path,
        clips: ClipReceiver,
        weights: WeightSubscriber,
        status: StatusSender,
        oracle: Oracle | None = None,
        max_queries_per_step: int = 10,
        human_queue: int = 3,
    ):
        self.cfg = config
        self.clips, self.weights, self.status = clips, weights, status
        self.rundir = RunDir(run_dir)
        self.store = PreferenceStore(self.rundir.store_path, env_id=config.env_id)
        self.human = oracle is None and config.oracle == "human"
        self.oracle: Oracle | None = oracle if oracle is not None or self.human else build_oracle(config)
        if self.oracle is not None:  # a teacher built again goes on where it stopped
            self.oracle.recall(self.store.answered_returns(self.oracle.name))
        self.human_queue = human_queue
        self._renderer: SnapshotRenderer | None = None  # for query videos, built on first use
        # the answers that have their query video, or had them before this start: a person
        # may answer out of order (an undone answer given again, two windows), so a video
        # is owed to every answer not in here, not only to those past the newest
        self._videoed = {label.query_id for label in self.store.labels()}
        self.schedule = config.schedule()
        # a labeler that starts again pairs from the clips it stored before until new ones come
        self.pool: collections.deque[Clip] = collections.deque(
            self.store.recent_clips(config.pool_size), maxlen=config.pool_size
        )
        self.model: RewardModel | None = None
        self.agent_step = 0
        self.rng = np.random.default_rng([config.seed, 7])
        self.max_queries_per_step = max_queries_per_step
        self.answered = self.store.num_answered()
        self.asked = pairs_not_to_ask(self.store, self.rundir)
        self.reused_trainable = reused_trainable_labels(self.rundir)
        self.final = False  # the agent has finished: ask for the whole budget

    def step(self) -> bool:
        for batch in self.clips.get_all(timeout=0.05):
            known = {clip.clip_id for clip in self.pool}  # a restarted labeler is sent recent clips again
            self.pool.extend(clip for clip in batch.clips if clip.clip_id not in known)
            self.agent_step = max(self.agent_step, batch.agent_step)
            self.final |= batch.final
        state = self.weights.latest()
        if state is not None:
            self.model = RewardModel.from_state_dict(state)

        if self.human:
            progressed = self._queue_for_human()
        else:
            progressed = self._ask_synthetic()
        if not self.done:
            self._finish_if_over()
        return progressed or self.done

    def _ask_synthetic(self) -> bool:
        pending = self.store.pending_queries()
        wanted = self._wanted()
        if pending and self.answered < wanted:  # e.g. asked before a crash, or imported: due like any
            query = pending[0]
            clips = self.store.get_clips([query.left_clip_id, query.right_clip_id])
            self._ask(query.query_id, clips[query.left_clip_id], clips[query.right_clip_id])
            return True
        if self.answered >= wanted or len(self.pool) < 2:
            return False
        if not self._add_queries(min(wanted - self.answered, self.max_queries_per_step), ask=True):
            return False  # every pair of the pool was asked: new clips will come
        self._report()
        return True

    def _wanted(self) -> int:
        """Labels that should be answered by now: the schedule's count, the whole budget
        once the agent has finished, and one more while no answer can train a first model."""
        if self.final:
            return self.cfg.labels
        wanted = self.schedule.labels_wanted(self.agent_step)
        if self.model is None and self.store.num_trainable() == 0 and not self.reused_trainable:
            wanted = max(wanted, self.answered + 1)  # e.g. every initial answer was "skipped"
        return min(wanted, self.cfg.labels)

    def _finish_if_over(self) -> None:
        """Report the labeler's end: the budget is used, or no more labels can come."""
        reason = None
        if self.answered >= self.cfg.labels:
            if self.store.num_trainable() == 0 and not self.reused_trainable:
                reason = (
                    f"none of the {self.answered} answers can be trained on (every one was skipped or "
                    "can't tell), so the reward model never trained; a larger --labels budget asks more"
                )
        elif (
            self.final and not self.store.pending_queries() and not len(unasked_pairs(self.pool, self.asked))
        ):
            few = "too few for a pair" if len(self.pool) < 2 else "and every pair of them was asked"
            shorter = (
                "a shorter --clip-length, or --fixed-length STEPS (episodes of that many steps), in a new "
                "run (prefrl resume keeps the clip length)"
            )
            ppo = self.cfg.ppo_config()
            envs, rollout = ppo.num_envs, ppo.num_envs * ppo.num_steps
            if self.cfg.steps // envs < self.cfg.clip_length:  # the budget, not the episodes, too short
                # a resumed run cuts its clips afresh: a whole clip per env more, in whole rollouts
                more = -(-self.cfg.clip_length * envs // rollout) * rollout
                advice = (
                    f"Its --steps {self.cfg.steps} over {envs} envs are {self.cfg.steps // envs} steps each, "
                    f"fewer than a clip of {self.cfg.clip_length}: {resume_command(self.rundir.path)} --steps "
                    f"{self.agent_step + more} gives each env a whole clip more"
                )
            elif self.pool:
                advice = (
                    f"Give the run more --steps; if its episodes end before a clip of "
                    f"{self.cfg.clip_length} steps is complete, {shorter}"
                )
            else:  # not one clip in the whole budget: more of the same episodes would give none either
                advice = (
                    f"Its episodes end before a clip of {self.cfg.clip_length} steps is complete: {shorter}"
                )
            reason = (
                f"the agent finished with {len(self.pool)} clip(s) to compare, {few}; "
                f"{self.answered} of {self.cfg.labels} labels were given. {advice}"
            )
        else:
            return
        self.done = True
        self._report()
        values = {
            "complete": reason is None,
            "reason": reason,
            "labels/trainable": self.store.num_trainable(),
        }
        self.status.put(Status(self.name, "done", self.agent_step, values))

    def _queue_for_human(self) -> bool:
        # the waiting queries before the answers: one the person answers in between then
        # counts twice (one query fewer now, asked next time), never zero times (one query
        # past the budget)
        waiting = len(self.store.pending_queries())
        answered = self.store.num_answered()
        changed = answered != self.answered
        self.answered = answered
        if changed and self.cfg.query_videos:
            self._videos_of_human_answers()
        if self.answered >= self.cfg.labels:
            return changed
        wanted = self._wanted()
        num = min(self.human_queue - waiting, wanted - self.answered - waiting)
        if num > 0 and len(self.pool) >= 2 and self._add_queries(num, ask=False):
            changed = True
        if changed:
            self._report()
        return changed

    def _add_queries(self, num: int, ask: bool) -> int:
        """Add (and with ``ask``, ask) up to ``num`` queries of pairs never asked before;
        returns how many."""
        pool = list(self.pool)
        pairs, scores = select_pairs(
            pool, num, self.rng, self.cfg.selection, self.model, self.cfg.oversample, asked=self.asked
        )
        for k, (i, j) in enumerate(pairs):
            left, right = pool[i], pool[j]
            self.asked.add((left.clip_id, right.clip_id))
            query_id = self.store.add_query(
                left,
                right,
                agent_step=self.agent_step,
                oracle="human" if self.human else self.oracle.name,  # type: ignore[union-attr]
                selection=self.cfg.selection if scores is not None else "random",
                score=None if scores is None else float(scores[k]),
            )
            if ask:
                self._ask(query_id, left, right)
        return len(pairs)

    def _ask(self, query_id: int, left: Clip, right: Clip) -> None:
        assert self.oracle is not None
        started = time.perf_counter()
        answer = self.oracle.answer(left, right)
        self.store.record_answer(
            query_id, answer, oracle=self.oracle.name, response_time=time.perf_counter() - started
        )
        self.answered += 1
        if self.cfg.query_videos:
            self._query_video(query_id, left, right)

    def _videos_of_human_answers(self) -> None:
        """Query videos of what the person answered since the last call (the window shows
        the pairs; the labeler, idle while a person thinks, writes them)."""
        for label in self.store.labels():
            if label.query_id in self._videoed:
                continue
            clips = self.store.get_clips([label.left_clip_id, label.right_clip_id])
            self._query_video(label.query_id, clips[label.left_clip_id], clips[label.right_clip_id])
            self._videoed.add(label.query_id)

    def _query_video(self, query_id: int, left: Clip, right: Clip) -> None:
        if left.snapshots is None or right.snapshots is None:
            return
        if self._renderer is None:
            self._renderer = SnapshotRenderer(self.cfg.env_id, self.cfg.fixed_length or False)
        render_pair_video(self._renderer, left, right, self.rundir.videos / f"query_{query_id:05d}.mp4")

    def _report(self) -> None:
        counts = self.store.answer_counts()
        total = max(1, sum(counts.values()))
        values: dict[str, Any] = {
            "labels/answered": self.answered,
            "labels/wanted": self._wanted(),
            "labels/equal_share": counts[Answer.EQUAL] / total,
            "labels/skipped_share": (counts[Answer.SKIPPED] + counts[Answer.CANT_TELL]) / total,
            "labels/pool_size": len(self.pool),
        }
        self.status.put(Status(self.name, "metrics", self.agent_step, values))

    def close(self) -> None:
        if self.oracle is not None:
            self.oracle.close()
        if self._renderer is not None:
            self._renderer.close()
        self.store.close()
