"""One checker for settings dataclasses: every field against its type annotation and bounds.

A settings class declares its fields with plain annotations (``int``, ``float``, ``bool``,
``str``, ``Literal[...]``, ``X | None``, ``tuple[int, ...]``, ``dict[...]``) and, where a
value has limits, bounds in the field's metadata::

    labels: int | None = field(default=None, metadata={"min": 2, "hint": "..."})

:func:`check_settings` checks an instance (converting a list to a tuple, an int to a
float) and raises a :class:`~prefrl.errors.ConfigError` whose one-line message names the
setting as the user typed it: ``--labels -5: must be at least 2``, ``--ppo
learning_rate='abc': a number is needed``, ``--selection foo: choose one of random,
disagreement``. :func:`override` applies ``KEY=VALUE`` overrides (unknown keys list the
known ones). Metadata keys: ``min`` / ``max`` (inclusive), ``above`` / ``below``
(exclusive), ``hint`` (words in parentheses after a bound's message: why, or what to do
instead), ``unset`` (see :func:`unset`).
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from collections.abc import Mapping
from typing import Any, Literal, TypeVar, Union

from prefrl.errors import ConfigError

T = TypeVar("T")


class _Refused(Exception):
    """A value the type or a bound refuses; ``words`` say what is needed."""

    def __init__(self, words: str) -> None:
        super().__init__(words)
        self.words = words


def shown(name: str, value: Any, *, flags: Mapping[str, str] | None = None, prefix: str | None = None) -> str:
    """A setting as the user typed it: ``--labels -5`` (a flag of ``flags``), ``--ppo
    learning_rate='abc'`` (an override after ``prefix``), else ``name=value``."""
    if flags and name in flags:
        text = str(value).lower() if isinstance(value, bool) else str(value)
        return f"{flags[name]} {text}"
    if prefix:
        return f"{prefix} {name}={value!r}"
    return f"{name}={value!r}"


def unset(meaning: str, **metadata: Any) -> Any:
    """A field left ``None`` until its class's ``__post_init__`` resolves it (``meaning``
    says to what, e.g. "the env's default"); annotated with its resolved type::

        steps: int = unset("the task's budget, else the env's", min=1)

    :func:`check_settings` accepts ``None`` for it; ``metadata`` holds its bounds."""
    return dataclasses.field(default=None, metadata={**metadata, "unset": meaning})


def check_settings(obj: Any, *, flags: Mapping[str, str] | None = None, prefix: str | None = None) -> None:
    """Check every field of the dataclass instance ``obj`` against its annotation and the
    bounds in its metadata; store converted values (a list as a tuple, an int as a float).

    ``flags`` maps field names to the flag the user typed (``{"clip_length":
    "--clip-length"}``); ``prefix`` names fields given as ``KEY=VALUE`` after a flag
    (``"--ppo"``). Raises :class:`ConfigError` naming the first bad field.
    """
    hints = typing.get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if value is None and "unset" in f.metadata:
            continue  # resolved later (see unset)
        try:
            checked = _check(hints[f.name], value)
            _check_bounds(checked, f.metadata)
        except _Refused as err:
            raise ConfigError(f"{shown(f.name, value, flags=flags, prefix=prefix)}: {err.words}") from None
        if checked is not value:
            object.__setattr__(obj, f.name, checked)  # frozen dataclasses too


def override(obj: T, changes: Mapping[str, Any], *, prefix: str | None = None, what: str = "setting") -> T:
    """A copy of the dataclass ``obj`` with ``changes`` applied and checked.

    An unknown key is refused with the known ones (and the closest, if one is close):
    ``--ppo nonsense=1: no PPO setting nonsense; known: ...``.
    """
    known = sorted(f.name for f in dataclasses.fields(obj))  # type: ignore[arg-type]
    for key, value in changes.items():
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            guess = f" (did you mean {close[0]}?)" if close else ""
            raise ConfigError(
                f"{shown(key, value, prefix=prefix)}: no {what} {key}{guess}; known: {', '.join(known)}"
            )
    new = dataclasses.replace(obj, **changes)  # type: ignore[type-var]
    check_settings(new, prefix=prefix)
    return new


def _describe(tp: Any) -> str:
    """What a value of type ``tp`` is, in words: ``a number``, ``true or false``."""
    origin = typing.get_origin(tp)
    if tp is bool:
        return "true or false"
    if tp is int:
        return "a whole number"
    if tp is float:
        return "a number"
    if tp is str:
        return "a string"
    if tp is type(None):
        return "None"
    if origin is Literal:
        return "one of " + ", ".join(str(a) for a in typing.get_args(tp))
    if origin is tuple:
        return "a tuple, e.g. (64, 64)"
    if origin is dict or tp is dict:
        return "a table of KEY=VALUE settings"
    if origin in (Union, types.UnionType):
        words = [_describe(a) for a in typing.get_args(tp)]
        return ", ".join(words[:-1]) + " or " + words[-1]
    return getattr(tp, "__name__", str(tp))


def _check(tp: Any, value: Any) -> Any:
    """``value`` as a ``tp`` (converted where that is lossless); _Refused otherwise."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        members = typing.get_args(tp)
        for member in sorted(members, key=lambda m: m is float):  # exact types before int -> float
            try:
                return _check(member, value)
            except _Refused:
                continue
        raise _Refused(f"{_describe(tp)} is needed")
    if tp is type(None):
        if value is None:
            return None
        raise _Refused("None is needed")
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise _Refused("true or false is needed")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise _Refused("a whole number is needed")
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _Refused("a number is needed")
        if not math.isfinite(value):
            raise _Refused("a finite number is needed")
        return float(value) if isinstance(value, int) else value
    if tp is str:
        if isinstance(value, str):
            return value
        raise _Refused("a string is needed")
    if origin is Literal:
        choices = typing.get_args(tp)
        if value in choices and not isinstance(value, bool):
            return value
        raise _Refused(f"choose one of {', '.join(str(c) for c in choices)}")
    if origin is tuple:
        args = typing.get_args(tp)
        if not isinstance(value, tuple | list):
            raise _Refused(f"a tuple is needed, e.g. ({'64, 64' if args[:1] == (int,) else '...'})")
        if len(args) == 2 and args[1] is Ellipsis:
            items = [_check(args[0], v) for v in value]
        elif len(args) == len(value):
            items = [_check(a, v) for a, v in zip(args, value, strict=True)]
        else:
            raise _Refused(f"{len(args)} values are needed")
        return tuple(items)
    if origin is dict or tp is dict:
        if isinstance(value, dict):
            return value
        raise _Refused("a table of KEY=VALUE settings is needed")
    raise TypeError(f"check_settings cannot check the type {tp!r}")  # a settings class's bug


