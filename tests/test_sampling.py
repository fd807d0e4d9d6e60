import itertools

import cv2
import numpy as np
import pytest
from conftest import VIDEOS, need, numbered_frame, read_number, write_h264, write_video

from person_cluster.config import SamplingConfig
from person_cluster.records import InputItem
from person_cluster.sampling import InputError, discover_inputs, plan_frames, read_image, read_planned_frames
from person_cluster.sampling.video import _decode, _open


def _frames(item, config):
    return list(read_planned_frames(item, plan_frames(item, config)))


def test_interval_sampling_reads_the_right_frames(tmp_path):
    path = write_video(tmp_path / "v.mp4", [numbered_frame(i) for i in range(50)], fps=10)
    item = InputItem(str(path), "video")
    frames = _frames(item, SamplingConfig(capture_interval_sec=1.0))
    assert [f.index for f in frames] == [0, 10, 20, 30, 40]
    assert [read_number(f.image) for f in frames] == [0, 10, 20, 30, 40]  # decoded content matches the index
    assert [f.time_s for f in frames] == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert all(f.source == str(path) and f.image.shape == (120, 160, 3) for f in frames)

    frames = _frames(item, SamplingConfig(capture_interval_sec=0.5, skip_sec=1.0, stop_sec=3.0))
    assert [f.index for f in frames] == [10, 15, 20, 25]
    assert [read_number(f.image) for f in frames] == [10, 15, 20, 25]


def _opencv_frames(path, indices):
    """The frames OpenCV's sequential reader gives at ``indices``: what frame numbers mean in this project."""
    cap, out, i = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG), {}, 0
    while cap.grab():
        if i in indices:
            out[i] = cap.retrieve()[1]
        i += 1
    cap.release()
    return out


def test_b_frames_are_skipped_unless_sampled(tmp_path):
    path = write_h264(tmp_path / "b.mp4", [numbered_frame(i) for i in range(60)], fps=10)
    item = InputItem(str(path), "video")
    for config in (SamplingConfig(capture_interval_sec=1.0), SamplingConfig(capture_interval_sec=0.3, skip_sec=0.1)):
        frames = _frames(item, config)
        expected = plan_frames(item, config).indices
        assert [f.index for f in frames] == expected and [read_number(f.image) for f in frames] == expected
        reference = _opencv_frames(path, set(expected))
        assert all(np.array_equal(f.image, reference[f.index]) for f in frames)  # the very pixels OpenCV gives
    with _open(str(path)) as container:  # sampling one frame in ten leaves most B-frames undecoded
        decoded = [n for n, _ in _decode(container, frozenset({0, 10, 20, 30, 40, 50}))]
    assert len(decoded) < 40 and {0, 10, 20, 30, 40, 50} <= set(decoded)


def test_variable_frame_rate_frames_are_counted(tmp_path):
    # Timestamps 50 and 150 ms apart: frame numbers cannot follow from timestamps, so frames are counted in order
    # (as OpenCV does) and none is skipped.
    times = [sum(50 if k % 3 else 150 for k in range(i)) for i in range(40)]
    path = write_h264(tmp_path / "vfr.mp4", [numbered_frame(i) for i in range(40)], times_ms=times)
    item = InputItem(str(path), "video")
    frames = _frames(item, SamplingConfig(capture_interval_sec=0.5))
    assert [f.index for f in frames] == plan_frames(item, SamplingConfig(capture_interval_sec=0.5)).indices
    assert [read_number(f.image) for f in frames] == [f.index for f in frames]


def test_shared_videos_read_as_opencv_reads_them():
    """Frame numbers and pixels on real clips (facenet has B-frames, hamilton a non-zero start time)."""
    for name in ("facenet_pytorch_video.mp4", "short_hamilton_clip.mp4"):
        item = InputItem(str(need(VIDEOS) / name), "video")
        config = SamplingConfig(capture_interval_sec=0.7)
        frames = _frames(item, config)
        assert [f.index for f in frames] == plan_frames(item, config).indices
        reference = _opencv_frames(item.source, {f.index for f in frames})
        assert all(np.array_equal(f.image, reference[f.index]) for f in frames), name


