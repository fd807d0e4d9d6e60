"""Face tracks: the faces of one person on consecutive sampled frames of one shot, linked before clustering.

Inside a shot, each sampled frame's faces are assigned to the tracks still open (last seen at most
``max_gap_sec`` earlier) by :func:`scipy.optimize.linear_sum_assignment` on the descriptor distance; a pair is
allowed only if it is close in the descriptor space (``max_face_distance``) *and* on screen (the centre moved by at
most ``max_shift`` box sizes, the size changed by less than 2x). A face no track takes starts one. Tracks never
cross a cut (shots come from :mod:`.sampling.shots`) and never hold two faces of one frame; photos give one-face
tracks. Tracks are computed from the cache at clustering time, so their settings can be tuned by ``cluster``.

A track is a must-link: clustering never separates its faces. So where the choice is not clear it ends the track
rather than guess (two people crossing, one face hiding another: a face that could continue two tracks, or a
track that could take two faces, at descriptor distances within ``ambiguity_margin`` of each other), and a track
whose two parts look like two people (their mean descriptors more than ``split_distance`` apart: a switch the gates
let through) is split where its parts differ most. A switch that passes that test too happens where the track's
face went undetected for a while: one person walked off, another took the place. At such a gap the track is split
where one part is nearer a person seen beside the other part than that other part is (``rival_split``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from .config import TrackingConfig
from .fusion import l2_normalize
from .records import FaceTable

_FORBIDDEN = 1e6


@dataclass
class Tracks:
    """``ids[i]``: the track of face ``i``, numbered 0.. in order of each track's first face."""

    ids: np.ndarray

    @property
    def count(self) -> int:
        return int(self.ids.max()) + 1 if len(self.ids) else 0

    @classmethod
    def singletons(cls, n: int) -> Tracks:
        return cls(np.arange(n, dtype=np.int64))

    @classmethod
    def by_first_face(cls, groups: np.ndarray) -> Tracks:
        """Any grouping of the faces, renumbered 0.. in order of each group's first face (face order is the
        cache's: input, frame, box)."""
        _, first, inverse = np.unique(groups, return_index=True, return_inverse=True)
        rank = np.empty(len(first), np.int64)
        rank[np.argsort(first, kind="stable")] = np.arange(len(first))
        return cls(rank[inverse])

    def cut_by(self, values: np.ndarray) -> Tracks:
        """These tracks, cut where ``values`` (an integer per face) differ within one: two faces share a track
        when they shared one and have the same value. Renumbered as :meth:`by_first_face` does."""
        _, groups = np.unique(np.stack([self.ids, values], axis=1), axis=0, return_inverse=True)
        return Tracks.by_first_face(groups)

    def mean(self, x: np.ndarray, mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Each track's mean of the L2-normalised rows of ``x`` (those in ``mask``), normalised again, and whether
        the track had any such row."""
        use = np.ones(len(x), bool) if mask is None else np.asarray(mask, bool)
        sums = np.zeros((self.count, x.shape[1]), np.float64)
        np.add.at(sums, self.ids[use], l2_normalize(x[use]))
        present = np.bincount(self.ids[use], minlength=self.count) > 0
        return l2_normalize(sums.astype(np.float32)), present

    def best(self, x: np.ndarray) -> np.ndarray:
        """Each track's largest value of ``x`` (one per face)."""
        out = np.full(self.count, -np.inf)
        np.fmax.at(out, self.ids, np.asarray(x, np.float64))
        return out

    def spans(self, table: FaceTable) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Each track's video (an index over the table's video sources; -1 for a photo) and first and last time."""
        videos: dict[str, int] = {}
        face_video = np.array([-1 if f is None else videos.setdefault(s, len(videos))
                               for s, f in zip(table.sources, table.frames)], np.int64)
        times = np.array(table.times, np.float64)  # None: NaN
        video = face_video[np.unique(self.ids, return_index=True)[1]]  # a track lies in one video
        start = np.full(self.count, np.inf)
        end = np.full(self.count, -np.inf)
        np.fmin.at(start, self.ids, times)
        np.fmax.at(end, self.ids, times)
        return video, np.nan_to_num(start, posinf=0.0), np.nan_to_num(end, neginf=0.0)

    def members(self) -> list[np.ndarray]:
        """Face indices of each track, in face order."""
        order = np.argsort(self.ids, kind="stable")
        return np.split(order, np.flatnonzero(np.diff(self.ids[order])) + 1) if len(order) else []


def link_tracks(table: FaceTable, config: TrackingConfig) -> Tracks:
    """Tracks of ``table``'s faces (one-face tracks for photos, or with ``tracking.enabled: false``)."""
    n = len(table)
    if not config.enabled:
        return Tracks.singletons(n)
    face = l2_normalize(table.face)
    boxes = table.bboxes.astype(np.float64)
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2
    size = np.maximum(boxes[:, 2:] - boxes[:, :2], 1).max(axis=1)
    track = np.full(n, -1, np.int64)
    next_id = 0
    # A video's faces are grouped by (source, shot), then by frame; photos (frame None) each start a track.
    groups: dict[tuple[str, int], dict[int, list[int]]] = {}
    for i in range(n):
        if table.frames[i] is None:
            track[i], next_id = next_id, next_id + 1
            continue
        groups.setdefault((table.sources[i], int(table.shots[i])), {}).setdefault(table.frames[i], []).append(i)
    for frames in groups.values():
        open_tracks: list[tuple[int, int]] = []  # (track id, its last face)
        for frame in sorted(frames):
            faces = frames[frame]
            now = table.times[faces[0]]
            open_tracks = [(t, last) for t, last in open_tracks
                           if now is None or table.times[last] is None or now - table.times[last] <= config.max_gap_sec]
            taken: set[int] = set()
            if open_tracks:
                last = np.array([f for _, f in open_tracks])
                cand = np.array(faces)
                cost = np.linalg.norm(face[last][:, None] - face[cand][None], axis=2)
                shift = np.linalg.norm(centre[last][:, None] - centre[cand][None], axis=2) / size[last][:, None]
                ratio = size[cand][None] / size[last][:, None]
                allowed = (cost <= config.max_face_distance) & (shift <= config.max_shift) & (ratio < 2) & (ratio > 0.5)
                rows, cols = linear_sum_assignment(np.where(allowed, cost, _FORBIDDEN))
                for r, c in zip(rows, cols):
                    if allowed[r, c] and not _ambiguous(cost, allowed, r, c, config.ambiguity_margin):
                        track[cand[c]] = open_tracks[r][0]
                        open_tracks[r] = (open_tracks[r][0], int(cand[c]))
                        taken.add(int(cand[c]))
            for i in faces:
                if i not in taken:
                    track[i], next_id = next_id, next_id + 1
                    open_tracks.append((int(track[i]), i))
    if config.split_distance is not None:
        track = split_inconsistent(Tracks.by_first_face(track), face, config.split_distance).ids
    if config.rival_split:
        tracks = Tracks.by_first_face(track)
        track = split_at_rivals(tracks, face, *_frames_and_gaps(table, tracks)).ids
    return Tracks.by_first_face(track)


