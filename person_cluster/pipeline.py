"""The extraction pipeline: sampled frames -> faces with face and clothing features, committed to the cache.

Threads and processes, and why:
- a decode thread reads and samples frames (PyAV releases the GIL while FFmpeg decodes) into a bounded queue;
- a pool of worker processes runs detection, landmarks and dlib's face alignment (the aligned chips), the
  expensive per-frame part. dlib's CNN detector holds the GIL, so threads would not do. Workers are started with
  ``spawn`` (a forked child of a parent that already ran dlib's CNN can hang) and never import torch;
- the parent process takes results back *in submission order*, runs the face descriptor network and the
  clothing CNN on batches of chips and crops (torch, ``runtime.torch_threads``), and commits them in order, one
  SQLite transaction per batch. torch and the CNNs are loaded by a background thread (importing torch and
  torchvision alone takes ~6 s here) while the workers already detect; only the first commit waits for them.
Results are identical whatever the number of workers; memory is bounded by the queue sizes.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import multiprocessing
import os
import queue
import threading
import time
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from tqdm import tqdm

from .cache import FeatureCache
from .config import Config, DetectionConfig, FaceConfig
from .embedding.clothing import cloth_region
from .records import Box, Detection, FaceRecord, Frame, FrameInfo, InputItem
from .sampling import InputError, plan_frames, read_planned_frames

log = logging.getLogger(__name__)


# -- worker side ----------------------------------------------------------------------------------------------
class FrameAnalyzer:
    """Detection + aligned face chips for one frame; built once per worker process."""

    def __init__(self, detection: DetectionConfig, face: FaceConfig) -> None:
        from .detection import make_detector
        from .embedding.face import FaceAligner

        self.detect = make_detector(detection)
        self.align = FaceAligner(face.padding)

    def __call__(self, image: np.ndarray) -> list[tuple[Detection, np.ndarray]]:
        rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        h, w = image.shape[:2]
        # A box can reach past the frame edge; one with (almost) nothing inside the frame has no usable crop.
        visible = [d for d in self.detect(rgb) if min((c := d.box.clip(w, h)).width, c.height) >= 2]
        return [(d, self.align(rgb, d.box)) for d in visible]


_worker_analyzer: FrameAnalyzer | None = None


def _init_worker(detection: DetectionConfig, face: FaceConfig) -> None:
    global _worker_analyzer
    cv2.setNumThreads(1)  # one process per core already; OpenCV's own threads would only compete
    _worker_analyzer = FrameAnalyzer(detection, face)


def _analyse_in_worker(image: np.ndarray) -> list[tuple[Detection, np.ndarray]]:
    assert _worker_analyzer is not None
    return _worker_analyzer(image)


def _worker_ready() -> int:
    """Answered once the worker's initializer (imports, models) has run."""
    time.sleep(0.05)  # long enough that the pool hands the next ping to another worker
    return os.getpid()


class _InlineExecutor:
    """Runs the analyzer in this process: ``workers: 1`` needs no pool (and no process start-up)."""

    def __init__(self, detection: DetectionConfig, face: FaceConfig) -> None:
        self.analyzer = FrameAnalyzer(detection, face)

    def submit(self, fn: Any, image: np.ndarray) -> Future:
        fut: Future = Future()
        fut.set_result(self.analyzer(image))
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
    skipped: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class _Event:
    """What the decode thread hands to the parent, in order."""

    kind: str  # "start" | "frame" | "end" | "done"
    item: InputItem | None = None
    position: int = 0
    frame: Frame | None = None
    planned: int = 0
    error: str | None = None


