import math

import pytest

from prefrl.prefs.schedule import LabelSchedule


def test_schedule_starts_with_the_initial_share_and_ends_at_the_budget():
    s = LabelSchedule(total_labels=100, total_steps=200_000, initial_fraction=0.25, decay_fraction=0.1)
    assert s.initial_labels == 25
    assert s.labels_wanted(0) == 25
    c = 20_000
    assert s.labels_wanted(c) == 25 + math.floor(75 * math.log(2) / math.log(11))  # 46
    assert s.labels_wanted(200_000) == 100 and s.labels_wanted(10**9) == 100
    wanted = [s.labels_wanted(t) for t in range(0, 200_001, 1000)]
    assert wanted == sorted(wanted)
    # the rate c/(T+c) falls: the first tenth of the run gets more labels than the last half
    assert s.labels_wanted(20_000) - 25 > 100 - s.labels_wanted(100_000)


def test_schedule_edge_cases():
    assert LabelSchedule(0, 100).labels_wanted(50) == 0
    assert LabelSchedule(3, 100, initial_fraction=0.0).initial_labels == 1
    with pytest.raises(ValueError):
        LabelSchedule(10, 100, initial_fraction=1.5)
