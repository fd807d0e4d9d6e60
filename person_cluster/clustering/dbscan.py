"""DBSCAN (scikit-learn), kept as the baseline the seed projects used."""

from __future__ import annotations

import numpy as np
from scipy.sparse import csr_matrix
from sklearn.cluster import DBSCAN

from ..config import ClusteringConfig
from .base import Clusterer
from .distances import DenseDistances, GraphDistances


class DBSCANClustering(Clusterer):
    honours_constraints = False

    @classmethod
    def from_config(cls, config: ClusteringConfig) -> DBSCANClustering:
        return cls(config.eps, config.min_samples)

    def __init__(self, eps: float = 0.5, min_samples: int = 5) -> None:
        if eps <= 0 or min_samples < 1:
            raise ValueError("eps must be > 0 and min_samples >= 1")
        self.eps = eps
        self.min_samples = min_samples

    def fit_predict(self, distances: DenseDistances | GraphDistances) -> np.ndarray:
        """Labels 0..k-1, -1 for noise."""
        n = distances.n
        if n == 0:
            return np.zeros(0, dtype=np.int64)
        # A sparse radius graph: scikit-learn treats the stored entries as the neighbours (the point itself
        # counts, as in DBSCAN's definition, through the explicit zero diagonal).
        i, j, d = distances.pairs_below(self.eps, inclusive=True)
        diag = np.arange(n)
        graph = csr_matrix(
            (np.concatenate([d, d, np.zeros(n)]), (np.concatenate([i, j, diag]), np.concatenate([j, i, diag]))),
            shape=(n, n),
        )
        model = DBSCAN(eps=self.eps, min_samples=self.min_samples, metric="precomputed")
        return model.fit_predict(graph).astype(np.int64)
