"""What an `add` does with the added faces (clustering/incremental.py), on tables made by hand: who joins whom,
who becomes a new person, who stays unassigned, and what never happens (a wrong name, two faces of one frame in one
person, an existing face moved)."""

from __future__ import annotations

import copy
import dataclasses
import logging

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from person_cluster.clustering.incremental import cluster_added
from person_cluster.config import Config
from person_cluster.records import FaceTable

CONFIG = Config()  # distance_threshold 0.36, min_csize 2; faces without clothing: the face stands in for it
MARGIN = 0.05
DIM = 128


def _point(rng, axis: int, spread: float = 0.01, toward: int | None = None, angle: float = 0.0) -> np.ndarray:
    """A unit descriptor near axis ``axis`` (turned by ``angle`` radians toward axis ``toward``), a little noise."""
    v = np.zeros(DIM)
    v[axis] = np.cos(angle)
    if toward is not None:
        v[toward] = np.sin(angle)
    v[64:] += rng.normal(0, spread / 8, DIM - 64)
    return v / np.linalg.norm(v)


def _toward(a: np.ndarray, b: np.ndarray, chord: float) -> np.ndarray:
    """The unit vector ``chord`` away from unit ``a``, turned toward the orthogonal unit ``b``."""
    angle = _angle(chord)
    return np.cos(angle) * a + np.sin(angle) * b


def _chord(angle: float) -> float:
    return 2 * np.sin(angle / 2)


def _angle(chord: float) -> float:
    return 2 * np.arcsin(chord / 2)


def _table(faces: list[np.ndarray], sources: list[str] | None = None, frames: list | None = None) -> FaceTable:
    n = len(faces)
    sources = sources or [f"photo_{k:03d}.jpg" for k in range(n)]
    frames = frames or [None] * n
    left = np.arange(n) * 100
    return FaceTable(ids=np.arange(n), sources=sources, frames=frames,
                     times=[None if f is None else f / 10 for f in frames],
                     bboxes=np.stack([left, np.zeros(n), left + 60, np.full(n, 60)], 1).astype(np.int64),
                     face=np.asarray(faces, np.float32), cloth=np.zeros((n, 0), np.float32),
                     has_cloth=np.zeros(n, bool), shots=np.array([-1 if f is None else 0 for f in frames]))


def _run(faces, fixed, added, next_free=10, **kw):
    return cluster_added(_table(faces, **kw), CONFIG, np.asarray(fixed), np.asarray(added, bool), next_free, MARGIN)


def test_added_faces_join_the_person_they_clearly_are_or_become_new_people():
    rng = np.random.default_rng(0)
    old = [_point(rng, 0) for _ in range(4)] + [_point(rng, 1) for _ in range(4)] + [_point(rng, 2), _point(rng, 0)]
    fixed = [3] * 4 + [7] * 4 + [-1, -2]  # person 3, person 7, one unassigned face, one not a face
    new = [_point(rng, 0) for _ in range(3)] + [_point(rng, 5) for _ in range(3)] + [_point(rng, 6)] + \
        [_point(rng, 2) for _ in range(2)]
    labels, tracks, next_free, report = _run(old + new, fixed + [-1] * len(new), [False] * 10 + [True] * 9)
    assert labels[:8].tolist() == fixed[:8] and labels[9] == -2  # what OUT had stays
    assert labels[10:13].tolist() == [3, 3, 3]  # clearly person 3
    assert len(set(labels[13:16].tolist())) == 1 and labels[13] >= 10  # a new person, a number never used
    assert labels[16] == -1  # alone, and smaller than min_csize: unassigned
    # The unassigned face OUT had finds company among the added ones: they are a new person together.
    assert labels[8] == labels[17] == labels[18] >= 10 and labels[8] != labels[13]
    assert next_free == 12 and sorted({int(labels[13]), int(labels[8])}) == [10, 11]
    assert report.new_faces == 9 and report.joined == {3: 3} and report.new_people == 2 and report.regrouped == 1
    assert len(tracks.ids) == 19


def test_nothing_added_changes_nothing():
    rng = np.random.default_rng(1)
    faces = [_point(rng, 0) for _ in range(3)] + [_point(rng, 0)]
    labels, _, next_free, report = _run(faces, [4, 4, 4, -1], [False] * 4, next_free=9)
    assert labels.tolist() == [4, 4, 4, -1] and next_free == 9 and report.new_faces == 0


# Without clothing the face stands in for it (fusion.py): the threshold 0.36 is a face distance of 0.36 / hypot(1,
# 0.5) = 0.322.
@pytest.mark.parametrize("chord, joins", [(0.30, True), (0.315, True), (0.33, False), (0.45, False)])
def test_a_cluster_joins_a_person_only_nearer_than_the_threshold(chord, joins):
    rng = np.random.default_rng(2)
    old = [_point(rng, 0, spread=0.0) for _ in range(3)]
    new = [_point(rng, 0, spread=0.0, toward=1, angle=_angle(chord)) for _ in range(2)]
    labels, _, _, report = _run(old + new, [3, 3, 3, -1, -1], [False] * 3 + [True] * 2)
    assert (labels[3:].tolist() == [3, 3]) == joins
    if not joins:
        assert labels[3] == labels[4] == 10 and report.new_people == 1


@pytest.mark.parametrize("gap, joins", [(0.0, False), (0.03, False), (0.08, True)])
def test_a_cluster_about_as_near_two_people_joins_neither(gap, joins):
    """People 3 and 7 lie 0.2 apart; the added pair is d from 3 and d + gap from 7 (the margin is 0.05)."""
    rng = np.random.default_rng(3)
    a, b = 0.1, 0.1 + gap  # chords to 3 and 7; put 3 and 7 on a circle through axes 0 and 1, the new pair between
    a3, a7 = 0.0, _angle(0.2)
    target = a3 + (_angle(a) if gap == 0 else (_angle(0.2) + _angle(a) - _angle(b)) / 2)
    old = [_point(rng, 0, spread=0.0, toward=1, angle=a3) for _ in range(3)] + \
        [_point(rng, 0, spread=0.0, toward=1, angle=a7) for _ in range(3)]
    new = [_point(rng, 0, spread=0.0, toward=1, angle=target) for _ in range(2)]
    d3, d7 = (np.linalg.norm(new[0] - old[k]) for k in (0, 3))
    assert abs((d7 - d3) - gap) < 0.01 or gap == 0
    labels, _, _, _ = _run(old + new, [3] * 3 + [7] * 3 + [-1, -1], [False] * 6 + [True] * 2)
    assert labels[6] == labels[7]
    assert (labels[6] == 3) == joins and labels[6] != 7
    if not joins:
        assert labels[6] == 10  # a new, unnamed person: never a name it may not have


