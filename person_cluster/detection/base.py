"""Shared detector logic: downscale for speed, map boxes back to original pixels, drop tiny faces."""

from __future__ import annotations

from typing import Protocol

import cv2
import numpy as np

from ..records import Box, Detection


class Backend(Protocol):
    def detect(self, rgb: np.ndarray) -> list[tuple[Box, float]]:
        """Boxes (in ``rgb``'s pixels) and scores."""
        ...


class ScaledDetector:
    def __init__(self, backend: Backend, max_side: int, min_face_size: int) -> None:
        self.backend = backend
        self.max_side = max_side
        self.min_face_size = min_face_size

    def __call__(self, rgb: np.ndarray) -> list[Detection]:
        h, w = rgb.shape[:2]
        scale = min(1.0, self.max_side / max(h, w))
        small = rgb if scale >= 1.0 else cv2.resize(rgb, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
        out = []
        for box, score in self.backend.detect(small):
            if scale < 1.0:
                box = Box(*(round(v / scale) for v in box.as_list()))
            if min(box.width, box.height) >= self.min_face_size:
                out.append(Detection(box=box, score=float(score)))
        # A stable order (top-left first) keeps results identical whatever the backend's internal order.
        out.sort(key=lambda d: (d.box.left, d.box.top, d.box.right, d.box.bottom))
        return out