def test_scene_mode_samples_each_shot(tmp_path):
    rng = np.random.default_rng(0)
    shots = []
    for _ in range(3):  # three 2-second shots, each a different still picture (blocks of random colour)
        still = cv2.resize(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8), (160, 120), interpolation=cv2.INTER_NEAREST)
        shots.extend([still] * 20)
    path = write_video(tmp_path / "shots.mp4", shots, fps=10)
    item = InputItem(str(path), "video")
    one = [f.index for f in _frames(item, SamplingConfig(mode="scene", min_scene_len_sec=0.5))]
    assert one == [10, 30, 50]
    two = [f.index for f in _frames(item, SamplingConfig(mode="scene", frames_per_scene=2, min_scene_len_sec=0.5))]
    assert two == [6, 13, 26, 33, 46, 53]


def test_discover_inputs_recurses_and_reports_skips(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    cv2.imwrite(str(tmp_path / "a" / "x.jpg"), np.zeros((8, 8, 3), np.uint8))
    cv2.imwrite(str(tmp_path / "a" / "b" / "y y é.png"), np.zeros((8, 8, 3), np.uint8))
    (tmp_path / "a" / "notes.pdf").write_bytes(b"%PDF-1.4")
    (tmp_path / "a" / ".hidden.jpg").write_bytes(b"")
    items, skipped = discover_inputs([str(tmp_path / "a"), str(tmp_path / "missing.mp4")], SamplingConfig())
    assert [i.source for i in items] == [str(tmp_path / "a" / "b" / "y y é.png"), str(tmp_path / "a" / "x.jpg")]
    assert all(i.kind == "image" for i in items)
    reasons = {s.source: s.reason for s in skipped}
    assert "unsupported file type" in reasons[str(tmp_path / "a" / "notes.pdf")]
    assert reasons[str(tmp_path / "missing.mp4")] == "no such file or folder"


def test_read_image_normalises_formats(tmp_path):
    grey16 = (np.arange(64 * 64, dtype=np.uint16).reshape(64, 64) * 16).astype(np.uint16)
    cv2.imwrite(str(tmp_path / "g16.png"), grey16)
    rgba = np.zeros((32, 40, 4), np.uint8)
    rgba[..., 2] = 200
    rgba[..., 3] = 100
    cv2.imwrite(str(tmp_path / "alpha.png"), rgba)
    for name, shape in (("g16.png", (64, 64, 3)), ("alpha.png", (32, 40, 3))):
        img = read_image(str(tmp_path / name))
        assert img.dtype == np.uint8 and img.shape == shape
    assert read_image(str(tmp_path / "alpha.png"))[0, 0, 2] == 200
    (tmp_path / "fake.jpg").write_text("not an image")
    with pytest.raises(InputError, match="not a readable image"):
        read_image(str(tmp_path / "fake.jpg"))


def test_unreadable_videos_raise_input_errors(tmp_path):
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "text.mp4").write_text("hello " * 100)
    for name, msg in (("empty.mp4", "empty"), ("text.mp4", "not a readable video")):
        with pytest.raises(InputError, match=msg):
            plan_frames(InputItem(str(tmp_path / name), "video"), SamplingConfig())


# -- chunks (the Ray engine's work units) ---------------------------------------------------------------------
def _sequential_and_chunked(item, config, chunk_sec, skip=frozenset()):
    """(frames, shot scores) of one sequential read, and of the chunks read one by one, joined."""
    from person_cluster.sampling import plan_chunks, shot_detector
    from person_cluster.sampling.shots import FrameScores

    plan = plan_frames(item, config)
    shots = shot_detector(item, plan, config)
    whole = [(f.index, f.image.tobytes()) for f in read_planned_frames(item, plan, skip, shots)]
    spans = plan_chunks(item.source, plan.last, chunk_sec)
    chunks, parts = [], []
    for span in spans:
        scorer = shot_detector(item, plan, config)
        chunks.append([(f.index, f.image.tobytes()) for f in read_planned_frames(item, plan, skip, scorer, span)])
        parts.append(scorer.scores())
    return plan, spans, (whole, shots.scores()), (chunks, FrameScores.join(parts) if parts else None)