def test_two_faces_of_one_frame_never_end_in_one_person():
    """Two added faces of one video frame, both near person 3: two people, so at most one of them is person 3."""
    rng = np.random.default_rng(4)
    old = [_point(rng, 0) for _ in range(3)]
    new = [_point(rng, 0), _point(rng, 0)]
    sources = [f"photo_{k}.jpg" for k in range(3)] + ["v.mp4", "v.mp4"]
    labels, _, _, _ = _run(old + new, [3, 3, 3, -1, -1], [False] * 3 + [True] * 2, sources=sources,
                           frames=[None, None, None, 12, 12])
    assert labels[3] != labels[4] or labels[3] < 0
    # And a cluster with a face of a frame that already holds one of person 3's faces does not join person 3: the
    # two added faces (frames 12 and 30) are one cluster, a new person.
    sources = ["v.mp4", "p1.jpg", "p2.jpg", "v.mp4", "v.mp4"]
    labels, _, _, report = _run(old + new, [3, 3, 3, -1, -1], [False] * 3 + [True] * 2, sources=sources,
                                frames=[12, None, None, 12, 30])
    assert labels[3:].tolist() == [10, 10] and report.joined == {}
    labels, _, _, report = _run(old + new, [3, 3, 3, -1, -1], [False] * 3 + [True] * 2, sources=sources,
                                frames=[12, None, None, 24, 30])  # other frames: person 3
    assert labels[3:].tolist() == [3, 3] and report.joined == {3: 2}


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n_old=st.integers(0, 10), n_new=st.integers(1, 10))
def test_what_out_had_keeps_its_person_and_every_label_is_known_or_new(seed, n_old, n_new):
    rng = np.random.default_rng(seed)
    axes = rng.integers(0, 4, n_old + n_new)
    faces = [_point(rng, int(a), spread=float(rng.choice([0.0, 0.3]))) for a in axes]
    fixed = np.where(rng.random(n_old) < 0.8, axes[:n_old] + 20, rng.choice([-1, -2], n_old))
    sources = [f"p{k}.jpg" if rng.random() < 0.5 else "v.mp4" for k in range(n_old + n_new)]
    frames = [None if s.endswith(".jpg") else int(rng.integers(0, 3)) for s in sources]
    order = sorted(range(n_old + n_new), key=lambda k: (k >= n_old, sources[k], frames[k] or 0))
    faces, sources, frames = [faces[k] for k in order], [sources[k] for k in order], [frames[k] for k in order]
    labels, _, next_free, report = _run(faces, np.concatenate([fixed, np.full(n_new, -1)]),
                                        [False] * n_old + [True] * n_new, next_free=30,
                                        sources=sources, frames=frames)
    old = labels[:n_old]
    assert np.all((old == fixed) | ((fixed == -1) & (old >= 0)))  # kept, or an unassigned face found company
    known = set(fixed[fixed >= 0].tolist())
    for label in set(labels[n_old:].tolist()) - {-1}:
        assert label in known or 30 <= label < next_free
    assert next_free - 30 == report.new_people
    # No added face lands in a person who already holds a face of its frame (OUT's own faces are as they were).
    at = list(zip(sources, frames, strict=True))
    for k in range(n_old, n_old + n_new):
        if labels[k] >= 0 and frames[k] is not None:
            same = [j for j in np.flatnonzero(labels == labels[k]) if j != k and at[j] == at[k]]
            assert not same, "a person holds two faces of one frame"


# -- clothing, the quality gate, the pool's cannot-links, the report and its log line ---------------------------
def _config(**sections) -> Config:
    """CONFIG with some fields changed: _config(fusion={"cloth_scope": "always"}, tracking={"enabled": False})."""
    config = copy.deepcopy(CONFIG)
    for section, values in sections.items():
        for key, value in values.items():
            setattr(getattr(config, section), key, value)
    return config


def _clothed(faces, cloths, sources=None, frames=None, sizes=None) -> FaceTable:
    """_table with a clothing feature for every face, and face boxes of ``sizes`` pixels (60 each by default)."""
    table = _table(faces, sources, frames)
    n = len(faces)
    size = np.full(n, 60) if sizes is None else np.asarray(sizes)
    left = np.arange(n) * 100
    return dataclasses.replace(table, cloth=np.asarray(cloths, np.float32), has_cloth=np.ones(n, bool),
                               bboxes=np.stack([left, np.zeros(n), left + size, size], 1).astype(np.int64))


def test_added_faces_are_compared_by_their_clothing_too():
    """Two added faces 0.2 apart: one new person if they wear the same, two unassigned faces if not (fused, the
    clothing's distance makes them 0.73 apart). OUT's faces have no clothing feature: theirs is not the added's."""
    rng = np.random.default_rng(5)
    old = [_point(rng, 0, spread=0.0) for _ in range(3)]
    new = [_point(rng, 4, spread=0.0), _point(rng, 4, spread=0.0, toward=5, angle=_angle(0.2))]
    e = np.eye(4)
    config = _config(fusion={"cloth_scope": "always"})
    for cloths, expected in (([e[0]] * 5, [10, 10]), ([e[0]] * 4 + [e[1]], [-1, -1])):
        table = dataclasses.replace(_clothed(old + new, cloths), has_cloth=np.array([False] * 3 + [True] * 2))
        labels, _, _, _ = cluster_added(table, config, np.array([3, 3, 3, -1, -1]),
                                        np.array([False] * 3 + [True] * 2), 10, MARGIN)
        assert labels.tolist() == [3, 3, 3, *expected]


def test_clothing_is_compared_only_within_its_window_of_one_video():
    """The same two added faces in one video 100 s apart (cloth_window_sec 10): their clothing is not compared,
    so they are one new person whatever they wear; 5 s apart it is, and they are not; in two videos it is not."""
    rng = np.random.default_rng(6)
    old = [_point(rng, 0, spread=0.0) for _ in range(3)]
    new = [_point(rng, 4, spread=0.0), _point(rng, 4, spread=0.0, toward=5, angle=_angle(0.2))]
    e = np.eye(4)
    config = _config(fusion={"cloth_scope": "window"})
    for second, frame, expected in (("v.mp4", 1000, [10, 10]), ("v.mp4", 50, [-1, -1]), ("w.mp4", 50, [10, 10])):
        table = _clothed(old + new, [e[0]] * 4 + [e[1]], sources=["o.mp4", "o.mp4", "o.mp4", "v.mp4", second],
                         frames=[1000, 1001, 1002, 0, frame])  # OUT's faces: another video, 100 s in
        labels, _, _, _ = cluster_added(table, config, np.array([3, 3, 3, -1, -1]),
                                        np.array([False] * 3 + [True] * 2), 10, MARGIN)
        assert labels.tolist() == [3, 3, 3, *expected]


