"""How much a face's descriptor can be trusted, from what extraction measured about it.

dlib's descriptor is reliable on a sharp, frontal, well-detected face and drifts on a turned, lowered, blurred or
tiny one: such faces sit far from the rest of their person and close to other people's poor faces (two profiles
look alike). On the shared truths, how far a face lies from its own person's mean grows with each of these cues
(Spearman's rho on friends_kitchen's 361 faces): the distance between the descriptors of the chip and of its mirror
image +0.49 (a frontal face is nearly symmetric; a profile mirrored is another profile), the detector's score
-0.48, the face's size -0.45, the chip's sharpness -0.41.

:func:`face_quality` turns them into one score in [0, 1] per face; clustering lets only good faces form clusters
and assigns the poor ones afterwards (see :mod:`.clustering.gate`).
"""

from __future__ import annotations

import cv2
import numpy as np

from .records import FaceTable


def chip_sharpness(chip: np.ndarray) -> float:
    """Variance of the Laplacian of the aligned chip's grey image: low for blur (motion, focus) and for tiny faces
    blown up to the chip's 150 px. Measured on the chip, so every face is on the same scale whatever its size."""
    grey = cv2.cvtColor(chip, cv2.COLOR_RGB2GRAY)
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


def flip_distance(table: FaceTable) -> np.ndarray | None:
    """Distance between each face's normalised descriptor and its mirror image's (None without mirror images)."""
    from .fusion import l2_normalize  # here: the extraction workers import this module, and fusion imports scipy

    if table.face_flip is None:
        return None
    return np.linalg.norm(l2_normalize(table.face) - l2_normalize(table.face_flip), axis=1)


def face_descriptors(table: FaceTable) -> np.ndarray:
    """The descriptor clustering uses for ``table``'s faces, which has mirror images (``face_flip``): the mean of a
    face's and its mirror image's (normalised; a face not mirrored is its own, so its own descriptor)."""
    from .fusion import l2_normalize

    return l2_normalize(l2_normalize(table.face) + l2_normalize(table.face_flip))


# Each cue maps linearly from 0 (poor) to 1 (good) between these values (below/above: clipped). Chosen from the
# cues' spread on the shared clips (flip distance p50 0.14-0.16, p90 0.19-0.25; CenterFace's score p10 0.69-0.73;
# size p10 30-80 px), so that about the worst tenth of a typical clip's faces fall below 0.5.
FLIP_GOOD, FLIP_POOR = 0.18, 0.30  # mirror-image descriptor distance
SIZE_GOOD, SIZE_POOR = 48, 24  # shorter side of the face box in the frame, pixels
SHARP_GOOD, SHARP_POOR = 6.0, 2.0  # variance of the Laplacian of the 150-px chip


def _ramp(value: np.ndarray, poor: float, good: float) -> np.ndarray:
    return np.clip((value - poor) / (good - poor), 0.0, 1.0)


def face_quality(table: FaceTable, score_range: tuple[float, float] | None = None) -> np.ndarray:
    """(n,) quality in [0, 1]: the worst of the face's cues (a face is as reliable as its weakest side). Cues the
    table lacks (no mirror images; no sharpness in an older cache) are left out. ``score_range``: the detector
    scores that map to 0 and 1 (None: the detector's score says nothing about quality)."""
    boxes = table.bboxes
    size = np.minimum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]).astype(np.float64)
    quality = _ramp(size, SIZE_POOR, SIZE_GOOD)
    flip = flip_distance(table)
    if flip is not None:
        quality = np.minimum(quality, _ramp(-flip, -FLIP_POOR, -FLIP_GOOD))
    sharp = np.asarray(table.sharpness, np.float64)
    quality = np.minimum(quality, np.where(np.isnan(sharp), 1.0, _ramp(sharp, SHARP_POOR, SHARP_GOOD)))
    if score_range is not None:
        quality = np.minimum(quality, _ramp(np.asarray(table.scores, np.float64), *score_range))
    return quality
