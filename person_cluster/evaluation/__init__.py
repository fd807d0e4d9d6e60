"""Evaluation: score a run's clusters against ground truth (``person-cluster evaluate``), and sweep settings
over the cached features (``person-cluster sweep``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..layout import read_manifest
from ..records import FrameInfo
from .metrics import METRIC_KEYS, clustering_scores, same_frame_pairs
from .truth import CsvTruth, FolderTruth, TruthError, TruthMatch, load_truth


def score(match: TruthMatch, labels: np.ndarray, sources: list[str], frames: list[int | None]) -> dict[str, Any]:
    """Every metric for the scored faces of ``match`` under ``labels`` (one per detection of the run, which are
    in ``sources`` and ``frames``)."""
    out = clustering_scores(match.identities, np.asarray(labels)[match.faces])
    out["same_frame_pairs"] = same_frame_pairs(sources, frames, labels)
    out["detection_recall"] = match.detection_recall
    out["n_truth_faces"] = match.n_truth
    out["n_truth_left_out"] = match.n_left_out
    return {k: out[k] for k in (*METRIC_KEYS, "n_truth_faces", "n_truth_left_out")}


def evaluate_out(out: str | Path, truth: str) -> dict[str, Any]:
    """Score the clusters in OUT/manifest.json against ``truth`` (``folders`` or a CSV file)."""
    manifest = read_manifest(out)
    faces, frames = manifest["faces"], manifest["frames"]
    sampled = [FrameInfo(f["source"], f["frame"], f["time_s"], f["width"], f["height"]) for f in frames]
    bboxes = np.array([f["bbox"] for f in faces], np.int64).reshape(-1, 4)
    sources, frame_ids = [f["source"] for f in faces], [f["frame"] for f in faces]
    match = load_truth(truth).match(sources, frame_ids, bboxes, sampled)
    return score(match, np.array([f["cluster"] for f in faces], np.int64), sources, frame_ids)


__all__ = ["METRIC_KEYS", "CsvTruth", "FolderTruth", "TruthError", "TruthMatch", "clustering_scores",
           "evaluate_out", "load_truth", "score"]
