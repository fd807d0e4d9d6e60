"""Our port of dlib's face descriptor network (torch, exported to onnxruntime) must give dlib's descriptors, and
refuse other files."""

from pathlib import Path

import cv2
import dlib
import numpy as np
import pytest

from person_cluster.config import DetectionConfig, FaceConfig
from person_cluster.detection import make_detector
from person_cluster.embedding import FaceAligner, FaceEncoder
from person_cluster.embedding.dlib_resnet import read_dlib_resnet
from person_cluster.models import ModelError, dlib_model_path


def test_onnx_backend_matches_dlib_on_real_faces(lfw):
    detect, align = make_detector(DetectionConfig(min_face_size=20)), FaceAligner(0.25)
    rec = dlib.face_recognition_model_v1(dlib_model_path("descriptor"))
    sp = dlib.shape_predictor(dlib_model_path("landmarks5"))
    chips, expected = [], []
    for person in ("Colin_Powell", "Serena_Williams", "Tony_Blair"):
        for path in sorted((lfw / person).glob("*.jpg"))[:4]:
            rgb = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
            for det in detect(rgb):
                chips.append(align(rgb, det.box))
                b = det.box
                shape = sp(rgb, dlib.rectangle(b.left, b.top, b.right - 1, b.bottom - 1))
                # dlib's own end-to-end call: alignment and network inside dlib.
                expected.append(np.array(rec.compute_face_descriptor(rgb, shape, 0, 0.25), np.float32))
    assert len(chips) >= 10
    expected = np.array(expected)
    ours = FaceEncoder(FaceConfig(backend="onnx", batch_size=5))(chips)  # several batches, one partial
    assert ours.shape == (len(chips), 128) and ours.dtype == np.float32
    assert np.abs(ours - expected).max() < 1e-4
    assert np.allclose(FaceEncoder(FaceConfig(backend="dlib"))(chips), expected, atol=1e-6)


def test_reader_refuses_a_file_that_is_not_the_descriptor_network(tmp_path):
    with pytest.raises(ModelError, match="not dlib's face descriptor network"):
        read_dlib_resnet(dlib_model_path("landmarks5"))
    data = Path(dlib_model_path("descriptor")).read_bytes()
    cut = tmp_path / "cut.dat"
    cut.write_bytes(data[: len(data) // 2])  # ends inside a weight tensor
    with pytest.raises(ModelError, match="truncated or corrupt"):
        read_dlib_resnet(cut)
    # Whole layers missing (the block before the last down-sampling one): the layer sequence check catches it.
    start, end = data.find(b"\x05con_4", 12_884_000) - 1, data.find(b"\x05con_4", 17_609_000) - 1
    assert 0 < start < end
    cut.write_bytes(data[:start] + data[end:])
    with pytest.raises(ModelError, match="layer sequence"):
        read_dlib_resnet(cut)


def test_jitter_needs_the_dlib_backend():
    from person_cluster.config import Config, ConfigError

    with pytest.raises(ConfigError, match="face.backend: dlib"):
        Config().with_overrides(["face.num_jitters=2"])
    assert Config().with_overrides(["face.num_jitters=2", "face.backend=dlib"]).face.num_jitters == 2


def test_renamed_settings_say_their_new_names():
    from person_cluster.config import Config, ConfigError

    with pytest.raises(ConfigError, match="'torch' is now 'onnx'"):
        Config().with_overrides(["face.backend=torch"])
    with pytest.raises(ConfigError, match="renamed to runtime.cnn_threads"):
        Config().with_overrides(["runtime.torch_threads=1"])
    with pytest.raises(ConfigError, match="renamed to runtime.cnn_threads"):
        Config.from_dict({"runtime": {"torch_threads": 1}})
