"""The feature cache, exactly: every field a run stores reads back as it was written (descriptors as float32 whatever
they were given as, backgrounds, flipped descriptors, sharpness, landmarks, body crops), a shot's background is the
mean of its sampled frames', a setting never recorded is a difference even when its value is None, the record a
cache was bound with stays as first written, and a face gone from the cache is one line naming it."""

from __future__ import annotations

import json

import numpy as np
import pytest

from person_cluster.cache import CacheError, FeatureCache, _same_settings
from person_cluster.records import Box, FaceRecord, FrameInfo
from person_cluster.sampling import Shot


def _record(source, frame, box, seed, *, flip=True, landmarks=True, body=True, sharpness=None) -> FaceRecord:
    rng = np.random.default_rng(seed)
    return FaceRecord(source, frame, None if frame is None else frame / 10, Box(*box), 0.25 + seed / 8,
                      rng.normal(size=128).astype(np.float32), rng.normal(size=8).astype(np.float32),
                      b"face%d" % seed, b"body%d" % seed if body else None,
                      rng.normal(size=128).astype(np.float32) if flip else None,
                      float(seed) + 0.5 if sharpness is None else sharpness,
                      rng.uniform(0, 50, size=(5, 2)).astype(np.float32) if landmarks else None)


def _hist(*values) -> np.ndarray:
    return np.array(values, np.float32)


def test_a_setting_never_recorded_differs_even_when_its_value_is_none():
    assert not _same_settings({}, {"inputs": None})
    assert not _same_settings({"face": {"padding": 0.25}}, {"face": {"padding": 0.25, "jitter": None}})
    assert _same_settings({"face": {"padding": 0.25, "jitter": None}, "inputs": None},
                          {"face": {"padding": 0.25, "jitter": None}, "inputs": None})


def test_every_field_reads_back_as_written(tmp_path):
    with FeatureCache(tmp_path / "c.sqlite") as cache:
        cache.set_input(0, "v.mp4", "video", "done")
        cache.set_input(1, "p.jpg", "image", "done")
        a = _record("v.mp4", 4, [0, 0, 20, 20], 1)
        b = _record("v.mp4", 4, [30, 0, 50, 20], 2, landmarks=False, body=False, sharpness=7.25)
        c = _record("p.jpg", None, [0, 0, 10, 10], 3)
        c.face_embedding = c.face_embedding.astype(np.float64)  # a descriptor given as float64: stored as float32
        cache.add_frame(FrameInfo("v.mp4", 4, 0.4, 64, 48, _hist(0.25, 0.75)), [a, b])
        cache.add_frame(FrameInfo("p.jpg", None, None, 10, 10, _hist(0.5, 0.5)), [c])
        table = cache.load_table()
        assert table.sources == ["v.mp4", "v.mp4", "p.jpg"]
        assert np.array_equal(table.face, np.stack([a.face_embedding, b.face_embedding,
                                                    c.face_embedding.astype(np.float32)]))
        assert table.cloth.dtype == np.float32 and table.cloth.shape == (3, 8)
        assert np.array_equal(table.cloth, np.stack([a.cloth_embedding, b.cloth_embedding, c.cloth_embedding]))
        assert table.face_flip.dtype == np.float32 and table.face_flip.shape == (3, 128)
        assert np.array_equal(table.face_flip, np.stack([a.face_flip_embedding, b.face_flip_embedding,
                                                         c.face_flip_embedding]))
        assert table.sharpness.tolist() == [1.5, 7.25, 3.5]
        assert table.scores.tolist() == [0.375, 0.5, 0.625]
        assert table.landmarks.dtype == np.float32 and table.landmarks.shape == (3, 5, 2)
        assert np.array_equal(table.landmarks[0], a.landmarks) and np.array_equal(table.landmarks[2], c.landmarks)
        assert np.isnan(table.landmarks[1]).all()  # b has none
        assert table.has_body.tolist() == [True, False, True]
        frames = cache.frames(background=True)
        assert [f.background.tolist() for f in frames] == [[0.25, 0.75], [0.5, 0.5]]
        assert all(f.background.dtype == np.float32 for f in frames)
        assert [f.background for f in cache.frames()] == [None, None]  # read only when asked for


def test_a_face_without_a_mirror_image_stands_as_its_own_beside_faces_with_one(tmp_path):
    """face.flip: photos mirrors a photo's faces, not a video frame's: a table of both has mirror images for all,
    a face not mirrored its own descriptor (mirror distance 0, mirror average itself); a table of none has none."""
    with FeatureCache(tmp_path / "c.sqlite") as cache:
        cache.set_input(0, "v.mp4", "video", "done")
        a, b = _record("v.mp4", 0, [0, 0, 9, 9], 1, flip=False), _record("v.mp4", 0, [10, 0, 19, 9], 2, flip=False)
        cache.add_frame(FrameInfo("v.mp4", 0, 0.0, 64, 48), [a, b])
        assert cache.load_table().face_flip is None
        cache.set_input(1, "p.jpg", "image", "done")
        c = _record("p.jpg", None, [0, 0, 9, 9], 3)
        cache.add_frame(FrameInfo("p.jpg", None, None, 64, 48), [c])
        table = cache.load_table()
        assert table.face_flip.dtype == np.float32
        assert np.array_equal(table.face_flip, np.stack([a.face_embedding, b.face_embedding, c.face_flip_embedding]))


