"""dlib's HOG + linear SVM frontal face detector: no model file, fast on CPU, frontal faces >= ~80 px / 2^upsample."""

from __future__ import annotations

import dlib
import numpy as np

from ..records import Box


class HogBackend:
    def __init__(self, upsample: int, threshold: float) -> None:
        self.detector = dlib.get_frontal_face_detector()
        self.upsample = upsample
        self.threshold = threshold

    def detect(self, rgb: np.ndarray) -> list[tuple[Box, float]]:
        rects, scores, _ = self.detector.run(rgb, self.upsample, self.threshold)
        return [(Box(r.left(), r.top(), r.right() + 1, r.bottom() + 1), s) for r, s in zip(rects, scores)]
