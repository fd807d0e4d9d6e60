import cv2
import numpy as np

from person_cluster.config import DetectionConfig, FaceConfig
from person_cluster.detection import make_detector
from person_cluster.embedding import FaceEmbedder
from person_cluster.fusion import l2_normalize


def _rgb(path):
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def test_hog_finds_the_centred_lfw_face_and_nothing_in_a_blank_frame(lfw):
    detect = make_detector(DetectionConfig(min_face_size=20))
    found = 0
    for path in sorted((lfw / "Colin_Powell").glob("*.jpg"))[:6]:
        dets = detect(_rgb(path))
        centred = [d for d in dets if abs((d.box.left + d.box.right) / 2 - 75) < 25 and abs((d.box.top + d.box.bottom) / 2 - 75) < 30]
        found += bool(centred)
    assert found >= 5
    assert detect(np.full((300, 400, 3), 127, np.uint8)) == []


def test_downscaled_detection_reports_original_pixels(lfw):
    img = _rgb(lfw / "Colin_Powell" / "Colin_Powell_0001.jpg")
    big = cv2.resize(img, None, fx=4, fy=4, interpolation=cv2.INTER_CUBIC)  # 600x600
    small_box = make_detector(DetectionConfig(min_face_size=20))(img)[0].box
    # Detect on a 150-px copy of the 600-px frame: boxes must come back in 600-px coordinates.
    big_box = make_detector(DetectionConfig(max_side=150, min_face_size=20))(big)[0].box
    assert np.allclose(np.array(big_box.as_list()), 4 * np.array(small_box.as_list()), atol=8)
    # min_face_size is in original pixels too: the face is ~300 px in the big frame.
    assert make_detector(DetectionConfig(max_side=150, min_face_size=400))(big) == []


def test_descriptors_separate_people(lfw):
    detect, embed = make_detector(DetectionConfig(min_face_size=20)), FaceEmbedder(FaceConfig())
    vecs = {}
    for person in ("Colin_Powell", "Serena_Williams"):
        for path in sorted((lfw / person).glob("*.jpg"))[:4]:
            img = _rgb(path)
            det = min(detect(img), key=lambda d: abs((d.box.left + d.box.right) / 2 - 75))
            v = embed(img, det.box)
            assert v.shape == (128,) and v.dtype == np.float32 and np.isfinite(v).all()
            vecs.setdefault(person, []).append(v)
    a, b = l2_normalize(np.array(vecs["Colin_Powell"])), l2_normalize(np.array(vecs["Serena_Williams"]))
    within = max(np.linalg.norm(a[i] - a[j]) for i in range(4) for j in range(i + 1, 4))
    between = min(np.linalg.norm(x - y) for x in a for y in b)
    assert within < between


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
