"""One grid image per cluster, so a person can check and name it at a glance."""

from __future__ import annotations

import math

import cv2
import numpy as np


def _fit(image: np.ndarray, cell: int) -> np.ndarray:
    h, w = image.shape[:2]
    s = cell / max(h, w)
    small = cv2.resize(image, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
    out = np.full((cell, cell, 3), 32, np.uint8)
    y, x = (cell - small.shape[0]) // 2, (cell - small.shape[1]) // 2
    out[y : y + small.shape[0], x : x + small.shape[1]] = small
    return out


def pick_evenly(n: int, k: int) -> list[int]:
    """k indices spread over range(n), so a long cluster's montage shows all of it, not just its start."""
    if n <= k:
        return list(range(n))
    return sorted({round(i * (n - 1) / (k - 1)) for i in range(k)}) if k > 1 else [0]


def make_montage(crops: list[np.ndarray], title: str, cell: int = 112) -> np.ndarray:
    cols = max(1, math.ceil(math.sqrt(len(crops))))
    rows = max(1, math.ceil(len(crops) / cols))
    bar = 28
    canvas = np.full((bar + rows * cell, cols * cell, 3), 255, np.uint8)
    for i, crop in enumerate(crops):
        r, c = divmod(i, cols)
        canvas[bar + r * cell : bar + (r + 1) * cell, c * cell : (c + 1) * cell] = _fit(crop, cell)
    cv2.putText(canvas, title, (6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
    return canvas
