"""Stage 8: write what a person needs to name the people found, and what programs need to use them.

Layout of OUT::

    manifest.json            machine-readable index of everything below (schema in docs/outputs.md)
    people/<folder>/         face crops per person (person_000, ...; 'unassigned' for cluster -1)
    people/<folder>/upper_body/  upper-body crops of the same faces, same file names
    montages/<folder>.jpg    one grid image per person
    cast.csv                 the people ranked by screen time, with their representative face (also in the manifest)
    timelines/<video>.png    per video: who is on screen when, one row per person
    clusters.png             2-D map of the faces coloured by person
    annotations/             YOLO labels, one <frame stem>.txt per sampled frame, and classes.txt
    frames/                  the sampled frames as JPEG, same stems as the labels (if output.save_frames)
    features.sqlite          the feature cache (written by extraction, read by `person-cluster cluster`)

Outputs are written per person (:func:`write_person`: its folder and montage, from one :class:`Person` record),
and only for the people that changed since the previous manifest: an ``add`` of a short clip to a large library
rewrites the few people it touched, the label files whose content changed, and the timelines of the videos those
people are in. The order makes OUT safe to interrupt: new files first (each replaced atomically), then the manifest,
then the removal of what no longer belongs; so the manifest never names a file that is not there, and a command
run again after a kill finishes the job.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..cache import FeatureCache
from ..config import Config, OutputConfig
from ..fusion import fuse
from ..layout import MANIFEST
from ..records import FaceTable, FrameInfo
from ..review import NOT_A_FACE, Applied
from ..tracking import Tracks
from .crops import encode_jpg
from .montage import make_montage, pick_evenly
from .naming import frame_stem, people_folders
from .yolo import yolo_line

log = logging.getLogger(__name__)

MANIFEST_VERSION = 1
# clusters.png maps at most this many faces (see plot.py); here so that callers need not import matplotlib.
PLOT_MAX_POINTS = 2000


def write_atomic(path: Path, data: bytes, sync: bool = True) -> None:
    """Write to a temp file in the same folder, then rename over ``path``: readers see old or new, never half.
    ``sync``: flush to disk first (for files that must survive a power cut, not for rebuildable ones)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            if sync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def face_file(face_id: int) -> str:
    """The file name of a face's crop (and of its upper-body crop), in its person's folder."""
    return f"face_{face_id:06d}.jpg"


def crop_path(face_id: int, folder: str) -> str:
    return f"people/{folder}/{face_file(face_id)}"


@dataclass
class Person:
    """One person's outputs: their folder (under people/), montage, and faces (ids, in face order)."""

    label: int  # the person's number; -1 unassigned, -2 not a face
    folder: str
    faces: np.ndarray

    @property
    def montage(self) -> str:
        return f"montages/{self.folder}.jpg"


def write_person(out: Path, person: Person, crops: dict[int, tuple[bytes, bytes | None]], output: OutputConfig,
                 present: set[int] = frozenset()) -> None:  # type: ignore[assignment]
    """The person's folder (face and upper-body crops, from ``crops``: face id -> JPEGs) and montage; the crops of
    the faces in ``present`` are there already and are not written again. Files of faces no longer theirs are left
    for :func:`_remove_stale`."""
    folder = out / "people" / person.folder
    (folder / "upper_body").mkdir(parents=True, exist_ok=True)
    for i in person.faces.tolist():
        if i in present:
            continue
        face_jpg, body_jpg = crops[i]
        write_atomic(folder / face_file(i), face_jpg, sync=False)
        if body_jpg is not None:
            write_atomic(folder / "upper_body" / face_file(i), body_jpg, sync=False)
    picked = pick_evenly(len(person.faces), output.montage_max_faces)
    images = [cv2.imdecode(np.frombuffer(crops[int(person.faces[j])][0], np.uint8), cv2.IMREAD_COLOR) for j in picked]
    montage = make_montage([im for im in images if im is not None], f"{person.folder}: {len(person.faces)} faces",
                           output.montage_cell)
    (out / "montages").mkdir(exist_ok=True)
    write_atomic(out / person.montage, encode_jpg(montage, max(montage.shape[:2]), 90), sync=False)


