"""Video structure: shots found while decoding, face tracks, cannot-links honoured by every clustering path."""

from __future__ import annotations

import itertools
import json

import av
import cv2
import numpy as np
import pytest
from conftest import write_h264

from person_cluster import api
from person_cluster.cache import FeatureCache
from person_cluster.config import Config, TrackingConfig
from person_cluster.constraints import CannotLinks
from person_cluster.outputs.naming import frame_stem
from person_cluster.postprocess import merge_close_clusters
from person_cluster.records import FaceTable
from person_cluster.sampling import Shot, ShotDetector, shot_of
from person_cluster.sampling.shots import small_bgr
from person_cluster.tracking import link_tracks


def _table(sources, frames, times, boxes, face, shots=None) -> FaceTable:
    n = len(sources)
    return FaceTable(ids=np.arange(n), sources=list(sources), frames=list(frames), times=list(times),
                     bboxes=np.asarray(boxes, np.int64).reshape(n, 4), face=np.asarray(face, np.float32),
                     cloth=np.zeros((n, 0), np.float32), has_cloth=np.zeros(n, bool),
                     shots=None if shots is None else np.asarray(shots, np.int64))


def _unit(rng: np.random.Generator, n: int) -> np.ndarray:
    x = rng.normal(size=(n, 128))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


# -- shots ----------------------------------------------------------------------------------------------------
def test_small_frames_for_shot_detection_match_ffmpegs_scaler():
    rng = np.random.default_rng(0)
    img = cv2.resize(rng.integers(0, 255, (18, 32, 3), np.uint8), (1280, 720), interpolation=cv2.INTER_NEAREST)
    frame = av.VideoFrame.from_ndarray(img, format="bgr24").reformat(format="yuv420p")
    ours = small_bgr(frame)
    ref = frame.reformat(width=ours.shape[1], height=ours.shape[0], format="bgr24").to_ndarray()
    assert ours.shape == (72, 128, 3)  # every 10th pixel of 1280: SHOT_WIDTH wide
    # The same picture: nearest-pixel sampling against FFmpeg's filter, and OpenCV's full-range YUV conversion
    # against FFmpeg's limited range, which shifts levels a little but not what a cut changes.
    corr = np.corrcoef(ours.astype(float).ravel(), ref.astype(float).ravel())[0, 1]
    assert corr > 0.95, corr


def test_shot_detector_finds_the_cuts_of_a_real_clip_while_sampling(videos):
    """The friends_kitchen clip: PySceneDetect's own pass over the file finds cuts at these frames."""
    from person_cluster.sampling import discover_inputs, plan_frames, read_planned_frames, shot_detector

    config = Config().sampling
    items, _ = discover_inputs([str(videos / "friends_kitchen_clip.mp4")], config)
    plan = plan_frames(items[0], config)
    detector = shot_detector(items[0], plan, config)
    frames = list(read_planned_frames(items[0], plan, shots=detector))
    shots = detector.shots()
    starts = [s.first_frame for s in shots]
    assert len(frames) == 38
    for cut in (227, 313, 448, 676, 710, 838, 940, 1028):
        assert cut in starts, starts
    # The last shot runs to the end the container reports, past the last frame that decodes (the clip is cut short).
    assert len(shots) == 10 and shots[0].first_frame == 0 and shots[-1].last_frame == plan.info.frame_count - 1
    assert all(a.last_frame + 1 == b.first_frame for a, b in itertools.pairwise(shots))


def test_shot_of_frames():
    shots = [Shot("v", 0, 0, 9, 10.0), Shot("v", 1, 10, 29, 10.0)]
    assert shot_of(shots, np.array([0, 9, 10, 29, 30])).tolist() == [0, 0, 1, 1, -1]
    assert ShotDetector("v", 10.0, 27.0, 0.5).shots() == []


def test_a_frame_the_shot_thread_cannot_score_is_an_error_of_shots_and_ends_the_thread():
    detector = ShotDetector("v", 10.0, 27.0, 0.5)
    for number in range(40):  # more than the queue holds: feeding must not block after the error
        detector.feed(number, object())  # type: ignore[arg-type]
    thread = detector._thread
    with pytest.raises(AttributeError):
        detector.shots()
    assert thread is not None and not thread.is_alive()
    detector.close()  # again: nothing to do


