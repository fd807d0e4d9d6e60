"""dlib's ResNet face descriptor (128-d), computed on a chip aligned by five or ten facial points.

Two steps, because they run in different places:
- :class:`FaceAligner` (in the worker threads, beside detection): the aligned 150x150 chip that dlib's network
  reads. Descriptors of resized box crops would be markedly worse. ``face.align`` says which points place it:
  - ``both`` (the default): the least-squares similarity that takes dlib's 5-point landmarks (run on the box) and
    the detector's own five points (eye centres, nose tip, mouth corners; CenterFace finds them with the face)
    each onto where dlib's mean face has them in its chip (the mean face of ``dlib.get_face_chip_details``, with
    the same padding);
  - ``detector``: the detector's five points alone; ``dlib``: dlib's landmarks alone, and ``dlib.get_face_chip``
    (the chip dlib's ``compute_face_descriptor`` builds; the only way before).
  Faces without detector points (HOG, dlib's CNN) are aligned as with ``dlib``. Why two estimates: on the 35-px
  faces of a wide shot dlib's landmark model places the eye corners loosely, CenterFace's points are coarse on
  big faces, and the errors of the two are not the same. ROC AUC of the descriptor distance between same- and
  other-person faces of four truths (dlib / detector / both): friends_kitchen 0.974 / 0.993 / 0.990, the living
  room 0.716 / 0.731 / 0.740, the face crops 0.894 / 0.922 / 0.914, Norton 0.998 / 0.999 / 0.998; clustering:
  docs/quality.md.
- :class:`FaceEncoder` (in the main thread, batched with the clothing CNN): chips -> descriptors, either by
  dlib's network run by onnxruntime (``face.backend: onnx``, the default; the same weights, defined in torch by
  dlib_resnet.py and exported once by onnx_export.py; agrees with dlib to 5e-7 and is ~40x faster on a batch) or
  by dlib itself (``face.backend: dlib``; needed for ``num_jitters > 0``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import cv2
import dlib
import numpy as np

from ..config import FaceConfig
from ..models import DLIB_MODELS, dlib_model_path
from ..records import Box
from .dlib_resnet import CHIP_SIZE
from .onnx_export import cnn_session

# Where dlib's mean face (``get_face_chip_details``; x right, y down, 0..1 across the face before padding) has the
# five points a face detector gives: the centres of the two eyes (the means of dlib's six points of each eye),
# the nose tip, the two mouth corners; image-left first, as CenterFace orders them.
MEAN_FACE_POINTS = np.array([[0.225492, 0.215990], [0.754761, 0.215990], [0.490127, 0.515625],
                             [0.254149, 0.780233], [0.726104, 0.780233]])
# And where it has the five points of dlib's own 5-point landmark model, in the model's order (the same function's
# constants for a 5-point shape).
DLIB_FIVE_POINTS = np.array([[0.8595674595992, 0.2134981538014], [0.6460604764104, 0.2289674387677],
                             [0.1205750620789, 0.2137274526848], [0.3340850613712, 0.2290642403242],
                             [0.4901123135679, 0.6277975316475]])


def chip_points(points: np.ndarray, padding: float, size: int = CHIP_SIZE) -> np.ndarray:
    """Chip pixels of mean-face ``points`` (0..1) for a chip of ``size`` with ``padding``, as dlib places its mean
    face in a chip."""
    return (padding + points) / (1 + 2 * padding) * size


def similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The (2, 3) similarity (rotation, uniform scale, shift) taking ``src`` points closest to ``dst`` in least
    squares (Umeyama 1991, without reflection)."""
    mu_s, mu_d = src.mean(0), dst.mean(0)
    a, b = src - mu_s, dst - mu_d
    u, sv, vt = np.linalg.svd(b.T @ a / len(src))
    d = np.diag([1.0, np.sign(np.linalg.det(u) * np.linalg.det(vt)) or 1.0])
    rotation = u @ d @ vt
    scale = np.trace(np.diag(sv) @ d) / a.var(0).sum()
    return np.c_[scale * rotation, mu_d - scale * rotation @ mu_s]