def test_a_poor_added_face_joins_the_new_cluster_it_is_clearly_near_with_the_gate_on():
    """Two good added faces and a tiny (poor) one 0.4 from them: beyond distance_threshold (0.36), so without the
    gate it stays alone; with it, it is placed in their cluster (nearer than assign_distance, 0.5)."""
    rng = np.random.default_rng(7)
    old = [_point(rng, 0, spread=0.0) for _ in range(3)]
    new = [_point(rng, 4, spread=0.0), _point(rng, 4, spread=0.0), _point(rng, 4, spread=0.0, toward=5,
                                                                         angle=_angle(0.4))]
    table = _clothed(old + new, np.zeros((6, 0)), sizes=[60] * 5 + [12])
    table = dataclasses.replace(table, has_cloth=np.zeros(6, bool))
    fixed, added = np.array([3, 3, 3, -1, -1, -1]), np.array([False] * 3 + [True] * 3)
    labels, _, _, _ = cluster_added(table, _config(quality={"enabled": True}), fixed, added, 10, MARGIN)
    assert labels.tolist() == [3, 3, 3, 10, 10, 10]
    labels, _, _, _ = cluster_added(table, _config(quality={"enabled": False}), fixed, added, 10, MARGIN)
    assert labels.tolist() == [3, 3, 3, 10, 10, -1]


def test_the_gate_never_places_a_poor_face_with_a_face_of_its_own_frame():
    """A poor added face shares a video frame with good added face 3, and lies nearest to good added face 4: the
    gate does not place it in their cluster, so it stays alone (a cluster cut afterwards would have split 3 and 4
    instead)."""
    rng = np.random.default_rng(8)
    old = [_point(rng, 0, spread=0.0) for _ in range(3)]
    a = _point(rng, 4, spread=0.0)
    new = [a, _point(rng, 4, spread=0.0, toward=5, angle=_angle(0.2)),
           _point(rng, 4, spread=0.0, toward=5, angle=_angle(0.3))]
    sources = ["p0.jpg", "p1.jpg", "p2.jpg", "v.mp4", "w.mp4", "v.mp4"]
    table = _clothed(old + new, np.zeros((6, 0)), sources=sources, frames=[None, None, None, 7, 9, 7],
                     sizes=[60] * 5 + [12])
    table = dataclasses.replace(table, has_cloth=np.zeros(6, bool))
    config = _config(quality={"enabled": True}, tracking={"enabled": False})
    labels, _, _, _ = cluster_added(table, config, np.array([3, 3, 3, -1, -1, -1]),
                                    np.array([False] * 3 + [True] * 3), 10, MARGIN)
    assert labels.tolist() == [3, 3, 3, 10, 10, -1]


def test_the_report_adds_up_every_cluster_and_the_log_says_so(caplog):
    """Person 3 has two looks (axes 0 and 1); an added pair near each joins person 3, and each pair brings in one
    unassigned face OUT had: 4 faces joined one person, 2 regrouped."""
    rng = np.random.default_rng(9)
    old = [_point(rng, 0) for _ in range(2)] + [_point(rng, 1) for _ in range(2)] + [_point(rng, 0), _point(rng, 1)]
    fixed = [3, 3, 3, 3, -1, -1]
    new = [_point(rng, 0) for _ in range(2)] + [_point(rng, 1) for _ in range(2)]
    with caplog.at_level(logging.INFO, logger="person_cluster.clustering.incremental"):
        labels, _, next_free, report = _run(old + new, fixed + [-1] * 4, [False] * 6 + [True] * 4)
    assert labels.tolist() == [3] * 10 and next_free == 10
    assert report.joined == {3: 6} and report.regrouped == 2 and report.new_people == 0
    assert report.new_faces == 4
    assert "add: 4 new faces; 6 joined 1 people already in OUT, 0 new people; 2 faces unassigned before now " \
           "belong to someone" in caplog.messages


def test_the_log_line_counts_new_people(caplog):
    rng = np.random.default_rng(0)
    old = [_point(rng, 0) for _ in range(4)] + [_point(rng, 1) for _ in range(4)] + [_point(rng, 2), _point(rng, 0)]
    fixed = [3] * 4 + [7] * 4 + [-1, -2]
    new = [_point(rng, 0) for _ in range(3)] + [_point(rng, 5) for _ in range(3)] + [_point(rng, 6)] + \
        [_point(rng, 2) for _ in range(2)]
    with caplog.at_level(logging.INFO, logger="person_cluster.clustering.incremental"):
        _run(old + new, fixed + [-1] * len(new), [False] * 10 + [True] * 9)
    assert caplog.messages[-1] == ("add: 9 new faces; 3 joined 1 people already in OUT, 2 new people; 1 faces "
                                   "unassigned before now belong to someone")


def test_unassigned_faces_far_from_every_added_one_stay_out_of_the_clustering():
    """Two unassigned faces OUT had, close to each other but far from the added ones: the add does not make
    them a person (that is a full clustering's decision), and one near the added pair joins it."""
    rng = np.random.default_rng(10)
    old = [_point(rng, 0) for _ in range(3)] + [_point(rng, 6), _point(rng, 6), _point(rng, 4)]
    new = [_point(rng, 4) for _ in range(2)]
    labels, _, _, report = _run(old + new, [3, 3, 3, -1, -1, -1, -1, -1], [False] * 6 + [True] * 2)
    assert labels.tolist() == [3, 3, 3, -1, -1, 10, 10, 10] and report.regrouped == 1


def test_a_cluster_joins_a_person_only_strictly_nearer_than_the_threshold_and_by_at_least_the_margin():
    """_clear_match on one added item and two people of one item each, with the threshold and the margin set to
    the very distances."""
    from person_cluster.clustering.incremental import _clear_match
    from person_cluster.fusion import Fusion

    rng = np.random.default_rng(11)
    x = np.array([_point(rng, 0, spread=0.0), _point(rng, 0, spread=0.0, toward=1, angle=_angle(0.1)),
                  _point(rng, 0, spread=0.0, toward=2, angle=_angle(0.3))])
    fusion = Fusion(x, np.zeros((3, 0)), np.zeros(3, bool))
    d1, d2 = fusion.cross(np.array([0]), np.array([1, 2]))[0]
    item_label = np.array([-3, 3, 7])
    members, people = np.array([0]), np.array([1, 2])
    assert _clear_match(fusion, members, people, item_label, d1, 0.0) is None  # at the threshold: not nearer
    assert _clear_match(fusion, members, people, item_label, 0.36, d2 - d1) == (3, d1)  # exactly the margin: enough
    assert _clear_match(fusion, members, people, item_label, 0.36, np.nextafter(d2 - d1, 1)) is None


