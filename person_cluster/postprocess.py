"""Stage 7: merge clusters whose centroids are close, then mark small clusters as unassigned (-1).

Merging is done per pass on the graph "centroid distance below threshold": its connected components become the
new clusters, so the result does not depend on the order of the clusters. With cannot-links (two clusters that
share a frame, see :mod:`.constraints`) the close pairs are joined closest first and a join that would bring a
forbidden pair together is passed over (Kruskal's order: without constraints, the same components). Passes repeat
(with new centroids) until nothing changes or ``max_merge_passes``.
"""

from __future__ import annotations

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial.distance import cdist

from .config import PostprocessConfig
from .constraints import CannotLinks
from .fusion import l2_normalize

UNASSIGNED = -1


def _centroids(x: np.ndarray, labels: np.ndarray, k: int, mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Normalised mean of each cluster's (normalised) rows; second value: clusters that have any row."""
    sums = np.zeros((k, x.shape[1]), np.float64)
    counts = np.zeros(k, np.int64)
    use = labels >= 0 if mask is None else (labels >= 0) & mask
    np.add.at(sums, labels[use], x[use])
    np.add.at(counts, labels[use], 1)
    return l2_normalize(sums.astype(np.float32)), counts > 0


def merge_close_clusters(
    labels: np.ndarray,
    face: np.ndarray,
    cloth: np.ndarray,
    has_cloth: np.ndarray,
    face_threshold: float | None,
    cloth_threshold: float | None,
    max_passes: int = 5,
    cannot: CannotLinks | None = None,
) -> np.ndarray:
    """Merge clusters whose face centroids (or clothing centroids) are closer than the thresholds, never two that
    ``cannot`` (between faces) keeps apart."""
    labels = compact(labels)
    f = l2_normalize(face)
    c = l2_normalize(cloth)
    for _ in range(max_passes):
        k = int(labels.max()) + 1 if labels.size and labels.max() >= 0 else 0
        if k < 2:
            break
        pairs = []
        if face_threshold is not None:
            cf, _ = _centroids(f, labels, k)
            i, j, d = _close_pairs(cf, face_threshold)
            pairs.append((i, j, d / face_threshold))
        if cloth_threshold is not None and c.shape[1]:
            cc, present = _centroids(c, labels, k, has_cloth)
            i, j, d = _close_pairs(cc, cloth_threshold)
            keep = present[i] & present[j]
            pairs.append((i[keep], j[keep], d[keep] / cloth_threshold))
        i, j, d = (np.concatenate([p[n] for p in pairs]) if pairs else np.zeros(0) for n in range(3))
        i, j = i.astype(np.int64), j.astype(np.int64)
        forbidden = cannot.forbidden_between(labels) if cannot is not None and len(cannot) else set()
        if forbidden:
            n_comp, comp = _join_allowed(i, j, d, k, forbidden)
        else:
            n_comp, comp = connected_components(csr_matrix((np.ones(len(i), bool), (i, j)), shape=(k, k)),
                                                directed=False)
        if n_comp == k:
            break
        labels = np.where(labels >= 0, comp[np.maximum(labels, 0)], UNASSIGNED)
    return compact(labels)


def _join_allowed(i: np.ndarray, j: np.ndarray, d: np.ndarray, k: int,
                  forbidden: set[tuple[int, int]]) -> tuple[int, np.ndarray]:
    """Components of the close pairs joined closest first (ties by index), skipping a join that would put a
    forbidden pair of clusters into one component."""
    parent = list(range(k))
    apart: dict[int, set[int]] = {c: set() for c in range(k)}  # root -> roots it may never join
    for a, b in forbidden:
        apart[a].add(b)
        apart[b].add(a)

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for n in np.lexsort((j, i, d)):
        ra, rb = find(int(i[n])), find(int(j[n]))
        if ra == rb or rb in apart[ra]:
            continue
        parent[rb] = ra
        merged = apart[ra] | apart.pop(rb)
        for other in merged:  # the others now keep away from ra instead of rb
            apart[other].discard(rb)
            apart[other].add(ra)
        apart[ra] = merged
    roots = np.array([find(x) for x in range(k)])
    _, comp = np.unique(roots, return_inverse=True)
    return int(comp.max()) + 1, comp  # k >= 2: a forbidden pair joins two clusters


def _close_pairs(x: np.ndarray, threshold: float, block: int = 2048) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Index pairs of rows of ``x`` closer than ``threshold`` and their distances, in row blocks: memory
    O(block * len(x)), so that tens of thousands of clusters (a million faces) never need a k x k matrix.
    ``x`` has rows: a merge pass has two clusters or more."""
    rows, cols, dists = [], [], []
    for start in range(0, len(x), block):
        d = cdist(x[start:start + block], x)
        i, j = np.nonzero(d < threshold)
        rows.append(i + start)
        cols.append(j)
        dists.append(d[i, j])
    return np.concatenate(rows), np.concatenate(cols), np.concatenate(dists)


def drop_small_clusters(labels: np.ndarray, min_csize: int, keep: np.ndarray | None = None) -> np.ndarray:
    """Clusters with fewer than ``min_csize`` faces become unassigned; the faces themselves are kept. A cluster
    holding a face in ``keep`` (one the user gave to a person) is never set aside."""
    labels = labels.copy()
    ids, counts = np.unique(labels[labels >= 0], return_counts=True)
    small = ids[counts < min_csize]
    if keep is not None:
        small = np.setdiff1d(small, labels[keep & (labels >= 0)])
    labels[np.isin(labels, small)] = UNASSIGNED
    return labels


def compact(labels: np.ndarray) -> np.ndarray:
    """Renumber clusters 0..k-1 by size (largest first), ties by first face; -1 stays -1. Deterministic."""
    labels = np.asarray(labels, dtype=np.int64)
    valid = labels >= 0
    if not valid.any():
        return np.full_like(labels, UNASSIGNED)
    ids, first, counts = np.unique(labels[valid], return_index=True, return_counts=True)
    first_pos = np.flatnonzero(valid)[first]
    order = np.lexsort((first_pos, -counts))
    mapping = np.full(int(ids.max()) + 1, UNASSIGNED, np.int64)
    mapping[ids[order]] = np.arange(len(ids))
    return np.where(valid, mapping[np.maximum(labels, 0)], UNASSIGNED)


def postprocess(labels: np.ndarray, face: np.ndarray, cloth: np.ndarray, has_cloth: np.ndarray,
                config: PostprocessConfig, cannot: CannotLinks | None = None,
                keep: np.ndarray | None = None) -> np.ndarray:
    labels = merge_close_clusters(labels, face, cloth, has_cloth, config.merge_face_threshold,
                                  config.merge_cloth_threshold, config.max_merge_passes, cannot)
    return compact(drop_small_clusters(labels, config.min_csize, keep))
