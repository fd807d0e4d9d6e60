"""CannotLinks (constraints.py) where the property tests of test_cannot_links.py cannot see a difference: the item
count of a table without shared frames, pairs inside a subset given in any order, and the labels a split hands out."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import pdist

from person_cluster.constraints import CannotLinks
from person_cluster.records import FaceTable


def _photos(n: int) -> FaceTable:
    return FaceTable(ids=np.arange(n), sources=[f"p{k}.jpg" for k in range(n)], frames=[None] * n, times=[None] * n,
                     bboxes=np.zeros((n, 4), np.int64), face=np.zeros((n, 4), np.float32),
                     cloth=np.zeros((n, 0), np.float32), has_cloth=np.zeros(n, bool), shots=np.full(n, -1))


def test_a_table_without_two_faces_in_one_frame_has_no_links_over_all_its_faces():
    links = CannotLinks.same_frame(_photos(4))
    assert len(links) == 0 and links.n == 4
    a, b = links.among(np.arange(4))
    assert a.tolist() == b.tolist() == []


def test_among_finds_the_pairs_of_a_subset_given_in_any_order():
    """The add's pool is the added items, then the old ones near them: not sorted."""
    links = CannotLinks(np.array([0, 2]), np.array([5, 3]), 6)
    a, b = links.among(np.array([5, 3, 0, 2]))
    assert sorted(zip(a.tolist(), b.tolist())) == [(2, 0), (3, 1)]  # positions: item 0 is at 2, item 5 at 0


def test_an_empty_clustering_splits_into_an_empty_one():
    assert CannotLinks.none(0).split(np.zeros(0, np.int64), lambda m: pdist(np.zeros((len(m), 1)))).tolist() == []


@settings(max_examples=80, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(2, 14), count=st.integers(1, 20))
def test_the_parts_of_a_split_take_the_next_free_labels_one_by_one(seed, n, count):
    """Labels 0..k-1 stay 0..k-1 after a split, the new parts numbered k, k+1, ...: no label is skipped."""
    rng = np.random.default_rng(seed)
    links = CannotLinks(rng.integers(0, n, count), rng.integers(0, n, count), n)
    k = int(rng.integers(1, 4))
    labels = rng.integers(0, k, n)
    labels[: k] = np.arange(k)[: n]  # every label 0..k-1 used
    x = rng.normal(size=(n, 2))
    split = links.split(labels, lambda m: pdist(x[m]))
    assert links.violations(split) == 0
    assert sorted(set(split.tolist())) == list(range(int(split.max()) + 1))
