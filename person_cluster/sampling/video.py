"""Sample frames from a video: every N seconds, or one or two frames per shot found by PySceneDetect.

Videos are read with PyAV (FFmpeg), decoding forward: at sampling intervals of seconds that is faster than seeking
(OpenCV's CAP_PROP_POS_FRAMES seek is 3-5x slower than reading on). Only sampled frames are converted to BGR, and
frames that no other frame references (the B-frames of most H.264/HEVC video) are not decoded at all unless
sampled: FFmpeg's ``skip_frame=NONREF``, set per packet. On the shared clips with B-frames that halves the frames
decoded (facenet 105 -> 53, intel 1394 -> 574). Frame numbers and pixels are those OpenCV's reader gives
(tests/test_sampling.py compares them).
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass

import av
import numpy as np

from ..config import SamplingConfig
from ..records import Frame
from .inputs import InputError
from .shots import ShotDetector

log = logging.getLogger(__name__)


# A stream with more damaged packets than this is not worth reading on.
_MAX_BAD_PACKETS = 100


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


def _open(path: str) -> av.container.InputContainer:
    if not os.access(path, os.R_OK):
        raise VideoError("permission denied")
    if os.path.getsize(path) == 0:
        raise VideoError("file is empty")
    try:
        container = av.open(path, metadata_errors="ignore")
    except (av.FFmpegError, OSError, ValueError):
        if _mp4_index_missing(path):
            raise VideoError(
                "video was cut short before its index (moov atom) was written; no frame can be located"
            ) from None
        raise VideoError("not a readable video (unknown format or corrupt)") from None
    if not container.streams.video:
        container.close()
        raise VideoError("video holds no frames")
    return container


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
    with _open(path) as container:
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate
        fps = float(rate) if rate else 0.0
        frames = stream.frames  # from the container's index; 0 where it keeps none (e.g. Matroska)
        if frames <= 0 and fps > 0:  # estimated from the duration, as OpenCV does
            if stream.duration and stream.time_base:
                frames = round(float(stream.duration * stream.time_base) * fps)
            elif container.duration:
                frames = round(container.duration / av.time_base * fps)
        info = VideoInfo(
            fps=fps if math.isfinite(fps) and fps > 0 else 0.0,
            frame_count=max(0, frames),
            width=stream.codec_context.width,
            height=stream.codec_context.height,
        )
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
        idx = round(t * info.fps)
        if idx < info.frame_count and (not indices or idx > indices[-1]):
            indices.append(idx)
        k += 1
    return indices


def scene_indices(path: str, info: VideoInfo, config: SamplingConfig) -> list[int]:
    """One (middle) or two (1/3 and 2/3) frames per shot found by PySceneDetect's ContentDetector."""
    from scenedetect import ContentDetector, detect  # imported here: it is only needed in scene mode

    detector = ContentDetector(
        threshold=config.scene_threshold,
        min_scene_len=max(1, round(config.min_scene_len_sec * info.fps)),
    )
    try:
        scenes = detect(
            path,
            detector,
            start_time=config.skip_sec or None,
            end_time=config.stop_sec,
            start_in_scene=True,  # a video without cuts is one scene, not none
        )
    except Exception as exc:  # noqa: BLE001 (scenedetect raises several types for unreadable streams)
        raise VideoError(f"scene detection failed: {exc}") from None
    fractions = (0.5,) if config.frames_per_scene == 1 else (1 / 3, 2 / 3)
    indices: set[int] = set()
    for start, end in scenes:
        a, b = start.frame_num, end.frame_num  # end is exclusive
        for f in fractions:
            indices.add(min(b - 1, a + int((b - a) * f)))
    return sorted(i for i in indices if 0 <= i < info.frame_count)


