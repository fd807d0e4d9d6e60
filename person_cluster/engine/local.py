"""The local engine: the extractor's threads in this process (see :mod:`person_cluster.pipeline`)."""

from __future__ import annotations

from ..config import Config
from ..pipeline import ExtractionSummary, Extractor, check_models, pending_units
from ..records import InputItem
from ..sinks import CacheSink
from .base import Engine


class LocalEngine(Engine):
    """One :class:`~person_cluster.pipeline.Extractor` (a decoding thread, ``runtime.workers`` detection threads,
    the CNNs in batches) reading the inputs one after another, whole (``runtime.chunk_sec`` is the Ray engine's:
    one decoding thread gains nothing from chunks)."""

    def __init__(self, config: Config, progress: bool = True, preload: tuple[str, ...] = ()) -> None:
        super().__init__(config, progress, preload)
        check_models(config)
        self.extractor = Extractor(config, progress, preload)

    def run(self, items: list[tuple[int, InputItem]], sink: CacheSink) -> ExtractionSummary:
        summary = self.extractor.extract(pending_units(items, sink.cache), sink)
        summary.inputs = len(items)
        return summary

    def close(self) -> None:
        self.extractor.close()
