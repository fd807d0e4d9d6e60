"""The cast: screen time counted from tracks (each sampled frame stands for the interval after it, never past its
shot's end; in scene mode the whole shot), people ranked by it, a typical and sharp face for each, and a timeline
that shows when each person is on screen."""

from __future__ import annotations

import csv
import io

import cv2
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from person_cluster.config import SamplingConfig
from person_cluster.outputs.cast import (
    CastMember,
    _union,
    build_cast,
    cast_csv,
    draw_timeline,
    representative_face,
    screen_spans,
)
from person_cluster.records import FaceTable
from person_cluster.sampling import Shot

E = np.eye(128, dtype=np.float32)


def _table(sources, frames, times, shots, boxes=None, face=None) -> FaceTable:
    n = len(sources)
    return FaceTable(ids=np.arange(n), sources=list(sources), frames=list(frames), times=list(times),
                     bboxes=np.asarray(boxes if boxes is not None else [[0, 0, 40, 40]] * n, np.int64).reshape(n, 4),
                     face=np.asarray(face if face is not None else np.tile(E[0], (n, 1)), np.float32),
                     cloth=np.zeros((n, 0), np.float32), has_cloth=np.zeros(n, bool),
                     shots=np.asarray(shots, np.int64))


@given(st.lists(st.tuples(st.floats(0, 100), st.floats(0, 20)), max_size=12))
def test_spans_are_united_where_they_touch_or_overlap(raw):
    spans = [(a, a + w) for a, w in raw]
    united = _union(spans)
    assert united == sorted(united) and all(a <= b for a, b in united)
    assert all(united[k][1] < united[k + 1][0] for k in range(len(united) - 1))  # apart, not touching
    for a, b in spans:  # every span lies inside one united span
        assert any(x <= a and b <= y for x, y in united)
    for x, y in united:  # and each united span is made of the spans
        assert x in [a for a, _ in spans] and y in [b for _, b in spans]
    assert _union([(0.0, 1.0), (1.0, 2.0)]) == [(0.0, 2.0)]


def test_screen_time_in_interval_mode_runs_one_interval_past_a_tracks_last_face_but_not_past_its_shot():
    shots = [Shot("v.mp4", 0, 0, 29, 10.0), Shot("v.mp4", 1, 30, 99, 10.0), Shot("w.mp4", 0, 0, 99, 10.0)]
    table = _table(["v.mp4", "v.mp4", "v.mp4", "w.mp4", "w.mp4", "v.mp4", "p.jpg", "x.mp4"],
                   [0, 20, 40, 10, 10, 50, None, 5], [0.0, 2.0, 4.0, 1.0, 1.0, 5.0, None, 0.5],
                   [0, 0, 1, 0, 0, 1, -1, -1])
    labels = np.array([0, 0, 0, 0, 1, -1, 0, 0])
    tracks = np.array([0, 0, 1, 2, 3, 4, 5, 6])
    spans = screen_spans(table.sources, table.times, table.shots, labels, tracks, shots,
                         SamplingConfig(capture_interval_sec=1.5))
    assert spans == {0: {"v.mp4": [(0.0, 3.0), (4.0, 5.5)],  # 0-2 s + 1.5, cut at the shot's end (2.9 + 0.1)
                         "w.mp4": [(1.0, 2.5)],
                         "x.mp4": [(0.5, 2.0)]},  # a video whose shots are unknown: no cut
                     1: {"w.mp4": [(1.0, 2.5)]}}  # label -1 (face 5) and the photo (face 6) count for nothing


def test_screen_time_in_scene_mode_is_the_whole_shot_of_each_track():
    shots = [Shot("v.mp4", 0, 0, 29, 10.0), Shot("v.mp4", 1, 30, 99, 10.0)]
    table = _table(["v.mp4", "v.mp4", "v.mp4"], [15, 60, 70], [1.5, 6.0, 7.0], [0, 1, 1])
    spans = screen_spans(table.sources, table.times, table.shots, np.array([0, 0, 1]), np.array([0, 1, 2]), shots,
                         SamplingConfig(mode="scene"))
    assert spans == {0: {"v.mp4": [(0.0, 10.0)]}, 1: {"v.mp4": [(3.0, 10.0)]}}


