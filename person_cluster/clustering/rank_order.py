"""Rank-order clustering (Zhu, Wen and Sun, CVPR 2011), as seed 003 used it for face tagging.

Two clusters are close when they appear in each other's neighbour lists near the top: the asymmetric distance
``D(a, b) = sum_{i=0..O_a(b)} O_b(f_a(i))`` sums the ranks, in b's list, of a's neighbours up to b, and the
rank-order distance is ``(D(a, b) + D(b, a)) / min(O_a(b), O_b(a))``. A merge also needs the absolute cluster
distance (closest pair) to be small relative to the local density: ``d(a, b) / phi(a, b) < rank_normalized_threshold``,
``phi`` being the members' mean distance to their K nearest faces. Candidate merges are applied transitively and
the process repeats on the merged clusters until nothing changes.

Neighbour lists are truncated at K (an item not in the list has rank K), as in the paper's fast variant, so the
algorithm only needs each face's K nearest neighbours and works on a kNN graph as well as on all pairs.
"""

from __future__ import annotations

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from ..config import ClusteringConfig
from .base import Clusterer
from .distances import DenseDistances, GraphDistances


class RankOrderClustering(Clusterer):
    @classmethod
    def from_config(cls, config: ClusteringConfig) -> RankOrderClustering:
        return cls(config.rank_neighbors, config.rank_threshold, config.rank_normalized_threshold)

    def __init__(self, n_neighbors: int = 20, threshold: float = 14.0, normalized_threshold: float = 1.0,
                 max_iter: int = 50) -> None:
        if n_neighbors < 2 or threshold <= 0 or normalized_threshold <= 0:
            raise ValueError("n_neighbors must be >= 2 and the thresholds > 0")
        self.n_neighbors = n_neighbors
        self.threshold = threshold
        self.normalized_threshold = normalized_threshold
        self.max_iter = max_iter

    def fit_predict(self, distances: DenseDistances | GraphDistances) -> np.ndarray:
        """Labels 0..k-1."""
        n, k = distances.n, self.n_neighbors
        if n < 2:
            return np.zeros(n, dtype=np.int64)
        nbr, nd = distances.neighbours(k)
        valid = nbr >= 0
        local = np.where(valid, nd, 0).sum(1) / np.maximum(valid.sum(1), 1)  # mean distance to the K nearest
        rows = np.repeat(np.arange(n), valid.sum(1))
        edge_a, edge_b, edge_d = rows, nbr[valid], nd[valid]
        labels = np.arange(n)
        for _ in range(self.max_iter):
            merged = self._merge_step(labels, edge_a, edge_b, edge_d, local)
            if merged is None:
                break
            labels = merged
        _, labels = np.unique(labels, return_inverse=True)
        return labels.astype(np.int64)

    def _merge_step(self, labels: np.ndarray, ea: np.ndarray, eb: np.ndarray, ed: np.ndarray,
                    local: np.ndarray) -> np.ndarray | None:
        _, c = np.unique(labels, return_inverse=True)
        m, k = int(c.max()) + 1, self.n_neighbors
        ca, cb = c[ea], c[eb]
        between = ca != cb
        if not between.any():
            return None
        # Cluster distance = closest pair, over the known (neighbour) pairs, both directions.
        a = np.concatenate([ca[between], cb[between]])
        b = np.concatenate([cb[between], ca[between]])
        d = np.concatenate([ed[between], ed[between]])
        order = np.lexsort((b, d, a))  # per cluster: nearest first, ties by index
        a, b, d = a[order], b[order], d[order]
        first = np.ones(len(a), bool)
        first[1:] = (a[1:] != a[:-1]) | (b[1:] != b[:-1])
        a, b, d = a[first], b[first], d[first]  # unique (a, b), still nearest first per a
        start = np.searchsorted(a, np.arange(m))
        rank = np.arange(len(a)) - start[a] + 1  # 1-based: rank 0 is the cluster itself
        keep = rank <= k
        a, b, d, rank = a[keep], b[keep], d[keep], rank[keep]
        # lists[x, r] = r-th neighbour of cluster x (column 0 = itself), -1 beyond the list.
        lists = np.full((m, k + 1), -1, np.int64)
        lists[:, 0] = np.arange(m)
        lists[a, rank] = b
        # Rank lookup by key x * m + y; (a, b) are grouped by a but ordered by distance within, so sort the keys.
        keys = a * m + b
        key_order = np.argsort(keys)
        sorted_keys, sorted_rank = keys[key_order], rank[key_order]  # never empty: some pair is "between"

        def o(x: np.ndarray, y: np.ndarray) -> np.ndarray:
            """Rank of y in x's list; K when absent; 0 for y == x."""
            q = x * m + y
            pos = np.minimum(np.searchsorted(sorted_keys, q), len(sorted_keys) - 1)
            r = np.where(sorted_keys[pos] == q, sorted_rank[pos], k)
            return np.where(x == y, 0, r)

        def asym(x: np.ndarray, y: np.ndarray, r_xy: np.ndarray) -> np.ndarray:
            total = np.zeros(len(x), np.float64)
            for i in range(k + 1):
                use = (i <= r_xy) & (lists[x, i] >= 0)
                total[use] += o(y[use], lists[x[use], i])
            return total

        r_ab, r_ba = rank, o(b, a)
        dr = (asym(a, b, r_ab) + asym(b, a, r_ba)) / np.minimum(r_ab, r_ba)
        size = np.bincount(c, minlength=m)
        local_sum = np.bincount(c, weights=local, minlength=m)
        phi = (local_sum[a] + local_sum[b]) / (size[a] + size[b])
        dn = np.divide(d, phi, out=np.full_like(d, np.inf), where=phi > 0)
        link = (dr < self.threshold) & (dn < self.normalized_threshold)
        if not link.any():
            return None
        adj = coo_matrix((np.ones(int(link.sum())), (a[link], b[link])), shape=(m, m))
        _, comp = connected_components(adj, directed=False)
        if comp.max() + 1 == m:
            return None
        return comp[c]
