"""JSON as prefrl writes it (config.json, summary.json, status.json, the command line's
output): indented, strict, numpy and paths made plain."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any


def json_text(data: Any) -> str:
    """``data`` as indented, strict JSON: arrays as lists, paths as strings, and a number
    that is not finite (NaN: nothing measured) as null, which every JSON reader takes."""
    return json.dumps(_finite(data), indent=2, allow_nan=False, default=_json_default)


def _finite(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    if hasattr(value, "tolist"):  # numpy arrays and scalars
        return _finite(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} to JSON")