def test_of_people_equally_near_the_smallest_number_is_taken_when_no_margin_is_asked():
    """53 people, each one item at one of three distances from the cluster, many at the nearest: with margin 0,
    the nearest person with the smallest number, whatever the order an unstable sort would give."""
    from person_cluster.clustering.incremental import _clear_match
    from person_cluster.fusion import Fusion

    rng = np.random.default_rng(12)
    level = [1, 1, 0, 0, 0, 0, 0, 0, 2, 1, 2, 1, 1, 2, 2, 1, 1, 1, 2, 0, 2, 2, 0, 1, 2, 1, 0, 2, 2, 2, 0, 0, 2, 0, 1,
             0, 0, 1, 1, 1, 0, 0, 0, 0, 2, 1, 1, 0, 1, 2, 1, 1, 2]
    ring = [_point(rng, 0, spread=0.0, toward=1, angle=_angle(c)) for c in (0.1, 0.5, 0.9)]
    x = np.array([_point(rng, 0, spread=0.0)] + [ring[v] for v in level])
    fusion = Fusion(x, np.zeros((len(x), 0)), np.zeros(len(x), bool))
    item_label = np.concatenate([[-3], np.arange(len(level))])
    assert _clear_match(fusion, np.array([0]), np.arange(1, len(x)), item_label, 0.36, 0.0)[0] == 2


def test_person_zero_is_a_person_like_any_other():
    rng = np.random.default_rng(13)
    old = [_point(rng, 0) for _ in range(3)] + [_point(rng, 1) for _ in range(3)]
    new = [_point(rng, 0) for _ in range(2)]
    labels, _, _, report = _run(old + new, [0, 0, 0, 1, 1, 1, -1, -1], [False] * 6 + [True] * 2)
    assert labels[6:].tolist() == [0, 0] and report.joined == {0: 2}


def test_with_the_gate_on_a_cluster_is_matched_to_peoples_good_faces_only():
    """Person 7's poor (tiny) face lies nearest the added pair, person 3's good faces a little further: the pair
    joins person 3. And a person seen only in poor faces is still matched by them."""
    rng = np.random.default_rng(14)
    new = [_point(rng, 0, spread=0.0) for _ in range(2)]
    p3 = [_point(rng, 0, spread=0.0, toward=1, angle=_angle(0.2)) for _ in range(2)]
    p7 = [_point(rng, 0, spread=0.0, toward=2, angle=_angle(0.05)), _point(rng, 5, spread=0.0)]
    faces = p3 + p7 + new
    table = dataclasses.replace(_clothed(faces, np.zeros((6, 0)), sizes=[60, 60, 12, 60, 60, 60]),
                                has_cloth=np.zeros(6, bool))
    config = _config(quality={"enabled": True})
    fixed, added = np.array([3, 3, 7, 7, -1, -1]), np.array([False] * 4 + [True] * 2)
    labels, _, _, _ = cluster_added(table, config, fixed, added, 10, MARGIN)
    assert labels[4:].tolist() == [3, 3]
    only_poor = dataclasses.replace(_clothed(p3 + new, np.zeros((4, 0)), sizes=[12, 12, 60, 60]),
                                    has_cloth=np.zeros(4, bool))
    labels, _, _, _ = cluster_added(only_poor, config, np.array([3, 3, -1, -1]), np.array([False] * 2 + [True] * 2),
                                    10, MARGIN)
    assert labels.tolist() == [3, 3, 3, 3]


def test_two_added_faces_of_one_frame_are_kept_apart_by_hac_too():
    """Average-linkage HAC over the pool: the pair of one frame is forbidden (FAR apart), not a NaN that HAC
    would refuse; the third face joins the nearer of them."""
    rng = np.random.default_rng(15)
    old = [_point(rng, 0, spread=0.0) for _ in range(3)]
    new = [_point(rng, 4, spread=0.0), _point(rng, 4, spread=0.0, toward=5, angle=_angle(0.1)),
           _point(rng, 4, spread=0.0, toward=5, angle=_angle(0.15))]
    config = _config(clustering={"algorithm": "hac"})
    table = _table(old + new, sources=["p0.jpg", "p1.jpg", "p2.jpg", "v.mp4", "v.mp4", "w.jpg"],
                   frames=[None, None, None, 5, 5, None])
    labels, _, _, _ = cluster_added(table, config, np.array([3, 3, 3, -1, -1, -1]),
                                    np.array([False] * 3 + [True] * 3), 10, MARGIN)
    assert labels.tolist() == [3, 3, 3, -1, 10, 10]


def test_an_added_face_that_continues_a_track_of_outs_faces_is_still_clustered_as_added():
    """The same video with more frames: the added frame's face follows person 3's track, and joins person 3 as an
    added face (counted as such), not as part of the old track."""
    rng = np.random.default_rng(16)
    faces = [_point(rng, 0) for _ in range(4)]
    table = _table(faces, sources=["v.mp4"] * 4, frames=[0, 1, 2, 3])
    table.bboxes[:] = table.bboxes[0]  # on one spot: one track
    labels, tracks, _, report = cluster_added(table, CONFIG, np.array([3, 3, 3, -1]),
                                              np.array([False] * 3 + [True]), 10, MARGIN)
    assert len(set(tracks.ids.tolist())) == 1
    assert labels.tolist() == [3, 3, 3, 3] and report.joined == {3: 1}


def test_an_added_track_is_one_item_whatever_fixed_says_of_its_faces():
    """fixed is read only for the faces OUT had: an added track whose two faces are 0.4 apart (one track, but too
    far apart to be clustered as two items) stays one new person."""
    rng = np.random.default_rng(17)
    old = [_point(rng, 0, spread=0.0) for _ in range(3)]
    new = [_point(rng, 4, spread=0.0), _point(rng, 4, spread=0.0, toward=5, angle=_angle(0.4))]
    table = _table(old + new, sources=["p0.jpg", "p1.jpg", "p2.jpg", "v.mp4", "v.mp4"], frames=[None, None, None, 0, 1])
    table.bboxes[4] = table.bboxes[3]  # on one spot
    labels, tracks, _, _ = cluster_added(table, CONFIG, np.array([3, 3, 3, 7, -1]),
                                         np.array([False] * 3 + [True] * 2), 10, MARGIN)
    assert tracks.ids[3] == tracks.ids[4] and labels.tolist() == [3, 3, 3, 10, 10]