def warp_chip(rgb: np.ndarray, m: np.ndarray, size: int = CHIP_SIZE) -> np.ndarray:
    """The (size, size) chip of ``rgb`` under the similarity ``m`` (image -> chip). Bilinear; a face larger than
    the chip is first shrunk by area averaging, as dlib does before it samples, so that it does not alias."""
    scale = float(np.hypot(m[0, 0], m[1, 0]))
    if scale < 1:
        corners = np.array([[0, 0], [size, 0], [0, size], [size, size]], np.float64)
        inverse = cv2.invertAffineTransform(m)
        back = corners @ inverse[:, :2].T + inverse[:, 2]
        h, w = rgb.shape[:2]
        x0, y0 = np.clip(np.floor(back.min(0)).astype(int) - 1, 0, [w - 1, h - 1])
        x1, y1 = np.clip(np.ceil(back.max(0)).astype(int) + 2, [x0 + 1, y0 + 1], [w, h])
        region = rgb[y0:y1, x0:x1]
        small = cv2.resize(region, (max(1, round(region.shape[1] * scale)), max(1, round(region.shape[0] * scale))),
                           interpolation=cv2.INTER_AREA)
        fx, fy = small.shape[1] / region.shape[1], small.shape[0] / region.shape[0]
        # A pixel u of the shrunk region is at x = x0 + (u + 0.5) / f - 0.5 of the frame (OpenCV's resize).
        to_frame = np.array([[1 / fx, 0, x0 + 0.5 / fx - 0.5], [0, 1 / fy, y0 + 0.5 / fy - 0.5]])
        m = m[:, :2] @ to_frame + np.c_[np.zeros((2, 2)), m[:, 2]]
        rgb = small
    return cv2.warpAffine(rgb, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


class FaceAligner:
    def __init__(self, padding: float, align: str = "both") -> None:
        self.landmarks = dlib.shape_predictor(dlib_model_path("landmarks5"))
        self.padding = padding
        self.align = align
        self.detector_template = chip_points(MEAN_FACE_POINTS, padding)
        self.dlib_template = chip_points(DLIB_FIVE_POINTS, padding)

    def __call__(self, rgb: np.ndarray, box: Box, points: Sequence[Sequence[float]] | None = None) -> np.ndarray:
        """The aligned (150, 150, 3) uint8 RGB chip of the face in ``box``; ``points``: the detector's five, in
        frame pixels, where it has them."""
        rect = dlib.rectangle(box.left, box.top, box.right - 1, box.bottom - 1)
        found = None if points is None else np.asarray(points, np.float64)
        if found is not None and np.ptp(found, axis=0).max() < 1:
            found = None  # five points within one pixel: no similarity to fit
        if self.align == "detector" and found is not None:
            return warp_chip(rgb, similarity(found, self.detector_template))
        shape = self.landmarks(rgb, rect)
        if self.align == "both" and found is not None:
            own = np.array([[p.x, p.y] for p in shape.parts()], np.float64)
            src = np.concatenate([found, own])
            return warp_chip(rgb, similarity(src, np.concatenate([self.detector_template, self.dlib_template])))
        return dlib.get_face_chip(rgb, shape, size=CHIP_SIZE, padding=self.padding)


class FaceEncoder:
    dim = 128

    def __init__(self, config: FaceConfig, threads: int = 1) -> None:
        """``threads``: onnxruntime's threads (the onnx backend)."""
        self.backend = config.backend
        self.num_jitters = config.num_jitters
        self.batch_size = config.batch_size
        path = dlib_model_path("descriptor")
        if self.backend == "onnx":
            def build() -> tuple[Any, Any, dict]:
                import torch

                from .dlib_resnet import build_torch_net

                return build_torch_net(path), torch.zeros(1, CHIP_SIZE, CHIP_SIZE, 3, dtype=torch.uint8), {0: "n"}

            self.session = cnn_session("dlib-resnet", (DLIB_MODELS["descriptor"][1],), build, threads)
        else:
            self.model = dlib.face_recognition_model_v1(path)

    def __call__(self, chips: list[np.ndarray]) -> np.ndarray:
        """(n, 128) float32 descriptors of aligned chips."""
        if not chips:
            return np.zeros((0, self.dim), np.float32)
        if self.backend == "dlib":
            return np.array([self.model.compute_face_descriptor(c, self.num_jitters) for c in chips], np.float32)
        out = [self.session.run(None, {"input": np.stack(chips[i : i + self.batch_size])})[0]
               for i in range(0, len(chips), self.batch_size)]
        return np.concatenate(out).astype(np.float32, copy=False)


class FaceEmbedder:
    """One face at a time, for simple callers: ``embedder(rgb, box) -> (128,) float32``."""

    dim = FaceEncoder.dim

    def __init__(self, config: FaceConfig) -> None:
        self.align = FaceAligner(config.padding, config.align)
        self.encode = FaceEncoder(config)

    def __call__(self, rgb: np.ndarray, box: Box, points: Sequence[Sequence[float]] | None = None) -> np.ndarray:
        return self.encode([self.align(rgb, box, points)])[0]
