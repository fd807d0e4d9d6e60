"""Scenes: runs of shots of one place and time, within which people keep their clothes.

A cut changes the camera, not the scene: a dialogue cuts back and forth between two or three camera setups that
all show one room. Clothing is compared only between tracks of one scene (people change clothes between scenes),
so a scene should span the whole conversation, however long, and end where the place changes.

Each sampled frame's *background* is described at extraction by a colour histogram of the frame outside its
people (:func:`background_histogram`); a shot's background is the mean over its sampled frames.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from .records import Box, FaceTable

# HSV bins: hue carries the set's colours, saturation and value the lighting.
_BINS = (16, 4, 4)
_WIDTH = 160  # the frame is described at this width: layout detail does not matter, only colours


def background_histogram(image: np.ndarray, faces: Sequence[Box]) -> np.ndarray:
    """L1-normalised HSV histogram (256 bins) of a BGR frame, leaving out each face and the body under it (a
    box 3 face widths wide from half a face above it to 4 faces below), so that the people in a close-up do not
    decide what the place looks like. A frame that is all people is described whole."""
    h, w = image.shape[:2]
    scale = _WIDTH / max(1, w)
    small = cv2.resize(image, (_WIDTH, max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    mask = np.full(small.shape[:2], 255, np.uint8)
    for box in faces:
        fw, fh = box.width * scale, box.height * scale
        cx = (box.left + box.right) / 2 * scale
        x0, x1 = round(cx - 1.5 * fw), round(cx + 1.5 * fw)
        y0, y1 = round(box.top * scale - 0.5 * fh), round(box.bottom * scale + 4 * fh)
        mask[max(0, y0):max(0, y1), max(0, x0):max(0, x1)] = 0
    if mask.mean() < 255 * 0.1:  # under a tenth of the frame left: describe the whole frame
        mask[:] = 255
    hsv = cv2.cvtColor(small, cv2.COLOR_BGR2HSV)
    hist = cv2.calcHist([hsv], [0, 1, 2], mask, list(_BINS), [0, 180, 0, 256, 0, 256]).ravel()
    return (hist / max(float(hist.sum()), 1.0)).astype(np.float32)


def histogram_similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Histogram intersection of two L1-normalised histograms: 1 for the same colours, 0 for none in common."""
    return float(np.minimum(a, b).sum())


def group_shots(backgrounds: Sequence[np.ndarray | None], min_similarity: float, lookahead: int) -> np.ndarray:
    """Scene of each shot of one video (0, 1, ...), from each shot's background histogram (None: no sampled frame
    in it). Shot ``i`` is linked to a later shot ``j`` at most ``lookahead`` shots on when their backgrounds are at
    least ``min_similarity`` alike; a scene ends between two shots that no link spans (the scene transition graph
    of Yeung and Yeo, 1996: a dialogue A-B-A-B is one scene because each A is linked to the next A across B). A
    shot without a background neither links nor breaks a link over it."""
    n = len(backgrounds)
    reach = np.arange(n)  # reach[i]: the furthest shot that shot i, or a link over it, joins
    for i, a in enumerate(backgrounds):
        if a is None:
            continue
        for j in range(i + 1, min(n, i + lookahead + 1)):
            b = backgrounds[j]
            if b is not None and histogram_similarity(a, b) >= min_similarity:
                reach[i] = j
    scene = np.zeros(n, np.int64)
    furthest = 0
    for k in range(1, n):
        furthest = max(furthest, int(reach[k - 1]))
        scene[k] = scene[k - 1] + (furthest < k)
    return scene


def scene_groups(table: FaceTable, min_similarity: float, lookahead: int) -> np.ndarray:
    """Each face's scene, numbered over the whole table (0, 1, ... in order of first face); -1 for a photo. The
    scenes of a video come from :func:`group_shots` over its shots' backgrounds; a video without shots (or faces
    outside them) is one scene."""
    shots_of: dict[str, int] = {}
    for source, shot in table.shot_backgrounds:
        shots_of[source] = max(shots_of.get(source, -1), shot)
    for source, shot in zip(table.sources, table.shots.tolist()):
        shots_of[source] = max(shots_of.get(source, -1), shot)
    scene_of: dict[tuple[str, int], int] = {}
    for source, last in shots_of.items():
        scenes = group_shots([table.shot_backgrounds.get((source, k)) for k in range(last + 1)], min_similarity,
                             lookahead)
        scene_of.update({(source, k): int(s) for k, s in enumerate(scenes)})
    keys: dict[tuple[str, int], int] = {}
    out = np.full(len(table), -1, np.int64)
    for i, (source, frame, shot) in enumerate(zip(table.sources, table.frames, table.shots.tolist())):
        if frame is not None:
            out[i] = keys.setdefault((source, scene_of.get((source, shot), -1)), len(keys))
    return out
