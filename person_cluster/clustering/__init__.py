"""Stage 6: clustering. One module per algorithm behind :class:`base.Clusterer`; :data:`CLUSTERERS` names them.

Estimators in the scikit-learn style: parameters in ``__init__``, ``fit_predict`` on a distance source
(:mod:`.distances`: all pairs, or a kNN graph for many items), labels out with -1 for noise. Adding an algorithm: a
module with a :class:`base.Clusterer` subclass, and a line in :data:`CLUSTERERS`; the config accepts its name.
Modules (scipy, scikit-learn, faiss) are imported on first use, so that the config can check a name cheaply.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from ..config import ClusteringConfig
    from .base import Clusterer
    from .distances import DenseDistances, GraphDistances

# name in the config -> (module in this package, class)
CLUSTERERS: dict[str, tuple[str, str]] = {
    "chinese_whispers": ("chinese_whispers", "ChineseWhispersClustering"),  # default (dlib's)
    "hac": ("hac", "HACClustering"),
    "rank_order": ("rank_order", "RankOrderClustering"),  # Zhu et al. 2011
    "dbscan": ("dbscan", "DBSCANClustering"),  # the seeds' baseline
    "finch": ("finch", "FINCHClustering"),  # Sarfraz et al. 2019, capped at distance_threshold
}

# Names this package offers, and the module each lives in (imported when first asked for).
_LAZY = {cls: module for module, cls in CLUSTERERS.values()} | {
    "DenseDistances": "distances", "GraphDistances": "distances", "fused_distance_source": "distances",
    "Clusterer": "base",
}


def clusterer_class(name: str) -> type[Clusterer]:
    module, cls = CLUSTERERS[name]  # config validation guarantees the name
    return getattr(importlib.import_module(f".{module}", __name__), cls)


def make_clusterer(config: ClusteringConfig) -> Clusterer:
    return clusterer_class(config.algorithm).from_config(config)


def cluster_distances(distances: DenseDistances | GraphDistances, config: ClusteringConfig) -> np.ndarray:
    """Labels for every item of ``distances``."""
    return make_clusterer(config).fit_predict(distances)


def __getattr__(name: str) -> Any:  # PEP 562: the classes above, imported on first use
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "CLUSTERERS", "ChineseWhispersClustering", "Clusterer", "DBSCANClustering", "DenseDistances", "FINCHClustering",
    "GraphDistances", "HACClustering", "RankOrderClustering", "cluster_distances", "clusterer_class",
    "fused_distance_source", "make_clusterer",
]
