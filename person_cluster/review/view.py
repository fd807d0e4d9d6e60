"""What the review page shows: the run's people as the user's decisions have reshaped them since the last
clustering. A face the user gave to a person is shown with that person (group ``p<id>``); other faces with their
cluster (``c<id>``) or as unassigned (``u``); faces marked as not a face are left out. ``person-cluster cluster``
later re-clusters with the same decisions, so what the page shows and what the outputs hold agree.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..config import Config, ConfigError
from ..layout import MANIFEST, ManifestError, read_manifest
from ..outputs.cast import screen_spans
from ..sampling.shots import Shot
from ..tracking import Tracks
from .decisions import DECISIONS_NAME, Decisions, Person, face_key


@dataclass
class Group:
    key: str
    name: str
    label: str  # what the page calls it: the name, or the cluster's folder
    faces: list[int] = field(default_factory=list)  # indices into the manifest's faces
    hidden: bool = False
    cover: int | None = None
    spans: dict[str, list[tuple[float, float]]] = field(default_factory=dict)  # per video: on screen (s)


class ReviewView:
    """Built from OUT's manifest (read once) and its decisions (read at every :meth:`groups`)."""

    def __init__(self, out: str | Path) -> None:
        self.out = Path(out)
        manifest = read_manifest(self.out)
        self.faces: list[dict[str, Any]] = manifest["faces"]
        clusters = manifest["clusters"]
        self.keys = [face_key(f["source"], f["frame"], f["bbox"]) for f in self.faces]
        self.index = {k: i for i, k in enumerate(self.keys)}
        self.folder = {int(c["id"]): Path(c["folder"]).name for c in clusters}
        self.person_of = {int(c["id"]): int(c["person"]) for c in clusters if isinstance(c.get("person"), int)}
        # The inputs the page may show (the player and photos): ``/input/<index>`` names them by their place here.
        self.inputs: list[dict[str, Any]] = [i if isinstance(i, dict) else {} for i in manifest.get("inputs") or []]
        self.input_index = {i.get("source"): k for k, i in enumerate(self.inputs)}
        self.input_of = [self.input_index.get(f["source"]) for f in self.faces]
        self.sizes = {(fr["source"], fr["frame"]): (fr["width"], fr["height"]) for fr in manifest["frames"]}
        self.cast_cover = {int(c["cluster"]): int(c["cover_face"]) for c in manifest.get("cast", [])}
        # What screen time is counted from, as the cast counts it (outputs.cast.screen_spans).
        self.sources = [f["source"] for f in self.faces]
        self.times = [f["time_s"] for f in self.faces]
        self.shot_ids = np.array([-1 if f.get("shot") is None else f["shot"] for f in self.faces], np.int64)
        self.tracks = np.array([-1 - i if f.get("track") is None else f["track"] for i, f in enumerate(self.faces)],
                               np.int64)
        try:
            # Only the sampling section: an older run's other settings may no longer validate.
            self.sampling = Config.from_dict({"sampling": manifest.get("config", {}).get("sampling", {})}).sampling
            self.shots = [Shot.from_dict(shot) for shot in manifest.get("shots", [])]
        except (ConfigError, KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ManifestError(f"{self.out / MANIFEST}: unreadable manifest ({exc})") from None
        self.durations: dict[str, float] = {}
        for shot in self.shots:
            self.durations[shot.source] = max(self.durations.get(shot.source, 0.0), shot.last_time)
        self.descriptors = self._descriptors()
        self._lock = threading.Lock()
        self._cached: tuple[int, dict[str, Group]] | None = None
        self._watch: sqlite3.Connection | None = None

    def current(self) -> dict[str, Group]:
        """:meth:`groups` for the decisions as they are now, rebuilt only when they changed: every request of
        the page asks for them, and rebuilding takes ~0.3 s on 16,000 faces. SQLite's ``data_version``, read on
        a connection that never writes, changes whenever any other connection (a tab, another process) commits.
        The version is read before the decisions, so a change in between is rebuilt at the next request."""
        with self._lock:
            if self._watch is None:
                self._watch = sqlite3.connect(self.out / DECISIONS_NAME, check_same_thread=False)
            version = int(self._watch.execute("PRAGMA data_version").fetchone()[0])
            if self._cached is None or self._cached[0] != version:
                with Decisions(self.out) as d:
                    self._cached = (version, self.groups(d))
            return self._cached[1]

    def _descriptors(self) -> np.ndarray | None:
        """Face descriptors in manifest order, from the cache (for merge suggestions); None without a cache."""
        from ..cache import CACHE_NAME, CacheError, FeatureCache

        try:
            with FeatureCache.open_existing(self.out / CACHE_NAME) as cache:
                table = cache.load_table()
        except CacheError:
            return None
        if len(table) != len(self.faces):
            return None
        face = table.face / np.maximum(np.linalg.norm(table.face, axis=1, keepdims=True), 1e-9)
        return face.astype(np.float32)

    def groups(self, decisions: Decisions) -> dict[str, Group]:
        """The page's people, largest screen time first (counted as the cast counts it), hidden ones last."""
        people: dict[int, Person] = decisions.people()
        assigned, not_faces = decisions.assigned(), decisions.not_faces()
        groups: dict[str, Group] = {}
        for i, (key, face) in enumerate(zip(self.keys, self.faces)):
            if key in not_faces:
                continue
            # A face the user gave to someone is theirs; one the last clustering put in a person's cluster (a face
            # that joined them after the decision, in an add or a re-clustering) is shown with them too.
            person = people.get(assigned.get(key, self.person_of.get(int(face["cluster"]), -1)))
            if person is not None:
                g = groups.setdefault(f"p{person.id}", Group(f"p{person.id}", person.name,
                                                             person.name or f"person #{person.id}",
                                                             hidden=person.hidden))
                if person.cover == key:
                    g.cover = i
            elif face["cluster"] >= 0:
                c = int(face["cluster"])
                g = groups.setdefault(f"c{c}", Group(f"c{c}", "", self.folder.get(c, f"cluster {c}")))
            else:
                g = groups.setdefault("u", Group("u", "", "unassigned"))
            g.faces.append(i)
        for g in groups.values():
            if g.cover is None:
                covers = {self.cast_cover.get(int(self.faces[i]["cluster"])) for i in g.faces} & set(g.faces)
                g.cover = min(covers) if covers else g.faces[0]
        self._screen_spans(list(groups.values()))
        # As the cast ranks: screen time, then faces, then the number in the key (p before c where all tie).
        order = sorted(groups.values(), key=lambda g: (g.hidden, g.key == "u", -round(self.screen_time(g), 2),
                                                       -len(g.faces), g.key[0] != "p", int(g.key[1:] or 0)))
        return {g.key: g for g in order}

    def _screen_spans(self, groups: list[Group]) -> None:
        """Each group's on-screen spans per video. A track the user split between people counts for each part."""
        label = np.full(len(self.faces), -1, np.int64)
        for k, g in enumerate(groups):
            label[g.faces] = k
        tracks = Tracks.by_first_face(self.tracks * (len(groups) + 1) + label + 1)
        spans = screen_spans(self.sources, self.times, self.shot_ids, label, tracks.ids, self.shots, self.sampling)
        for k, g in enumerate(groups):
            g.spans = spans.get(k, {})

    @staticmethod
    def screen_time(g: Group) -> float:
        return sum(end - start for per_video in g.spans.values() for start, end in per_video)

    def candidates(self, groups: dict[str, Group], key: str) -> list[str]:
        """Other groups by similarity to ``key`` (closest mean descriptor first): merge suggestions."""
        others = [k for k in groups if k not in (key, "u")]
        if self.descriptors is None or key not in groups:
            return others
        mean = {k: self.descriptors[groups[k].faces].mean(axis=0) for k in [key, *others]}
        return sorted(others, key=lambda k: float(np.linalg.norm(mean[k] - mean[key])))

    def summary(self, g: Group) -> dict[str, Any]:
        return {"key": g.key, "name": g.name, "label": g.label, "faces": len(g.faces), "hidden": g.hidden,
                "screen_time_s": round(self.screen_time(g), 1), "cover": self.faces[g.cover]["crop"]}

    def timeline(self, g: Group) -> list[dict[str, Any]]:
        """Per video the person is in: its length (as far as the run saw it) and the spans they are on screen."""
        return [{"source": Path(source).name, "input": self.input_index.get(source),
                 "duration_s": self.durations.get(source, spans[-1][1]),
                 "spans": [[start, end] for start, end in spans]} for source, spans in g.spans.items()]

    def face(self, i: int) -> dict[str, Any]:
        """A face as the page shows it, with what the player needs: its input, time, box and frame size."""
        f = self.faces[i]
        width, height = self.sizes.get((f["source"], f["frame"]), (None, None))
        return {"key": self.keys[i], "crop": f["crop"], "source": Path(f["source"]).name, "frame": f["frame"],
                "time_s": f["time_s"], "input": self.input_of[i], "bbox": f["bbox"], "width": width,
                "height": height}

    # -- appearances --------------------------------------------------------------------------------------------
    # An appearance is one track's faces within one person: a stretch of one video where the tracker followed a
    # face, or a single photo. The user judges and moves them whole; a track the user split between people is an
    # appearance in each.
    def appearances(self, g: Group, video: str | None = None) -> list[np.ndarray]:
        """``g``'s appearances (manifest indices of their faces, in time order), by first face; only those of
        input ``video`` (an index into the manifest's inputs, as text), or of photos when ``video`` is "photos"."""
        faces = np.asarray(g.faces, np.int64)
        if video == "photos":
            faces = faces[[self.faces[i]["frame"] is None for i in faces]]
        elif video is not None:
            faces = faces[[str(self.input_of[i]) == video for i in faces]]
        if not len(faces):
            return []
        _, first, inverse = np.unique(self.tracks[faces], return_index=True, return_inverse=True)
        order = np.argsort(inverse, kind="stable")
        parts = np.split(faces[order], np.flatnonzero(np.diff(inverse[order])) + 1)
        return [parts[k] for k in np.argsort(first, kind="stable")]

    def appearance(self, faces: np.ndarray) -> dict[str, Any]:
        """An appearance as the page shows it: its track, input, time span, size and its middle face."""
        first, last = self.faces[faces[0]], self.faces[faces[-1]]
        return {"track": int(self.tracks[faces[0]]), "source": Path(first["source"]).name,
                "input": self.input_of[int(faces[0])], "photo": first["frame"] is None,
                "start_s": first["time_s"], "end_s": last["time_s"], "faces": len(faces),
                "face": self.face(int(faces[len(faces) // 2]))}

    def find_appearance(self, g: Group, track: int) -> np.ndarray | None:
        faces = np.asarray(g.faces, np.int64)
        members = faces[self.tracks[faces] == track]
        return members if len(members) else None

    def videos(self, g: Group) -> list[dict[str, Any]]:
        """The inputs ``g``'s faces come from, for the page's filter: each video, and the photos as one entry."""
        counts: dict[int | None, int] = {}
        photos = 0
        for i in g.faces:
            if self.faces[i]["frame"] is None:
                photos += 1
            else:
                counts[self.input_of[i]] = counts.get(self.input_of[i], 0) + 1
        out = [{"value": str(k), "label": Path(self.inputs[k]["source"]).name, "faces": n}
               for k, n in counts.items() if k is not None]
        return out + ([{"value": "photos", "label": "photos", "faces": photos}] if photos else [])
