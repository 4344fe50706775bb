"""Synthetic oracles: answers computed from the env's true reward.

:class:`PerfectOracle` prefers the clip with the larger return (the float64 sum of
``clip.true_rewards``). The others are the "irrational teachers" of B-Pref (Lee, Smith,
Dragan, Abbeel 2021, "B-Pref: Benchmarking Preference-Based Reinforcement Learning"),
each one departure from the perfect oracle:

=============================  =====================================================
``stochastic(beta=10.0)``      Boltzmann-rational: LEFT with probability
                               ``sigmoid(beta * (R_left - R_right) / scale)``, else
                               RIGHT (equal returns: a fair coin; never EQUAL).
``myopic(gamma=0.9)``          compares ``sum_t gamma**(L-1-t) * r_t`` (t = 0..L-1):
                               the last step weighs 1, the first ``gamma**(L-1)``.
                               Equal discounted sums give EQUAL.
``mistake(eps=0.1)``           the perfect answer with LEFT and RIGHT swapped with
                               probability ``eps``; EQUAL stays EQUAL.
``skip(eps_skip=0.1)``         SKIPPED when both returns are below the skip threshold,
                               else the perfect answer.
``equal(eps_equal=0.1)``       EQUAL when ``|R_left - R_right| < eps_equal * scale``,
                               else the perfect answer.
=============================  =====================================================

Scaling
-------
Clip returns differ by orders of magnitude between envs (CartPole-v1 clips: 0..50,
Pendulum-v1 clips: about -800..0), so the stochastic, skip and equal teachers measure
returns against a range ``[lo, hi]`` kept by their :class:`ReturnScale`:

* adaptive (the default): ``lo`` and ``hi`` are the smallest and largest return among all
  clips the teacher has been asked about, the current pair included (the range is
  widened before the pair is answered). Such a teacher is not stationary: as the range
  widens, the same pair can get a different answer. The first pair alone sets
  ``hi - lo = |R_left - R_right|``, so it is never EQUAL or SKIPPED (for ``eps_* < 1``).
* fixed (``return_range=(lo, hi)``, ``lo < hi``): the range never changes and the
  teacher is stationary; for benchmarks and tests.

With ``scale = max(hi - lo, 1e-8)``:

* stochastic: ``P(LEFT) = sigmoid(beta * (R_left - R_right) / scale)``.
* skip: SKIPPED iff ``R_left < t`` and ``R_right < t``, where
  ``t = lo + eps_skip * (hi - lo)``: both clips lie in the bottom ``eps_skip`` of the
  range (this works for negative rewards too).
* equal: EQUAL iff ``|R_left - R_right| < eps_equal * scale``.
* myopic and mistake use no range (a discount and a probability are scale-free).

Differences from B-Pref's code: B-Pref's ``beta = 1`` multiplies raw returns (its
DMControl rewards lie in [0, 1] per step); here ``beta`` multiplies the return difference
as a fraction of the range, and the default ``beta = 10`` makes a difference of 10% of the
range answered correctly with probability ``sigmoid(1) = 0.73`` (a difference of the whole
range: ``sigmoid(10) = 0.99995``). B-Pref's skip and equal thresholds are ``eps`` times the
agent's recent mean episode return cut to segment length, which breaks down for returns
near zero or negative; here they are fractions of ``[lo, hi]``. B-Pref's defaults for the
other teachers are kept: ``gamma = 0.9``, ``eps = eps_skip = eps_equal = 0.1``.

The random teachers (stochastic, mistake) draw one uniform number per question from
``numpy.random.default_rng(seed)``, whatever the answer, so the same seed and the same
questions give the same answers. A teacher built again (a labeler that starts again after
a crash or ``prefrl resume``) is given the returns of the pairs it answered before
(:meth:`~prefrl.oracles.base.Oracle.recall`): its range and its random numbers go on
where they stopped, so its answers are those of a teacher that never stopped.

:func:`make_oracle` builds an oracle by name, :func:`parse_teacher` reads the command
line form ``NAME``, ``NAME:KEY=VALUE,...`` or ``NAME(KEY=VALUE,...)`` (the oracle's
``name``, so a stored name builds the same teacher again); a ``return_range`` value is
written ``LO..HI``, e.g. ``--teacher equal:eps_equal=0.2,return_range=-800..0``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from prefrl.errors import ConfigError
from prefrl.oracles.base import Oracle
from prefrl.prefs.clips import Answer, Clip

MIN_SCALE = 1e-8
DEFAULT_BETA = 10.0
DEFAULT_GAMMA = 0.9
DEFAULT_EPS = 0.1
DEFAULT_EPS_SKIP = 0.1
DEFAULT_EPS_EQUAL = 0.1

ParamValue = float | tuple[float, float]


def _number(name: str, value: object, lo: float, hi: float, *, lo_open: bool = False) -> float:
    """``value`` as a float in ``[lo, hi]`` (``(lo, hi]`` with ``lo_open``); ValueError otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ConfigError(f"{name} must be a number, got {value!r}")
    v = float(value)
    if not (math.isfinite(v) and (v > lo if lo_open else v >= lo) and v <= hi):
        interval = f"{'(' if lo_open else '['}{lo}, {hi}]"
        raise ConfigError(f"{name} must be in {interval}, got {value!r}")
    return v


