"""The scene merge of postprocess.py (merge_within_scenes): a person's pieces within one scene join by their
centroids' fused distance, closest first, one join at a time; never across scenes, never for photos, never a
cannot-linked pair."""

from __future__ import annotations

import numpy as np
from hypothesis import example, given, settings
from hypothesis import strategies as st

from person_cluster.config import PostprocessConfig
from person_cluster.constraints import CannotLinks
from person_cluster.postprocess import SceneMerge, merge_within_scenes, postprocess

E = np.eye(8, dtype=np.float32)


def _toward(a: np.ndarray, b: np.ndarray, chord: float) -> np.ndarray:
    """The unit vector ``chord`` away from unit ``a``, turned toward the orthogonal unit ``b``."""
    angle = 2 * np.arcsin(chord / 2)
    return (np.cos(angle) * a + np.sin(angle) * b).astype(np.float32)


def _merge(labels, face, cloth, scene, threshold=0.36, cannot=None, face_weight=1.0, cloth_weight=0.5, has=None):
    has = np.ones(len(labels), bool) if has is None else np.asarray(has, bool)
    merge = SceneMerge(np.asarray(scene), face_weight, cloth_weight, threshold)
    return merge_within_scenes(np.asarray(labels), np.asarray(face, np.float32), np.asarray(cloth, np.float32),
                               has, merge, cannot).tolist()


def test_pieces_of_one_person_in_a_scene_join_and_someone_else_stays_apart():
    """Faces 0.2 apart in the same clothes (fused 0.2) join; a third in other clothes, 0.2 from both by face,
    is fused sqrt(0.04 + 0.25 * 2) = 0.73 away."""
    face = [E[0], E[0], _toward(E[0], E[1], 0.2), _toward(E[0], E[1], 0.2), _toward(E[0], E[2], 0.2)]
    cloth = [E[0], E[0], E[0], E[0], E[1]]
    assert _merge([0, 0, 1, 1, 2], face, cloth, [0] * 5) == [0, 0, 0, 0, 1]


def test_clusters_that_share_no_scene_or_are_photos_are_not_compared():
    face, cloth = [E[0]] * 4, [E[0]] * 4
    assert _merge([0, 0, 1, 1], face, cloth, [0, 0, 1, 1]) == [0, 0, 1, 1]
    assert _merge([0, 0, 1, 1], face, cloth, [-1] * 4) == [0, 0, 1, 1]
    # Without clothing in the scene they share, there is nothing to compare them by there either.
    assert _merge([0, 0, 1, 1], face, cloth, [0] * 4, has=[True, True, False, False]) == [0, 0, 1, 1]
    assert _merge([0, 0, 1, 1], face, cloth, [0] * 4, cloth_weight=0.0) == [0, 0, 1, 1]
    assert _merge([0, 0, 1, 1], face, cloth, [0] * 4) == [0, 0, 0, 0]


def test_a_cannot_linked_pair_never_joins_and_the_nearer_piece_is_joined_first():
    """Cluster 0 is 0.1 from cluster 1 and 0.2 from cluster 2, which it may join one of only (1 and 2 share a
    frame): the nearer wins, the other stays alone, whatever the numbering."""
    face = [E[0], _toward(E[0], E[1], 0.1), _toward(E[0], E[2], 0.2)]
    cloth = [E[0]] * 3
    cannot = CannotLinks(np.array([1]), np.array([2]), 3)
    assert _merge([0, 1, 2], face, cloth, [0] * 3, cannot=cannot) == [0, 0, 1]
    swapped = [face[0], face[2], face[1]]
    assert _merge([0, 1, 2], swapped, cloth, [0] * 3, cannot=CannotLinks(np.array([1]), np.array([2]), 3)) == [0, 1, 0]


def test_after_a_join_a_third_is_compared_with_the_joined_centroid():
    """A, B, C on an arc, A-B and B-C 0.3 apart, A-C 0.59: A and B join (0.3 < 0.36); C is then 0.44 from their
    centroid and stays apart, where joining by pairs would chain all three."""
    b = E[0]
    a, c = _toward(b, E[1], 0.3), _toward(b, -E[1], 0.3)
    assert _merge([0, 0, 1, 2], [a, a, b, c], [E[0]] * 4, [0] * 4) == [0, 0, 0, 1]


