"""``clusters.png``: every face as a point in a 2-D map of the fused features, coloured by cluster.

Drawn with matplotlib's object API (a ``Figure`` saved by the Agg renderer): no pyplot, so no process-wide
backend to choose and no display needed."""

from __future__ import annotations

import matplotlib
import numpy as np
from matplotlib.figure import Figure


def embed_2d(x: np.ndarray, seed: int = 0) -> np.ndarray:
    """t-SNE for up to 5,000 faces (it separates people well), PCA beyond (t-SNE gets slow).

    500 iterations instead of scikit-learn's 1,000: the same map at half the cost. Measured on the fused
    features of evaluation/work: LFW, 3,000 faces, 8.8 s against 16.4 s, trustworthiness (10 neighbours) 0.944
    against 0.945, silhouette of the clusters in 2-D 0.40 against 0.38; Norton, 185 faces, 0.52 against 0.80 s,
    0.982 against 0.983, 0.71 both."""
    n = len(x)
    if n < 3:
        return np.column_stack([np.arange(n, dtype=float), np.zeros(n)])
    if n <= 5000:
        from sklearn.manifold import TSNE

        return TSNE(n_components=2, perplexity=min(30.0, (n - 1) / 3), init="pca", max_iter=500,
                    random_state=seed).fit_transform(x)
    from sklearn.decomposition import PCA

    return PCA(n_components=2, random_state=seed).fit_transform(x)


def plot_clusters(fused: np.ndarray, labels: np.ndarray, path: str, title: str) -> None:
    xy = embed_2d(fused)
    fig = Figure(figsize=(10, 8), dpi=100)
    ax = fig.subplots()
    un = labels < 0
    if un.any():
        ax.scatter(xy[un, 0], xy[un, 1], s=10, c="lightgrey", label="unassigned")
    k = int(labels.max()) + 1 if len(labels) and labels.max() >= 0 else 0
    cmap = matplotlib.colormaps["tab20"]
    for c in range(k):
        m = labels == c
        ax.scatter(xy[m, 0], xy[m, 1], s=14, color=cmap(c % 20))
        cx, cy = xy[m].mean(axis=0)
        ax.annotate(str(c), (cx, cy), fontsize=8, weight="bold", ha="center", va="center")
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])
    if un.any():
        ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