def test_an_unassigned_face_exactly_at_the_threshold_from_every_added_one_stays_out():
    """Unassigned faces L (0.18 from the added face N) and F (0.18 from L, exactly distance_threshold from N):
    only those strictly nearer than the threshold to an added face join the clustering, so F stays unassigned
    although L, which joins, is near it."""
    from person_cluster.api import item_features
    from person_cluster.clustering.incremental import _nearest
    from person_cluster.tracking import Tracks

    rng = np.random.default_rng(18)
    old = [_point(rng, 0, spread=0.0) for _ in range(3)]
    faces = old + [_point(rng, 4, spread=0.0, toward=5, angle=_angle(0.36)),  # F
                   _point(rng, 4, spread=0.0, toward=5, angle=_angle(0.18)),  # L
                   _point(rng, 4, spread=0.0)]  # N, added
    table = _table(faces)
    exact = float(_nearest(item_features(table, Tracks.singletons(6), CONFIG).fusion, np.array([3]), np.array([5]))[0])
    config = _config(clustering={"distance_threshold": exact})
    labels, _, _, report = cluster_added(table, config, np.array([3, 3, 3, -1, -1, -1]),
                                         np.array([False] * 5 + [True]), 10, MARGIN)
    assert labels.tolist() == [3, 3, 3, -1, 10, 10] and report.regrouped == 1


class _Apart:
    """A clusterer that leaves every item alone: what the clustering of a clip of small faces does to a person's
    pieces, so that the scene merge is what joins them."""

    def fit_predict(self, distances) -> np.ndarray:
        return np.arange(distances.n)


def _one_scene(faces, cloths, old: int, frames: list[int] | None = None) -> FaceTable:
    """``old`` photos (no clothing) then faces of one video, one shot, 100 s apart (each its own track), or on
    ``frames``."""
    n = len(faces)
    frames = [1000 * k for k in range(n - old)] if frames is None else frames
    table = _clothed(faces, cloths, sources=[f"p{k}.jpg" for k in range(old)] + ["v.mp4"] * (n - old),
                     frames=[None] * old + frames)
    return dataclasses.replace(table, has_cloth=np.array([False] * old + [True] * (n - old)))


def test_an_unnamed_piece_of_a_named_person_in_the_same_scene_and_clothes_takes_the_name(monkeypatch):
    """Person 3 at e0, person 7 at chord 0.6 from it. Added: a face at e0 (clearly 3) and one 0.3 from it but only
    0.02 nearer 3 than 7 (no clear match). In the same clothes their fused distance is 0.3 < 0.36: the second is
    3 as well. In other clothes (0.77) it is someone else than the scene's 3, so 3 is no rival on its second look,
    and it is 7 (0.32 < 0.36); with the scene merge off there is no second look, and alone it stays unassigned."""
    monkeypatch.setattr("person_cluster.clustering.incremental.make_clusterer", lambda cc: _Apart())
    e = np.eye(DIM)
    p7 = _toward(e[0], e[1], 0.6)
    # The ambiguous face: 0.3 from e0 and 0.32 from p7, in the plane of e0, e1 and out of it along e2.
    x = np.linalg.solve(np.array([[1.0, 0.0], [p7[0], p7[1]]]), [1 - 0.3 ** 2 / 2, 1 - 0.32 ** 2 / 2])
    ambiguous = np.zeros(DIM)
    ambiguous[:2] = x
    ambiguous[2] = np.sqrt(1 - x @ x)
    faces = [e[0]] * 2 + [p7] * 2 + [e[0], ambiguous]
    fixed = np.array([3, 3, 7, 7, -1, -1])
    added = np.array([False] * 4 + [True] * 2)
    c = np.eye(4)
    for cloth, config, expected in (([c[0], c[0]], CONFIG, [3, 3]), ([c[0], c[1]], CONFIG, [3, 7]),
                                    ([c[0], c[0]], _config(postprocess={"scene_merge": False}), [3, -1])):
        table = _one_scene(faces, [c[3]] * 4 + cloth, old=4)
        labels, _, _, _ = cluster_added(table, config, fixed, added, 10, MARGIN)
        assert labels.tolist() == [3, 3, 7, 7, *expected]


def test_people_named_in_the_clip_never_join_however_alike(monkeypatch):
    """Persons 0, 7 and 9: 7 and 9 are each 0.3 from 0 (and 0.42 from each other); the clip has one face of each,
    in the same clothes (fused 0.3 < 0.36 from person 0's)."""
    monkeypatch.setattr("person_cluster.clustering.incremental.make_clusterer", lambda cc: _Apart())
    e = np.eye(DIM)
    p7, p9 = _toward(e[0], e[1], 0.3), _toward(e[0], e[2], 0.3)
    table = _one_scene([e[0], e[0], p7, p7, p9, p9, e[0], p7, p9], [np.eye(4)[0]] * 9, old=6)
    labels, _, _, report = cluster_added(table, CONFIG, np.array([0, 0, 7, 7, 9, 9, -1, -1, -1]),
                                         np.array([False] * 6 + [True] * 3), 10, MARGIN)
    assert labels.tolist() == [0, 0, 7, 7, 9, 9, 0, 7, 9] and report.joined == {0: 1, 7: 1, 9: 1}
    # Person 0's face last in the clip: the cannot-links hold whichever side of a pair person 0 is on.
    table = _one_scene([e[0], e[0], p7, p7, p9, p9, p7, p9, e[0]], [np.eye(4)[0]] * 9, old=6)
    labels, _, _, _ = cluster_added(table, CONFIG, np.array([0, 0, 7, 7, 9, 9, -1, -1, -1]),
                                    np.array([False] * 6 + [True] * 3), 10, MARGIN)
    assert labels.tolist() == [0, 0, 7, 7, 9, 9, 7, 9, 0]


def test_a_single_added_face_clearly_a_person_joins_them_after_one_set_aside(monkeypatch):
    """The clip's first face is alone and no one's (set aside: smaller than min_csize); its second is clearly
    person 0 and joins them, however small; without the scene merge, two clusters of one person add up."""
    monkeypatch.setattr("person_cluster.clustering.incremental.make_clusterer", lambda cc: _Apart())
    e = np.eye(DIM)
    c = np.eye(4)
    table = _one_scene([e[0], e[0], e[5], e[0]], [c[0], c[0], c[1], c[2]], old=2)
    labels, _, _, report = cluster_added(table, CONFIG, np.array([0, 0, -1, -1]),
                                         np.array([False, False, True, True]), 10, MARGIN)
    assert labels.tolist() == [0, 0, -1, 0] and report.joined == {0: 1}
    table = _one_scene([e[0], e[0], e[0], e[0]], [c[0], c[0], c[1], c[2]], old=2)
    config = _config(postprocess={"scene_merge": False})
    labels, _, _, report = cluster_added(table, config, np.array([0, 0, -1, -1]),
                                         np.array([False, False, True, True]), 10, MARGIN)
    assert labels.tolist() == [0, 0, 0, 0] and report.joined == {0: 2}