def test_a_pair_at_the_threshold_is_not_joined():
    face = [E[0], _toward(E[0], E[1], 0.3)]
    assert _merge([0, 1], face, [E[0]] * 2, [0, 0], threshold=0.30001) == [0, 0]
    assert _merge([0, 1], face, [E[0]] * 2, [0, 0], threshold=0.29999) == [0, 1]
    assert _merge([0, 1], [E[0]] * 2, [E[0]] * 2, [0, 0], threshold=0.0) == [0, 1]  # distance 0, not below 0


def test_a_distance_measured_before_a_join_is_not_used_after_it():
    """A (cluster 0) is 0.2 from B and 0.22 from C, on the other side. A and B join first; their centroid is then
    0.32 from C, still below 0.36, so C joins; with C at 0.3 from A the joined centroid is 0.4 away and C stays,
    though its distance to A alone, measured before the join, was below the threshold."""
    a = E[0]
    b = _toward(a, -E[1], 0.2)
    for chord, expected in ((0.22, [0, 0, 0]), (0.3, [0, 0, 1])):
        assert _merge([0, 1, 2], [a, b, _toward(a, E[1], chord)], [E[0]] * 3, [0] * 3) == expected


def test_a_one_dimensional_clothing_feature_is_compared_and_none_at_all_is_not():
    assert _merge([0, 1], [E[0]] * 2, [[1.0], [1.0]], [0, 0]) == [0, 0]
    assert _merge([0, 1], [E[0]] * 2, [[1.0], [-1.0]], [0, 0]) == [0, 1]  # clothes 2 apart: fused 1.0
    assert _merge([0, 1], [E[0]] * 2, np.zeros((2, 0)), [0, 0]) == [0, 1]


def test_the_weights_are_the_fusions():
    """Same faces, clothes 0.6 apart: fused 0.3 at clothing weight 0.5, 0.6 at 1.0 (threshold 0.36); a face
    weight of 2 doubles a face distance of 0.15 to 0.3 against 0.36 (joins) and of 0.2 to 0.4 (does not)."""
    cloth = [E[0], _toward(E[0], E[1], 0.6)]
    assert _merge([0, 1], [E[0]] * 2, cloth, [0, 0]) == [0, 0]
    assert _merge([0, 1], [E[0]] * 2, cloth, [0, 0], cloth_weight=1.0) == [0, 1]
    for chord, expected in ((0.15, [0, 0]), (0.2, [0, 1])):
        assert _merge([0, 1], [E[0], _toward(E[0], E[1], chord)], [E[0]] * 2, [0, 0], face_weight=2.0) == expected


def test_the_scene_where_the_two_have_the_most_faces_decides_their_clothing():
    """Two clusters seen in scenes 0 and 1 with the same faces; the second wears the first's clothes in scene 0
    only. They join when scene 0 holds most of their faces, not when scene 1 does."""
    for scenes, expected in (([0, 0, 0, 1], [0] * 8), ([0, 1, 1, 1], [0] * 4 + [1] * 4)):
        scene = np.array(scenes * 2)
        cloth = np.array([E[0]] * 4 + [E[0] if s == 0 else E[1] for s in scenes])
        assert _merge([0] * 4 + [1] * 4, [E[0]] * 8, cloth, scene) == expected


def test_no_faces_at_all_is_no_cluster():
    assert _merge(np.zeros(0, np.int64), np.zeros((0, 8)), np.zeros((0, 4)), np.zeros(0, np.int64)) == []
    assert _merge([-1, -1], [E[0]] * 2, [E[0]] * 2, [0, 0]) == [-1, -1]


def test_unassigned_faces_stay_unassigned_and_clusters_are_renumbered_by_size():
    face, cloth = [E[0]] * 5, [E[0]] * 5
    assert _merge([-1, 1, 1, 0, -1], face, cloth, [0] * 5) == [-1, 0, 0, 0, -1]


