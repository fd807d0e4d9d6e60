"""The quality gate around any clusterer: good items form the clusters, poor ones are placed afterwards.

A poor face (turned, lowered, blurred, tiny: see :mod:`person_cluster.quality`) lies far from the rest of its person
and close to other people's poor faces, so inside a clustering it seeds clusters of its own or bridges two people.
Here it takes no part in forming clusters:

1. the good items (tracks whose best face is good, photos of good faces) are clustered by the configured
   algorithm, as if the poor ones did not exist;
2. each poor item joins the cluster it is clearly nearest to: its nearest good item of that cluster is closer than
   ``assign_distance``, and the nearest good item of any other cluster is at least ``margin`` further; never a
   cluster it is cannot-linked to;
3. the poor items left are clustered among themselves, so a person seen only poorly (only in profile, say) is still
   found, but never joined to a good cluster through them.

A poor item so never joins two clusters into one. :attr:`QualityGate.report` counts the items of each rule.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..constraints import CannotLinks
from .base import Clusterer
from .distances import DenseDistances, GraphDistances

# Neighbours of a poor item looked at to place it: its nearest good items decide.
_NEIGHBOURS = 30


@dataclass
class GateReport:
    good: int = 0  # items that formed the clusters
    assigned: int = 0  # poor items placed in a good item's cluster by the margin rule
    own: int = 0  # poor items clustered among themselves

    def as_dict(self) -> dict[str, int]:
        return {"good": self.good, "assigned": self.assigned, "own": self.own}


class QualityGate:
    """``fit_predict(distances, good)``: labels 0..k-1 for every item; ``good[i]``: item i may form clusters."""

    def __init__(self, clusterer: Clusterer, assign_distance: float = 0.5, margin: float = 0.05,
                 cannot: CannotLinks | None = None) -> None:
        if assign_distance <= 0 or margin < 0:
            raise ValueError("assign_distance must be > 0 and margin >= 0")
        self.clusterer = clusterer
        self.assign_distance = assign_distance
        self.margin = margin
        self.cannot = cannot  # between the items
        self.report = GateReport()

    def fit_predict(self, distances: DenseDistances | GraphDistances, good: np.ndarray) -> np.ndarray:
        n = distances.n
        good = np.asarray(good, bool)
        if good.all() or good.sum() < 2:  # nothing to gate, or too little to cluster on: cluster everything
            self.report = GateReport(good=n)
            return self.clusterer.fit_predict(distances)
        labels = np.full(n, -1, np.int64)
        strong = np.flatnonzero(good)
        labels[strong] = self.clusterer.fit_predict(distances.subset(strong))
        weak = np.flatnonzero(~good)
        placed = self._place(distances, labels, weak)
        labels[weak] = placed
        rest = weak[placed < 0]
        if len(rest):
            own = self.clusterer.fit_predict(distances.subset(rest)) if len(rest) > 1 else np.zeros(1, np.int64)
            labels[rest] = own + labels.max() + 1
        self.report = GateReport(good=len(strong), assigned=int((placed >= 0).sum()), own=len(rest))
        return np.unique(labels, return_inverse=True)[1].astype(np.int64)

    def _place(self, distances: DenseDistances | GraphDistances, labels: np.ndarray, weak: np.ndarray) -> np.ndarray:
        """The cluster each weak item joins by the margin rule, or -1."""
        idx, dist = distances.neighbours(_NEIGHBOURS, weak)
        forbidden: set[tuple[int, int]] = set()
        if self.cannot is not None and len(self.cannot):
            position = {int(w): k for k, w in enumerate(weak)}
            for a, b in ((self.cannot.i, self.cannot.j), (self.cannot.j, self.cannot.i)):
                for x, y in zip(a.tolist(), b.tolist()):
                    if x in position and labels[y] >= 0:
                        forbidden.add((position[x], int(labels[y])))
        out = np.full(len(weak), -1, np.int64)
        for k in range(len(weak)):
            nearest: dict[int, float] = {}  # cluster -> distance to its nearest good item
            for j, d in zip(idx[k].tolist(), dist[k].tolist()):
                if j >= 0 and labels[j] >= 0 and labels[j] not in nearest and np.isfinite(d):
                    nearest[int(labels[j])] = d
            ranked = sorted(nearest.items(), key=lambda item: (item[1], item[0]))
            if not ranked:
                continue
            best, d1 = ranked[0]
            d2 = ranked[1][1] if len(ranked) > 1 else np.inf
            if d1 < self.assign_distance and d2 - d1 >= self.margin and (k, best) not in forbidden:
                out[k] = best
        return out
