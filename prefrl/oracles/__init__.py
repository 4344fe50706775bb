"""Oracles: whatever answers "which of these two clips is better?" (a person or a synthetic teacher)."""

from prefrl.oracles.base import Oracle, OracleClosed
from prefrl.oracles.synthetic import (
    ORACLE_NAMES,
    EqualTeacher,
    MistakeTeacher,
    MyopicTeacher,
    PerfectOracle,
    ReturnScale,
    SkipTeacher,
    StochasticTeacher,
    make_oracle,
    oracle_params,
    parse_teacher,
)

__all__ = [
    "ORACLE_NAMES",
    "EqualTeacher",
    "MistakeTeacher",
    "MyopicTeacher",
    "Oracle",
    "OracleClosed",
    "PerfectOracle",
    "ReturnScale",
    "SkipTeacher",
    "StochasticTeacher",
    "make_oracle",
    "oracle_params",
    "parse_teacher",
]
