"""FINCH, first-neighbour clustering (Sarfraz, Sharma and Stiefelhagen, CVPR 2019), on fused distances.

FINCH links every item to its first (nearest) neighbour; the connected components of those links are the first
partition. The clusters then become the items, and the same step on them gives the next, coarser partition, until
one cluster is left: a hierarchy with no parameter. Here it runs on the distance sources of :mod:`.distances` (all
pairs, or a kNN graph), not on feature vectors: the distance between two clusters is their average linkage (the
mean of all distances between their members) in place of the paper's distance between cluster means. The fused
distances are no Euclidean distances of one vector per item (clothing is compared within a scene only, and a
cannot-linked pair is set to ``FAR``), so cluster means would not stand for them; the average keeps both rules.
That is also why the ``finch-clust`` package (the authors' code) is not used: it takes a feature matrix and
recomputes means of features at every level.

Which partition: the paper's hierarchy has no stopping rule but "the first partition" or a wanted number of
clusters. A count is a per-clip number; the first partition joins every item to its nearest other item however far
it is, so a person seen once joins someone. ``level="threshold"`` (the default) keeps a first-neighbour link only
where the two are closer than ``distance_threshold`` (the key the other algorithms use) and repeats the steps until
no link is left: the coarsest partition built from such links. Measured with the default config (issue 21,
evaluation/benchmark_quality.py; BCubed F, capped / first partition): norton 1.000 / 0.701 (94% of its tracks'
first neighbours are farther than 0.36: people seen once), kitchen 0.787 / 0.692, crops 0.568 / 0.332, living_room
0.433 / 0.465. The third rule, the coarsest level of the uncapped hierarchy all of whose links are below the
threshold, is the singletons on all four: each first partition already holds a link of 0.46 to 0.54.

Cluster distances are exact on all pairs and on a kNN graph alike: only clusters with one pair closer than the
threshold can have an average below it, so those pairs (``pairs_below``) name the candidates, and each candidate's
average comes from ``among``. Ties go to the lower index: the result is deterministic.
"""

from __future__ import annotations

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from ..config import ClusteringConfig
from .base import Clusterer
from .distances import DenseDistances, GraphDistances

LEVELS = ("threshold", "first")


def _components(n: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Labels 0..k-1 of the connected components of the links (a, b), numbered by their first item."""
    graph = coo_matrix((np.ones(len(a)), (a, b)), shape=(n, n))
    _, comp = connected_components(graph, directed=False)
    _, first = np.unique(comp, return_index=True)
    order = np.empty(len(first), np.int64)
    order[np.argsort(first, kind="stable")] = np.arange(len(first))
    return order[comp]


def _first_links(m: int, a: np.ndarray, b: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each of ``m`` items' first neighbour among the pairs (a, b) with distances d (both directions), nearest
    first and ties by lower index: the links (item, first neighbour)."""
    src, dst, dist = np.concatenate([a, b]), np.concatenate([b, a]), np.concatenate([d, d])
    order = np.lexsort((dst, dist, src))
    src, dst = src[order], dst[order]
    first = np.ones(len(src), bool)
    first[1:] = src[1:] != src[:-1]
    return src[first], dst[first]


class FINCHClustering(Clusterer):
    """First-neighbour clustering; ``level``: "threshold" (links closer than ``distance_threshold``, repeated until
    none is left) or "first" (the paper's first partition, no threshold)."""

    @classmethod
    def from_config(cls, config: ClusteringConfig) -> FINCHClustering:
        return cls(config.distance_threshold)

    def __init__(self, distance_threshold: float = 0.36, level: str = "threshold", max_levels: int = 100) -> None:
        if distance_threshold <= 0:
            raise ValueError("distance_threshold must be > 0")
        if level not in LEVELS:
            raise ValueError(f"level must be one of {', '.join(LEVELS)}")
        self.distance_threshold = distance_threshold
        self.level = level
        self.max_levels = max_levels

    def fit_predict(self, distances: DenseDistances | GraphDistances) -> np.ndarray:
        """Labels 0..k-1 for every item."""
        n = distances.n
        if n < 2:
            return np.zeros(n, dtype=np.int64)
        if self.level == "first":
            nbr, _ = distances.neighbours(1)
            src = np.flatnonzero(nbr[:, 0] >= 0)  # on a graph, an item without edges stays alone
            return _components(n, src, nbr[src, 0])
        i, j, d = distances.pairs_below(self.distance_threshold)
        labels = _components(n, *_first_links(n, i, j, d))  # level 1: clusters of single items, average = d
        sums: dict[tuple[int, int], float] = {}  # cluster (first member, size) -> sum of distances within it
        for _ in range(self.max_levels):
            merged = self._merge(distances, labels, i, j, sums)
            if merged is None:
                break
            labels = merged
        return labels

    def _merge(self, distances: DenseDistances | GraphDistances, labels: np.ndarray, i: np.ndarray, j: np.ndarray,
               sums: dict[tuple[int, int], float]) -> np.ndarray | None:
        """One FINCH step on the clusters ``labels``: the next partition, or None if no link is left."""
        m = int(labels.max()) + 1
        ca, cb = labels[i], labels[j]
        between = ca != cb
        if not between.any():
            return None
        pairs = np.unique(np.stack([np.minimum(ca, cb), np.maximum(ca, cb)], 1)[between], axis=0)
        order = np.argsort(labels, kind="stable")
        bounds = np.searchsorted(labels[order], np.arange(m + 1))
        members = [order[bounds[c]:bounds[c + 1]] for c in range(m)]  # ascending item order within each

        def within(c: int) -> float:
            key = (int(members[c][0]), len(members[c]))
            if key not in sums:
                sums[key] = float(distances.among(members[c]).sum()) if len(members[c]) > 1 else 0.0
            return sums[key]

        avg = np.empty(len(pairs))
        for k, (a, b) in enumerate(pairs.tolist()):
            both = np.sort(np.concatenate([members[a], members[b]]))
            cross = float(distances.among(both).sum()) - within(a) - within(b)
            avg[k] = cross / (len(members[a]) * len(members[b]))
        close = avg < self.distance_threshold
        if not close.any():
            return None
        src, dst = _first_links(m, pairs[close, 0], pairs[close, 1], avg[close])
        comp = _components(m, src, dst)
        if comp.max() + 1 == m:
            return None
        return comp[labels]
