"""dlib's ResNet face descriptor (128-d), computed on a chip aligned with the 5-point landmarks.

dlib aligns and crops the chip itself from the full-resolution frame (``compute_face_descriptor(img, shape)``),
which is what the model was trained on; descriptors of resized box crops are markedly worse.
"""

from __future__ import annotations

import dlib
import numpy as np

from ..config import FaceConfig
from ..models import dlib_model_path
from ..records import Box


class FaceEmbedder:
    dim = 128

    def __init__(self, config: FaceConfig) -> None:
        self.landmarks = dlib.shape_predictor(dlib_model_path("landmarks5"))
        self.model = dlib.face_recognition_model_v1(dlib_model_path("descriptor"))
        self.num_jitters = config.num_jitters
        self.padding = config.padding

    def __call__(self, rgb: np.ndarray, box: Box) -> np.ndarray:
        rect = dlib.rectangle(box.left, box.top, box.right - 1, box.bottom - 1)
        shape = self.landmarks(rgb, rect)
        desc = self.model.compute_face_descriptor(rgb, shape, self.num_jitters, self.padding)
        return np.asarray(desc, dtype=np.float32)