def test_cuts_decided_from_stored_scores_are_those_of_contentdetector_fed_the_frames():
    """Shots are decided by replaying stored frame scores through one ContentDetector (so that chunks of a video
    scored apart join exactly); this must decide as scenedetect does on the frames themselves, flash filter and
    minimum shot length included, and split scores must join into the same cuts."""
    from scenedetect import ContentDetector, FrameTimecode

    from person_cluster.sampling.shots import FrameScores

    rng = np.random.default_rng(1)
    pictures = [rng.integers(0, 255, (9, 16, 3), np.uint8) for _ in range(6)]
    sequence = [0] * 12 + [1] * 3 + [2] * 20 + [3] + [2] * 10 + [4] * 7 + [5] * 14  # a short shot, a flash
    frames = []
    for k in sequence:
        img = cv2.resize(pictures[k], (320, 180), interpolation=cv2.INTER_NEAREST)
        img = cv2.add(img, rng.integers(0, 3, img.shape, np.uint8))  # noise: scores are never exactly 0
        frames.append(av.VideoFrame.from_ndarray(img, format="bgr24").reformat(format="yuv420p"))
    reference = ContentDetector(threshold=27.0, min_scene_len=5)
    cuts = [c.frame_num for n, f in enumerate(frames)
            for c in reference.process_frame(FrameTimecode(n, 10.0), small_bgr(f))]
    detector = ShotDetector("v", 10.0, 27.0, 0.5)
    for n, f in enumerate(frames):
        detector.feed(n, f)
    shots = detector.shots()
    assert [s.first_frame for s in shots[1:]] == cuts and len(cuts) >= 3
    scores = detector.scores()
    assert 20 < scores.values[12] and scores.values[0] == 0.0  # a cut's score; the first frame's
    # Three chunks, each scoring its first frame against nothing and the first frame after it against its last.
    parts = [FrameScores("v", 10.0, 0, scores.frames[a:b + 1], [0.0, *scores.values[a + 1:b + 1]])
             for a, b in ((0, 15), (15, 36), (36, len(frames) - 1))]
    parts[0].values[0] = scores.values[0]
    assert FrameScores.join(parts) == scores
    assert FrameScores.join(parts).shots(27.0, 0.5) == shots


# -- tracks ---------------------------------------------------------------------------------------------------
def test_tracks_follow_faces_across_frames_and_stop_at_cuts_gaps_and_jumps():
    rng = np.random.default_rng(1)
    a, b = _unit(rng, 2)
    near = lambda v: v + rng.normal(scale=0.01, size=128)
    rows = []  # (frame, time, box, descriptor, shot)
    for k in range(4):  # A walks right slowly, B stands still, in shot 0
        rows.append((k * 6, k * 0.2, [100 + 10 * k, 100, 180 + 10 * k, 180], near(a), 0))
        rows.append((k * 6, k * 0.2, [400, 100, 480, 180], near(b), 0))
    rows.append((30, 1.0, [130, 100, 210, 180], near(a), 1))  # the same A right after a cut: a new track
    rows.append((36, 1.2, [600, 300, 680, 380], near(a), 1))  # A again, jumped across the screen: a new track
    rows.append((90, 3.0, [600, 300, 680, 380], near(a), 1))  # after a 1.8-s gap: a new track
    frames, times, boxes, face, shots = zip(*rows)
    table = _table(["v.mp4"] * len(rows), frames, times, boxes, face, shots)
    ids = link_tracks(table, TrackingConfig()).ids
    assert ids.tolist() == [0, 1, 0, 1, 0, 1, 0, 1, 2, 3, 4]
    assert link_tracks(table, TrackingConfig(enabled=False)).ids.tolist() == list(range(11))


def test_look_alikes_swapping_places_are_not_linked_by_position_alone():
    rng = np.random.default_rng(2)
    a, b = _unit(rng, 2)
    boxes = [[100, 100, 180, 180], [170, 100, 250, 180]] * 2  # 0.9 box sizes apart: both within the gate
    table = _table(["v.mp4"] * 4, [0, 0, 6, 6], [0, 0, 0.2, 0.2], boxes, [a, b, b, a], [0, 0, 0, 0])
    assert link_tracks(table, TrackingConfig()).ids.tolist() == [0, 1, 1, 0]  # by descriptor, within the gate


