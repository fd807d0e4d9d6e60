"""Locate model files on disk. Nothing is ever downloaded: a missing file is an error saying how to provide it."""

from __future__ import annotations

import importlib.util
import logging
import os
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


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


def cache_dir() -> Path:
    """Where derived files that are cheap to rebuild are kept: ``$XDG_CACHE_HOME/person_cluster``."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "person_cluster"


def frontal_face_detector() -> Any:
    """dlib's HOG frontal face detector (5 filters, 80x80 window).

    ``dlib.get_frontal_face_detector()`` parses a model embedded as text: 0.7 s, paid by every worker at start.
    dlib's binary serialisation of the same detector loads in 2 ms, so it is kept in :func:`cache_dir`, one file
    per dlib version, written atomically; a missing, damaged or foreign file is rebuilt."""
    import dlib

    path = cache_dir() / f"frontal_face_detector-dlib{dlib.__version__}.svm"
    try:
        detector = dlib.fhog_object_detector(str(path))
        if detector.num_detectors == 5 and detector.detection_window_width == detector.detection_window_height == 80:
            return detector
    except RuntimeError:  # absent or damaged (dlib raises RuntimeError for both)
        pass
    detector = dlib.get_frontal_face_detector()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        detector.save(str(tmp))
        os.replace(tmp, path)
    except (OSError, RuntimeError) as exc:  # a read-only home costs start-up time, nothing else
        log.debug("cannot cache the face detector at %s: %s", path, exc)
        tmp.unlink(missing_ok=True)
    return detector
