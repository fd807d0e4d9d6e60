"""What an `add` does with the added faces (clustering/incremental.py), on tables made by hand: who joins whom,
who becomes a new person, who stays unassigned, and what never happens (a wrong name, two faces of one frame in one
person, an existing face moved)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from person_cluster.clustering.incremental import cluster_added
from person_cluster.config import Config
from person_cluster.records import FaceTable

CONFIG = Config()  # distance_threshold 0.36, min_csize 2; faces without clothing: the distance is the face's
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


@pytest.mark.parametrize("chord, joins", [(0.30, True), (0.34, True), (0.38, False), (0.45, False)])
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
