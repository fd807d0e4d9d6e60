import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from person_cluster.config import ClothConfig
from person_cluster.embedding.clothing import (
    COLOUR_DIM,
    ClothEmbedder,
    cloth_region,
    colour_histograms,
    resolve_weights,
)
from person_cluster.models import ModelError
from person_cluster.records import Box


def test_cloth_region_geometry_and_clipping():
    cfg = ClothConfig(width=2.0, top=0.5, height=2.0, min_visible=0.5, min_pixels=16)
    face = Box(100, 50, 140, 100)  # 40 x 50
    assert cloth_region(face, 1000, 1000, cfg) == Box(80, 125, 160, 225)
    # Cut off at the bottom edge: kept if at least half is visible, clipped to the frame.
    assert cloth_region(face, 1000, 180, cfg) == Box(80, 125, 160, 180)
    assert cloth_region(face, 1000, 150, cfg) is None  # less than half visible
    assert cloth_region(Box(10, 10, 14, 14), 1000, 1000, cfg) is None  # too small to mean anything


@pytest.fixture(scope="module")
def embedder():
    return ClothEmbedder(ClothConfig(batch_size=3))


def _fabric(kind: str) -> np.ndarray:
    """Synthetic 'shirts' that differ the way clothes do: colour and pattern."""
    y, x = np.mgrid[0:128, 0:128]
    img = np.zeros((128, 128, 3), np.uint8)
    if kind == "red_check":
        img[((y // 16 + x // 16) % 2) == 0] = (40, 40, 220)
        img[((y // 16 + x // 16) % 2) == 1] = (240, 240, 240)
    elif kind == "blue_stripes":
        img[(x // 8) % 2 == 0] = (200, 60, 20)
    else:  # plain grey gradient
        img[...] = (y * 2 // 3)[..., None].astype(np.uint8)
    return img


def test_embedder_is_deterministic_batched_and_discriminative(embedder):
    a, b, c = _fabric("red_check"), _fabric("blue_stripes"), _fabric("grey")
    rng = np.random.default_rng(0)
    a_again = np.clip(a[4:, 6:].astype(int) + rng.normal(0, 8, a[4:, 6:].shape), 0, 255).astype(np.uint8)
    feats = embedder([a, b, c, a_again, np.zeros((40, 60, 3), np.uint8)])  # 5 crops in batches of 3
    assert feats.shape == (5, embedder.dim) and (embedder.cnn_dim, embedder.dim) == (24, 24 + COLOUR_DIM)
    assert np.allclose(np.linalg.norm(feats, axis=1), 1.0, atol=1e-5)  # three parts of norm 1, over sqrt(3)
    assert np.allclose(feats[1], embedder([b])[0], atol=1e-4)  # batching does not change results
    n = feats / np.linalg.norm(feats, axis=1, keepdims=True)
    d = lambda i, j: float(np.linalg.norm(n[i] - n[j]))
    assert d(0, 3) < d(0, 1) and d(0, 3) < d(0, 2)  # the same shirt, shifted and noisy, beats other shirts
    assert embedder([]).shape == (0, 96)


def test_colour_histograms_are_hellinger_embedded_and_tell_colours_apart():
    red, blue, grey = (np.full((30, 40, 3), c, np.uint8) for c in ((30, 30, 200), (200, 60, 20), (128, 128, 128)))
    h = {k: colour_histograms(v) for k, v in (("red", red), ("blue", blue), ("grey", grey))}
    for v in h.values():
        assert v.shape == (COLOUR_DIM,) and v.dtype == np.float32
        assert np.isclose(np.linalg.norm(v[:64]), 1.0) and np.isclose(np.linalg.norm(v[64:]), 1.0)
    # One colour each: disjoint hue-saturation bins, so that part is as far apart as it can be (sqrt 2).
    assert np.isclose(np.linalg.norm(h["red"][:64] - h["blue"][:64]), np.sqrt(2))
    half = np.concatenate([red[:, :20], blue[:, 20:]], axis=1)  # half red, half blue: between the two
    d = lambda a, b: float(np.linalg.norm(a - b))
    mixed = colour_histograms(half)
    assert d(mixed, h["red"]) < d(h["blue"], h["red"]) and d(mixed, h["blue"]) < d(h["blue"], h["red"])
    assert np.array_equal(colour_histograms(red[::2, ::2]), h["red"])  # the size of the region does not matter


def test_without_colour_the_feature_is_the_cnns_alone(embedder):
    plain = ClothEmbedder(ClothConfig(batch_size=3, colour=False))
    crop = _fabric("red_check")
    assert plain.dim == plain.cnn_dim == embedder.cnn_dim
    assert np.allclose(plain([crop]), embedder.cnn_features([crop]), atol=1e-6)
    assert plain.weights_name + "+hsv" == embedder.weights_name  # a cache knows which of the two it holds


def test_missing_weights_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(ModelError, match=r"resnet18-f37072fd\.pth.*" + str(tmp_path)):
        resolve_weights("resnet18", None)
    with pytest.raises(ModelError, match="does not exist"):
        resolve_weights("mobilenet_v2", str(tmp_path / "nope.pth"))
    with pytest.raises(ModelError, match="no model named"):
        resolve_weights("not_a_net", None)


def test_altered_weights_are_refused(tmp_path, monkeypatch):
    good, _, _ = resolve_weights("mobilenet_v2", None)
    ckpt = tmp_path / "hub" / "checkpoints"
    ckpt.mkdir(parents=True)
    bad = ckpt / good.name
    shutil.copy(good, bad)
    with open(bad, "r+b") as f:
        f.seek(1000)
        f.write(b"\x00\x01\x02\x03")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(ModelError, match="corrupt or altered"):
        resolve_weights("mobilenet_v2", None)
    with pytest.raises(ModelError, match="corrupt or altered"):
        resolve_weights("mobilenet_v2", str(bad))


def test_unknown_stage_lists_valid_ones():
    with pytest.raises(ModelError, match="no stage 'layer9'.*features.13"):
        ClothEmbedder(ClothConfig(stage="layer9"))


def test_features_are_those_of_the_torchvision_network(embedder, lfw):
    """The embedder runs our export of the network (batch norm folded, normalisation inside) in onnxruntime; the
    features must be those of torchvision's own network on the same crops."""
    import cv2
    import torch
    import torchvision
    from torchvision.models.feature_extraction import create_feature_extractor

    path, _, _ = resolve_weights("mobilenet_v2", None)
    plain = torchvision.models.get_model("mobilenet_v2", weights=None)
    plain.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    plain = create_feature_extractor(plain.eval(), {ClothConfig().stage: "feat"}).eval()
    crops = [cv2.imread(str(p)) for p in sorted((lfw / "Colin_Powell").glob("*.jpg"))[:4]]
    batch = np.stack([cv2.resize(c, (224, 224), interpolation=cv2.INTER_AREA) for c in crops])
    batch = (batch[..., ::-1].astype(np.float32) / 255.0 - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225]
    with torch.inference_mode():
        expected = plain(torch.from_numpy(batch.astype(np.float32)).permute(0, 3, 1, 2))["feat"].mean(dim=(2, 3))
    got = embedder.cnn_features(crops)
    assert got.shape == expected.shape
    assert np.abs(got - expected.numpy()).max() < 1e-3 * np.abs(expected.numpy()).max()


def test_torchvision_free_backbone_lists_torchvisions_weights_and_checks_its_stage():
    from person_cluster.embedding.clothing import KNOWN_WEIGHTS, torchvision_weights

    for backbone, files in KNOWN_WEIGHTS.items():
        assert list(files.items()) == list(torchvision_weights(backbone).items())
    with pytest.raises(ModelError, match="features.0 to features.18"):
        ClothEmbedder(ClothConfig(stage="features.19"))


def test_torch_hub_dir_is_torchs(tmp_path, monkeypatch):
    import torch

    from person_cluster.embedding.clothing import torch_hub_dir

    for env in ({}, {"XDG_CACHE_HOME": str(tmp_path / "xdg")}, {"TORCH_HOME": str(tmp_path / "th")}):
        monkeypatch.delenv("TORCH_HOME", raising=False)
        monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        assert torch_hub_dir() == Path(torch.hub.get_dir())


def test_the_networks_are_exported_once_then_run_without_torch(tmp_path):
    """torch (1.5 s to import) is needed only to export the CNNs, the first time; torchvision never, for the
    default backbone. A run on a machine that has the export imports neither."""
    code = ("import sys; from person_cluster.config import ClothConfig, FaceConfig; "
            "from person_cluster.embedding import ClothEmbedder, FaceEncoder; "
            "e = ClothEmbedder(ClothConfig()); f = FaceEncoder(FaceConfig()); "
            "print(e.dim, f.dim, 'torch' in sys.modules, 'torchvision' in sys.modules)")
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path)}
    runs = [subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=300,
                           env=env) for _ in range(2)]
    assert [r.returncode for r in runs] == [0, 0], runs[0].stderr + runs[1].stderr
    assert runs[0].stdout.split() == ["96", "128", "True", "False"]  # exported
    assert runs[1].stdout.split() == ["96", "128", "False", "False"]  # loaded
    assert len(list((tmp_path / "person_cluster").glob("*.onnx"))) == 2
