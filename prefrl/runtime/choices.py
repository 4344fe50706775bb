"""The choices of a preference run's settings, each listed once: the Literal types of
:class:`~prefrl.runtime.config.TrainConfig` and the tuples the command line offers.

Kept apart from ``config.py`` so that building the command line (``prefrl --help``)
imports no torch.
"""

from __future__ import annotations

from typing import Literal, get_args

from prefrl.prefs.selection import SELECTIONS, Selection

OracleKind = Literal["synthetic", "human"]
ORACLES: tuple[str, ...] = get_args(OracleKind)
"""who answers (``--oracle``): a synthetic teacher from the true reward, or a person"""

Backend = Literal["multiprocess", "inprocess", "ray"]
BACKENDS: tuple[str, ...] = get_args(Backend)
"""how the roles run (``--backend``): three processes, in turn in one (deterministic), or
as actors on a Ray cluster (the optional extra ``ray``)"""

Pace = Literal["wait", "free"]
PACES: tuple[str, ...] = get_args(Pace)
"""whether the agent waits for answers that lag behind the schedule (``--pace``; see
:mod:`prefrl.runtime.pacing`)"""

__all__ = ["BACKENDS", "ORACLES", "PACES", "SELECTIONS", "Backend", "OracleKind", "Pace", "Selection"]
