"""Hierarchical agglomerative clustering cut at an absolute distance (scipy's linkage)."""

from __future__ import annotations

import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage


class HACClustering:
    def __init__(self, distance_threshold: float = 0.40, linkage: str = "average") -> None:
        if distance_threshold <= 0:
            raise ValueError("distance_threshold must be > 0")
        if linkage not in ("average", "complete", "single"):
            raise ValueError("linkage must be average, complete or single")
        self.distance_threshold = distance_threshold
        self.linkage = linkage

    def fit_predict(self, distances: np.ndarray, n: int) -> np.ndarray:
        """Cluster ``n`` items given their condensed distances; labels are 0..k-1."""
        if n < 2:
            return np.zeros(n, dtype=np.int64)
        z = linkage(np.asarray(distances, dtype=np.float64), method=self.linkage)
        # fcluster merges while the linkage height is <= t; "closer than the threshold" means strictly below.
        labels = fcluster(z, t=np.nextafter(self.distance_threshold, 0), criterion="distance")
        return labels.astype(np.int64) - 1