def _frames_and_gaps(table: FaceTable, tracks: Tracks) -> tuple[np.ndarray, np.ndarray]:
    """Each face's frame (an integer over the table's (source, frame) pairs; -1 for a photo), and whether its track's
    previous face is more than one sampling step earlier (a gap: a sampled frame without the track's face). A
    video's step is the shortest time between two of its frames that hold faces."""
    keys: dict[tuple[str, int], int] = {}
    frame = np.array([-1 if f is None else keys.setdefault((s, f), len(keys))
                      for s, f in zip(table.sources, table.frames)], np.int64)
    times = np.array([np.nan if t is None else t for t in table.times], np.float64)
    by_source: dict[str, list[float]] = {}
    for source, t in zip(table.sources, table.times):
        if t is not None:
            by_source.setdefault(source, []).append(t)
    step = {}
    for source, t in by_source.items():
        dt = np.diff(np.unique(t))
        step[source] = float(dt.min()) if len(dt) else np.inf
    gap = np.zeros(len(table), bool)
    for members in tracks.members():
        if len(members) > 1:
            limit = 1.5 * step.get(table.sources[members[0]], np.inf)  # a track lies in one video
            gap[members[1:]] = np.diff(times[members]) > limit
    return frame, gap


def _ambiguous(cost: np.ndarray, allowed: np.ndarray, r: int, c: int, margin: float) -> bool:
    """Whether another allowed face for track ``r``, or another allowed track for face ``c``, is within ``margin``
    of the pair's distance: then which is whose is a guess."""
    if margin <= 0:
        return False
    near = cost[r, c] + margin
    others_r = allowed[r] & (cost[r] < near)
    others_c = allowed[:, c] & (cost[:, c] < near)
    return int(others_r.sum()) > 1 or int(others_c.sum()) > 1


