"""Where the extractor's results go, input by input: OUT's feature cache, or memory.

The extractor (:mod:`.pipeline`) stores each batch through a sink: ``input_started``, then ``add_frame`` per
sampled frame in frame order, then ``input_ended``, inside ``transaction()``; ``bind`` comes once, before the first
write. :class:`CacheSink` writes OUT's cache and frame files (the local engine's extractor, and the Ray engine's
driver: the one writer of OUT); :class:`UnitCollector` keeps a work unit's results in memory, which is what a Ray
actor returns to the driver, so that the extractor runs unchanged in both.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .cache import FeatureCache
from .config import SamplingConfig
from .records import FaceRecord, FrameInfo, InputItem
from .sampling.shots import FrameScores

log = logging.getLogger(__name__)


class CacheSink:
    """Stores results into ``cache`` (bound to ``settings`` before its first write) and the frame JPEGs into
    ``frames_dir`` (None: frames are not kept). A video's shots are decided here, from its frame scores (joined
    from its chunks by the Ray driver), so that both engines decide them in one place."""

    def __init__(self, cache: FeatureCache, frames_dir: Path | None, sampling: SamplingConfig,
                 settings: dict[str, Any]) -> None:
        self.cache, self.frames_dir, self.settings = cache, frames_dir, settings
        self.threshold, self.min_shot_sec = sampling.scene_threshold, sampling.min_scene_len_sec

    @property
    def wants_frames(self) -> bool:
        return self.frames_dir is not None

    def bind(self, cloth_model: str | None) -> None:
        self.cache.bind(self.settings, cloth_model)

    def transaction(self) -> contextlib.AbstractContextManager[None]:
        return self.cache.transaction()

    def input_started(self, position: int, item: InputItem) -> None:
        self.cache.set_input(position, item.source, item.kind, "running")

    def add_frame(self, info: FrameInfo, faces: list[FaceRecord], jpg: bytes | None) -> None:
        if jpg is not None and self.frames_dir is not None:
            from .outputs import write_atomic  # here: the outputs package imports scipy (0.6 s), not needed earlier
            from .outputs.naming import frame_stem

            write_atomic(self.frames_dir / f"{frame_stem(info.source, info.frame)}.jpg", jpg)
        self.cache.add_frame(info, faces)

    def input_ended(self, position: int, item: InputItem, error: str | None, scores: FrameScores | None) -> None:
        """The input is done, or skipped with ``error`` (logged here: the user reads one line per skipped input,
        whichever engine read it)."""
        if error:
            log.warning("skipping %s: %s", item.source, error)
        shots = [] if error or scores is None else scores.shots(self.threshold, self.min_shot_sec)
        self.cache.set_shots(item.source, shots)
        self.cache.set_input(position, item.source, item.kind, "skipped" if error else "done", error)


@dataclass
class UnitResult:
    """What one work unit gave: its sampled frames in order (where they are, their faces with features and crops,
    the frame's JPEG when frames are kept), the shot scores of the frames it decoded, and why it stopped early, if
    it did (the input is then skipped with that reason; the frames read before are kept, as the local engine
    keeps them)."""

    frames: list[tuple[FrameInfo, list[FaceRecord], bytes | None]] = field(default_factory=list)
    scores: FrameScores | None = None
    error: str | None = None


class UnitCollector:
    """A sink that keeps each unit's results in memory (one :class:`UnitResult` per ``input_ended``, in order).
    ``sources``: the path read for an input -> the source as the user gave it, which the results are labelled
    with (an actor reads inputs by their absolute path; its working folder is not the driver's)."""

    def __init__(self, wants_frames: bool, sources: dict[str, str] | None = None) -> None:
        self.wants_frames = wants_frames
        self.sources = sources or {}
        self.cloth_model: str | None = None
        self.results: list[UnitResult] = []
        self._open: UnitResult | None = None

    def bind(self, cloth_model: str | None) -> None:
        self.cloth_model = cloth_model

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        yield

    def input_started(self, position: int, item: InputItem) -> None:
        self._open = UnitResult()

    def add_frame(self, info: FrameInfo, faces: list[FaceRecord], jpg: bytes | None) -> None:
        source = self.sources.get(info.source, info.source)
        info.source = source
        for face in faces:
            face.source = source
        self._current().frames.append((info, faces, jpg))

    def input_ended(self, position: int, item: InputItem, error: str | None, scores: FrameScores | None) -> None:
        result = self._current()
        result.error = error
        if scores is not None:
            scores.source = self.sources.get(scores.source, scores.source)
        result.scores = scores
        self.results.append(result)
        self._open = None

    def _current(self) -> UnitResult:
        if self._open is None:  # an input that failed before it started
            self._open = UnitResult()
        return self._open
