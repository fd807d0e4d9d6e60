"""Face tracks: linked only within one shot of one video, never two faces of a frame, only when close in looks and
on screen; and what a track's faces give the clustering (means, spans)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from person_cluster.config import TrackingConfig
from person_cluster.records import FaceTable
from person_cluster.tracking import Tracks, link_tracks

seeds = st.integers(0, 2**32 - 1)
E = np.eye(128)


def _table(rows, cloth=None) -> FaceTable:
    """rows: (source, frame, time, box, descriptor, shot)."""
    n = len(rows)
    sources, frames, times, boxes, face, shots = zip(*rows) if rows else ([], [], [], [], [], [])
    return FaceTable(ids=np.arange(n), sources=list(sources), frames=list(frames), times=list(times),
                     bboxes=np.asarray(boxes, np.int64).reshape(n, 4),
                     face=np.asarray(face, np.float32).reshape(n, 128),
                     cloth=np.zeros((n, 0), np.float32) if cloth is None else np.asarray(cloth, np.float32),
                     has_cloth=np.zeros(n, bool) if cloth is None else np.ones(n, bool), shots=np.asarray(shots, np.int64))


def _pair(t1: float, box1, face1=E[0], box0=(100, 100, 180, 180), t0: float = 0.0, config=None) -> bool:
    """Whether a face at t1 is linked to one at t0 (same video, same shot)."""
    table = _table([("v.mp4", 0, t0, box0, E[0], 0), ("v.mp4", 6, t1, box1, face1, 0)])
    ids = link_tracks(table, config or TrackingConfig()).ids
    return ids[0] == ids[1]


def test_a_track_stays_open_for_max_gap_sec_after_its_last_face():
    assert _pair(1.5, (100, 100, 180, 180))  # exactly the gap: still open
    assert not _pair(1.5001, (100, 100, 180, 180))
    assert _pair(0.2, (100, 100, 180, 180), config=TrackingConfig(max_gap_sec=0.2))
    assert not _pair(0.3, (100, 100, 180, 180), config=TrackingConfig(max_gap_sec=0.2))


def test_a_face_joins_a_track_only_if_it_looks_alike_within_max_face_distance():
    near = np.cos(0.3) * E[0] + np.sin(0.3) * E[1]  # distance 2 sin(0.15) = 0.2989 from E[0]
    assert _pair(0.2, (100, 100, 180, 180), near, config=TrackingConfig(max_face_distance=0.299))
    assert not _pair(0.2, (100, 100, 180, 180), near, config=TrackingConfig(max_face_distance=0.298))
    assert not _pair(0.2, (100, 100, 180, 180), E[1])  # sqrt(2) apart: another person, where the other was
    assert _pair(0.2, (100, 100, 180, 180), 5 * E[0])  # descriptors are compared normalised


def test_a_face_joins_a_track_only_if_it_moved_at_most_max_shift_box_sizes_and_kept_its_size():
    assert _pair(0.2, (180, 100, 260, 180))  # moved by one box size (80 px): at the limit
    assert not _pair(0.2, (181, 100, 261, 180))
    assert _pair(0.2, (140, 140, 220, 220), config=TrackingConfig(max_shift=0.71))  # diagonal: 56.6 px = 0.707
    assert not _pair(0.2, (140, 140, 220, 220), config=TrackingConfig(max_shift=0.70))
    assert not _pair(0.2, (90, 100, 170, 180), config=TrackingConfig(max_shift=0.1))
    # The size in the box's larger side: twice as large or half as large is another face.
    assert _pair(0.2, (100, 100, 259, 180), config=TrackingConfig(max_shift=9))  # 159 / 80 < 2
    assert not _pair(0.2, (100, 100, 260, 180), config=TrackingConfig(max_shift=9))  # 160 / 80 = 2
    assert _pair(0.2, (100, 100, 141, 141), config=TrackingConfig(max_shift=9))  # 41 / 80 > 0.5
    assert not _pair(0.2, (100, 100, 140, 140), config=TrackingConfig(max_shift=9))  # 40 / 80 = 0.5


def test_a_track_follows_its_last_face_not_its_first():
    rows = [("v.mp4", 6 * k, 0.2 * k, (100 + 60 * k, 100, 180 + 60 * k, 180), E[0], 0) for k in range(5)]
    assert link_tracks(_table(rows), TrackingConfig()).ids.tolist() == [0] * 5  # 240 px in all, 60 px a step
    gap = [("v.mp4", 0, 0.0, (0, 0, 80, 80), E[0], 0), ("v.mp4", 6, 1.0, (0, 0, 80, 80), E[0], 0),
           ("v.mp4", 12, 2.0, (0, 0, 80, 80), E[0], 0)]  # 2 s after the first, 1 s after the last: still open
    assert link_tracks(_table(gap), TrackingConfig()).ids.tolist() == [0, 0, 0]


def test_times_unknown_never_close_a_track():
    rows = [("v.mp4", 0, None, (0, 0, 80, 80), E[0], 0), ("v.mp4", 600, None, (0, 0, 80, 80), E[0], 0),
            ("w.mp4", 0, 0.0, (0, 0, 80, 80), E[0], 0), ("w.mp4", 6, None, (0, 0, 80, 80), E[0], 0)]
    assert link_tracks(_table(rows), TrackingConfig()).ids.tolist() == [0, 0, 1, 1]


def test_photos_and_the_switch_off_give_one_face_tracks():
    rows = [("p.jpg", None, None, (0, 0, 80, 80), E[0], -1), ("p.jpg", None, None, (90, 0, 170, 80), E[0], -1),
            ("q.jpg", None, None, (0, 0, 80, 80), E[0], -1), ("v.mp4", 0, 0.0, (0, 0, 80, 80), E[0], 0),
            ("v.mp4", 6, 0.2, (0, 0, 80, 80), E[0], 0)]
    assert link_tracks(_table(rows), TrackingConfig()).ids.tolist() == [0, 1, 2, 3, 3]
    assert link_tracks(_table(rows), TrackingConfig(enabled=False)).ids.tolist() == [0, 1, 2, 3, 4]
    assert link_tracks(_table([]), TrackingConfig()).ids.tolist() == []


def test_two_faces_of_a_frame_are_assigned_to_the_tracks_they_are_closest_to():
    a, b = E[0], np.cos(0.2) * E[0] + np.sin(0.2) * E[1]  # 0.2 apart: both within the gate of either track
    rows = [("v.mp4", 0, 0.0, (100, 100, 180, 180), a, 0), ("v.mp4", 0, 0.0, (150, 100, 230, 180), b, 0),
            ("v.mp4", 6, 0.2, (150, 100, 230, 180), b, 0), ("v.mp4", 6, 0.2, (100, 100, 180, 180), a, 0),
            ("v.mp4", 12, 0.4, (120, 100, 200, 180), a, 0)]
    assert link_tracks(_table(rows), TrackingConfig()).ids.tolist() == [0, 1, 1, 0, 0]


@st.composite
def videos(draw):
    rng = np.random.default_rng(draw(seeds))
    n = draw(st.integers(1, 30))
    people = rng.normal(size=(3, 128))
    rows = []
    for _ in range(n):
        source = str(rng.choice(["a.mp4", "b.mp4", "p.jpg"]))
        frame = None if source == "p.jpg" else int(rng.integers(0, 6)) * 3
        x = int(rng.integers(0, 300))
        rows.append((source, frame, None if frame is None else frame / 10, (x, 50, x + 80, 130),
                     people[rng.integers(0, 3)] + rng.normal(scale=0.05, size=128),
                     -1 if frame is None else int(frame >= 9 and rng.random() < 0.7)))
    rows.sort(key=lambda r: (r[0], -1 if r[1] is None else r[1], r[3]))
    return rows


@settings(max_examples=150)
@given(videos(), st.sampled_from([0.5, 2.0]), st.sampled_from([1.0, 5.0]))
def test_a_track_never_holds_two_faces_of_a_frame_nor_crosses_a_shot_a_video_or_a_photo(rows, distance, shift):
    table = _table(rows)
    ids = link_tracks(table, TrackingConfig(max_face_distance=distance, max_shift=shift)).ids
    assert ids.tolist() == Tracks.by_first_face(ids).ids.tolist()  # numbered 0.. by first face
    for members in Tracks(ids).members():
        places = [(rows[m][0], rows[m][1]) for m in members]
        assert len(set(places)) == len(places)  # one face per frame (and a photo's faces: one each)
        assert len({(rows[m][0], rows[m][5]) for m in members}) == 1  # one video, one shot
        assert all(rows[m][1] is not None for m in members) or len(members) == 1


# -- Tracks ---------------------------------------------------------------------------------------------------
def test_any_grouping_is_renumbered_by_first_face():
    t = Tracks.by_first_face(np.array([7, 3, 7, 9, 3, 1]))
    assert t.ids.tolist() == [0, 1, 0, 2, 1, 3] and t.count == 4
    assert [m.tolist() for m in t.members()] == [[0, 2], [1, 4], [3], [5]]
    assert Tracks.singletons(3).ids.tolist() == [0, 1, 2] and Tracks.singletons(0).count == 0
    assert Tracks(np.zeros(0, np.int64)).members() == []


def test_a_tracks_mean_is_of_its_normalised_rows_and_knows_which_tracks_have_any():
    t = Tracks(np.array([0, 0, 1, 2]))
    x = np.array([[3.0, 0.0], [0.0, 1.0], [0.0, 0.0], [0.0, -2.0]])
    mean, present = t.mean(x)
    assert np.allclose(mean[0], [2 ** -0.5, 2 ** -0.5]) and np.allclose(mean[2], [0, -1])  # not 3:1 weighted
    assert present.tolist() == [True, True, True]
    mean, present = t.mean(x, np.array([True, False, False, True]))
    assert np.allclose(mean[0], [1, 0]) and np.allclose(mean[1], [0, 0]) and present.tolist() == [True, False, True]


def test_a_tracks_span_is_its_video_and_first_and_last_time():
    rows = [("b.mp4", 0, 4.0, (0, 0, 9, 9), E[0], 0), ("b.mp4", 6, 2.0, (0, 0, 9, 9), E[0], 0),
            ("a.mp4", 0, 1.0, (0, 0, 9, 9), E[0], 0), ("p.jpg", None, None, (0, 0, 9, 9), E[0], -1),
            ("b.mp4", 9, 7.5, (0, 0, 9, 9), E[0], 0)]
    video, start, end = Tracks(np.array([0, 0, 1, 2, 3])).spans(_table(rows))
    assert video.tolist() == [0, 1, -1, 0]  # videos numbered in order of their first face; -1 for a photo
    assert start.tolist() == [2.0, 1.0, 0.0, 7.5] and end.tolist() == [4.0, 1.0, 0.0, 7.5]


def test_face_order_within_a_track_is_the_tables():
    t = Tracks(np.array([1, 0, 1, 0, 1]))
    assert [m.tolist() for m in t.members()] == [[1, 3], [0, 2, 4]]


def test_a_tracks_best_value_is_its_largest_and_nan_counts_only_alone():
    tracks = Tracks(np.array([0, 1, 0, 2, 1, 2]))
    best = tracks.best(np.array([0.2, np.nan, 0.7, np.nan, 0.1, np.nan]))
    assert best[0] == 0.7 and best[1] == 0.1  # NaN (no estimate) never wins over a value
    assert np.isnan(best[2]) or best[2] == -np.inf  # a track with no estimate at all is never "good"
    assert not best[2] >= 0.0
    assert tracks.best(np.array([-5, -1, -3, -2, -4, -7])).tolist() == [-3.0, -1.0, -2.0]


# -- exact limits, ambiguity, the splits of inconsistent tracks ------------------------------------------------
def test_a_face_exactly_max_face_distance_away_still_continues_the_track():
    from person_cluster.fusion import l2_normalize

    near = np.cos(0.3) * E[0] + np.sin(0.3) * E[1]
    x = l2_normalize(np.array([E[0], near], np.float32))
    exact = float(np.linalg.norm(x[0] - x[1]))
    assert _pair(0.2, (100, 100, 180, 180), near, config=TrackingConfig(max_face_distance=exact))


def test_a_face_that_could_continue_two_tracks_starts_its_own():
    """Two faces of frame 0, a little apart in looks, and one face in frame 6 about as near both: which track it
    continues would be a guess (ambiguity_margin 0.1), so it continues neither."""
    a, b = np.cos(0.03) * E[0] + np.sin(0.03) * E[1], np.cos(0.03) * E[0] - np.sin(0.03) * E[1]
    table = _table([("v.mp4", 0, 0.0, (100, 100, 180, 180), a, 0), ("v.mp4", 0, 0.0, (150, 100, 230, 180), b, 0),
                    ("v.mp4", 6, 0.2, (125, 100, 205, 180), E[0], 0)])
    assert link_tracks(table, TrackingConfig()).ids.tolist() == [0, 1, 2]
    assert len(set(link_tracks(table, TrackingConfig(ambiguity_margin=0.0)).ids.tolist())) == 2


def _switching(looks: list[int], t0: float = 0.0) -> list:
    """One track's rows: a face per frame, frame k looking like E[looks[k]] (a switch where looks change), always
    on one spot, so that linking alone would make them one track."""
    return [("v.mp4", k, t0 + 0.2 * k, (100, 100, 180, 180), E[look], 0) for k, look in enumerate(looks)]


def test_a_track_of_two_people_is_split_between_them_even_two_faces_each():
    """Linked as one track (the descriptor gate let the switch through), split at the switch; parts of two faces
    each are the smallest kept apart; and a part of four that is two people again is split again."""
    loose = TrackingConfig(max_face_distance=2.0, ambiguity_margin=0.0)
    assert split_tracks_of(_switching([0, 0, 1, 1]), loose) == [0, 0, 1, 1]
    assert split_tracks_of(_switching([0, 0, 1, 1, 2, 2]), loose) == [0, 0, 1, 1, 2, 2]
    assert split_tracks_of(_switching([0, 0, 0, 0]), loose) == [0, 0, 0, 0]
    assert split_tracks_of(_switching([0, 0, 1, 1]), TrackingConfig(max_face_distance=2.0, ambiguity_margin=0.0,
                                                                     split_distance=None)) == [0, 0, 0, 0]


def split_tracks_of(rows: list, config: TrackingConfig) -> list[int]:
    return link_tracks(_table(rows), config).ids.tolist()


def test_every_inconsistent_track_is_split_and_the_parts_numbered_without_gaps():
    """Three tracks (three shots): two people, one person, two people again. split_inconsistent numbers the new
    parts count, count + 1, ...: Tracks are numbered 0.. without gaps."""
    from person_cluster.fusion import l2_normalize
    from person_cluster.tracking import split_inconsistent

    looks = [0, 0, 1, 1, 2, 2, 2, 2, 3, 3, 4, 4]
    tracks = Tracks(np.repeat([0, 1, 2], 4))
    split = split_inconsistent(tracks, l2_normalize(E[looks].astype(np.float32)), 0.4)
    assert split.ids.tolist() == [0, 0, 4, 4, 1, 1, 1, 1, 2, 2, 3, 3]  # the last track is looked at first
    assert sorted(set(split.ids.tolist())) == list(range(split.count))


def test_members_are_in_face_order_in_large_tables():
    rng = np.random.default_rng(0)
    tracks = Tracks.by_first_face(rng.integers(0, 40, 5000))
    members = tracks.members()
    assert all((np.diff(m) > 0).all() for m in members)
    assert sorted(np.concatenate(members).tolist()) == list(range(5000))


def test_a_tiny_box_counts_as_one_pixel_when_measuring_how_far_it_moved():
    """Boxes of 1 px (no detector gives one, a hand-made cache might): the shift is measured in at least 1 px."""
    assert _pair(0.2, (101, 100, 102, 101), box0=(100, 100, 101, 101))  # moved 1 px: one box size
    assert not _pair(0.2, (102, 100, 103, 101), box0=(100, 100, 101, 101))  # 2 px: two


def test_cut_by_separates_the_faces_of_a_track_whose_values_differ_and_nothing_else():
    tracks = Tracks(np.array([0, 0, 0, 1, 1, 2, 0]))
    assert tracks.cut_by(np.array([-3, 5, 5, -1, -1, 7, -3])).ids.tolist() == [0, 1, 1, 2, 2, 3, 0]
    # Values that differ by less than the number of tracks never join faces of two tracks.
    assert Tracks(np.array([0, 2, 1])).cut_by(np.array([1, 0, 0])).ids.tolist() == [0, 1, 2]
    assert Tracks(np.array([0, 1, 1])).cut_by(np.array([9, 0, 2])).ids.tolist() == [0, 1, 2]
    assert Tracks(np.zeros(0, np.int64)).cut_by(np.zeros(0, np.int64)).ids.tolist() == []


def _costs(rows_from, rows_to):
    """link_tracks's descriptor distances (normalised float32 rows) between two lists of descriptors."""
    from person_cluster.fusion import l2_normalize

    a, b = l2_normalize(np.array(rows_from, np.float32)), l2_normalize(np.array(rows_to, np.float32))
    return np.linalg.norm(a[:, None] - b[None], axis=2)


