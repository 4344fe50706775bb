from __future__ import annotations

import math

import numpy as np
import pytest

from prefrl.oracles import (
    ORACLE_NAMES,
    EqualTeacher,
    MistakeTeacher,
    MyopicTeacher,
    Oracle,
    PerfectOracle,
    ReturnScale,
    SkipTeacher,
    StochasticTeacher,
    make_oracle,
    oracle_params,
    parse_teacher,
)
from prefrl.prefs.clips import Answer, Clip

L, R, EQ, SKIP = Answer.LEFT, Answer.RIGHT, Answer.EQUAL, Answer.SKIPPED


def clip(*rewards: float, dtype: type = np.float64) -> Clip:
    r: np.ndarray = np.array(rewards, dtype=dtype)
    r.flags.writeable = False  # an oracle that writes to a clip fails loudly
    return Clip(np.zeros((len(r), 2), np.float32), np.zeros(len(r), np.int64), r, None, "test")


def ret(value: float) -> Clip:
    """A one-step clip whose return is ``value``."""
    return clip(value)


def within_4_sigma(hits: int, n: int, p: float) -> bool:
    return abs(hits / n - p) < 4 * math.sqrt(p * (1 - p) / n)


def sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


# perfect


def test_perfect_prefers_larger_return() -> None:
    o = PerfectOracle()
    assert o.name == "perfect"
    assert o.answer(clip(1, 2, 3), clip(0, 0, 5)) is L
    assert o.answer(clip(0, 0, 5), clip(1, 2, 3)) is R
    assert o.answer(clip(-1, -2), clip(-1, -1)) is R


def test_perfect_equal_sums_are_equal() -> None:
    o = PerfectOracle()
    assert o.answer(clip(1, 2), clip(2, 1)) is EQ
    assert o.answer(clip(0.5, 0.25, dtype=np.float32), clip(0.75)) is EQ
    # float64 sums: 1e8 + 1 is exact in float64 but not in float32
    assert o.answer(clip(1e8, 1, dtype=np.float32), clip(1e8, dtype=np.float32)) is L


def test_bad_rewards_raise() -> None:
    o = PerfectOracle()
    with pytest.raises(ValueError, match="finite"):
        o.answer(clip(1, math.nan), clip(0))
    bad = Clip(np.zeros((2, 1)), np.zeros(2), np.zeros((2, 1)), None, "test")
    with pytest.raises(ValueError, match=r"shape \(L,\)"):
        o.answer(bad, clip(0, 0))


def test_interface() -> None:
    with pytest.raises(TypeError):
        Oracle()  # type: ignore[abstract]
    with PerfectOracle() as o:
        assert isinstance(o, Oracle)
        assert o.answer(clip(1), clip(0)) is L
    o.close()  # idempotent
    assert repr(MistakeTeacher(0.25)) == "<MistakeTeacher 'mistake(eps=0.25)'>"


# myopic


def test_myopic_weighs_late_steps_more() -> None:
    o = MyopicTeacher(gamma=0.5)
    early, late = clip(4, 0, 0), clip(0, 0, 2)  # returns 4 > 2, but early's reward is two steps back
    assert o.discounted_return(early) == 4 * 0.25 == 1.0
    assert o.discounted_return(late) == 2.0
    assert o.discounted_return(clip(1, 1, 1)) == 0.25 + 0.5 + 1
    assert PerfectOracle().answer(early, late) is L
    assert o.answer(early, late) is R
    assert o.answer(late, early) is L
    assert o.answer(clip(2, 0), clip(0, 1)) is EQ  # 2 * 0.5 == 1
    assert MyopicTeacher(gamma=1.0).answer(early, late) is L
    assert o.name == "myopic(gamma=0.5)"
    assert MyopicTeacher().gamma == 0.9


# mistake


@pytest.mark.parametrize("eps", [0.1, 0.3])
def test_mistake_flip_rate(eps: float) -> None:
    o = MistakeTeacher(eps=eps, seed=1)
    n = 10_000
    better, worse = clip(1, 1), clip(0, 1)
    flips = sum(o.answer(better, worse) is R for _ in range(n))
    assert within_4_sigma(flips, n, eps)
    flips = sum(o.answer(worse, better) is L for _ in range(n))
    assert within_4_sigma(flips, n, eps)


def test_mistake_never_flips_equal() -> None:
    o = MistakeTeacher(eps=1.0)
    assert all(o.answer(clip(1, 2), clip(3)) is EQ for _ in range(1000))
    assert all(o.answer(clip(1), clip(0)) is R for _ in range(100))
    assert all(MistakeTeacher(eps=0.0).answer(clip(1), clip(0)) is L for _ in range(100))