def test_a_track_that_starts_after_its_shot_ended_counts_nothing():
    shots = [Shot("v.mp4", 0, 0, 9, 10.0)]
    table = _table(["v.mp4"], [15], [1.5], [0])
    spans = screen_spans(table.sources, table.times, table.shots, np.array([0]), np.array([0]), shots,
                         SamplingConfig())
    assert spans == {0: {"v.mp4": [(1.5, 1.5)]}}


def _crops(sharp: dict[int, bool]):
    """crop_of for the representative face: a checkerboard (sharp) or flat grey (blurred) per face id."""
    board = (np.indices((40, 40)).sum(axis=0) % 2 * 255).astype(np.uint8)
    return lambda i: cv2.cvtColor(board if sharp.get(i) else np.full((40, 40), 128, np.uint8), cv2.COLOR_GRAY2BGR)


def test_the_representative_face_is_the_best_of_the_most_typical_faces():
    # 8 faces: 2 and 5 the most typical; 0, 1, 3, 4 a little off; 6 and 7 outliers (profiles), large and sharp.
    face = np.stack([E[0] + 0.3 * E[3 + k] for k in range(6)] + [E[0] + 2 * E[1], E[0] + 3 * E[2]])
    face[2] = face[5] = E[0]
    boxes = np.array([[0, 0, 40, 40]] * 6 + [[0, 0, 90, 90]] * 2)
    boxes[5] = [0, 0, 60, 60]
    table = _table(["p.jpg"] * 8, [None] * 8, [None] * 8, [-1] * 8, boxes, face)
    members = np.arange(8)
    # Candidates: the 2 most typical (25% of 8), 2 and 5; the larger wins, never an outlier however good.
    assert representative_face(members, table, _crops({6: True, 7: True, 0: True})) == 5
    # Size, sharpness and typicality are ranks added up: 2 sharper, 5 larger, and 2 first among equals.
    assert representative_face(members, table, _crops({2: True})) == 5
    table.bboxes[2] = [0, 0, 70, 70]  # now size speaks for 2, the typicality tie for 5: sharpness decides
    assert representative_face(members, table, _crops({2: True})) == 2
    assert representative_face(members, table, _crops({5: True})) == 5
    assert representative_face(members[:4], table, _crops({})) == 2  # 1 candidate of 4: the most typical
    assert representative_face(np.array([6]), table, _crops({})) == 6  # one face: itself
    assert representative_face(np.array([3, 4]), table, lambda i: None) in (3, 4)  # no crop readable


def test_sharpness_is_the_variance_of_the_laplacian_of_the_face():
    from person_cluster.outputs.cast import _sharpness

    board, flat = _crops({0: True})(0), _crops({})(0)
    assert _sharpness(board) > 1000 and _sharpness(flat) == 0.0
    assert _sharpness(None) == 0.0 and _sharpness(np.zeros((0, 0, 3), np.uint8)) == 0.0
    assert _sharpness(cv2.resize(board, (400, 400), interpolation=cv2.INTER_NEAREST)) > 1000  # any size