def _fmt(v: float) -> str:
    # repr round-trips exactly, so a stored name rebuilds the same teacher
    return repr(float(v))


def _rewards(clip: Clip) -> np.ndarray:
    r = np.asarray(clip.true_rewards)
    if r.ndim != 1:
        raise ValueError(f"clip {clip.clip_id}: true_rewards must have shape (L,), got {r.shape}")
    return r


def _return(clip: Clip) -> float:
    _rewards(clip)
    ret = clip.true_return
    if not math.isfinite(ret):
        raise ValueError(f"clip {clip.clip_id}: true return is {ret}; rewards must be finite")
    return ret


def _compare(r_left: float, r_right: float) -> Answer:
    if r_left > r_right:
        return Answer.LEFT
    if r_left < r_right:
        return Answer.RIGHT
    return Answer.EQUAL


def _sigmoid(x: float) -> float:
    # two branches so that exp never overflows
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)


class ReturnScale:
    """The return range ``[lo, hi]`` a teacher measures returns against (see module docstring).

    Args:
        return_range: ``(lo, hi)`` with finite ``lo < hi`` for a fixed range; None (the
            default) for a range that grows to cover every return passed to :meth:`update`.

    Raises:
        ValueError: ``return_range`` is not two finite numbers with ``lo < hi``.
    """

    def __init__(self, return_range: tuple[float, float] | None = None) -> None:
        self.fixed = return_range is not None
        if return_range is None:
            self._lo, self._hi = math.inf, -math.inf
            return
        try:
            lo, hi = (float(x) for x in return_range)
        except (TypeError, ValueError):
            raise ConfigError(f"return_range must be two numbers (lo, hi), got {return_range!r}") from None
        if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
            raise ConfigError(f"return_range must be finite with lo < hi, got {return_range!r}")
        self._lo, self._hi = lo, hi

    def update(self, *returns: float) -> None:
        """Widen an adaptive range to include ``returns`` (clip returns); a fixed range ignores them."""
        if self.fixed:
            return
        for r in returns:
            if not math.isfinite(r):
                raise ValueError(f"returns must be finite, got {r}")
            self._lo = min(self._lo, float(r))
            self._hi = max(self._hi, float(r))

    @property
    def empty(self) -> bool:
        """True while an adaptive range has seen no return."""
        return self._lo > self._hi

    @property
    def lo(self) -> float:
        """Lower end of the range (a return). RuntimeError while :attr:`empty`."""
        self._check()
        return self._lo

    @property
    def hi(self) -> float:
        """Upper end of the range (a return). RuntimeError while :attr:`empty`."""
        self._check()
        return self._hi

    @property
    def scale(self) -> float:
        """``max(hi - lo, 1e-8)``: the return difference that counts as 1."""
        return max(self.hi - self.lo, MIN_SCALE)

    def threshold(self, frac: float) -> float:
        """The return ``lo + frac * (hi - lo)``: ``frac`` of the way up the range."""
        return self.lo + frac * (self.hi - self.lo)

    def describe(self) -> str:
        """``"LO..HI"`` for a fixed range (as :func:`parse_teacher` reads it), ``""`` for an adaptive one."""
        return f"{_fmt(self._lo)}..{_fmt(self._hi)}" if self.fixed else ""

    def _check(self) -> None:
        if self.empty:
            raise RuntimeError("ReturnScale has seen no returns yet")


