"""Stage 1: find the inputs and sample frames from them.

``discover_inputs`` turns what the user named (files, folders, any mix) into :class:`InputItem` records and
skipped-input reasons; ``iter_frames`` yields the sampled :class:`Frame` records of one input.
"""

from __future__ import annotations

from collections.abc import Iterator
from collections.abc import Set as AbstractSet
from dataclasses import dataclass

from ..config import SamplingConfig
from ..records import Frame, InputItem
from .images import read_image
from .inputs import InputError, discover_inputs
from .shots import Shot, ShotDetector, shot_of
from .video import (
    Span,
    VideoError,
    VideoInfo,
    check_frames_read,
    plan_chunks,
    probe_video,
    read_video_frames,
    sample_indices,
    scene_indices,
)

__all__ = [
    "FramePlan",
    "InputError",
    "Shot",
    "ShotDetector",
    "Span",
    "VideoError",
    "check_frames_read",
    "discover_inputs",
    "plan_chunks",
    "plan_frames",
    "planned_in",
    "read_image",
    "read_planned_frames",
    "shot_detector",
    "shot_of",
]


@dataclass(frozen=True)
class FramePlan:
    """Which frames of an input will be sampled: frame indices for a video, ``[None]`` for a photo."""

    info: VideoInfo | None
    indices: list[int | None]

    @property
    def last(self) -> int:
        """The last frame a video's plan samples (-1: none), up to which frames are decoded and shots found."""
        return max((i for i in self.indices if i is not None), default=-1)


def plan_frames(item: InputItem, config: SamplingConfig) -> FramePlan:
    """Decide the frames to sample. Raises InputError when the input cannot be read at all."""
    if item.kind == "image":
        return FramePlan(None, [None])
    info = probe_video(item.source)
    indices = scene_indices(item.source, info, config) if config.mode == "scene" else sample_indices(info, config)
    return FramePlan(info, list(indices))


def read_planned_frames(item: InputItem, plan: FramePlan, skip: AbstractSet[int | None] = frozenset(),
                        shots: ShotDetector | None = None, span: Span | None = None) -> Iterator[Frame]:
    """Yield the planned frames except those in ``skip`` (already in the cache). A video's ``shots`` detector
    sees every frame decoded up to the last planned one, skipped or not, so that a resumed run finds the same
    shots. ``span``: only that chunk of the video (:func:`plan_chunks`)."""
    if plan.info is None:
        if None not in skip:
            yield Frame(source=item.source, index=None, time_s=None, image=read_image(item.source))
        return
    yield from read_video_frames(item.source, plan.info, planned_in(plan, span, skip), shots, plan.last,
                                 [i for i in plan.indices if i is not None], span)


def planned_in(plan: FramePlan, span: Span | None, skip: AbstractSet[int | None] = frozenset()) -> list[int]:
    """The planned frames of a video inside ``span`` (all of them if None), less those in ``skip``."""
    return [i for i in plan.indices if i is not None and i not in skip
            and (span is None or span.first <= i < span.stop)]


def shot_detector(item: InputItem, plan: FramePlan, config: SamplingConfig) -> ShotDetector | None:
    """A detector for the shots of a video input (None for a photo, or with ``sampling.shots: false``)."""
    if plan.info is None or not config.shots:
        return None
    return ShotDetector(item.source, plan.info.fps, config.scene_threshold, config.min_scene_len_sec,
                        plan.info.frame_count)
