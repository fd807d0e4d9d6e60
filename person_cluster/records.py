"""Typed records passed between the pipeline stages.

Sampling yields :class:`Frame`; detection yields :class:`Detection`; embedding turns both into :class:`FaceRecord`,
which the feature cache stores. Clustering works on :class:`FaceTable`, the columnar (numpy) view of many records.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Box:
    """A pixel box in original frame coordinates; right and bottom are exclusive."""

    left: int
    top: int
    right: int
    bottom: int

    @property
    def width(self) -> int:
        return self.right - self.left

    @property
    def height(self) -> int:
        return self.bottom - self.top

    def clip(self, width: int, height: int) -> Box:
        return Box(
            max(0, min(self.left, width)),
            max(0, min(self.top, height)),
            max(0, min(self.right, width)),
            max(0, min(self.bottom, height)),
        )

    def expand(self, margin: float) -> Box:
        dx, dy = round(self.width * margin), round(self.height * margin)
        return Box(self.left - dx, self.top - dy, self.right + dx, self.bottom + dy)

    def as_list(self) -> list[int]:
        return [self.left, self.top, self.right, self.bottom]

    def cut(self, image: np.ndarray) -> np.ndarray:
        """The pixels of ``image`` inside this box (a view; the box must be clipped to the image)."""
        return image[self.top : self.bottom, self.left : self.right]


@dataclass(frozen=True)
class InputItem:
    """One input file: ``source`` is the path exactly as the user gave it (or as found in a given folder)."""

    source: str
    kind: str  # "video" or "image"


@dataclass(frozen=True)
class SkippedInput:
    source: str
    reason: str


@dataclass
class Frame:
    """A sampled frame, BGR uint8 at original resolution. ``index``/``time_s`` are None for photos."""

    source: str
    index: int | None
    time_s: float | None
    image: np.ndarray

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    @property
    def height(self) -> int:
        return int(self.image.shape[0])


@dataclass(frozen=True)
class Detection:
    box: Box  # original pixel coordinates, not clipped to the frame (landmarks use the full box)
    score: float
    # The detector's own five points (x, y) where it has them: eyes, nose tip, mouth corners (CenterFace order).
    landmarks: tuple[tuple[float, float], ...] | None = None

    def scaled(self, factor: float) -> Detection:
        """The same detection in a frame ``factor`` times larger."""
        box = Box(*(round(v * factor) for v in self.box.as_list()))
        points = None if self.landmarks is None else tuple((x * factor, y * factor) for x, y in self.landmarks)
        return Detection(box, self.score, points)

    def shifted(self, dx: int, dy: int) -> Detection:
        """The same detection with the frame's origin moved by (-dx, -dy)."""
        box = Box(self.box.left + dx, self.box.top + dy, self.box.right + dx, self.box.bottom + dy)
        points = None if self.landmarks is None else tuple((x + dx, y + dy) for x, y in self.landmarks)
        return Detection(box, self.score, points)


@dataclass
class FaceCandidate:
    """One detected face on its way from a worker (detection, aligned chip) through embedding (the features) to
    the cache (:meth:`record`)."""

    detection: Detection
    bbox: Box  # the detection's box clipped to the frame
    chip: np.ndarray  # dlib's aligned 150x150 RGB chip, the face descriptor's input
    sharpness: float = 0.0  # variance of the Laplacian of the chip's grey image (see quality.py)
    cloth_region: Box | None = None  # set at embedding; None: no usable clothing region
    face_embedding: np.ndarray | None = None
    face_flip_embedding: np.ndarray | None = None  # the mirrored chip's descriptor (face.flip)
    cloth_embedding: np.ndarray | None = None

    def record(self, frame: Frame, face_jpg: bytes, body_jpg: bytes | None) -> FaceRecord:
        assert self.face_embedding is not None, "embed the face first"
        landmarks = None if self.detection.landmarks is None else np.asarray(self.detection.landmarks, np.float32)
        return FaceRecord(frame.source, frame.index, frame.time_s, self.bbox, self.detection.score,
                          self.face_embedding, self.cloth_embedding, face_jpg, body_jpg,
                          self.face_flip_embedding, self.sharpness, landmarks)


