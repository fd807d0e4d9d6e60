"""The extraction pipeline: sampled frames -> faces with face and clothing features, stored through a sink.

:meth:`Extractor.extract` takes work units (:class:`Unit`: an input, or a chunk of a long video) and stores each
batch through a sink (:mod:`.sinks`): OUT's feature cache for the local engine, memory inside a Ray actor, which
returns it to the driver that stores it (:mod:`.engine`). The extractor runs the same in both.

Threads, and why (no processes: a frame is shared, never pickled, and nothing can die on its own):
- a decode thread reads and samples frames (PyAV releases the GIL while FFmpeg decodes) into a bounded queue;
- worker threads run detection, landmarks and dlib's face alignment (the aligned chips), one frame at a time.
  onnxruntime (CenterFace) and dlib's HOG, landmarks and alignment release the GIL: two threads detect 2.0x (HOG)
  and 1.4x (CenterFace, whose frames are small) as fast as one. dlib's MMOD CNN holds it, so it runs in the main
  thread, one frame at a time;
- the main thread takes results back *in submission order*, runs the face descriptor network and the clothing CNN
  on batches of chips and crops (onnxruntime, ``runtime.cnn_threads``) while a thread of its own encodes the JPEG
  crops, and stores them in order, one transaction per batch. The CNNs are loaded (on a machine's first run,
  exported from torch: embedding/onnx_export.py) by a background thread while the workers already detect; only the
  first commit waits for them.
Results are identical whatever the number of workers; memory is bounded by the queue sizes. Batching frames for the
detector does not pay on a CPU: one onnxruntime call on 8 frames took 35-60 ms a frame, 8 calls 16 ms a frame.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import queue
import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
from tqdm import tqdm

from .cache import FeatureCache
from .config import Config, DetectionConfig, FaceConfig, OutputConfig, SamplingConfig
from .embedding.clothing import cloth_region
from .errors import PersonClusterError
from .quality import chip_sharpness
from .records import FaceCandidate, Frame, FrameInfo, InputItem
from .sampling import FramePlan, InputError, Span, plan_frames, planned_in, read_planned_frames, shot_detector
from .sampling.shots import FrameScores

if TYPE_CHECKING:
    from .sinks import CacheSink, UnitCollector

    Sink = CacheSink | UnitCollector

log = logging.getLogger(__name__)


# -- worker side ----------------------------------------------------------------------------------------------
class FrameAnalyzer:
    """Detection + aligned face chips for one frame; built once per worker thread."""

    def __init__(self, detection: DetectionConfig, face: FaceConfig) -> None:
        from .detection import make_detector
        from .embedding.face import FaceAligner

        self.detect = make_detector(detection)
        self.align = FaceAligner(face.padding, face.align)
        self.photo_border = detection.photo_border

    def __call__(self, image: np.ndarray, photo: bool = False) -> list[FaceCandidate]:
        rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        h, w = image.shape[:2]
        found = self.detect(rgb)
        if not found and photo and self.photo_border > 0:
            found = self.detect.with_border(rgb, self.photo_border)
        out = []
        for det in found:
            bbox = det.box.clip(w, h)
            # A box can reach past the frame edge; one with (almost) nothing inside the frame has no usable crop.
            if min(bbox.width, bbox.height) >= 2:
                chip = self.align(rgb, det.box, det.landmarks)
                out.append(FaceCandidate(det, bbox, chip, chip_sharpness(chip)))
        return out


# One analyzer per worker thread (_InlineExecutor keeps its own, for one worker or a detector holding the GIL).
_worker = threading.local()


def _init_worker(detection: DetectionConfig, face: FaceConfig) -> None:
    try:
        _worker.analyzer, _worker.error = FrameAnalyzer(detection, face), None
    except Exception as exc:  # noqa: BLE001 (a pool would log it and fail every task; raised per frame instead)
        _worker.analyzer, _worker.error = None, exc


def _analyse_in_worker(image: np.ndarray, photo: bool) -> list[FaceCandidate]:
    if _worker.error is not None:  # raised in the caller's thread by the frame's future: one clear error
        raise _worker.error
    return _worker.analyzer(image, photo)


def check_models(config: Config) -> None:
    """Check the model files the workers load (the detector's, dlib's landmarks and descriptor), so that a missing
    or altered file stops a run before it writes anything. Cheap: each file is hashed once per process."""
    from .detection import detector_class
    from .models import dlib_model_path

    detector_class(config.detection.model).check_model()
    dlib_model_path("landmarks5")
    dlib_model_path("descriptor")


def _worker_ready() -> tuple[int, int]:
    """Answered once the worker's initializer (imports, models) has run."""
    time.sleep(0.05)  # long enough that the pool hands the next ping to another worker
    return os.getpid(), threading.get_ident()