def _turned(axis: int, toward: int, chord: float, base=None) -> np.ndarray:
    base = E[axis] if base is None else base
    angle = 2 * np.arcsin(chord / 2)
    return np.cos(angle) * base + np.sin(angle) * E[toward]


def test_with_no_ambiguity_margin_the_assignment_is_taken_as_it_is():
    """Frame 6: face C0 goes to track T0 (0.3 away) because tracks T1 and T2, nearer to it (0.2), take faces
    nearer still (0.05). Margin 0: nothing is a guess, all three continue."""
    c0 = E[0]
    t0, t1, t2 = _turned(0, 1, 0.3), _turned(0, 2, 0.2), _turned(0, 4, 0.2)
    c1, c2 = _turned(0, 3, 0.05, base=t1), _turned(0, 5, 0.05, base=t2)
    box = (100, 100, 180, 180)
    table = _table([("v.mp4", 0, 0.0, box, t, 0) for t in (t0, t1, t2)]
                   + [("v.mp4", 6, 0.2, box, c, 0) for c in (c0, c1, c2)])
    assert link_tracks(table, TrackingConfig(ambiguity_margin=0.0)).ids.tolist() == [0, 1, 2, 0, 1, 2]


def test_a_rival_exactly_ambiguity_margin_further_is_no_rival():
    """A track and two faces, or a face and two tracks, at distances a and b (b < 2a, so b - a is exact): with
    ambiguity_margin exactly b - a the nearer pair is linked; with a larger one, neither is."""
    near, far = _turned(0, 1, 0.2), _turned(0, 2, 0.3)
    box = (100, 100, 180, 180)
    a, b = (float(v) for v in _costs([E[0]], [near, far])[0])
    for margin, linked in ((b - a, True), ((b - a) * 1.0001, False)):
        config = TrackingConfig(ambiguity_margin=margin)
        two_faces = _table([("v.mp4", 0, 0.0, box, E[0], 0), ("v.mp4", 6, 0.2, box, near, 0),
                            ("v.mp4", 6, 0.2, box, far, 0)])
        ids = link_tracks(two_faces, config).ids.tolist()
        assert (ids == [0, 0, 1]) == linked and (ids == [0, 1, 2]) != linked
        two_tracks = _table([("v.mp4", 0, 0.0, box, near, 0), ("v.mp4", 0, 0.0, box, far, 0),
                             ("v.mp4", 6, 0.2, box, E[0], 0)])
        ids = link_tracks(two_tracks, config).ids.tolist()
        assert (ids == [0, 1, 0]) == linked and (ids == [0, 1, 2]) != linked