@dataclass
class FaceRecord:
    """Everything extracted for one face; what the feature cache stores."""

    source: str
    frame: int | None
    time_s: float | None
    bbox: Box  # clipped to the frame
    score: float
    face_embedding: np.ndarray  # raw dlib 128-d descriptor (normalised at fusion)
    cloth_embedding: np.ndarray | None  # None when no usable clothing region exists
    face_jpg: bytes = b""
    body_jpg: bytes | None = None
    face_flip_embedding: np.ndarray | None = None  # raw descriptor of the mirrored chip (None: not mirrored, face.flip)
    sharpness: float = 0.0
    landmarks: np.ndarray | None = None  # (5, 2) the detector's points in frame pixels, where it has them


@dataclass
class FrameInfo:
    """A sampled frame's place and size, kept so that every sampled frame gets a YOLO label file."""

    source: str
    frame: int | None
    time_s: float | None
    width: int
    height: int
    # Colour histogram of the frame outside its people (see scenes.py): which shots show one place.
    background: np.ndarray | None = None


@dataclass
class FaceTable:
    """Columnar view of all cached faces, in a deterministic order (input order, frame, box)."""

    ids: np.ndarray  # (n,) int, 0..n-1
    sources: list[str]
    frames: list[int | None]
    times: list[float | None]
    bboxes: np.ndarray  # (n, 4) int: left, top, right, bottom
    face: np.ndarray  # (n, 128) float32, raw descriptors
    cloth: np.ndarray  # (n, d) float32; rows without a clothing feature are zero
    has_cloth: np.ndarray  # (n,) bool
    # (n,) int: each face's shot in its video (-1: a photo, or a video whose shots were not found)
    shots: np.ndarray | None = None
    # What the face quality is estimated from (see quality.py); absent for tables built by hand.
    # (n, 128) raw descriptors of the mirrored chips (a face not mirrored: its own), or None (no face mirrored)
    face_flip: np.ndarray | None = None
    scores: np.ndarray | None = None  # (n,) detector scores
    sharpness: np.ndarray | None = None  # (n,) variance of the Laplacian of the aligned chip
    landmarks: np.ndarray | None = None  # (n, 5, 2) the detector's points; NaN where it has none
    has_body: np.ndarray | None = None  # (n,) bool: the cache holds an upper-body crop of the face
    # (source, shot) -> the mean background histogram of the shot's sampled frames (see scenes.py)
    shot_backgrounds: dict[tuple[str, int], np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.ids)
        if self.shots is None:
            self.shots = np.full(n, -1, np.int64)
        if self.scores is None:
            self.scores = np.ones(n)
        if self.sharpness is None:
            self.sharpness = np.full(n, np.nan)
        if self.landmarks is None:
            self.landmarks = np.full((n, 5, 2), np.nan, np.float32)
        if self.has_body is None:
            self.has_body = np.ones(n, bool)

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    def take(self, rows: np.ndarray) -> FaceTable:
        """The faces at ``rows``, in that order (ids renumbered 0..len-1; the shots' backgrounds kept)."""
        rows = np.asarray(rows, np.int64)
        values: dict[str, Any] = {"ids": np.arange(len(rows))}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name in ("ids", "shot_backgrounds") or value is None:
                continue
            values[f.name] = [value[k] for k in rows] if isinstance(value, list) else value[rows]
        return dataclasses.replace(self, **values)


def mirror_images(face: np.ndarray, mirror: np.ndarray, mirrored: np.ndarray) -> np.ndarray | None:
    """:attr:`FaceTable.face_flip` from each face's mirror-image descriptor (``mirror``) where it was described
    (``mirrored``, face.flip): a face not mirrored stands as its own mirror image (distance 0: the quality gate's
    mirror cue leaves it as its other cues judge it, and its mirror average is itself); None where no face was."""
    if not mirrored.any():
        return None
    return np.where(mirrored[:, None], mirror, face)
