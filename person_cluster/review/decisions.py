"""The user's decisions about the people of a run: names, which faces are whose, what is not a face, hidden people,
cover faces. They are the user's data, so they live in their own SQLite file in OUT (:data:`DECISIONS_NAME`), which
no re-run removes, and every action is one transaction: saved at once, all or nothing, and two browser tabs acting
at the same moment are serialised by SQLite's lock instead of overwriting each other.

Faces are named by what the cache keys them on (source, frame, box), so decisions survive re-clustering; a re-run
that moved the boxes a little is matched by overlap (:func:`match_faces`). ``person-cluster cluster`` turns them
into constraints: faces of one person end in one cluster, faces of two people in two, not-a-face faces leave
the clustering, and each cluster takes the name of the person whose faces it holds.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import PersonClusterError
from ..records import FaceTable

if TYPE_CHECKING:  # tracking imports scipy, which `api` must not pay for at start-up
    from ..tracking import Tracks

DECISIONS_NAME = "review.sqlite"
MAX_NAME = 200

_SCHEMA = """
CREATE TABLE IF NOT EXISTS people (
    id INTEGER PRIMARY KEY, name TEXT NOT NULL DEFAULT '', hidden INTEGER NOT NULL DEFAULT 0, cover TEXT);
CREATE TABLE IF NOT EXISTS assigned (face TEXT PRIMARY KEY, person INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS not_faces (face TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS history (id INTEGER PRIMARY KEY AUTOINCREMENT, action TEXT NOT NULL, before TEXT NOT NULL);
"""
_TABLES = ("people", "assigned", "not_faces")


class DecisionError(PersonClusterError, ValueError):
    """A decision that cannot be taken (unknown person, empty name, ...); the message is one line."""


def face_key(source: str, frame: int | None, bbox) -> str:
    """How decisions name a face: its source, frame and box, as the feature cache keys it."""
    left, top, right, bottom = (int(v) for v in bbox)
    return f"{source}\t{'-' if frame is None else frame}\t{left},{top},{right},{bottom}"


def table_keys(table: FaceTable) -> list[str]:
    return [face_key(s, f, b) for s, f, b in zip(table.sources, table.frames, table.bboxes)]


@dataclass
class Person:
    id: int
    name: str
    hidden: bool
    cover: str | None


class Decisions:
    """Open (or create) the decisions of OUT. Every public method that changes something is one transaction and
    is recorded for :meth:`undo`."""

    def __init__(self, out: str | Path) -> None:
        self.path = Path(out) / DECISIONS_NAME
        try:
            self.db = sqlite3.connect(self.path, timeout=10, isolation_level=None)
            self.db.execute("PRAGMA journal_mode=WAL")  # readers never wait for a writer
            self.db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise DecisionError(f"{self.path}: not a usable decisions file ({exc})") from None

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Decisions:  # noqa: PYI034
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reading ----------------------------------------------------------------------------------------------
    def people(self) -> dict[int, Person]:
        rows = self.db.execute("SELECT id, name, hidden, cover FROM people ORDER BY id")
        return {i: Person(i, n, bool(h), c) for i, n, h, c in rows}

    def assigned(self) -> dict[str, int]:
        return dict(self.db.execute("SELECT face, person FROM assigned"))

    def not_faces(self) -> set[str]:
        return {r[0] for r in self.db.execute("SELECT face FROM not_faces")}

    # -- actions ----------------------------------------------------------------------------------------------
    # Every action names people by faces, as the review page shows them (a cluster's faces, or a person's): the
    # person is the one most of the faces are given to, or a new one that takes those no one has. Each action is
    # one transaction and one step of undo.
    def name(self, faces: list[str], name: str) -> int:
        """Name the person ``faces`` show."""
        name = _clean_name(name)
        with self._action("name"):
            person = self._person_of(faces)
            self.db.execute("UPDATE people SET name = ? WHERE id = ?", (name, person))
        return person

    def merge(self, keep: list[str], other: list[str]) -> int:
        """The people (or clusters) shown by ``keep`` and ``other`` are one: ``keep``'s, which keeps its name or
        takes ``other``'s if it has none."""
        if set(keep) == set(other):
            raise DecisionError("cannot merge a person with itself")
        with self._action("merge"):
            person = self._person_of(keep)
            for owner in {self._owner(f) for f in other} - {None, person}:
                named = self._name(owner)
                self.db.execute("UPDATE assigned SET person = ? WHERE person = ?", (person, owner))
                if named and not self._name(person):
                    self.db.execute("UPDATE people SET name = ? WHERE id = ?", (named, person))
                self.db.execute("DELETE FROM people WHERE id = ?", (owner,))
            self._assign(other, person)  # faces no one has yet (the others keep theirs: INSERT OR IGNORE)
        return person

    def move(self, faces: list[str], target: list[str] | None, hidden: bool = False) -> int:
        """``faces`` belong to the person ``target`` shows, or to a new (unnamed) person when None: a split; a
        hidden one with ``hidden`` (faces the user does not want to name, out of the way)."""
        if not faces:
            raise DecisionError("no faces selected")
        with self._action("hide" if hidden and target is None else "move"):
            person = self._new_person() if target is None else self._person_of(target)
            if hidden and target is None:
                self.db.execute("UPDATE people SET hidden = 1 WHERE id = ?", (person,))
            self.db.execute(f"DELETE FROM not_faces WHERE face IN ({','.join('?' * len(faces))})", faces)
            self._assign(faces, person, replace=True)
        return person

    def mark_not_face(self, faces: list[str]) -> None:
        if not faces:
            raise DecisionError("no faces selected")
        with self._action("not_a_face"):
            self.db.execute(f"DELETE FROM assigned WHERE face IN ({','.join('?' * len(faces))})", faces)
            self.db.executemany("INSERT OR IGNORE INTO not_faces VALUES (?)", [(f,) for f in faces])

    def hide(self, faces: list[str], hidden: bool = True) -> int:
        with self._action("hide"):
            person = self._person_of(faces)
            self.db.execute("UPDATE people SET hidden = ? WHERE id = ?", (int(hidden), person))
        return person

    def set_cover(self, faces: list[str], face: str) -> int:
        """``face``, one of ``faces``, is the picture of the person they show."""
        if face not in faces:
            raise DecisionError("the cover face must be one of the person's faces")
        with self._action("cover"):
            person = self._person_of(faces)
            self.db.execute("UPDATE people SET cover = ? WHERE id = ?", (face, person))
        return person

    def _person_of(self, faces: list[str]) -> int:
        if not faces:
            raise DecisionError("no faces given")
        owners = [p for p in (self._owner(f) for f in faces) if p is not None]
        person = max(set(owners), key=owners.count) if owners else self._new_person()
        self._assign(faces, person)  # those no one has yet
        return person

    def undo(self) -> str | None:
        """Take back the last action; returns its name (None: nothing to undo)."""
        with self._transaction():
            row = self.db.execute("SELECT id, action, before FROM history ORDER BY id DESC LIMIT 1").fetchone()
            if row is None:
                return None
            before = json.loads(row[2])
            for table in _TABLES:
                self.db.execute(f"DELETE FROM {table}")
                if before[table]:
                    marks = ",".join("?" * len(before[table][0]))
                    self.db.executemany(f"INSERT INTO {table} VALUES ({marks})", before[table])
            self.db.execute("DELETE FROM history WHERE id = ?", (row[0],))
            return row[1]

    # -- internals --------------------------------------------------------------------------------------------
    @contextmanager
    def _transaction(self) -> Iterator[None]:
        self.db.execute("BEGIN IMMEDIATE")  # the write lock at once: a second tab waits, then sees this change
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    @contextmanager
    def _action(self, action: str) -> Iterator[None]:
        """One transaction that first records the state before it, for :meth:`undo`. Decisions stay small (one
        row per face a user touched), so a snapshot is cheap and undo is exact."""
        with self._transaction():
            before = {t: self.db.execute(f"SELECT * FROM {t}").fetchall() for t in _TABLES}
            self.db.execute("INSERT INTO history (action, before) VALUES (?, ?)", (action, json.dumps(before)))
            yield

    def _new_person(self) -> int:
        return int(self.db.execute("INSERT INTO people (name) VALUES ('')").lastrowid)

    def _name(self, person: int) -> str:
        row = self.db.execute("SELECT name FROM people WHERE id = ?", (person,)).fetchone()
        if row is None:
            raise DecisionError(f"no person {person}")
        return row[0]

    def _owner(self, face: str) -> int | None:
        row = self.db.execute("SELECT person FROM assigned WHERE face = ?", (face,)).fetchone()
        return None if row is None else int(row[0])

    def _assign(self, faces: list[str], person: int, replace: bool = False) -> None:
        """``faces`` to ``person``; with ``replace``, also those given to someone else before."""
        verb = "INSERT OR REPLACE" if replace else "INSERT OR IGNORE"
        self.db.executemany(f"{verb} INTO assigned VALUES (?, ?)", [(f, person) for f in faces])


def _clean_name(name: str) -> str:
    if not isinstance(name, str) or not name.strip():
        raise DecisionError("a name must not be empty")
    name = " ".join(name.split())
    if len(name) > MAX_NAME:
        raise DecisionError(f"a name must be at most {MAX_NAME} characters")
    return name


def match_faces(keys: list[str], decided: set[str] | dict[str, int]) -> dict[str, str]:
    """Decided face key -> key of the table face it names: the same key, or on the same source and frame the box
    that overlaps it most (IoU >= 0.5), for a re-run whose boxes moved a little."""
    exact = set(keys) & set(decided)
    out = {k: k for k in exact}
    by_frame: dict[tuple[str, str], list[tuple[str, np.ndarray]]] = {}
    for k in keys:
        source, frame, box = k.split("\t")
        by_frame.setdefault((source, frame), []).append((k, np.array(box.split(","), float)))
    for d in set(decided) - exact:
        source, frame, box = d.split("\t")
        b = np.array(box.split(","), float)
        best, best_iou = None, 0.5
        for k, a in by_frame.get((source, frame), []):
            iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
            ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
            union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - iw * ih
            iou = iw * ih / union if union > 0 else 0.0
            if iou >= best_iou:
                best, best_iou = k, iou
        if best is not None:
            out[d] = best
    return out


NOT_A_FACE = -2  # the label of a face the user marked as not a face: out of every cluster, folder and label file


@dataclass
class Applied:
    """Decisions matched to the faces of one table."""

    person: np.ndarray  # (n,) the person each face was given to, -1 where the user decided nothing
    not_face: np.ndarray  # (n,) bool
    people: dict[int, Person]
    cover: dict[int, int]  # person -> index of their cover face in the table

    def cut(self, tracks: Tracks) -> Tracks:
        """``tracks`` cut where the user gave a track's faces to different people: within a track, the faces of
        each person are a track, and the faces nobody decided another. The user's word wins over the tracker's."""
        return tracks.cut_by(self.person)

    def enforce(self, labels: np.ndarray) -> np.ndarray:
        """``labels`` with every person's faces in one cluster: the one most of them are in (a person whose
        cluster another, larger person already took gets a cluster of their own). Faces nobody decided keep the
        cluster the clustering gave them, so a name attracts no one the clustering would not have put there."""
        out = np.asarray(labels, np.int64).copy()
        persons, sizes = np.unique(self.person[self.person >= 0], return_counts=True)
        taken: set[int] = set()
        next_label = int(out.max(initial=-1)) + 1
        for p in persons[np.argsort(-sizes, kind="stable")]:
            faces = self.person == p
            values, counts = np.unique(out[faces & (out >= 0)], return_counts=True)
            free = [int(v) for v in values[np.argsort(-counts, kind="stable")] if int(v) not in taken]
            label = free[0] if free else next_label
            next_label += not free
            out[faces] = label
            taken.add(label)
        return out

    def person_pairs(self) -> tuple[np.ndarray, np.ndarray]:
        """One face of each of two people, for every two people: cannot-links between the people."""
        firsts = [int(np.flatnonzero(self.person == p)[0]) for p in np.unique(self.person[self.person >= 0])]
        a, b = np.triu_indices(len(firsts), 1)
        return np.asarray(firsts, np.int64)[a], np.asarray(firsts, np.int64)[b]

    def names(self, labels: np.ndarray) -> dict[int, Person]:
        """Cluster label -> the person whose faces it holds (most of them, if a merge left several)."""
        out: dict[int, Person] = {}
        for label in np.unique(labels[(labels >= 0) & (self.person >= 0)]):
            owners = self.person[(labels == label) & (self.person >= 0)]
            values, counts = np.unique(owners, return_counts=True)
            person = int(values[np.argmax(counts)])
            if person in self.people:
                out[int(label)] = self.people[person]
        return out


def apply_decisions(out: str | Path, table: FaceTable) -> Applied | None:
    """The decisions saved in OUT, matched to ``table``'s faces; None when the user has decided nothing."""
    if not (Path(out) / DECISIONS_NAME).exists():
        return None
    with Decisions(out) as d:
        people, assigned, not_faces = d.people(), d.assigned(), d.not_faces()
    if not (people or assigned or not_faces):
        return None
    keys = table_keys(table)
    index = {k: i for i, k in enumerate(keys)}
    found = match_faces(keys, set(assigned) | not_faces | {p.cover for p in people.values() if p.cover})
    person = np.full(len(keys), -1, np.int64)
    not_face = np.zeros(len(keys), bool)
    for face, p in assigned.items():
        if face in found and p in people:
            person[index[found[face]]] = p
    for face in not_faces:
        if face in found:
            not_face[index[found[face]]] = True
    cover = {p.id: index[found[p.cover]] for p in people.values() if p.cover in found}
    return Applied(person, not_face, people, cover)