def test_a_track_whose_parts_are_exactly_split_distance_apart_stays_whole():
    from person_cluster.fusion import l2_normalize

    looks = [E[0], E[0], _turned(0, 1, 0.6), _turned(0, 1, 0.6)]
    x = l2_normalize(np.array(looks, np.float32)).astype(np.float64)
    gap = float(np.linalg.norm(l2_normalize(x[:2].sum(0, keepdims=True).astype(np.float32))
                               - l2_normalize(x[2:].sum(0, keepdims=True).astype(np.float32))))
    rows = [("v.mp4", k, 0.2 * k, (100, 100, 180, 180), look, 0) for k, look in enumerate(looks)]
    loose = {"max_face_distance": 2.0, "ambiguity_margin": 0.0}
    assert link_tracks(_table(rows), TrackingConfig(split_distance=gap, **loose)).ids.tolist() == [0, 0, 0, 0]
    assert link_tracks(_table(rows), TrackingConfig(split_distance=np.nextafter(gap, 0), **loose)
                       ).ids.tolist() == [0, 0, 1, 1]



def _walk_on(after: list, beside: list | None = None, beside_after: list | None = None, gap: bool = True,
             before: int = 4) -> list:
    """A shot, in the cache's face order (by frame): person A (E[0]) on spot P in frames 0-3 (0..before-1), a rival track
    beside them on spot Q (``beside``) in those frames, no face on P in frames 4-7 (A walked off, undetected; with
    ``gap`` false the faces ``after`` come in frames 4.. instead), then the faces ``after`` on P and
    ``beside_after`` on Q. Linking alone continues A's track with ``after``."""
    p, q = (100, 100, 180, 180), (400, 100, 480, 180)
    start = 8 if gap else 4
    rows = [("v.mp4", k, 0.2 * k, p, E[0], 0) for k in range(before)]
    rows += [("v.mp4", k, 0.2 * k, q, look, 0) for k, look in enumerate(beside or [])]
    rows += [("v.mp4", start + k, 0.2 * (start + k), p, look, 0) for k, look in enumerate(after)]
    rows += [("v.mp4", start + k, 0.2 * (start + k), q, look, 0) for k, look in enumerate(beside_after or [])]
    return sorted(rows, key=lambda r: (r[1], r[3]))


