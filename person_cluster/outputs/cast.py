"""The cast: who the key characters are, by screen time, with a representative face and a timeline per video.

Screen time comes from tracks (see :mod:`person_cluster.tracking`): a track seen from ``t0`` to ``t1`` is on screen
from ``t0`` to ``t1`` plus one sampling interval (each sampled frame stands for the interval after it), never past
the end of its shot; in scene mode a face stands for its whole shot. A person's spans are united per video before
they are summed, so two tracks of one person at once (a mirror, with cannot-links off) are not counted twice.
Photos have no screen time; they count as appearances.

The representative face is picked among the person's most typical faces (descriptor closest to the person's mean:
frontal, unoccluded faces are the typical ones, profiles the outliers) as the best by rank of size, sharpness
(variance of the Laplacian of the face crop) and typicality together.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from ..config import SamplingConfig
from ..fusion import l2_normalize
from ..records import FaceTable
from ..sampling.shots import Shot
from ..tracking import Tracks
from .naming import cluster_folder

# Candidates for the representative face: this share of a person's faces, by typicality (at least 1, at most 40).
_TYPICAL_SHARE = 0.25
_MAX_CANDIDATES = 40


@dataclass
class CastMember:
    cluster: int
    folder: str
    screen_time_s: float | None  # None: seen in photos only
    faces: int
    appearances: int  # tracks in videos plus photos
    shots: int
    first_source: str
    first_time_s: float | None
    last_source: str
    last_time_s: float | None
    cover_face: int  # face id of the representative face

    def as_dict(self) -> dict:
        return asdict(self)


def screen_spans(sources: Sequence[str], times: Sequence[float | None], shot_ids: np.ndarray, labels: np.ndarray,
                 tracks: np.ndarray, shots: list[Shot], sampling: SamplingConfig
                 ) -> dict[int, dict[str, list[tuple[float, float]]]]:
    """Per label and video source: the united (start, end) seconds the person is on screen. One entry per face:
    its source, time (None: a photo), shot in its video, label (< 0: no one's) and track (a track's faces share
    one label). The cast and the review page both count screen time with this."""
    by_shot = {(s.source, s.index): s for s in shots}
    raw: dict[int, dict[str, list[tuple[float, float]]]] = {}
    for members in Tracks(np.asarray(tracks)).members():
        first, last = int(members[0]), int(members[-1])
        label, t0, t1 = int(labels[first]), times[first], times[last]
        if label < 0 or t0 is None:  # no one's, or a photo (a track is one photo, or faces of one video)
            continue
        shot = by_shot.get((sources[first], int(shot_ids[first])))
        if sampling.mode == "scene" and shot is not None:
            start, end = shot.first_time, shot.last_time + 1 / shot.fps
        else:
            start, end = t0, t1 + sampling.capture_interval_sec
            if shot is not None:
                end = min(end, shot.last_time + 1 / shot.fps)
        raw.setdefault(label, {}).setdefault(sources[first], []).append((start, max(start, end)))
    return {label: {src: _union(spans) for src, spans in per_source.items()} for label, per_source in raw.items()}


def _union(spans: list[tuple[float, float]]) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    for start, end in sorted(spans):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


def representative_face(members: np.ndarray, table: FaceTable, crop_of) -> int:  # crop_of: face id -> BGR or None
    """The face id that best shows the person (see the module docstring)."""
    face = l2_normalize(table.face[members])
    # Rounded: a resumed run cuts the CNN batches differently, which moves descriptors by ~1e-7; the pick must not.
    typicality = np.round(face @ l2_normalize(face.mean(axis=0, keepdims=True))[0], 3)
    k = int(np.clip(round(len(members) * _TYPICAL_SHARE), 1, _MAX_CANDIDATES))
    most_typical = np.argsort(-typicality, kind="stable")[:k]
    candidates = members[most_typical]
    boxes = table.bboxes[candidates]
    size = np.minimum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]).astype(float)
    sharp = np.array([_sharpness(crop_of(int(i))) for i in candidates])
    score = sum(_ranks(v) for v in (size, sharp, typicality[most_typical]))
    return int(candidates[int(np.argmax(score))])


def _ranks(v: np.ndarray) -> np.ndarray:
    return np.argsort(np.argsort(v, kind="stable"), kind="stable").astype(float)


def _sharpness(crop: np.ndarray | None) -> float:
    if crop is None or crop.size == 0:
        return 0.0
    grey = cv2.cvtColor(cv2.resize(crop, (96, 96), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2GRAY)
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


def build_cast(table: FaceTable, labels: np.ndarray, tracks: np.ndarray, shots: list[Shot],
               sampling: SamplingConfig, crop_of, folders: dict[int, str] | None = None,
               covers: dict[int, int] | None = None) -> tuple[list[CastMember], dict]:
    """Cast members ranked by screen time (then faces, then cluster id), and their screen spans. ``covers``:
    representative faces already chosen (label -> face id), for people whose faces did not change."""
    spans = screen_spans(table.sources, table.times, table.shots, labels, tracks, shots, sampling)
    members: list[CastMember] = []
    assigned = np.flatnonzero(labels >= 0)
    order = assigned[np.argsort(labels[assigned], kind="stable")]  # each person's faces, in face order
    bounds = np.flatnonzero(np.diff(labels[order])) + 1
    for idx in (np.split(order, bounds) if len(order) else []):
        label = int(labels[idx[0]])
        in_videos = [i for i in idx if table.frames[i] is not None]
        seconds = sum(end - start for per in spans.get(label, {}).values() for start, end in per)
        first, last = int(idx[0]), int(idx[-1])
        members.append(CastMember(
            cluster=label, folder=(folders or {}).get(label, cluster_folder(label)),
            screen_time_s=round(seconds, 2) if in_videos else None,
            faces=len(idx),
            appearances=len({int(tracks[i]) for i in idx}),
            shots=len({(table.sources[i], int(table.shots[i])) for i in in_videos if table.shots[i] >= 0}),
            first_source=table.sources[first], first_time_s=table.times[first],
            last_source=table.sources[last], last_time_s=table.times[last],
            cover_face=covers[label] if label in (covers or {}) and labels[covers[label]] == label
            else representative_face(idx, table, crop_of),
        ))
    members.sort(key=lambda m: (-(m.screen_time_s or 0.0), -m.faces, m.cluster))
    return members, spans


def cast_csv(members: list[CastMember]) -> str:
    out = io.StringIO()
    fields = ["rank", *CastMember.__dataclass_fields__]
    writer = csv.DictWriter(out, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for rank, m in enumerate(members, 1):
        writer.writerow({"rank": rank, **m.as_dict()})
    return out.getvalue()


def draw_timeline(path: Path, source: str, members: list[CastMember], spans: dict, shots: list[Shot],
                  duration: float, crop_of, max_rows: int = 40) -> None:
    """One row per person seen in ``source`` (ranked as ``members``), their face at the row's start, a bar where
    they are on screen; faint lines at the cuts."""
    from matplotlib.figure import Figure

    rows = [m for m in members if spans.get(m.cluster, {}).get(source)][:max_rows]
    n = max(1, len(rows))
    fig = Figure(figsize=(14, 1.0 + 0.45 * n), dpi=100)
    grid = fig.add_gridspec(1, 2, width_ratios=[0.5, 13.5], wspace=0.01)
    faces, bars = fig.add_subplot(grid[0]), fig.add_subplot(grid[1])
    cell = 48
    strip = np.full((cell * n, cell, 3), 255, np.uint8)
    for r, m in enumerate(rows):
        crop = crop_of(m.cover_face)
        if crop is not None and crop.size:
            strip[r * cell:(r + 1) * cell] = cv2.resize(crop, (cell, cell), interpolation=cv2.INTER_AREA)[:, :, ::-1]
    faces.imshow(strip, extent=(0, 1, n, 0), aspect="auto")
    faces.set_axis_off()
    for s in shots:
        if s.source == source and s.index > 0:
            bars.axvline(s.first_time, color="0.85", linewidth=0.6, zorder=0)
    for r, m in enumerate(rows):
        bars.broken_barh([(a, b - a) for a, b in spans[m.cluster][source]], (r + 0.15, 0.7), color=f"C{r % 10}")
    bars.set_ylim(n, 0)
    bars.set_xlim(0, max(duration, 1e-3))
    bars.set_yticks([r + 0.5 for r in range(len(rows))],
                    [f"{m.folder}  {m.screen_time_s or 0:.1f} s" for m in rows], fontsize=8)
    bars.yaxis.tick_right()
    bars.set_xlabel("seconds")
    bars.set_title(f"{Path(source).name}: who is on screen when", fontsize=10)
    fig.subplots_adjust(left=0.01, right=0.88, top=1 - 0.35 / (1.0 + 0.45 * n), bottom=0.5 / (1.0 + 0.45 * n))
    fig.savefig(path)
