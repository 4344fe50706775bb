"""Checkpoint files that load without running code.

A checkpoint is a ``torch.save`` file of plain data only: tensors, and dicts, lists,
tuples, strings, numbers, booleans and None. :func:`load_checkpoint` reads it with
``torch.load(weights_only=True)``, which never runs code from the file, so a checkpoint
someone else sent (a ``reward_model.pt``, a run directory) is safe to open. Every file
names what it holds (``kind``) and the version of the format, so a wrong or newer file is
refused with a one-line message instead of failing later; and the CRC-32 of each part of
the archive is checked before it is read, so a file changed on disk is named, not loaded.

Checkpoints written by older prefrl held numpy arrays, which ``weights_only=True``
refuses; :func:`upgrade_checkpoint` (``prefrl upgrade PATH``) rewrites them, allowing
numpy's array and scalar reconstruction and nothing else.
"""

from __future__ import annotations

import json
import pickle
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from prefrl.errors import PrefrlError
from prefrl.utils.io import ZIP_DAMAGE, atomic_torch_save

FORMAT = "prefrl"
FORMAT_VERSION = 1
"""the newest checkpoint format this prefrl reads and the one it writes"""
KINDS = {
    "reward_model": "a reward model (reward_model.pt)",
    "agent": "an agent checkpoint (agent.pt)",
    "reward_trainer": "a reward trainer checkpoint (reward_trainer.pt)",
}
_HEADER = ("format", "kind", "format_version")
WAY_OUT = {
    "agent": "the agent starts again from step 0, every label kept",
    "reward_model": "the reward model is retrained from the stored labels",
    "reward_trainer": "the reward model trains on from the stored labels, its optimiser afresh",
}
"""what deleting a run's damaged checkpoint of each kind and resuming the run does"""


class CheckpointError(PrefrlError):
    """A checkpoint file that cannot or must not be loaded; the message names the fix."""


class OldCheckpointError(CheckpointError):
    """A checkpoint of an older prefrl's format: ``prefrl upgrade`` converts it."""


def to_plain(value: Any) -> Any:
    """``value`` with numpy arrays as tensors and numpy scalars as Python numbers (recursively)."""
    if isinstance(value, np.ndarray):
        return torch.from_numpy(np.array(value, order="C", copy=True))  # keeps 0-d arrays 0-d
    if isinstance(value, np.generic):  # before float: np.float64 is a float too
        return value.item()
    if isinstance(value, dict):
        return {key: to_plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [to_plain(item) for item in value]
    if isinstance(value, tuple):
        return tuple(to_plain(item) for item in value)
    return value


def save_checkpoint(state: dict[str, Any], path: str | Path, kind: str) -> None:
    """Write ``state`` (plain data, numpy allowed) atomically as a checkpoint of ``kind``."""
    if kind not in KINDS:
        raise ValueError(f"unknown checkpoint kind {kind!r}; known: {', '.join(KINDS)}")
    reserved = sorted(set(state) & set(_HEADER))
    if reserved:
        raise ValueError(f"a checkpoint's state cannot hold the keys {reserved}")
    atomic_torch_save(
        {**to_plain(state), "format": FORMAT, "kind": kind, "format_version": FORMAT_VERSION}, path
    )


def load_checkpoint(path: str | Path, kind: str) -> dict[str, Any]:
    """The state saved by :func:`save_checkpoint` as ``kind`` (numpy arrays come back as
    CPU tensors; ``np.asarray`` them where numpy is needed), without its header.

    Raises:
        CheckpointError: not a torch file, a file whose loading could run code, a file of
            another kind, one written by an older prefrl (the message names ``prefrl
            upgrade``) or by a newer one.
    """
    path = Path(path)
    _check_zip(path, kind)
    try:
        state = torch.load(path, weights_only=True, map_location="cpu")
    except pickle.UnpicklingError:
        if _is_old_format(path):
            raise OldCheckpointError(_old_format_message(path)) from None
        raise CheckpointError(
            f"{path} was refused: it holds more than tensors and plain data, and loading it "
            "could run code. Load only checkpoints written by prefrl."
        ) from None
    except FileNotFoundError:
        raise
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile, ValueError) as err:
        raise _unreadable(path, kind, f": {_first_line(err)}") from None
    return _check_header(state, path, kind)


def _check_zip(path: Path, kind: str) -> None:
    # torch.save writes a zip archive; anything else (a truncated file, text) is not a
    # checkpoint, whatever the pickle inside would say
    if not path.is_file():
        return
    try:
        with path.open("rb"):  # is_zipfile says False for a file it cannot open: say why instead
            pass
    except OSError as err:
        advice = ": give this user read access to it (the file itself may be sound)"
        raise CheckpointError(
            f"{path} cannot be opened ({err.strerror or err})"
            + (advice if isinstance(err, PermissionError) else "")
        ) from None
    if not zipfile.is_zipfile(path):
        raise _unreadable(path, kind)
    # torch.load does not check the archive's CRC-32s: a byte changed on disk inside a
    # tensor would load as a wrong weight, in silence
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except ZIP_DAMAGE as err:
        raise _unreadable(path, kind, f": {_first_line(err)}") from None
    if bad is not None:
        raise _unreadable(path, kind, f": its part {bad} does not match its CRC-32", damaged=True)


