"""The detector interface: downscale for speed, map boxes back to original pixels, drop tiny faces.

Every detector reports boxes in dlib's convention (the square-ish box of dlib's HOG and MMOD detectors): dlib's
5-point landmark model, which aligns the chips for the face descriptor, was trained on such boxes, the clothing
region is placed in face-box units, and the shared truths were made with dlib's boxes. A detector whose boxes
sit elsewhere on the face maps them (see ``centerface.py``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import cv2
import numpy as np

from ..config import DetectionConfig
from ..records import Detection


class Detector(ABC):
    """``detector(rgb) -> list[Detection]`` on an RGB uint8 frame at original resolution.

    Subclasses implement :meth:`detect` on the (possibly downscaled) frame and give their defaults for the
    settings a config may leave null (``detection.max_side``, ``detection.score_threshold``)."""

    default_max_side: ClassVar[int]
    default_score_threshold: ClassVar[float]
    # True when detecting releases the GIL (onnxruntime and dlib's HOG do): the pipeline then runs one detector per
    # worker thread; one that holds it (dlib's MMOD CNN) runs in the pipeline's main thread.
    releases_gil: ClassVar[bool] = False
    # Scores that say "poor face" and "good face" (see person_cluster.quality); None: the score says nothing about
    # how reliable the face's descriptor is.
    quality_scores: ClassVar[tuple[float, float] | None] = None

    @classmethod
    def check_model(cls) -> None:
        """Raise :class:`~person_cluster.models.ModelError` if the detector's model file is missing or altered."""

    def __init__(self, config: DetectionConfig) -> None:
        self.max_side = config.max_side or self.default_max_side
        self.score_threshold = (self.default_score_threshold if config.score_threshold is None
                                else config.score_threshold)
        self.min_face_size = config.min_face_size

    @abstractmethod
    def detect(self, rgb: np.ndarray) -> list[Detection]:
        """Faces in ``rgb``'s own pixels."""

    def __call__(self, rgb: np.ndarray) -> list[Detection]:
        h, w = rgb.shape[:2]
        return self._kept(self._found(rgb), w, h)

    def with_border(self, rgb: np.ndarray, share: float) -> list[Detection]:
        """Faces in ``rgb`` found inside a border of ``share`` of its longer side on every side, made of its edge
        pixels repeated, in ``rgb``'s own pixels: the detector sees a face that fills the image with room around
        it. Faces whose part inside ``rgb`` is smaller than ``min_face_size`` are dropped as usual."""
        h, w = rgb.shape[:2]
        pad = round(share * max(h, w))
        framed = cv2.copyMakeBorder(rgb, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        return self._kept([d.shifted(-pad, -pad) for d in self._found(framed)], w, h)

    def _found(self, rgb: np.ndarray) -> list[Detection]:
        """Every face :meth:`detect` finds in ``rgb`` downscaled to ``max_side``, in ``rgb``'s own pixels."""
        h, w = rgb.shape[:2]
        scale = min(1.0, self.max_side / max(h, w))
        small = rgb if scale >= 1.0 else cv2.resize(rgb, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
        return [d if scale >= 1.0 else d.scaled(1 / scale) for d in self.detect(small)]

    def _kept(self, found: list[Detection], w: int, h: int) -> list[Detection]:
        # The size that counts is what lies inside the frame: a face cut by the frame edge to a sliver gives a
        # useless descriptor that chains people together (LFW: 104 such faces cost 0.035 of pairwise F).
        out = [d for d in found if min((c := d.box.clip(w, h)).width, c.height) >= self.min_face_size]
        # A stable order (top-left first) keeps results identical whatever the backend's internal order.
        out.sort(key=lambda d: (d.box.left, d.box.top, d.box.right, d.box.bottom))
        return out
