"""dlib's ResNet face descriptor (128-d), computed on a chip aligned with the 5-point landmarks.

Two steps, because they run in different places:
- :class:`FaceAligner` (in the worker threads, beside detection): 5-point landmarks and dlib's own aligned
  150x150 chip (``dlib.get_face_chip``), the exact input dlib's ``compute_face_descriptor`` builds internally.
  Descriptors of resized box crops would be markedly worse.
- :class:`FaceEncoder` (in the main thread, batched with the clothing CNN): chips -> descriptors, either by
  dlib's network run in torch (``face.backend: torch``, the default; same weights, agrees with dlib to 5e-7 and
  is ~13x faster on a batch) or by dlib itself (``face.backend: dlib``; needed for ``num_jitters > 0``).
"""

from __future__ import annotations

import dlib
import numpy as np

from ..config import FaceConfig
from ..models import dlib_model_path
from ..records import Box
from .dlib_resnet import CHIP_SIZE


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

    def __init__(self, config: FaceConfig) -> None:
        self.backend = config.backend
        self.num_jitters = config.num_jitters
        self.batch_size = config.batch_size
        if self.backend == "torch":
            from .dlib_resnet import build_torch_net

            self.net = build_torch_net(dlib_model_path("descriptor"))
        else:
            self.model = dlib.face_recognition_model_v1(dlib_model_path("descriptor"))

    def __call__(self, chips: list[np.ndarray]) -> np.ndarray:
        """(n, 128) float32 descriptors of aligned chips."""
        if not chips:
            return np.zeros((0, self.dim), np.float32)
        if self.backend == "dlib":
            return np.array([self.model.compute_face_descriptor(c, self.num_jitters) for c in chips], np.float32)
        import torch

        out = []
        with torch.inference_mode():
            for i in range(0, len(chips), self.batch_size):
                out.append(self.net(torch.from_numpy(np.stack(chips[i : i + self.batch_size]))).numpy())
        return np.concatenate(out).astype(np.float32)


class FaceEmbedder:
    """One face at a time, for simple callers: ``embedder(rgb, box) -> (128,) float32``."""

    dim = FaceEncoder.dim

    def __init__(self, config: FaceConfig) -> None:
        self.align = FaceAligner(config.padding)
        self.encode = FaceEncoder(config)

    def __call__(self, rgb: np.ndarray, box: Box) -> np.ndarray:
        return self.encode([self.align(rgb, box)])[0]
