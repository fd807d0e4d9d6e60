"""The feature cache: one SQLite file in OUT holding every sampled frame and every face's features and crops.

SQLite gives transactions (a frame and its faces are committed together, so an interrupted run leaves whole
frames only) and needs no pickle: embeddings are stored as float32 bytes, crops as JPEG bytes.
``person-cluster cluster OUT`` re-clusters from this file alone, without touching the inputs again.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from .config import EARLIER, upgrade
from .errors import PersonClusterError
from .records import FaceRecord, FaceTable, FrameInfo, SkippedInput, mirror_images
from .sampling.shots import Shot, shot_of

CACHE_NAME = "features.sqlite"
SCHEMA_VERSION = 2  # 2: flipped descriptors, sharpness, landmarks, frame backgrounds (added to a 1 on opening)
_NO_FRAME = -1  # photos have no frame index; SQLite primary keys cannot hold NULL reliably

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS inputs (
    position INTEGER NOT NULL, source TEXT PRIMARY KEY, kind TEXT, status TEXT NOT NULL, reason TEXT);
CREATE TABLE IF NOT EXISTS frames (
    source TEXT NOT NULL, frame INTEGER NOT NULL, time_s REAL, width INTEGER NOT NULL, height INTEGER NOT NULL,
    background BLOB, PRIMARY KEY (source, frame));
CREATE TABLE IF NOT EXISTS faces (
    source TEXT NOT NULL, frame INTEGER NOT NULL, time_s REAL,
    left INTEGER NOT NULL, top INTEGER NOT NULL, right INTEGER NOT NULL, bottom INTEGER NOT NULL,
    score REAL NOT NULL, face BLOB NOT NULL, cloth BLOB, face_jpg BLOB NOT NULL, body_jpg BLOB,
    face_flip BLOB, sharpness REAL, landmarks BLOB,
    PRIMARY KEY (source, frame, left, top, right, bottom));
CREATE TABLE IF NOT EXISTS shots (
    source TEXT NOT NULL, shot INTEGER NOT NULL, first_frame INTEGER NOT NULL, last_frame INTEGER NOT NULL,
    fps REAL NOT NULL, PRIMARY KEY (source, shot));
"""

# Columns that schema 2 added at the end of a table (a schema-1 cache gets them, NULL, when opened).
_ADDED = {"frames": ("background BLOB",), "faces": ("face_flip BLOB", "sharpness REAL", "landmarks BLOB")}

# Deterministic face order: input order as given, then frame, then box. Face ids in the manifest are ranks in it.
_FACE_ORDER = "ORDER BY i.position, f.frame, f.left, f.top, f.right, f.bottom"
# What clustering reads: inputs that were read to the end (or skipped, keeping the frames read before the problem);
# an input still 'running' is one whose extraction was interrupted, which the same command resumes.
_FINISHED = "i.status IN ('done', 'skipped')"


class CacheError(PersonClusterError, RuntimeError):
    """The cache is missing, unreadable, or was made with other extraction settings."""


def _same_settings(stored: dict[str, Any], current: dict[str, Any]) -> bool:
    """Whether a cache filled with ``stored`` settings holds what ``current`` would extract. In a section, a stored
    key that is no longer an extraction setting (e.g. ``face.backend`` before the backends gave identical
    descriptors) is ignored; a current one that the cache did not record is a difference, unless it was added
    since with the value the cache was filled with (:data:`~person_cluster.config.EARLIER`). Values that are not
    sections (the inputs) must be equal. Stored values are read as :func:`~person_cluster.config.upgrade` reads an
    older config (``face.flip: false`` is ``none``)."""
    stored = upgrade(dict(stored))
    for section, values in current.items():
        old = stored.get(section, _MISSING)
        if isinstance(values, dict):
            if not isinstance(old, dict) or {k: old.get(k, EARLIER.get(f"{section}.{k}", _MISSING))
                                             for k in values} != values:
                return False
        elif old != values:
            return False
    return True


_MISSING = object()


def _blob(array: np.ndarray | None) -> bytes | None:
    return None if array is None else np.asarray(array, np.float32).tobytes()


