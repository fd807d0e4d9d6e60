"""The interface every engine offers the extraction step (:func:`person_cluster.api.extract`)."""

from __future__ import annotations

from abc import ABC, abstractmethod

from ..config import Config
from ..errors import PersonClusterError
from ..pipeline import ExtractionSummary
from ..records import InputItem
from ..sinks import CacheSink


class EngineError(PersonClusterError, RuntimeError):
    """The engine cannot run (no Ray, an unreachable cluster, workers without the models); one line for the user."""


class Engine(ABC):
    """Runs extraction somewhere; a context manager. Made with the whole config, started at once (models loading,
    workers or actors up), so that a missing model or an unreachable cluster is found before OUT is touched.

    :meth:`run` extracts the inputs that the sink's cache does not hold as finished (frames it holds are not
    analysed again) and stores every result through the sink, the only writer of OUT: in input and frame order,
    whole batches or units at a time. An interrupted run therefore resumes from the cache on any engine."""

    def __init__(self, config: Config, progress: bool = True, preload: tuple[str, ...] = ()) -> None:
        """``preload``: modules the caller needs after extraction, imported in the background meanwhile."""
        self.config, self.progress, self.preload = config, progress, preload

    @abstractmethod
    def run(self, items: list[tuple[int, InputItem]], sink: CacheSink) -> ExtractionSummary:
        """Extract ``items`` (position, input) through ``sink``."""

    def close(self) -> None:
        """Release workers, actors, clusters started for the run."""

    def __enter__(self) -> Engine:  # noqa: PYI034 (typing.Self needs Python 3.11)
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
