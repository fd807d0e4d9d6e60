"""dlib's MMOD CNN face detector: better on profiles and small faces than HOG, but seconds per frame on a CPU."""

from __future__ import annotations

import dlib
import numpy as np

from ..config import DetectionConfig
from ..models import dlib_model_path
from ..records import Box, Detection
from .base import Detector


class MmodDetector(Detector):
    default_max_side = 1280
    default_score_threshold = 0.0

    @classmethod
    def check_model(cls) -> None:
        dlib_model_path("cnn_detector")

    def __init__(self, config: DetectionConfig) -> None:
        super().__init__(config)
        self.detector = dlib.cnn_face_detection_model_v1(dlib_model_path("cnn_detector"))
        self.upsample = config.upsample

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        return [
            Detection(Box(d.rect.left(), d.rect.top(), d.rect.right() + 1, d.rect.bottom() + 1), float(d.confidence))
            for d in self.detector(rgb, self.upsample)
            if d.confidence >= self.score_threshold
        ]
