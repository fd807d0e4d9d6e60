"""The Ray engine: work units extracted by actors on a Ray cluster, their results stored by this process.

A work unit is an input, or a chunk of a long video (``runtime.chunk_sec``: keyframe-aligned, see
:func:`~person_cluster.sampling.plan_chunks`); consecutive photos travel as one task, so that the CNNs still run on
batches. Each actor, in Ray Data's callable-class style, loads the models in ``__init__`` (an
:class:`~person_cluster.pipeline.Extractor` with one detection thread; one actor per CPU slot Ray offers), and each
``__call__`` extracts one task into memory (a :class:`~person_cluster.sinks.UnitCollector`: decoding, detection,
alignment, CNNs and crops exactly as in the local engine) and returns each unit's frames, faces with features and
JPEG crops, frame JPEGs, shot scores and error. Decoded frames never leave the actor.

The driver (this process) plans the units, keeps every actor busy, and stores the results in input and frame order,
one transaction per unit, through the same :class:`~person_cluster.sinks.CacheSink` as the local engine: it alone
writes OUT. A chunked video's frame scores are joined and its cuts decided once, as for one sequential read, so a
chunk edge is never a cut; frame numbers are the sequential reader's. The result is the local engine's manifest.

Faults: an actor killed mid-task is restarted by Ray and the task retried (``max_restarts``, ``max_task_retries``);
a task that keeps killing its actor skips its input with the reason, as the local engine skips a broken input (a
group of photos is first split, photo by photo); an actor that died for good is replaced. An interrupted run
resumes from the cache like a local one: finished inputs and committed frames are not extracted again.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from tqdm import tqdm

from ..config import Config
from ..pipeline import ExtractionSummary, Extractor, Unit, _import_all, check_models, pending_units
from ..records import InputItem
from ..sampling import InputError, VideoError, check_frames_read, plan_chunks, plan_frames, planned_in
from ..sampling.shots import FrameScores
from ..sinks import CacheSink, UnitCollector, UnitResult
from .base import Engine, EngineError

log = logging.getLogger(__name__)

INSTALL = "pip install person-cluster[ray]"
PHOTOS_PER_TASK = 32  # consecutive photos sent to one actor at once: the CNNs' batch size


@dataclass
class TaskResult:
    """What an actor returns for one task: a result per unit (in order), its timings, and the warnings it logged."""

    results: list[UnitResult] = field(default_factory=list)
    seconds: float = 0.0
    wait_s: float = 0.0
    cnn_s: float = 0.0
    worker: str = ""
    messages: list[tuple[int, str]] = field(default_factory=list)  # (logging level, message)
    error: str | None = None  # the actor cannot extract at all (its models did not load)


class UnitWorker:
    """A Ray actor: ``__init__`` loads the models, each ``__call__`` extracts one task (a list of units) into
    memory. Never raises: a loading error is kept and reported by :meth:`ready` and by every call."""

    def __init__(self, config: Config) -> None:
        self.worker = f"{socket.gethostname()}:{os.getpid()}"
        self.config = config
        self.error: str | None = None
        self.cloth_model: str | None = None
        self.extractor: Extractor | None = None
        try:
            check_models(config)
            self.extractor = Extractor(config, progress=False)
            self.cloth_model = self.extractor.cloth_model  # waits for the CNNs: a loading error is raised here
        except Exception as exc:  # noqa: BLE001 (reported to the driver as one line)
            self.error = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__

    def ready(self) -> tuple[str | None, str | None, str]:
        """(loading error or None, clothing model, where this actor runs)."""
        return self.error, self.cloth_model, self.worker

    def __call__(self, units: list[Unit]) -> TaskResult:
        if self.extractor is None:
            return TaskResult(worker=self.worker, error=self.error)
        # Inputs are read by their absolute path (this process's working folder is not the driver's); results
        # and messages name them as the user did.
        sources = {os.path.abspath(u.item.source): u.item.source for u in units}
        local = [Unit(u.position, InputItem(os.path.abspath(u.item.source), u.item.kind), u.plan, u.span, u.skip)
                 for u in units]
        collector = UnitCollector(self.config.output.save_frames, sources)
        captured = _Captured(sources)
        package = logging.getLogger("person_cluster")
        package.addHandler(captured)
        try:
            summary = self.extractor.extract(local, collector)
        except Exception as exc:
            log.debug("task failed", exc_info=True)
            return TaskResult(worker=self.worker, error=f"extraction failed: {exc}", messages=captured.messages)
        finally:
            package.removeHandler(captured)
        return TaskResult(collector.results, summary.seconds, summary.wait_s, summary.cnn_s, self.worker,
                          captured.messages)


class _Captured(logging.Handler):
    """Keeps the warnings an actor's extraction logs, paths as the user gave them, for the driver to log."""

    def __init__(self, sources: dict[str, str]) -> None:
        super().__init__(logging.WARNING)
        self.sources, self.messages = sources, []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        for path, source in self.sources.items():
            message = message.replace(path, source)
        self.messages.append((record.levelno, message))