# stochastic


@pytest.mark.parametrize(("r_left", "r_right"), [(3.0, 2.0), (2.0, 3.0), (7.0, 2.0), (5.0, 5.0)])
def test_stochastic_matches_sigmoid(r_left: float, r_right: float) -> None:
    o = StochasticTeacher(beta=10, seed=0, return_range=(0, 10))
    p = sigmoid(10 * (r_left - r_right) / 10)
    n = 10_000
    lefts = sum(o.answer(ret(r_left), ret(r_right)) is L for _ in range(n))
    assert within_4_sigma(lefts, n, p)
    assert o.return_scale.lo == 0 and o.return_scale.hi == 10  # a fixed range stays fixed


def test_stochastic_default_beta_is_mildly_noisy() -> None:
    o = StochasticTeacher(return_range=(0.0, 1.0))
    assert o.beta == 10.0
    n = 10_000
    correct = sum(o.answer(ret(0.6), ret(0.5)) is L for _ in range(n))  # 10% of the scale
    assert within_4_sigma(correct, n, sigmoid(1.0))
    assert abs(sigmoid(1.0) - 0.73) < 0.01


def test_stochastic_large_beta_is_perfect_and_zero_beta_is_a_coin() -> None:
    o = StochasticTeacher(beta=1e6, return_range=(0, 10))
    pairs = [(ret(a), ret(b)) for a, b in [(3.0, 2.99), (2.99, 3.0), (10, 0), (-5, -4)]]
    for left, right in pairs * 100:
        assert o.answer(left, right) is PerfectOracle().answer(left, right)
    coin = StochasticTeacher(beta=0)
    n = 10_000
    assert within_4_sigma(sum(coin.answer(ret(10), ret(0)) is L for _ in range(n)), n, 0.5)


def test_stochastic_adaptive_scale() -> None:
    o = StochasticTeacher(beta=1e6)
    # first pair alone: scale = 1e-3, so x = 1e6 * 1e-3 / 1e-3 = 1e6 and the answer is certain
    assert o.answer(ret(1.001), ret(1.0)) is L
    assert o.return_scale.lo == 1.0 and o.return_scale.hi == 1.001


# skip


def test_skip_exactly_when_both_below_threshold() -> None:
    o = SkipTeacher(eps_skip=0.25, return_range=(0, 8))
    assert o.return_scale.threshold(0.25) == 2.0
    assert o.answer(ret(1.0), ret(1.5)) is SKIP
    assert o.answer(ret(1.999), ret(0)) is SKIP
    assert o.answer(ret(2.0), ret(1.5)) is L  # at the threshold is not below it
    assert o.answer(ret(1.5), ret(2.0)) is R
    assert o.answer(ret(2.0), ret(2.0)) is EQ
    assert o.answer(ret(1.0), ret(1.0)) is SKIP
    assert o.name == "skip(eps_skip=0.25,return_range=0.0..8.0)"


def test_skip_negative_rewards() -> None:
    o = SkipTeacher(eps_skip=0.25, return_range=(-800, 0))  # threshold -600
    assert o.answer(clip(-400, -350), clip(-300, -400)) is SKIP  # -750, -700
    assert o.answer(clip(-400, -350), clip(-300, -250)) is R  # -750, -550
    assert o.answer(ret(-600), ret(-601)) is L


def test_skip_adaptive_range_negative_rewards() -> None:
    o = SkipTeacher(eps_skip=0.25)
    assert o.answer(ret(-790), ret(-780)) is R  # the first pair is never skipped
    s = o.return_scale
    assert (s.lo, s.hi, s.threshold(0.25)) == (-790.0, -780.0, -787.5)
    assert o.answer(ret(-800), ret(0)) is R
    assert (s.lo, s.hi, s.threshold(0.25)) == (-800.0, 0.0, -600.0)
    assert o.answer(ret(-700), ret(-650)) is SKIP
    assert o.answer(ret(-790), ret(-780)) is SKIP  # the first pair again, now in the bottom quarter
    assert o.answer(ret(-700), ret(-500)) is R
    assert (s.lo, s.hi) == (-800.0, 0.0)
    assert o.name == "skip(eps_skip=0.25)"


# equal


