"""Ground truth for evaluation, and the matching of a run's detections to it.

Two kinds, as ``--truth`` names them:

* ``folders``: a photo's identity is the name of its parent folder, carried by the detected face closest to the
  image centre (the LFW convention); other faces in the photo are not scored.
* a CSV file ``source,frame,left,top,right,bottom,identity``: boxes in original pixels (right/bottom exclusive),
  ``frame`` empty for photos, ``source`` matched by file name. A detection matches a truth box of the same frame
  at IoU >= 0.5, one-to-one, best IoU first. Identities ``unknown`` and ``not_a_face`` are not scored; truth rows on
  frames the run did not sample are left out (and counted), so a truth file made at any sampling rate works.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path, PurePath

import numpy as np

from ..errors import PersonClusterError
from ..records import FrameInfo

IOU_MIN = 0.5
NOT_SCORED = ("unknown", "not_a_face")
CSV_COLUMNS = ("source", "frame", "left", "top", "right", "bottom", "identity")


class TruthError(PersonClusterError, ValueError):
    """The truth cannot be used; the message is one line naming the file and the problem."""


@dataclass
class TruthMatch:
    """Which detections carry a known identity, and how much of the truth the run could be scored on."""

    faces: np.ndarray  # (m,) indices of the scored detections
    identities: list[str]  # (m,) their true identities
    n_truth: int  # truth faces on sampled frames (not_a_face excluded): the detection-recall denominator
    n_detected: int  # of those, the ones matched to a detection
    n_left_out: int  # truth rows on frames (or sources) the run did not sample

    @property
    def detection_recall(self) -> float:
        return self.n_detected / self.n_truth if self.n_truth else 0.0


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU between every box of ``a`` (n, 4) and of ``b`` (m, 4): an (n, m) array."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    w = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    h = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    inter = w * h
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def greedy_match(overlaps: np.ndarray, minimum: float = IOU_MIN) -> list[tuple[int, int]]:
    """One-to-one (row, column) pairs, best overlap first, each at least ``minimum``."""
    rows, cols = np.nonzero(overlaps >= minimum)
    order = np.argsort(-overlaps[rows, cols], kind="stable")
    used_r, used_c, pairs = set(), set(), []
    for k in order:
        r, c = int(rows[k]), int(cols[k])
        if r not in used_r and c not in used_c:
            used_r.add(r)
            used_c.add(c)
            pairs.append((r, c))
    return pairs


def _by_frame(sources: list[str], frames: list[int | None]) -> dict[tuple[str, int | None], list[int]]:
    out: dict[tuple[str, int | None], list[int]] = {}
    for i, key in enumerate(zip(sources, frames)):
        out.setdefault(key, []).append(i)
    return out


class FolderTruth:
    """Identity = parent folder name; the face nearest the image centre carries it."""

    def match(self, sources: list[str], frames: list[int | None], bboxes: np.ndarray,
              sampled: list[FrameInfo]) -> TruthMatch:
        faces_of = _by_frame(sources, frames)
        scored, identities, n_truth = [], [], 0
        for info in sampled:
            if info.frame is not None:
                continue  # a video frame has no folder identity
            n_truth += 1
            found = faces_of.get((info.source, None), [])
            if not found:
                continue
            boxes = np.asarray(bboxes[found], np.float64)
            centres = (boxes[:, :2] + boxes[:, 2:]) / 2
            off = np.hypot(centres[:, 0] - info.width / 2, centres[:, 1] - info.height / 2)
            scored.append(found[int(np.argmin(off))])
            identities.append(PurePath(info.source).parent.name)
        if n_truth == 0:
            raise TruthError("--truth folders: the run holds no photos (folder identities apply to photos only)")
        return TruthMatch(np.asarray(scored, np.int64), identities, n_truth, len(scored), 0)


@dataclass(frozen=True)
class _Row:
    source: str
    frame: int | None
    box: tuple[int, int, int, int]
    identity: str


class CsvTruth:
    """Hand-labelled boxes from a CSV file."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self.rows = self._read(Path(path))

    def _read(self, path: Path) -> list[_Row]:
        try:
            with open(path, newline="", encoding="utf-8-sig") as f:
                reader = csv.DictReader(f)
                missing = [c for c in CSV_COLUMNS if c not in (reader.fieldnames or [])]
                if missing:
                    raise TruthError(f"{path}: missing column(s) {', '.join(missing)}; expected {','.join(CSV_COLUMNS)}")
                rows = [self._row(path, reader.line_num, r) for r in reader]
        except OSError as exc:
            raise TruthError(f"{path}: cannot read truth file ({exc.strerror or exc})") from None
        except (UnicodeDecodeError, csv.Error) as exc:
            raise TruthError(f"{path}: not a CSV text file ({exc})") from None
        if not rows:
            raise TruthError(f"{path}: truth file has no rows")
        return rows

    @staticmethod
    def _row(path: Path, line: int, r: dict[str, str]) -> _Row:
        try:
            frame = int(r["frame"]) if (r["frame"] or "").strip() else None
            box = tuple(round(float(r[k])) for k in ("left", "top", "right", "bottom"))
        except (TypeError, ValueError):
            raise TruthError(f"{path}, line {line}: frame and box must be numbers") from None
        if box[2] <= box[0] or box[3] <= box[1]:
            raise TruthError(f"{path}, line {line}: empty box (right <= left or bottom <= top)")
        identity = (r["identity"] or "").strip()
        if not identity or not (r["source"] or "").strip():
            raise TruthError(f"{path}, line {line}: source and identity must not be empty")
        return _Row(r["source"].strip(), frame, box, identity)  # type: ignore[arg-type]

    def match(self, sources: list[str], frames: list[int | None], bboxes: np.ndarray,
              sampled: list[FrameInfo]) -> TruthMatch:
        # Truth names sources by file name; a run may name them with any folder in front.
        names = {PurePath(info.source).name: info.source for info in sampled}
        sampled_keys = {(info.source, info.frame) for info in sampled}
        truth_of: dict[tuple[str, int | None], list[_Row]] = {}
        left_out = 0
        for row in self.rows:
            key = (names.get(PurePath(row.source).name, ""), row.frame)
            if key in sampled_keys:
                truth_of.setdefault(key, []).append(row)
            else:
                left_out += 1
        if not truth_of:
            raise TruthError(f"{self.path}: no truth row is on a frame this run sampled "
                             f"(truth sources: {', '.join(sorted({r.source for r in self.rows})[:3])})")
        faces_of = _by_frame(sources, frames)
        scored, identities, n_truth, n_detected = [], [], 0, 0
        for key in sorted(truth_of, key=lambda k: (k[0], -1 if k[1] is None else k[1])):
            rows = [r for r in truth_of[key] if r.identity != "not_a_face"]
            n_truth += len(rows)
            found = faces_of.get(key, [])
            if not rows or not found:
                continue
            pairs = greedy_match(iou(bboxes[found], np.array([r.box for r in rows])))
            n_detected += len(pairs)
            for d, t in sorted(pairs):
                if rows[t].identity not in NOT_SCORED:
                    scored.append(found[d])
                    identities.append(rows[t].identity)
        return TruthMatch(np.asarray(scored, np.int64), identities, n_truth, n_detected, left_out)


def load_truth(spec: str) -> FolderTruth | CsvTruth:
    """``folders`` or the path of a CSV truth file."""
    if spec == "folders":
        return FolderTruth()
    if not Path(spec).is_file():
        raise TruthError(f"{spec}: no such truth file (use --truth folders or a CSV file)")
    return CsvTruth(spec)