def test_the_cast_ranks_people_by_screen_time_then_faces_then_id():
    shots = [Shot("v.mp4", 0, 0, 49, 10.0), Shot("v.mp4", 1, 50, 99, 10.0)]
    rows = [("v.mp4", 0, 0.0, 0, 1), ("v.mp4", 10, 1.0, 0, 1), ("v.mp4", 60, 6.0, 1, 1),  # cluster 1: 2 tracks
            ("v.mp4", 0, 0.0, 0, 0), ("p.jpg", None, None, -1, 0),  # cluster 0: 1 s and a photo
            ("q.jpg", None, None, -1, 2), ("r.jpg", None, None, -1, 2),  # cluster 2: photos only
            ("s.jpg", None, None, -1, 3),  # cluster 3: one photo
            ("v.mp4", 80, 8.0, 1, -1)]
    sources, frames, times, shot_ids, labels = zip(*rows)
    table = _table(sources, frames, times, shot_ids)
    tracks = np.array([0, 0, 1, 2, 3, 4, 5, 6, 7])
    members, spans = build_cast(table, np.array(labels), tracks, shots, SamplingConfig(), lambda i: None,
                                {1: "Ann", 0: "person_000"})
    assert [m.cluster for m in members] == [1, 0, 2, 3]
    ann, p0, p2, p3 = members
    assert (ann.folder, ann.screen_time_s, ann.faces, ann.appearances, ann.shots) == ("Ann", 3.0, 3, 2, 2)
    assert (ann.first_source, ann.first_time_s, ann.last_time_s) == ("v.mp4", 0.0, 6.0)
    assert (p0.screen_time_s, p0.faces, p0.appearances, p0.shots) == (1.0, 2, 2, 1)
    assert (p0.first_source, p0.last_source, p0.last_time_s) == ("v.mp4", "p.jpg", None)
    assert (p2.folder, p2.screen_time_s, p2.faces, p2.appearances, p2.shots) == ("person_002", None, 2, 2, 0)
    assert p3.screen_time_s is None and p3.faces == 1 and p3.cover_face == 7
    assert ann.cover_face in (0, 1, 2) and p2.cover_face in (5, 6)
    assert spans[1] == {"v.mp4": [(0.0, 2.0), (6.0, 7.0)]} and 2 not in spans
    assert build_cast(table, np.full(9, -1), tracks, shots, SamplingConfig(), lambda i: None) == ([], {})


def test_cast_csv_is_one_ranked_row_per_member():
    m = CastMember(4, "Ann", 12.5, 10, 3, 2, "v.mp4", 0.5, "w.mp4", None, 7)
    rows = list(csv.reader(io.StringIO(cast_csv([m, CastMember(1, "person_001", None, 1, 1, 0, "p.jpg", None,
                                                                           "p.jpg", None, 0)]))))
    assert rows == [["rank", "cluster", "folder", "screen_time_s", "faces", "appearances", "shots", "first_source",
                     "first_time_s", "last_source", "last_time_s", "cover_face"],
                    ["1", "4", "Ann", "12.5", "10", "3", "2", "v.mp4", "0.5", "w.mp4", "", "7"],
                    ["2", "1", "person_001", "", "1", "1", "0", "p.jpg", "", "p.jpg", "", "0"]]
    assert m.as_dict()["cover_face"] == 7 and m.as_dict()["folder"] == "Ann"


def _colour_columns(img: np.ndarray, rgb: tuple[int, int, int]) -> np.ndarray:
    bgr = np.array(rgb[::-1])
    return np.flatnonzero((np.abs(img.astype(int) - bgr).sum(axis=2) < 30).any(axis=0))


