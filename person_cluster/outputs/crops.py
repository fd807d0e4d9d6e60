"""JPEG crops of a face, cut from its frame at extraction time and kept in the feature cache (so that outputs can
be rebuilt without reading the inputs again), and the sampled frames written beside the YOLO labels."""

from __future__ import annotations

import cv2
import numpy as np

from ..config import OutputConfig
from ..records import Box, Frame


def encode_jpg(image: np.ndarray, max_side: int, quality: int) -> bytes:
    h, w = image.shape[:2]
    s = min(1.0, max_side / max(h, w))
    if s < 1.0:
        image = cv2.resize(image, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return buf.tobytes()


def upper_body_box(face: Box) -> Box:
    """Head and shoulders down to the chest: 3 face widths wide, half a face above to 2.5 faces below."""
    cx = (face.left + face.right) / 2
    return Box(round(cx - 1.5 * face.width), round(face.top - 0.5 * face.height),
               round(cx + 1.5 * face.width), round(face.bottom + 2.5 * face.height))


def face_crops(frame: Frame, bbox: Box, config: OutputConfig) -> tuple[bytes, bytes]:
    """(face crop with ``crop_margin``, upper-body crop) of the face at ``bbox`` (clipped to the frame), as JPEG."""
    face = bbox.expand(config.crop_margin).clip(frame.width, frame.height)
    body = upper_body_box(bbox).clip(frame.width, frame.height)
    return (encode_jpg(face.cut(frame.image), config.crop_max_side, config.jpeg_quality),
            encode_jpg(body.cut(frame.image), config.crop_max_side, config.jpeg_quality))


def frame_jpg(frame: Frame, config: OutputConfig) -> bytes:
    """The whole frame as JPEG, as OUT's frames/ keeps it (sinks.CacheSink writes it there)."""
    return encode_jpg(frame.image, max(frame.width, frame.height), config.jpeg_quality)
