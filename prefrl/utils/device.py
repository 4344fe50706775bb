"""The torch device a user asked for, checked before anything runs on it."""

from __future__ import annotations

import torch

from prefrl.errors import ConfigError


def torch_device(name: str, *, shown: str | None = None) -> torch.device:
    """The device ``name`` names (``"cpu"``, ``"cuda"``, ``"cuda:N"``), if this machine has it.

    ``shown``: the setting as the user typed it, for the message (default ``device='NAME'``).

    Raises:
        ConfigError: a name torch does not know, or a CUDA device this machine lacks
            (torch built without CUDA, no GPU visible, or an index past the last GPU).
    """
    shown = shown or f"device={name!r}"
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"{shown}: not a device; use cpu, cuda or cuda:N") from None
    if device.type == "cpu":
        return device
    if device.type != "cuda":
        raise ConfigError(f"{shown}: prefrl runs on cpu or cuda, not {device.type}")
    if not torch.cuda.is_available():
        why = (
            "this torch was built without CUDA"
            if torch.version.cuda is None
            else "torch sees no CUDA GPU on this machine"
        )
        raise ConfigError(f"{shown}: {why}; use device=cpu")
    count = torch.cuda.device_count()
    if device.index is not None and device.index >= count:
        raise ConfigError(f"{shown}: this machine has {count} CUDA device(s), cuda:0 to cuda:{count - 1}")
    return device
