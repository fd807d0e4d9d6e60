"""The metric learnt per video for the scene merge (person_cluster.metric)."""

from __future__ import annotations

import numpy as np
import pytest

from person_cluster import api
from person_cluster.config import Config, ConfigError
from person_cluster.constraints import CannotLinks
from person_cluster.fusion import l2_normalize
from person_cluster.metric import video_metric
from person_cluster.postprocess import SceneMerge, merge_within_scenes
from person_cluster.records import FaceTable


def _video(seed: int = 0, people: int = 4, frames: int = 20, nuisance: float = 1.0, source: str = "v.mp4"):
    """``people`` seen together on every frame; each person's tracks (one per 10 frames) differ along a nuisance
    direction (pose, light) by ``nuisance``, much more than people differ from each other. Returns the table's
    parts and each face's person and track."""
    rng = np.random.default_rng(seed)
    basis = np.linalg.qr(rng.normal(size=(128, 128)))[0]
    identity, pose = basis[:, :people].T * 0.3, basis[:, people]
    centre = basis[:, people + 1] * 3.0
    face, who, track, frame = [], [], [], []
    for f in range(frames):
        for p in range(people):
            segment = f // 10
            face.append(centre + identity[p] + nuisance * (segment % 2) * pose + rng.normal(scale=0.01, size=128))
            who.append(p)
            track.append(p * 100 + segment)
            frame.append(f)
    n = len(face)
    table = FaceTable(ids=np.arange(n), sources=[source] * n, frames=frame, times=[f / 5 for f in frame],
                      bboxes=np.tile([0, 0, 10, 10], (n, 1)), face=np.array(face, np.float32),
                      cloth=np.ones((n, 4), np.float32), has_cloth=np.ones(n, bool))  # everyone dressed alike
    return table, np.array(who), np.array(track)


def _cat(a: FaceTable, b: FaceTable) -> FaceTable:
    n = len(a) + len(b)
    return FaceTable(ids=np.arange(n), sources=a.sources + b.sources, frames=a.frames + b.frames,
                     times=a.times + b.times, bboxes=np.concatenate([a.bboxes, b.bboxes]),
                     face=np.concatenate([a.face, b.face]), cloth=np.concatenate([a.cloth, b.cloth]),
                     has_cloth=np.concatenate([a.has_cloth, b.has_cloth]))


def _seen(cannot: CannotLinks, n: int) -> np.ndarray:
    seen = np.zeros(n, bool)
    seen[cannot.i] = seen[cannot.j] = True
    return seen


def _distances(x: np.ndarray) -> np.ndarray:
    return np.linalg.norm(x[:, None] - x[None], axis=2)


def test_the_metric_puts_a_persons_tracks_together_that_a_nuisance_keeps_apart_in_dlibs_space():
    table, who, track = _video()
    out = video_metric(table, track, CannotLinks.same_frame(table), dims=3)
    same = (who[:, None] == who[None]) & (track[:, None] != track[None])
    other = who[:, None] != who[None]
    raw = _distances(l2_normalize(table.face))
    learnt = _distances(out)
    # In dlib's space a person's two poses are further apart than two people in one pose; in the metric, never.
    pose = (track % 2)[:, None] == (track % 2)[None]
    assert raw[same].min() > raw[other & pose].max()
    assert learnt[same].max() < learnt[other].min()


def test_the_metric_keeps_dlibs_scale_for_faces_of_one_frame_and_gives_unit_rows():
    table, _, track = _video(seed=1)
    cannot = CannotLinks.same_frame(table)
    out = video_metric(table, track, cannot, dims=3)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    raw = l2_normalize(table.face)
    own = np.median(np.linalg.norm(raw[cannot.i] - raw[cannot.j], axis=1))
    learnt = np.median(np.linalg.norm(out[cannot.i] - out[cannot.j], axis=1))
    assert learnt == pytest.approx(own, rel=1e-4)