def test_a_track_that_resumes_as_the_person_seen_beside_it_is_split_at_the_gap():
    """B (0.3 from A: under split_distance, within max_face_distance) was beside A, then takes A's place after a
    gap: B's part is nearer B's track than A's part is, so A's track ends at the gap. Switched off: one track."""
    b = _turned(0, 1, 0.3)
    rows = _walk_on([b, b, b], beside=[b] * 4)
    assert split_tracks_of(rows, TrackingConfig()) == [0, 1] * 4 + [2, 2, 2]
    assert split_tracks_of(rows, TrackingConfig(rival_split=False)) == [0, 1] * 4 + [0, 0, 0]
    # Two faces on each side are enough.
    assert split_tracks_of(_walk_on([b, b], beside=[b] * 2, before=2), TrackingConfig()) == [0, 1, 0, 1, 2, 2]


def test_a_track_whose_person_is_seen_beside_its_later_part_is_split_at_the_gap():
    """A walks from P to Q while undetected and B steps onto P: the track on P continues with B, and A's first
    face on Q, beside B's first on P, makes A's track a rival of the part before the gap."""
    b = _turned(0, 1, 0.3)
    rows = _walk_on([b, b, b], beside_after=[E[0]] * 3)
    assert split_tracks_of(rows, TrackingConfig()) == [0] * 4 + [1, 2] * 3