def _fmt(v: Any) -> str:
    return str(int(v)) if isinstance(v, int) or (float(v).is_integer() and abs(v) < 1e15) else repr(v)


def _check_bounds(value: Any, meta: Mapping[str, Any]) -> None:
    if value is None or not any(k in meta for k in ("min", "max", "above", "below")):
        return
    values = value if isinstance(value, tuple) else (value,)
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int | float):
            continue  # a bool (e.g. fixed_length=True) has no bounds
        lo, hi = meta.get("min"), meta.get("max")
        above, below = meta.get("above"), meta.get("below")
        low_ok = (lo is None or v >= lo) and (above is None or v > above)
        high_ok = (hi is None or v <= hi) and (below is None or v < below)
        if low_ok and high_ok:
            continue
        if (lo is not None or above is not None) and (hi is not None or below is not None):
            left = f"[{_fmt(lo)}" if lo is not None else f"({_fmt(above)}"
            right = f"{_fmt(hi)}]" if hi is not None else f"{_fmt(below)})"
            words = f"must be in {left}, {right}"
        elif not low_ok:
            words = f"must be at least {_fmt(lo)}" if lo is not None else f"must be above {_fmt(above)}"
        else:
            words = f"must be at most {_fmt(hi)}" if hi is not None else f"must be below {_fmt(below)}"
        if isinstance(value, tuple):
            words = f"each value {words}"
        hint = meta.get("hint")
        raise _Refused(f"{words} ({hint})" if hint else words)