def test_photos_short_videos_and_videos_left_out_keep_their_own_descriptors():
    table, _, track = _video(seed=2)
    few, _, few_track = _video(seed=3, people=2, frames=3, source="short.mp4")  # 6 pairs of one frame < dims
    both = _cat(table, few)
    photo = FaceTable(ids=np.arange(2), sources=["a.jpg", "b.jpg"], frames=[None, None], times=[None, None],
                      bboxes=np.tile([0, 0, 10, 10], (2, 1)), face=np.ones((2, 128), np.float32),
                      cloth=np.ones((2, 4), np.float32), has_cloth=np.ones(2, bool))
    every = _cat(both, photo)
    tracks = np.concatenate([track, few_track + 10_000, [20_000, 20_001]])
    out = video_metric(every, tracks, CannotLinks.same_frame(every), dims=8)
    raw = l2_normalize(every.face)
    n = len(table)
    assert not np.allclose(out[:n], raw[:n])
    np.testing.assert_allclose(out[n:], raw[n:], atol=1e-6)
    only = video_metric(every, tracks, CannotLinks.same_frame(every), dims=8, videos={"short.mp4"})
    np.testing.assert_allclose(only, raw, atol=1e-6)


def test_each_video_learns_its_own_metric():
    a, _, ta = _video(seed=4)
    b, _, tb = _video(seed=5, source="w.mp4")
    both = _cat(a, b)
    tracks = np.concatenate([ta, tb + 10_000])
    together = video_metric(both, tracks, CannotLinks.same_frame(both), dims=3)
    np.testing.assert_allclose(together[:len(a)], video_metric(a, ta, CannotLinks.same_frame(a), dims=3), atol=1e-6)
    np.testing.assert_allclose(together[len(a):], video_metric(b, tb, CannotLinks.same_frame(b), dims=3), atol=1e-6)


def test_the_scene_merge_compares_the_faces_it_is_given_in_the_merge():
    table, who, track = _video(seed=6, people=2, nuisance=1.5)
    labels = np.unique(track, return_inverse=True)[1]  # each track a cluster: a person in two pieces
    scene = np.zeros(len(table), np.int64)
    cannot = CannotLinks.same_frame(table)
    plain = SceneMerge(scene, 1.0, 0.5, 0.36)
    merged = merge_within_scenes(labels, table.face, table.cloth, table.has_cloth, plain, cannot)
    assert len(np.unique(merged)) == 4  # in dlib's space the two poses are too far apart
    learnt = SceneMerge(scene, 1.0, 0.5, 0.36, video_metric(table, track, cannot, dims=1))
    merged = merge_within_scenes(labels, table.face, table.cloth, table.has_cloth, learnt, cannot)
    assert len(np.unique(merged)) == 2
    assert all(len(np.unique(who[merged == c])) == 1 for c in np.unique(merged))


def test_the_setting_picks_the_metric_or_dlibs_space():
    table, _, track = _video(seed=7)
    scene = np.zeros(len(table), np.int64)
    assert api.scene_merge(table, track, scene, Config().with_overrides(["postprocess.scene_metric_dims=null"])).face is None
    merge = api.scene_merge(table, track, scene, Config())
    np.testing.assert_allclose(merge.face, video_metric(table, track, CannotLinks.same_frame(table), 32), atol=1e-6)
    assert merge.seen.all()  # everyone is on every frame with someone
    everyone = CannotLinks.same_frame(table)
    alone = np.array(table.frames) == 0  # as if the faces of frame 0 were each alone in it
    keep = ~alone[everyone.i]
    merge = api.scene_merge(table, track, scene, Config(), CannotLinks(everyone.i[keep], everyone.j[keep], len(table)))
    assert merge.seen.tolist() == (~alone).tolist()
    assert api.scene_merge(table, track, scene, Config().with_overrides(["postprocess.scene_merge=false"])).face is None
    for bad in (0, 128, -1):
        with pytest.raises(ConfigError, match="scene_metric_dims"):
            Config().with_overrides([f"postprocess.scene_metric_dims={bad}"])