def test_equal_exactly_when_difference_below_eps_scale() -> None:
    o = EqualTeacher(eps_equal=0.25, return_range=(0, 8))  # eps * scale = 2
    assert o.answer(ret(5.0), ret(6.5)) is EQ
    assert o.answer(ret(6.5), ret(5.0)) is EQ
    assert o.answer(ret(5.0), ret(6.999)) is EQ
    assert o.answer(ret(5.0), ret(7.0)) is R  # a difference of exactly 2 is not below 2
    assert o.answer(ret(7.5), ret(5.0)) is L
    assert o.answer(ret(-300.0), ret(-301.5)) is EQ  # outside a fixed range: still scale 8


def test_equal_adaptive_scale_after_a_sequence() -> None:
    o = EqualTeacher(eps_equal=0.25)
    s = o.return_scale
    assert s.empty
    assert o.answer(ret(3), ret(4)) is R
    assert (s.lo, s.hi, s.scale) == (3.0, 4.0, 1.0)
    assert o.answer(ret(0), ret(8)) is R
    assert (s.lo, s.hi, s.scale) == (0.0, 8.0, 8.0)
    assert o.answer(ret(5), ret(6.5)) is EQ
    assert o.answer(ret(3), ret(4)) is EQ  # the first pair again, on the wider scale
    assert o.answer(ret(10), ret(6)) is L  # widens to hi = 10 before answering: 4 >= 0.25 * 10
    assert (s.lo, s.hi, s.scale) == (0.0, 10.0, 10.0)
    assert o.answer(ret(1), ret(3.4)) is EQ  # 2.4 < 2.5
    # equal returns on a degenerate range: scale 1e-8
    fresh = EqualTeacher()
    assert fresh.answer(ret(2), ret(2)) is EQ
    assert fresh.return_scale.scale == 1e-8


def test_return_scale() -> None:
    s = ReturnScale()
    with pytest.raises(RuntimeError):
        _ = s.lo
    s.update(5.0)
    assert (s.lo, s.hi, s.scale, s.threshold(0.5)) == (5.0, 5.0, 1e-8, 5.0)
    s.update(-3.0, 1.0)
    assert (s.lo, s.hi, s.scale, s.threshold(0.5)) == (-3.0, 5.0, 8.0, 1.0)
    fixed = ReturnScale((-1, 1))
    fixed.update(100.0)
    assert (fixed.lo, fixed.hi, fixed.describe()) == (-1.0, 1.0, "-1.0..1.0")
    for bad in [(1, 1), (2, 1), (0, math.inf), (0,), "ab"]:
        with pytest.raises(ValueError, match="return_range"):
            ReturnScale(bad)  # type: ignore[arg-type]


# seeds and registry


@pytest.mark.parametrize("name", ["stochastic", "mistake"])
def test_same_seed_same_answers(name: str) -> None:
    rng = np.random.default_rng(0)
    pairs = [(ret(a), ret(b)) for a, b in rng.integers(0, 3, size=(300, 2))]
    a, b, c = make_oracle(name, seed=7), make_oracle(name, seed=7), make_oracle(name, seed=8)
    answers_a = [a.answer(x, y) for x, y in pairs]
    assert answers_a == [b.answer(x, y) for x, y in pairs]
    assert answers_a != [c.answer(x, y) for x, y in pairs]


def test_make_oracle_builds_each_teacher_with_b_pref_defaults() -> None:
    expected = {
        "perfect": (PerfectOracle, "perfect"),
        "stochastic": (StochasticTeacher, "stochastic(beta=10.0)"),
        "myopic": (MyopicTeacher, "myopic(gamma=0.9)"),
        "mistake": (MistakeTeacher, "mistake(eps=0.1)"),
        "skip": (SkipTeacher, "skip(eps_skip=0.1)"),
        "equal": (EqualTeacher, "equal(eps_equal=0.1)"),
    }
    assert set(ORACLE_NAMES) == set(expected)
    for name, (cls, full_name) in expected.items():
        o = make_oracle(name, seed=3)
        assert type(o) is cls and o.name == full_name
    o = make_oracle("equal", eps_equal=0.2, return_range=(-800, 0))
    assert o.name == "equal(eps_equal=0.2,return_range=-800.0..0.0)"
    assert oracle_params("skip") == ("eps_skip", "return_range")