def write_outputs(out: Path, cache: FeatureCache, table: FaceTable, labels: np.ndarray, config: Config,
                  tracks: np.ndarray | None = None, applied: Applied | None = None,
                  previous: dict[str, Any] | None = None, next_person: int | None = None,
                  replot: bool = True) -> dict[str, Any]:
    """Write every output for ``labels`` (one per row of ``table``: person numbers, -1 unassigned, -2 not a face;
    ``tracks``: each face's track, default one track per face; ``applied``: the user's decisions, which name
    people) into ``out``; returns the manifest. ``previous``: the manifest these outputs replace, whose unchanged
    people and files are not written again. ``next_person``: the next person number never used (kept in the
    manifest). ``replot``: draw clusters.png again (else an existing one is kept, and run.json says so)."""
    out = Path(out)
    labels = np.asarray(labels, np.int64)
    tracks = np.arange(len(table)) if tracks is None else np.asarray(tracks)
    people = applied.names(labels) if applied is not None else {}
    folders = people_folders(labels, {c: p.name for c, p in people.items() if p.name})
    persons = [Person(int(label), folders[int(label)], np.flatnonzero(labels == label))
               for label in np.unique(labels)]
    unchanged = _unchanged(out, persons, previous, config)
    changed = [p for p in persons if p.label not in unchanged]
    present = _present(out, table, labels, folders, previous)
    needed = [np.concatenate([p.faces[~np.isin(p.faces, list(present))],
                              p.faces[pick_evenly(len(p.faces), config.output.montage_max_faces)]]) for p in changed]
    crops = cache.crops(table, np.concatenate(needed) if needed else np.zeros(0, np.int64))
    for person in changed:
        write_person(out, person, crops, config.output, present)
    faces = _faces(table, labels, tracks, folders)
    clusters = []
    for p in persons:
        if p.label >= 0:
            named = people.get(p.label)
            clusters.append({"id": p.label, "size": len(p.faces), "folder": f"people/{p.folder}",
                             "montage": p.montage, "name": named.name or None if named else None,
                             "person": named.id if named else None, "hidden": bool(named and named.hidden)})
    shots = cache.shots()
    cast, timelines = _write_cast(out, table, labels, tracks, shots, folders, config, previous, unchanged)
    frames = _write_annotations(out, table, labels, cache.frames(), folders, config, previous)
    plotted = config.output.plot and len(table) > 0 and (replot or not (out / "clusters.png").is_file())
    if plotted:
        from .plot import plot_clusters

        fused = fuse(table.face, table.cloth, table.has_cloth, config.fusion.face_weight, config.fusion.cloth_weight)
        plot_clusters(fused, labels, out / "clusters.png")
    elif config.output.plot and len(table):
        log.info("clusters.png is kept from an earlier clustering (`person-cluster cluster` draws it again)")
    inputs = cache.inputs()
    manifest = {
        "version": MANIFEST_VERSION,
        "config": config.to_dict(),
        "inputs": inputs,
        "faces": faces,
        "clusters": clusters,
        "frames": frames,
        "cast": cast,
        "timelines": timelines,
        "shots": [shot.as_dict() for shot in shots],
        "tracks": _tracks(table, labels, tracks),
        "next_person": max(next_person or 0, int(labels.max(initial=-1)) + 1),
        "summary": {
            "faces": len(table),
            "clusters": len(clusters),
            "unassigned": int((labels == -1).sum()),
            "not_a_face": int((labels == NOT_A_FACE).sum()),
            "frames": len(frames),
            "tracks": int(tracks.max()) + 1 if len(tracks) else 0,
            "skipped_inputs": sum(1 for i in inputs if i["status"] == "skipped"),
        },
    }
    # Timestamps live in their own file so that two runs on the same input give byte-identical manifests.
    write_atomic(out / MANIFEST, manifest_json(manifest).encode())
    run_info = {"written_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "people_written": len(changed), "people_kept": len(unchanged),
                "plot": "drawn" if plotted else "kept" if config.output.plot and len(table) else "none"}
    write_atomic(out / "run.json", (json.dumps(run_info) + "\n").encode())
    _remove_stale(out, [p for p in persons if p.label not in unchanged], {p.folder for p in persons}, manifest)
    log.info("outputs: %d people written, %d unchanged", len(changed), len(unchanged))
    return manifest


