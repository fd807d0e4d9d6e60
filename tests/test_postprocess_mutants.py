"""The centroid merge of postprocess.py, case by case where the property tests of test_cannot_links.py cannot see a
difference: clothing only from the faces that have it, clothing rows normalised before their mean, "closest first"
measured against each threshold, the strict threshold, the number of passes, and the switches."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from person_cluster.config import PostprocessConfig
from person_cluster.constraints import CannotLinks
from person_cluster.postprocess import compact, merge_close_clusters, postprocess

E = np.eye(6, dtype=np.float32)


def _toward(a: np.ndarray, b: np.ndarray, chord: float) -> np.ndarray:
    """The unit vector ``chord`` away from unit ``a``, turned toward the orthogonal unit ``b``."""
    angle = 2 * np.arcsin(chord / 2)
    return (np.cos(angle) * a + np.sin(angle) * b).astype(np.float32)


def test_a_face_without_clothing_neither_joins_nor_brings_together_clusters_by_clothing():
    """Faces 2 and 3 have no clothing (their rows are whatever the extractor left there, here identical): by
    clothing, only 0 and 1 are alike, even with a threshold above the distance to an empty centroid (1.0)."""
    face = E[:4]  # faces far apart: only clothing could join them
    cloth = np.array([E[0], E[0], E[3], E[3]])
    has = np.array([True, True, False, False])
    cfg = PostprocessConfig(merge_face_threshold=None, merge_cloth_threshold=1.2, min_csize=1)
    assert postprocess(np.arange(4), face, cloth, has, cfg).tolist() == [0, 0, 1, 2]
    assert merge_close_clusters(np.arange(4), face, cloth, has, None, 1.2).tolist() == [0, 0, 1, 2]


def test_clothing_rows_are_normalised_before_their_mean():
    """Cluster 0's two clothing rows point along axes 0 and 1 (one ten times longer); cluster 1's along their
    bisector: the same direction once each row counts once."""
    cloth = np.array([10 * E[0], E[1], (E[0] + E[1]) / np.sqrt(2)], np.float32)
    merged = merge_close_clusters(np.array([0, 0, 1]), E[[0, 2, 4]], cloth, np.ones(3, bool), None, 0.3)
    assert merged.tolist() == [0, 0, 0]


def _rival_joins(face_chord: float, cloth_chord: float) -> list[int]:
    """Three one-face clusters: 0 is near 1 by face, near 2 by clothing, and 1 and 2 are cannot-linked."""
    face = np.array([E[0], _toward(E[0], E[1], face_chord), E[2]])
    cloth = np.array([E[0], E[2], _toward(E[0], E[1], cloth_chord)])
    cannot = CannotLinks(np.array([1]), np.array([2]), 3)
    return merge_close_clusters(np.arange(3), face, cloth, np.ones(3, bool), 0.5, 0.5, 5, cannot).tolist()


def test_closest_first_is_measured_as_a_fraction_of_each_threshold():
    """Of two joins that cannot both happen, the one nearer in proportion to its own threshold wins."""
    assert _rival_joins(0.4, 0.3) == [0, 1, 0]  # clothing 0.6 of its threshold, face 0.8: clothing wins
    assert _rival_joins(0.3, 0.4) == [0, 0, 1]  # face 0.6, clothing 0.8: face wins


def test_a_pair_exactly_at_the_threshold_is_not_merged():
    x = E[:2]  # centroids exactly sqrt(2) apart
    none = np.zeros((2, 0))
    assert merge_close_clusters(np.array([0, 1]), x, none, np.zeros(2, bool), float(np.sqrt(2)), None).tolist() == [0, 1]


def _chain() -> tuple[np.ndarray, np.ndarray]:
    """Eight clusters (1, 1, 2, 4, ... 64 faces): 0 and 1 are close, and each next one is close only to the mean
    of all before it, so that every pass joins one more."""
    angle = 2 * np.arcsin(0.88 / 2)
    points, sizes = [E[0], _toward(E[0], E[1], 0.8)], [1, 1]
    dims = np.eye(12, dtype=np.float32)
    points = [np.pad(p, (0, 6)) for p in points]
    for k in range(2, 8):
        m = sum(s * p for s, p in zip(sizes, points, strict=True))
        m = m / np.linalg.norm(m)
        points.append(np.cos(angle) * m + np.sin(angle) * dims[k])
        sizes.append(sum(sizes))
    return np.repeat(np.arange(8), sizes), np.repeat(np.array(points, np.float32), sizes, axis=0)


def test_merge_passes_stop_at_max_passes_five_by_default():
    labels, x = _chain()
    none, has = np.zeros((len(x), 0)), np.zeros(len(x), bool)
    for passes in (1, 3, 6, 7):
        assert len(set(merge_close_clusters(labels, x, none, has, 0.9, None, passes).tolist())) == 8 - passes
    assert len(set(merge_close_clusters(labels, x, none, has, 0.9, None).tolist())) == 3


def test_without_thresholds_or_clothing_nothing_merges():
    """No threshold, or only a clothing one and no clothing descriptors (no clothing model): clusters stay."""
    x = np.zeros((3, 4), np.float32)  # every face alike: any merge would join them all
    labels = np.array([2, 0, 0])
    none = np.zeros((3, 0))
    assert merge_close_clusters(labels, x, none, np.zeros(3, bool), None, None).tolist() == [1, 0, 0]
    for cfg in (PostprocessConfig(merge_face_threshold=None, merge_cloth_threshold=None, min_csize=1),
                PostprocessConfig(merge_face_threshold=None, merge_cloth_threshold=0.5, min_csize=1)):
        assert postprocess(labels, x, none, np.zeros(3, bool), cfg).tolist() == [1, 0, 0]


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 12), threshold=st.sampled_from([0.3, 0.8, 1.5]))
def test_a_cannot_linked_pair_never_ends_in_one_cluster_after_postprocess(seed, n, threshold):
    """Whatever the faces, clothing and thresholds: the merge never joins two clusters that share a frame."""
    rng = np.random.default_rng(seed)
    face = rng.normal(size=(n, 4)).astype(np.float32) * rng.choice([0.01, 1.0])
    cloth = rng.normal(size=(n, 3)).astype(np.float32)
    has = rng.random(n) < 0.6
    labels = compact(rng.integers(-1, max(1, n // 2), n))
    i, j = rng.integers(0, n, 2 * n), rng.integers(0, n, 2 * n)
    i, j = i[labels[i] != labels[j]], j[labels[i] != labels[j]]  # constraints the clustering already honoured
    cannot = CannotLinks(i, j, n)
    cfg = PostprocessConfig(merge_face_threshold=threshold, merge_cloth_threshold=threshold, min_csize=1)
    out = postprocess(labels, face, cloth, has, cfg, cannot)
    assert cannot.violations(out) == 0
    assert ((out >= 0) == (labels >= 0)).all()