@pytest.mark.pipeline
def test_a_track_never_crosses_a_cut_between_identical_looking_shots(tmp_path, lfw):
    """One real face, still, on two backgrounds: the face is the same on both sides of the cut, so only the shot
    boundary keeps the tracks apart."""
    photo = cv2.imread(str(min((lfw / "Colin_Powell").glob("*.jpg"))))
    frames = []
    for k in range(40):
        canvas = np.full((360, 480, 3), (40, 40, 40) if k < 20 else (30, 200, 230), np.uint8)
        canvas[105:255, 165:315] = photo  # lfw150: 150x150
        frames.append(canvas)
    video = write_h264(tmp_path / "cut.mp4", frames, fps=10)
    out = tmp_path / "out"
    manifest = api.run([str(video)], out, Config().with_overrides({"sampling.capture_interval_sec": 0.5,
                                                                   "runtime.workers": 1}), progress=False)
    assert [(s["first_frame"], s["last_frame"]) for s in manifest["shots"]] == [(0, 19), (20, 39)]
    faces = manifest["faces"]
    assert len(faces) == 8 and {f["shot"] for f in faces} == {0, 1}
    tracks = {t["id"]: t for t in manifest["tracks"]}
    assert len(tracks) == 2 and sorted(t["faces"] for t in tracks.values()) == [4, 4]
    for f in faces:
        assert tracks[f["track"]]["shot"] == f["shot"]
    assert len({f["cluster"] for f in faces}) == 1  # one person: tracks are joined by clustering, not by linking
    # On screen for the whole 4-s clip: 2 tracks, 2 shots; the cast.csv and the timeline say so.
    assert [(c["screen_time_s"], c["appearances"], c["shots"], c["faces"]) for c in manifest["cast"]] == [(4.0, 2, 2, 8)]
    assert (out / "cast.csv").read_text().splitlines()[1].startswith("1,0,person_000,4.0,8,2,2,")
    assert [t["image"] for t in manifest["timelines"]] == [f"timelines/{frame_stem(str(video), None)}.png"]
    assert cv2.imread(str(out / manifest["timelines"][0]["image"])).shape[1] == 1400
    assert manifest["cast"][0]["cover"] in {f["crop"] for f in faces}


def test_screen_time_unites_a_persons_tracks_and_stops_at_the_cut():
    from person_cluster.config import SamplingConfig
    from person_cluster.outputs.cast import screen_spans

    shots = [Shot("v.mp4", 0, 0, 49, 10.0), Shot("v.mp4", 1, 50, 99, 10.0)]
    # Person 0: two tracks at once in shot 0 (a mirror), 0-1 s and 0.5-2 s; then 4.8 s, the end of shot 0.
    # Person 1: a photo only.
    rows = [(0, 0.0, 0, 0), (5, 0.5, 1, 0), (10, 1.0, 0, 0), (20, 2.0, 1, 0), (48, 4.8, 2, 0)]
    table = _table(["v.mp4"] * 5 + ["p.jpg"], [r[0] for r in rows] + [None], [r[1] for r in rows] + [None],
                   [[0, 0, 10, 10]] * 6, np.ones((6, 128)), [0] * 5 + [-1])
    tracks = np.array([r[2] for r in rows] + [3])
    spans = screen_spans(table.sources, table.times, table.shots, np.array([0, 0, 0, 0, 0, 1]), tracks, shots,
                         SamplingConfig(capture_interval_sec=1.0))
    assert spans == {0: {"v.mp4": [(0.0, 3.0), (4.8, 5.0)]}}  # 1.0 + 1 s, 2.0 + 1 s, 4.8 + 1 s cut at 5.0


# -- cannot-links ---------------------------------------------------------------------------------------------
def _twins(n_frames: int = 6) -> FaceTable:
    """Two people whose descriptors are nearly identical, side by side in every frame of a video."""
    rng = np.random.default_rng(3)
    base = _unit(rng, 1)[0]
    rows = []
    for k in range(n_frames):
        for x in (100, 500):
            rows.append((k * 30, k * 1.0, [x, 100, x + 80, 180], base + rng.normal(scale=0.005, size=128), k))
    frames, times, boxes, face, shots = zip(*rows)  # one shot per frame: no tracks join them
    return _table(["twins.mp4"] * len(rows), frames, times, boxes, face, shots)


