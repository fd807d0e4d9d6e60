"""Stage 5: fuse face and clothing features, in one place (:class:`Fusion`).

Each part is L2-normalised and multiplied by its weight; the fused vector is their concatenation, so the squared
fused distance is ``face_weight^2 * d_face^2 + cloth_weight^2 * d_cloth^2``. Where clothing cannot be compared
(either item has no clothing feature, or the two are in different groups: people change clothes between scenes,
so the groups are scenes, or videos with a time window) the face distance stands in for the clothing distance, so
such a pair is judged by the face alone, on the same scale as every other pair: ``hypot(face_weight, cloth_weight)
* d_face``. That holds where no item has a clothing feature too (a folder of face crops), so the same photos
cluster alike whether or not one of them shows clothing; only a clothing weight of 0 (``cloth.enabled: false``)
leaves the face distance times its weight.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.distance import pdist, squareform


def l2_normalize(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms > 0, norms, 1)  # a row of zeros (never described) stays zeros


@dataclass
class Fusion:
    """Fused distances between ``n`` items (faces or tracks): all pairs (:meth:`condensed`), chosen pairs
    (:meth:`pairs`), or fused vectors (:meth:`vectors`, for neighbour search and plots); all by the same rule."""

    face: np.ndarray  # (n, 128) raw or normalised
    cloth: np.ndarray  # (n, d); rows without a clothing feature are ignored
    has_cloth: np.ndarray  # (n,) bool
    face_weight: float = 1.0
    cloth_weight: float = 0.5
    # Clothing is compared only between items of one group (a scene, or a video; -1: a photo, compared with every
    # other photo; None: one group), and with cloth_window (seconds) only between items whose time spans (start,
    # end) are at most that far apart.
    cloth_window: float | None = None
    group: np.ndarray | None = None
    start: np.ndarray | None = None
    end: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.face = l2_normalize(self.face)
        self.cloth = l2_normalize(self.cloth)
        self.has_cloth = np.asarray(self.has_cloth, bool)
        self.n = len(self.face)

    @property
    def uses_cloth(self) -> bool:
        return self.cloth_weight > 0 and self.cloth.shape[1] > 0

    @property
    def face_only(self) -> float:
        """What a face distance is multiplied by where no clothing is compared (the face stands in for it)."""
        return float(np.hypot(self.face_weight, self.cloth_weight))

    def vectors(self) -> np.ndarray:
        """Weighted concatenation of the normalised parts: (n, 128 + d). Their Euclidean distances are the fused
        distances wherever clothing can be compared."""
        if not self.uses_cloth:
            return self.face * self.face_only
        f = self.face * self.face_weight
        c = self.cloth * self.cloth_weight
        c[~self.has_cloth] = 0.0
        return np.concatenate([f, c], axis=1)

    def condensed(self) -> np.ndarray:
        """All pairwise fused distances, condensed (scipy ``pdist`` layout)."""
        d_face = pdist(self.face).astype(np.float64)
        if not self.uses_cloth or self.n < 2:
            return self.face_only * d_face
        valid: np.ndarray | bool = True
        if not self.has_cloth.all():
            missing = ~self.has_cloth
            valid = ~squareform(np.logical_or.outer(missing, missing).astype(np.uint8), checks=False).astype(bool)
        if self.group is not None and not (self.cloth_window is None and (self.group == self.group[0]).all()):
            valid = valid & self._comparable_condensed()
        return self._combine(d_face, pdist(self.cloth).astype(np.float64), valid)

    def pairs(self, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        """Fused distances of the pairs (i[k], j[k]); memory O(number of pairs)."""
        out = np.empty(len(i), np.float64)
        for s in range(0, len(i), 65536):  # chunks bound the temporary (chunk, dim) arrays
            a, b = i[s:s + 65536], j[s:s + 65536]
            d_face = np.linalg.norm(self.face[a] - self.face[b], axis=1).astype(np.float64)
            if not self.uses_cloth:
                out[s:s + len(a)] = self.face_only * d_face
                continue
            d_cloth = np.linalg.norm(self.cloth[a] - self.cloth[b], axis=1).astype(np.float64)
            valid = self.has_cloth[a] & self.has_cloth[b]
            if self.group is not None:
                valid &= self._comparable(a, b)
            out[s:s + len(a)] = self._combine(d_face, d_cloth, valid)
        return out

    def cross(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """(len(rows), len(cols)) fused distances between two sets of items, by matrix products: for the few
        items an ``add`` brings against every item of a library."""
        def dist(x: np.ndarray) -> np.ndarray:
            a, b = x[rows].astype(np.float64), x[cols].astype(np.float64)
            sq = (a * a).sum(1)[:, None] + (b * b).sum(1)[None] - 2 * a @ b.T
            return np.sqrt(np.maximum(sq, 0.0))

        d_face = dist(self.face)
        if not self.uses_cloth:
            return self.face_only * d_face
        valid = self.has_cloth[rows][:, None] & self.has_cloth[cols][None]
        if self.group is not None:
            g = self.group
            valid &= g[rows][:, None] == g[cols][None]
            if self.cloth_window is not None:
                gap = (np.maximum(self.start[rows][:, None], self.start[cols][None])
                       - np.minimum(self.end[rows][:, None], self.end[cols][None]))
                valid &= (g[rows][:, None] < 0) | (gap <= self.cloth_window)
        return self._combine(d_face, dist(self.cloth), valid)

    def _combine(self, d_face: np.ndarray, d_cloth: np.ndarray, valid: np.ndarray | bool) -> np.ndarray:
        d_cloth = np.where(valid, d_cloth, d_face)
        return np.sqrt((self.face_weight * d_face) ** 2 + (self.cloth_weight * d_cloth) ** 2)

    def _comparable(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Whether the clothing of items ``a[k]`` and ``b[k]`` may be compared (same group, within the window)."""
        group = self.group
        same = group[a] == group[b]
        if self.cloth_window is None:
            return same
        gap = np.maximum(self.start[a], self.start[b]) - np.minimum(self.end[a], self.end[b])  # < 0: overlap
        return same & ((group[a] < 0) | (gap <= self.cloth_window))

    def _comparable_condensed(self) -> np.ndarray:
        out = np.empty(self.n * (self.n - 1) // 2, bool)
        group, pos = self.group, 0
        for i in range(self.n - 1):  # row by row: memory O(n) besides the output
            row = slice(pos, pos + self.n - i - 1)
            if self.cloth_window is None:
                out[row] = group[i + 1:] == group[i]
            else:
                out[row] = self._comparable(np.full(self.n - i - 1, i), np.arange(i + 1, self.n))
            pos = row.stop
        return out


def fuse(face: np.ndarray, cloth: np.ndarray, has_cloth: np.ndarray, face_weight: float, cloth_weight: float) -> np.ndarray:
    """Fused vectors: (n, 128 + d), see :meth:`Fusion.vectors`."""
    return Fusion(face, cloth, has_cloth, face_weight, cloth_weight).vectors()


def fused_distances(face: np.ndarray, cloth: np.ndarray, has_cloth: np.ndarray, face_weight: float,
                    cloth_weight: float) -> np.ndarray:
    """Condensed fused distances between all items, see :meth:`Fusion.condensed`."""
    return Fusion(face, cloth, has_cloth, face_weight, cloth_weight).condensed()