def test_a_cluster_never_seen_with_anyone_is_compared_in_dlibs_space():
    """The metric says nothing of a person never seen with others (a talk-show guest alone in the chair): the
    learnt directions are those that tell apart people seen together."""
    table, who, track = _video(seed=8, people=2, nuisance=1.5)
    # Person 0 alone after frame 10 (person 1 has left): a piece with no face of one frame in another cluster.
    keep = ~((who == 1) & (np.array(table.frames) >= 10))
    table = FaceTable(ids=np.arange(keep.sum()), sources=[s for s, k in zip(table.sources, keep) if k],
                      frames=[f for f, k in zip(table.frames, keep) if k],
                      times=[t for t, k in zip(table.times, keep) if k], bboxes=table.bboxes[keep],
                      face=table.face[keep], cloth=table.cloth[keep], has_cloth=table.has_cloth[keep])
    who, track = who[keep], track[keep]
    labels = np.unique(track, return_inverse=True)[1]
    cannot = CannotLinks.same_frame(table)
    metric = video_metric(table, track, cannot, dims=1)
    alone = track == 1
    assert np.linalg.norm(metric[alone].mean(0) - metric[track == 0].mean(0)) < 0.1  # the metric would join them
    merge = SceneMerge(np.zeros(len(table), np.int64), 1.0, 0.5, 0.36, metric, _seen(cannot, len(table)))
    merged = merge_within_scenes(labels, table.face, table.cloth, table.has_cloth, merge, cannot)
    assert len(np.unique(merged)) == 3
    assert len(set(merged[alone].tolist()) & set(merged[~alone].tolist())) == 0


def test_a_cluster_that_joins_one_seen_with_others_is_then_compared_in_the_metric():
    """Descriptors made by hand: A (never seen with anyone) is B in dlib's space; C (seen with D, as B is) is far
    from both in dlib's space and from each in the metric, but where their mean is. A joins B (dlib's space); the
    two are then seen with someone, and their joined centroid meets C in the metric."""
    rng = np.random.default_rng(10)
    u, v, w, ma, mb, md = l2_normalize(rng.normal(size=(6, 128)).astype(np.float32))
    mc = l2_normalize((ma + mb)[None])[0]  # C is where A and B are together in the metric, far from either alone
    # (cluster, frame): A on frames 0-1, B on 2-3, C on 4-5, D on 3 and 5 (with B and with C).
    faces = [(0, 0, u, ma), (0, 1, u, ma), (1, 2, u, mb), (1, 3, u, mb), (2, 4, v, mc), (2, 5, v, mc),
             (3, 3, w, md), (3, 5, w, md)]
    n = len(faces)
    table = FaceTable(ids=np.arange(n), sources=["v.mp4"] * n, frames=[f[1] for f in faces],
                      times=[f[1] / 5 for f in faces], bboxes=np.tile([0, 0, 10, 10], (n, 1)),
                      face=np.array([f[2] for f in faces]), cloth=np.ones((n, 4), np.float32),
                      has_cloth=np.ones(n, bool))
    labels = np.array([f[0] for f in faces])
    cannot = CannotLinks.same_frame(table)
    merge = SceneMerge(np.zeros(n, np.int64), 1.0, 0.5, 0.36, np.array([f[3] for f in faces]), _seen(cannot, n))
    merged = merge_within_scenes(labels, table.face, table.cloth, table.has_cloth, merge, cannot)
    assert merged.tolist() == [0, 0, 0, 0, 0, 0, 1, 1]


def test_a_video_whose_tracks_never_vary_keeps_dlibs_descriptors():
    """A frozen frame repeated: every face of a track is the same, the within-track scatter is zero."""
    table, _, track = _video(seed=11)
    frozen = table.face.copy()
    for t in np.unique(track):
        frozen[track == t] = frozen[track == t][0]
    table.face = frozen
    out = video_metric(table, track, CannotLinks.same_frame(table), dims=3)
    np.testing.assert_allclose(out, l2_normalize(frozen), atol=1e-6)
