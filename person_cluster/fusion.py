"""Stage 5: fuse face and clothing features.

Each part is L2-normalised and multiplied by its weight; the fused vector is their concatenation, so the squared
fused distance is ``face_weight^2 * d_face^2 + cloth_weight^2 * d_cloth^2``. A face without a clothing feature
has a zero clothing part; in pairwise distances the face distance then stands in for the missing clothing
distance, so such faces are judged by their face alone, on the same scale as everyone else.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.distance import pdist, squareform


def l2_normalize(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)


def fuse(face: np.ndarray, cloth: np.ndarray, has_cloth: np.ndarray, face_weight: float, cloth_weight: float) -> np.ndarray:
    """Weighted concatenation of the normalised parts: (n, 128 + d)."""
    f = l2_normalize(face) * face_weight
    c = l2_normalize(cloth) * cloth_weight
    c[~has_cloth] = 0.0
    return np.concatenate([f, c], axis=1) if cloth_weight > 0 and c.shape[1] else f


def fused_distances(
    face: np.ndarray, cloth: np.ndarray, has_cloth: np.ndarray, face_weight: float, cloth_weight: float
) -> np.ndarray:
    """Condensed (scipy ``pdist`` layout) fused distances between all faces."""
    d_face = pdist(l2_normalize(face))
    if cloth_weight == 0 or cloth.shape[1] == 0 or len(face) < 2:
        return face_weight * d_face
    d_cloth = pdist(l2_normalize(cloth))
    both = True
    if not has_cloth.all():
        missing = ~has_cloth
        both = ~squareform(np.logical_or.outer(missing, missing).astype(np.uint8), checks=False).astype(bool)
    return _combine(d_face, d_cloth, both, face_weight, cloth_weight)


def _combine(d_face: np.ndarray, d_cloth: np.ndarray, both: np.ndarray | bool, face_weight: float,
             cloth_weight: float) -> np.ndarray:
    """The fusion rule for distances: the face distance stands in where either face lacks clothing."""
    d_cloth = np.where(both, d_cloth, d_face)
    return np.sqrt((face_weight * d_face) ** 2 + (cloth_weight * d_cloth) ** 2)


def fused_pair_distances(
    face_n: np.ndarray, cloth_n: np.ndarray, has_cloth: np.ndarray, face_weight: float, cloth_weight: float,
    i: np.ndarray, j: np.ndarray,
) -> np.ndarray:
    """Fused distances for the pairs (i[k], j[k]) of already-normalised parts, by the same rule as
    :func:`fused_distances`; memory is O(number of pairs)."""
    out = np.empty(len(i), np.float64)
    for s in range(0, len(i), 65536):  # chunks bound the temporary (chunk, dim) arrays
        a, b = i[s:s + 65536], j[s:s + 65536]
        d_face = np.linalg.norm(face_n[a] - face_n[b], axis=1).astype(np.float64)
        if cloth_weight == 0 or cloth_n.shape[1] == 0:
            out[s:s + len(a)] = face_weight * d_face
            continue
        d_cloth = np.linalg.norm(cloth_n[a] - cloth_n[b], axis=1).astype(np.float64)
        out[s:s + len(a)] = _combine(d_face, d_cloth, has_cloth[a] & has_cloth[b], face_weight, cloth_weight)
    return out
