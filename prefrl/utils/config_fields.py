"""The JSON types of the ``config.json`` fields prefrl reads, and what a field of the
wrong type is called (prefrl.rundir.check_config_fields refuses one)."""

from __future__ import annotations

import json
from typing import Any

_NONE = type(None)
CONFIG_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    # every kind of run
    "kind": (str,),
    "env_id": (str,),
    "steps": (int,),
    "seed": (int,),
    "fixed_length": (bool, int, _NONE),
    "ppo": (dict,),
    "prefrl_version": (str,),
    "format_version": (int,),
    # preference runs (prefrl.runtime.config.TrainConfig)
    "task": (str, _NONE),
    "labels": (int,),
    "oracle": (str,),
    "teacher": (str,),
    "selection": (str,),
    "backend": (str,),
    "workers": (int,),
    "ray_address": (str, _NONE),
    "clip_length": (int,),
    "initial_fraction": (float, int),
    "decay_fraction": (float, int),
    "pool_size": (int,),
    "oversample": (int,),
    "explore_labels": (int,),
    "eval_episodes": (int,),
    "num_evals": (int,),
    "checkpoint_every": (int,),
    "query_videos": (bool,),
    "pace": (str, _NONE),
    "reward_model": (dict,),
    "labels_from": (str, _NONE),
    # baselines
    "reward": (str,),
}
"""the JSON types of the ``config.json`` fields prefrl reads (others are not checked)"""

_TYPE_WORDS = {
    str: "a string",
    int: "a whole number",
    float: "a number",
    bool: "true or false",
    dict: "an object",
    _NONE: "null",
}


def wrong_config_field(config: dict[str, Any]) -> str | None:
    """The first field of ``config`` of a type :data:`CONFIG_FIELD_TYPES` refuses, in
    words (``"steps" is "lots" (string), not a whole number``); None when all are right."""
    for name, types in CONFIG_FIELD_TYPES.items():
        if name not in config:
            continue
        value = config[name]
        if isinstance(value, types) and (bool in types or not isinstance(value, bool)):
            continue
        shown = json.dumps(value, default=str)
        shown = shown if len(shown) <= 40 else shown[:37] + "..."
        wanted = " or ".join(_TYPE_WORDS[t] for t in types if not (t is int and float in types))
        return f'"{name}" is {shown} ({json_kind(value)}), not {wanted}'
    return None


def json_kind(value: Any) -> str:
    """What JSON calls ``value``'s type: null, true/false, number, string, array, object."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return "number"
    kinds: dict[type, str] = {str: "string", list: "array", dict: "object"}
    return kinds.get(type(value), type(value).__name__)
