"""What the clustering algorithms read: fused distances between faces, for all pairs or on a neighbour graph.

Up to ``dense_max_faces`` faces every pair is computed (scipy's condensed ``pdist`` layout, O(n^2) memory). Above
that, :class:`GraphDistances` keeps only each face's k nearest neighbours (found with faiss, see :mod:`.knn`) with
their exact fused distances: O(n k) memory. Both offer the same three questions, which is all the algorithms ask:
which pairs are closer than t, the k nearest neighbours of every face, and all distances within a small subset.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
from scipy.sparse import csr_matrix
from scipy.spatial.distance import squareform

from ..fusion import Fusion

if TYPE_CHECKING:
    from ..constraints import CannotLinks


def condensed_index(i: np.ndarray, j: np.ndarray, n: int) -> np.ndarray:
    """Position of pair (i, j), i < j, in a condensed distance vector of ``n`` items."""
    i = np.asarray(i, np.int64)
    j = np.asarray(j, np.int64)
    return n * i - i * (i + 1) // 2 + (j - i - 1)


def condensed_pairs(k: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of :func:`condensed_index`: the pair (i, j) at each condensed position ``k``."""
    k = np.asarray(k, np.int64)
    i = (n - 2 - np.floor(np.sqrt(-8.0 * k + 4.0 * n * (n - 1) - 7) / 2 - 0.5)).astype(np.int64)
    j = k + i + 1 - n * (n - 1) // 2 + (n - i) * (n - i - 1) // 2
    return i, j


