"""dlib's ResNet face descriptor (128-d), computed on a chip aligned with the 5-point landmarks.

Two steps, because they run in different places:
- :class:`FaceAligner` (in the worker threads, beside detection): 5-point landmarks and dlib's own aligned
  150x150 chip (``dlib.get_face_chip``), the exact input dlib's ``compute_face_descriptor`` builds internally.
  Descriptors of resized box crops would be markedly worse.
- :class:`FaceEncoder` (in the main thread, batched with the clothing CNN): chips -> descriptors, either by
  dlib's network run by onnxruntime (``face.backend: onnx``, the default; the same weights, defined in torch by
  dlib_resnet.py and exported once by onnx_export.py; agrees with dlib to 5e-7 and is ~40x faster on a batch) or
  by dlib itself (``face.backend: dlib``; needed for ``num_jitters > 0``).
"""

from __future__ import annotations

from typing import Any

import dlib
import numpy as np

from ..config import FaceConfig
from ..models import DLIB_MODELS, dlib_model_path
from ..records import Box
from .dlib_resnet import CHIP_SIZE
from .onnx_export import cnn_session


class FaceAligner:
    def __init__(self, padding: float) -> None:
        self.landmarks = dlib.shape_predictor(dlib_model_path("landmarks5"))
        self.padding = padding

    def __call__(self, rgb: np.ndarray, box: Box) -> np.ndarray:
        """The aligned (150, 150, 3) uint8 RGB chip of the face in ``box``."""
        rect = dlib.rectangle(box.left, box.top, box.right - 1, box.bottom - 1)
        return dlib.get_face_chip(rgb, self.landmarks(rgb, rect), size=CHIP_SIZE, padding=self.padding)


class FaceEncoder:
    dim = 128

    def __init__(self, config: FaceConfig, threads: int = 1) -> None:
        """``threads``: onnxruntime's threads (the onnx backend)."""
        self.backend = config.backend
        self.num_jitters = config.num_jitters
        self.batch_size = config.batch_size
        path = dlib_model_path("descriptor")
        if self.backend == "onnx":
            def build() -> tuple[Any, Any, dict]:
                import torch

                from .dlib_resnet import build_torch_net

                return build_torch_net(path), torch.zeros(1, CHIP_SIZE, CHIP_SIZE, 3, dtype=torch.uint8), {0: "n"}

            self.session = cnn_session("dlib-resnet", (DLIB_MODELS["descriptor"][1],), build, threads)
        else:
            self.model = dlib.face_recognition_model_v1(path)

    def __call__(self, chips: list[np.ndarray]) -> np.ndarray:
        """(n, 128) float32 descriptors of aligned chips."""
        if not chips:
            return np.zeros((0, self.dim), np.float32)
        if self.backend == "dlib":
            return np.array([self.model.compute_face_descriptor(c, self.num_jitters) for c in chips], np.float32)
        out = [self.session.run(None, {"input": np.stack(chips[i : i + self.batch_size])})[0]
               for i in range(0, len(chips), self.batch_size)]
        return np.concatenate(out).astype(np.float32, copy=False)


class FaceEmbedder:
    """One face at a time, for simple callers: ``embedder(rgb, box) -> (128,) float32``."""

    dim = FaceEncoder.dim

    def __init__(self, config: FaceConfig) -> None:
        self.align = FaceAligner(config.padding)
        self.encode = FaceEncoder(config)

    def __call__(self, rgb: np.ndarray, box: Box) -> np.ndarray:
        return self.encode([self.align(rgb, box)])[0]
