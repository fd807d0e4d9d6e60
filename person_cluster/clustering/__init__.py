"""Stage 6: clustering. Estimators in the scikit-learn style: parameters in ``__init__``, ``fit_predict`` on a
distance source (:mod:`.distances`: all pairs, or a kNN graph for many faces), labels out with -1 for noise."""

from __future__ import annotations

import numpy as np

from ..config import ClusteringConfig
from .chinese_whispers import ChineseWhispersClustering
from .dbscan import DBSCANClustering
from .distances import DenseDistances, GraphDistances, fused_distance_source
from .hac import HACClustering
from .rank_order import RankOrderClustering

Clusterer = HACClustering | DBSCANClustering | ChineseWhispersClustering | RankOrderClustering


def make_clusterer(config: ClusteringConfig) -> Clusterer:
    if config.algorithm == "dbscan":
        return DBSCANClustering(eps=config.eps, min_samples=config.min_samples)
    if config.algorithm == "chinese_whispers":
        return ChineseWhispersClustering(distance_threshold=config.distance_threshold)
    if config.algorithm == "rank_order":
        return RankOrderClustering(config.rank_neighbors, config.rank_threshold, config.rank_normalized_threshold)
    return HACClustering(distance_threshold=config.distance_threshold, linkage=config.linkage)


def cluster_distances(distances: DenseDistances | GraphDistances, config: ClusteringConfig) -> np.ndarray:
    """Labels for every item of ``distances``."""
    return make_clusterer(config).fit_predict(distances)


__all__ = [
    "ChineseWhispersClustering", "DBSCANClustering", "DenseDistances", "GraphDistances", "HACClustering",
    "RankOrderClustering", "cluster_distances", "fused_distance_source", "make_clusterer",
]
