"""Stage 2: face detection. One module per backend; ``make_detector`` picks one from the config.

A detector is a callable ``detector(rgb) -> list[Detection]`` taking an RGB uint8 frame at original resolution.
Detection may run on a downscaled copy (``detection.max_side``) but boxes are always returned in original pixels,
and faces smaller than ``detection.min_face_size`` are dropped. Every face of every frame is kept.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..config import DetectionConfig
from ..records import Detection
from .base import ScaledDetector

Detector = Callable[[np.ndarray], list[Detection]]


def make_detector(config: DetectionConfig) -> Detector:
    if config.model == "hog":
        from .dlib_hog import HogBackend

        backend = HogBackend(config.upsample, config.score_threshold, config.upsample_with, config.grayscale)
    elif config.model == "cnn":
        from .dlib_cnn import CnnBackend

        backend = CnnBackend(config.upsample, config.score_threshold)
    else:  # config validation makes this unreachable
        raise ValueError(f"unknown detector {config.model!r}")
    return ScaledDetector(backend, max_side=config.max_side, min_face_size=config.min_face_size)


__all__ = ["Detector", "ScaledDetector", "make_detector"]
