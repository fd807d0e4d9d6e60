"""Hierarchical agglomerative clustering cut at an absolute distance (scipy's linkage)."""

from __future__ import annotations

import logging

import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

from ..config import ClusteringConfig
from .base import Clusterer
from .distances import DenseDistances, GraphDistances

log = logging.getLogger(__name__)


class HACClustering(Clusterer):
    """Average/complete/single linkage; two clusters merge while their linkage distance is below the threshold.

    On a neighbour graph (many faces) it uses an exact decomposition: every cluster of a cut at ``t`` is connected
    by pairs closer than ``t`` (a merge needs at least one such pair, whatever the linkage), so HAC runs on each
    connected component of that graph separately, with all the distances inside the component. The result equals
    HAC on all pairs whenever the graph holds every pair closer than ``t``.
    """

    @classmethod
    def from_config(cls, config: ClusteringConfig) -> HACClustering:
        return cls(config.distance_threshold, config.linkage)

    def __init__(self, distance_threshold: float = 0.40, linkage: str = "average", max_component: int = 20000) -> None:
        if distance_threshold <= 0:
            raise ValueError("distance_threshold must be > 0")
        if linkage not in ("average", "complete", "single"):
            raise ValueError("linkage must be average, complete or single")
        self.distance_threshold = distance_threshold
        self.linkage = linkage
        self.max_component = max_component

    def _cut(self, condensed: np.ndarray, n: int) -> np.ndarray:
        if n < 2:
            return np.zeros(n, dtype=np.int64)
        z = linkage(np.asarray(condensed, dtype=np.float64), method=self.linkage)
        # fcluster merges while the linkage height is <= t; "closer than the threshold" means strictly below.
        return fcluster(z, t=np.nextafter(self.distance_threshold, 0), criterion="distance").astype(np.int64) - 1

    def fit_predict(self, distances: DenseDistances | GraphDistances) -> np.ndarray:
        """Labels 0..k-1 for every item."""
        if isinstance(distances, DenseDistances):
            return self._cut(distances.condensed, distances.n)
        n = distances.n
        i, j, _ = distances.pairs_below(self.distance_threshold)
        _, comp = connected_components(csr_matrix((np.ones(len(i)), (i, j)), shape=(n, n)), directed=False)
        labels = np.empty(n, np.int64)
        order = np.argsort(comp, kind="stable")
        bounds = np.flatnonzero(np.diff(comp[order])) + 1
        next_label = 0
        for members in np.split(order, bounds):
            if len(members) > self.max_component:
                # All pairs of a component this big would not fit in memory: fall back to linkage along the
                # graph's edges only (scikit-learn's connectivity-constrained HAC), an approximation that is logged.
                log.warning("HAC: a chained component of %d faces; using graph-constrained linkage for it", len(members))
                sub = self._graph_linkage(distances, members)
            else:
                sub = self._cut(distances.among(members), len(members))
            labels[members] = sub + next_label
            next_label += int(sub.max()) + 1
        return labels

    def _graph_linkage(self, distances: GraphDistances, members: np.ndarray) -> np.ndarray:
        from sklearn.cluster import AgglomerativeClustering

        model = AgglomerativeClustering(
            n_clusters=None, linkage=self.linkage, distance_threshold=self.distance_threshold,
            connectivity=distances.graph[members][:, members],
        )
        return model.fit_predict(distances.vectors[members]).astype(np.int64)
