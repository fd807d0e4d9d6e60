"""YOLO (darknet) labels: one ``class cx cy w h`` line per face, normalised to the frame size."""

from __future__ import annotations

import numpy as np


def yolo_line(class_id: int, bbox: np.ndarray | list[int], width: int, height: int) -> str:
    left, top, right, bottom = (float(v) for v in bbox)
    cx, cy = (left + right) / 2 / width, (top + bottom) / 2 / height
    w, h = (right - left) / width, (bottom - top) / height
    return f"{class_id} {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}"
