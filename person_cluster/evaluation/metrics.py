"""Clustering scores against ground-truth identities.

NMI, ARI and the pair counts come from scikit-learn; BCubed and purity are computed from the same contingency
table. Faces a run left unassigned (label -1) are scored as singletons: an unassigned face is never "right" about
who it is, and treating all of them as one cluster would reward leaving faces out.
"""

from __future__ import annotations

from typing import Any

import numpy as np

# The keys `person-cluster evaluate --json` always prints, in this order.
METRIC_KEYS = (
    "nmi", "ari", "pairwise_precision", "pairwise_recall", "pairwise_f", "bcubed_precision", "bcubed_recall",
    "bcubed_f", "purity", "n_clusters", "n_identities", "n_faces_scored", "coverage", "detection_recall",
    "same_frame_pairs",
)


def singletons(labels: np.ndarray) -> np.ndarray:
    """Give every unassigned (-1) face a label of its own, above the existing ones."""
    labels = np.asarray(labels, dtype=np.int64).copy()
    single = labels < 0
    labels[single] = labels.max(initial=-1) + 1 + np.arange(int(single.sum()))
    return labels


def same_frame_pairs(sources: list[str], frames: list[int | None], labels: np.ndarray) -> int:
    """Pairs of faces of one frame (or photo) that ``labels`` put in one cluster: each is certainly an error
    (unless the frame shows a mirror or a screen). Over every face of the run, scored or not."""
    seen: dict[tuple[str, int | None, int], int] = {}
    for source, frame, label in zip(sources, frames, np.asarray(labels).tolist()):
        if label >= 0:
            key = (source, frame, label)
            seen[key] = seen.get(key, 0) + 1
    return sum(c * (c - 1) // 2 for c in seen.values())


def _f(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r > 0 else 0.0


def clustering_scores(identities: list[str] | np.ndarray, labels: np.ndarray) -> dict[str, Any]:
    """All label-quality metrics for faces with true ``identities`` and predicted ``labels`` (-1 = unassigned).

    Pairwise precision is 1.0 when the run puts no two scored faces together (nothing was merged wrongly), and
    pairwise recall is 1.0 when no two scored faces share an identity.
    """
    # Imported here, not at module level: the CLI imports this package (for TruthError) before every run, and
    # scikit-learn takes ~2 s to import, which would delay the start of the extraction workers.
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score
    from sklearn.metrics.cluster import contingency_matrix, pair_confusion_matrix

    labels = np.asarray(labels, dtype=np.int64)
    n = len(labels)
    if n != len(identities):
        raise ValueError("identities and labels differ in length")
    _, truth = np.unique(np.asarray(identities, dtype=str), return_inverse=True)
    _, pred = np.unique(singletons(labels), return_inverse=True)  # 0..k-1, as contingency_matrix numbers them
    out: dict[str, Any] = {
        "n_faces_scored": n,
        "n_identities": len(np.unique(truth)),
        "n_clusters": len(np.unique(labels[labels >= 0])),
        "coverage": float((labels >= 0).mean()) if n else 0.0,
    }
    if n == 0:
        return {**out, **{k: 0.0 for k in METRIC_KEYS if k not in out and k != "detection_recall"}}
    out["nmi"] = float(normalized_mutual_info_score(truth, pred))
    out["ari"] = float(adjusted_rand_score(truth, pred))
    pairs = pair_confusion_matrix(truth, pred)  # ordered pairs: [[TN, FP], [FN, TP]]
    tp, fp, fn = float(pairs[1, 1]), float(pairs[0, 1]), float(pairs[1, 0])
    p = tp / (tp + fp) if tp + fp else 1.0
    r = tp / (tp + fn) if tp + fn else 1.0
    out.update(pairwise_precision=p, pairwise_recall=r, pairwise_f=_f(p, r))
    c = contingency_matrix(truth, pred, sparse=True).tocoo()  # rows: identities, columns: clusters
    cluster_size = np.bincount(pred)[c.col]
    identity_size = np.bincount(truth)[c.row]
    squares = c.data.astype(np.float64) ** 2
    bp = float((squares / cluster_size).sum() / n)
    br = float((squares / identity_size).sum() / n)
    out.update(bcubed_precision=bp, bcubed_recall=br, bcubed_f=_f(bp, br))
    best = np.zeros(pred.max() + 1)
    np.maximum.at(best, c.col, c.data)
    out["purity"] = float(best.sum() / n)
    return out
