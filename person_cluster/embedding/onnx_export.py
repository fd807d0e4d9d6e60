"""The face and clothing CNNs run in onnxruntime, from ONNX files exported once from their torch definitions.

Why: importing torch is ~1.5 s of every cold run (most of a short clip's start-up), and onnxruntime runs both
networks faster on CPU batches (32 inputs, 2 threads: MobileNetV2 to ``features.13`` 3.6 against 8.8 ms a crop,
dlib's ResNet 2.2 against 3.0 ms a chip; outputs equal to 4e-7). torch stays the one definition of each network
(``mobilenet.py``, ``dlib_resnet.py``, torchvision) and is imported only to export: on a machine's first run, or
after a weights file, a stage or :data:`EXPORT_VERSION` changes.

The file is ``cache_dir()/<name>-<key>.onnx``, the key a hash of everything that decides the graph (the source
weights' SHA-256, the stage, ``EXPORT_VERSION``). Its own SHA-256 is written beside it (``.sha256``) and checked at
every load: a missing, damaged or foreign file is exported again. Where the cache cannot be written, the export is
kept in memory for this run only.

torch's TorchScript exporter (``dynamo=False``) is used: 0.2-0.3 s a network, against 3-12 s (and the extra
``onnxscript`` package) for torch.export's exporter, with the same outputs. It is deprecated since torch 2.9 but
present in the pinned torch; switching is one argument.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..models import ModelError, cache_dir

log = logging.getLogger(__name__)

EXPORT_VERSION = 2  # bump when a network's torch definition or the export changes the graph
_OPSET = 17


def cnn_session(name: str, key_parts: tuple[str, ...], build: Callable[[], tuple[Any, Any, dict]],
                threads: int) -> Any:
    """An onnxruntime session for the network ``name``.

    ``key_parts``: what decides the graph, besides :data:`EXPORT_VERSION`. ``build()`` (called only to export)
    returns (torch module in eval mode, example input, dynamic axes of the input as torch.onnx.export takes them);
    the module has one input and one output. ``threads``: onnxruntime's intra-op threads."""
    key = hashlib.sha256("\0".join((*key_parts, str(EXPORT_VERSION))).encode()).hexdigest()[:16]
    path = cache_dir() / f"{name}-{key}.onnx"
    model = _read_verified(path)
    if model is None:
        model = _export(name, build)
        _write(path, model)
    return _session(name, model, threads)


def _read_verified(path: Path) -> bytes | None:
    """The cached file's bytes when its SHA-256 matches the one written beside it; else None (it is exported again)."""
    try:
        data = path.read_bytes()
        expected = path.with_suffix(".sha256").read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    if hashlib.sha256(data).hexdigest() != expected:
        log.warning("cached network %s is damaged or altered; exporting it again", path)
        return None
    return data


def _export(name: str, build: Callable[[], tuple[Any, Any, dict]]) -> bytes:
    import torch

    module, example, dynamic_axes = build()  # a missing or bad weights file is a ModelError from here
    buffer = io.BytesIO()
    try:
        with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
            # The exporter's deprecation notice, and tracer notes on shapes that are fixed for these inputs.
            warnings.simplefilter("ignore")
            torch.onnx.export(module, (example,), buffer, dynamo=False, input_names=["input"],
                              output_names=["output"], dynamic_axes={"input": dynamic_axes}, opset_version=_OPSET)
    except Exception as exc:  # noqa: BLE001 (the exporter raises many types, e.g. for a layer it cannot express)
        raise ModelError(f"cannot export the {name} network to ONNX: {str(exc).splitlines()[0] if str(exc) else exc!r}"
                         ) from None
    log.info("exported %s to ONNX (%.1f MB)", name, buffer.tell() / 1e6)
    return buffer.getvalue()


def _write(path: Path, model: bytes) -> None:
    """The file, then its hash, each written atomically; a failure costs the next run an export, nothing else."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(model)
        os.replace(tmp, path)
        tmp.write_text(hashlib.sha256(model).hexdigest() + "\n", encoding="ascii")
        os.replace(tmp, path.with_suffix(".sha256"))
    except OSError as exc:
        log.debug("cannot cache %s: %s", path, exc)
        with contextlib.suppress(OSError):  # e.g. the folder could not be made
            tmp.unlink(missing_ok=True)


def _session(name: str, model: bytes, threads: int) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    # Idle threads sleep instead of spinning: beside the detection threads a spinning pool only takes CPU from them
    # (10-minute benchmark video, 2 cores: 38.9 s spinning, 36.6 s not; one thread 35.9 s, but slower on photos).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 (onnxruntime raises several types for a bad graph)
        raise ModelError(f"cannot load the {name} network: {str(exc).splitlines()[0]}") from None