@pytest.mark.parametrize("algorithm", ["chinese_whispers", "hac", "rank_order", "finch"])
@pytest.mark.parametrize("dense_max", [20000, 4])  # all pairs, and the kNN graph path
def test_two_faces_of_one_frame_never_share_a_cluster(algorithm, dense_max):
    table = _twins()
    config = Config().with_overrides({"clustering.algorithm": algorithm, "clustering.dense_max_faces": dense_max,
                                      "clustering.knn_neighbors": 4, "postprocess.min_csize": 1,
                                      "postprocess.merge_face_threshold": 0.5})
    labels = api.cluster_table(table, config)
    assert CannotLinks.same_frame(table).violations(labels) == 0
    assert (labels >= 0).all() and len(set(labels.tolist())) >= 2
    # Without the rule the twins are one person: the test would catch constraints that do nothing.
    free = api.cluster_table(table, config.with_overrides({"clustering.cannot_link": False}))
    assert len(set(free.tolist())) == 1


def test_the_centroid_merge_never_joins_cannot_linked_clusters():
    rng = np.random.default_rng(4)
    base = _unit(rng, 1)[0]
    face = np.array([base + rng.normal(scale=0.01, size=128) for _ in range(4)])
    labels = np.array([0, 1, 2, 3])
    cannot = CannotLinks(np.array([0]), np.array([1]), 4)  # faces 0 and 1 shared a frame
    merged = merge_close_clusters(labels, face, np.zeros((4, 0)), np.zeros(4, bool), 0.5, None, cannot=cannot)
    assert merged[0] != merged[1] and len(set(merged.tolist())) == 2  # 2 and 3 join one side each
    assert len(set(merge_close_clusters(labels, face, np.zeros((4, 0)), np.zeros(4, bool), 0.5, None).tolist())) == 1


def test_a_photo_with_a_mirror_image_duplicate_works_with_the_switch_off():
    rng = np.random.default_rng(5)
    person, other = _unit(rng, 2)
    face = [person, person + rng.normal(scale=0.01, size=128), person + rng.normal(scale=0.01, size=128), other]
    table = _table(["mirror.jpg", "mirror.jpg", "b.jpg", "c.jpg"], [None] * 4, [None] * 4,
                   [[0, 0, 50, 50], [100, 0, 150, 50], [0, 0, 50, 50], [0, 0, 50, 50]], face)
    config = Config().with_overrides({"postprocess.min_csize": 1})
    on = api.cluster_table(table, config)
    off = api.cluster_table(table, config.with_overrides({"clustering.cannot_link": False}))
    assert on[0] != on[1]
    assert off[0] == off[1] == off[2] != off[3]


@pytest.mark.pipeline
def test_shots_and_tracks_are_in_the_cache_and_the_manifest(tmp_path, videos):
    out = tmp_path / "out"
    config = Config().with_overrides({"sampling.capture_interval_sec": 0.5, "sampling.stop_sec": 6.0})
    manifest = api.run([str(videos / "qengineering_Norton_A.mp4")], out, config, progress=False)
    with FeatureCache.open_existing(out / "features.sqlite") as cache:
        shots = cache.shots()
    assert [s.as_dict() for s in shots] == manifest["shots"] and len(shots) >= 3  # the clip cuts every ~1.5 s
    on_disk = json.loads((out / "manifest.json").read_text())
    tracks = {t["id"]: t for t in on_disk["tracks"]}
    assert on_disk["summary"]["tracks"] == len(tracks) < len(on_disk["faces"])  # some faces were linked
    for f in on_disk["faces"]:
        t = tracks[f["track"]]
        assert t["shot"] == f["shot"] and t["cluster"] == f["cluster"]
        assert t["first_frame"] <= f["frame"] <= t["last_frame"]


def test_clothing_is_compared_only_within_the_time_window():
    """Same face, other clothes, a minute apart: judged by the face alone; within the window clothing counts."""
    from person_cluster.fusion import Fusion

    rng = np.random.default_rng(6)
    face = np.repeat(_unit(rng, 1), 3, axis=0)
    cloth = _unit(rng, 3)
    video, start = np.array([0, 0, 0]), np.array([0.0, 5.0, 65.0])
    fusion = Fusion(face, cloth, np.ones(3, bool), 1.0, 0.5, 10.0, video, start, start + 1.0)
    d = fusion.condensed()  # pairs (0, 1), (0, 2), (1, 2)
    assert d[0] == pytest.approx(0.5 * np.linalg.norm(cloth[0] - cloth[1]), rel=1e-5)
    assert d[1] == d[2] == 0.0  # face distance 0 stands in for the clothing distance
    assert np.allclose(fusion.pairs(np.array([0, 0, 1]), np.array([1, 2, 2])), d)
    always = Fusion(face, cloth, np.ones(3, bool), 1.0, 0.5, None, video, start, start + 1.0).condensed()
    assert (always > 0).all()