def _decode(items: list[tuple[int, InputItem]], config: Config, cache_done: dict[str, set[int | None]],
            out: queue.Queue[_Event], stop: threading.Event) -> None:
    def put(ev: _Event) -> bool:
        while not stop.is_set():
            try:
                out.put(ev, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    try:
        for position, item in items:
            try:
                plan = plan_frames(item, config.sampling)
                done = cache_done.get(item.source, set())
                if not put(_Event("start", item, position, planned=len(plan.indices))):
                    return
                for frame in read_planned_frames(item, plan, skip=done):
                    if not put(_Event("frame", item, position, frame=frame)):
                        return
                put(_Event("end", item, position))
            except InputError as exc:
                put(_Event("end", item, position, error=str(exc)))
            except Exception as exc:  # one broken input must not stop the others
                log.debug("decoding %s failed", item.source, exc_info=True)
                put(_Event("end", item, position, error=f"unexpected decoding error: {exc}"))
    finally:
        put(_Event("done"))


def _encode_jpg(image: np.ndarray, max_side: int, quality: int) -> bytes:
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


# Held while a CNN is built and while CNNs run: torch.fx tracing (used to cut the clothing CNN at its stage) patches
# torch.nn.Module.__call__ for the whole process, so another thread's forward pass, or tracing, then fails.
_TORCH_LOCK = threading.Lock()


class ExtractionError(RuntimeError):
    """Extraction cannot go on; the message is one line for the user. Committed frames stay in the cache."""


class Extractor:
    """Models and worker processes that fill a :class:`FeatureCache` from inputs; a context manager, reusable for
    many ``run`` calls. Use :func:`person_cluster.api.extract` for the simple call."""

    def __init__(self, config: Config, progress: bool = True, preload: tuple[str, ...] = ()) -> None:
        """``preload``: modules the caller needs after extraction, imported in the background once the models
        are loaded (``api.run`` passes clustering and outputs: ~2 s of imports off its critical path)."""
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
        self._loader = threading.Thread(target=self._load_models, args=(preload,), name="load-models", daemon=True)
        self._loader.start()

    def _load_models(self, preload: tuple[str, ...]) -> None:
        try:
            from .embedding.face import FaceEncoder

            with _TORCH_LOCK:
                self._face = FaceEncoder(self.config.face)
                if self.config.cloth.enabled:
                    from .embedding.clothing import ClothEmbedder

                    self._cloth = ClothEmbedder(self.config.cloth)
        except BaseException as exc:  # noqa: BLE001 (re-raised in the caller's thread by _models())
            self._load_error = exc
        finally:
            self._loaded.set()
        for module in preload:  # only to warm the import; an error shows where the module is really imported
            with contextlib.suppress(Exception):
                importlib.import_module(module)

    def _models(self) -> tuple[Any, Any]:
        """(face encoder, clothing embedder or None), once loaded; a loading error is raised here."""
        self._loaded.wait()
        if self._load_error is not None:
            raise self._load_error
        return self._face, self._cloth

    def _torch_threads(self, workers_bound: bool) -> int:
        """Threads for one commit's CNNs: ``runtime.torch_threads``, or by default one while the workers are the
        bottleneck (still detecting, and since the last commit the main process waited on them longer than that
        commit took) and one per worker otherwise. While every worker detects, a second torch thread only takes
        turns with them on the same cores: warm Norton extraction on 2 cores, 4.09 s against 4.55 s with two
        threads (medians of 7), and ~0.5 s less CPU in the main process. On a folder of photos with a face each,
        the CNNs are the bottleneck and get every core."""
        rt = self.config.runtime
        if rt.torch_threads:
            return rt.torch_threads
        return 1 if workers_bound else rt.resolved_workers()

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
        # The loader thread may still be importing (torch, or the preload): let it finish rather than let the
        # interpreter exit under a daemon thread that is half-way through loading extension modules.
        self._loader.join()
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    def start_workers(self, wait: bool = False) -> None:
        """Start the worker processes (if closed); ``wait``: until each has loaded its models."""
        n = self.config.runtime.resolved_workers()
        if self._executor is None:
            if n == 1:
                self._executor = _InlineExecutor(self.config.detection, self.config.face)
            else:
                self._executor = ProcessPoolExecutor(
                    max_workers=n,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=_init_worker,
                    initargs=(self.config.detection, self.config.face),
                )
                # The pool spawns a process per task submitted while none is idle: these pings start them all now.
                for _ in range(n):
                    self._executor.submit(_worker_ready)
        if wait and isinstance(self._executor, ProcessPoolExecutor):
            seen: set[int] = set()
            while len(seen) < n:  # a fast worker may answer two pings of a round
                seen.update(f.result() for f in [self._executor.submit(_worker_ready) for _ in range(n)])

    def run(self, items: list[tuple[int, InputItem]], cache: FeatureCache, frames_dir: Path | None = None,
            settings: dict[str, Any] | None = None) -> ExtractionSummary:
        """Extract ``items`` (position, input) into ``cache``. Before its first write the cache is bound to
        ``settings`` (default: the config's extraction settings) and the clothing model: a cache filled with other
        settings raises :class:`CacheError` and is left unchanged."""
        started = time.perf_counter()
        summary = ExtractionSummary(inputs=len(items))
        finished = cache.finished_sources()
        todo = [(p, it) for p, it in items if it.source not in finished]
        done_frames = {it.source: cache.frame_indices(it.source) for _, it in todo}
        n_workers = self.config.runtime.resolved_workers()
        events: queue.Queue[_Event] = queue.Queue(maxsize=max(2, n_workers * self.config.runtime.queue_frames))
        stop = threading.Event()
        decoder = threading.Thread(target=_decode, args=(todo, self.config, done_frames, events, stop), daemon=True)
        if todo:
            self.start_workers()  # again after close()
        pending: deque[tuple[_Event, Future | None]] = deque()
        # Analysed events in order, stored together: features for all their faces in one call of each CNN (a
        # folder of photos is one input per photo, so batching by input would run the CNNs one face at a time).
        batch: list[tuple[_Event, list[tuple[Detection, np.ndarray]]]] = []
        max_pending = max(2, n_workers * self.config.runtime.queue_frames)
        bar = tqdm(total=0, unit="frame", desc="extracting", disable=not self.progress, dynamic_ncols=True)
        bound = False
        # Seconds spent waiting on the workers since the last commit, and that commit's duration: which of the
        # two is the bottleneck (see _torch_threads).
        waited_s = commit_s = 0.0

        def store() -> None:
            """Bind the cache (once, before its first write: this waits for the CNNs), then store the batch."""
            nonlocal batch, bound, waited_s, commit_s
            if not bound:
                cache.bind(self.config.extraction_dict() if settings is None else settings, self.cloth_model)
                bound = True
            detecting = any(fut is not None and not fut.done() for _, fut in pending)
            t = time.perf_counter()
            bar.update(self._commit(batch, summary, cache, frames_dir, detecting and waited_s > commit_s))
            batch, waited_s, commit_s = [], 0.0, time.perf_counter() - t

        decoder.start()
        try:
            finished_decoding = not todo
            while not finished_decoding or pending:
                # Keep the workers fed up to the bound, then take the oldest result back.
                while not finished_decoding and len(pending) < max_pending:
                    ev = events.get()
                    if ev.kind == "done":
                        finished_decoding = True
                        break
                    fut = self._executor.submit(_analyse_in_worker, ev.frame.image) if ev.kind == "frame" else None
                    pending.append((ev, fut))
                if not pending:
                    continue
                ev, fut = pending.popleft()
                t = time.perf_counter()
                batch.append((ev, fut.result() if fut is not None else []))
                waited_s += time.perf_counter() - t
                if ev.kind == "start":
                    bar.total += ev.planned
                    bar.refresh()
                elif ev.kind == "end" and ev.error:
                    log.warning("skipping %s: %s", ev.item.source, ev.error)
                    summary.skipped.append((ev.item.source, ev.error))
                frames = [r for e, r in batch if e.kind == "frame"]
                full = sum(map(len, frames)) >= self.config.cloth.batch_size or len(frames) >= max_pending
                # While the CNNs load, keep the workers busy: buffer up to 4x the in-flight bound instead of waiting.
                if full and (self.models_ready or len(frames) >= 4 * max_pending):
                    store()
            if batch or not bound:
                store()
        except BrokenProcessPool:
            raise ExtractionError(
                "a worker process died (killed, or out of memory); finished frames are kept, re-run to resume"
            ) from None
        finally:
            stop.set()
            for _, fut in pending:
                if fut is not None:
                    fut.cancel()
            bar.close()
        summary.seconds = time.perf_counter() - started
        return summary

    def _commit(self, batch: list[tuple[_Event, list[tuple[Detection, np.ndarray]]]], summary: ExtractionSummary,
                cache: FeatureCache, frames_dir: Path | None, workers_bound: bool = False) -> int:
        """Face and clothing features for every face of the batch (one call of each CNN), then the batch's frames
        and input statuses in order, in one transaction. Returns the number of frames stored. ``workers_bound``:
        the workers are the bottleneck (see _torch_threads)."""
        cfg = self.config
        face_encoder, cloth_embedder = self._models()
        if cfg.face.backend == "torch" or cloth_embedder is not None:
            import torch

            torch.set_num_threads(self._torch_threads(workers_bound))  # in the thread that runs them
        frames = [(ev.frame, results) for ev, results in batch if ev.kind == "frame"]
        boxes: list[list[tuple[Box, Box | None]]] = []  # per frame, per face: (clipped box, clothing region)
        crops: list[np.ndarray] = []
        for frame, results in frames:
            per_frame = []
            for det, _ in results:
                bbox = det.box.clip(frame.width, frame.height)
                region = (cloth_region(bbox, frame.width, frame.height, cfg.cloth)
                          if cloth_embedder is not None else None)
                if region is not None:
                    crops.append(_cut(frame.image, region))
                per_frame.append((bbox, region))
            boxes.append(per_frame)
        with _TORCH_LOCK:
            feats = iter(cloth_embedder(crops)) if cloth_embedder is not None else iter(())
            descriptors = iter(face_encoder([chip for _, results in frames for _, chip in results]))
        records: list[list[FaceRecord]] = []
        for (frame, results), per_frame in zip(frames, boxes):
            records.append([])
            for (det, _), (bbox, region) in zip(results, per_frame):
                face_crop = bbox.expand(cfg.output.crop_margin).clip(frame.width, frame.height)
                body = upper_body_box(bbox).clip(frame.width, frame.height)
                records[-1].append(
                    FaceRecord(
                        source=frame.source, frame=frame.index, time_s=frame.time_s, bbox=bbox, score=det.score,
                        face_embedding=next(descriptors),
                        cloth_embedding=next(feats) if region is not None else None,
                        face_jpg=_encode_jpg(_cut(frame.image, face_crop), cfg.output.crop_max_side, cfg.output.jpeg_quality),
                        body_jpg=_encode_jpg(_cut(frame.image, body), cfg.output.crop_max_side, cfg.output.jpeg_quality),
                    )
                )
            if frames_dir is not None:
                from .outputs import write_atomic
                from .outputs.naming import frame_stem

                jpg = _encode_jpg(frame.image, max(frame.width, frame.height), cfg.output.jpeg_quality)
                write_atomic(frames_dir / f"{frame_stem(frame.source, frame.index)}.jpg", jpg)
        per_frame_records = iter(records)
        with cache.transaction():
            for ev, _ in batch:
                if ev.kind == "start":
                    cache.set_input(ev.position, ev.item.source, ev.item.kind, "running")
                elif ev.kind == "frame":
                    frame = ev.frame
                    faces = next(per_frame_records)
                    cache.add_frame(FrameInfo(frame.source, frame.index, frame.time_s, frame.width, frame.height), faces)
                    summary.frames += 1
                    summary.faces += len(faces)
                elif ev.error:
                    cache.set_input(ev.position, ev.item.source, ev.item.kind, "skipped", ev.error)
                else:
                    cache.set_input(ev.position, ev.item.source, ev.item.kind, "done")
        return len(frames)


def _cut(image: np.ndarray, box: Box) -> np.ndarray:
    return image[box.top : box.bottom, box.left : box.right]

