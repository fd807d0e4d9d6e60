"""The extractor as a library object: warm workers reused across runs, results independent of the worker count."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from person_cluster.cache import FeatureCache
from person_cluster.config import Config
from person_cluster.pipeline import Extractor
from person_cluster.sampling import discover_inputs


def _extract(extractor: Extractor, items, path):
    with FeatureCache(path) as cache:
        summary = extractor.run(list(enumerate(items)), cache)
        return summary, cache.load_table()


@pytest.mark.pipeline
@pytest.mark.parametrize("model", ["centerface", "hog"])
def test_warm_extractor_is_reusable_and_matches_one_worker(tmp_path, lfw, model):
    """Both detectors release the GIL, so both run in two worker threads here, each with its own models."""
    paths = [str(p) for person in ("Colin_Powell", "Serena_Williams") for p in sorted((lfw / person).glob("*.jpg"))[:3]]
    config = Config().with_overrides({"runtime.workers": 2, "detection.model": model})
    items, skipped = discover_inputs(paths, config.sampling)
    assert len(items) == 6 and not skipped
    with Extractor(config, progress=False) as warm:
        warm.start_workers(wait=True)
        assert warm.workers == 2 and len(warm._executor._threads) == 2
        first, a = _extract(warm, items, tmp_path / "a.sqlite")
        second, b = _extract(warm, items, tmp_path / "b.sqlite")  # the same worker threads again
    with Extractor(config.with_overrides({"runtime.workers": 1}), progress=False) as single:
        _, c = _extract(single, items, tmp_path / "c.sqlite")
    assert first.frames == second.frames == 6 and first.faces == second.faces == len(a) >= 6
    assert first.seconds > 0
    for other in (b, c):
        assert np.array_equal(a.bboxes, other.bboxes) and a.sources == other.sources
        # Batches of chips may be cut differently; onnxruntime's kernels then round differently, by ~1e-7.
        assert np.allclose(a.face, other.face, atol=1e-5) and np.allclose(a.cloth, other.cloth, atol=1e-5)
    assert np.linalg.norm(a.face, axis=1).min() > 0.5  # real descriptors, not zeros


def test_a_detector_holding_the_gil_runs_in_the_callers_thread():
    x = Extractor.__new__(Extractor)
    x.config = Config().with_overrides({"runtime.workers": 4, "detection.model": "cnn"})
    assert x.workers == 1
    x.config = x.config.with_overrides({"detection.model": "hog"})
    assert x.workers == 4


def test_cnn_threads_default_to_one_per_worker():
    x = Extractor.__new__(Extractor)  # no workers or models needed
    x.config = Config().with_overrides({"runtime.workers": 3})
    assert x.cnn_threads == 3
    x.config = x.config.with_overrides({"runtime.cnn_threads": 1})
    assert x.cnn_threads == 1


def test_workers_do_not_import_torch():
    """Workers only detect and align: no torch import, so they start in a fraction of a second."""
    code = ("import sys; from person_cluster.config import Config; from person_cluster.pipeline import _init_worker, "
            "_analyse_in_worker; import numpy as np; c = Config(); _init_worker(c.detection, c.face); "
            "_analyse_in_worker(np.zeros((120, 160, 3), np.uint8), True); print('torch' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "False"


@pytest.mark.pipeline
def test_api_starts_without_clustering_imports(tmp_path):
    """`run` starts its workers right after `import api`: scikit-learn and scipy (~1.5 s) must not be imported by
    then, neither by the api nor by the CLI's own imports (it stops here at discovery, as nothing is usable); the
    extractor imports them in the background once every frame is decoded (here: at once, as there is none)."""
    code = ("import sys; from person_cluster import cli; "
            "assert cli.main(['run', 'no-such.mp4', '-o', 'o', '-q']) == 2; print(sorted(m for m in ('sklearn', 'scipy', 'torch') "
            "if m in sys.modules)); from person_cluster import api; from person_cluster.config import Config; "
            "x = api.Extractor(Config().with_overrides({'runtime.workers': 1}), False, api.CLUSTERING_MODULES); "
            "from person_cluster.cache import FeatureCache; x.run([], FeatureCache('c.sqlite')); x.close(); "
            "print('sklearn' in sys.modules and 'scipy' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=300,
                       cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["[]", "True"]


@pytest.mark.pipeline
def test_a_cache_made_with_other_settings_is_refused_before_any_write(tmp_path, lfw):
    src = tmp_path / "photos"
    src.mkdir()
    for p in sorted((lfw / "Tony_Blair").glob("*.jpg"))[:2]:
        (src / p.name).write_bytes(p.read_bytes())
    out = tmp_path / "out"
    run = [sys.executable, "-m", "person_cluster", "run", str(src), "-o", str(out), "-q"]
    assert subprocess.run(run, check=False, capture_output=True, timeout=300).returncode == 0
    before = (out / "features.sqlite").read_bytes()
    for change in ("detection.upsample=0", "cloth.stage=features.12"):
        r = subprocess.run([*run, "--set", change], check=False, capture_output=True, text=True, timeout=300)
        assert r.returncode == 2 and "other settings" in r.stderr and "Traceback" not in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1
        assert (out / "features.sqlite").read_bytes() == before


@pytest.mark.pipeline
def test_extractors_built_at_once_in_one_process_all_load_their_models(tmp_path, lfw, monkeypatch):
    """Each extractor loads its CNNs in a background thread, exporting them where they are not cached yet (an empty
    cache here). torch.fx tracing is not thread-safe and patches torch.nn.Module.__call__ process-wide, so exports
    are serialised; without that, this failed with 'CURRENT_PATCHER is None' (two loads)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    config = Config().with_overrides({"runtime.workers": 1, "runtime.queue_frames": 1})  # commits 2 photos at a time
    paths = [str(p) for p in sorted((lfw / "Colin_Powell").glob("*.jpg"))[:12]]
    items, _ = discover_inputs(paths, config.sampling)
    extractors = [Extractor(config, progress=False) for _ in range(3)]  # all load at once ...
    try:
        summary, table = _extract(extractors[0], items, tmp_path / "a.sqlite")  # ... while this one runs its CNNs
        names = {x.cloth_model for x in extractors}
    finally:
        for x in extractors:
            x.close()
    assert summary.faces == len(table) >= 10
    assert len(names) == 1 and next(iter(names)).startswith("mobilenet_v2.")