def test_new_pieces_of_one_person_in_a_scene_become_one_new_person(monkeypatch):
    """Two added faces 0.2 apart in the same clothes, far from everyone in OUT: one new person (10), not two
    single faces set aside as smaller than min_csize."""
    monkeypatch.setattr("person_cluster.clustering.incremental.make_clusterer", lambda cc: _Apart())
    e = np.eye(DIM)
    table = _one_scene([e[0], e[0], e[5], _toward(e[5], e[6], 0.2)], [np.eye(4)[0]] * 4, old=2)
    labels, _, next_free, report = cluster_added(table, CONFIG, np.array([3, 3, -1, -1]),
                                                 np.array([False, False, True, True]), 10, MARGIN)
    assert labels.tolist() == [3, 3, 10, 10] and next_free == 11 and report.new_people == 1


def test_pieces_in_two_videos_are_not_joined_by_the_scene_merge(monkeypatch):
    """Two added faces, identical in face and clothes, one in each of two videos: different scenes, so the merge
    leaves them apart (each alone, set aside); in one video they are one new person."""
    monkeypatch.setattr("person_cluster.clustering.incremental.make_clusterer", lambda cc: _Apart())
    e = np.eye(DIM)
    for second, expected in (("w.mp4", [-1, -1]), ("v.mp4", [10, 10])):
        table = _clothed([e[0], e[0], e[5], e[5]], [np.eye(4)[0]] * 4, sources=["p0.jpg", "p1.jpg", "v.mp4", second],
                         frames=[None, None, 0, 1000])
        table = dataclasses.replace(table, has_cloth=np.array([False, False, True, True]))
        labels, _, _, _ = cluster_added(table, CONFIG, np.array([3, 3, -1, -1]),
                                        np.array([False, False, True, True]), 10, MARGIN)
        assert labels.tolist() == [3, 3, *expected]


def _beyond(a: np.ndarray, b: np.ndarray, chord: float, further: float) -> np.ndarray:
    """The unit vector ``further`` beyond ``_toward(a, b, chord)``, on the same great circle away from ``a``."""
    return np.cos(_angle(chord) + _angle(further)) * a + np.sin(_angle(chord) + _angle(further)) * b


def test_of_two_pieces_matched_to_one_person_the_nearer_keeps_the_name_where_they_share_a_frame(monkeypatch):
    """Person 0 at e0, person 7 far away. Added in one scene: a face at e0 and one 0.2 from it (each its own
    cluster, both clearly person 0). In other clothes (fused 0.73 apart: the merge leaves them apart) both are
    still person 0, whichever comes first: a scene's clothing never takes a clear match away (a coat held over a
    blouse in one shot). Where the far one's group holds a face of the near one's frame (a face 0.3 beyond it in
    its clothes, matched to no one, that the merge joins to it), that group is someone else: a new person (10),
    whichever comes first."""
    monkeypatch.setattr("person_cluster.clustering.incremental.make_clusterer", lambda cc: _Apart())
    e, c = np.eye(DIM), np.eye(4)
    near, off = e[0], _toward(e[0], e[1], 0.2)
    company = _beyond(e[0], e[1], 0.2, 0.3)  # 0.5 from e0: no one's
    fixed, added = np.array([0, 0, 7, 7, -1, -1]), np.array([False] * 4 + [True] * 2)
    for faces, cloths in (([near, off], [c[0], c[1]]), ([off, near], [c[0], c[1]]), ([off, near], [c[0], c[0]])):
        table = _one_scene([e[0], e[0], e[5], e[5], *faces], [c[3]] * 4 + cloths, old=4)
        labels, _, _, _ = cluster_added(table, CONFIG, fixed, added, 10, MARGIN)
        assert labels.tolist() == [0, 0, 7, 7, 0, 0]
    fixed, added = np.array([0, 0, 7, 7, -1, -1, -1]), np.array([False] * 4 + [True] * 3)
    for faces, frames, expected in (([near, off, company], [0, 1000, 0], [0, 10, 10]),
                                    ([off, company, near], [0, 1000, 1000], [10, 10, 0]),
                                    ([near, off, company], [0, 1000, 2000], [0, 0, 0])):
        cloths = [c[0] if f is near else c[1] for f in faces]
        table = _one_scene([e[0], e[0], e[5], e[5], *faces], [c[3]] * 4 + cloths, old=4, frames=frames)
        labels, _, _, _ = cluster_added(table, CONFIG, fixed, added, 10, MARGIN)
        assert labels.tolist() == [0, 0, 7, 7, *expected]


def _between(p3: np.ndarray, p7: np.ndarray, d3: float, d7: float) -> np.ndarray:
    """A unit vector ``d3`` from unit ``p3`` and ``d7`` from unit ``p7`` (both in the plane of e0 and e1), out of
    that plane along e2."""
    x = np.linalg.solve(np.array([p3[:2], p7[:2]]), [1 - d3 ** 2 / 2, 1 - d7 ** 2 / 2])
    v = np.zeros(DIM)
    v[:2], v[2] = x, np.sqrt(1 - x @ x)
    return v


def test_a_piece_about_as_near_two_people_is_the_one_not_elsewhere_in_its_scene(monkeypatch):
    """Persons 3 and 7 at chord 0.3 from each other. Added in one scene: a face at person 7's (clearly 7), and
    one 0.25 from person 3 and 0.27 from person 7 in other clothes (no clear match: the margin is 0.05). 7 is
    another group of the scene, so on its second look 7 is no rival and it is 3. Not if 3 is 0.37 away (beyond
    the threshold); and as photos (no scene) there is no second look: it stays unassigned."""
    monkeypatch.setattr("person_cluster.clustering.incremental.make_clusterer", lambda cc: _Apart())
    e, c = np.eye(DIM), np.eye(4)
    p3, p7 = e[0], _toward(e[0], e[1], 0.3)
    fixed, added = np.array([3, 3, 7, 7, -1, -1]), np.array([False] * 4 + [True] * 2)
    for piece, expected in ((_between(p3, p7, 0.25, 0.27), 3), (_between(p3, p7, 0.37, 0.38), -1)):
        table = _one_scene([p3, p3, p7, p7, p7, piece], [c[3]] * 4 + [c[0], c[1]], old=4)
        labels, _, _, _ = cluster_added(table, CONFIG, fixed, added, 10, MARGIN)
        assert labels.tolist() == [3, 3, 7, 7, 7, expected]
    table = _table([p3, p3, p7, p7, p7, _between(p3, p7, 0.25, 0.27)])
    labels, _, _, _ = cluster_added(table, CONFIG, fixed, added, 10, MARGIN)
    assert labels.tolist() == [3, 3, 7, 7, 7, -1]