@dataclass
class _Entry:
    """A unit in commit order, and what the driver knows of it."""

    unit: Unit
    first: bool  # the input's first unit (its status is set to running with it)
    last: bool  # the input's last unit (its status and shots are stored with it)
    expected: int  # sampled frames the unit is to read (less those in the cache)
    chunked: bool  # the input is read in several chunks (the driver checks the frames read, and joins the scores)


@dataclass
class _Task:
    entries: list[int]  # indices into the commit order, consecutive


class RayEngine(Engine):
    """Extraction on Ray; see the module's docstring. ``actor_options`` are Ray's options for each actor."""

    actor_options: dict[str, Any] = {"num_cpus": 1, "max_restarts": 4, "max_task_retries": 2}  # noqa: RUF012
    ready_timeout_s = 300.0  # actors loading their models (a machine's first run also exports the CNNs)
    worker_class: type = UnitWorker

    def __init__(self, config: Config, progress: bool = True, preload: tuple[str, ...] = ()) -> None:
        super().__init__(config, progress, preload)
        try:
            import ray
        except ImportError:
            raise EngineError(f"runtime.engine: ray needs the ray package: {INSTALL}") from None
        self.ray = ray
        self.connected = _connect(ray, config.runtime.ray_address)
        self.actors: list[Any] = []
        try:
            self._start_actors()
        except BaseException:
            self.close()
            raise

    # -- actors -----------------------------------------------------------------------------------------------
    def _actor_config(self) -> Config:
        """Each actor: one detection thread and one CNN thread (one CPU slot); the decoding, shot-scoring and
        crop-encoding threads beside them fill what the slot leaves idle."""
        return self.config.with_overrides({"runtime.workers": 1, "runtime.cnn_threads": 1})

    def _new_actor(self) -> Any:
        remote = self.ray.remote(self.worker_class).options(**self.actor_options)
        return remote.remote(self._actor_config())

    def _start_actors(self) -> None:
        ray = self.ray
        slots = int(ray.available_resources().get("CPU", 0) // self.actor_options.get("num_cpus", 1))
        if slots < 1:
            raise EngineError("the Ray cluster has no free CPU for a worker")
        self.actors = [self._new_actor() for _ in range(slots)]
        try:
            answers = ray.get([a.ready.remote() for a in self.actors], timeout=self.ready_timeout_s)
        except ray.exceptions.GetTimeoutError:
            raise EngineError(f"the Ray workers did not load their models within {self.ready_timeout_s:.0f} s "
                              "(are their CPUs taken by other jobs?)") from None
        except ray.exceptions.RayError as exc:
            raise EngineError(f"a Ray worker could not start the extractor: {_last_line(exc)}") from None
        errors = [e for e, _, _ in answers if e]
        if errors:
            raise EngineError(f"the Ray workers cannot extract: {errors[0]}")
        models = {m for _, m, _ in answers}
        if len(models) > 1:
            raise EngineError(f"the Ray workers load different clothing models: {', '.join(map(str, models))}")
        self.cloth_model = models.pop()
        log.info("ray: %d workers on %d machines", len(answers), len({w.rsplit(":", 1)[0] for *_, w in answers}))

    def close(self) -> None:
        """Disconnect from Ray if this engine connected (the actors, owned by this driver, end with it; a Ray
        started for the run stops); in a Ray the caller started, end the actors."""
        if getattr(self, "connected", False):
            self.ray.shutdown()
            self.connected = False
        else:
            for actor in self.actors:
                with contextlib.suppress(Exception):
                    self.ray.kill(actor)
        self.actors = []

    # -- the run ----------------------------------------------------------------------------------------------
    def run(self, items: list[tuple[int, InputItem]], sink: CacheSink) -> ExtractionSummary:
        started = time.perf_counter()
        preload = threading.Thread(target=_import_all, args=(self.preload,), name="preload", daemon=True)
        preload.start()  # the driver only stores: the imports take nothing from decoding here
        summary = ExtractionSummary(inputs=len(items))
        bar = tqdm(total=0, unit="frame", desc="extracting", disable=not self.progress, dynamic_ncols=True)
        try:
            _Run(self, sink, summary, bar).run(pending_units(items, sink.cache))
        finally:
            bar.close()
        preload.join()
        summary.seconds = time.perf_counter() - started
        return summary


class _Run:
    """One run's scheduling and storing: units planned as the actors need them, tasks kept in flight on every
    actor (a bounded window ahead of the next unit to store), results stored strictly in order."""

    def __init__(self, engine: RayEngine, sink: CacheSink, summary: ExtractionSummary, bar: tqdm) -> None:
        self.engine, self.ray, self.sink, self.summary, self.bar = engine, engine.ray, sink, summary, bar
        self.sampling, self.chunk_sec = engine.config.sampling, engine.config.runtime.chunk_sec
        self.entries: list[_Entry] = []
        self.results: dict[int, UnitResult] = {}  # done, not yet stored
        self.next = 0  # the next entry to store
        self.bound = False
        self.read: dict[int, int] = {}  # position -> sampled frames read so far (chunked inputs)
        self.expected: dict[int, int] = {}
        self.scores: dict[int, list[FrameScores]] = {}
        self.failed: set[int] = set()

    # planning: units and tasks, in input order
    def _plan(self, units: list[Unit]) -> Any:
        """Yield tasks; entries are appended as they are planned (an input that cannot be planned gets its
        result, the reason it is skipped, at once)."""
        photos: list[int] = []
        for unit in units:
            if unit.item.kind == "image":
                photos.append(self._add(_Entry(unit, True, True, int(None not in unit.skip), False)))
                if len(photos) == PHOTOS_PER_TASK:
                    yield _Task(photos)
                    photos = []
                continue
            if photos:
                yield _Task(photos)
                photos = []
            try:
                plan = plan_frames(unit.item, self.sampling)
            except Exception as exc:  # noqa: BLE001 (as the local engine's decoding thread: the input is skipped)
                error = str(exc) if isinstance(exc, InputError) else f"unexpected decoding error: {exc}"
                self.results[self._add(_Entry(unit, True, True, 0, False))] = UnitResult(error=error)
                continue
            spans = self._chunks(unit, plan)
            for k, span in enumerate(spans):
                chunk = Unit(unit.position, unit.item, plan, span, unit.skip)
                expected = len(planned_in(plan, span, unit.skip))
                yield _Task([self._add(_Entry(chunk, k == 0, k == len(spans) - 1, expected, span is not None))])
        if photos:
            yield _Task(photos)

    def _chunks(self, unit: Unit, plan: Any) -> list[Any]:
        """The video's chunks (``[None]``: read it whole)."""
        if self.chunk_sec is None or plan.info.duration_s <= self.chunk_sec:
            return [None]
        try:
            spans = plan_chunks(unit.item.source, plan.last, self.chunk_sec)
        except InputError:
            spans = []
        return spans if len(spans) > 1 else [None]

    def _add(self, entry: _Entry) -> int:
        self.entries.append(entry)
        self.bar.total += entry.expected
        self.bar.refresh()
        return len(self.entries) - 1

    # scheduling
    def run(self, units: list[Unit]) -> None:
        ray, engine = self.ray, self.engine
        planner = self._plan(units)
        retries: deque[_Task] = deque()
        idle = list(engine.actors)
        inflight: dict[Any, tuple[_Task, Any]] = {}
        window = 3 * len(engine.actors)  # tasks in flight or done but not yet stored
        waiting_tasks: list[_Task] = []  # done, some entry not yet stored
        planned_all = False
        while True:
            while idle:
                waiting_tasks = [t for t in waiting_tasks if t.entries[-1] >= self.next]
                task = retries.popleft() if retries else None
                if task is None and not planned_all and len(inflight) + len(waiting_tasks) < window:
                    task = next(planner, None)
                    planned_all = task is None
                if task is None:
                    break
                actor = idle.pop()
                units_of = [self.entries[k].unit for k in task.entries]
                inflight[actor.__call__.remote(units_of)] = (task, actor)
            self._store()
            if not inflight:
                if planned_all and not retries:
                    break
                continue
            done, _ = ray.wait(list(inflight), num_returns=1)
            for ref in done:
                task, actor = inflight.pop(ref)
                try:
                    result: TaskResult = ray.get(ref)
                except ray.exceptions.RayError as exc:
                    self._lost(task, exc, retries)
                    actor = self._replace(actor)
                else:
                    self._done(task, result)
                    waiting_tasks.append(task)
                idle.append(actor)
        self._store()

    def _done(self, task: _Task, result: TaskResult) -> None:
        for level, message in result.messages:
            log.log(level, "%s", message)
        if result.error is not None or len(result.results) != len(task.entries):
            reason = result.error or "the worker returned no result"
            for k in task.entries:
                self.results[k] = UnitResult(error=reason)
            return
        self.summary.wait_s += result.wait_s
        self.summary.cnn_s += result.cnn_s
        share = result.seconds / len(task.entries)
        for k, unit_result in zip(task.entries, result.results, strict=True):
            self.results[k] = unit_result
            unit = self.entries[k].unit
            span = f" frames {unit.span.first}-{unit.span.stop - 1}" if unit.span else ""
            log.debug("unit %s%s: %d frames, %d faces, %.2f s on %s", unit.item.source, span,
                      len(unit_result.frames), sum(len(f) for _, f, _ in unit_result.frames), share, result.worker)

    def _lost(self, task: _Task, exc: Exception, retries: deque[_Task]) -> None:
        """A task whose actor died every time Ray retried it: a group of photos is tried photo by photo, a single
        unit skips its input."""
        if len(task.entries) > 1:
            retries.extendleft(_Task([k]) for k in reversed(task.entries))
            return
        tries = 1 + self.engine.actor_options.get("max_task_retries", 0)
        reason = f"the Ray worker extracting it died {tries} times ({_last_line(exc)})"
        self.results[task.entries[0]] = UnitResult(error=reason)

    def _replace(self, actor: Any) -> Any:
        with contextlib.suppress(Exception):
            self.ray.kill(actor)
        fresh = self.engine._new_actor()
        self.engine.actors[self.engine.actors.index(actor)] = fresh
        return fresh

    # storing
    def _store(self) -> None:
        while self.next < len(self.entries) and self.next in self.results:
            if not self.bound:  # before the first write
                self.sink.bind(self.engine.cloth_model)
                self.bound = True
            self._store_one(self.entries[self.next], self.results.pop(self.next))
            self.next += 1

    def _store_one(self, entry: _Entry, result: UnitResult) -> None:
        unit, sink, summary = entry.unit, self.sink, self.summary
        position, item = unit.position, unit.item
        if position in self.failed:  # a later chunk of an input that failed: the local engine reads no further
            return
        t = time.perf_counter()
        with sink.transaction():
            if entry.first:
                sink.input_started(position, item)
            for info, faces, jpg in result.frames:
                sink.add_frame(info, faces, jpg)
                summary.frames += 1
                summary.faces += len(faces)
            error = result.error
            if entry.chunked:
                self.read[position] = self.read.get(position, 0) + len(result.frames)
                self.expected[position] = self.expected.get(position, 0) + entry.expected
                self.scores.setdefault(position, []).append(result.scores)
                if entry.last and error is None:
                    try:
                        check_frames_read(item.source, self.read[position], self.expected[position])
                    except VideoError as exc:
                        error = str(exc)
            if error is not None or entry.last:
                parts = self.scores.pop(position, [result.scores])
                scores = None if error or any(p is None for p in parts) else FrameScores.join(parts)
                sink.input_ended(position, item, error, scores)
            if error is not None:
                self.failed.add(position)
                summary.skipped.append((item.source, error))
        summary.store_s += time.perf_counter() - t
        self.bar.update(len(result.frames))


def _connect(ray: Any, address: str | None) -> bool:
    """Connect to the Ray cluster at ``address`` (else ``$RAY_ADDRESS``), or start one on this machine (stopped
    when the engine closes); False where this process had started Ray already. Ray's own start-up messages are
    kept off the terminal; an address with no Ray behind it is one line, never a wait."""
    if ray.is_initialized():  # a program that started Ray itself: its cluster, as it is
        return False
    address = address or os.environ.get("RAY_ADDRESS") or None
    quiet = {"log_to_driver": False, "logging_level": logging.ERROR}
    try:
        if address is None:
            cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
            ray.init(num_cpus=cores, include_dashboard=False, **quiet)
            return True
        _probe(address)
        ray.init(address=address, **quiet)
        return True
    except EngineError:
        raise
    except (ConnectionError, RuntimeError, ValueError, TimeoutError) as exc:
        where = f"at {address}" if address else "on this machine"
        raise EngineError(f"cannot connect to Ray {where}: {_last_line(exc)}") from None


def _probe(address: str, timeout: float = 5.0, check_s: float = 10.0) -> None:
    """Refuse at once an address where no Ray head answers (``ray.init`` retries for a minute or more, logging
    every try): a TCP connection first, then Ray's own health check of the head's GCS in a subprocess (its
    output kept, its time bounded), which tells a Ray head from any other server and names a missing token."""
    if address in ("auto", "local"):  # ray.init finds a cluster on this machine itself
        return
    scheme, _, rest = address.rpartition("://")
    parts = urlsplit(f"//{rest}")
    try:
        host, port = parts.hostname, parts.port or (10001 if scheme == "ray" else 6379)
    except ValueError:
        host = port = None
    if not host or not port:
        raise EngineError(f"runtime.ray_address: {address!r} is not host:port (or ray://host:port)")
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as exc:
        raise EngineError(f"cannot connect to Ray at {address}: {exc.strerror or exc}") from None
    if scheme == "ray":  # Ray Client's server: ray.init bounds its own retries
        return
    check = [sys.executable, "-m", "ray.scripts.scripts", "health-check", "--address", f"{host}:{port}",
             "--skip-version-check"]
    try:
        done = subprocess.run(check, capture_output=True, text=True, timeout=check_s, check=False)
    except subprocess.TimeoutExpired:
        raise EngineError(f"no Ray head answers at {address} within {check_s:.0f} s") from None
    if done.returncode != 0:
        reason = _last_line(RuntimeError(done.stderr or done.stdout)).split(". ")[0].removeprefix("ray.exceptions.")
        hint = " (set RAY_AUTH_MODE=token and the cluster's token: docs/cluster.md)" if "Auth" in reason else ""
        raise EngineError(f"cannot use the Ray cluster at {address}: {reason}{hint}")


def _last_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    return lines[-1] if lines else type(exc).__name__