class _InlineExecutor:
    """Runs the analyzer in the caller's thread: ``workers: 1`` needs no pool (and no process start-up)."""

    def __init__(self, detection: DetectionConfig, face: FaceConfig) -> None:
        self.analyzer = FrameAnalyzer(detection, face)

    def submit(self, fn: Any, image: np.ndarray, photo: bool) -> Future:
        fut: Future = Future()
        fut.set_result(self.analyzer(image, photo))
        return fut

    def shutdown(self, wait: bool = True, cancel_futures: bool = False) -> None:
        pass


# -- parent side ----------------------------------------------------------------------------------------------
@dataclass
class ExtractionSummary:
    inputs: int = 0
    frames: int = 0
    faces: int = 0
    seconds: float = 0.0  # wall time of Extractor.run (models and workers were ready before it)
    # Where the main thread spent it: waiting on detection, in the face and clothing CNNs, storing (crops, cache).
    wait_s: float = 0.0
    cnn_s: float = 0.0
    store_s: float = 0.0
    skipped: list[tuple[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class Unit:
    """One unit of work: an input, or a chunk of a long video (``span``, a frame range; see
    :func:`~person_cluster.sampling.plan_chunks`). ``plan``: its frames, when planned beforehand (the Ray engine
    plans in the driver); ``skip``: frames already in the cache, which are decoded (for the shots) but not
    analysed again."""

    position: int
    item: InputItem
    plan: FramePlan | None = None
    span: Span | None = None
    skip: frozenset[int | None] = frozenset()


def pending_units(items: list[tuple[int, InputItem]], cache: FeatureCache) -> list[Unit]:
    """One unit per input of ``items`` (position, input) that ``cache`` does not hold as finished, skipping the
    frames it holds: what resuming an interrupted run leaves to do."""
    finished = cache.finished_sources()
    return [Unit(p, it, skip=frozenset(cache.frame_indices(it.source))) for p, it in items if it.source not in finished]


# What the decode thread hands to the parent, unit by unit, in order.
@dataclass(frozen=True)
class InputStarted:
    position: int
    item: InputItem
    planned: int  # frames to be sampled from it (from the unit's chunk)


@dataclass(frozen=True)
class FrameDecoded:
    position: int
    item: InputItem
    frame: Frame


@dataclass(frozen=True)
class InputEnded:
    position: int
    item: InputItem
    error: str | None = None  # why the input was skipped (frames already decoded from it are kept)
    scores: FrameScores | None = None  # a video's shot scores, up to its last sampled frame (or its chunk's)


@dataclass(frozen=True)
class DecodingDone:
    pass


Event = InputStarted | FrameDecoded | InputEnded | DecodingDone


def _decode(units: list[Unit], sampling: SamplingConfig, out: queue.Queue[Event], stop: threading.Event) -> None:
    def put(ev: Event) -> bool:
        while not stop.is_set():
            try:
                out.put(ev, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    try:
        for unit in units:
            position, item = unit.position, unit.item
            try:
                plan = unit.plan or plan_frames(item, sampling)
                planned = len(planned_in(plan, unit.span)) if plan.info is not None else 1
                if not put(InputStarted(position, item, planned)):
                    return
                shots = shot_detector(item, plan, sampling)
                try:
                    for frame in read_planned_frames(item, plan, skip=unit.skip, shots=shots, span=unit.span):
                        if not put(FrameDecoded(position, item, frame)):
                            return
                    put(InputEnded(position, item, scores=shots.scores() if shots else None))
                finally:
                    if shots is not None:
                        shots.close()
            except InputError as exc:
                put(InputEnded(position, item, str(exc)))
            except Exception as exc:  # one broken input must not stop the others
                log.debug("decoding %s failed", item.source, exc_info=True)
                put(InputEnded(position, item, f"unexpected decoding error: {exc}"))
    finally:
        put(DecodingDone())


# Held while CNNs are built: torch.fx tracing (which cuts a torchvision clothing CNN at its stage, when it is
# exported) patches torch.nn.Module.__call__ for the whole process, so two extractors' exports must not overlap.
_EXPORT_LOCK = threading.Lock()


class ExtractionError(PersonClusterError, RuntimeError):
    """Extraction cannot go on; the message is one line for the user. Committed frames stay in the cache."""


class Extractor:
    """Models and worker threads that fill a :class:`FeatureCache` from inputs; a context manager, reusable for
    many ``run`` calls. Use :func:`person_cluster.api.extract` for the simple call."""

    def __init__(self, config: Config, progress: bool = True, preload: tuple[str, ...] = ()) -> None:
        """``preload``: modules the caller needs after extraction, imported in the background once every frame is
        decoded (``api.run`` passes clustering and outputs: ~1.5 s of imports, overlapped with the last detections
        and CNN batches; earlier they would take the GIL from the decoding thread, the bottleneck of a short
        clip: Norton extraction 4.2 s with them at start, 2.9 s without)."""
        self.config = config
        self.progress = progress
        self._executor: Any = None
        self._face: Any = None
        self._cloth: Any = None
        self._load_error: BaseException | None = None
        self._loaded = threading.Event()
        # Workers first (they need only dlib), then the CNNs in the background: both start-ups overlap each other
        # and the first frames' detection.
        self.start_workers()
        self._loader = threading.Thread(target=self._load_models, name="load-models", daemon=True)
        self._loader.start()
        self._preload = threading.Thread(target=_import_all, args=(preload,), name="preload", daemon=True)

    def _load_models(self) -> None:
        started = time.perf_counter()
        try:
            from .embedding.face import FaceEncoder

            with _EXPORT_LOCK:
                self._face = FaceEncoder(self.config.face, self.cnn_threads)
                if self.config.cloth.enabled:
                    from .embedding.clothing import ClothEmbedder

                    self._cloth = ClothEmbedder(self.config.cloth, self.cnn_threads)
        except BaseException as exc:  # noqa: BLE001 (re-raised in the caller's thread by _models())
            self._load_error = exc
        finally:
            self._loaded.set()
        log.debug("face and clothing CNNs loaded in %.2f s", time.perf_counter() - started)

    def _start_preload(self) -> None:
        if self._preload.ident is None:
            self._preload.start()

    def _models(self) -> tuple[Any, Any]:
        """(face encoder, clothing embedder or None), once loaded; a loading error is raised here."""
        self._loaded.wait()
        if self._load_error is not None:
            raise self._load_error
        return self._face, self._cloth

    @property
    def cnn_threads(self) -> int:
        """onnxruntime threads for the face and clothing CNNs: ``runtime.cnn_threads``, or one per worker."""
        return self.config.runtime.cnn_threads or self.config.runtime.resolved_workers()

    @property
    def workers(self) -> int:
        """Detection threads: ``runtime.workers``, but one (the caller's) for a detector that holds the GIL."""
        from .detection import detector_class

        gil_free = detector_class(self.config.detection.model).releases_gil
        return self.config.runtime.resolved_workers() if gil_free else 1

    @property
    def models_ready(self) -> bool:
        return self._loaded.is_set()

    @property
    def cloth_model(self) -> str | None:
        """What identifies the clothing features in the cache (backbone, weights, stage); waits for the models."""
        cloth = self._models()[1]
        return cloth.weights_name if cloth else None

    def __enter__(self) -> Extractor:  # noqa: PYI034 (typing.Self needs Python 3.11)
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        # The loader threads may still be importing (onnxruntime, torch to export, the preload): let them finish
        # rather than let the interpreter exit under a daemon thread half-way through loading extension modules.
        self._loader.join()
        if self._preload.is_alive():
            self._preload.join()
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    def start_workers(self, wait: bool = False) -> None:
        """Start the worker threads (if closed); ``wait``: until each has loaded its models. A detector that holds
        the GIL runs in the caller's thread: more threads would only take turns."""
        n = self.workers
        if self._executor is None:
            if n == 1:
                self._executor = _InlineExecutor(self.config.detection, self.config.face)
            else:
                self._executor = ThreadPoolExecutor(n, "detect", _init_worker, (self.config.detection, self.config.face))
            if not isinstance(self._executor, _InlineExecutor):
                # A pool starts a worker per task submitted while none is idle: these pings start them all now.
                for _ in range(n):
                    self._executor.submit(_worker_ready)
        if wait and not isinstance(self._executor, _InlineExecutor):
            seen: set[tuple[int, int]] = set()
            while len(seen) < n:  # a fast worker may answer two pings of a round
                seen.update(f.result() for f in [self._executor.submit(_worker_ready) for _ in range(n)])

    def run(self, items: list[tuple[int, InputItem]], cache: FeatureCache, frames_dir: Path | None = None,
            settings: dict[str, Any] | None = None) -> ExtractionSummary:
        """Extract ``items`` (position, input) into ``cache``, resuming what it holds. Before its first write the
        cache is bound to ``settings`` (default: the config's extraction settings) and the clothing model: a cache
        filled with other settings raises :class:`CacheError` and is left unchanged."""
        from .sinks import CacheSink

        sink = CacheSink(cache, frames_dir, self.config.sampling,
                         self.config.extraction_dict() if settings is None else settings)
        summary = self.extract(pending_units(items, cache), sink)
        summary.inputs = len(items)
        return summary

    def extract(self, units: list[Unit], sink: Sink) -> ExtractionSummary:
        """Extract ``units`` in order, storing their results through ``sink`` (bound once, before its first
        write, to the clothing model: this waits for the CNNs)."""
        started = time.perf_counter()
        max_pending = max(2, self.config.runtime.resolved_workers() * self.config.runtime.queue_frames)
        events: queue.Queue[Event] = queue.Queue(maxsize=max_pending)
        stop = threading.Event()
        decoder = threading.Thread(target=_decode, args=(units, self.config.sampling, events, stop), daemon=True)
        if units:
            self.start_workers()  # again after close()
        pending: deque[tuple[Event, Future | None]] = deque()  # submitted to the workers, oldest first
        bar = tqdm(total=0, unit="frame", desc="extracting", disable=not self.progress, dynamic_ncols=True)
        encoder = ThreadPoolExecutor(1, "encode")
        batch = _Batch(self, sink, bar, ExtractionSummary(), encoder)
        decoder.start()
        try:
            finished_decoding = not units
            if finished_decoding:
                self._start_preload()
            while not finished_decoding or pending:
                # Keep the workers fed up to the bound, then take the oldest result back.
                while not finished_decoding and len(pending) < max_pending:
                    ev = events.get()
                    if isinstance(ev, DecodingDone):
                        finished_decoding = True
                        self._start_preload()
                        break
                    fut = (self._executor.submit(_analyse_in_worker, ev.frame.image, ev.frame.index is None)
                           if isinstance(ev, FrameDecoded) else None)
                    pending.append((ev, fut))
                if not pending:
                    continue
                ev, fut = pending.popleft()
                batch.add(ev, fut)
                # While the CNNs load, keep the workers busy: buffer up to 4x the in-flight bound instead of waiting.
                if batch.full(max_pending) and (self.models_ready or batch.n_frames >= 4 * max_pending):
                    batch.commit()
            if batch.items or not batch.bound:
                batch.commit()
        finally:
            stop.set()
            for _, fut in pending:
                if fut is not None:
                    fut.cancel()
            encoder.shutdown(wait=True)
            bar.close()
        batch.summary.seconds = time.perf_counter() - started
        return batch.summary

    def embed(self, faces: list[FaceCandidate], frames: list[Frame]) -> None:
        """Face descriptors and clothing features for ``faces`` (``frames[i]`` holds ``faces[i]``), one call of each
        CNN."""
        face_encoder, cloth_embedder = self._models()
        if cloth_embedder is not None:
            for face, frame in zip(faces, frames, strict=True):
                face.cloth_region = cloth_region(face.bbox, frame.width, frame.height, self.config.cloth)
        clothed = [k for k, face in enumerate(faces) if face.cloth_region is not None]
        mirrored = [k for k, frame in enumerate(frames) if self.config.face.mirrors(photo=frame.index is None)]
        # One call for both: the batches stay full.
        descriptors = face_encoder([face.chip for face in faces] + [faces[k].chip[:, ::-1] for k in mirrored])
        cloth = cloth_embedder([faces[k].cloth_region.cut(frames[k].image) for k in clothed]) if clothed else []
        for face, descriptor in zip(faces, descriptors, strict=False):
            face.face_embedding = descriptor
        for k, descriptor in zip(mirrored, descriptors[len(faces):], strict=True):
            faces[k].face_flip_embedding = descriptor
        for k, feature in zip(clothed, cloth, strict=True):
            faces[k].cloth_embedding = feature


def _import_all(modules: tuple[str, ...]) -> None:
    for module in modules:  # only to warm the import; an error shows where the module is really imported
        with contextlib.suppress(Exception):
            importlib.import_module(module)


def _encode(frames: list[tuple[Frame, list[FaceCandidate]]], output: OutputConfig,
            with_frames: bool) -> list[tuple[list[tuple[bytes, bytes]], np.ndarray, bytes | None]]:
    """(face crop, upper-body crop) JPEGs of every face of ``frames``, each frame's background histogram
    (:func:`~person_cluster.scenes.background_histogram`) and (``with_frames``) the frame's JPEG."""
    from .outputs.crops import face_crops, frame_jpg
    from .scenes import background_histogram

    return [([face_crops(frame, face.bbox, output) for face in faces],
             background_histogram(frame.image, [face.bbox for face in faces]),
             frame_jpg(frame, output) if with_frames else None)
            for frame, faces in frames]


class _Batch:
    """Analysed events waiting to be stored, in order, and the storing itself: features for all their faces in one
    call of each CNN (a folder of photos is one input per photo, so batching by input would run the CNNs one face
    at a time), then frames and input statuses through the sink, in one transaction."""

    def __init__(self, extractor: Extractor, sink: Sink, bar: tqdm, summary: ExtractionSummary,
                 encoder: ThreadPoolExecutor) -> None:
        self.extractor, self.sink, self.encoder = extractor, sink, encoder
        self.bar, self.summary = bar, summary
        self.items: list[tuple[Event, list[FaceCandidate]]] = []
        self.n_frames = self.n_faces = 0
        self.bound = False  # the sink is bound to the clothing model before its first write

    def add(self, ev: Event, fut: Future | None) -> None:
        t = time.perf_counter()
        faces = fut.result() if fut is not None else []
        self.summary.wait_s += time.perf_counter() - t
        self.items.append((ev, faces))
        if isinstance(ev, FrameDecoded):
            self.n_frames += 1
            self.n_faces += len(faces)
        elif isinstance(ev, InputStarted):
            self.bar.total += ev.planned
            self.bar.refresh()
        elif isinstance(ev, InputEnded) and ev.error:  # the sink logs it, once stored
            self.summary.skipped.append((ev.item.source, ev.error))

    def full(self, max_frames: int) -> bool:
        return self.n_faces >= self.extractor.config.cloth.batch_size or self.n_frames >= max_frames

    def commit(self) -> None:
        """Bind the sink (once, before its first write: this waits for the CNNs), then store the batch."""
        if not self.bound:
            self.sink.bind(self.extractor.cloth_model)
            self.bound = True
        self._store()
        self.bar.update(self.n_frames)
        self.items, self.n_frames, self.n_faces = [], 0, 0

    def _store(self) -> None:
        frames = [(ev.frame, faces) for ev, faces in self.items if isinstance(ev, FrameDecoded)]
        # JPEG crops and frame files need no features: they are encoded in a thread of their own while the CNNs run
        # here (OpenCV and onnxruntime both release the GIL).
        encoded = self.encoder.submit(_encode, frames, self.extractor.config.output, self.sink.wants_frames)
        t = time.perf_counter()
        self.extractor.embed([f for _, faces in frames for f in faces],
                             [frame for frame, faces in frames for _ in faces])
        self.summary.cnn_s += time.perf_counter() - t
        t = time.perf_counter()
        stored = {id(frame): ([face.record(frame, *jpgs) for face, jpgs in zip(faces, crops, strict=True)], hist, jpg)
                  for (frame, faces), (crops, hist, jpg) in zip(frames, encoded.result(), strict=True)}
        sink, summary = self.sink, self.summary
        with sink.transaction():
            for ev, _ in self.items:
                match ev:
                    case InputStarted(position=position, item=item):
                        sink.input_started(position, item)
                    case FrameDecoded(frame=frame):
                        faces, background, jpg = stored[id(frame)]
                        sink.add_frame(FrameInfo(frame.source, frame.index, frame.time_s, frame.width, frame.height,
                                                 background), faces, jpg)
                        summary.frames += 1
                        summary.faces += len(faces)
                    case InputEnded(position=position, item=item, error=error, scores=scores):
                        sink.input_ended(position, item, error, scores)
        summary.store_s += time.perf_counter() - t
