"""Cannot-links: faces (or tracks) that are never one person, because one frame or one photo shows them together.

Every algorithm but DBSCAN (the seeds' unconstrained baseline) honours them in two steps: the clustering sees a
cannot-linked pair as :data:`FAR` apart, which keeps it apart in HAC, Chinese whispers and rank-order alike; then
:meth:`CannotLinks.split` divides any cluster that still holds such a pair (an algorithm may chain through a third
item) by complete-linkage HAC among its members, which cannot put a forbidden pair together. The centroid merge of
:mod:`.postprocess` asks :meth:`CannotLinks.forbidden_between` before every merge. Collages, mirrors and screens
show one person twice: ``clustering.cannot_link: false`` turns the rule off.
"""

from __future__ import annotations

import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage

from .clustering.distances import condensed_index
from .records import FaceTable

# Distance given to a forbidden pair: above any fused distance (at most ~2.3), and large enough that average
# linkage over a hundred million pairs still stays above every threshold.
FAR = 1e9


class CannotLinks:
    """Pairs ``(i[k], j[k])``, ``i < j``, of ``n`` items that must end in different clusters."""

    def __init__(self, i: np.ndarray, j: np.ndarray, n: int) -> None:
        a, b = np.minimum(i, j).astype(np.int64), np.maximum(i, j).astype(np.int64)
        keep = a != b
        pairs = np.unique(np.stack([a[keep], b[keep]], axis=1), axis=0)  # (0, 2) where there are none
        self.i, self.j, self.n = pairs[:, 0], pairs[:, 1], n

    def __len__(self) -> int:
        return len(self.i)

    @classmethod
    def none(cls, n: int) -> CannotLinks:
        return cls(np.zeros(0, np.int64), np.zeros(0, np.int64), n)

    @classmethod
    def same_frame(cls, table: FaceTable) -> CannotLinks:
        """Every two faces of one video frame or one photo."""
        groups: dict[tuple[str, int | None], list[int]] = {}
        for k, (source, frame) in enumerate(zip(table.sources, table.frames)):
            groups.setdefault((source, frame), []).append(k)
        i, j = [], []
        for members in groups.values():
            if len(members) > 1:
                a, b = np.triu_indices(len(members), 1)
                i.append(np.asarray(members)[a])
                j.append(np.asarray(members)[b])
        if not i:
            return cls.none(len(table))
        return cls(np.concatenate(i), np.concatenate(j), len(table))

    def map(self, groups: np.ndarray) -> CannotLinks:
        """The same constraints between groups of the items (``groups[item]``: its group), e.g. tracks."""
        n = int(groups.max()) + 1 if len(groups) else 0
        return CannotLinks(groups[self.i], groups[self.j], n)

    def violations(self, labels: np.ndarray) -> int:
        """Pairs that ``labels`` put in one cluster (-1, unassigned, is no cluster)."""
        return int(((labels[self.i] == labels[self.j]) & (labels[self.i] >= 0)).sum())

    def forbidden_between(self, labels: np.ndarray) -> set[tuple[int, int]]:
        """Cluster pairs ``(a, b)``, ``a < b``, that hold a cannot-linked pair between them."""
        a, b = labels[self.i], labels[self.j]
        keep = (a >= 0) & (b >= 0) & (a != b)
        return set(zip(np.minimum(a, b)[keep].tolist(), np.maximum(a, b)[keep].tolist()))

    def among(self, members: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Forbidden pairs inside ``members`` (distinct item indices), as positions in ``members`` (in the order
        of ``i`` and ``j``: the first is the smaller where ``members`` is sorted)."""
        pos = np.full(self.n, -1, np.int64)
        pos[members] = np.arange(len(members))
        keep = (pos[self.i] >= 0) & (pos[self.j] >= 0)
        return pos[self.i][keep], pos[self.j][keep]

    def split(self, labels: np.ndarray, among) -> np.ndarray:  # among: members -> condensed distances
        """``labels`` with every cluster that holds a forbidden pair divided: complete-linkage HAC on the
        cluster's own distances, cut below :data:`FAR`, so each part is as large as the constraints allow."""
        labels = np.asarray(labels, np.int64).copy()
        bad = np.unique(labels[self.i][(labels[self.i] == labels[self.j]) & (labels[self.i] >= 0)])
        next_label = int(labels.max()) + 1 if len(labels) else 0
        for cluster in bad:
            members = np.flatnonzero(labels == cluster)
            d = np.array(among(members), np.float64)
            a, b = self.among(members)
            d[condensed_index(a, b, len(members))] = FAR
            parts = fcluster(linkage(d, "complete"), t=FAR / 2, criterion="distance")
            labels[members] = np.where(parts == 1, cluster, next_label + parts - 2)
            next_label += int(parts.max()) - 1
        return labels
