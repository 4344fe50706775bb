"""The in-process backend: the three roles stepped in turn, in this process.

Sequential and deterministic (with a deterministic oracle): each agent rollout is
followed by the labeler's queries and the trainer's round, so a run with a fixed seed
always produces the same labels and weights. For tests and debugging.
"""

from __future__ import annotations

from pathlib import Path

from prefrl.oracles import Oracle
from prefrl.runtime.agent import AgentRole
from prefrl.runtime.channels import ClipBatch, Fanout, LocalClipQueue, LocalStatus, LocalWeights
from prefrl.runtime.config import TrainConfig
from prefrl.runtime.ending import RunEnd, end_of_run
from prefrl.runtime.errors import RunStuck
from prefrl.runtime.labeler import LabelerRole
from prefrl.runtime.monitor import Monitor
from prefrl.runtime.reward_trainer import RewardTrainerRole
from prefrl.runtime.role import Role


def run_inprocess(
    config: TrainConfig, run_dir: Path, monitor: Monitor, oracle: Oracle | None = None
) -> RunEnd:
    """Step agent, labeler and reward trainer in turn until the run is over (see
    :mod:`prefrl.runtime.ending`)."""
    clips = LocalClipQueue()
    agent_weights, labeler_weights = LocalWeights(), LocalWeights()
    status = LocalStatus()
    trainer = RewardTrainerRole(config, run_dir, Fanout(agent_weights, labeler_weights), status)
    labeler = LabelerRole(config, run_dir, clips, labeler_weights, status, oracle=oracle)
    agent = AgentRole(config, run_dir, clips, agent_weights, status)
    roles: list[Role] = [agent, labeler, trainer]
    told_final = False
    try:
        while True:
            progressed = False
            for role in roles:
                if not role.done:
                    progressed |= role.step()
            monitor.consume(status.drain())
            if agent.done and not told_final:
                clips.items.append(ClipBatch([], agent.agent.env_steps, final=True))  # never dropped
                told_final = progressed = True
            end = end_of_run(
                agent_done=agent.done,
                labeler_done=monitor.finished.get("labeler"),
                labels_trained=int(monitor.latest["reward_trainer"].get("reward/labels", 0)),
            )
            if end is not None:
                return end
            if not progressed:
                raise RunStuck(
                    f"the run cannot progress: {labeler.answered} labels answered, the reward model "
                    f"has trained on {trainer.trainer.num_labels} and the agent has {agent.clips_sent} "
                    "clips out. Check --labels and --initial-fraction."
                )
    finally:
        for role in roles:
            role.close()
        monitor.consume(status.drain())
