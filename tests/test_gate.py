"""The quality gate (clustering/gate.py) on hand-made distances: which poor item is placed where, and what the
report counts. The good items' clusters come from a stub, so that each test states them."""

from __future__ import annotations

import numpy as np
import pytest

from person_cluster.clustering import ChineseWhispersClustering
from person_cluster.clustering.distances import DenseDistances
from person_cluster.clustering.gate import GateReport, QualityGate
from person_cluster.config import QualityConfig
from person_cluster.constraints import CannotLinks

FAR = 0.9


class Given:
    """A clusterer that answers each call with the next of ``answers`` (the good items' clusters, then the
    leftover poor items' own); once they run out, one cluster."""

    def __init__(self, *answers: list[int]) -> None:
        self.answers = list(answers)

    def fit_predict(self, distances: DenseDistances) -> np.ndarray:
        return np.asarray(self.answers.pop(0) if self.answers else [0] * distances.n, np.int64)


def _distances(n: int, close: dict[tuple[int, int], float]) -> DenseDistances:
    square = np.full((n, n), FAR)
    np.fill_diagonal(square, 0.0)
    for (a, b), d in close.items():
        square[a, b] = square[b, a] = d
    return DenseDistances.from_square(square)


def test_parameters_are_checked_when_the_gate_is_made():
    for assign, margin in ((0.0, 0.05), (-0.1, 0.05), (0.5, -0.01)):
        with pytest.raises(ValueError, match=r"^assign_distance must be > 0 and margin >= 0$"):
            QualityGate(Given(), assign, margin)
    gate = QualityGate(Given(), 0.5, 0.0)  # no margin is allowed
    assert gate.report == GateReport()
    defaults = QualityGate(Given())  # the config's values
    config = QualityConfig()
    assert (defaults.assign_distance, defaults.margin) == (config.assign_distance, config.assign_margin)


def test_poor_items_join_the_cluster_of_their_nearest_good_item_even_past_a_nearer_poor_one():
    """Good 0, 1 (cluster 1) and 2, 3 (cluster 0); poor 4 near 0, poor 5 nearer 4 than anything good; the same
    around 2 with 6 and 7. Each poor item joins the cluster of its nearest good item; 0 and 2 are cannot-linked
    (good items: nothing to forbid for a poor one)."""
    d = _distances(8, {(0, 1): 0.1, (2, 3): 0.1, (4, 0): 0.2, (4, 1): 0.25, (5, 4): 0.05, (5, 0): 0.22,
                       (5, 1): 0.27, (6, 2): 0.2, (6, 3): 0.25, (7, 6): 0.05, (7, 2): 0.22, (7, 3): 0.27})
    good = np.array([True] * 4 + [False] * 4)
    gate = QualityGate(Given([1, 1, 0, 0]), 0.5, 0.05, CannotLinks(np.array([0]), np.array([2]), 8))
    labels = gate.fit_predict(d, good)
    assert labels.dtype == np.int64
    assert labels.tolist() == [1, 1, 0, 0, 1, 1, 0, 0]
    assert gate.report == GateReport(good=4, assigned=4, own=0)
    ints = QualityGate(Given([1, 1, 0, 0]), 0.5, 0.05).fit_predict(d, good.astype(int).tolist())
    assert ints.tolist() == labels.tolist()  # good as 0/1 numbers means what the booleans mean


def test_a_cluster_whose_only_good_item_is_the_first():
    """Good 0 alone (cluster 1), good 1 and 2 (cluster 0); poor 3 is 0.2 from item 0, 0.45 from the others."""
    d = _distances(4, {(1, 2): 0.1, (3, 0): 0.2, (3, 1): 0.45, (3, 2): 0.46})
    labels = QualityGate(Given([1, 0, 0]), 0.5, 0.05).fit_predict(d, np.array([True, True, True, False]))
    assert labels[3] == labels[0] != labels[1]


def test_the_thresholds_are_strict_and_the_margin_is_not():
    """assign_distance: a poor item exactly that far stays out. The margin: exactly that much further is enough.
    Ties between clusters go to the lower-numbered cluster (here with no margin)."""
    at = _distances(3, {(0, 1): 0.1, (2, 0): 0.5, (2, 1): 0.75})
    assert QualityGate(Given([0, 0]), 0.5, 0.05).fit_predict(at, np.array([True, True, False])).tolist() == [0, 0, 1]
    d = _distances(3, {(2, 0): 0.25, (2, 1): 0.5})
    labels = QualityGate(Given([0, 1]), 0.6, 0.25).fit_predict(d, np.array([True, True, False]))
    assert labels.tolist() == [0, 1, 0]
    tie = _distances(3, {(2, 0): 0.25, (2, 1): 0.25})
    labels = QualityGate(Given([1, 0]), 0.6, 0.0).fit_predict(tie, np.array([True, True, False]))
    assert labels[2] == labels[1]  # cluster 0 (item 1), though item 0 comes first among the neighbours


def test_a_poor_item_with_no_good_neighbour_does_not_stop_the_others():
    """32 poor items close together, far from everything, come first: none has a good item among its 30
    nearest. The last poor item, near the good pair, is still placed."""
    close = {(a, b): 0.1 for a in range(32) for b in range(a + 1, 32)}
    close.update({(32, 33): 0.1, (34, 32): 0.2, (34, 33): 0.2})
    d = _distances(35, close)
    good = np.zeros(35, bool)
    good[[32, 33]] = True
    gate = QualityGate(Given([0, 0]), 0.5, 0.05)
    labels = gate.fit_predict(d, good)
    assert labels[34] == labels[32] != labels[0]
    assert gate.report == GateReport(good=2, assigned=1, own=32)


def test_too_few_good_items_to_gate_cluster_everything():
    """With one good item (or all good) the clusterer sees every item, and the report says all were good."""
    d = _distances(3, {(0, 1): 0.1, (1, 2): 0.1, (0, 2): 0.1})
    for good in ([True, False, False], [True, True, True]):
        gate = QualityGate(ChineseWhispersClustering(0.3), 0.5, 0.05)
        assert gate.fit_predict(d, np.array(good)).tolist() == [0, 0, 0]
        assert gate.report == GateReport(good=3)


def test_a_cluster_is_as_near_as_its_nearest_good_item_not_its_farthest():
    """Good 0, 1 (cluster 0) lie 0.2 and 0.55 from poor 4: cluster 0 is 0.2 away, within assign_distance."""
    d = _distances(5, {(0, 1): 0.1, (2, 3): 0.1, (4, 0): 0.2, (4, 1): 0.55})
    labels = QualityGate(Given([0, 0, 1, 1]), 0.5, 0.05).fit_predict(d, np.array([True] * 4 + [False]))
    assert labels.tolist() == [0, 0, 1, 1, 0]


def test_good_given_as_numbers_keeps_good_items_where_their_clusterer_put_them():
    """Good 0 alone (cluster 1) is 0.4 from good 1 and 2 (cluster 0): read as 0/1 numbers, good stays good, and
    0 is not placed like a poor item in its neighbours' cluster."""
    d = _distances(4, {(0, 1): 0.4, (0, 2): 0.42, (1, 2): 0.1, (3, 0): 0.2, (3, 1): 0.45, (3, 2): 0.46})
    labels = QualityGate(Given([1, 0, 0]), 0.5, 0.05).fit_predict(d, [1, 1, 1, 0])
    assert labels.tolist() == [1, 0, 0, 1]
