"""dlib's HOG + linear SVM frontal face detector: no model file, frontal faces >= ~80 px / 2^upsample.

Two speed options, both measured against the Norton truth (docs/speed.md, "dlib HOG options"):
- ``upsample_with: opencv`` doubles the frame with OpenCV's bilinear resize and scans it without dlib's own
  upsampling: the same scan of the same 2x pyramid, but dlib's ``pyramid_up`` costs about a sixth of the detector's
  time on a 700-px frame, OpenCV's resize almost nothing. Boxes differ from dlib's by a pixel or so.
- ``grayscale: true`` scans the luma image: HOG computes one gradient per pixel instead of three (a third faster).
"""

from __future__ import annotations

import cv2
import numpy as np

from ..config import DetectionConfig
from ..models import frontal_face_detector
from ..records import Box, Detection
from .base import Detector


class HogDetector(Detector):
    default_max_side = 1280
    default_score_threshold = 0.0  # dlib's adjust_threshold
    releases_gil = True  # two threads detect 2.0x as fast as one (Norton frames, landmarks and chips included)

    def __init__(self, config: DetectionConfig) -> None:
        super().__init__(config)
        self.detector = frontal_face_detector()
        self.upsample = config.upsample
        self.opencv_upsample = config.upsample_with == "opencv"
        self.grayscale = config.grayscale

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        img = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY) if self.grayscale else rgb
        factor, dlib_upsample = 1, self.upsample
        if self.opencv_upsample and self.upsample:
            factor, dlib_upsample = 2**self.upsample, 0
            img = cv2.resize(img, None, fx=factor, fy=factor, interpolation=cv2.INTER_LINEAR)
        rects, scores, _ = self.detector.run(img, dlib_upsample, self.score_threshold)
        return [
            Detection(Box(round(r.left() / factor), round(r.top() / factor), round((r.right() + 1) / factor),
                          round((r.bottom() + 1) / factor)), float(s))
            for r, s in zip(rects, scores)
        ]
