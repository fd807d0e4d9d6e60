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
