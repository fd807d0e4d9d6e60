"""Sample frames from a video: every N seconds, or one or two frames per shot found by PySceneDetect.

Frames are read sequentially with ``grab()`` and only the sampled ones are ``retrieve()``d (converted to BGR):
grabbing is several times faster than seeking with CAP_PROP_POS_FRAMES, and unsampled frames are never converted.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass

# FFmpeg's own log lines ("moov atom not found", ...) would interleave with our one-line messages; we report
# every unreadable video ourselves. Read by OpenCV when its FFmpeg backend starts, so set before first use.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET

import cv2

cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)  # its "can't capture by name" warnings, likewise

from ..config import SamplingConfig
from ..records import Frame
from .inputs import InputError

log = logging.getLogger(__name__)


class VideoError(InputError):
    """A video cannot be opened or yields no frames."""


@dataclass(frozen=True)
class VideoInfo:
    fps: float
    frame_count: int  # as the container reports it; may be wrong for damaged files, so reading never relies on it
    width: int
    height: int

    @property
    def duration_s(self) -> float:
        return self.frame_count / self.fps


def _open(path: str) -> cv2.VideoCapture:
    if not os.access(path, os.R_OK):
        raise VideoError("permission denied")
    if os.path.getsize(path) == 0:
        raise VideoError("file is empty")
    cap = cv2.VideoCapture(path, cv2.CAP_FFMPEG)
    if not cap.isOpened():
        cap.release()
        if _mp4_index_missing(path):
            raise VideoError("video was cut short before its index (moov atom) was written; no frame can be located")
        raise VideoError("not a readable video (unknown format or corrupt)")
    return cap


def _mp4_index_missing(path: str) -> bool:
    """True for an MP4/MOV whose top-level atoms hold media data (mdat) but no index (moov): a recording that was
    interrupted, or a file cut short whose index was at the end. Walks atom headers only (a few reads)."""
    seen = set()
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            pos = 0
            while pos + 8 <= size and len(seen) < 64:
                f.seek(pos)
                head = f.read(16)
                length, kind = int.from_bytes(head[:4], "big"), head[4:8]
                if length == 1 and len(head) == 16:
                    length = int.from_bytes(head[8:16], "big")
                if length < 8 or not kind.isalnum():
                    break
                seen.add(kind)
                pos += length
    except OSError:
        return False
    return b"ftyp" in seen and b"mdat" in seen and b"moov" not in seen


def probe_video(path: str) -> VideoInfo:
    cap = _open(path)
    try:
        fps = cap.get(cv2.CAP_PROP_FPS)
        info = VideoInfo(
            fps=fps if fps and math.isfinite(fps) and fps > 0 else 0.0,
            frame_count=max(0, int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)),
            width=int(cap.get(cv2.CAP_PROP_FRAME_WIDTH) or 0),
            height=int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT) or 0),
        )
    finally:
        cap.release()
    if info.fps <= 0:
        raise VideoError("video reports no frame rate")
    if info.frame_count <= 0 or info.width <= 0 or info.height <= 0:
        raise VideoError("video holds no frames")
    return info


def sample_indices(info: VideoInfo, config: SamplingConfig) -> list[int]:
    """Frame indices at skip_sec, skip_sec + interval, ... up to stop_sec or the end."""
    end_s = info.duration_s if config.stop_sec is None else min(config.stop_sec, info.duration_s)
    indices: list[int] = []
    k = 0
    while True:
        t = config.skip_sec + k * config.capture_interval_sec
        if t >= end_s:
            break
        idx = int(round(t * info.fps))
        if idx < info.frame_count and (not indices or idx > indices[-1]):
            indices.append(idx)
        k += 1
    return indices


def scene_indices(path: str, info: VideoInfo, config: SamplingConfig) -> list[int]:
    """One (middle) or two (1/3 and 2/3) frames per shot found by PySceneDetect's ContentDetector."""
    from scenedetect import ContentDetector, detect  # imported here: it is only needed in scene mode

    detector = ContentDetector(
        threshold=config.scene_threshold,
        min_scene_len=max(1, int(round(config.min_scene_len_sec * info.fps))),
    )
    try:
        scenes = detect(
            path,
            detector,
            start_time=config.skip_sec or None,
            end_time=config.stop_sec,
            start_in_scene=True,  # a video without cuts is one scene, not none
        )
    except Exception as exc:  # scenedetect raises several types for unreadable streams
        raise VideoError(f"scene detection failed: {exc}") from None
    fractions = (0.5,) if config.frames_per_scene == 1 else (1 / 3, 2 / 3)
    indices: set[int] = set()
    for start, end in scenes:
        a, b = start.frame_num, end.frame_num  # end is exclusive
        for f in fractions:
            indices.add(min(b - 1, a + int((b - a) * f)))
    return sorted(i for i in indices if 0 <= i < info.frame_count)


def read_video_frames(path: str, info: VideoInfo, indices: list[int]) -> Iterator[Frame]:
    """Yield the frames at ``indices`` (sorted) by grabbing sequentially; stops early at a truncated end."""
    if not indices:
        return
    cap = _open(path)
    yielded = 0
    try:
        wanted = iter(indices)
        target = next(wanted)
        pos = 0
        while True:
            if not cap.grab():
                break
            if pos == target:
                ok, image = cap.retrieve()
                if ok and image is not None:
                    yielded += 1
                    yield Frame(source=path, index=pos, time_s=round(pos / info.fps, 3), image=image)
                target = next(wanted, None)
                if target is None:
                    break
            pos += 1
    finally:
        cap.release()
    if yielded < len(indices):
        if yielded == 0:
            raise VideoError("video yields no decodable frames")
        log.warning("%s: read %d of %d sampled frames; the video ends early (truncated?)", path, yielded, len(indices))