def test_people_who_share_a_name_are_one_person_to_the_match():
    """Persons 3 and 5 at chord 0.3 from each other, person 7 far from both. An added photo face 0.25 from 3 and
    0.27 from 5: about as near two people, it joins neither; if 3 and 5 carry one name (a user named two pieces of
    Rachel "Rachel"), they are no rivals, and it joins the nearer (3); with two names, neither again."""
    e = np.eye(DIM)
    p3, p5 = e[0], _toward(e[0], e[1], 0.3)
    faces = [p3, p3, p5, p5, e[7], e[7], _between(p3, p5, 0.25, 0.27)]
    fixed, added = np.array([3, 3, 5, 5, 7, 7, -1]), np.array([False] * 6 + [True])
    for names, expected in ((None, -1), ({3: "Rachel", 5: "Rachel", 7: "Joey"}, 3), ({5: "Rachel", 3: "Rachel"}, 3),
                            ({3: "Rachel", 5: "Monica"}, -1)):
        labels, _, _, _ = cluster_added(_table(faces), _config(postprocess={"min_csize": 1}), fixed, added, 10,
                                        MARGIN, names)
        assert labels[-1] == (expected if expected >= 0 else 10)  # alone and no one's: a new person of one face
        assert labels[:6].tolist() == fixed[:6].tolist()


def test_two_people_who_share_a_name_are_one_person_in_a_frame(monkeypatch):
    """Persons 3 and 5 far apart, both named "Rachel". Added in one scene, in other clothes: a face at 3's and one
    0.05 from 5's, whose group holds a face of the first one's frame (0.3 beyond it, no one's). As two people each
    keeps theirs; as one (a person is not seen twice in a frame) only the nearer (the exact one) keeps the name,
    the other group is a new person (10), whichever of the two people the exact one is. If 3 and 5 are 0.2 apart, and the
    faces (one 0.1 from 5, then one at 3) wear the same clothes, the merge joins them: one person, that of the
    nearer match (3)."""
    monkeypatch.setattr("person_cluster.clustering.incremental.make_clusterer", lambda cc: _Apart())
    e, c = np.eye(DIM), np.eye(4)
    fixed, added = np.array([3, 3, 5, 5, -1, -1, -1]), np.array([False] * 4 + [True] * 3)
    same, other = {3: "Rachel", 5: "Rachel"}, {3: "Rachel", 5: "Monica"}
    for faces, names, expected in (([e[0], _toward(e[5], e[6], 0.05), _beyond(e[5], e[6], 0.05, 0.3)], other,
                                    [3, 5, 5]),
                                   ([e[0], _toward(e[5], e[6], 0.05), _beyond(e[5], e[6], 0.05, 0.3)], same,
                                    [3, 10, 10]),
                                   ([e[5], _toward(e[0], e[6], 0.05), _beyond(e[0], e[6], 0.05, 0.3)], same,
                                    [5, 10, 10])):
        table = _one_scene([e[0]] * 2 + [e[5]] * 2 + faces, [c[3]] * 4 + [c[0], c[1], c[1]], old=4,
                           frames=[0, 1000, 0])
        labels, _, _, _ = cluster_added(table, CONFIG, fixed, added, 10, MARGIN, names)
        assert labels.tolist() == [3, 3, 5, 5, *expected]
    p5 = _toward(e[0], e[1], 0.2)
    table = _one_scene([e[0]] * 2 + [p5] * 2 + [_toward(p5, e[2], 0.1), e[0]], [c[3]] * 4 + [c[0], c[0]], old=4)
    labels, _, _, _ = cluster_added(table, CONFIG, fixed[:6], added[:6], 10, MARGIN, same)
    assert labels.tolist() == [3, 3, 5, 5, 3, 3]


def _in_videos(old: list[np.ndarray], added: list[tuple[str, np.ndarray, np.ndarray]]) -> FaceTable:
    """``old`` photos (no clothing), then ``added`` (video, face, clothing): each video one scene, its faces 100 s
    apart (each its own track)."""
    n = len(old) + len(added)
    table = _clothed(old + [f for _, f, _ in added], [np.zeros(4)] * len(old) + [c for _, _, c in added],
                     sources=[f"p{k}.jpg" for k in range(len(old))] + [s for s, _, _ in added],
                     frames=[None] * len(old) + [1000 * k for k in range(len(added))])
    return dataclasses.replace(table, has_cloth=np.arange(n) >= len(old))


def test_two_faces_of_one_photo_never_join_one_person_whichever_is_matched_first():
    """Persons 3 and 7; one added photo with two faces, at person 3's and 0.1 from it: the first matched is 3, the
    other may not be (same photo) and is no one else: unassigned; with the scene merge off too."""
    e = np.eye(DIM)
    table = _table([e[0], e[0], e[5], e[5], e[0], _toward(e[0], e[1], 0.1)],
                   sources=["p0.jpg", "p1.jpg", "p2.jpg", "p3.jpg", "x.jpg", "x.jpg"])
    for config in (CONFIG, _config(postprocess={"scene_merge": False})):
        labels, _, _, _ = cluster_added(table, config, np.array([3, 3, 7, 7, -1, -1]),
                                        np.array([False] * 4 + [True] * 2), 10, MARGIN)
        assert labels[:4].tolist() == [3, 3, 7, 7] and sorted(labels[4:].tolist()) == [-1, 3]
    # Persons 0 and 1, one of each in one photo: two people, each keeps theirs (photos have no second look).
    table = _table([e[0], e[0], e[5], e[5], e[0], e[5]], sources=["p0.jpg", "p1.jpg", "p2.jpg", "p3.jpg", "x.jpg",
                                                                  "x.jpg"])
    labels, _, _, _ = cluster_added(table, _config(postprocess={"min_csize": 1}), np.array([0, 0, 1, 1, -1, -1]),
                                    np.array([False] * 4 + [True] * 2), 10, MARGIN)
    assert labels.tolist() == [0, 0, 1, 1, 0, 1]