def manifest_json(manifest: dict[str, Any]) -> str:
    """The manifest as JSON with one face, frame, track ... per line: readable and diffable, and written by json's
    C encoder (``indent`` makes json fall back to Python: 6 s for LFW's 16,000 faces)."""
    parts = []
    for key, value in manifest.items():
        if isinstance(value, list) and value:
            items = ",\n  ".join(json.dumps(v, ensure_ascii=False) for v in value)
            parts.append(f"{json.dumps(key)}: [\n  {items}\n ]")
        else:
            parts.append(f"{json.dumps(key)}: {json.dumps(value, ensure_ascii=False)}")
    return "{\n " + ",\n ".join(parts) + "\n}\n"


def _present(out: Path, table: FaceTable, labels: np.ndarray, folders: dict[int, str],
             previous: dict[str, Any] | None) -> set[int]:
    """Faces whose crop the previous manifest put where this one does, for the same face: the file is right."""
    if not previous:
        return set()
    from ..review import face_key

    before = {int(f["id"]): (f["crop"], face_key(f["source"], f["frame"], f["bbox"])) for f in previous["faces"]}
    out_set = set()
    for i, (source, frame, box, label) in enumerate(zip(table.sources, table.frames, table.bboxes, labels.tolist())):
        old = before.get(i)
        if old is not None and old[0] == crop_path(i, folders[label]) and old[1] == face_key(source, frame, box):
            out_set.add(i)
    return {i for i in out_set if (out / before[i][0]).is_file()}


def _unchanged(out: Path, persons: list[Person], previous: dict[str, Any] | None, config: Config) -> set[int]:
    """Labels of the people whose folder and faces are those of ``previous``, drawn with the same output settings,
    and whose files are all there."""
    if not previous or previous.get("config", {}).get("output") != config.to_dict()["output"]:
        return set()
    before: dict[str, list[int]] = {}
    for f in previous.get("faces", []):
        before.setdefault(Path(f["crop"]).parent.name, []).append(int(f["id"]))
    keep = set()
    for p in persons:
        if before.get(p.folder) == p.faces.tolist() and (out / p.montage).is_file():
            folder = out / "people" / p.folder
            if all((folder / face_file(i)).is_file() for i in p.faces.tolist()):
                keep.add(p.label)
    return keep


def _remove_stale(out: Path, changed: list[Person], folders: set[str], manifest: dict[str, Any]) -> None:
    """Remove what the manifest no longer names: crops of faces that left a ``changed`` person's folder, folders
    and montages of people who are gone (``folders``: every person's), timelines of videos removed, and temporary
    files a killed command left."""
    people = out / "people"
    wanted = {p.folder: {face_file(i) for i in p.faces.tolist()} for p in changed}
    for folder in (people.iterdir() if people.is_dir() else []):
        if folder.name not in folders:
            shutil.rmtree(folder) if folder.is_dir() and not folder.is_symlink() else folder.unlink()
            continue
        if folder.name not in wanted:  # an unchanged person: their folder holds exactly their faces
            continue
        for sub in (folder, folder / "upper_body"):
            for entry in (sub.iterdir() if sub.is_dir() else []):
                if entry.is_file() and entry.name not in wanted[folder.name]:
                    entry.unlink()
    for kind, names in (("montages", {f"{folder}.jpg" for folder in folders}),
                        ("timelines", {Path(t["image"]).name for t in manifest["timelines"]}),
                        ("annotations", {Path(fr["labels"]).name for fr in manifest["frames"]} | {"classes.txt"})):
        for entry in ((out / kind).iterdir() if (out / kind).is_dir() else []):
            if entry.name not in names:
                entry.unlink()
    for tmp in out.glob(".*.tmp*"):
        tmp.unlink()


