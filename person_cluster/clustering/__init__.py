"""Stage 6: clustering. Estimators in the scikit-learn style: parameters in ``__init__``, ``fit_predict`` on
precomputed condensed distances (scipy ``pdist`` layout), labels out with -1 for noise."""

from __future__ import annotations

import numpy as np

from ..config import ClusteringConfig
from .dbscan import DBSCANClustering
from .hac import HACClustering


def make_clusterer(config: ClusteringConfig) -> HACClustering | DBSCANClustering:
    if config.algorithm == "dbscan":
        return DBSCANClustering(eps=config.eps, min_samples=config.min_samples)
    return HACClustering(distance_threshold=config.distance_threshold, linkage=config.linkage)


def cluster_distances(distances: np.ndarray, n: int, config: ClusteringConfig) -> np.ndarray:
    """Labels for ``n`` items from their condensed distances."""
    return make_clusterer(config).fit_predict(distances, n)


__all__ = ["DBSCANClustering", "HACClustering", "cluster_distances", "make_clusterer"]
