"""Fail `make setup` early, with a clear message, if the environment is not what the pipeline needs; export the
default CNNs for onnxruntime while at it (see person_cluster/embedding/onnx_export.py)."""

from __future__ import annotations

import importlib.metadata as md
import sys


def main() -> int:
    problems = []
    opencv = [d for d in ("opencv-python", "opencv-python-headless", "opencv-contrib-python") if _installed(d)]
    if len(opencv) != 1:
        problems.append(f"exactly one OpenCV distribution must be installed, found {opencv or 'none'}")
    modules = ("cv2", "dlib", "torch", "torchvision", "scenedetect", "av", "sklearn", "scipy", "yaml", "tqdm", "faiss",
               "onnxruntime", "onnx", "ray")
    for module in modules:
        try:
            __import__(module)
        except Exception as exc:  # noqa: BLE001 (report every broken import, not just the first)
            problems.append(f"import {module} failed: {exc}")
    try:
        from person_cluster.config import Config
        from person_cluster.detection.centerface import model_path
        from person_cluster.embedding import ClothEmbedder, FaceEncoder
        from person_cluster.models import DLIB_MODELS, dlib_model_path

        for name in DLIB_MODELS:
            dlib_model_path(name)
        model_path()
        # Loading the default CNNs exports them to ONNX (once per machine), so that the first run need not.
        config = Config()
        FaceEncoder(config.face)
        ClothEmbedder(config.cloth)
    except Exception as exc:  # noqa: BLE001 (a missing model file is reported, not raised)
        problems.append(str(exc))
    for p in problems:
        print(f"setup check: {p}", file=sys.stderr)
    if not problems:
        print("setup check: ok")
    return 1 if problems else 0


def _installed(dist: str) -> bool:
    try:
        md.version(dist)
        return True
    except md.PackageNotFoundError:
        return False


if __name__ == "__main__":
    sys.exit(main())
