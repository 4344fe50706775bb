"""``prefrl upgrade PATH``: rewrite checkpoints of an older prefrl in the current format.

Older prefrl wrote numpy arrays into its checkpoints, which cannot be loaded without
allowing code to run; prefrl now refuses them. Run this only on files you trust (your
own runs): it allows numpy's arrays, dtypes and scalars and still refuses anything else.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefrl.errors import MissingFileError
from prefrl.rundir import RunDir
from prefrl.utils.checkpoint import CheckpointError, OldCheckpointError, load_checkpoint, upgrade_checkpoint

RUN_CHECKPOINTS = {
    "agent_checkpoint": "agent",
    "reward_checkpoint": "reward_model",
    "trainer_checkpoint": "reward_trainer",
}
FILE_KINDS = {"agent.pt": "agent", "reward_model.pt": "reward_model", "reward_trainer.pt": "reward_trainer"}


def run_checkpoints(run_dir: str | Path) -> list[tuple[Path, str]]:
    """``(path, kind)`` of each checkpoint a run directory holds."""
    run = RunDir(run_dir)
    paths = [(getattr(run, attr), kind) for attr, kind in RUN_CHECKPOINTS.items()]
    return [(path, kind) for path, kind in paths if path.exists()]


def check_run_checkpoints(run_dir: str | Path) -> None:
    """Load every checkpoint of a run once, so that an old, newer, wrong or unsafe one is
    refused in one line here rather than in a child process of the run, and every one
    that cannot be loaded is named at once, each with its way out.

    Raises:
        prefrl.utils.checkpoint.CheckpointError: a checkpoint cannot be loaded (its own
            error), or several cannot (one error naming each).
    """
    errors: list[CheckpointError] = []
    try:
        for path, kind in run_checkpoints(run_dir):
            try:
                load_checkpoint(path, kind)
            except CheckpointError as err:
                errors.append(err)
    except Exception as err:  # not a checkpoint problem: the ones found first still come first
        if errors:
            raise _all_of(errors, run_dir) from err
        raise
    if errors:
        raise _all_of(errors, run_dir)


def _all_of(errors: list[CheckpointError], run_dir: str | Path) -> CheckpointError:
    """One error for every checkpoint that cannot be loaded (a lone one as it is; the
    checkpoints of an older prefrl, which one ``prefrl upgrade`` converts, in one line)."""
    if len(errors) == 1:
        return errors[0]
    if all(isinstance(err, OldCheckpointError) for err in errors):
        return OldCheckpointError(
            f"{len(errors)} of {run_dir}'s checkpoints were written by an older prefrl, in a format "
            f"whose loading could run code. If you trust where they came from, convert them with: "
            f"prefrl upgrade {run_dir}"
        )
    return CheckpointError(
        f"{len(errors)} of the run's checkpoints cannot be loaded: "
        + " | ".join(f"({n}) {err}" for n, err in enumerate(errors, 1))
    )


def upgrade(path: str | Path) -> dict[str, Any]:
    """Upgrade a run directory (every run directory below ``path``, e.g. a bench output),
    or one checkpoint file (``agent.pt``, ``reward_model.pt``, ``reward_trainer.pt``).

    Returns the files rewritten, the files already current, and the run directories whose
    ``config.json`` was stamped with the current format version.

    Raises:
        MissingFileError (a FileNotFoundError): nothing at ``path``, or no run directory below it.
        prefrl.utils.checkpoint.CheckpointError: a file that is not an old prefrl
            checkpoint (e.g. one holding other objects than numpy's: still refused).
    """
    path = Path(path)
    upgraded: list[str] = []
    current: list[str] = []
    runs: list[str] = []
    if path.is_file():
        kind = FILE_KINDS.get(path.name)
        if kind is None:
            raise CheckpointError(
                f"{path}: cannot tell which checkpoint this is; prefrl upgrade takes a run directory "
                f"or a file named {', '.join(FILE_KINDS)}"
            )
        (upgraded if upgrade_checkpoint(path, kind) else current).append(str(path))
    elif path.is_dir():
        configs = sorted(path.rglob("config.json"))
        if not configs:
            raise MissingFileError(f"{path} holds no prefrl run directory (no config.json in it or below)")
        for config_path in configs:
            run = RunDir(config_path.parent)
            config = run.read_config()  # refuses a run of a newer prefrl
            for file, kind in run_checkpoints(run.path):
                (upgraded if upgrade_checkpoint(file, kind) else current).append(str(file))
            run.write_config(config)  # stamps the current format version
            runs.append(str(run.path))
    else:
        raise MissingFileError(f"there is no file or directory {path}")
    return {"upgraded": upgraded, "already_current": current, "run_dirs": runs}