def test_without_evidence_of_a_switch_at_a_gap_the_track_stays_whole():
    """The same change of looks with no one beside A; beside A someone the later faces are not nearer to than to
    A; a rival seen beside both parts (so not the later faces' person); the later part a single face; and the
    change with no gap (where linking alone judges, by the ambiguity margin): no split."""
    b, c = _turned(0, 1, 0.3), _turned(0, 2, 0.3)  # b and c are 0.42 apart
    assert split_tracks_of(_walk_on([b, b, b]), TrackingConfig()) == [0] * 7
    assert split_tracks_of(_walk_on([b, b, b], beside=[c] * 4), TrackingConfig()) == [0, 1] * 4 + [0] * 3
    assert split_tracks_of(_walk_on([b, b, b], beside=[b] * 4, beside_after=[b] * 3), TrackingConfig()
                           ) == [0, 1] * 7
    assert split_tracks_of(_walk_on([b, b, b], beside=[b] * 4, beside_after=[b]), TrackingConfig()
                           ) == [0, 1] * 5 + [0, 0]  # beside the later part's first face only
    assert split_tracks_of(_walk_on([b], beside=[b] * 4), TrackingConfig()) == [0, 1] * 4 + [0]
    assert split_tracks_of(_walk_on([b, b, b], beside=[b] * 4, gap=False), TrackingConfig()) == [0, 1] * 4 + [0] * 3


