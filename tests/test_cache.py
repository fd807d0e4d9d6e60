"""The feature cache: what a run stores is what clustering reads back, in one deterministic order, whole frames only;
and a cache filled with other settings is refused."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest

from person_cluster.cache import SCHEMA_VERSION, CacheError, FeatureCache, _same_settings
from person_cluster.records import Box, FaceRecord, FrameInfo
from person_cluster.sampling import Shot


def _face(source, frame, time_s, box, seed, cloth=True, jpg=b"face") -> FaceRecord:
    rng = np.random.default_rng(seed)
    return FaceRecord(source, frame, time_s, Box(*box), 0.5 + seed / 100, rng.normal(size=128).astype(np.float32),
                      rng.normal(size=16).astype(np.float32) if cloth else None, jpg + bytes([seed]),
                      b"body" + bytes([seed]) if cloth else None)


@pytest.fixture
def filled(tmp_path):
    """Two videos and a photo, given in that order but stored out of it; one input not registered."""
    cache = FeatureCache(tmp_path / "features.sqlite")
    cache.set_input(1, "b.mp4", "video", "done")
    cache.set_input(0, "a.mp4", "video", "done")
    cache.set_input(2, "p.jpg", "image", "done")
    faces = {
        ("b.mp4", 3): [_face("b.mp4", 3, 0.3, [5, 5, 20, 20], 1)],
        ("a.mp4", 12): [_face("a.mp4", 12, 1.2, [50, 0, 90, 40], 2, cloth=False),
                        _face("a.mp4", 12, 1.2, [10, 0, 40, 40], 3)],
        ("a.mp4", 2): [_face("a.mp4", 2, 0.2, [10, 10, 40, 40], 4)],
        ("p.jpg", None): [_face("p.jpg", None, None, [0, 0, 30, 30], 5)],
        ("x.mp4", 0): [_face("x.mp4", 0, 0.0, [0, 0, 9, 9], 6)],  # no input row: not part of this run's table
    }
    for (source, frame), records in faces.items():
        cache.add_frame(FrameInfo(source, frame, None if frame is None else frame / 10, 320, 240), records)
    cache.set_shots("a.mp4", [Shot("a.mp4", 0, 0, 9, 10.0), Shot("a.mp4", 1, 10, 30, 10.0)])
    cache.set_shots("b.mp4", [Shot("b.mp4", 0, 0, 1, 10.0)])  # b's frame 3 lies after its only shot
    yield cache, faces
    cache.close()


def test_the_table_is_every_face_in_input_frame_box_order_with_its_features(filled):
    cache, faces = filled
    table = cache.load_table()
    expected = [faces[("a.mp4", 2)][0], faces[("a.mp4", 12)][1], faces[("a.mp4", 12)][0], faces[("b.mp4", 3)][0],
                faces[("p.jpg", None)][0]]
    assert len(table) == 5 and table.ids.tolist() == [0, 1, 2, 3, 4]
    assert table.sources == ["a.mp4", "a.mp4", "a.mp4", "b.mp4", "p.jpg"]
    assert table.frames == [2, 12, 12, 3, None] and table.times == [0.2, 1.2, 1.2, 0.3, None]
    assert table.bboxes.tolist() == [f.bbox.as_list() for f in expected] and table.bboxes.dtype == np.int64
    assert np.array_equal(table.face, np.stack([f.face_embedding for f in expected]))
    assert table.face.dtype == np.float32 and table.cloth.shape == (5, 16)
    assert table.has_cloth.tolist() == [True, True, False, True, True]
    for k, f in enumerate(expected):
        assert np.array_equal(table.cloth[k], f.cloth_embedding if f.cloth_embedding is not None else np.zeros(16))
    assert table.shots.tolist() == [0, 1, 1, -1, -1]  # a's shots; b's frame after its last shot; a photo
    assert list(cache.iter_crops()) == [(f.face_jpg, f.body_jpg) for f in expected]


def test_frames_inputs_and_shots_read_back_in_input_order(filled):
    cache, _ = filled
    assert [(f.source, f.frame, f.time_s, f.width, f.height) for f in cache.frames()] == [
        ("a.mp4", 2, 0.2, 320, 240), ("a.mp4", 12, 1.2, 320, 240), ("b.mp4", 3, 0.3, 320, 240),
        ("p.jpg", None, None, 320, 240)]
    assert cache.frame_indices("a.mp4") == {2, 12} and cache.frame_indices("p.jpg") == {None}
    assert cache.frame_indices("nothing") == set()
    assert [(s.source, s.index, s.first_frame, s.last_frame) for s in cache.shots()] == [
        ("a.mp4", 0, 0, 9), ("a.mp4", 1, 10, 30), ("b.mp4", 0, 0, 1)]
    cache.set_shots("a.mp4", [Shot("a.mp4", 0, 0, 30, 10.0)])  # a resumed run: replaced, not added
    assert [(s.source, s.index) for s in cache.shots()] == [("a.mp4", 0), ("b.mp4", 0)]
    assert cache.load_table().shots.tolist() == [0, 0, 0, -1, -1]
    cache.set_input(3, "bad.mp4", None, "skipped", "not a readable video")
    cache.set_input(4, "half.mp4", "video", "running")
    cache.set_input(5, "odd.mp4", None, "skipped")
    assert [i["source"] for i in cache.inputs()] == ["a.mp4", "b.mp4", "p.jpg", "bad.mp4", "half.mp4", "odd.mp4"]
    assert cache.inputs()[3] == {"source": "bad.mp4", "kind": None, "status": "skipped",
                                 "reason": "not a readable video"}
    assert cache.finished_sources() == {"a.mp4", "b.mp4", "p.jpg", "bad.mp4", "odd.mp4"}  # not the one running
    assert [(s.source, s.reason) for s in cache.skipped()] == [("bad.mp4", "not a readable video"), ("odd.mp4", "")]
    cache.set_input(3, "bad.mp4", "video", "done")  # the same input again: replaced
    assert [s.source for s in cache.skipped()] == ["odd.mp4"] and len(cache.inputs()) == 6


def test_an_empty_cache_gives_an_empty_table(tmp_path):
    with FeatureCache(tmp_path / "c.sqlite") as cache:
        table = cache.load_table()
        assert len(table) == 0 and table.face.shape == (0, 128) and table.cloth.shape == (0, 0)
        assert table.bboxes.shape == (0, 4) and cache.frames() == [] and cache.shots() == []


def test_a_frame_and_its_faces_are_stored_together_or_not_at_all(tmp_path):
    cache = FeatureCache(tmp_path / "c.sqlite")
    cache.set_input(0, "v.mp4", "video", "done")
    good = _face("v.mp4", 0, 0.0, [0, 0, 10, 10], 1)
    bad = FaceRecord("v.mp4", 0, 0.0, Box(0, 0, 10, 10), 0.9, None, None, b"")  # no descriptor: the insert fails
    with pytest.raises(sqlite3.IntegrityError):  # the faces table holds no face without a descriptor
        cache.add_frame(FrameInfo("v.mp4", 0, 0.0, 64, 48), [good, bad])
    assert cache.frames() == [] and len(cache.load_table()) == 0
    with pytest.raises(RuntimeError), cache.transaction():  # frames written inside one transaction join it
        cache.add_frame(FrameInfo("v.mp4", 1, 0.1, 64, 48), [good])
        cache.add_frame(FrameInfo("v.mp4", 2, 0.2, 64, 48), [])
        raise RuntimeError("killed")
    assert cache.frames() == []
    with cache.transaction():
        cache.add_frame(FrameInfo("v.mp4", 1, 0.1, 64, 48), [good])
        with cache.transaction():
            cache.add_frame(FrameInfo("v.mp4", 2, 0.2, 64, 48), [])
    assert [f.frame for f in cache.frames()] == [1, 2]
    cache.close()
    with FeatureCache(tmp_path / "c.sqlite") as again:  # committed: another connection sees them
        assert [f.frame for f in again.frames()] == [1, 2] and len(again.load_table()) == 1


def test_meta_values_round_trip_as_json(tmp_path):
    with FeatureCache(tmp_path / "c.sqlite") as cache:
        assert cache.get_meta("config") is None
        cache.set_meta("config", {"b": [1, 2.5, None], "a": "é"})
        cache.set_meta("n", 3)
        cache.set_meta("n", 4)
        assert cache.get_meta("config") == {"a": "é", "b": [1, 2.5, None]} and cache.get_meta("n") == 4
        raw = cache.db.execute("SELECT value FROM meta WHERE key = 'config'").fetchone()[0]
        assert raw.index('"a"') < raw.index('"b"')  # sorted keys: the same settings are the same text


def test_settings_are_the_same_when_every_current_one_was_stored_with_its_value():
    current = {"face": {"padding": 0.25, "jitter": 0}, "inputs": ["a.mp4"]}
    assert _same_settings(current, current)
    assert _same_settings({"face": {"padding": 0.25, "jitter": 0, "backend": "torch"}, "inputs": ["a.mp4"],
                           "gone": 1}, current)  # keys that no longer decide the features are ignored
    assert not _same_settings({"face": {"padding": 0.25}, "inputs": ["a.mp4"]}, current)  # one never recorded
    assert not _same_settings({"face": {"padding": 0.3, "jitter": 0}, "inputs": ["a.mp4"]}, current)
    assert not _same_settings({"face": {"padding": 0.25, "jitter": 0}, "inputs": ["b.mp4"]}, current)
    assert not _same_settings({"face": 0.25, "inputs": ["a.mp4"]}, current)
    assert not _same_settings({"inputs": ["a.mp4"]}, current)
    assert not _same_settings({"face": {"padding": 0.25, "jitter": 0}}, current)
    assert not _same_settings({"face": {"padding": 0.25, "jitter": None}, "inputs": ["a.mp4"]}, current)


def test_a_setting_added_since_reads_as_what_a_cache_without_it_holds():
    """cloth.colour came after OUTs were first written: a cache that never recorded it holds the CNN's features
    alone, which is colour: false."""
    current = {"cloth": {"stage": "features.13", "colour": False}, "inputs": ["a.mp4"]}
    old = {"cloth": {"stage": "features.13"}, "inputs": ["a.mp4"]}
    assert _same_settings(old, current)
    assert not _same_settings(old, {**current, "cloth": {"stage": "features.13", "colour": True}})
    assert not _same_settings({"face": {}, "inputs": ["a.mp4"]}, {"face": {"colour": False}, "inputs": ["a.mp4"]})


def test_a_cache_binds_its_settings_once_and_refuses_others(tmp_path):
    settings = {"face": {"padding": 0.25}, "inputs": ["a.mp4"]}
    with FeatureCache(tmp_path / "c.sqlite") as cache:
        cache.check_settings(settings)  # nothing stored yet: anything goes
        cache.bind(settings, "mobilenet_v2.abc")
        assert cache.get_meta("schema_version") == SCHEMA_VERSION
        assert cache.get_meta("extraction") == {"extraction": settings, "cloth_model": "mobilenet_v2.abc"}
        cache.bind(settings, "mobilenet_v2.abc")
        cache.check_settings(settings, "another model")  # the model is only checked when asked
        with pytest.raises(CacheError, match="other settings; use another OUT or --overwrite"):
            cache.check_settings(settings, "another model", check_cloth=True)
        with pytest.raises(CacheError, match=r"other inputs; `person-cluster add .* INPUT\.\.\.` adds these"):
            cache.check_settings({**settings, "inputs": ["b.mp4"]}, None, check_cloth=False)
        with pytest.raises(CacheError, match="other settings"):
            cache.bind(settings, "another model")
        assert cache.get_meta("extraction")["cloth_model"] == "mobilenet_v2.abc"  # the refused bind wrote nothing
    assert FeatureCache.open_existing(tmp_path / "c.sqlite").get_meta("schema_version") == SCHEMA_VERSION


def test_a_missing_foreign_or_damaged_cache_is_one_line(tmp_path):
    with pytest.raises(CacheError, match="no feature cache here; run `person-cluster run` first"):
        FeatureCache.open_existing(tmp_path / "nothing.sqlite")
    assert not (tmp_path / "nothing.sqlite").exists()
    FeatureCache(tmp_path / "empty.sqlite").close()  # a cache never bound: no schema version
    with pytest.raises(CacheError, match="not a person_cluster feature cache"):
        FeatureCache.open_existing(tmp_path / "empty.sqlite")
    (tmp_path / "junk.sqlite").write_bytes(b"not a database" * 100)
    with pytest.raises(CacheError, match="not a usable feature cache"):
        FeatureCache.open_existing(tmp_path / "junk.sqlite")


def test_add_records_new_inputs_after_the_old_and_remove_takes_a_source_out_whole(filled):
    cache, _ = filled
    settings = {"face": {"padding": 0.25}, "inputs": ["a.mp4", "b.mp4"]}
    cache.bind(settings, "m")
    assert cache.next_position() == 3  # after positions 0, 1, 2
    cache.add_inputs(["b.mp4", "p.jpg", "c.mp4", "p.jpg"])  # recorded ones are not repeated, nor twice
    assert cache.get_meta("extraction")["extraction"]["inputs"] == ["a.mp4", "b.mp4", "p.jpg", "c.mp4"]
    assert cache.get_meta("extraction")["cloth_model"] == "m"  # the rest of the record stays
    cache.check_settings({**settings, "inputs": ["a.mp4", "b.mp4", "p.jpg", "c.mp4"]}, "m", check_cloth=True)
    before = len(cache.load_table())
    cache.remove_sources(["a.mp4"], ["a.mp4", "p.jpg"])
    table = cache.load_table()
    assert "a.mp4" not in table.sources and len(table) == before - 3
    assert {f.source for f in cache.frames()} == {"b.mp4", "p.jpg"}
    assert {s.source for s in cache.shots()} == {"b.mp4"}
    assert [i["source"] for i in cache.inputs()] == ["b.mp4", "p.jpg"]
    assert cache.get_meta("extraction")["extraction"]["inputs"] == ["b.mp4", "c.mp4"]
    assert cache.next_position() == 3
    cache.remove_sources(["b.mp4", "p.jpg"], [])
    assert cache.next_position() == 0 and len(cache.load_table()) == 0
    assert cache.get_meta("extraction")["extraction"]["inputs"] == ["b.mp4", "c.mp4"]


def test_a_remove_that_fails_half_way_removes_nothing(filled, monkeypatch):
    cache, _ = filled
    cache.bind({"inputs": ["a.mp4"]}, "m")
    before = (len(cache.load_table()), len(cache.frames()), len(cache.shots()), len(cache.inputs()))

    monkeypatch.setattr(cache, "get_meta", lambda key: (_ for _ in ()).throw(sqlite3.OperationalError("disk")))
    with pytest.raises(sqlite3.OperationalError):
        cache.remove_sources(["a.mp4"], ["a.mp4"])
    monkeypatch.undo()
    assert (len(cache.load_table()), len(cache.frames()), len(cache.shots()), len(cache.inputs())) == before


def test_add_inputs_on_a_cache_never_bound_records_nothing(tmp_path):
    with FeatureCache(tmp_path / "c.sqlite") as cache:
        cache.add_inputs(["a.mp4"])
        assert cache.get_meta("extraction") is None and cache.next_position() == 0