def test_one_group_per_person_and_frame_with_people_zero_and_one_and_two_videos(monkeypatch):
    """Persons 0 (e0), 1 (e5) and 7 (far). In v.mp4, each in its own clothes: a face at 0's and one at 1's (both on
    frame 0: two people, each keeps theirs), and two groups of two: one 0.1 from 1's with a face 0.3 beyond it in
    frame 0, one 0.1 from 0's with a face 0.3 beyond it in frame 0. Each of those shares a frame with the nearer
    match of its person: both are new people. In w.mp4 a face 0.05 from 0's on frame 0: another video's frame, so
    it keeps 0 too, whatever the order of the distances (0, 0.05, 0.1)."""
    monkeypatch.setattr("person_cluster.clustering.incremental.make_clusterer", lambda cc: _Apart())
    e, c = np.eye(DIM), np.eye(4)
    added = [("v.mp4", 0, e[0], c[0]), ("v.mp4", 0, e[5], c[1]), ("v.mp4", 2000, _toward(e[5], e[6], 0.1), c[2]),
             ("v.mp4", 0, _beyond(e[5], e[6], 0.1, 0.3), c[2]), ("v.mp4", 3000, _toward(e[0], e[2], 0.1), c[3]),
             ("v.mp4", 0, _beyond(e[0], e[2], 0.1, 0.3), c[3]), ("w.mp4", 0, _toward(e[0], e[3], 0.05), c[0])]
    old = [e[0], e[0], e[5], e[5], e[9], e[9]]
    table = _clothed(old + [f for _, _, f, _ in added], [np.zeros(4)] * len(old) + [k for _, _, _, k in added],
                     sources=[f"p{k}.jpg" for k in range(len(old))] + [s for s, _, _, _ in added],
                     frames=[None] * len(old) + [f for _, f, _, _ in added])
    table = dataclasses.replace(table, has_cloth=np.arange(len(table)) >= len(old))
    labels, _, _, _ = cluster_added(table, CONFIG, np.array([0, 0, 1, 1, 7, 7] + [-1] * 7),
                                    np.array([False] * 6 + [True] * 7), 10, MARGIN)
    assert labels[:8].tolist() == [0, 0, 1, 1, 7, 7, 0, 1] and labels[12] == 0
    assert labels[8] == labels[9] >= 10 and labels[10] == labels[11] >= 10 and labels[8] != labels[10]


def test_the_second_look_largest_group_first_only_where_someone_is_taken(monkeypatch):
    """Persons 0 (e0) and 3 (0.3 from it), 9 far. In v.mp4: four faces at 0's (clearly 0, and they stay 0), then
    a group of two (same clothes) and a single face, each 0.25 from 0 and 0.27 from 3 (no clear match). 0 is taken
    in v, so on the second look the larger group is 3, and the single face, with 0 and 3 both taken, is no one. In
    w.mp4 a group of three as ambiguous: nothing is taken in w, so no second look: a new person (10)."""
    monkeypatch.setattr("person_cluster.clustering.incremental.make_clusterer", lambda cc: _Apart())
    e, c = np.eye(DIM), np.eye(4)
    p0, p3 = e[0], _toward(e[0], e[1], 0.3)
    piece = _between(p0, p3, 0.25, 0.27)
    added = ([("w.mp4", piece, c[0])] * 3 + [("v.mp4", p0, c[0])] * 4 + [("v.mp4", piece, c[2])] * 2
             + [("v.mp4", piece, c[1])])
    table = _in_videos([p0, p0, p3, p3, e[9], e[9]], added)
    labels, _, _, _ = cluster_added(table, CONFIG, np.array([0, 0, 3, 3, 9, 9] + [-1] * 10),
                                    np.array([False] * 6 + [True] * 10), 10, MARGIN)
    assert labels.tolist() == [0, 0, 3, 3, 9, 9, 10, 10, 10, 0, 0, 0, 0, 3, 3, -1]


def test_a_person_with_one_group_does_not_end_the_check_of_the_next(monkeypatch):
    """Persons 0 (e0) and 1 (e5). In one scene, each in its own clothes: a face at 0's, one at 1's and a group 0.1
    from 1's with a face 0.3 beyond it in the frame of 1's: person 0 has one group, person 1 two, of which the
    nearer keeps the person; the other is a new person."""
    monkeypatch.setattr("person_cluster.clustering.incremental.make_clusterer", lambda cc: _Apart())
    e, c = np.eye(DIM), np.eye(4)
    faces = [e[0], e[5], _toward(e[5], e[6], 0.1), _beyond(e[5], e[6], 0.1, 0.3)]
    table = _one_scene([e[0], e[0], e[5], e[5], *faces], [np.zeros(4)] * 4 + [c[0], c[1], c[2], c[2]], old=4,
                       frames=[0, 1000, 2000, 1000])
    labels, _, _, _ = cluster_added(table, CONFIG, np.array([0, 0, 1, 1, -1, -1, -1, -1]),
                                    np.array([False] * 4 + [True] * 4), 10, MARGIN)
    assert labels.tolist() == [0, 0, 1, 1, 0, 1, 10, 10]


def test_a_group_s_nearest_match_decides_which_of_two_groups_sharing_a_frame_keeps_the_person(monkeypatch):
    """Person 0 (e0), 7 far. In one scene: a group in one set of clothes of a face at 0's (frame 0) and one 0.3
    from it (both person 0: nearest 0, farthest 0.3), and in other clothes a face 0.1 from 0's with a face 0.3
    beyond it on frame 0. The first group's nearest match (0) is nearer than the second's (0.1): it keeps the
    person, the second is a new person."""
    monkeypatch.setattr("person_cluster.clustering.incremental.make_clusterer", lambda cc: _Apart())
    e, c = np.eye(DIM), np.eye(4)
    faces = [e[0], _toward(e[0], e[1], 0.3), _toward(e[0], e[2], 0.1), _beyond(e[0], e[2], 0.1, 0.3)]
    table = _one_scene([e[0], e[0], e[5], e[5], *faces], [np.zeros(4)] * 4 + [c[0], c[0], c[1], c[1]], old=4,
                       frames=[0, 1000, 2000, 0])
    labels, _, _, _ = cluster_added(table, CONFIG, np.array([0, 0, 7, 7, -1, -1, -1, -1]),
                                    np.array([False] * 4 + [True] * 4), 10, MARGIN)
    assert labels.tolist() == [0, 0, 7, 7, 0, 0, 10, 10]


def test_an_add_learns_the_metric_from_the_videos_of_the_clusters_it_merges_only(monkeypatch):
    """OUT's person 3 is in old.mp4; the add brings a face in each of v.mp4 and w.mp4. The scene merge's metric is
    learnt from the added videos alone: a library's other videos (thousands of faces) neither change it nor cost
    the add their time."""
    from person_cluster import metric

    monkeypatch.setattr("person_cluster.clustering.incremental.make_clusterer", lambda cc: _Apart())
    asked = []
    learn = metric.video_metric

    def spy(table, tracks, cannot, dims, videos=None):
        asked.append(videos)
        return learn(table, tracks, cannot, dims, videos)

    monkeypatch.setattr(metric, "video_metric", spy)
    e = np.eye(DIM)
    table = _clothed([e[0], e[0], e[5], e[7]], [np.eye(4)[0]] * 4, sources=["old.mp4", "old.mp4", "v.mp4", "w.mp4"],
                     frames=[0, 1000, 0, 0])
    labels, _, _, _ = cluster_added(table, CONFIG, np.array([3, 3, -1, -1]), np.array([False, False, True, True]),
                                    10, MARGIN)
    assert labels.tolist() == [3, 3, -1, -1] and asked == [{"v.mp4", "w.mp4"}]
