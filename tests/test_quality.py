"""Scenes, track checks, the quality gate, and the cache columns they read (schema 2, and schema 1 caches)."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest

from person_cluster.cache import FeatureCache
from person_cluster.clustering import ChineseWhispersClustering, DenseDistances
from person_cluster.clustering.gate import QualityGate
from person_cluster.config import Config, ConfigError, TrackingConfig
from person_cluster.constraints import CannotLinks
from person_cluster.fusion import Fusion, l2_normalize
from person_cluster.quality import face_quality
from person_cluster.records import Box, FaceRecord, FaceTable, FrameInfo
from person_cluster.scenes import background_histogram, group_shots, histogram_similarity
from person_cluster.tracking import Tracks, link_tracks, split_inconsistent


def _unit(rng: np.random.Generator, n: int) -> np.ndarray:
    return l2_normalize(rng.normal(size=(n, 128)).astype(np.float32))


# -- scenes ---------------------------------------------------------------------------------------------------
def _hist(colour: tuple[int, int, int]) -> np.ndarray:
    return background_histogram(np.full((90, 160, 3), colour, np.uint8), [])


def test_a_dialogue_cutting_between_two_setups_is_one_scene_and_a_new_place_starts_another():
    a, b, c = _hist((40, 90, 200)), _hist((30, 160, 60)), _hist((200, 200, 200))
    assert histogram_similarity(a, a) == pytest.approx(1.0) and histogram_similarity(a, c) < 0.1
    # A-B-A-B is one scene (each A links to the next A across B); then C-C, another place.
    assert group_shots([a, b, a, b, c, c], 0.35, 3).tolist() == [0, 0, 0, 0, 1, 1]
    # A shot with no sampled frame neither links nor breaks the link over it.
    assert group_shots([a, None, a, c], 0.35, 3).tolist() == [0, 0, 0, 1]
    # Beyond the lookahead the same place is a new scene.
    assert group_shots([a, b, c, b, a], 0.35, 1).tolist() == [0, 1, 2, 3, 4]


def test_the_background_leaves_the_people_out():
    wall = np.full((360, 640, 3), (40, 90, 200), np.uint8)
    frame = wall.copy()
    frame[40:360, 250:390] = (0, 200, 0)  # a person in green in front of the wall: face box and body below it
    face = Box(290, 60, 350, 130)
    assert histogram_similarity(background_histogram(frame, [face]), background_histogram(wall, [])) > 0.95
    assert histogram_similarity(background_histogram(frame, []), background_histogram(wall, [])) < 0.9
    # A frame that is all person is described whole rather than not at all.
    close_up = np.full((360, 640, 3), (0, 0, 255), np.uint8)
    assert background_histogram(close_up, [Box(100, 0, 540, 200)]).sum() == pytest.approx(1.0)


def test_clothing_is_compared_only_within_a_group():
    rng = np.random.default_rng(3)
    face = np.repeat(_unit(rng, 1), 4, axis=0)
    cloth = _unit(rng, 4)
    group = np.array([0, 0, 1, -1])  # two tracks of one scene, one of another scene, a photo
    d = Fusion(face, cloth, np.ones(4, bool), 1.0, 0.5, None, group).condensed()  # (0,1) (0,2) (0,3) (1,2) ...
    assert d[0] == pytest.approx(0.5 * np.linalg.norm(cloth[0] - cloth[1]), rel=1e-5)
    assert (d[1:] == 0).all()  # across scenes and against the photo the face (here identical) stands in


# -- track checks ---------------------------------------------------------------------------------------------
def _table(frames, boxes, face) -> FaceTable:
    n = len(frames)
    return FaceTable(ids=np.arange(n), sources=["v.mp4"] * n, frames=list(frames), times=[f / 10 for f in frames],
                     bboxes=np.asarray(boxes, np.int64), face=np.asarray(face, np.float32),
                     cloth=np.zeros((n, 0), np.float32), has_cloth=np.zeros(n, bool), shots=np.zeros(n, np.int64))


def test_a_track_ends_where_two_faces_could_continue_it():
    rng = np.random.default_rng(4)
    a = _unit(rng, 1)[0]
    twin = l2_normalize((a + 0.05 * _unit(rng, 1)[0])[None])[0]  # a look-alike, as close as a's next frame
    near = l2_normalize((a + 0.04 * _unit(rng, 1)[0])[None])[0]
    table = _table([0, 3, 3], [[100, 100, 160, 160], [110, 100, 170, 160], [60, 100, 120, 160]], [a, near, twin])
    assert link_tracks(table, TrackingConfig()).ids.tolist() == [0, 1, 2]  # ambiguous: no guess
    assert link_tracks(table, TrackingConfig(ambiguity_margin=0)).ids.tolist()[:2] == [0, 0]


def test_a_track_whose_halves_are_two_people_is_split_where_they_change():
    rng = np.random.default_rng(5)
    a, b = _unit(rng, 2)
    noisy = lambda v: l2_normalize((v + 0.02 * rng.normal(size=128))[None].astype(np.float32))[0]
    face = np.array([noisy(a) for _ in range(5)] + [noisy(b) for _ in range(4)])
    assert split_inconsistent(Tracks(np.zeros(9, np.int64)), face, 0.4).ids.tolist() == [0] * 5 + [1] * 4
    assert split_inconsistent(Tracks(np.zeros(9, np.int64)), np.array([noisy(a) for _ in range(9)]),
                              0.4).ids.tolist() == [0] * 9  # one person: one track
    assert link_tracks(_table(range(0, 27, 3), [[100, 100, 160, 160]] * 9, face),
                       TrackingConfig(max_face_distance=2.0)).ids.tolist() == [0] * 5 + [1] * 4


# -- the quality gate -----------------------------------------------------------------------------------------
def test_a_poor_face_between_two_people_never_joins_them():
    rng = np.random.default_rng(6)
    a, b = _unit(rng, 2)
    mid = l2_normalize((a + b)[None])[0]
    x = np.array([a, a, a, b, b, b, mid])
    square = np.linalg.norm(x[:, None] - x[None], axis=2)
    gate = QualityGate(ChineseWhispersClustering(np.linalg.norm(a - mid) + 1e-3), 1.0, 0.05)
    labels = gate.fit_predict(DenseDistances.from_square(square), np.array([1, 1, 1, 1, 1, 1, 0], bool))
    assert labels[0] == labels[1] == labels[2] != labels[3] == labels[4] == labels[5]
    assert labels[6] not in labels[:6]  # as near one as the other: clustered on its own
    assert gate.report.as_dict() == {"good": 6, "assigned": 0, "own": 1}
    # A poor face clearly nearer one person joins them, unless it is cannot-linked to them.
    x[6] = l2_normalize((3 * a + b)[None])[0]
    square = np.linalg.norm(x[:, None] - x[None], axis=2)
    good = np.array([1, 1, 1, 1, 1, 1, 0], bool)
    assert gate.fit_predict(DenseDistances.from_square(square), good)[6] == gate.fit_predict(
        DenseDistances.from_square(square), good)[0]
    barred = QualityGate(gate.clusterer, 1.0, 0.05, CannotLinks(np.array([0]), np.array([6]), 7))
    labels = barred.fit_predict(DenseDistances.from_square(square), good)
    assert labels[6] != labels[0] and barred.report.own == 1


def test_face_quality_is_the_worst_cue():
    n = 4
    table = FaceTable(ids=np.arange(n), sources=["p.jpg"] * n, frames=[None] * n, times=[None] * n,
                      bboxes=np.array([[0, 0, 100, 100], [0, 0, 30, 30], [0, 0, 100, 100], [0, 0, 100, 100]]),
                      face=np.ones((n, 128), np.float32), cloth=np.zeros((n, 0), np.float32),
                      has_cloth=np.zeros(n, bool), scores=np.array([0.9, 0.9, 0.6, 0.9]),
                      sharpness=np.array([20.0, 20.0, 20.0, 2.5]))
    q = face_quality(table, (0.55, 0.75))
    assert q[0] == 1.0 and q[1] == pytest.approx(0.25) and q[2] == pytest.approx(0.25) and q[3] < 0.2
    assert face_quality(table, None)[2] == 1.0  # a detector whose score says nothing about quality


# -- the cache and the config ---------------------------------------------------------------------------------
def test_a_schema_1_cache_is_read_as_before(tmp_path):
    path = tmp_path / "features.sqlite"
    db = sqlite3.connect(path)
    db.executescript("""
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE inputs (position INTEGER NOT NULL, source TEXT PRIMARY KEY, kind TEXT, status TEXT NOT NULL,
            reason TEXT);
        CREATE TABLE frames (source TEXT NOT NULL, frame INTEGER NOT NULL, time_s REAL, width INTEGER NOT NULL,
            height INTEGER NOT NULL, PRIMARY KEY (source, frame));
        CREATE TABLE faces (source TEXT NOT NULL, frame INTEGER NOT NULL, time_s REAL, left INTEGER NOT NULL,
            top INTEGER NOT NULL, right INTEGER NOT NULL, bottom INTEGER NOT NULL, score REAL NOT NULL,
            face BLOB NOT NULL, cloth BLOB, face_jpg BLOB NOT NULL, body_jpg BLOB,
            PRIMARY KEY (source, frame, left, top, right, bottom));
        INSERT INTO meta VALUES ('schema_version', '1');
        INSERT INTO inputs VALUES (0, 'a.jpg', 'image', 'done', NULL);
        INSERT INTO frames VALUES ('a.jpg', -1, NULL, 100, 100);""")
    db.execute("INSERT INTO faces VALUES ('a.jpg', -1, NULL, 1, 2, 41, 42, 0.8, ?, NULL, x'ff', NULL)",
               (np.full(128, 0.1, np.float32).tobytes(),))
    db.commit()
    db.close()
    with FeatureCache.open_existing(path) as cache:
        table = cache.load_table()
        assert len(table) == 1 and table.face_flip is None and np.isnan(table.sharpness[0])
        assert table.bboxes.tolist() == [[1, 2, 41, 42]] and table.scores[0] == pytest.approx(0.8)
        # ... and takes schema-2 rows beside them.
        face = FaceRecord("b.jpg", None, None, Box(0, 0, 30, 30), 0.9, np.ones(128, np.float32), None, b"j", None,
                          np.ones(128, np.float32), 7.5, np.zeros((5, 2), np.float32))
        cache.set_input(1, "b.jpg", "image", "done")
        cache.add_frame(FrameInfo("b.jpg", None, None, 30, 30, np.ones(256, np.float32) / 256), [face])
        assert cache.load_table().sharpness[1] == 7.5


def test_an_older_stored_config_with_clothing_always_compared_reads_as_cloth_scope_always():
    assert Config.from_dict({"fusion": {"cloth_window_sec": None}}).fusion.cloth_scope == "always"
    with pytest.raises(ConfigError, match="cloth_scope: always"):
        Config().with_overrides(["fusion.cloth_window_sec=null"])


def test_clustering_describes_a_mirrored_face_by_the_mean_of_it_and_its_mirror_image():
    from person_cluster.api import face_view

    rng = np.random.default_rng(5)
    face, flip = rng.normal(size=(3, 128)).astype(np.float32), rng.normal(size=(3, 128)).astype(np.float32)
    flip[2] = face[2]  # not mirrored: its own mirror image (cache.load_table)
    table = FaceTable(ids=np.arange(3), sources=["a.jpg", "b.jpg", "v.mp4"], frames=[None, None, 0],
                      times=[None, None, 0.0], bboxes=np.zeros((3, 4), np.int64), face=face,
                      cloth=np.zeros((3, 0), np.float32), has_cloth=np.zeros(3, bool), face_flip=flip)
    view = face_view(table, Config())
    assert np.allclose(view.face, l2_normalize(l2_normalize(face) + l2_normalize(flip)), atol=1e-6)
    assert np.allclose(view.face[2], l2_normalize(face)[2], atol=1e-6) and view.face_flip is flip
    assert face_view(table, Config().with_overrides({"fusion.mirror_average": False})) is table
    without = FaceTable(ids=np.arange(3), sources=table.sources, frames=table.frames, times=table.times,
                        bboxes=table.bboxes, face=face, cloth=table.cloth, has_cloth=table.has_cloth)
    assert face_view(without, Config()) is without  # nothing mirrored: raw descriptors, as before


def test_a_table_taken_in_another_order_keeps_every_faces_columns_together():
    rng = np.random.default_rng(2)
    n = 5
    table = FaceTable(ids=np.arange(n), sources=[f"{k}.jpg" for k in range(n)], frames=[None] * n,
                      times=[None] * n, bboxes=rng.integers(0, 100, (n, 4)), face=rng.normal(size=(n, 128)),
                      cloth=rng.normal(size=(n, 8)), has_cloth=rng.random(n) > 0.5, face_flip=None,
                      scores=rng.random(n), sharpness=rng.random(n), shot_backgrounds={("v.mp4", 0): np.ones(3)})
    rows = np.array([3, 0, 4])
    taken = table.take(rows)
    assert taken.ids.tolist() == [0, 1, 2] and taken.sources == ["3.jpg", "0.jpg", "4.jpg"] and len(taken) == 3
    for name in ("bboxes", "face", "cloth", "has_cloth", "shots", "scores", "sharpness", "landmarks", "has_body"):
        assert np.array_equal(getattr(taken, name), getattr(table, name)[rows], equal_nan=name == "landmarks")
    assert taken.face_flip is None and taken.shot_backgrounds is table.shot_backgrounds
    back = taken.take(np.argsort(np.array([1, 0, 2])))  # and back: the order is all that changed
    assert back.sources == ["0.jpg", "3.jpg", "4.jpg"] and np.array_equal(back.face, table.face[[0, 3, 4]])