class FeatureCache:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._in_transaction = False
        try:
            self.db = sqlite3.connect(self.path)
            self.db.executescript(_SCHEMA)
            for table, columns in _ADDED.items():
                have = {row[1] for row in self.db.execute(f"PRAGMA table_info({table})")}
                for column in columns:
                    if column.split()[0] not in have:
                        self.db.execute(f"ALTER TABLE {table} ADD COLUMN {column}")
        except sqlite3.DatabaseError as exc:
            raise CacheError(f"{self.path}: not a usable feature cache ({exc})") from None

    @classmethod
    def open_existing(cls, path: str | Path) -> FeatureCache:
        if not Path(path).is_file():
            raise CacheError(f"{path}: no feature cache here; run `person-cluster run` first")
        cache = cls(path)
        if cache.get_meta("schema_version") is None:
            raise CacheError(f"{path}: not a person_cluster feature cache")
        return cache

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> FeatureCache:  # noqa: PYI034 (typing.Self needs Python 3.11)
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- meta -------------------------------------------------------------------------------------------------
    def get_meta(self, key: str) -> Any:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def set_meta(self, key: str, value: Any) -> None:
        with self.transaction():  # inside another transaction (remove_sources), part of it
            self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value, sort_keys=True)))

    def check_settings(self, extraction: dict[str, Any], cloth_model: str | None = None,
                       check_cloth: bool = False) -> None:
        """Refuse a cache filled with other extraction settings (and, with ``check_cloth``, another clothing
        model: known only once the CNN is loaded, so :meth:`bind` checks it)."""
        stored = self.get_meta("extraction")
        if stored is not None and (not _same_settings(stored.get("extraction") or {}, extraction)
                                   or (check_cloth and stored.get("cloth_model") != cloth_model)):
            old = stored.get("extraction") or {}
            same_model = not check_cloth or stored.get("cloth_model") == cloth_model
            if same_model and _same_settings({**old, "inputs": None}, {**extraction, "inputs": None}):
                raise CacheError(f"{self.path.parent} holds a run of other inputs; `person-cluster add "
                                 f"{self.path.parent} INPUT...` adds these to it (or use another OUT, or --overwrite)")
            raise CacheError(
                f"{self.path} holds features extracted with other settings; use another OUT or --overwrite"
            )

    def bind(self, extraction: dict[str, Any], cloth_model: str | None) -> None:
        """Record the extraction settings, or check that they match those the cache was filled with."""
        self.check_settings(extraction, cloth_model, check_cloth=True)
        if self.get_meta("extraction") is None:
            self.set_meta("schema_version", SCHEMA_VERSION)
            self.set_meta("extraction", {"extraction": extraction, "cloth_model": cloth_model})

    def add_inputs(self, inputs: list[str]) -> None:
        """Record ``inputs`` (as the user named them) beside those the cache was filled from, so that extraction
        may add them (``person-cluster add``); already recorded ones are not repeated."""
        stored = self.get_meta("extraction")
        if stored is None:
            return
        extraction = dict(stored.get("extraction") or {})
        known = list(extraction.get("inputs") or [])
        extraction["inputs"] = list(dict.fromkeys(known + list(inputs)))  # in order, each once
        self.set_meta("extraction", {**stored, "extraction": extraction})

    def next_position(self) -> int:
        """The input position after every input recorded (new inputs come after the old in face order)."""
        row = self.db.execute("SELECT MAX(position) FROM inputs").fetchone()
        return 0 if row[0] is None else int(row[0]) + 1

    def remove_sources(self, sources: list[str], inputs: list[str]) -> None:
        """Take ``sources`` out (their faces, frames, shots and input rows) and ``inputs`` (as the user named them)
        out of the recorded inputs, in one transaction."""
        with self.transaction():
            for table in ("faces", "frames", "shots", "inputs"):
                self.db.executemany(f"DELETE FROM {table} WHERE source = ?", [(s,) for s in sources])
            stored = self.get_meta("extraction")
            if stored is not None:
                extraction = dict(stored.get("extraction") or {})
                extraction["inputs"] = [i for i in extraction.get("inputs") or [] if i not in inputs]
                self.set_meta("extraction", {**stored, "extraction": extraction})

    # -- writing ----------------------------------------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Writes inside join one transaction: all or nothing, and one disk sync instead of one per write (a
        folder of photos would otherwise sync three times per photo)."""
        if self._in_transaction:
            yield
            return
        self._in_transaction = True
        try:
            with self.db:
                yield
        finally:
            self._in_transaction = False

    def add_frame(self, info: FrameInfo, faces: list[FaceRecord]) -> None:
        """Store one sampled frame and its faces together."""
        frame = _NO_FRAME if info.frame is None else info.frame
        with self.transaction():
            self.db.execute(
                "INSERT OR REPLACE INTO frames VALUES (?, ?, ?, ?, ?, ?)",
                (info.source, frame, info.time_s, info.width, info.height, _blob(info.background)),
            )
            self.db.executemany(
                "INSERT OR REPLACE INTO faces VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        f.source, frame, f.time_s, *f.bbox.as_list(), f.score, _blob(f.face_embedding),
                        _blob(f.cloth_embedding), f.face_jpg, f.body_jpg, _blob(f.face_flip_embedding),
                        float(f.sharpness), _blob(f.landmarks),
                    )
                    for f in faces
                ],
            )

    def set_shots(self, source: str, shots: list[Shot]) -> None:
        """Replace the shots of ``source`` (a resumed run finds them again)."""
        with self.transaction():
            self.db.execute("DELETE FROM shots WHERE source = ?", (source,))
            self.db.executemany("INSERT INTO shots VALUES (?, ?, ?, ?, ?)",
                                [(source, s.index, s.first_frame, s.last_frame, s.fps) for s in shots])

    def shots(self) -> list[Shot]:
        """Every video's shots, in input order."""
        rows = self.db.execute("SELECT s.source, s.shot, s.first_frame, s.last_frame, s.fps FROM shots s "
                               f"JOIN inputs i ON i.source = s.source WHERE {_FINISHED} ORDER BY i.position, s.shot")
        return [Shot(*r) for r in rows]

    def set_input(self, position: int, source: str, kind: str | None, status: str, reason: str | None = None) -> None:
        with self.transaction():
            self.db.execute(
                "INSERT OR REPLACE INTO inputs VALUES (?, ?, ?, ?, ?)", (position, source, kind, status, reason)
            )

    # -- reading ----------------------------------------------------------------------------------------------
    def finished_sources(self) -> set[str]:
        return {r[0] for r in self.db.execute("SELECT source FROM inputs WHERE status IN ('done', 'skipped')")}

    def frame_indices(self, source: str) -> set[int | None]:
        """Frames of ``source`` already committed (None stands for a photo)."""
        rows = self.db.execute("SELECT frame FROM frames WHERE source = ?", (source,))
        return {None if r[0] == _NO_FRAME else r[0] for r in rows}

    def inputs(self) -> list[dict[str, Any]]:
        rows = self.db.execute("SELECT source, kind, status, reason FROM inputs ORDER BY position")
        return [{"source": s, "kind": k, "status": st, "reason": r} for s, k, st, r in rows]

    def skipped(self) -> list[SkippedInput]:
        return [SkippedInput(i["source"], i["reason"] or "") for i in self.inputs() if i["status"] == "skipped"]

    def frames(self, background: bool = False) -> list[FrameInfo]:
        """Every sampled frame in input order; ``background``: with its background histogram (see scenes.py)."""
        rows = self.db.execute(
            f"SELECT f.source, f.frame, f.time_s, f.width, f.height, {'f.background' if background else 'NULL'} "
            f"FROM frames f JOIN inputs i ON i.source = f.source WHERE {_FINISHED} ORDER BY i.position, f.frame"
        )
        return [FrameInfo(s, None if fr == _NO_FRAME else fr, t, w, h, None if b is None else np.frombuffer(b, np.float32))
                for s, fr, t, w, h, b in rows]

    def load_table(self) -> FaceTable:
        rows = self.db.execute(
            "SELECT f.source, f.frame, f.time_s, f.left, f.top, f.right, f.bottom, f.face, f.cloth, f.score, "
            "f.face_flip, f.sharpness, f.landmarks, f.body_jpg IS NOT NULL "
            f"FROM faces f JOIN inputs i ON i.source = f.source WHERE {_FINISHED} {_FACE_ORDER}"
        ).fetchall()
        n = len(rows)
        face = np.zeros((n, 128), np.float32)
        cloth_rows = [np.frombuffer(r[8], np.float32) if r[8] is not None else None for r in rows]
        dim = next((c.shape[0] for c in cloth_rows if c is not None), 0)
        cloth = np.zeros((n, dim), np.float32)
        has_cloth = np.zeros(n, bool)
        # Mirror-image descriptors where face.flip described them (none: face.flip none, a video-only run with
        # "photos", schema 1); see mirror_images.
        mirrored = np.array([r[10] is not None for r in rows], bool)
        mirror = np.zeros((n, 128), np.float32) if mirrored.any() else None
        landmarks = np.full((n, 5, 2), np.nan, np.float32)
        for i, r in enumerate(rows):
            face[i] = np.frombuffer(r[7], np.float32)
            if cloth_rows[i] is not None:
                cloth[i] = cloth_rows[i]
                has_cloth[i] = True
            if mirrored[i]:
                mirror[i] = np.frombuffer(r[10], np.float32)
            if r[12] is not None:
                landmarks[i] = np.frombuffer(r[12], np.float32).reshape(5, 2)
        shots: dict[str, list[Shot]] = {}
        for shot in self.shots():
            shots.setdefault(shot.source, []).append(shot)
        backgrounds: dict[tuple[str, int], list[np.ndarray]] = {}
        for info in self.frames(background=True):
            if info.background is not None and info.frame is not None and info.source in shots:
                k = int(shot_of(shots[info.source], np.array([info.frame]))[0])
                if k >= 0:
                    backgrounds.setdefault((info.source, k), []).append(info.background)
        frames = np.array([r[1] for r in rows], np.int64)
        sources = [r[0] for r in rows]
        shot_ids = np.full(n, -1, np.int64)
        for source, its in shots.items():
            rows_of = np.array([s == source for s in sources], bool)
            shot_ids[rows_of] = shot_of(its, frames[rows_of])
        return FaceTable(
            ids=np.arange(n),
            shots=shot_ids,
            sources=sources,
            frames=[None if r[1] == _NO_FRAME else r[1] for r in rows],
            times=[r[2] for r in rows],
            bboxes=np.array([r[3:7] for r in rows], dtype=np.int64).reshape(n, 4),
            face=face,
            cloth=cloth,
            has_cloth=has_cloth,
            face_flip=None if mirror is None else mirror_images(face, mirror, mirrored),
            scores=np.array([r[9] for r in rows], np.float64),
            sharpness=np.array([np.nan if r[11] is None else r[11] for r in rows], np.float64),
            landmarks=landmarks,
            has_body=np.array([bool(r[13]) for r in rows], bool),
            shot_backgrounds={key: np.mean(hists, axis=0) for key, hists in backgrounds.items()},
        )

    def crops(self, table: FaceTable, ids: np.ndarray) -> dict[int, tuple[bytes, bytes | None]]:
        """(face JPEG, upper-body JPEG or None) of the faces ``ids`` of ``table`` (a table this cache loaded), by
        their key: reading only those rows, so that rewriting a few people of a large library reads a few crops."""
        out = {}
        for i in np.unique(ids).tolist():
            frame = table.frames[i]
            row = self.db.execute(
                "SELECT face_jpg, body_jpg FROM faces WHERE source = ? AND frame = ? AND left = ? AND top = ? "
                "AND right = ? AND bottom = ?",
                (table.sources[i], _NO_FRAME if frame is None else frame, *(int(v) for v in table.bboxes[i])),
            ).fetchone()
            if row is None:
                raise CacheError(f"{self.path}: face {i} is no longer in the cache; run the command again")
            out[i] = (row[0], row[1])
        return out

    def iter_crops(self) -> Iterator[tuple[bytes, bytes | None]]:
        """(face JPEG, upper-body JPEG or None) per face, in the same order as :meth:`load_table`."""
        rows = self.db.execute(
            f"SELECT f.face_jpg, f.body_jpg FROM faces f JOIN inputs i ON i.source = f.source WHERE {_FINISHED} "
            f"{_FACE_ORDER}"
        )
        yield from rows