def _faces(table: FaceTable, labels: np.ndarray, tracks: np.ndarray, folders: dict[int, str]) -> list[dict[str, Any]]:
    out = []
    for i in range(len(table)):
        folder = folders[int(labels[i])]
        out.append({
            "id": i,
            "source": table.sources[i],
            "frame": table.frames[i],
            "time_s": table.times[i],
            "bbox": [int(v) for v in table.bboxes[i]],
            "shot": int(table.shots[i]),
            "track": int(tracks[i]),
            "cluster": int(labels[i]),
            "crop": crop_path(i, folder),
            "upper_body_crop": f"people/{folder}/upper_body/{face_file(i)}" if table.has_body[i] else None,
            "has_cloth_feature": bool(table.has_cloth[i]),
        })
    return out


def _write_cast(root: Path, table: FaceTable, labels: np.ndarray, tracks: np.ndarray, shots: list,
                folders: dict[int, str], config: Config, previous: dict[str, Any] | None,
                unchanged: set[int]) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """cast.csv and one timeline per video (redrawn where one of its people changed); the manifest's ``cast`` and
    ``timelines``."""
    from .cast import build_cast, cast_csv, draw_timeline

    def crop_of(face_id: int) -> np.ndarray | None:
        return cv2.imread(str(root / crop_path(face_id, folders[int(labels[face_id])])))

    covers = {int(c["cluster"]): int(c["cover_face"]) for c in (previous or {}).get("cast", [])
              if int(c["cluster"]) in unchanged}
    members, spans = build_cast(table, labels, tracks, shots, config.sampling, crop_of, folders, covers)
    write_atomic(root / "cast.csv", cast_csv(members).encode("utf-8"))
    cast = [{"rank": r, **m.as_dict(), "cover": crop_path(m.cover_face, m.folder)} for r, m in enumerate(members, 1)]
    before = {(t["source"], t["image"]) for t in (previous or {}).get("timelines", [])}
    old_cast = {(c["cluster"], c["screen_time_s"], c["folder"], c["cover_face"]) for c in (previous or {}).get("cast", [])}
    timelines = []
    videos = list(dict.fromkeys(s for s, f in zip(table.sources, table.frames) if f is not None))
    for source in videos:
        image = f"timelines/{frame_stem(source, None)}.png"
        seen = [m for m in members if spans.get(m.cluster, {}).get(source)]
        if not seen:
            continue
        timelines.append({"source": source, "image": image})
        same = (source, image) in before and (root / image).is_file() and all(
            (m.cluster, m.screen_time_s, m.folder, m.cover_face) in old_cast for m in seen)
        if same and _same_people_in(previous, source, seen):
            continue
        ends = [s.last_time for s in shots if s.source == source]
        ends += [table.times[i] + config.sampling.capture_interval_sec for i in range(len(table))
                 if table.sources[i] == source and table.times[i] is not None]
        (root / "timelines").mkdir(exist_ok=True)
        draw_timeline(root / image, source, members, spans, shots, max(ends, default=0.0), crop_of)
    return cast, timelines


def _same_people_in(previous: dict[str, Any] | None, source: str, seen: list) -> bool:
    """Whether ``source``'s timeline showed exactly these people before (by number, in this order)."""
    if not previous:
        return False
    shown = {int(f["cluster"]) for f in previous.get("faces", []) if f["source"] == source and f["cluster"] >= 0}
    order = [int(c["cluster"]) for c in previous.get("cast", []) if int(c["cluster"]) in shown]
    return order == [m.cluster for m in seen]


