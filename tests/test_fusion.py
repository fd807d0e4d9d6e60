"""Fusion: every way it measures (all pairs, chosen pairs, a cross block, vectors) follows one rule.

``condensed`` is the reference (tests/test_clustering.py checks it against the rule by hand); ``pairs`` serves the
k-nearest-neighbour graph and ``cross`` an ``add``, so a difference between them would cluster a large collection
or an added clip differently from a small one.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import squareform

from person_cluster.fusion import Fusion, fuse, l2_normalize


def _fusion(seed: int, n: int, window: float | None, weights: tuple[float, float], dims: int = 6) -> Fusion:
    """Random faces and clothing; some without clothing; groups -1 (photos), 0 and 1; integer time spans, so that
    a gap can equal the window exactly."""
    rng = np.random.default_rng(seed)
    start = rng.integers(0, 20, n).astype(np.float64)
    end = start + rng.integers(0, 4, n)
    return Fusion(rng.normal(size=(n, 8)), rng.normal(size=(n, dims)), rng.random(n) < 0.7, *weights, window,
                  rng.integers(-1, 2, n), start, end)


@settings(max_examples=80)
@given(st.integers(0, 10_000), st.integers(2, 14), st.sampled_from([None, 0.0, 2.0, 3.0]),
       st.sampled_from([(1.0, 0.5), (2.0, 0.25), (1.0, 0.0)]), st.sampled_from([6, 0]))
def test_pairs_cross_and_condensed_agree(seed, n, window, weights, dims):
    f = _fusion(seed, n, window, weights, dims)
    square = squareform(f.condensed())
    i, j = np.triu_indices(n, 1)
    assert f.pairs(i, j) == pytest.approx(square[i, j], rel=1e-6, abs=1e-9)
    rows, cols = np.arange(n)[: n // 2 + 1], np.arange(n)[n // 2:]
    block = f.cross(rows, cols)
    off = rows[:, None] != cols[None]
    assert block[off] == pytest.approx(square[np.ix_(rows, cols)][off], rel=1e-6, abs=1e-9)


def test_a_gap_equal_to_the_window_is_within_it_and_group_zero_is_a_scene_not_a_photo():
    """Two items of scene 0 whose spans are exactly the window apart compare clothing; 0.5 s more and they do
    not; a photo (-1) compares with every photo, whatever its time."""
    face = l2_normalize(np.array([[1.0, 0, 0], [0.8, 0.6, 0], [0.6, 0.8, 0], [0, 1.0, 0]]))
    cloth = np.array([[1.0, 0], [0, 1.0], [1.0, 0], [0, 1.0]])
    start, end = np.array([0.0, 3.0, 0.0, 100.0]), np.array([1.0, 3.5, 0.0, 100.0])
    group = np.array([0, 0, -1, -1])
    f = Fusion(face, cloth, np.ones(4, bool), 1.0, 0.5, 2.0, group, start, end)
    d_face = np.linalg.norm(face[0] - face[1])
    with_cloth = np.hypot(d_face, 0.5 * np.sqrt(2))
    for d in (squareform(f.condensed())[0, 1], f.pairs(np.array([0]), np.array([1]))[0],
              f.cross(np.array([0]), np.array([1]))[0, 0]):
        assert d == pytest.approx(with_cloth)  # gap 3 - 1 = 2.0 = the window
    late = Fusion(face, cloth, np.ones(4, bool), 1.0, 0.5, 2.0, group, start + np.array([0, 0.5, 0, 0]), end)
    face_only = np.hypot(1, 0.5) * d_face
    assert late.pairs(np.array([0]), np.array([1]))[0] == pytest.approx(face_only)
    assert late.cross(np.array([0]), np.array([1]))[0, 0] == pytest.approx(face_only)
    photos = np.hypot(np.linalg.norm(face[2] - face[3]), 0.5 * np.sqrt(2))
    assert f.pairs(np.array([2]), np.array([3]))[0] == pytest.approx(photos)  # 100 s apart, both photos
    assert f.cross(np.array([2]), np.array([3]))[0, 0] == pytest.approx(photos)


def test_pairs_in_more_than_one_chunk():
    """pairs() works in chunks of 65,536: a call past one chunk gives every pair, each its own distance."""
    rng = np.random.default_rng(5)
    n = 400
    f = Fusion(rng.normal(size=(n, 4)), np.zeros((n, 0)), np.zeros(n, bool), 1.0, 0.5)
    i, j = np.triu_indices(n, 1)  # 79,800 pairs
    assert len(i) > 65536
    assert f.pairs(i, j) == pytest.approx(squareform(f.condensed())[i, j], rel=1e-6)
    g = Fusion(rng.normal(size=(n, 4)), rng.normal(size=(n, 3)), rng.random(n) < 0.5, 1.0, 0.5)
    assert g.pairs(i, j) == pytest.approx(squareform(g.condensed())[i, j], rel=1e-6)


def test_weights_other_than_the_defaults_reach_vectors_and_fuse():
    rng = np.random.default_rng(6)
    face, cloth = rng.normal(size=(5, 8)), rng.normal(size=(5, 3))
    has = np.ones(5, bool)
    v = fuse(face, cloth, has, 2.0, 0.25)
    assert v[:, :8] == pytest.approx(2.0 * l2_normalize(face))
    assert v[:, 8:] == pytest.approx(0.25 * l2_normalize(cloth))
    f = Fusion(face, cloth, has, 2.0, 0.25)
    i, j = np.triu_indices(5, 1)
    assert np.linalg.norm(v[i] - v[j], axis=1) == pytest.approx(f.pairs(i, j), rel=1e-5)


def test_has_cloth_given_as_numbers_and_a_zero_row():
    """has_cloth as 0/1 numbers means what the booleans mean; a descriptor of zeros normalises to zeros."""
    rng = np.random.default_rng(7)
    face, cloth = rng.normal(size=(4, 8)), rng.normal(size=(4, 3))
    as_bool = Fusion(face, cloth, np.array([True, False, True, True]), 1.0, 0.5).condensed()
    assert Fusion(face, cloth, [1, 0, 1, 1], 1.0, 0.5).condensed() == pytest.approx(as_bool)
    x = np.array([[3.0, 4.0], [0.0, 0.0]], np.float32)
    assert l2_normalize(x).tolist() == [[pytest.approx(0.6), pytest.approx(0.8)], [0.0, 0.0]]


def test_zero_rows_normalise_to_zeros():
    """A descriptor of zeros (a face never described) stays zeros, not NaN."""
    x = np.zeros((4, 8), np.float32)
    x[0] = 1.0
    out = l2_normalize(x)
    assert out.dtype == np.float32
    assert (out[1:] == 0).all() and np.allclose(out[0], 2 ** -1.5)
