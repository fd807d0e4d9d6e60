"""DBSCAN (scikit-learn), kept as the baseline the seed projects used."""

from __future__ import annotations

import numpy as np
from scipy.spatial.distance import squareform
from sklearn.cluster import DBSCAN


class DBSCANClustering:
    def __init__(self, eps: float = 0.5, min_samples: int = 5) -> None:
        if eps <= 0 or min_samples < 1:
            raise ValueError("eps must be > 0 and min_samples >= 1")
        self.eps = eps
        self.min_samples = min_samples

    def fit_predict(self, distances: np.ndarray, n: int) -> np.ndarray:
        """Labels 0..k-1, -1 for noise."""
        if n == 0:
            return np.zeros(0, dtype=np.int64)
        square = squareform(np.asarray(distances, dtype=np.float64), checks=False) if n > 1 else np.zeros((1, 1))
        model = DBSCAN(eps=self.eps, min_samples=self.min_samples, metric="precomputed")
        return model.fit_predict(square).astype(np.int64)