class _Numbering:
    """Frame numbers as OpenCV counts them: 0, 1, 2, ... in presentation order.

    In a constant-rate stream with timestamps a frame's number follows from its pts, so a packet's number is known
    before it is decoded and the packets of unsampled frames can be skipped. Otherwise (variable rate, no
    timestamps) frames are counted as they come out of the decoder, and none may be skipped."""

    def __init__(self, stream: av.video.stream.VideoStream) -> None:
        self.rate = stream.average_rate
        self.time_base = stream.time_base
        self.by_pts = bool(self.rate and self.time_base and self.rate == stream.guessed_rate)
        self.origin: int | None = None  # pts of frame 0: known once the first frame is decoded
        self.last = -1

    def may_skip(self, packet: av.Packet) -> bool:
        return self.by_pts and self.origin is not None and packet.pts is not None

    def of_packet(self, packet: av.Packet) -> int:
        return self._of_pts(packet.pts)

    def of_frame(self, frame: av.VideoFrame) -> int:
        if self.by_pts and frame.pts is not None:
            if self.origin is None:
                self.origin = frame.pts
            number = self._of_pts(frame.pts)
        else:
            number = self.last + 1
        self.last = max(self.last, number)
        return number

    def _of_pts(self, pts: int) -> int:
        return round((pts - self.origin) * self.time_base * self.rate)


@dataclass(frozen=True)
class Span:
    """A chunk of a video: frames ``first`` .. ``stop - 1``, read from the keyframe that is frame ``first``
    (:func:`plan_chunks`). A chunk that is not the ``last`` also scores the first frame after it against its own
    last one for the shot detector, which it decodes anyway; frames before ``first`` are dropped. ``origin``: the
    pts of frame 0, as the sequential reader finds it (frame numbers are counted from it)."""

    first: int
    stop: int
    keyframe_pts: int
    keyframe_dts: int | None
    origin: int
    last: bool


def read_video_frames(path: str, info: VideoInfo, indices: list[int], shots: ShotDetector | None = None,
                      through: int = -1, planned: list[int] | None = None, span: Span | None = None,
                      ) -> Iterator[Frame]:
    """Yield the frames at ``indices`` (sorted), decoding forward; stops early at a truncated end. ``shots`` is
    fed every frame decoded up to ``through`` (or the last index, if later). ``planned``: every frame the plan
    samples (default: ``indices``); only other non-reference frames go undecoded, so that a resumed run, which
    yields fewer, decodes (and scores for shots) the very frames a first run did. ``span``: read that chunk only;
    the caller then checks the count read (:func:`check_frames_read`, once every chunk is in)."""
    last = max(indices[-1] if indices else -1, through if shots is not None else -1)
    if last < 0:
        return
    wanted = set(indices)
    yielded = 0
    with _open(path) as container:
        for number, frame in _decode(container, frozenset(indices if planned is None else planned), span):
            if span is not None:
                if number < span.first and span.first > 0:  # the previous chunk's
                    continue
                if number >= span.stop and not span.last:  # the next chunk's first frame: scored, not yielded
                    if shots is not None:
                        shots.feed(number, frame)
                    break
            if shots is not None and number <= last:
                shots.feed(number, frame)
            if number in wanted:
                wanted.discard(number)
                yielded += 1
                image = np.ascontiguousarray(frame.to_ndarray(format="bgr24"))
                yield Frame(source=path, index=number, time_s=round(number / info.fps, 3), image=image)
            if number >= last:
                break
    if span is None:
        check_frames_read(path, yielded, len(indices))


def check_frames_read(path: str, yielded: int, expected: int) -> None:
    """A video that yields none of its sampled frames is an error; one that yields fewer ends early (a warning)."""
    if yielded < expected:
        if yielded == 0:
            raise VideoError("video yields no decodable frames")
        log.warning("%s: read %d of %d sampled frames; the video ends early (truncated?)", path, yielded, expected)