def _unreadable(path: Path, kind: str, detail: str = "", *, damaged: bool = False) -> CheckpointError:
    """A damaged checkpoint (``damaged``: changed on disk since it was written); one of a
    run directory's names what can be done: for a preference run, the way out
    (:data:`WAY_OUT`); a fit-reward or baseline run, which cannot be resumed, is made again
    into a new directory."""
    what = "changed on disk since it was written" if damaged else "truncated, or not a torch file"
    message = f"{path} is not a readable checkpoint ({what}){detail}"
    run = path.parent.parent
    if path.parent.name != "checkpoints" or path.name != f"{kind}.pt" or kind not in WAY_OUT:
        return CheckpointError(message)
    config = _run_config(run)
    run_kind = config.get("kind")
    if run_kind == "train":
        message += f"; delete it and resume (prefrl resume {run}): {WAY_OUT[kind]}"
    elif run_kind == "fit-reward":
        source = config.get("source") or run / "prefs.sqlite"
        again = "".join(
            f" --{key} {config[key]}" for key in ("seed", "rounds") if config.get(key) is not None
        )
        message += (
            "; a fit-reward run cannot be resumed: fit it again into a new directory "
            f"(prefrl fit-reward {source}{again} --run-dir NEW_DIR; its labels are also in "
            f"{run / 'prefs.sqlite'})"
        )
    elif run_kind == "baseline":
        message += (
            "; a baseline run cannot be resumed: run prefrl baseline "
            f"{config.get('env_id', 'ENV')} again, with the settings in {run / 'config.json'}, "
            "into a new --run-dir"
        )
    return CheckpointError(message)


def _run_config(run: Path) -> dict[str, Any]:
    """The ``config.json`` of the run directory ``run``; {} where there is none to read."""
    try:
        config = json.loads((run / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return config if isinstance(config, dict) else {}


def _check_header(state: Any, path: Path, kind: str) -> dict[str, Any]:
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        if isinstance(state, dict) and "format" not in state:
            raise OldCheckpointError(_old_format_message(path))
        raise CheckpointError(f"{path} is not a prefrl checkpoint")
    version = state.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path} was written by a newer prefrl (checkpoint format {version}; this prefrl "
            f"reads up to {FORMAT_VERSION}): upgrade prefrl to load it"
        )
    if state.get("kind") != kind:
        found = KINDS.get(str(state.get("kind")), f"a checkpoint of kind {state.get('kind')!r}")
        raise CheckpointError(f"{path} is {found}, not {KINDS.get(kind, kind)}")
    return {key: value for key, value in state.items() if key not in _HEADER}


def _old_format_message(path: Path) -> str:
    target = path.parent.parent if path.parent.name == "checkpoints" else path
    return (
        f"{path} was written by an older prefrl, in a format whose loading could run code. "
        f"If you trust where it came from, convert it with: prefrl upgrade {target}"
    )


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


# ------------------------------------------------------------ old checkpoints
def _numpy_globals() -> list[Any]:
    """What pickles of numpy arrays and scalars (numpy 1.x and 2.x) reference, and nothing else."""
    names = [
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
    ]
    allowed: list[Any] = [np.ndarray, np.dtype]
    for module_name, name in names:
        try:
            module = __import__(module_name, fromlist=[name])
        except ImportError:
            continue
        if hasattr(module, name):
            # the name pickles reference may differ from where the object lives
            allowed.append((getattr(module, name), f"{module_name}.{name}"))
    allowed.extend({type(np.dtype(code)) for code in "?bBhHiIlLqQefdgFDGUSV"})
    return allowed


def _is_old_format(path: Path) -> bool:
    """Whether ``path`` loads with numpy's globals allowed (an old prefrl checkpoint)."""
    try:
        _load_old(path)
    except Exception:
        return False
    return True


def _load_old(path: Path) -> Any:
    with torch.serialization.safe_globals(_numpy_globals()):
        return torch.load(path, weights_only=True, map_location="cpu")


def upgrade_checkpoint(path: str | Path, kind: str) -> bool:
    """Rewrite an old checkpoint (numpy arrays inside, no format header) of ``kind`` in
    the current format. Only numpy arrays, dtypes and scalars are allowed besides plain
    data: any other object is still refused. Returns False if it already is current.

    Raises:
        CheckpointError: not a checkpoint, or one holding objects other than numpy's.
    """
    path = Path(path)
    try:
        load_checkpoint(path, kind)
        return False
    except CheckpointError:
        pass
    _check_zip(path, kind)
    try:
        state = _load_old(path)
    except pickle.UnpicklingError:
        raise CheckpointError(
            f"{path} was refused: it holds objects other than tensors, numpy arrays and plain "
            "data, and loading it could run code"
        ) from None
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile, ValueError) as err:
        raise CheckpointError(f"{path} is not a readable checkpoint: {_first_line(err)}") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path} is not a prefrl checkpoint")
    if "format" in state:
        _check_header(to_plain(state), path, kind)  # a newer or another kind: says which
    save_checkpoint(state, path, kind)
    return True