def test_a_shots_background_is_the_mean_of_its_sampled_frames(tmp_path):
    with FeatureCache(tmp_path / "c.sqlite") as cache:
        for k, (source, kind) in enumerate([("v.mp4", "video"), ("w.mp4", "video"), ("p.jpg", "image")]):
            cache.set_input(k, source, kind, "done")
        cache.set_input(3, "half.mp4", "video", "running")  # interrupted: not read
        for frame, hist in [(0, (0.0, 1.0)), (5, (0.5, 0.5)), (10, (1.0, 0.0)), (12, (0.5, 0.25)), (40, (9.0, 9.0))]:
            cache.add_frame(FrameInfo("v.mp4", frame, frame / 10, 64, 48, _hist(*hist)), [])
        cache.add_frame(FrameInfo("v.mp4", 20, 2.0, 64, 48), [])  # no background recorded
        cache.add_frame(FrameInfo("w.mp4", 0, 0.0, 64, 48, _hist(0.3, 0.7)), [])  # a video whose shots are unknown
        cache.add_frame(FrameInfo("p.jpg", None, None, 64, 48, _hist(0.1, 0.9)), [])  # a photo has no shot
        cache.add_frame(FrameInfo("half.mp4", 0, 0.0, 64, 48, _hist(0.2, 0.8)), [])
        cache.set_shots("v.mp4", [Shot("v.mp4", 0, 0, 9, 10.0), Shot("v.mp4", 1, 10, 29, 10.0)])  # 40: after both
        cache.set_shots("half.mp4", [Shot("half.mp4", 0, 0, 9, 10.0)])
        got = cache.load_table().shot_backgrounds
        assert sorted(got) == [("v.mp4", 0), ("v.mp4", 1)]
        assert got[("v.mp4", 0)].tolist() == [0.25, 0.75] and got[("v.mp4", 1)].tolist() == [0.75, 0.125]


def test_a_video_without_faces_gives_an_empty_table_of_the_documented_types(tmp_path):
    with FeatureCache(tmp_path / "c.sqlite") as cache:
        cache.set_input(0, "v.mp4", "video", "done")
        cache.add_frame(FrameInfo("v.mp4", 0, 0.0, 64, 48, _hist(1.0)), [])
        cache.set_shots("v.mp4", [Shot("v.mp4", 0, 0, 9, 10.0)])
        table = cache.load_table()
        assert len(table) == 0 and table.shots.tolist() == [] and table.face_flip is None
        assert table.bboxes.shape == (0, 4) and table.bboxes.dtype == np.int64
        assert table.has_body.dtype == bool and table.shots.dtype == np.int64
        assert list(table.shot_backgrounds) == [("v.mp4", 0)]


def test_bind_keeps_the_record_the_cache_was_first_bound_with(tmp_path):
    with FeatureCache(tmp_path / "c.sqlite") as cache:
        cache.bind({"face": {"padding": 0.25, "backend": "torch"}, "inputs": ["a.mp4"]}, "m")
        cache.set_meta("schema_version", 1)  # as a cache of schema 1 that was opened again
        cache.bind({"face": {"padding": 0.25}, "inputs": ["a.mp4"]}, "m")  # the same features: accepted
        assert cache.get_meta("extraction") == {"extraction": {"face": {"padding": 0.25, "backend": "torch"},
                                                               "inputs": ["a.mp4"]}, "cloth_model": "m"}
        assert cache.get_meta("schema_version") == 1


def test_remove_writes_the_remaining_inputs_as_sorted_json(tmp_path):
    with FeatureCache(tmp_path / "c.sqlite") as cache:
        cache.bind({"z": 1, "inputs": ["b.mp4", "a.mp4"]}, "m")
        cache.remove_sources(["b.mp4"], ["b.mp4"])
        raw = cache.db.execute("SELECT value FROM meta WHERE key = 'extraction'").fetchone()[0]
        assert raw == json.dumps({"cloth_model": "m", "extraction": {"inputs": ["a.mp4"], "z": 1}}, sort_keys=True)
        assert raw.index('"cloth_model"') < raw.index('"extraction"') and raw.index('"inputs"') < raw.index('"z"')


def test_crops_are_read_by_key_for_videos_and_photos_and_a_face_gone_is_one_line(tmp_path):
    with FeatureCache(tmp_path / "c.sqlite") as cache:
        cache.set_input(0, "v.mp4", "video", "done")
        cache.set_input(1, "p.jpg", "image", "done")
        cache.add_frame(FrameInfo("v.mp4", 3, 0.3, 64, 48), [_record("v.mp4", 3, [0, 0, 9, 9], 1),
                                                             _record("v.mp4", 3, [10, 0, 19, 9], 2, body=False)])
        cache.add_frame(FrameInfo("p.jpg", None, None, 64, 48), [_record("p.jpg", None, [0, 0, 9, 9], 3)])
        table = cache.load_table()
        assert cache.crops(table, np.array([2, 1, 0, 1])) == {0: (b"face1", b"body1"), 1: (b"face2", None),
                                                              2: (b"face3", b"body3")}
        assert cache.crops(table, np.zeros(0, np.int64)) == {}
        cache.remove_sources(["v.mp4"], [])
        with pytest.raises(CacheError) as err:
            cache.crops(table, np.array([1]))
        assert str(err.value) == f"{tmp_path / 'c.sqlite'}: face 1 is no longer in the cache; run the command again"