def test_postprocess_runs_it_only_when_switched_on_and_given_the_scenes():
    face, cloth = np.array([E[0]] * 4), np.array([E[0]] * 4)
    labels, has = np.array([0, 0, 1, 1]), np.ones(4, bool)
    scenes = SceneMerge(np.zeros(4, np.int64), 1.0, 0.5, 0.36)
    cfg = PostprocessConfig(merge_face_threshold=None)
    assert postprocess(labels, face, cloth, has, cfg, scenes=scenes).tolist() == [0, 0, 0, 0]
    assert postprocess(labels, face, cloth, has, cfg).tolist() == [0, 0, 1, 1]
    off = PostprocessConfig(merge_face_threshold=None, scene_merge=False)
    assert postprocess(labels, face, cloth, has, off, scenes=scenes).tolist() == [0, 0, 1, 1]
    cannot = CannotLinks(np.array([0]), np.array([3]), 4)
    assert postprocess(labels, face, cloth, has, cfg, cannot, scenes=scenes).tolist() == [0, 0, 1, 1]


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(2, 40), threshold=st.floats(0.1, 2.0))
def test_it_only_joins_whole_clusters_and_never_a_cannot_linked_pair(seed, n, threshold):
    rng = np.random.default_rng(seed)
    labels = rng.integers(-1, max(1, n // 3), n)
    face, cloth = rng.normal(size=(n, 8)), rng.normal(size=(n, 4))
    scene = rng.integers(-1, 3, n)
    i, j = rng.integers(0, n, n // 2), rng.integers(0, n, n // 2)
    keep = labels[i] != labels[j]
    cannot = CannotLinks(i[keep], j[keep], n)
    out = np.array(_merge(labels, face, cloth, scene, threshold, cannot, has=rng.random(n) < 0.8))
    assert ((out == -1) == (labels == -1)).all()
    for k in np.unique(labels[labels >= 0]):
        assert len(np.unique(out[labels == k])) == 1
    both = (out[cannot.i] >= 0) & (out[cannot.j] >= 0)
    assert not (out[cannot.i] == out[cannot.j])[both].any()


def _reference(labels, face, cloth, has, scene, merge, cannot):
    """The scene merge as its docstring states it, by brute force: every step recomputes every centroid and
    joins the closest allowed pair of clusters sharing a scene with clothing."""
    labels = np.asarray(labels).copy()
    f = face / np.linalg.norm(face, axis=1, keepdims=True)
    c = cloth / np.linalg.norm(cloth, axis=1, keepdims=True)
    while True:
        ks = sorted(set(labels[labels >= 0].tolist()))
        best = None
        for x in ks:
            for y in ks:
                if x >= y or any({labels[i], labels[j]} == {x, y} for i, j in zip(cannot.i, cannot.j)):
                    continue
                shared = [s for s in sorted(set(scene[(labels == x) & has & (scene >= 0)].tolist()))
                          if ((labels == y) & has & (scene == s)).any()]
                if not shared:
                    continue
                sc = max(shared, key=lambda s: ((labels == x) & has & (scene == s)).sum()
                         + ((labels == y) & has & (scene == s)).sum())
                mean = lambda v, m: v[m].sum(0) / np.linalg.norm(v[m].sum(0))
                d_face = np.linalg.norm(mean(f, labels == x) - mean(f, labels == y))
                d_cloth = np.linalg.norm(mean(c, (labels == x) & has & (scene == sc))
                                         - mean(c, (labels == y) & has & (scene == sc)))
                d = np.hypot(merge.face_weight * d_face, merge.cloth_weight * d_cloth)
                if d < merge.threshold and (best is None or d < best[0]):
                    best = (d, x, y)
        if best is None:
            return labels
        labels[labels == best[2]] = best[1]


@settings(max_examples=150, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(2, 40), threshold=st.floats(0.3, 1.5))
def test_it_gives_the_partition_of_the_brute_force_merge(seed, n, threshold):
    """Random pieces of three people over three scenes and photos: one example in ten or so tells a stale distance,
    or a scene's face count kept wrong after a join, from the right one."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(-1, max(1, n // 2), n)
    who = rng.integers(0, 3, n)  # three people: most clusters have a near twin
    face = rng.normal(size=(3, 6))[who] + 0.5 * rng.normal(size=(n, 6))
    cloth = rng.normal(size=(3, 3))[who] + 0.5 * rng.normal(size=(n, 3))
    scene, has = rng.integers(-1, 3, n), rng.random(n) < 0.8
    i, j = rng.integers(0, n, n // 4), rng.integers(0, n, n // 4)
    cannot = CannotLinks(i, j, n)
    merge = SceneMerge(scene, 1.0, 0.7, threshold)
    ours = merge_within_scenes(labels, face.astype(np.float32), cloth.astype(np.float32), has, merge, cannot)
    expected = _reference(labels, face, cloth, has, scene, merge, cannot)
    pairs = lambda x: {(a, b) for a in range(n) for b in range(n) if x[a] >= 0 and x[a] == x[b]}
    assert pairs(ours) == pairs(expected)


# merge_by_rivals: after the scene merge, two clusters of a scene join by their faces alone where each is nearer
# the other than anyone it shares a frame with.

def _by_rivals(labels, face, scene, cannot, threshold=0.36, learnt=None, pieces=False):
    """The rule of each nearer the other than anyone beside it alone, unless ``pieces``."""
    from person_cluster.postprocess import merge_by_rivals

    merge = SceneMerge(np.asarray(scene), 1.0, 0.5, threshold, None if learnt is None else np.asarray(learnt, np.float32))
    return merge_by_rivals(np.asarray(labels), np.asarray(face, np.float32), merge, cannot, pieces).tolist()


def _dress():
    """A (face 0) and B (face 1), 0.2 apart, never in one frame; R beside A (a frame with face 0), S beside B,
    each 0.3 from the face beside it and more than 0.36 from the rest."""
    a, b = E[0], _toward(E[0], E[1], 0.2)
    r, s = _toward(E[0], E[2], 0.3), _toward(b, E[3], 0.3)
    return [a, b, r, s], CannotLinks(np.array([0, 1]), np.array([2, 3]), 4)


def test_two_clusters_nearer_each_other_than_anyone_beside_them_join():
    face, cannot = _dress()
    assert _by_rivals([0, 1, 2, 3], face, [0] * 4, cannot) == [0, 0, 1, 2]


def test_a_rival_nearer_than_the_other_cluster_keeps_them_apart():
    face, cannot = _dress()
    face[2] = _toward(E[0], E[2], 0.19)  # R now nearer A than B is
    assert _by_rivals([0, 1, 2, 3], face, [0] * 4, cannot) == [0, 1, 2, 3]
    face[2], face[3] = _toward(E[0], E[2], 0.3), _toward(face[1], E[3], 0.19)  # S nearer B than A is
    assert _by_rivals([0, 1, 2, 3], face, [0] * 4, cannot) == [0, 1, 2, 3]


def test_clusters_seen_beside_no_one_other_scenes_and_the_threshold_keep_them_apart():
    face, cannot = _dress()
    only_a = CannotLinks(np.array([0]), np.array([2]), 4)  # B seen beside no one: nothing to measure it by
    assert _by_rivals([0, 1, 2, 3], face, [0] * 4, only_a) == [0, 1, 2, 3]
    assert _by_rivals([0, 1, 2, 3], face, [0] * 4, CannotLinks.none(4)) == [0, 1, 2, 3]
    assert _by_rivals([0, 1, 2, 3], face, [0, 1, 0, 1], cannot) == [0, 1, 2, 3]
    assert _by_rivals([0, 1, 2, 3], face, [-1] * 4, cannot) == [0, 1, 2, 3]  # photos
    from person_cluster.fusion import l2_normalize

    unit = l2_normalize(l2_normalize(np.array(face[:2], np.float32))).astype(np.float64)  # as the merge computes
    d = float(np.linalg.norm(unit[0] - unit[1]))
    assert _by_rivals([0, 1, 2, 3], face, [0] * 4, cannot, threshold=d) == [0, 1, 2, 3]  # below, not at
    assert _by_rivals([0, 1, 2, 3], face, [0] * 4, cannot, threshold=d * 1.001) == [0, 0, 1, 2]
    assert _by_rivals([0, 1, 2, 3], face, [0] * 4, None) == [0, 1, 2, 3]


def test_a_rival_exactly_as_near_as_the_other_cluster_keeps_them_apart():
    face, cannot = _dress()
    face[2] = _toward(E[0], E[2], 0.2)  # R exactly as far from A as B is (the same numbers on another axis)
    assert _by_rivals([0, 1, 2, 3], face, [0] * 4, cannot) == [0, 1, 2, 3]


def test_the_closest_pair_joins_first():
    """A, B and C on one arc: A-B 0.25, B-C 0.2, A and C in one frame. B joins C first, and then A is a rival of
    the joined cluster; joining A and B first would have kept C out instead."""
    a, b, c = E[0], _toward(E[0], E[1], 0.25), _toward(E[0], E[1], 0.45)
    face = [a, b, c, _toward(b, E[3], 0.35)]
    cannot = CannotLinks(np.array([0, 1]), np.array([2, 3]), 4)
    assert _by_rivals([0, 1, 2, 3], face, [0] * 4, cannot) == [1, 0, 0, 2]


def test_the_learnt_faces_are_compared_where_given():
    face, cannot = _dress()
    learnt = [face[0], face[1], face[0], face[3]]  # in the learnt metric R is A's double: no join
    assert _by_rivals([0, 1, 2, 3], face, [0] * 4, cannot, learnt=learnt) == [0, 1, 2, 3]
    assert _by_rivals([0, 1, 2, 3], [E[0], E[4], E[5], E[6]], [0] * 4, cannot, learnt=face) == [0, 0, 1, 2]


def test_a_joined_cluster_keeps_the_rivals_of_both_and_its_centroid_is_the_joined_one():
    """A and B join first (0.2 apart); C, 0.25 from B (nearer B than B's rival S, 0.28) but a rival of neither,
    was seen beside T (0.35 away). Against the joined centroid (0.269 from C) S, B's rival and now the joined
    cluster's, is nearer (0.26), so C stays apart; with S further (0.3) and A's rival R at 0.316, C joins."""
    a, b = E[0], _toward(E[0], E[1], 0.2)
    centre = (a + b) / np.linalg.norm(a + b)
    c = _toward(b, E[4], 0.25)
    face = [a, b, _toward(a, E[2], 0.3), _toward(centre, E[3], 0.26), c, _toward(c, E[5], 0.35)]
    cannot = CannotLinks(np.array([0, 1, 4]), np.array([2, 3, 5]), 6)
    assert 0.26 < float(np.linalg.norm(c - centre)) < 0.27
    assert _by_rivals([0, 1, 2, 3, 4, 5], face, [0] * 6, cannot) == [0, 0, 1, 2, 3, 4]
    face[3] = _toward(centre, E[3], 0.3)
    assert _by_rivals([0, 1, 2, 3, 4, 5], face, [0] * 6, cannot) == [0, 0, 1, 2, 0, 3]


def _piece():
    """B (three faces at one spot) seen beside R, 0.22 away; P (one face), 0.26 from B, seen beside S, 0.35 from P:
    B's rival is nearer B than P is, so the rule of each nearer the other keeps them apart."""
    b, p = E[0], _toward(E[0], E[1], 0.26)
    face = [b, b, b, _toward(b, E[2], 0.22), p, _toward(p, E[3], 0.35)]
    return face, CannotLinks(np.array([0, 4]), np.array([3, 5]), 6)


def test_a_piece_joins_the_cluster_nearest_to_it_where_everyone_beside_it_is_further():
    face, cannot = _piece()
    assert _by_rivals([0, 0, 0, 1, 2, 3], face, [0] * 6, cannot) == [0, 0, 0, 1, 2, 3]
    assert _by_rivals([0, 0, 0, 1, 2, 3], face, [0] * 6, cannot, pieces=True) == [0, 0, 0, 1, 0, 2]
    face[5] = _toward(face[4], E[3], 0.25)  # S nearer P than B is
    assert _by_rivals([0, 0, 0, 1, 2, 3], face, [0] * 6, cannot, pieces=True) == [0, 0, 0, 1, 2, 3]


def test_a_piece_with_another_cluster_of_its_scene_nearer_stays_apart():
    """C, seen beside no one, 0.2 from P: P's nearest cluster is not B. In another scene C does not count."""
    face, cannot = _piece()
    face.append(_toward(face[4], E[4], 0.2))
    cannot = CannotLinks(cannot.i, cannot.j, 7)
    assert _by_rivals([0, 0, 0, 1, 2, 3, 4], face, [0] * 7, cannot, pieces=True) == [0, 0, 0, 1, 2, 3, 4]
    assert _by_rivals([0, 0, 0, 1, 2, 3, 4], face, [0] * 6 + [1], cannot, pieces=True) == [0, 0, 0, 1, 0, 2, 3]


def test_a_piece_in_two_scenes_looks_for_its_nearest_in_both():
    """P has a face in scenes 0 and 1; C, 0.2 from P, only in scene 1, is nearer P than B (scene 0): P stays apart.
    The merge judges pieces unless told not to."""
    from person_cluster.postprocess import merge_by_rivals

    face, cannot = _piece()
    face = face[:5] + [face[4]] + face[5:] + [_toward(face[4], E[4], 0.2)]  # P twice, then S, then C
    cannot = CannotLinks(np.array([0, 4]), np.array([3, 6]), 8)
    labels, scene = [0, 0, 0, 1, 2, 2, 3, 4], [0, 0, 0, 0, 0, 1, 0, 1]
    assert _by_rivals(labels, face, scene, cannot, pieces=True) == [0, 0, 0, 2, 1, 1, 3, 4]  # P is 1 now, by size
    scene[7] = 0  # C in scene 0 too: still nearer
    assert _by_rivals(labels, face, scene, cannot, pieces=True) == [0, 0, 0, 2, 1, 1, 3, 4]
    face[7] = _toward(face[4], E[4], 0.5)  # C further than B: P joins B
    merge = SceneMerge(np.asarray(scene), 1.0, 0.5, 0.36)
    assert merge_by_rivals(np.asarray(labels), np.asarray(face, np.float32), merge, cannot).tolist() == [
        0, 0, 0, 1, 0, 0, 2, 3]


def test_only_the_smaller_cluster_is_judged_as_a_piece():
    """B one face, P three: B is the piece, and its rival R (0.22) is nearer it than P; P's view does not count.
    Of two clusters as large, either may be the piece."""
    face, cannot = _piece()
    b, r, p, s = face[0], face[3], face[4], face[5]
    face = [b, r, p, p, p, s]
    cannot = CannotLinks(np.array([0, 2]), np.array([1, 5]), 6)
    assert _by_rivals([0, 1, 2, 2, 2, 3], face, [0] * 6, cannot, pieces=True) == [1, 2, 0, 0, 0, 3]
    face = [b, r, p, s]
    cannot = CannotLinks(np.array([0, 2]), np.array([1, 3]), 4)
    assert _by_rivals([0, 1, 2, 3], face, [0] * 4, cannot, pieces=True) == [0, 1, 0, 2]


def test_postprocess_runs_it_after_the_scene_merge_only_when_switched_on():
    face, cannot = _dress()
    face, cloth = np.array(face), np.array([E[0], E[1], E[2], E[3]])  # clothes too far apart for the scene merge
    scenes = SceneMerge(np.zeros(4, np.int64), 1.0, 0.5, 0.36)
    cfg = PostprocessConfig(merge_face_threshold=None, min_csize=1)
    labels, has = np.array([0, 1, 2, 3]), np.ones(4, bool)
    assert postprocess(labels, face, cloth, has, cfg, cannot, scenes=scenes).tolist() == [0, 0, 1, 2]
    off = PostprocessConfig(merge_face_threshold=None, min_csize=1, rival_merge=False)
    assert postprocess(labels, face, cloth, has, off, cannot, scenes=scenes).tolist() == [0, 1, 2, 3]
    piece, cannot = _piece()
    piece, labels, has = np.array(piece), np.array([0, 0, 0, 1, 2, 3]), np.ones(6, bool)
    cloth = np.array([E[0], E[0], E[0], E[2], E[5], E[3]])  # P's clothes far from B's
    scenes = SceneMerge(np.zeros(6, np.int64), 1.0, 0.5, 0.36)
    assert postprocess(labels, piece, cloth, has, cfg, cannot, scenes=scenes).tolist() == [0, 0, 0, 1, 0, 2]
    whole = PostprocessConfig(merge_face_threshold=None, min_csize=1, rival_pieces=False)
    assert postprocess(labels, piece, cloth, has, whole, cannot, scenes=scenes).tolist() == [0, 0, 0, 1, 2, 3]


@settings(max_examples=80, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(2, 40), threshold=st.floats(0.1, 2.0))
def test_by_rivals_it_joins_whole_clusters_never_a_cannot_linked_pair_and_stops_only_when_no_pair_qualifies(
        seed, n, threshold):
    from person_cluster.fusion import l2_normalize

    rng = np.random.default_rng(seed)
    labels = rng.integers(-1, max(1, n // 2), n)
    face = rng.normal(size=(n, 8)).astype(np.float32)
    scene = rng.integers(-1, 3, n)
    i, j = rng.integers(0, n, n // 2), rng.integers(0, n, n // 2)
    keep = labels[i] != labels[j]
    cannot = CannotLinks(i[keep], j[keep], n)
    out = np.array(_by_rivals(labels, face, scene, cannot, threshold))
    assert ((out == -1) == (labels == -1)).all()
    for k in np.unique(labels[labels >= 0]):
        assert len(np.unique(out[labels == k])) == 1
    both = (out[cannot.i] >= 0) & (out[cannot.j] >= 0)
    assert not (out[cannot.i] == out[cannot.j])[both].any()
    # At the end no two clusters of a scene, both beside someone, are nearer each other than threshold and than
    # anyone beside either.
    k = int(out.max(initial=-1)) + 1
    if k < 2:
        return
    f = l2_normalize(face)
    centre = l2_normalize(np.stack([f[out == c].sum(0) for c in range(k)]))
    rival = cannot.forbidden_between(out)
    nearest = np.full(k, np.inf)
    for x, y in rival:
        d = float(np.linalg.norm(centre[x] - centre[y]))
        nearest[x], nearest[y] = min(nearest[x], d), min(nearest[y], d)
    scenes = [set(scene[(out == c) & (scene >= 0)].tolist()) for c in range(k)]
    for x in range(k):
        for y in range(x + 1, k):
            if (x, y) in rival or not scenes[x] & scenes[y] or np.isinf(nearest[x]) or np.isinf(nearest[y]):
                continue
            d = float(np.linalg.norm(centre[x] - centre[y]))
            assert not (d < threshold and d < nearest[x] and d < nearest[y]) or np.isclose(d, min(nearest[x], nearest[y]))


def _by_rivals_reference(labels, face, merge, cannot, pieces=True):
    """merge_by_rivals as its docstring states it, by brute force: every step recomputes every centroid and every
    rival distance and joins the closest pair that qualifies (ties: the smaller cluster numbers)."""
    from person_cluster.fusion import l2_normalize
    from person_cluster.postprocess import compact

    labels = compact(labels)
    k = int(labels.max(initial=-1)) + 1
    f = l2_normalize(face if merge.face is None else merge.face)
    seen = np.ones(len(labels), bool) if merge.seen is None else np.asarray(merge.seen, bool)
    beside = {c for c in range(k) if seen[labels == c].any()
              and any(labels[i] == c and labels[j] not in (c, -1) or labels[j] == c and labels[i] not in (c, -1)
                      for i, j in zip(cannot.i, cannot.j))}
    scenes = {c: set(merge.scene[(labels == c) & (merge.scene >= 0)].tolist()) for c in range(k)}
    group = {c: c for c in range(k)}  # cluster -> the cluster it is part of now
    while True:
        members = {g: [c for c in range(k) if group[c] == g] for g in set(group.values())}
        centre = {g: l2_normalize(f[np.isin(labels, m)].astype(np.float64).sum(0, keepdims=True)).astype(np.float64)[0]
                  for g, m in members.items()}
        rival = {(min(group[labels[i]], group[labels[j]]), max(group[labels[i]], group[labels[j]]))
                 for i, j in zip(cannot.i, cannot.j) if labels[i] >= 0 and labels[j] >= 0
                 and group[labels[i]] != group[labels[j]]}
        near = {g: min([float(np.linalg.norm(centre[x] - centre[y])) for x, y in rival if g in (x, y)] or [np.inf])
                for g in members}
        best = None
        for x in sorted(members):
            for y in sorted(members):
                if x >= y or (x, y) in rival:
                    continue
                ok_x = all(c in beside for c in members[x]) and all(c in beside for c in members[y])
                if not ok_x or not set().union(*(scenes[c] for c in members[x])) & set().union(
                        *(scenes[c] for c in members[y])):
                    continue
                d = float(np.linalg.norm(centre[x] - centre[y]))
                ok = d < near[x] and d < near[y]
                for p, o in ((x, y), (y, x)) if pieces else ():  # a piece, by its own rivals and its nearest
                    size = {g: int(np.isin(labels, m).sum()) for g, m in members.items()}
                    around = [g for g in members if g != p and set().union(*(scenes[c] for c in members[g]))
                              & set().union(*(scenes[c] for c in members[p]))]
                    dist = sorted((float(np.linalg.norm(centre[p] - centre[g])), g) for g in around)
                    strictly = dist[0][1] == o and (len(dist) == 1 or dist[1][0] > dist[0][0])
                    ok |= size[p] <= size[o] and strictly and d < near[p]
                if d < merge.threshold and ok and (best is None or d < best[0]):
                    best = (d, x, y)
        if best is None:
            return compact(np.where(labels >= 0, np.array([group[c] for c in range(k)] + [-1])[labels], -1))
        for c in members[best[2]]:
            group[c] = best[1]


def _rival_case(seed):
    """Random clusters of three people in one scene (or photos), rivals drawn at random: labels, faces, merge,
    cannot-links."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(4, 30))
    labels = np.arange(n) if seed % 2 else rng.integers(-1, max(1, n // 2), n)
    who = rng.integers(0, 3, n)
    face = rng.normal(size=(3, 4))[who] + 0.6 * rng.normal(size=(n, 4))
    if seed % 5 == 0:  # faces on a coarse grid: equal distances are common
        face = np.round(face)
        face[~face.any(1)] = 1.0
    scene = np.zeros(n, np.int64) if seed % 7 else rng.integers(-1, 2, n)
    m = int(rng.integers(1, n))
    i, j = rng.integers(0, n, m), rng.integers(0, n, m)
    keep = labels[i] != labels[j]
    seen = None if seed % 3 else rng.random(n) < 0.7
    merge = SceneMerge(scene, 1.0, 0.5, float(rng.uniform(0.3, 2.0)), None, seen)
    return labels, face.astype(np.float32), merge, CannotLinks(i[keep], j[keep], n)


@settings(max_examples=300, deadline=None)
@given(seed=st.integers(0, 100_000))
@example(seed=1709)  # found by a search of 3,000: a pair held back by a rival joins once that rival has moved
@example(seed=2481)
@example(seed=29)  # found by a search of 4,000: a piece whose nearest cluster became the joined one
@example(seed=134)
@example(seed=128)  # with pieces: a pair held back by a rival, looked at again when that rival moves
@example(seed=765)
def test_by_rivals_it_gives_the_partition_of_the_brute_force_merge(seed):
    """The heap (a pair that fails the rival test waits until a rival of either cluster moves) against the plain
    loop that recomputes everything at every step."""
    from person_cluster.postprocess import merge_by_rivals

    labels, face, merge, cannot = _rival_case(seed)
    pieces = seed % 4 != 3
    assert (merge_by_rivals(labels, face, merge, cannot, pieces).tolist()
            == _by_rivals_reference(labels, face, merge, cannot, pieces).tolist())


def test_by_rivals_no_faces_or_none_assigned_is_nothing_to_join():
    """A clip with no faces, or with every face set aside: the rival merge returns what it was given."""
    from person_cluster.postprocess import merge_by_rivals

    for labels in (np.zeros(0, np.int64), np.full(3, -1, np.int64)):
        n = len(labels)
        merge = SceneMerge(np.zeros(n, np.int64), 1.0, 0.5, 0.36, None, None)
        none = CannotLinks(np.zeros(0, np.int64), np.zeros(0, np.int64), n)
        both = CannotLinks(np.array([0] if n else [], np.int64), np.array([1] if n else [], np.int64), n)
        for cannot in (none, both):
            assert merge_by_rivals(labels, np.ones((n, 4), np.float32), merge, cannot).tolist() == labels.tolist()