def test_a_cache_from_before_a_setting_stopped_deciding_the_features_is_still_used(tmp_path):
    """face.backend was an extraction setting until both backends gave the same descriptors: a cache that recorded
    it must still be accepted; one that lacks a current setting, or differs in one, must not."""
    from person_cluster.cache import CacheError

    current = {**Config().extraction_dict(), "inputs": ["a.mp4"]}  # as api.extract binds it
    older = {**current, "face": {**current["face"], "backend": "torch", "batch_size": 32}}
    with FeatureCache(tmp_path / "old.sqlite") as cache:
        cache.bind(older, "m")
        cache.bind(current, "m")
    lacking = {**current, "face": {k: v for k, v in current["face"].items() if k != "padding"}}
    changed = {**current, "face": {**current["face"], "padding": 0.3}}
    for stored, says in ((lacking, "other settings"), (changed, "other settings"),
                         ({**current, "inputs": ["b.mp4"]}, "other inputs; `person-cluster add")):
        with FeatureCache(tmp_path / f"{len(str(stored))}.sqlite") as cache:
            cache.bind(stored, "m")
            with pytest.raises(CacheError, match=says):
                cache.bind(current, "m")


@pytest.mark.pipeline
def test_a_photo_of_a_face_alone_gets_its_face_and_an_old_cache_keeps_its_setting(tmp_path, lfw, monkeypatch):
    """A face cut out at the detector's box (see test_detection_embedding's _tight_crop) is found in a photo
    folder by default (detection.photo_border), not with the border off; video frames are never looked at again;
    a cache made before the setting existed reads as off (config.EARLIER), so that an add extracts as it did."""
    import cv2
    from test_detection_embedding import _tight_crop

    from person_cluster import pipeline
    from person_cluster.config import EARLIER

    photos = tmp_path / "photos"
    photos.mkdir()
    crop = cv2.cvtColor(_tight_crop(lfw), cv2.COLOR_RGB2BGR)
    cv2.imwrite(str(photos / "face.png"), crop)
    video = tmp_path / "clip.avi"  # 4 s at 5 frames/s
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 5, (crop.shape[1], crop.shape[0]))
    for _ in range(20):
        writer.write(crop)
    writer.release()
    config = Config().with_overrides({"sampling.capture_interval_sec": 1.0})
    for overrides, faces in (({}, 1), ({"detection.photo_border": 0.0}, 0)):
        items, _ = discover_inputs([str(photos)], config.sampling)
        with Extractor(config.with_overrides(overrides), progress=False) as extractor:
            summary, table = _extract(extractor, items, tmp_path / f"{faces}.sqlite")
        assert summary.frames == 1 and len(table) == faces
    calls = []
    analyse = pipeline.FrameAnalyzer.__call__
    monkeypatch.setattr(pipeline.FrameAnalyzer, "__call__", lambda self, image, photo=False: calls.append(photo) or
                        analyse(self, image, photo))
    items, _ = discover_inputs([str(photos), str(video)], config.sampling)
    with Extractor(config, progress=False) as extractor:
        _extract(extractor, items, tmp_path / "both.sqlite")
    assert sorted(calls) == [False] * 4 + [True]
    assert EARLIER["detection.photo_border"] == 0.0


@pytest.mark.pipeline
def test_a_photos_faces_get_their_mirror_image_described_and_a_videos_do_not(tmp_path, lfw):
    """face.flip: photos (the default) describes the mirrored chip of a photo's face only (a video's track has
    other views); all: every face's; none: no face's. A mirror image is a real view of the same face: near, not
    equal."""
    import cv2

    image = cv2.imread(str(min((lfw / "Colin_Powell").glob("*.jpg"))))
    photos = tmp_path / "photos"
    photos.mkdir()
    cv2.imwrite(str(photos / "a.png"), image)
    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 5, (image.shape[1], image.shape[0]))
    for _ in range(10):
        writer.write(image)
    writer.release()
    config = Config().with_overrides({"sampling.capture_interval_sec": 1.0})
    items, _ = discover_inputs([str(photos), str(video)], config.sampling)
    tables = {}
    for flip in ("photos", "all", "none"):
        with Extractor(config.with_overrides({"face.flip": flip}), progress=False) as extractor:
            _, tables[flip] = _extract(extractor, items, tmp_path / f"{flip}.sqlite")
    table = tables["photos"]
    photo = np.array([f is None for f in table.frames])
    assert photo.sum() >= 1 and (~photo).sum() >= 2
    distance = np.linalg.norm(table.face - table.face_flip, axis=1)
    assert np.all((distance[photo] > 1e-3) & (distance[photo] < 0.6)) and np.all(distance[~photo] == 0)
    assert np.all(np.linalg.norm(tables["all"].face - tables["all"].face_flip, axis=1) > 1e-3)
    assert np.allclose(tables["all"].face_flip[photo], table.face_flip[photo], atol=1e-5)
    assert tables["none"].face_flip is None
    assert np.allclose(tables["none"].face, table.face, atol=1e-5)  # the faces' own descriptors are the same