def test_make_oracle_errors() -> None:
    with pytest.raises(ValueError, match="perfect, stochastic, myopic, mistake, skip, equal"):
        make_oracle("rational")
    with pytest.raises(ValueError, match="no parameter beta; it accepts: eps"):
        make_oracle("mistake", beta=1.0)
    with pytest.raises(ValueError, match="accepts: none"):
        make_oracle("perfect", eps=0.1)
    with pytest.raises(ValueError, match=r"eps must be in \[0.0, 1.0\]"):
        make_oracle("mistake", eps=1.5)
    with pytest.raises(ValueError, match="gamma"):
        make_oracle("myopic", gamma=0)
    with pytest.raises(ValueError, match="beta must be a number"):
        make_oracle("stochastic", beta="1")
    with pytest.raises(ValueError, match="beta"):
        make_oracle("stochastic", beta=math.inf)
    with pytest.raises(ValueError, match="return_range"):
        make_oracle("skip", return_range=(0, 0))


def test_parse_teacher() -> None:
    assert parse_teacher("mistake:eps=0.2") == ("mistake", {"eps": 0.2})
    assert parse_teacher(" perfect ") == ("perfect", {})
    assert parse_teacher("stochastic") == ("stochastic", {})
    assert parse_teacher("equal:eps_equal=0.2, return_range=-800..0") == (
        "equal",
        {"eps_equal": 0.2, "return_range": (-800.0, 0.0)},
    )
    assert parse_teacher("skip(eps_skip=0.3)") == ("skip", {"eps_skip": 0.3})
    name, params = parse_teacher("mistake:eps=0.2")
    assert make_oracle(name, seed=1, **params).name == "mistake(eps=0.2)"


@pytest.mark.parametrize(
    "spec",
    [
        "perfect",
        "stochastic:beta=2.5,return_range=-1.5..2.5",
        "myopic:gamma=0.99",
        "mistake:eps=0.125",
        "skip:eps_skip=0.1,return_range=-800..0",
        "equal:eps_equal=0.3",
    ],
)
def test_name_round_trips(spec: str) -> None:
    o = build(spec)
    again = build(o.name)  # a stored name builds the same teacher
    assert again.name == o.name and type(again) is type(o)


def build(spec: str) -> Oracle:
    name, params = parse_teacher(spec)
    return make_oracle(name, seed=0, **params)


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("", "no name"),
        (":eps=0.1", "no name"),
        ("mistake:", "empty parameter list"),
        ("mistake()", "empty parameter list"),
        ("mistake:eps", "not KEY=VALUE"),
        ("mistake:eps=", "not KEY=VALUE"),
        ("mistake:=0.1", "not KEY=VALUE"),
        ("mistake:eps=0.1,", "not KEY=VALUE"),
        ("mistake:eps=abc", "is not a number"),
        ("mistake:eps=0.1,eps=0.2", "given twice"),
        ("mistake:beta=1", "no parameter 'beta'; it accepts: eps"),
        ("perfect:eps=1", "accepts: none"),
        ("rational:eps=1", "known oracles: perfect, stochastic"),
        ("mistake(eps=0.1", "unbalanced"),
        ("mistake eps=0.1)", "unbalanced"),
        ("equal:return_range=5", "is not LO..HI"),
        ("equal:return_range=a..b", "is not LO..HI"),
        ("mistake:seed=3", "no parameter 'seed'"),
    ],
)
def test_parse_teacher_errors(spec: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        parse_teacher(spec)


@pytest.mark.parametrize(
    "spec", ["perfect", "stochastic", "mistake:eps=0.3", "skip:eps_skip=0.3", "equal:eps_equal=0.3", "myopic"]
)
def test_a_teacher_built_again_and_given_what_it_answered_answers_as_if_it_never_stopped(spec):
    rng = np.random.default_rng(0)  # the first pair sets the range: the later ones lie inside
    pairs = [(ret(-100.0), ret(100.0))] + [(ret(a), ret(b)) for a, b in rng.uniform(-20, 20, (59, 2))]
    name, params = parse_teacher(spec)
    uninterrupted = make_oracle(name, seed=5, **params)
    expected = [uninterrupted.answer(left, right) for left, right in pairs]
    first = make_oracle(name, seed=5, **params)
    answers = [first.answer(left, right) for left, right in pairs[:25]]
    again = make_oracle(name, seed=5, **params)
    again.recall([(left.true_return, right.true_return) for left, right in pairs[:25]])
    answers += [again.answer(left, right) for left, right in pairs[25:]]
    assert answers == expected
    fresh = make_oracle(name, seed=5, **params)  # what a labeler started again used to ask
    forgetful = answers[:25] + [fresh.answer(left, right) for left, right in pairs[25:]]
    assert (forgetful == expected) == (name in ("perfect", "myopic"))  # the test can tell