def plan_chunks(path: str, through: int, chunk_sec: float) -> list[Span]:
    """Keyframe-aligned chunks covering frames 0 .. ``through``: each starts at the first keyframe at or after a
    multiple of ``chunk_sec``. Packets are demuxed, not decoded (the 10-minute 720p benchmark video: 0.12 s), and
    a keyframe's number follows from its pts as :class:`_Numbering` numbers frames; frame 0's pts is that of the
    first frame decoded, as in a sequential read. One chunk (the whole video) where frames cannot be numbered by
    pts (a variable frame rate: they are counted in order, which needs one reader from the start)."""
    with _open(path) as container:
        stream = container.streams.video[0]
        numbering = _Numbering(stream)
        if not numbering.by_pts or through < 0:
            return []
        origin = _first_pts(container)
    if origin is None:
        return []
    starts: list[tuple[int, int, int | None]] = []  # (frame number, pts, dts) of each chunk's keyframe
    step = max(1, round(chunk_sec * float(numbering.rate)))
    numbering.origin = origin
    with _open(path) as container:
        stream = container.streams.video[0]
        try:
            for packet in container.demux(stream):
                if packet.pts is None or not packet.is_keyframe:
                    continue
                number = numbering.of_packet(packet)
                if number > through:
                    break
                if number >= step * (len(starts) + 1) and (not starts or number > starts[-1][0]):
                    starts.append((number, packet.pts, packet.dts))
        except av.FFmpegError as exc:  # a damaged or truncated file: chunks up to where it breaks
            log.debug("%s: demuxing stopped: %s", path, exc)
    bounds = [(0, 0, None), *starts]
    return [Span(first, bounds[k + 1][0] if k + 1 < len(bounds) else through + 1, pts, dts, origin,
                 last=k + 1 == len(bounds))
            for k, (first, pts, dts) in enumerate(bounds)]


def _first_pts(container: av.container.InputContainer) -> int | None:
    """pts of the first frame the decoder gives (frame 0 of a sequential read), decoding as little as it can."""
    stream = container.streams.video[0]
    try:
        for packet in container.demux(stream):
            try:
                for frame in packet.decode():
                    return frame.pts
            except av.InvalidDataError:
                continue
    except av.FFmpegError:
        pass
    return None


def _packets(container: av.container.InputContainer, span: Span | None) -> Iterator[av.Packet]:
    """The video packets from the start, or from ``span``'s keyframe on: the seek lands on it or on an earlier
    keyframe, whose packets are passed over undecoded (frames from a closed-GOP keyframe on need no earlier
    one); where it lands past it, the file is demuxed from its start instead."""
    stream = container.streams.video[0]
    if span is None or span.first == 0:
        yield from container.demux(stream)
        return
    container.seek(span.keyframe_pts, stream=stream, backward=True, any_frame=False)
    for attempt in range(2):
        found = False
        for packet in container.demux(stream):
            if not found:
                if packet.is_keyframe and packet.pts == span.keyframe_pts:
                    found = True
                elif (attempt == 0 and packet.dts is not None and span.keyframe_dts is not None
                      and packet.dts > span.keyframe_dts):
                    break  # the seek went past the keyframe
                else:
                    continue
            yield packet
        if found:
            return
        container.seek(0, stream=stream, backward=True, any_frame=False)


def _decode(container: av.container.InputContainer, wanted: frozenset[int],
            span: Span | None = None) -> Iterator[tuple[int, av.VideoFrame]]:
    """(number, frame) in presentation order. Frames that no other frame references (most B-frames) are not
    decoded unless their number is in ``wanted``; damaged packets are passed over; a container that breaks off
    (truncated file) ends the stream. ``span``: from that chunk's keyframe on."""
    stream = container.streams.video[0]
    # Slice threads only: in a run the other cores detect and embed, so the decoder's CPU time is what counts. On
    # the 10-minute 720p benchmark video (600 frames sampled) frame threads ("AUTO") took 18.9 s of CPU for 14.2 s,
    # slice threads 15.9 s for 10.0 s, one thread 16.3 s for 16.1 s.
    stream.thread_type = "SLICE"
    numbering = _Numbering(stream)
    if span is not None and span.first > 0:
        numbering.origin = span.origin
    bad_packets = 0
    try:
        for packet in _packets(container, span):
            skip = numbering.may_skip(packet) and numbering.of_packet(packet) not in wanted
            stream.codec_context.skip_frame = "NONREF" if skip else "DEFAULT"
            try:
                frames = packet.decode()
            except av.InvalidDataError:  # the decoder resumes at the next good packet
                bad_packets += 1
                if bad_packets > _MAX_BAD_PACKETS:
                    return
                continue
            for frame in frames:
                yield numbering.of_frame(frame), frame
    except av.FFmpegError as exc:
        log.debug("%s: demuxing stopped: %s", container.name, exc)
