"""The k-nearest-neighbour graph used above ``clustering.dense_max_faces`` faces.

faiss (Meta's similarity-search library; a CPU wheel on PyPI) with an inverted-file index (IVF-Flat): k-means
cells over the fused vectors, each face searched in its ``NPROBE`` nearest cells. Faces of one person sit close
together, so their neighbours share cells and recall of the pairs that matter (those under the clustering
threshold) is high, while a search costs O(n * nprobe * n / nlist) instead of O(n^2). Measured here on 100k
256-d vectors, 2 cores shared with another job: IVF built + searched in 18 s, faiss HNSW in 78 s (one-thread
build) or 69 s (two); hnswlib has no wheel here and pynndescent a numba JIT warm-up. IVF is also deterministic (seeded k-means, order-free assignment); HNSW's parallel
build is not. Distances of the found pairs are then recomputed exactly by the fusion rule.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
from scipy.sparse import csr_matrix

log = logging.getLogger(__name__)

NPROBE = 8
TRAIN_PER_CELL = 39  # training vectors per k-means cell (faiss's minimum before it warns)
SEED = 1234


def knn_graph(vectors: np.ndarray, k: int, pair_distances: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> csr_matrix:
    """Symmetric sparse graph: every face linked to its ``k`` nearest neighbours, edge value = fused distance.

    A face without clothing has a zero clothing part in ``vectors``: its distance to every face with clothing grows
    by the same amount, so its neighbour order is still decided by the face part alone.
    """
    import faiss

    x = np.ascontiguousarray(vectors, dtype=np.float32)
    n, dim = x.shape
    nlist = max(1, min(int(4 * np.sqrt(n)), n // TRAIN_PER_CELL))
    index = faiss.IndexIVFFlat(faiss.IndexFlatL2(dim), dim, nlist)
    index.cp.seed = SEED
    index.cp.niter = 10
    sample = np.random.default_rng(SEED).choice(n, size=min(n, nlist * TRAIN_PER_CELL), replace=False)
    index.train(x[np.sort(sample)])
    index.add(x)
    index.nprobe = NPROBE
    _, found = index.search(x, k + 1)
    rows = np.repeat(np.arange(n, dtype=np.int64), k + 1)
    cols = found.reshape(-1).astype(np.int64)
    keep = (cols >= 0) & (cols != rows)
    a, b = np.minimum(rows[keep], cols[keep]), np.maximum(rows[keep], cols[keep])
    pairs = np.unique(a * n + b)
    a, b = pairs // n, pairs % n
    d = pair_distances(a, b)
    log.info("kNN graph: %d faces, %d edges (k=%d, %d cells)", n, len(a), k, nlist)
    return csr_matrix((np.concatenate([d, d]), (np.concatenate([a, b]), np.concatenate([b, a]))), shape=(n, n))
