"""dlib's MMOD CNN face detector: better on profiles and small faces, but seconds per frame on a CPU."""

from __future__ import annotations

import dlib
import numpy as np

from ..models import dlib_model_path
from ..records import Box


class CnnBackend:
    def __init__(self, upsample: int, threshold: float) -> None:
        self.detector = dlib.cnn_face_detection_model_v1(dlib_model_path("cnn_detector"))
        self.upsample = upsample
        self.threshold = threshold

    def detect(self, rgb: np.ndarray) -> list[tuple[Box, float]]:
        out = []
        for d in self.detector(rgb, self.upsample):
            if d.confidence >= self.threshold:
                r = d.rect
                out.append((Box(r.left(), r.top(), r.right() + 1, r.bottom() + 1), d.confidence))
        return out
