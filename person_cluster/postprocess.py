"""Stage 7: merge clusters whose centroids are close, then mark small clusters as unassigned (-1).

Three merges, in this order. The centroid merge (:func:`merge_close_clusters`; off by default) joins clusters
whose mean faces (or mean clothes) nearly coincide, anywhere. The scene merge (:func:`merge_within_scenes`) joins
the pieces of one person within a scene: small faces (a wide shot of six people) give noisy descriptors, so Chinese
whispers leaves a person in several clusters of a few tracks each, while the mean of many faces and the clothing of
one scene still say who it is. The rival merge (:func:`merge_by_rivals`) then joins, by face alone, two pieces of a scene nearer
each other than anyone either was seen beside (a person who changed clothes); :func:`merge_scenes` runs both.

The centroid merge is done per pass on the graph "centroid distance below threshold": its connected components become the
new clusters, so the result does not depend on the order of the clusters. With cannot-links (two clusters that
share a frame, see :mod:`.constraints`) the close pairs are joined closest first and a join that would bring a
forbidden pair together is passed over (Kruskal's order: without constraints, the same components). Passes repeat
(with new centroids) until nothing changes or ``max_merge_passes``.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

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
    use = labels >= 0 if mask is None else (labels >= 0) & mask
    sums = _group_sums(x[use], labels[use], k)
    counts = np.bincount(labels[use], minlength=k)
    return l2_normalize(sums.astype(np.float32)), counts > 0


def _group_sums(x: np.ndarray, groups: np.ndarray, k: int) -> np.ndarray:
    """(k, dim) float64 sums of the rows of ``x`` by ``groups`` (0..k-1), as a sparse product: ``np.add.at`` takes
    seconds on 100,000 rows."""
    onehot = csr_matrix((np.ones(len(groups)), (groups, np.arange(len(groups)))), shape=(k, len(groups)))
    return np.asarray(onehot @ np.asarray(x, np.float64))


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
        if not pairs:  # neither test is on (the default): nothing to join, and no cannot-links to gather
            break
        i, j, d = (np.concatenate([p[n] for p in pairs]) for n in range(3))
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


@dataclass(frozen=True)
class SceneMerge:
    """What :func:`merge_within_scenes` compares by: each face's clothing group (its scene: ``fusion.cloth_scope``;
    -1 for a photo, which has no scene), the fusion's weights, the clustering's own distance threshold, and the
    face descriptors to compare (:func:`~.metric.video_metric`'s; None: those the merge is given) with the faces
    they may be used for: those seen with someone else (a face of their frame)."""

    scene: np.ndarray  # (faces,) int
    face_weight: float
    cloth_weight: float
    threshold: float
    face: np.ndarray | None = None
    seen: np.ndarray | None = None  # (faces,) bool; None: every face


def merge_within_scenes(labels: np.ndarray, face: np.ndarray, cloth: np.ndarray, has_cloth: np.ndarray,
                        merge: SceneMerge, cannot: CannotLinks | None = None) -> np.ndarray:
    """Join clusters that share a scene, one pair at a time, closest first, while the fused distance of their
    centroids is below ``merge.threshold``; never two that ``cannot`` keeps apart. After each join the centroids
    are those of the joined cluster, so that a third cluster is compared with the whole (centroid linkage).

    The fused distance is :class:`~.fusion.Fusion`'s rule on centroids: the mean face of each cluster, and its mean
    clothing in the scene where the two have the most faces with clothing together. Pairs that share no scene with
    clothing are not compared: across scenes the face alone would decide, and the clustering has already judged
    the faces (a face-only centroid merge at this threshold joins different people in photo sets)."""
    labels = compact(labels)
    scene = np.asarray(merge.scene, np.int64)
    rows = (labels >= 0) & np.asarray(has_cloth, bool) & (scene >= 0)
    k = int(labels.max(initial=-1)) + 1  # no faces at all: k = 0
    if k < 2 or not rows.any() or cloth.shape[1] == 0 or merge.cloth_weight <= 0:
        return labels
    f, c = l2_normalize(face), l2_normalize(cloth)
    face_sum = _group_sums(f[labels >= 0], labels[labels >= 0], k)
    # In the video's learnt metric where given, for pairs of clusters both seen with someone else (a face of one of
    # their frames): the metric was learnt from such faces, and says nothing of the rest.
    learnt = None if merge.face is None else _group_sums(l2_normalize(merge.face)[labels >= 0], labels[labels >= 0], k)
    seen = np.ones(k, bool) if merge.seen is None else np.bincount(
        labels[labels >= 0], weights=np.asarray(merge.seen, bool)[labels >= 0], minlength=k) > 0
    # One row per cluster and scene: the sum of its clothing there and how many faces it has there.
    scenes = int(scene.max()) + 1
    key, row = np.unique(labels[rows] * scenes + scene[rows], return_inverse=True)
    cloth_sum = _group_sums(c[rows], row, len(key))
    count = np.bincount(row, minlength=len(key)).astype(np.int64)
    row_of: dict[int, dict[int, int]] = {}  # cluster -> scene -> row
    in_scene: dict[int, dict[int, int]] = {}  # scene -> cluster -> row, for the clusters with clothing there
    for r, (cl, sc) in enumerate(zip((key // scenes).tolist(), (key % scenes).tolist())):
        row_of.setdefault(cl, {})[sc] = r
        in_scene.setdefault(sc, {})[cl] = r
    apart: dict[int, set[int]] = {cl: set() for cl in range(k)}  # cluster -> clusters it may never join
    for x, y in (cannot.forbidden_between(labels) if cannot is not None and len(cannot) else ()):
        apart[x].add(y)
        apart[y].add(x)
    version = [0] * k  # a cluster's centroids change when it joins another: older heap entries are stale

    def entries(a: int, above: int = -1) -> list[tuple[float, int, int, int, int]]:
        """Heap entries (distance, lower, higher, their versions) for ``a`` and each cluster numbered above
        ``above`` that shares a scene with it, may join it and is closer than the threshold."""
        parts = [(np.fromiter(in_scene[sc].keys(), np.int64), ra, np.fromiter(in_scene[sc].values(), np.int64))
                 for sc, ra in sorted(row_of[a].items())]
        other = np.concatenate([p[0] for p in parts])
        ra = np.concatenate([np.full(len(p[0]), p[1]) for p in parts])
        rb = np.concatenate([p[2] for p in parts])
        # One scene per pair: where the two have the most faces together (ties: the first scene).
        pick = np.lexsort((-(count[ra] + count[rb]), other))
        first = np.r_[True, np.diff(other[pick]) != 0]
        other, ra, rb = other[pick][first], ra[pick][first], rb[pick][first]
        keep = (other != a) & (other > above) & ~np.isin(other, list(apart[a]))
        other, ra, rb = other[keep], ra[keep], rb[keep]
        if not len(other):
            return []
        d_face = np.linalg.norm(l2_normalize(face_sum[[a]]) - l2_normalize(face_sum[other]), axis=1)
        if learnt is not None:
            d_learnt = np.linalg.norm(l2_normalize(learnt[[a]]) - l2_normalize(learnt[other]), axis=1)
            d_face = np.where(seen[a] & seen[other], d_learnt, d_face)
        d_cloth = np.linalg.norm(l2_normalize(cloth_sum[ra]) - l2_normalize(cloth_sum[rb]), axis=1)
        d = np.hypot(merge.face_weight * d_face, merge.cloth_weight * d_cloth)
        return [(x, min(a, o), max(a, o), version[min(a, o)], version[max(a, o)])
                for x, o in zip(d.tolist(), other.tolist()) if x < merge.threshold]

    heap = [e for cl in sorted(row_of) for e in entries(cl, above=cl)]
    heapq.heapify(heap)
    joined = np.arange(k)  # the cluster each one joined (itself while it has not)
    while heap:
        _, a, b, va, vb = heapq.heappop(heap)  # closest first; ties by the clusters' numbers
        if va != version[a] or vb != version[b] or b not in row_of or a not in row_of or b in apart[a]:
            continue
        joined[b] = a
        face_sum[a] += face_sum[b]
        if learnt is not None:
            learnt[a] += learnt[b]
            seen[a] |= seen[b]
        version[a] += 1
        for sc, r in row_of.pop(b).items():
            del in_scene[sc][b]
            if sc in row_of[a]:
                cloth_sum[row_of[a][sc]] += cloth_sum[r]
                count[row_of[a][sc]] += count[r]
            else:
                row_of[a][sc] = in_scene[sc][a] = r
        for o in apart.pop(b):
            apart[o].discard(b)
            apart[o].add(a)
            apart[a].add(o)
        for e in entries(a):
            heapq.heappush(heap, e)
    while (joined[joined] != joined).any():  # follow each chain of joins to the cluster that is left
        joined = joined[joined]
    return compact(np.where(labels >= 0, joined[np.maximum(labels, 0)], UNASSIGNED))


def merge_by_rivals(labels: np.ndarray, face: np.ndarray, merge: SceneMerge, cannot: CannotLinks | None,
                    pieces: bool = True) -> np.ndarray:
    """Join two clusters of one scene by their faces alone where each is nearer the other than any person it was
    seen beside, or (``pieces``) where the smaller's nearest cluster of its scenes is the other and everyone it was
    seen beside is further: one pair at a time, closest first, below ``merge.threshold``.

    The scene merge weighs clothing, so a person who changes clothes within a scene (a dress in the last shots)
    stays in two pieces, and a face-only merge at a fixed threshold joins different people. The clusters a cluster
    shares a frame with (cannot-linked: other people for certain) are the video's own scale of how far another
    person's face lies: a pair nearer each other than either is to any of those is one person. A large cluster has
    been seen beside many people, and the nearest of many is near: a small piece of the same person rarely passes
    that bar, so a piece is judged by its own rivals, and joins only the cluster nearest to it. Only clusters seen
    beside someone are compared, and never two that share a frame. Faces in ``merge.face`` (the video's learnt
    metric) where given, else ``face``; after each join the joined cluster's centroid, size and rivals are used.

    A heap of the pairs below the threshold, as the scene merge keeps: a pair that fails both tests when it comes
    up waits until a rival of either cluster moves (joins someone), or until the smaller's nearest cluster
    changes, so that a scene of a thousand clusters costs each join the distances of one cluster to the rest, not
    those of every pair."""
    labels = compact(labels)
    if cannot is None:
        return labels
    return _RivalMerge(labels, face, merge, cannot, pieces).run()


class _RivalMerge:
    """The state of :func:`merge_by_rivals`: clusters' centroids, sizes, rivals, the clusters each may join
    (``mates``) and those of its scenes (``around``, for a piece's nearest), and the heap."""

    def __init__(self, labels: np.ndarray, face: np.ndarray, merge: SceneMerge, cannot: CannotLinks,
                 pieces: bool) -> None:
        self.labels, self.threshold, self.pieces = labels, merge.threshold, pieces
        k = int(labels.max(initial=-1)) + 1
        valid = labels >= 0
        self.sums = _group_sums(l2_normalize(face if merge.face is None else merge.face)[valid], labels[valid], k)
        self.centre = l2_normalize(self.sums).astype(np.float64)  # as float32, the precision of the faces
        self.square = (self.centre ** 2).sum(1)  # 1, or 0 for a cluster of zero faces
        self.size = np.bincount(labels[valid], minlength=k)
        self.rivals: dict[int, set[int]] = {c: set() for c in range(k)}
        for a, b in cannot.forbidden_between(labels):
            self.rivals[a].add(b)
            self.rivals[b].add(a)
        beside = np.array([bool(self.rivals[c]) for c in range(k)], bool)
        if merge.seen is not None:  # seen beside someone in a frame, not only kept apart by a user's decision
            beside &= np.bincount(labels[valid], weights=np.asarray(merge.seen, bool)[valid], minlength=k) > 0
        scene = np.asarray(merge.scene, np.int64)
        rows = valid & (scene >= 0)
        self.in_scene: dict[int, set[int]] = {}  # scene -> every cluster with a face there
        self.scenes: dict[int, set[int]] = {}  # cluster -> its scenes
        for c, sc in set(zip(labels[rows].tolist(), scene[rows].tolist())):
            self.in_scene.setdefault(sc, set()).add(c)
            self.scenes.setdefault(c, set()).add(sc)
        # cluster -> the clusters it may join: of a scene of its, seen beside someone, not a rival
        self.mates = {c: set() for c in self.scenes if beside[c]}
        for c in self.mates:
            for sc in self.scenes[c]:
                self.mates[c].update(o for o in self.in_scene[sc] if beside[o])
            self.mates[c] -= self.rivals[c] | {c}
        self.members: dict[int, np.ndarray] = {}  # scene -> its clusters, sorted (in_scene, as an array)
        self.version = [0] * k
        self.waiting: dict[int, set[tuple[int, int]]] = {c: set() for c in range(k)}  # pairs that failed
        # Each cluster's nearest of its scenes, kept only where pieces are judged by it.
        self.nearest: dict[int, int | None] = {c: self._nearest_around(c) for c in self.mates} if pieces else {}

    def _around(self, c: int) -> np.ndarray:
        """The other clusters with a face in a scene of ``c``, sorted."""
        for sc in self.scenes[c]:
            if sc not in self.members:  # changed by a join since last asked for
                self.members[sc] = np.fromiter(sorted(self.in_scene[sc]), np.int64, len(self.in_scene[sc]))
        parts = [self.members[sc] for sc in self.scenes[c]]
        around = parts[0] if len(parts) == 1 else np.unique(np.concatenate(parts))
        return around[around != c]

    def _distances(self, c: int, others: list[int]) -> np.ndarray:
        return np.linalg.norm(self.centre[others] - self.centre[c], axis=1)

    def _nearest_around(self, c: int) -> int | None:
        """The cluster of ``c``'s scenes strictly nearest to it (None: none, or a tie). Found by the centroids' dot
        products (one pass over them, no copy), the few nearest then measured as every distance here is."""
        others = self._around(c)
        if not len(others):
            return None
        square = (self.square[others] + self.square[c] - 2.0 * (self.centre @ self.centre[c])[others])
        near = np.sqrt(np.maximum(0.0, square))
        few = others[near <= near.min() + 1e-9].tolist()
        d = self._distances(c, few)
        n = int(np.argmin(d))
        return None if (d == d[n]).sum() > 1 else few[n]

    def _rival_distance(self, c: int) -> float:
        rivals = sorted(self.rivals[c])
        return float(self._distances(c, rivals).min()) if rivals else np.inf

    def _entry(self, a: int, b: int, d: float) -> tuple[float, int, int, int, int]:
        a, b = min(a, b), max(a, b)
        return d, a, b, self.version[a], self.version[b]

    def _entries(self, a: int, others: list[int]) -> list[tuple[float, int, int, int, int]]:
        """Heap entries for ``a`` and each of ``others`` closer than the threshold."""
        if not others:
            return []
        return [self._entry(a, o, x) for x, o in zip(self._distances(a, others).tolist(), others)
                if x < self.threshold]

    def _qualifies(self, a: int, b: int, d: float) -> bool:
        """Each nearer the other than anyone beside it; or the smaller (either, if as large) has the other as its
        nearest cluster and everyone beside it further."""
        if d < self._rival_distance(a) and d < self._rival_distance(b):
            return True
        if not self.pieces:
            return False
        return any(self.size[s] <= self.size[o] and self.nearest[s] == o and d < self._rival_distance(s)
                   for s, o in ((a, b), (b, a)))

    def run(self) -> np.ndarray:
        k = len(self.size)
        heap = [e for c in sorted(self.mates) for e in self._entries(c, sorted(o for o in self.mates[c] if o > c))]
        heapq.heapify(heap)
        joined = np.arange(k)
        while heap:
            d, a, b, va, vb = heapq.heappop(heap)  # closest first; ties by the clusters' numbers
            if va != self.version[a] or vb != self.version[b] or b not in self.mates.get(a, ()):
                continue
            if not self._qualifies(a, b, d):
                self.waiting[a].add((a, b))
                self.waiting[b].add((a, b))
                continue
            joined[b] = a
            for e in self._join(a, b):
                heapq.heappush(heap, e)
        while (joined[joined] != joined).any():
            joined = joined[joined]
        labels = self.labels.copy()
        labels[labels >= 0] = joined[labels[labels >= 0]]
        return compact(labels)

    def _join(self, a: int, b: int) -> list[tuple[float, int, int, int, int]]:
        """Cluster ``b`` joins ``a``; the heap entries to push: ``a``'s pairs, and the pairs that wait on a cluster
        whose rivals or nearest cluster this join moved."""
        self.sums[a] += self.sums[b]
        self.centre[a] = l2_normalize(self.sums[[a]]).astype(np.float64)[0]
        self.square[a] = float((self.centre[a] ** 2).sum())
        self.size[a] += self.size[b]
        self.version[a] += 1
        for o in self.rivals.pop(b):
            self.rivals[o].discard(b)
            self.rivals[o].add(a)
            self.rivals[a].add(o)
        for sc in self.scenes.pop(b):
            self.in_scene[sc].discard(b)
            self.in_scene[sc].add(a)
            self.scenes[a].add(sc)
            self.members.pop(sc, None)  # b's scenes now hold a instead; a's others are as they were
        for o in self.mates.pop(b):
            self.mates[o].discard(b)
            if o != a:
                self.mates[o].add(a)
                self.mates[a].add(o)
        for o in self.rivals[a]:
            self.mates.get(o, set()).discard(a)
        self.mates[a] -= self.rivals[a] | {a}
        self.nearest.pop(b, None)
        self.waiting.pop(b)
        self.waiting[a].clear()
        out = self._entries(a, sorted(self.mates[a]))
        moved = set(self.rivals[a])  # their rival is nearer or further now
        if self.pieces:
            moved |= self._new_nearest(a, b)
        for c in sorted(moved):
            for x, y in sorted(self.waiting[c]):
                d = float(np.linalg.norm(self.centre[x] - self.centre[y]))  # one of them may have joined since
                if y in self.mates.get(x, ()) and d < self.threshold:
                    out.append(self._entry(x, y, d))
            self.waiting[c].clear()
        return out

    def _new_nearest(self, a: int, b: int) -> set[int]:
        """After ``b`` joined ``a``: the clusters whose nearest cluster changed. It changes where it was a or b (or
        a tie), or where a is now as near as it."""
        moved = set()
        self.nearest[a] = self._nearest_around(a)
        around = [c for c in self._around(a).tolist() if c in self.nearest]
        if around:
            now = [self.nearest[c] for c in around]
            kept = np.array([n is not None and n not in (a, b) for n in now])
            d_now = np.linalg.norm(self.centre[around] - self.centre[[n if ok else a for n, ok in zip(now, kept)]],
                                   axis=1)
            look = ~kept | (self._distances(a, around) <= d_now)
            for c in np.asarray(around)[look].tolist():
                new = self._nearest_around(c)
                if new != self.nearest[c]:
                    self.nearest[c] = new
                    moved.add(c)
        return moved


def merge_scenes(labels: np.ndarray, face: np.ndarray, cloth: np.ndarray, has_cloth: np.ndarray, merge: SceneMerge,
                 cannot: CannotLinks | None, config: PostprocessConfig) -> np.ndarray:
    """The merges within scenes, as a clustering and an ``add`` both run them: by face and clothing
    (:func:`merge_within_scenes`), then, with ``config.rival_merge``, by face against the people each cluster was
    seen beside (:func:`merge_by_rivals`; ``config.rival_pieces``: a piece by its own rivals)."""
    labels = merge_within_scenes(labels, face, cloth, has_cloth, merge, cannot)
    return merge_by_rivals(labels, face, merge, cannot, config.rival_pieces) if config.rival_merge else labels


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
                keep: np.ndarray | None = None, scenes: SceneMerge | None = None) -> np.ndarray:
    """Both merges (the scene merge where ``scenes`` is given and ``config.scene_merge`` is on), then small
    clusters set aside."""
    labels = merge_close_clusters(labels, face, cloth, has_cloth, config.merge_face_threshold,
                                  config.merge_cloth_threshold, config.max_merge_passes, cannot)
    if scenes is not None and config.scene_merge:
        labels = merge_scenes(labels, face, cloth, has_cloth, scenes, cannot, config)
    return compact(drop_small_clusters(labels, config.min_csize, keep))