def _check_chunks(item, config, chunk_sec, min_chunks, skip=frozenset()):
    plan, spans, (whole, scores), (chunks, joined) = _sequential_and_chunked(item, config, chunk_sec, skip)
    assert len(spans) >= min_chunks, [(s.first, s.stop) for s in spans]
    assert spans[0].first == 0 and spans[-1].last and spans[-1].stop == plan.last + 1
    assert all(a.stop == b.first for a, b in itertools.pairwise(spans))
    # Frame for frame: the chunks' frames (numbers and pixels) add up to the sequential read's.
    assert [f for chunk in chunks for f in chunk] == whole and sum(map(len, chunks)) == len(whole)
    assert all(chunk and span.first <= chunk[0][0] and chunk[-1][0] < span.stop for chunk, span in zip(chunks, spans)
               if chunk)
    # And the shot detector sees the very frames, scored against the very neighbours, chunk edges included.
    assert joined == scores
    assert joined.shots(config.scene_threshold, config.min_scene_len_sec) == scores.shots(
        config.scene_threshold, config.min_scene_len_sec)
    return spans, whole, scores


def test_keyframe_chunks_add_up_to_the_sequential_read_with_b_frames(tmp_path):
    frames = [numbered_frame(i) for i in range(200)]
    for i, img in enumerate(frames):
        img[60:] = (i // 23) * 40 % 256  # a cut every 23 frames, not on the keyframes (every 12)
    path = write_h264(tmp_path / "b.mp4", frames, fps=10, gop=12)
    item = InputItem(str(path), "video")
    for interval, chunk_sec in ((0.3, 1.0), (0.3, 2.5), (1.0, 7.0), (0.7, 2.0)):
        spans, whole, scores = _check_chunks(item, SamplingConfig(capture_interval_sec=interval), chunk_sec, 3)
        assert all(s.first % 12 == 0 for s in spans)  # on keyframes
        assert [read_number(np.frombuffer(img, np.uint8).reshape(120, 160, 3)) for _, img in whole] == [
            i for i, _ in whole]
        assert len(scores.frames) < 200  # unsampled B-frames stay undecoded in chunks too
    # A resumed run skips the frames it has: it still decodes (and scores) the frames a first run did.
    config = SamplingConfig(capture_interval_sec=0.3)
    plan = plan_frames(item, config)
    _, _, first_run = _check_chunks(item, config, 2.5, 3)
    _, whole, resumed = _check_chunks(item, config, 2.5, 3, skip=frozenset(plan.indices[::2]))
    assert resumed == first_run and [i for i, _ in whole] == plan.indices[1::2]


def test_a_variable_frame_rate_video_is_one_chunk(tmp_path):
    from person_cluster.sampling import plan_chunks

    times = [sum(50 if k % 3 else 150 for k in range(i)) for i in range(40)]
    path = write_h264(tmp_path / "vfr.mp4", [numbered_frame(i) for i in range(40)], times_ms=times, gop=6)
    assert plan_chunks(str(path), 39, 1.0) == []  # frames are counted in order: read from the start, whole


def test_keyframe_chunks_of_the_shared_clips_add_up_to_the_sequential_read():
    """friends_kitchen: starts at a negative pts (an edit list, where seeking lands a keyframe early) and its last
    second does not decode; hamilton starts at a non-zero time; Norton has no B-frames."""
    for name, config, chunk_sec in (("friends_kitchen_clip.mp4", SamplingConfig(capture_interval_sec=1.0), 4.0),
                                    ("short_hamilton_clip.mp4", SamplingConfig(capture_interval_sec=0.5), 2.0),
                                    ("qengineering_Norton_A.mp4", SamplingConfig(stop_sec=12.0), 3.0)):
        item = InputItem(str(need(VIDEOS) / name), "video")
        _check_chunks(item, config, chunk_sec, 3)