class DenseDistances:
    """All pairwise distances of ``n`` items, condensed."""

    def __init__(self, condensed: np.ndarray, n: int) -> None:
        self.condensed = np.asarray(condensed, np.float64)
        self.n = n
        if len(self.condensed) != n * (n - 1) // 2:
            raise ValueError(f"condensed distances of {n} items must have {n * (n - 1) // 2} entries")

    def forbid(self, links: CannotLinks, far: float) -> None:
        """Set the cannot-linked pairs to ``far`` (see :mod:`person_cluster.constraints`)."""
        self.condensed[condensed_index(links.i, links.j, self.n)] = far

    @classmethod
    def from_square(cls, square: np.ndarray) -> DenseDistances:
        return cls(squareform(np.asarray(square, np.float64), checks=False), len(square))

    def pairs_below(self, threshold: float, inclusive: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Pairs (i < j) closer than ``threshold`` (or at it, if ``inclusive``) and their distances."""
        k = np.flatnonzero(self.condensed <= threshold if inclusive else self.condensed < threshold)
        i, j = condensed_pairs(k, self.n)
        return i, j, self.condensed[k]

    def among(self, idx: np.ndarray) -> np.ndarray:
        """Condensed distances between the items ``idx`` (sorted ascending)."""
        idx = np.asarray(idx, np.int64)
        a, b = np.triu_indices(len(idx), 1)
        return self.condensed[condensed_index(idx[a], idx[b], self.n)]

    def subset(self, idx: np.ndarray) -> DenseDistances:
        """The distances among the items ``idx`` (sorted ascending), numbered 0.. in that order. Row by row, so
        that memory is the result's only (``among`` would hold two index arrays per pair)."""
        idx = np.asarray(idx, np.int64)
        m = len(idx)
        out = np.empty(m * (m - 1) // 2, np.float64)
        pos = 0
        for k in range(m - 1):
            i, js = idx[k], idx[k + 1:]
            out[pos:pos + len(js)] = self.condensed[self.n * i - i * (i + 1) // 2 + js - i - 1]
            pos += len(js)
        return DenseDistances(out, m)

    def neighbours(self, k: int, rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Each item's (or each of ``rows``') ``k`` nearest other items, nearest first: indices and distances
        (len(rows), k); -1/inf pads."""
        n, k_eff = self.n, min(k, self.n - 1)
        rows_all = np.arange(n) if rows is None else np.asarray(rows, np.int64)
        idx = np.full((len(rows_all), k), -1, np.int64)
        dist = np.full((len(rows_all), k), np.inf)
        if k_eff < 1:
            return idx, dist
        cols = np.arange(n)
        for start in range(0, len(rows_all), 1024):  # row blocks keep memory at O(1024 n)
            block_rows = rows_all[start:start + 1024]
            a, b = np.minimum(block_rows[:, None], cols[None, :]), np.maximum(block_rows[:, None], cols[None, :])
            same = a == b
            block = self.condensed[np.where(same, 0, condensed_index(a, b, n))]
            block[same] = np.inf
            part = np.argpartition(block, k_eff - 1, axis=1)[:, :k_eff]
            d = np.take_along_axis(block, part, axis=1)
            order = np.lexsort((part, d), axis=1)  # by distance, ties by index: deterministic
            out = slice(start, start + len(block_rows))
            idx[out, :k_eff] = np.take_along_axis(part, order, axis=1)
            dist[out, :k_eff] = np.take_along_axis(d, order, axis=1)
        return idx, dist


class GraphDistances:
    """Exact fused distances on the edges of a symmetric k-nearest-neighbour graph; others are unknown (far)."""

    def __init__(self, graph: csr_matrix, pair_distances: Callable[[np.ndarray, np.ndarray], np.ndarray],
                 vectors: np.ndarray) -> None:
        self.graph = graph.tocsr()
        self.vectors = vectors  # the fused vectors the graph was built from
        self.graph.sort_indices()
        self.n = graph.shape[0]
        self._pair_distances = pair_distances  # (i, j) -> exact distances, for subsets
        self._forbidden: tuple[CannotLinks, float] | None = None

    def forbid(self, links: CannotLinks, far: float) -> None:
        """Set the cannot-linked pairs to ``far``, on the graph's edges and in :meth:`among`."""
        self._forbidden = (links, far)
        g = self.graph
        for a, b in ((links.i, links.j), (links.j, links.i)):  # both directions of the symmetric graph
            for r, c in zip(a, b):
                lo, hi = g.indptr[r], g.indptr[r + 1]
                k = lo + np.searchsorted(g.indices[lo:hi], c)
                if k < hi and g.indices[k] == c:
                    g.data[k] = far

    def pairs_below(self, threshold: float, inclusive: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        coo = self.graph.tocoo()
        keep = (coo.row < coo.col) & (coo.data <= threshold if inclusive else coo.data < threshold)
        return coo.row[keep].astype(np.int64), coo.col[keep].astype(np.int64), coo.data[keep].astype(np.float64)

    def among(self, idx: np.ndarray) -> np.ndarray:
        idx = np.asarray(idx, np.int64)
        a, b = np.triu_indices(len(idx), 1)
        d = self._pair_distances(idx[a], idx[b])
        if self._forbidden is not None:
            links, far = self._forbidden
            pa, pb = links.among(idx)
            d[condensed_index(np.minimum(pa, pb), np.maximum(pa, pb), len(idx))] = far
        return d

    def subset(self, idx: np.ndarray) -> GraphDistances:
        """The graph among the items ``idx`` (sorted ascending), numbered 0.. in that order."""
        idx = np.asarray(idx, np.int64)
        sub = GraphDistances(self.graph[idx][:, idx], lambda a, b: self._pair_distances(idx[a], idx[b]),
                             self.vectors[idx])
        if self._forbidden is not None:
            from ..constraints import CannotLinks

            links, far = self._forbidden
            a, b = links.among(idx)
            sub._forbidden = (CannotLinks(a, b, len(idx)), far)
        return sub

    def neighbours(self, k: int, rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        rows = np.arange(self.n) if rows is None else np.asarray(rows, np.int64)
        idx = np.full((len(rows), k), -1, np.int64)
        dist = np.full((len(rows), k), np.inf)
        g = self.graph
        for out, r in enumerate(rows):
            cols, d = g.indices[g.indptr[r]:g.indptr[r + 1]], g.data[g.indptr[r]:g.indptr[r + 1]]
            order = np.lexsort((cols, d))[:k]
            idx[out, :len(order)] = cols[order]
            dist[out, :len(order)] = d[order]
        return idx, dist


def fused_distance_source(fusion: Fusion, dense_max: int = 20000,
                          knn_neighbors: int = 32) -> DenseDistances | GraphDistances:
    """Fused distances between the items of ``fusion``: all pairs up to ``dense_max`` items, else a kNN graph."""
    if fusion.n <= dense_max:
        return DenseDistances(fusion.condensed(), fusion.n)
    from .knn import knn_graph

    vectors = fusion.vectors()
    return GraphDistances(knn_graph(vectors, knn_neighbors, fusion.pairs), fusion.pairs, vectors)