def split_inconsistent(tracks: Tracks, face: np.ndarray, distance: float, min_part: int = 2) -> Tracks:
    """``tracks`` with every track whose parts (faces before and after some point, each at least ``min_part``)
    have mean descriptors (of the normalised ``face`` rows) more than ``distance`` apart split there, at the point
    where they differ most, and again inside each part."""
    ids = tracks.ids.copy()
    next_id = tracks.count
    todo = [m for m in tracks.members() if len(m) >= 2 * min_part]
    while todo:
        members = todo.pop()
        x = face[members].astype(np.float64)
        ahead = np.cumsum(x, axis=0)[min_part - 1:len(x) - min_part]  # sums of the first k faces, k >= min_part
        behind = x.sum(axis=0) - ahead  # sums of the rest
        gaps = np.linalg.norm(l2_normalize(ahead.astype(np.float32)) - l2_normalize(behind.astype(np.float32)), axis=1)
        k = int(np.argmax(gaps))
        if gaps[k] <= distance:
            continue
        cut = k + min_part
        ids[members[cut:]] = next_id
        next_id += 1
        todo += [part for part in (members[:cut], members[cut:]) if len(part) >= 2 * min_part]
    return Tracks(ids)


def split_at_rivals(tracks: Tracks, face: np.ndarray, frame: np.ndarray, gap: np.ndarray, min_part: int = 2) -> Tracks:
    """``tracks`` with every track split at a gap where the part on one side looks more like a rival than like the
    part on the other side.

    A switch the gates let through happens where a track's face was not seen for a while (one person walked off,
    another took the place): a face beside another face is the ambiguity check's. So a track is cut only at a gap,
    where ``gap`` (one per face) marks a face that follows a sampled frame in which its track had no face. A rival of
    a part is a track seen beside it (a face in one of its frames, so another person) and never beside the other
    part; where the other part's mean descriptor is nearer that rival's than the first part's, the track has switched
    to the rival's person. No threshold: the video's own people are the scale. ``frame``: each face's frame (an
    integer, -1 for a photo); parts of at least ``min_part`` faces, the cut with the strongest evidence, again
    inside each part."""
    ids = tracks.ids.copy()
    next_id = tracks.count
    means = tracks.mean(face)[0].astype(np.float64)
    by_frame: dict[int, list[int]] = {}
    for i, f in enumerate(frame.tolist()):
        if f >= 0:
            by_frame.setdefault(f, []).append(i)
    todo = [m for m in tracks.members() if len(m) >= 2 * min_part]
    while todo:
        members = todo.pop()
        cuts = min_part + np.flatnonzero(gap[members[min_part:len(members) - min_part + 1]])
        if not len(cuts):  # no gap: nothing to cut at
            continue
        first: dict[int, int] = {}
        last: dict[int, int] = {}
        for p, i in enumerate(members.tolist()):
            for j in by_frame.get(int(frame[i]), ()):  # the track itself too: beside both parts, never a rival
                first.setdefault(int(tracks.ids[j]), p)
                last[int(tracks.ids[j])] = p
        rivals = np.array(list(first), np.int64)
        r_first = np.array([first[r] for r in rivals])
        r_last = np.array([last[r] for r in rivals])
        x = face[members].astype(np.float64)
        ahead = np.cumsum(x, axis=0)[cuts - 1]
        behind = x.sum(axis=0) - ahead
        ahead /= np.linalg.norm(ahead, axis=1, keepdims=True)
        behind /= np.linalg.norm(behind, axis=1, keepdims=True)
        apart = np.linalg.norm(ahead - behind, axis=1)
        r = means[rivals]
        to_behind = np.linalg.norm(behind[:, None] - r[None], axis=2)  # (cuts, rivals)
        to_ahead = np.linalg.norm(ahead[:, None] - r[None], axis=2)
        # The part after the cut near a rival seen only before it, or the part before near one seen only after.
        nearest = np.minimum(np.where(r_last[None] < cuts[:, None], to_behind, np.inf),
                             np.where(r_first[None] >= cuts[:, None], to_ahead, np.inf)).min(axis=1)
        evidence = apart - nearest
        k = int(np.argmax(evidence))
        if evidence[k] <= 0:
            continue
        cut = int(cuts[k])
        ids[members[cut:]] = next_id
        next_id += 1
        todo += [part for part in (members[:cut], members[cut:]) if len(part) >= 2 * min_part]
    return Tracks(ids)