def _name(base: str, params: Mapping[str, float], scale: ReturnScale | None = None) -> str:
    parts = [f"{k}={_fmt(v)}" for k, v in params.items()]
    if scale is not None and scale.fixed:
        parts.append(f"return_range={scale.describe()}")
    return f"{base}({','.join(parts)})"


class PerfectOracle(Oracle):
    """Prefers the clip with the larger true return; exactly equal float64 returns give EQUAL."""

    name = "perfect"

    def answer(self, left: Clip, right: Clip) -> Answer:
        """LEFT, RIGHT or EQUAL by comparing ``clip.true_return``. ValueError on non-finite returns."""
        return _compare(_return(left), _return(right))


class StochasticTeacher(Oracle):
    """Boltzmann-rational teacher: LEFT with probability ``sigmoid(beta * (R_left - R_right) / scale)``.

    Otherwise RIGHT; never EQUAL. ``scale`` comes from :attr:`return_scale` (module docstring).

    Args:
        beta: rationality, ``>= 0`` (0: a fair coin; large: the perfect oracle, except for
            ties). The default 10 answers a difference of 10% of the scale correctly 73% of the time.
        seed: seeds the teacher's random numbers.
        return_range: a fixed ``(lo, hi)``, or None for an adaptive range.
    """

    def __init__(
        self, beta: float = DEFAULT_BETA, seed: int = 0, return_range: tuple[float, float] | None = None
    ) -> None:
        self.beta = _number("beta", beta, 0.0, math.inf)
        self.return_scale = ReturnScale(return_range)
        self._rng = np.random.default_rng(seed)
        self.name = _name("stochastic", {"beta": self.beta}, self.return_scale)

    def answer(self, left: Clip, right: Clip) -> Answer:
        r_left, r_right = _return(left), _return(right)
        self.return_scale.update(r_left, r_right)
        p_left = _sigmoid(self.beta * (r_left - r_right) / self.return_scale.scale)
        return Answer.LEFT if self._rng.random() < p_left else Answer.RIGHT

    def recall(self, returns: Sequence[tuple[float, float]]) -> None:
        _recall_range(self.return_scale, returns)
        _recall_draws(self._rng, returns)


class MyopicTeacher(Oracle):
    """Compares discounted returns that weigh recent steps more: ``sum_t gamma**(L-1-t) * r_t``.

    ``t = 0..L-1`` runs over the clip's steps, so its last step has weight 1 and its first
    ``gamma**(L-1)``. The larger discounted sum wins; exactly equal ones give EQUAL.
    Deterministic (no seed).

    Args:
        gamma: discount in ``(0, 1]`` (1: the perfect oracle).
    """

    def __init__(self, gamma: float = DEFAULT_GAMMA) -> None:
        self.gamma = _number("gamma", gamma, 0.0, 1.0, lo_open=True)
        self.name = _name("myopic", {"gamma": self.gamma})

    def discounted_return(self, clip: Clip) -> float:
        """``sum_t gamma**(L-1-t) * true_rewards[t]`` in float64. ValueError if not finite."""
        r = _rewards(clip).astype(np.float64)
        weights = self.gamma ** np.arange(len(r) - 1, -1, -1, dtype=np.float64)
        ret = float(np.dot(weights, r))
        if not math.isfinite(ret):
            raise ValueError(f"clip {clip.clip_id}: discounted return is {ret}; rewards must be finite")
        return ret

    def answer(self, left: Clip, right: Clip) -> Answer:
        return _compare(self.discounted_return(left), self.discounted_return(right))


class MistakeTeacher(Oracle):
    """The perfect answer with LEFT and RIGHT swapped with probability ``eps``; EQUAL stays EQUAL.

    Args:
        eps: probability of a mistake, in ``[0, 1]``.
        seed: seeds the teacher's random numbers (one draw per question).
    """

    def __init__(self, eps: float = DEFAULT_EPS, seed: int = 0) -> None:
        self.eps = _number("eps", eps, 0.0, 1.0)
        self._rng = np.random.default_rng(seed)
        self.name = _name("mistake", {"eps": self.eps})

    def answer(self, left: Clip, right: Clip) -> Answer:
        perfect = _compare(_return(left), _return(right))
        # draw on every question, so that the random stream does not depend on the answers
        flip = self._rng.random() < self.eps
        if flip and perfect is Answer.LEFT:
            return Answer.RIGHT
        if flip and perfect is Answer.RIGHT:
            return Answer.LEFT
        return perfect

    def recall(self, returns: Sequence[tuple[float, float]]) -> None:
        _recall_draws(self._rng, returns)