def test_the_timeline_shows_each_person_on_screen_where_the_cast_counts_them(tmp_path):
    shots = [Shot("v.mp4", 0, 0, 49, 10.0), Shot("v.mp4", 1, 50, 99, 10.0), Shot("w.mp4", 0, 0, 99, 10.0)]
    ann = CastMember(0, "Ann", 10.0, 5, 1, 2, "v.mp4", 0.0, "v.mp4", 9.0, 0)
    bob = CastMember(1, "Bob", 2.5, 2, 1, 1, "v.mp4", 5.0, "v.mp4", 6.0, 1)
    eve = CastMember(2, "Eve", 3.0, 1, 1, 1, "w.mp4", 1.0, "w.mp4", 1.0, 2)  # not in v.mp4: no row
    spans = {0: {"v.mp4": [(0.0, 10.0)]}, 1: {"v.mp4": [(5.0, 7.5)]}, 2: {"w.mp4": [(1.0, 4.0)]}}
    red = np.zeros((40, 40, 3), np.uint8)
    red[:, :, 2] = 255
    path = tmp_path / "v.png"
    draw_timeline(path, "v.mp4", [ann, bob, eve], spans, shots, 10.0, lambda i: red if i == 0 else None)
    img = cv2.imread(str(path))
    assert img.shape[:2] == (int((1.0 + 0.45 * 2) * 100), 1400)  # two rows: Ann and Bob
    blue, orange = (31, 119, 180), (255, 127, 14)  # matplotlib's C0 and C1: rows 0 and 1
    a, b = _colour_columns(img, blue), _colour_columns(img, orange)
    assert len(a) > 1000 and len(b) > 100 and len(_colour_columns(img, (44, 160, 44))) == 0  # no third row
    x0, x1 = a.min(), a.max() + 1  # Ann is on screen the whole 10 s: the bar spans the axis
    assert b.min() == pytest.approx(x0 + 0.5 * (x1 - x0), abs=3) and b.max() + 1 == pytest.approx(
        x0 + 0.75 * (x1 - x0), abs=3)
    rows_a = np.flatnonzero((np.abs(img.astype(int) - np.array(blue[::-1])).sum(axis=2) < 30).any(axis=1))
    rows_b = np.flatnonzero((np.abs(img.astype(int) - np.array(orange[::-1])).sum(axis=2) < 30).any(axis=1))
    assert rows_a.max() < rows_b.min()  # ranked: Ann above Bob
    assert len(_colour_columns(img[:, : x0 - 5], (255, 0, 0))) > 10  # Ann's face at the start of her row
    path2 = tmp_path / "w.png"
    draw_timeline(path2, "w.mp4", [ann, bob, eve], spans, shots, 10.0, lambda i: None)
    img2 = cv2.imread(str(path2))
    assert img2.shape[:2] == (int((1.0 + 0.45) * 100), 1400)
    g = _colour_columns(img2, blue)  # Eve is the only row: C0
    assert len(g) > 100 and len(_colour_columns(img2, orange)) == 0
    empty = tmp_path / "none.png"
    draw_timeline(empty, "x.mp4", [ann], spans, shots, 0.0, lambda i: None)  # nobody on screen: still an image
    assert cv2.imread(str(empty)).shape[1] == 1400


def test_the_timeline_marks_the_cuts_and_keeps_at_most_max_rows(tmp_path):
    shots = [Shot("v.mp4", 0, 0, 49, 10.0), Shot("v.mp4", 1, 50, 99, 10.0)]
    members = [CastMember(k, f"p{k}", 1.0, 1, 1, 1, "v.mp4", 0.0, "v.mp4", 0.0, k) for k in range(3)]
    spans = {0: {"v.mp4": [(0.0, 10.0)]}, 1: {"v.mp4": [(0.0, 0.5)]}, 2: {"v.mp4": [(0.0, 0.5)]}}
    path = tmp_path / "v.png"
    draw_timeline(path, "v.mp4", members, spans, shots, 10.0, lambda i: None, max_rows=2)
    img = cv2.imread(str(path)).astype(int)
    assert img.shape[0] == int((1.0 + 0.45 * 2) * 100)  # two rows of three
    assert len(_colour_columns(img.astype(np.uint8), (44, 160, 44))) == 0
    blue = _colour_columns(img.astype(np.uint8), (31, 119, 180))  # the whole 10 s: the axis
    x0, x1 = blue.min(), blue.max() + 1
    grey = (img.max(axis=2) == img.min(axis=2)) & (img[:, :, 0] >= 205) & (img[:, :, 0] <= 235)  # "0.85"
    orange = (np.abs(img - np.array([14, 127, 255])).sum(axis=2) < 30).any(axis=1)
    below_bars = grey[orange]  # the cut line shows in the second row, right of its short bar
    columns = np.flatnonzero(below_bars.sum(axis=0) > below_bars.shape[0] // 2)
    assert len(columns) >= 1 and all(abs(c - (x0 + (x1 - x0) / 2)) <= 4 for c in columns)  # at 5 s
