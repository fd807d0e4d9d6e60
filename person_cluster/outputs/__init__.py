"""Stage 8: write what a person needs to name the people found, and what programs need to use them.

Layout of OUT::

    manifest.json            machine-readable index of everything below (schema in docs/outputs.md)
    people/<folder>/         face crops per cluster (person_000, ...; 'unassigned' for cluster -1)
    people/<folder>/upper_body/  upper-body crops of the same faces, same file names
    montages/<folder>.jpg    one grid image per cluster
    cast.csv                 the people ranked by screen time, with their representative face (also in the manifest)
    timelines/<video>.png    per video: who is on screen when, one row per person
    clusters.png             2-D map of all faces coloured by cluster
    annotations/             YOLO labels, one <frame stem>.txt per sampled frame, and classes.txt
    frames/                  the sampled frames as JPEG, same stems as the labels (if output.save_frames)
    features.sqlite          the feature cache (written by extraction, read by `person-cluster cluster`)

Everything except frames/ and the cache is rebuilt in a staging folder and moved into place, and the manifest is
written last, so OUT never holds a manifest that points at files that are not there.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..cache import FeatureCache
from ..config import Config
from ..fusion import fuse
from ..layout import MANIFEST, REBUILT
from ..records import FaceTable, FrameInfo
from ..review import NOT_A_FACE, Applied
from ..tracking import Tracks
from .montage import make_montage, pick_evenly
from .naming import frame_stem, people_folders
from .yolo import yolo_line

log = logging.getLogger(__name__)

MANIFEST_VERSION = 1


def write_atomic(path: Path, data: bytes) -> None:
    """Write to a temp file in the same folder, then rename over ``path``: readers see old or new, never half."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_outputs(out: Path, cache: FeatureCache, table: FaceTable, labels: np.ndarray, config: Config,
                  tracks: np.ndarray | None = None, applied: Applied | None = None) -> dict[str, Any]:
    """Write every output for ``labels`` (one per row of ``table``; ``tracks``: each face's track, default one
    track per face; ``applied``: the user's decisions, which name clusters) into ``out``; returns the manifest."""
    out = Path(out)
    tracks = np.arange(len(table)) if tracks is None else np.asarray(tracks)
    people = applied.names(labels) if applied is not None else {}
    folders = people_folders(labels, {c: p.name for c, p in people.items() if p.name})
    staging = Path(tempfile.mkdtemp(dir=out, prefix=".staging-"))
    try:
        faces, clusters = _write_people(staging, cache, table, labels, tracks, folders, config)
        for c in clusters:
            person = people.get(c["id"])
            c.update({"name": person.name or None if person else None, "person": person.id if person else None,
                      "hidden": bool(person and person.hidden)})
        shots = cache.shots()
        cast, timelines = _write_cast(staging, table, labels, tracks, shots, folders, config)
        frames = _write_annotations(staging, table, labels, cache.frames(), folders, config)
        if config.output.plot and len(table):
            from .plot import plot_clusters

            fused = fuse(table.face, table.cloth, table.has_cloth, config.fusion.face_weight, config.fusion.cloth_weight)
            plot_clusters(fused, labels, str(staging / "clusters.png"), f"{len(clusters)} clusters, {len(table)} faces")
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
            "summary": {
                "faces": len(table),
                "clusters": len(clusters),
                "unassigned": int((labels == -1).sum()),
                "not_a_face": int((labels == -2).sum()),
                "frames": len(frames),
                "tracks": int(tracks.max()) + 1 if len(tracks) else 0,
                "skipped_inputs": sum(1 for i in inputs if i["status"] == "skipped"),
            },
        }
        _move_into_place(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    # Timestamps live in their own file so that two runs on the same input give byte-identical manifests.
    write_atomic(out / MANIFEST, (json.dumps(manifest, indent=1, ensure_ascii=False) + "\n").encode())
    run_info = {"written_utc": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    write_atomic(out / "run.json", (json.dumps(run_info) + "\n").encode())
    return manifest


def _write_cast(root: Path, table: FaceTable, labels: np.ndarray, tracks: np.ndarray, shots: list,
                folders: dict[int, str], config: Config) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """cast.csv and one timeline per video (under ``root``); the manifest's ``cast`` and ``timelines``."""
    from .cast import build_cast, cast_csv, draw_timeline

    def crop_of(face_id: int) -> np.ndarray | None:
        return cv2.imread(str(root / _crop_path(face_id, folders[int(labels[face_id])])))

    members, spans = build_cast(table, labels, tracks, shots, config.sampling, crop_of, folders)
    (root / "cast.csv").write_text(cast_csv(members), encoding="utf-8")
    cast = [{"rank": r, **m.as_dict(), "cover": _crop_path(m.cover_face, m.folder)} for r, m in enumerate(members, 1)]
    timelines = []
    videos = list(dict.fromkeys(s for s, f in zip(table.sources, table.frames) if f is not None))
    if videos and members:
        (root / "timelines").mkdir()
    for source in videos:
        ends = [s.last_time for s in shots if s.source == source]
        ends += [table.times[i] + config.sampling.capture_interval_sec for i in range(len(table))
                 if table.sources[i] == source and table.times[i] is not None]
        image = f"timelines/{frame_stem(source, None)}.png"
        if members:
            draw_timeline(root / image, source, members, spans, shots, max(ends, default=0.0), crop_of)
            timelines.append({"source": source, "image": image})
    return cast, timelines


def _face_file(face_id: int) -> str:
    """The file name of a face's crop (and of its upper-body crop), in its person's folder."""
    return f"face_{face_id:06d}.jpg"


def _crop_path(face_id: int, folder: str) -> str:
    return f"people/{folder}/{_face_file(face_id)}"


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


def _write_people(
    root: Path, cache: FeatureCache, table: FaceTable, labels: np.ndarray, tracks: np.ndarray,
    folders: dict[int, str], config: Config,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    people = root / "people"
    people.mkdir()
    (root / "montages").mkdir()
    members: dict[int, list[int]] = {}
    faces = []
    for i, (face_jpg, body_jpg) in enumerate(cache.iter_crops()):
        cid = int(labels[i])
        folder = people / folders[cid]
        if cid not in members:
            (folder / "upper_body").mkdir(parents=True)
            members[cid] = []
        members[cid].append(i)
        name = _face_file(i)
        (folder / name).write_bytes(face_jpg)
        if body_jpg is not None:
            (folder / "upper_body" / name).write_bytes(body_jpg)
        faces.append(
            {
                "id": i,
                "source": table.sources[i],
                "frame": table.frames[i],
                "time_s": table.times[i],
                "bbox": [int(v) for v in table.bboxes[i]],
                "shot": int(table.shots[i]),
                "track": int(tracks[i]),
                "cluster": cid,
                "crop": _crop_path(i, folders[cid]),
                "upper_body_crop": f"people/{folders[cid]}/upper_body/{name}" if body_jpg is not None else None,
                "has_cloth_feature": bool(table.has_cloth[i]),
            }
        )
    clusters = []
    for cid in sorted(members):
        folder = folders[cid]
        picked = pick_evenly(len(members[cid]), config.output.montage_max_faces)
        crops = [cv2.imread(str(people / folder / _face_file(members[cid][j]))) for j in picked]
        title = f"{folder}: {len(members[cid])} faces"
        montage = make_montage([c for c in crops if c is not None], title, config.output.montage_cell)
        cv2.imwrite(str(root / "montages" / f"{folder}.jpg"), montage, [cv2.IMWRITE_JPEG_QUALITY, 90])
        if cid >= 0:
            clusters.append({"id": cid, "size": len(members[cid]), "folder": f"people/{folder}", "montage": f"montages/{folder}.jpg"})
    return faces, clusters


def _write_annotations(
    root: Path, table: FaceTable, labels: np.ndarray, frames: list[FrameInfo], folders: dict[int, str],
    config: Config,
) -> list[dict[str, Any]]:
    """One YOLO label file per sampled frame (empty when it has no face). Unassigned faces get the last class,
    'unassigned', so a detector trained on the set is not taught that those faces are background; what the user
    marked as not a face gets no label."""
    ann = root / "annotations"
    ann.mkdir()
    n_clusters = int(labels.max()) + 1 if len(labels) and labels.max() >= 0 else 0
    classes = [folders[c] for c in range(n_clusters)]
    has_unassigned = bool((labels == -1).any())
    if has_unassigned:
        classes.append("unassigned")
    (ann / "classes.txt").write_text("".join(c + "\n" for c in classes))
    by_frame: dict[tuple[str, int | None], list[int]] = {}
    for i, key in enumerate(zip(table.sources, table.frames)):
        by_frame.setdefault(key, []).append(i)
    out = []
    for info in frames:
        stem = frame_stem(info.source, info.frame)
        lines = []
        for i in by_frame.get((info.source, info.frame), []):
            if labels[i] == NOT_A_FACE:
                continue
            cls = int(labels[i]) if labels[i] >= 0 else n_clusters
            lines.append(yolo_line(cls, table.bboxes[i], info.width, info.height))
        (ann / f"{stem}.txt").write_text("".join(line + "\n" for line in lines))
        out.append(
            {
                "source": info.source,
                "frame": info.frame,
                "time_s": info.time_s,
                "width": info.width,
                "height": info.height,
                "labels": f"annotations/{stem}.txt",
                "image": f"frames/{stem}.jpg" if config.output.save_frames else None,
            }
        )
    return out


def _move_into_place(staging: Path, out: Path) -> None:
    for name in REBUILT:
        new = staging / name
        target = out / name
        if target.exists():
            old = staging / f"old-{name}"
            os.replace(target, old)
        if new.exists():
            os.replace(new, target)