class SkipTeacher(Oracle):
    """SKIPPED when both returns are below ``lo + eps_skip * (hi - lo)``, else the perfect answer.

    ``lo`` and ``hi`` come from :attr:`return_scale` (module docstring). Deterministic.

    Args:
        eps_skip: fraction of the return range, in ``[0, 1]``, below which clips are skipped.
        return_range: a fixed ``(lo, hi)``, or None for an adaptive range.
    """

    def __init__(
        self, eps_skip: float = DEFAULT_EPS_SKIP, return_range: tuple[float, float] | None = None
    ) -> None:
        self.eps_skip = _number("eps_skip", eps_skip, 0.0, 1.0)
        self.return_scale = ReturnScale(return_range)
        self.name = _name("skip", {"eps_skip": self.eps_skip}, self.return_scale)

    def answer(self, left: Clip, right: Clip) -> Answer:
        r_left, r_right = _return(left), _return(right)
        self.return_scale.update(r_left, r_right)
        threshold = self.return_scale.threshold(self.eps_skip)
        if r_left < threshold and r_right < threshold:
            return Answer.SKIPPED
        return _compare(r_left, r_right)

    def recall(self, returns: Sequence[tuple[float, float]]) -> None:
        _recall_range(self.return_scale, returns)


class EqualTeacher(Oracle):
    """EQUAL when ``|R_left - R_right| < eps_equal * scale``, else the perfect answer.

    ``scale`` comes from :attr:`return_scale` (module docstring). Deterministic.

    Args:
        eps_equal: fraction of the return scale, in ``[0, 1]``, below which returns count as equal.
        return_range: a fixed ``(lo, hi)``, or None for an adaptive range.
    """

    def __init__(
        self, eps_equal: float = DEFAULT_EPS_EQUAL, return_range: tuple[float, float] | None = None
    ) -> None:
        self.eps_equal = _number("eps_equal", eps_equal, 0.0, 1.0)
        self.return_scale = ReturnScale(return_range)
        self.name = _name("equal", {"eps_equal": self.eps_equal}, self.return_scale)

    def answer(self, left: Clip, right: Clip) -> Answer:
        r_left, r_right = _return(left), _return(right)
        self.return_scale.update(r_left, r_right)
        if abs(r_left - r_right) < self.eps_equal * self.return_scale.scale:
            return Answer.EQUAL
        return _compare(r_left, r_right)

    def recall(self, returns: Sequence[tuple[float, float]]) -> None:
        _recall_range(self.return_scale, returns)


def _recall_range(scale: ReturnScale, returns: Sequence[tuple[float, float]]) -> None:
    """Widen ``scale`` over the returns of the pairs answered before (an adaptive range
    covers every clip the teacher was asked about)."""
    for r_left, r_right in returns:
        scale.update(r_left, r_right)


def _recall_draws(rng: np.random.Generator, returns: Sequence[tuple[float, float]]) -> None:
    """Draw the one uniform number per pair answered before, so the stream goes on where
    it stopped."""
    rng.random(len(returns))


@dataclass(frozen=True)
class _Entry:
    factory: Callable[..., Oracle]
    params: tuple[str, ...]
    seeded: bool


_REGISTRY: dict[str, _Entry] = {
    "perfect": _Entry(PerfectOracle, (), seeded=False),
    "stochastic": _Entry(StochasticTeacher, ("beta", "return_range"), seeded=True),
    "myopic": _Entry(MyopicTeacher, ("gamma",), seeded=False),
    "mistake": _Entry(MistakeTeacher, ("eps",), seeded=True),
    "skip": _Entry(SkipTeacher, ("eps_skip", "return_range"), seeded=False),
    "equal": _Entry(EqualTeacher, ("eps_equal", "return_range"), seeded=False),
}

