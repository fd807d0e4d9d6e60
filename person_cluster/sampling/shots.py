"""Shots of a video, found while it is decoded for sampling (no second pass over the file).

PySceneDetect's ContentDetector is fed the frames the sampling reader decodes anyway, downscaled to at least
:data:`SHOT_WIDTH` pixels wide (PySceneDetect downscales likewise before scoring, to 256 by default; at 128 the
shared clips give the same cuts, and shot detection costs the 10-minute 720p benchmark video 2.5 s of CPU instead
of 6.5 s). Frames that FFmpeg is told not to
decode (non-reference frames that are not sampled, see :mod:`.video`) are not fed: the detector then compares
frames one or two apart instead of neighbours, which a cut still dominates. A dissolve spreads its change over many
frames and may stay under the threshold; the face tracker's descriptor gate keeps tracks from crossing it.

Scoring and deciding are apart: the thread only scores each frame against the one decoded before it
(:class:`FrameScores`), and the cuts are decided by replaying the scores through one ContentDetector (its threshold
and flash filter, unchanged). A video read in chunks on several machines is scored chunk by chunk, and its joined
scores give the cuts of one sequential read by construction: no chunk edge can become a cut.
"""

from __future__ import annotations

import functools
import queue
import threading
from dataclasses import dataclass, field
from typing import Any

import av
import cv2
import numpy as np
from av.video.reformatter import VideoReformatter

SHOT_WIDTH = 128


@dataclass(frozen=True)
class Shot:
    """Frames ``first_frame``..``last_frame`` (inclusive) of ``source``, numbered ``index`` from 0 in it."""

    source: str
    index: int
    first_frame: int
    last_frame: int
    fps: float

    @property
    def first_time(self) -> float:
        return round(self.first_frame / self.fps, 3)

    @property
    def last_time(self) -> float:
        return round(self.last_frame / self.fps, 3)

    def as_dict(self) -> dict:
        return {"source": self.source, "shot": self.index, "first_frame": self.first_frame,
                "last_frame": self.last_frame, "first_time_s": self.first_time, "last_time_s": self.last_time,
                "fps": self.fps}

    @classmethod
    def from_dict(cls, d: dict) -> Shot:
        """A shot as :meth:`as_dict` wrote it (a manifest's ``shots``). Manifests written before ``fps`` was part
        of it give the rate from the last frame's time (to within the millisecond it was rounded to)."""
        fps = d.get("fps") or (d["last_frame"] / d["last_time_s"] if d["last_time_s"] else 1.0)
        return cls(str(d["source"]), int(d["shot"]), int(d["first_frame"]), int(d["last_frame"]), float(fps))


@dataclass
class FrameScores:
    """What the shot detector decides cuts from: PySceneDetect ContentDetector's score of each frame decoded
    against the frame decoded before it (0 for the first one scored), in frame order. Kept apart from the decision
    (:meth:`shots`) so that chunks of a video, scored apart, join exactly (:meth:`join`)."""

    source: str
    fps: float
    frame_count: int  # the video's length as its container reports it
    frames: list[int] = field(default_factory=list)
    values: list[float] = field(default_factory=list)

    @classmethod
    def join(cls, parts: list[FrameScores]) -> FrameScores:
        """The scores of consecutive chunks of one video as one. A chunk scores its first frame against nothing;
        the chunk before it scored that frame against its own last one, which is the score kept."""
        joined = cls(parts[0].source, parts[0].fps, parts[0].frame_count)
        for part in parts:
            for number, value in zip(part.frames, part.values, strict=True):
                if not joined.frames or number > joined.frames[-1]:
                    joined.frames.append(number)
                    joined.values.append(value)
        return joined

    def shots(self, threshold: float, min_shot_sec: float) -> list[Shot]:
        """The shots from frame 0 to the last frame scored (none if none was): the scores replayed through one
        ContentDetector, whose threshold and flash filter (``min_scene_len``) decide as they do on frames.
        The last shot runs to the video's end as its container reports it (frames after the last sampled one
        are not decoded, but they are on screen)."""
        if not self.frames:
            return []
        from scenedetect import FrameTimecode

        detector = _replay_class()(threshold=threshold, min_scene_len=max(1, round(min_shot_sec * self.fps)))
        cuts: list[int] = []  # first frame of each shot after the first

        def add(found: list) -> None:
            cuts.extend(c.frame_num for c in found if c.frame_num > 0 and (not cuts or c.frame_num > cuts[-1]))

        for number, value in zip(self.frames, self.values, strict=True):
            add(detector.replay(FrameTimecode(number, self.fps), value))
        last = max(self.frames)
        add(detector.post_process(FrameTimecode(last, self.fps)))
        starts = [0, *(c for c in cuts if c <= last)]
        ends = [s - 1 for s in starts[1:]] + [max(last, self.frame_count - 1)]
        return [Shot(self.source, k, a, b, self.fps) for k, (a, b) in enumerate(zip(starts, ends))]


