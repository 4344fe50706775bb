"""Report statistics: ranks with ties, Spearman's correlation."""

from __future__ import annotations

import numpy as np
import pytest

from prefrl.utils.stats import average_ranks, spearman


def test_tied_values_share_their_mean_rank():
    assert average_ranks(np.array([3.0, 1.0, 3.0, 2.0, 3.0])).tolist() == [3.0, 0.0, 3.0, 1.0, 3.0]
    assert average_ranks(np.array([0.5, -1.0])).tolist() == [1.0, 0.0]


def test_spearman_is_pearson_on_ranks_ties_included():
    assert spearman(np.array([1.0, 2.0, 3.0]), np.array([10.0, 200.0, 3000.0])) == pytest.approx(1.0)
    assert spearman(np.array([1.0, 2.0, 3.0]), np.array([3.0, 2.0, 1.0])) == pytest.approx(-1.0)
    # scores of -1, 0, +1 with many ties (Pong's clip scores), sums that order them
    scores = np.array([0, 0, 0, 1, -1, 0])
    sums = np.array([0.1, 0.2, -0.1, 2.0, -3.0, 0.0])
    ranks_scores = np.array([2.5, 2.5, 2.5, 5.0, 0.0, 2.5])
    expected = np.corrcoef(ranks_scores, np.array([3.0, 4.0, 1.0, 5.0, 0.0, 2.0]))[0, 1]
    assert spearman(sums, scores) == pytest.approx(expected)