ORACLE_NAMES: tuple[str, ...] = tuple(_REGISTRY)


def _entry(name: str) -> _Entry:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ConfigError(f"unknown oracle {name!r}; known oracles: {', '.join(ORACLE_NAMES)}") from None


def oracle_params(name: str) -> tuple[str, ...]:
    """The parameters :func:`make_oracle` accepts for oracle ``name``, besides ``seed``.

    Raises:
        ConfigError (a ValueError): unknown name.
    """
    return _entry(name).params


def make_oracle(name: str, seed: int = 0, **params: Any) -> Oracle:
    """Build the synthetic oracle called ``name`` (one of :data:`ORACLE_NAMES`).

    Args:
        name: ``"perfect"``, ``"stochastic"``, ``"myopic"``, ``"mistake"``, ``"skip"`` or ``"equal"``.
        seed: seeds the random teachers (stochastic, mistake); the others ignore it.
        **params: the teacher's parameters (``beta``, ``gamma``, ``eps``, ``eps_skip``,
            ``eps_equal``, ``return_range``); missing ones take B-Pref's defaults.

    Raises:
        ConfigError (a ValueError): unknown name (the message lists the known ones), a parameter the
            oracle does not accept (the message lists those it does), or a value out of range.
    """
    entry = _entry(name)
    unknown = sorted(set(params) - set(entry.params))
    if unknown:
        accepted = ", ".join(entry.params) or "none"
        raise ConfigError(f"oracle {name!r} has no parameter {', '.join(unknown)}; it accepts: {accepted}")
    if entry.seeded:
        return entry.factory(seed=seed, **params)
    return entry.factory(**params)


_SYNTAX = "expected NAME, NAME:KEY=VALUE,... or NAME(KEY=VALUE,...), e.g. mistake:eps=0.2"


def parse_teacher(spec: str) -> tuple[str, dict[str, ParamValue]]:
    """Read a teacher spec such as ``"mistake:eps=0.2"`` into ``("mistake", {"eps": 0.2})``.

    Accepted forms: ``NAME``, ``NAME:KEY=VALUE,KEY=VALUE`` (the command line) and
    ``NAME(KEY=VALUE,...)`` (an oracle's ``name``). Values are floats, except
    ``return_range=LO..HI`` which becomes ``(LO, HI)``. Pass the result on as
    ``make_oracle(name, seed=seed, **params)``; value ranges are checked there.

    Raises:
        ConfigError (a ValueError): bad syntax, an unknown oracle, an unknown or repeated parameter, or a
            value that is not a number (``LO..HI`` for ``return_range``).
    """
    s = spec.strip()
    body: str | None = None
    if "(" in s or ")" in s:
        name, sep, rest = s.partition("(")
        if not sep or not rest.endswith(")"):
            raise ConfigError(f"unbalanced parentheses; {_SYNTAX}")
        body = rest[:-1]
    elif ":" in s:
        name, _, body = s.partition(":")
    else:
        name = s
    name = name.strip()
    if not name:
        raise ConfigError(f"no name; {_SYNTAX}")
    entry = _entry(name)
    params: dict[str, ParamValue] = {}
    if body is None:
        return name, params
    if not body.strip():
        raise ConfigError(f"empty parameter list; {_SYNTAX}")
    for item in body.split(","):
        key, eq, value = (part.strip() for part in item.partition("="))
        if not eq or not key or not value:
            raise ConfigError(f"{item.strip()!r} is not KEY=VALUE; {_SYNTAX}")
        if key not in entry.params:
            accepted = ", ".join(entry.params) or "none"
            raise ConfigError(f"oracle {name!r} has no parameter {key!r}; it accepts: {accepted}")
        if key in params:
            raise ConfigError(f"{key!r} given twice")
        params[key] = _parse_value(spec, key, value)
    return name, params


def _parse_value(spec: str, key: str, value: str) -> ParamValue:
    try:
        if key == "return_range":
            lo, sep, hi = value.partition("..")
            if not sep:
                raise ValueError
            return (float(lo), float(hi))
        return float(value)
    except ValueError:
        form = "LO..HI, e.g. -800..0" if key == "return_range" else "a number"
        raise ConfigError(f"{key}={value!r} is not {form}") from None
