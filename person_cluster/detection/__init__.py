"""Stage 2: face detection. One module per detector behind :class:`base.Detector`; :data:`DETECTORS` names them.

A detector is a callable ``detector(rgb) -> list[Detection]`` taking an RGB uint8 frame at original resolution.
Detection may run on a downscaled copy (``detection.max_side``) but boxes are always returned in original pixels
and in dlib's box convention, and faces smaller than ``detection.min_face_size`` are dropped. Every face of every
frame is kept. Adding a detector: a module with a :class:`base.Detector` subclass, and a line here.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..config import DetectionConfig
    from .base import Detector

# name in the config -> (module in this package, class). Modules are imported only when their detector is made.
DETECTORS: dict[str, tuple[str, str]] = {
    "centerface": ("centerface", "CenterFaceDetector"),  # CenterFace CNN via onnxruntime (default)
    "hog": ("dlib_hog", "HogDetector"),  # dlib HOG + linear SVM, frontal faces only
    "cnn": ("dlib_cnn", "MmodDetector"),  # dlib's MMOD CNN: seconds per frame on a CPU
}


def detector_class(model: str) -> type[Detector]:
    module, name = DETECTORS[model]  # config validation guarantees the name
    return getattr(importlib.import_module(f".{module}", __name__), name)


def make_detector(config: DetectionConfig) -> Detector:
    return detector_class(config.model)(config)


__all__ = ["DETECTORS", "detector_class", "make_detector"]
