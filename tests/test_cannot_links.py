"""Cannot-links: no cluster ever holds two faces of one frame (or two people the user kept apart), whatever the
distances, the algorithm or the merge thresholds. Properties, with Hypothesis, over random inputs."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.sparse.csgraph import connected_components
from scipy.spatial.distance import cdist, pdist

from person_cluster import api
from person_cluster.config import Config, PostprocessConfig
from person_cluster.constraints import FAR, CannotLinks
from person_cluster.postprocess import compact, drop_small_clusters, merge_close_clusters, postprocess
from person_cluster.records import FaceTable

seeds = st.integers(0, 2**32 - 1)


def _pairs(rng: np.random.Generator, n: int, count: int) -> tuple[np.ndarray, np.ndarray]:
    return rng.integers(0, n, count), rng.integers(0, n, count)


def _together(labels: np.ndarray, i: np.ndarray, j: np.ndarray) -> int:
    """Pairs (i[k], j[k]) of distinct items in one cluster (-1 is no cluster): the reference count."""
    return sum(1 for a, b in zip(i.tolist(), j.tolist()) if a != b and labels[a] == labels[b] >= 0)


def _near_points(rng: np.random.Generator, n: int, centres: int, spread: float, dim: int = 8) -> np.ndarray:
    """Points around a few centres: close enough that every clustering is tempted to join the pairs it must not."""
    c = rng.normal(size=(centres, dim))
    c /= np.linalg.norm(c, axis=1, keepdims=True)
    return c[rng.integers(0, centres, n)] + rng.normal(scale=spread, size=(n, dim))


# -- CannotLinks ----------------------------------------------------------------------------------------------
@given(seeds, st.integers(1, 12), st.integers(0, 30))
def test_the_pairs_are_kept_once_each_smaller_first_and_never_an_item_with_itself(seed, n, count):
    rng = np.random.default_rng(seed)
    i, j = _pairs(rng, n, count)
    links = CannotLinks(i, j, n)
    wanted = sorted({(min(a, b), max(a, b)) for a, b in zip(i.tolist(), j.tolist()) if a != b})
    assert list(zip(links.i.tolist(), links.j.tolist())) == wanted and len(links) == len(wanted) and links.n == n
    labels = rng.integers(-1, 3, n)
    assert links.violations(labels) == _together(labels, *np.array(wanted, np.int64).reshape(-1, 2).T)
    forbidden = {(min(labels[a], labels[b]), max(labels[a], labels[b])) for a, b in wanted
                 if labels[a] >= 0 and labels[b] >= 0 and labels[a] != labels[b]}
    assert links.forbidden_between(labels) == forbidden


@given(seeds, st.integers(2, 12), st.integers(0, 30))
def test_among_gives_the_pairs_inside_a_subset_as_positions_in_it(seed, n, count):
    rng = np.random.default_rng(seed)
    links = CannotLinks(*_pairs(rng, n, count), n)
    members = np.sort(rng.choice(n, rng.integers(1, n + 1), replace=False))
    a, b = links.among(members)
    inside = {(int(x), int(y)) for x, y in zip(links.i, links.j) if x in members and y in members}
    assert {(int(members[x]), int(members[y])) for x, y in zip(a, b)} == inside and len(a) == len(inside)
    assert (a < b).all()


def test_same_frame_links_every_two_faces_of_a_frame_or_a_photo_and_nothing_else():
    sources = ["v.mp4", "v.mp4", "v.mp4", "v.mp4", "p.jpg", "p.jpg", "q.jpg", "w.mp4"]
    frames = [3, 3, 3, 4, None, None, None, 3]
    links = CannotLinks.same_frame(_table(sources, frames, np.zeros((8, 4))))
    assert list(zip(links.i.tolist(), links.j.tolist())) == [(0, 1), (0, 2), (1, 2), (4, 5)] and links.n == 8
    assert len(CannotLinks.same_frame(_table(["a.jpg", "b.jpg"], [None, None], np.zeros((2, 4))))) == 0
    none = CannotLinks.none(5)
    assert len(none) == 0 and none.n == 5 and none.violations(np.zeros(5, np.int64)) == 0


def test_constraints_between_faces_become_constraints_between_their_tracks():
    links = CannotLinks(np.array([0, 2, 1]), np.array([3, 4, 2]), 5)
    tracks = np.array([0, 0, 1, 2, 1])  # faces 2 and 4 are one track: no constraint of a track with itself
    between = links.map(tracks)
    assert list(zip(between.i.tolist(), between.j.tolist())) == [(0, 1), (0, 2)] and between.n == 3
    assert CannotLinks.none(0).map(np.zeros(0, np.int64)).n == 0


@settings(max_examples=150)
@given(seeds, st.integers(2, 14), st.integers(1, 25))
def test_split_leaves_no_forbidden_pair_together_whatever_the_distances(seed, n, count):
    """Chained distances (a~c, c~b, a-b forbidden) included: each cluster is divided only as far as it must be,
    into parts of itself that take labels no other cluster has."""
    rng = np.random.default_rng(seed)
    i, j = _pairs(rng, n, count)
    links = CannotLinks(i, j, n)
    labels = rng.integers(-1, 3, n)
    x = rng.normal(size=(n, 3)) * rng.choice([0.01, 1.0, 100.0])
    calls = []

    def among(members):
        calls.append(members)
        return pdist(x[members])

    split = links.split(labels, among)
    assert links.violations(split) == 0
    assert ((split >= 0) == (labels >= 0)).all()  # no face left out, none brought in
    for new in np.unique(split[split >= 0]):  # a refinement: each part lies inside one of the old clusters
        assert len(np.unique(labels[split == new])) == 1
    for old in np.unique(labels[labels >= 0]):
        parts = np.unique(split[labels == old])
        held = links.violations(np.where(labels == old, 0, -1))
        if held == 0:
            assert parts.tolist() == [old]  # a cluster without a forbidden pair is left as it was
        else:
            assert old in parts and 2 <= len(parts) <= held + 1
    bad = {int(labels[a]) for a, b in zip(links.i, links.j) if labels[a] == labels[b] >= 0}
    assert sorted(int(labels[m[0]]) for m in calls) == sorted(bad)  # only the clusters that hold a pair


def test_split_divides_a_chain_into_two_parts_at_the_forbidden_pair():
    x = np.array([[0.0], [1.0], [2.0], [3.0], [10.0]])  # 0-1-2-3 a chain, 4 alone in its own cluster
    links = CannotLinks(np.array([0]), np.array([3]), 5)
    split = links.split(np.array([7, 7, 7, 7, 2]), lambda m: pdist(x[m]))
    assert split.tolist() == [7, 7, 8, 8, 2]  # complete linkage: 0 with 1, 2 with 3; the new label is above all
    assert links.split(np.array([0, 1, 1, 2, -1]), lambda m: pdist(x[m])).tolist() == [0, 1, 1, 2, -1]


def test_a_forbidden_pair_is_far_enough_for_average_linkage_over_a_hundred_million_pairs():
    assert FAR >= 1e8 * 2.3


# -- the centroid merge ---------------------------------------------------------------------------------------
def _reference_merge_pass(centroids: np.ndarray, threshold: float, forbidden: set[tuple[int, int]]) -> list[set]:
    """One pass as the module docstring specifies it, written plainly: the close pairs joined closest first (ties
    by index), skipping a join that would put a forbidden pair of clusters into one group."""
    d = cdist(centroids, centroids)
    k = len(centroids)
    pairs = sorted((d[a, b], a, b) for a in range(k) for b in range(k) if d[a, b] < threshold)
    groups = [{c} for c in range(k)]
    for _, a, b in pairs:
        ga, gb = next(g for g in groups if a in g), next(g for g in groups if b in g)
        if ga is gb or any((min(x, y), max(x, y)) in forbidden for x in ga for y in gb):
            continue
        groups.remove(gb)
        ga |= gb
    return groups


def _centroids(x: np.ndarray, labels: np.ndarray) -> np.ndarray:
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    c = np.array([x[labels == k].sum(axis=0) for k in range(labels.max() + 1)])
    return c / np.linalg.norm(c, axis=1, keepdims=True)


def _merge_input(seed: int, n: int, pairs: int):
    rng = np.random.default_rng(seed)
    face = _near_points(rng, n, 3, 0.3, dim=6).astype(np.float32)
    labels = compact(rng.integers(-1, max(2, n // 2), n))
    i, j = _pairs(rng, n, pairs)
    keep = (labels[i] != labels[j]) & (labels[i] >= 0) & (labels[j] >= 0)  # clusters come split: none together
    return rng, face, labels, CannotLinks(i[keep], j[keep], n)


@settings(max_examples=120)
@given(seeds, st.integers(2, 16), st.integers(0, 12), st.sampled_from([0.2, 0.5, 0.9, 1.5]))
def test_the_merge_never_joins_cannot_linked_clusters_and_stops_only_when_no_allowed_join_is_left(
        seed, n, pairs, threshold):
    _, face, labels, cannot = _merge_input(seed, n, pairs)
    merged = merge_close_clusters(labels, face, np.zeros((n, 0)), np.zeros(n, bool), threshold, None, 50, cannot)
    assert cannot.violations(merged) == 0
    assert ((merged >= 0) == (labels >= 0)).all()
    for old in np.unique(labels[labels >= 0]):  # merging only joins clusters, never splits one
        assert len(np.unique(merged[labels == old])) == 1
    if (merged >= 0).any():
        c = _centroids(face[merged >= 0], merged[merged >= 0])
        forbidden = cannot.forbidden_between(merged)
        d = cdist(c, c)
        for a, b in zip(*np.nonzero(d < threshold)):
            assert a == b or (min(a, b), max(a, b)) in forbidden  # a close pair left apart must be forbidden


@settings(max_examples=120)
@given(seeds, st.integers(2, 16), st.integers(0, 12), st.sampled_from([0.3, 0.6, 1.0]))
def test_one_merge_pass_joins_closest_first_and_skips_only_the_forbidden_joins(seed, n, pairs, threshold):
    _, face, labels, cannot = _merge_input(seed, n, pairs)
    if labels.max() < 1:
        return
    merged = merge_close_clusters(labels, face, np.zeros((n, 0)), np.zeros(n, bool), threshold, None, 1, cannot)
    groups = _reference_merge_pass(_centroids(face[labels >= 0], labels[labels >= 0]), threshold,
                                   cannot.forbidden_between(labels))
    got = {frozenset(np.unique(labels[(merged == m) & (labels >= 0)]).tolist()) for m in np.unique(merged[merged >= 0])}
    assert got == {frozenset(g) for g in groups}


@settings(max_examples=60)
@given(seeds, st.integers(2, 16), st.sampled_from([0.3, 0.6, 1.0]))
def test_without_constraints_a_pass_joins_the_connected_components_of_close_centroids(seed, n, threshold):
    _, face, labels, _ = _merge_input(seed, n, 0)
    if labels.max() < 1:
        return
    for cannot in (None, CannotLinks.none(n)):
        merged = merge_close_clusters(labels, face, np.zeros((n, 0)), np.zeros(n, bool), threshold, None, 1, cannot)
        c = _centroids(face[labels >= 0], labels[labels >= 0])
        _, comp = connected_components(cdist(c, c) < threshold, directed=False)
        for a in range(len(c)):
            for b in range(len(c)):
                assert (comp[a] == comp[b]) == (merged[labels == a][0] == merged[labels == b][0])


def test_clothing_centroids_merge_only_clusters_that_both_have_clothing():
    e = np.eye(4, dtype=np.float32)
    face = np.array([e[0], e[1], e[2], e[3]])  # faces far apart: only clothing could join them
    cloth = np.array([e[0], e[0], e[0], e[1]])
    has = np.array([True, True, False, True])
    labels = np.array([0, 1, 2, 3])
    merged = merge_close_clusters(labels, face, cloth, has, 0.5, 0.5)
    assert merged[0] == merged[1] and len(set(merged.tolist())) == 3  # 2 has no clothing: never joined by it
    assert len(set(merge_close_clusters(labels, face, cloth, has, 0.5, None).tolist())) == 4
    assert len(set(merge_close_clusters(labels, face, cloth, has, None, 0.5, 5,
                                        CannotLinks(np.array([0]), np.array([1]), 4)).tolist())) == 4
    # A second pass joins what the first made close: centroids move after each pass.
    x = np.array([[1, 0.3, 0], [1, -0.3, 0], [1, 0, 0.62]], np.float32)  # 0~1 0.575; 2 0.61 from each, 0.548
    merged = merge_close_clusters(np.array([0, 1, 2]), x, np.zeros((3, 0)), np.zeros(3, bool), 0.58, None, 1)
    assert merged.tolist() == [0, 0, 1]  # from their mean
    merged = merge_close_clusters(np.array([0, 1, 2]), x, np.zeros((3, 0)), np.zeros(3, bool), 0.58, None, 2)
    assert merged.tolist() == [0, 0, 0]


def test_the_merge_threshold_is_strict_and_empty_input_is_left_alone():
    x = np.array([[1.0, 0.0], [0.0, 1.0]], np.float32)  # centroids sqrt(2) apart
    none = np.zeros((2, 0))
    assert merge_close_clusters(np.array([0, 1]), x, none, np.zeros(2, bool), 2**0.5 - 1e-6, None).tolist() == [0, 1]
    assert merge_close_clusters(np.array([0, 1]), x, none, np.zeros(2, bool), 2**0.5 + 1e-6, None).tolist() == [0, 0]
    assert merge_close_clusters(np.array([-1, -1]), x, none, np.zeros(2, bool), 9.0, None).tolist() == [-1, -1]
    assert merge_close_clusters(np.zeros(0, np.int64), np.zeros((0, 2)), none[:0], np.zeros(0, bool), 9.0,
                                None).tolist() == []


def test_merge_candidates_are_found_across_row_blocks():
    from person_cluster.postprocess import _close_pairs

    rng = np.random.default_rng(0)
    x = rng.normal(size=(7, 3))
    i, j, d = _close_pairs(x, 2.0, block=3)
    full = cdist(x, x)
    assert sorted(zip(i.tolist(), j.tolist())) == sorted(zip(*map(list, np.nonzero(full < 2.0))))
    assert np.allclose(d, full[i, j])


# -- small clusters, numbering, the whole stage ---------------------------------------------------------------
@given(seeds, st.integers(1, 20), st.integers(1, 4))
def test_small_clusters_are_set_aside_unless_they_hold_a_face_the_user_gave_to_someone(seed, n, min_csize):
    rng = np.random.default_rng(seed)
    labels = rng.integers(-1, 5, n)
    keep = rng.random(n) < 0.2
    out = drop_small_clusters(labels, min_csize, keep)
    sizes = {c: int((labels == c).sum()) for c in set(labels.tolist()) if c >= 0}
    kept = {int(c) for c in labels[keep] if c >= 0}
    for k in range(n):
        stays = labels[k] >= 0 and (sizes[labels[k]] >= min_csize or labels[k] in kept)
        assert out[k] == (labels[k] if stays else -1)
    assert (drop_small_clusters(labels, min_csize) == np.where(
        np.isin(labels, [c for c, s in sizes.items() if s >= min_csize]), labels, -1)).all()


@given(seeds, st.integers(0, 20))
def test_compact_numbers_clusters_by_size_then_first_face_and_keeps_the_partition(seed, n):
    rng = np.random.default_rng(seed)
    labels = rng.choice([-1, 3, 9, 4, 40], n)
    out = compact(labels)
    assert ((out >= 0) == (labels >= 0)).all()
    assert sorted(set(out[out >= 0].tolist())) == list(range(len(set(labels[labels >= 0].tolist()))))
    for a in range(n):
        for b in range(n):
            assert (labels[a] == labels[b]) == (out[a] == out[b])
    order = sorted(set(labels[labels >= 0].tolist()), key=lambda c: (-(labels == c).sum(), np.argmax(labels == c)))
    assert [int(out[np.argmax(labels == c)]) for c in order] == list(range(len(order)))


def test_postprocess_merges_then_sets_small_clusters_aside_and_honours_the_switches():
    x = np.array([[1.0, 0.0], [1.0, 0.01], [0.0, 1.0]], np.float32)
    none = np.zeros((3, 0))
    cfg = PostprocessConfig(merge_face_threshold=0.1, min_csize=2)
    assert postprocess(np.array([0, 1, 2]), x, none, np.zeros(3, bool), cfg).tolist() == [0, 0, -1]
    assert postprocess(np.array([0, 1, 2]), x, none, np.zeros(3, bool), cfg, keep=np.array([0, 0, 1], bool)
                       ).tolist() == [0, 0, 1]
    cannot = CannotLinks(np.array([0]), np.array([1]), 3)
    assert postprocess(np.array([0, 1, 2]), x, none, np.zeros(3, bool),
                       PostprocessConfig(merge_face_threshold=0.1, min_csize=1), cannot).tolist() == [0, 1, 2]
    for off in (PostprocessConfig(merge_face_threshold=0.1, min_csize=1, max_merge_passes=0),
                PostprocessConfig(merge_face_threshold=None, merge_cloth_threshold=None, min_csize=1)):
        assert postprocess(np.array([0, 1, 2]), x, none, np.zeros(3, bool), off).tolist() == [0, 1, 2]
    cloth_only = PostprocessConfig(merge_face_threshold=None, merge_cloth_threshold=0.1, min_csize=1)
    assert postprocess(np.array([0, 1, 2]), np.eye(3, 2, dtype=np.float32), x, np.ones(3, bool),
                       cloth_only).tolist() == [0, 0, 1]


# -- the whole clustering ---------------------------------------------------------------------------------------
def _table(sources, frames, boxes, face=None, times=None, shots=None) -> FaceTable:
    n = len(sources)
    return FaceTable(ids=np.arange(n), sources=list(sources), frames=list(frames),
                     times=list(times) if times is not None else [None if f is None else f / 10 for f in frames],
                     bboxes=np.asarray(boxes, np.int64).reshape(n, 4),
                     face=np.zeros((n, 128), np.float32) if face is None else np.asarray(face, np.float32),
                     cloth=np.zeros((n, 0), np.float32), has_cloth=np.zeros(n, bool),
                     shots=None if shots is None else np.asarray(shots, np.int64))


@st.composite
def crowded_tables(draw) -> FaceTable:
    """Videos and photos where many faces share a frame and look alike (a few identities, little noise)."""
    rng = np.random.default_rng(draw(seeds))
    n = draw(st.integers(2, 24))
    frames_per_video = draw(st.integers(1, 4))
    sources, frames = [], []
    for _ in range(n):
        if rng.random() < 0.25:
            sources.append(f"photo{rng.integers(0, 3)}.jpg")
            frames.append(None)
        else:
            sources.append(f"video{rng.integers(0, 2)}.mp4")
            frames.append(int(rng.integers(0, frames_per_video)) * 6)
    order = sorted(range(n), key=lambda k: (sources[k], -1 if frames[k] is None else frames[k]))
    left = rng.integers(0, 600, n)
    boxes = np.stack([left, np.full(n, 50), left + 60, np.full(n, 110)], axis=1)
    face = np.zeros((n, 128))
    face[:, :8] = _near_points(rng, n, draw(st.integers(1, 3)), draw(st.sampled_from([0.0, 0.01, 0.2])))
    return _table([sources[k] for k in order], [frames[k] for k in order], boxes[order], face[order],
                  shots=[-1 if frames[k] is None else 0 for k in order])


@settings(max_examples=25)
@pytest.mark.parametrize("algorithm", ["chinese_whispers", "hac", "rank_order", "finch"])
@given(table=crowded_tables(), dense_max=st.sampled_from([20000, 3]),
       merge=st.sampled_from([None, 0.5, 1.5]), threshold=st.sampled_from([0.3, 1.2]))
def test_no_cluster_ever_holds_two_faces_of_one_frame(algorithm, table, dense_max, merge, threshold):
    config = Config().with_overrides({
        "clustering.algorithm": algorithm, "clustering.dense_max_faces": dense_max, "clustering.knn_neighbors": 3,
        "clustering.distance_threshold": threshold, "postprocess.merge_face_threshold": merge,
        "postprocess.min_csize": 1})
    labels = api.cluster_table(table, config)
    assert CannotLinks.same_frame(table).violations(labels) == 0
    assert len(labels) == len(table) and (labels >= -1).all()
