"""The interface every clustering algorithm offers (one module per algorithm, as the detectors have)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, ClassVar

import numpy as np

if TYPE_CHECKING:
    from ..config import ClusteringConfig
    from .distances import DenseDistances, GraphDistances


class Clusterer(ABC):
    """scikit-learn style: parameters in ``__init__`` (checked there), ``fit_predict(distances)`` -> labels
    0..k-1, -1 for noise. Distances come from :mod:`.distances`: all pairs, or a kNN graph for many items."""

    # False only for the seeds' DBSCAN baseline: it clusters faces, without tracks or cannot-links.
    honours_constraints: ClassVar[bool] = True

    @classmethod
    @abstractmethod
    def from_config(cls, config: ClusteringConfig) -> Clusterer:
        """The algorithm with its settings from the ``clustering`` section."""

    @abstractmethod
    def fit_predict(self, distances: DenseDistances | GraphDistances) -> np.ndarray:
        """Labels for every item of ``distances``."""