def _tracks(table: FaceTable, labels: np.ndarray, tracks: np.ndarray) -> list[dict[str, Any]]:
    """One entry per track: where it is, how long, how many faces, and its cluster (all its faces share it)."""
    out: list[dict[str, Any]] = []
    for members in Tracks(tracks).members():
        first, last = int(members[0]), int(members[-1])
        out.append({
            "id": int(tracks[first]), "source": table.sources[first], "shot": int(table.shots[first]),
            "first_frame": table.frames[first], "last_frame": table.frames[last],
            "first_time_s": table.times[first], "last_time_s": table.times[last],
            "faces": len(members), "cluster": int(labels[first]),
        })
    return out


def _write_annotations(root: Path, table: FaceTable, labels: np.ndarray, frames: list[FrameInfo],
                       folders: dict[int, str], config: Config, previous: dict[str, Any] | None = None
                       ) -> list[dict[str, Any]]:
    """One YOLO label file per sampled frame (empty when it has no face), written where its content changed.
    Classes: 'unassigned' first where some faces are in no one's cluster (so a detector trained on the set is not
    taught that those faces are background), then the people in number order, so that people added to a library
    (new numbers come last) change no one else's class; what the user marked as not a face gets no label."""
    ann = root / "annotations"
    ann.mkdir(exist_ok=True)
    order = _class_order(labels.tolist())
    classes = [folders[c] for c in order]  # folders[-1] is 'unassigned'
    class_of = {c: k for k, c in enumerate(order)}
    _write_if_changed(ann / "classes.txt", "".join(c + "\n" for c in classes))
    by_frame: dict[tuple[str, int | None], list[int]] = {}
    for i, key in enumerate(zip(table.sources, table.frames)):
        by_frame.setdefault(key, []).append(i)
    before = _previous_classes(previous)
    out = []
    for info in frames:
        stem = frame_stem(info.source, info.frame)
        faces = by_frame.get((info.source, info.frame), [])
        lines = [yolo_line(class_of[int(labels[i])], table.bboxes[i], info.width, info.height)
                 for i in faces if labels[i] != NOT_A_FACE]
        path = ann / f"{stem}.txt"
        # The file is right where the previous clustering gave each of its faces (same box) the same class.
        same = before is not None and all(before.get(_box_key(table, i)) == class_of.get(int(labels[i]))
                                          for i in faces) and sum(
            1 for i in faces if labels[i] != NOT_A_FACE) == before.get((info.source, info.frame), -1)
        if not (same and path.is_file()):
            _write_if_changed(path, "".join(line + "\n" for line in lines))
        out.append({
            "source": info.source,
            "frame": info.frame,
            "time_s": info.time_s,
            "width": info.width,
            "height": info.height,
            "labels": f"annotations/{stem}.txt",
            "image": f"frames/{stem}.jpg" if config.output.save_frames else None,
        })
    return out


def _class_order(labels: list[int]) -> list[int]:
    """The labels that are YOLO classes, in class order: unassigned (-1) first if any, then people by number."""
    return ([-1] if -1 in labels else []) + sorted({c for c in labels if c >= 0})


def _box_key(table: FaceTable, i: int) -> tuple:
    return (table.sources[i], table.frames[i], *(int(v) for v in table.bboxes[i]))


def _previous_classes(previous: dict[str, Any] | None) -> dict[tuple, int | None] | None:
    """The class each face's label line had under ``previous`` (by source, frame and box; None for a face it
    labelled as not a face), and the number of label lines of each frame (by source and frame)."""
    if not previous:
        return None
    labels = [int(f["cluster"]) for f in previous["faces"]]
    class_of = {c: k for k, c in enumerate(_class_order(labels))}
    out: dict[tuple, int | None] = {}
    for f, label in zip(previous["faces"], labels):
        out[(f["source"], f["frame"], *f["bbox"])] = class_of.get(label)
        if label != NOT_A_FACE:
            out[(f["source"], f["frame"])] = out.get((f["source"], f["frame"]), 0) + 1
    return out


def _write_if_changed(path: Path, text: str) -> None:
    data = text.encode()
    try:
        if path.read_bytes() == data:
            return
    except OSError:
        pass
    write_atomic(path, data, sync=False)