@functools.cache
def _replay_class() -> type:
    """A ContentDetector that reads each frame's score instead of computing it: ``process_frame`` (the threshold,
    the flash filter) runs unchanged. Made on first use, so that a run without videos never imports scenedetect.
    ``_calculate_frame_score`` is scenedetect 0.7's (pinned); tests/test_structure.py checks that replayed
    scores give the cuts of ContentDetector fed the frames themselves."""
    from scenedetect import ContentDetector

    class ReplayedContentDetector(ContentDetector):
        _score = 0.0

        def replay(self, timecode: Any, score: float) -> list:
            self._score = score
            return self.process_frame(timecode, None)

        def _calculate_frame_score(self, timecode: Any, frame_img: Any) -> float:
            return self._score

    return ReplayedContentDetector


class ShotDetector:
    """Feed it decoded frames in order (:meth:`feed`), then :meth:`shots` lists the shots up to the last frame fed
    (:meth:`scores`: what they are decided from); :meth:`close` when abandoning it.

    The frames are scored in a thread of its own: decoding is the bottleneck of a run, and this takes ~0.3 ms of
    Python a frame off it (10-minute benchmark video, 10,018 frames fed: 32.7 s against 34.4 s end to end)."""

    def __init__(self, source: str, fps: float, threshold: float, min_shot_sec: float, frame_count: int = 0) -> None:
        """``frame_count``: the video's length as its container reports it (see :meth:`FrameScores.shots`)."""
        from scenedetect import ContentDetector

        self.threshold, self.min_shot_sec = threshold, min_shot_sec
        self._scores = FrameScores(source, fps, frame_count)
        self._scorer = ContentDetector()  # only its frame score is used: the cuts are decided by FrameScores.shots
        self._queue: queue.Queue[tuple[int, av.VideoFrame] | None] = queue.Queue(maxsize=32)
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def feed(self, number: int, frame: av.VideoFrame) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._score, name="shots", daemon=True)
            self._thread.start()
        self._queue.put((number, frame))

    def _score(self) -> None:
        from scenedetect import FrameTimecode

        fps, scaler = self._scores.fps, VideoReformatter()
        while (item := self._queue.get()) is not None:
            if self._error is not None:
                continue  # keep taking frames, so that feed() never blocks
            number, frame = item
            try:
                # scenedetect 0.7's score of a frame against the previous one (see _replay_class)
                value = self._scorer._calculate_frame_score(FrameTimecode(number, fps), small_bgr(frame, scaler))
            except Exception as exc:  # noqa: BLE001 (re-raised by scores(), in the decoding thread)
                self._error = exc
                continue
            self._scores.frames.append(number)
            self._scores.values.append(value)

    def close(self) -> None:
        """Wait for the frames fed so far to be scored, and end the thread (if any)."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None

    def scores(self) -> FrameScores:
        """The scores of every frame fed (an error met while scoring is raised here)."""
        self.close()
        if self._error is not None:
            raise self._error
        return self._scores

    def shots(self) -> list[Shot]:
        """The shots from frame 0 to the last frame fed (none if nothing was fed)."""
        return self.scores().shots(self.threshold, self.min_shot_sec)


def small_bgr(frame: av.VideoFrame, reformatter: VideoReformatter | None = None) -> np.ndarray:
    """The frame :data:`SHOT_WIDTH` to twice that wide, in BGR. 4:2:0 YUV (almost every video) is subsampled from
    its planes directly: 0.1 ms a 720p frame, against 1.2 ms for FFmpeg's scaler, which is the fallback. The
    scaler is ``reformatter``: ``frame.reformat`` would use the frame's own, which the decoding thread uses at the
    same time to convert a sampled frame (two threads in one FFmpeg scaler hung or crashed on small videos)."""
    if frame.format.name not in ("yuv420p", "yuvj420p") or frame.width < 2 * SHOT_WIDTH:
        height = max(2, round(frame.height * SHOT_WIDTH / max(1, frame.width)))
        scaler = reformatter or VideoReformatter()
        return scaler.reformat(frame, width=SHOT_WIDTH, height=height, format="bgr24").to_ndarray()
    step = frame.width // SHOT_WIDTH // 2  # on the chroma planes; twice that on luma
    y, u, v = (np.frombuffer(p, np.uint8).reshape(-1, p.line_size)[: p.height, : p.width] for p in frame.planes)
    u, v = u[::step, ::step], v[::step, ::step]
    h, w = u.shape
    yuv = np.dstack([y[:: 2 * step, :: 2 * step][:h, :w], u, v])
    return cv2.cvtColor(yuv, cv2.COLOR_YUV2BGR)


def shot_of(shots: list[Shot], frames: np.ndarray) -> np.ndarray:
    """Index of the shot holding each of ``frames`` (shots as :meth:`ShotDetector.shots` lists them, in order);
    -1 for a frame before the first shot or after the last."""
    frames = np.asarray(frames, np.int64)
    if not shots:
        return np.full(len(frames), -1, np.int64)
    starts = np.array([s.first_frame for s in shots], np.int64)
    k = np.searchsorted(starts, frames, side="right") - 1
    inside = (k >= 0) & (frames <= shots[-1].last_frame)
    return np.where(inside, k, -1)