def test_a_gap_is_more_than_one_and_a_half_sampling_steps_since_the_tracks_last_face():
    """The step is the video's shortest time between two frames with faces (0.25 here, beside another track's
    face); a photo is never a gap."""
    from person_cluster.tracking import _frames_and_gaps

    box, far = (100, 100, 180, 180), (400, 100, 480, 180)
    rows = [("v.mp4", 0, 0.0, box, E[0], 0), ("v.mp4", 1, 0.25, far, E[1], 0), ("v.mp4", 2, 0.5, box, E[0], 0),
            ("v.mp4", 3, 0.875, box, E[0], 0), ("v.mp4", 4, 1.5, box, E[0], 0), ("p.jpg", None, None, box, E[0], -1)]
    frame, gap = _frames_and_gaps(_table(rows), Tracks(np.array([0, 1, 0, 0, 0, 2])))
    assert gap.tolist() == [False, False, True, False, True, False]  # 0.375 = 1.5 steps is no gap yet
    assert frame.tolist() == [0, 1, 2, 3, 4, -1]


@settings(max_examples=60, deadline=None)
@given(seed=seeds, n=st.integers(0, 60))
def test_the_rival_split_only_cuts_tracks_at_gaps_into_parts_of_two_faces_or_more(seed, n):
    """Whatever the looks: parts of one track only, each a run of at least two faces, every cut at a gap."""
    from person_cluster.tracking import _frames_and_gaps, split_at_rivals

    rng = np.random.default_rng(seed)
    frames = np.sort(rng.integers(0, 30, n))
    rows = [("v.mp4", int(f), 0.2 * int(f), (100, 100, 180, 180), E[0], 0) for f in frames]
    table = _table(rows)
    tracks = Tracks.by_first_face(rng.integers(0, 5, n))
    face = rng.normal(size=(n, 8)).astype(np.float32)
    face /= np.linalg.norm(face, axis=1, keepdims=True)
    frame, gap = _frames_and_gaps(table, tracks)
    split = split_at_rivals(tracks, face, frame, gap)  # random looks: ~6 cuts per example, by a count once
    for members in tracks.members():
        parts = split.ids[members]
        assert not set(parts.tolist()) & set(split.ids[tracks.ids != tracks.ids[members[0]]].tolist())
        changes = np.flatnonzero(np.diff(parts)) + 1
        assert gap[members[changes]].all()
        assert not len(changes) or (np.diff(np.r_[0, changes, len(members)]) >= 2).all()
        assert len(np.unique(parts)) == len(changes) + 1  # parts are runs: a cut never rejoins later


