"""Chinese whispers (Biemann 2006) as dlib implements it for face clustering (``dlib.chinese_whispers``).

Pairs closer than the threshold are edges; each face repeatedly takes the most common label among its
neighbours. dlib's own face-clustering example uses 0.5 on raw 128-d descriptors (distance 0.6 = "same person").
"""

from __future__ import annotations

import dlib
import numpy as np

from ..config import ClusteringConfig
from .base import Clusterer
from .distances import DenseDistances, GraphDistances


class ChineseWhispersClustering(Clusterer):
    @classmethod
    def from_config(cls, config: ClusteringConfig) -> ChineseWhispersClustering:
        return cls(config.distance_threshold)

    def __init__(self, distance_threshold: float = 0.5) -> None:
        if distance_threshold <= 0:
            raise ValueError("distance_threshold must be > 0")
        self.distance_threshold = distance_threshold

    def fit_predict(self, distances: DenseDistances | GraphDistances) -> np.ndarray:
        """Labels 0..k-1 (dlib's run is seeded, so the result is deterministic)."""
        n = distances.n
        if n == 0:
            return np.zeros(0, dtype=np.int64)
        i, j, _ = distances.pairs_below(self.distance_threshold)
        # Self-loops make every face a vertex, including faces with no close neighbour.
        edges = [(k, k) for k in range(n)] + list(zip(i.tolist(), j.tolist()))
        labels = np.asarray(dlib.chinese_whispers(edges), dtype=np.int64)
        _, labels = np.unique(labels, return_inverse=True)
        return labels.astype(np.int64)