def _split_reference(tracks, face, frame, gap, min_part=2):
    """split_at_rivals as its docstring states it, one cut and one rival at a time: at each gap that leaves both
    parts ``min_part`` faces, the parts' mean faces, how far apart they are, and the nearest of the rivals seen
    only on the far side of the cut from a part to that part; the cut with the most evidence (apart - nearest; the
    first of equals) if it is positive, then again inside each part. Rivals are the input's tracks, by their means."""
    from person_cluster.fusion import l2_normalize

    ids = tracks.ids.copy()
    mean = {t: l2_normalize(face[tracks.ids == t].astype(np.float32).sum(0, keepdims=True).astype(np.float32))[0]
            .astype(np.float64) for t in range(tracks.count)}
    unit = lambda v: v / np.linalg.norm(v)
    todo = [list(m) for m in tracks.members() if len(m) >= 2 * min_part]
    fresh = tracks.count
    while todo:
        members = todo.pop()
        seen = {}  # rival track -> positions in members of the faces beside it
        for p, i in enumerate(members):
            if frame[i] < 0:
                continue
            for j in range(len(frame)):
                if frame[j] == frame[i]:
                    seen.setdefault(int(tracks.ids[j]), []).append(p)
        best = None
        for cut in range(min_part, len(members) - min_part + 1):
            if not gap[members[cut]]:
                continue
            x = face[members].astype(np.float64)
            ahead, behind = unit(x[:cut].sum(0)), unit(x[cut:].sum(0))
            near = [np.linalg.norm(behind - mean[r]) for r, ps in seen.items() if max(ps) < cut]
            near += [np.linalg.norm(ahead - mean[r]) for r, ps in seen.items() if min(ps) >= cut]
            evidence = np.linalg.norm(ahead - behind) - min(near, default=np.inf)
            if best is None or evidence > best[0]:
                best = (evidence, cut)
        if best is None or not best[0] > 0:
            continue
        cut = best[1]
        for i in members[cut:]:
            ids[i] = fresh
        fresh += 1
        todo += [part for part in (members[:cut], members[cut:]) if len(part) >= 2 * min_part]
    return ids


@settings(max_examples=200, deadline=None)
@given(seed=seeds, n=st.integers(0, 50), min_part=st.integers(1, 3))
def test_the_rival_split_cuts_where_its_docstring_says(seed, n, min_part):
    """Against the reference, as partitions: tracks of two or three people's faces with noise, several tracks per
    frame, gaps at random; the track ids are numbered differently, the parts must be the same."""
    from person_cluster.tracking import split_at_rivals

    rng = np.random.default_rng(seed)
    people = rng.normal(size=(3, 8))
    who = rng.integers(0, 3, n)
    face = (people[who] + 0.4 * rng.normal(size=(n, 8))).astype(np.float32)
    face /= np.linalg.norm(face, axis=1, keepdims=True)
    tracks = Tracks.by_first_face(rng.integers(0, 4, n))
    frame = rng.integers(-1, 12, n)
    gap = rng.random(n) < 0.5
    ours = split_at_rivals(tracks, face, frame, gap, min_part).ids
    expected = _split_reference(tracks, face, frame, gap, min_part)
    same = lambda ids: ids[:, None] == ids[None, :]
    assert (same(ours) == same(expected)).all()
