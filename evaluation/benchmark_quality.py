"""Clustering quality on LFW and on the hand-labelled Norton clip: seed baselines and this project side by side.

    python evaluation/benchmark_quality.py [--lfw-out OUT] [--norton-out OUT] [--markdown FILE]

Extracts each dataset once into its OUT (default: evaluation/work/...; a second run re-uses the feature cache),
then clusters the cached features with every method below and scores them with `person-cluster evaluate`'s code:

* LFW (../shared/testdata/faces/lfw150, all 13,232 photos; ~15 min of extraction on 2 cores): identity = folder,
  the face nearest the photo centre carries it (``--truth folders``).
* Norton (../shared/testdata/videos/qengineering_Norton_A.mp4 with its hand truth): sampled every 0.25 s = every
  6th frame, the frames the truth labels. Face-only and face+clothing.
* friends_kitchen (../shared/testdata/videos/friends_kitchen_clip.mp4, 4 people over ~10 shots, with its hand
  truth): sampled every 0.2002002 s = every 6th frame at 29.97 frames/s, the frames the truth labels.

Methods (seed rows reproduce the seed projects' clustering on our dlib descriptors):
* seed 000/002: DBSCAN eps 0.5, min_samples 5 on raw (unnormalised) dlib descriptors.
* seed 004: average-linkage HAC cut at (1 - 0.63) x the largest pairwise distance, clusters merged when their face
  centroids are closer than 0.18 (clothing 0.12), clusters under 6 faces dropped (scored as singletons).
* dlib Chinese whispers at 0.5 on raw descriptors (dlib's face-clustering example).
* rank-order (Zhu et al. 2011) with this project's rank settings, on the fused features.
* HAC: the previous default, and the best HAC cut found on LFW.
* this project's default config as shipped (tracks and cannot-links on the videos), the same on independent faces
  (no tracks, no cannot-links, clothing compared across the whole video: the default before video structure),
  and its face-only twin. LFW photos are head shots: 99.4% of the faces
  have no clothing region, so on LFW the default is already face-only.
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np
from scipy.spatial.distance import pdist

from person_cluster import api
from person_cluster.cache import CACHE_NAME, FeatureCache
from person_cluster.clustering import ChineseWhispersClustering, DBSCANClustering, DenseDistances, HACClustering
from person_cluster.config import Config
from person_cluster.evaluation import load_truth, score
from person_cluster.postprocess import postprocess

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "testdata"
LFW = SHARED / "faces" / "lfw150"
NORTON = SHARED / "videos" / "qengineering_Norton_A.mp4"
NORTON_TRUTH = SHARED / "truth" / "qengineering_Norton_A.truth.csv"
FRIENDS = SHARED / "videos" / "friends_kitchen_clip.mp4"
FRIENDS_TRUTH = SHARED / "truth" / "friends_kitchen_clip.truth.csv"
COLUMNS = ("nmi", "ari", "pairwise_precision", "pairwise_recall", "pairwise_f", "bcubed_precision",
           "bcubed_recall", "bcubed_f", "purity", "n_clusters", "n_identities", "n_faces_scored", "coverage",
           "detection_recall", "same_frame_pairs")


def extract_once(inputs: list[str], out: Path, config: Config) -> None:
    """Extract into OUT unless it already holds a run with these extraction settings."""
    if (out / "manifest.json").exists():
        with FeatureCache.open_existing(out / CACHE_NAME) as cache:
            stored = cache.get_meta("extraction") or {}
        if stored.get("extraction") == {**config.extraction_dict(), "inputs": inputs}:
            return
        print(f"# {out} was extracted with other settings: extracting again", file=sys.stderr)
    started = time.perf_counter()
    api.run(inputs, out, config, overwrite=True, progress=False)
    print(f"# extracted {inputs[0]} into {out} in {time.perf_counter() - started:.0f} s", file=sys.stderr)


def seed000(table, config) -> np.ndarray:
    return DBSCANClustering(eps=0.5, min_samples=5).fit_predict(DenseDistances(pdist(table.face), len(table)))


def seed004(table, config) -> np.ndarray:
    d = DenseDistances(pdist(table.face / np.linalg.norm(table.face, axis=1, keepdims=True)), len(table))
    labels = HACClustering(distance_threshold=(1 - 0.63) * float(d.condensed.max())).fit_predict(d)
    post = Config().with_overrides({"postprocess.merge_face_threshold": 0.18,
                                    "postprocess.merge_cloth_threshold": 0.12, "postprocess.min_csize": 6})
    return postprocess(labels, table.face, table.cloth, table.has_cloth, post.postprocess)


def dlib_cw(table, config) -> np.ndarray:
    return ChineseWhispersClustering(0.5).fit_predict(DenseDistances(pdist(table.face), len(table)))


def ours(overrides: dict):
    def method(table, config) -> np.ndarray:
        return api.cluster_table(table, config.with_overrides(overrides))
    return method


# The default's face-only twin: a pair without clothing features is judged at face distance x sqrt(1 + w^2)
# (see fusion.py), so cloth_weight 0 with threshold / sqrt(1 + w^2) is the same face cut as the default on LFW.
FACE_ONLY = {"fusion.cloth_weight": 0.0,
             "clustering.distance_threshold": round(Config().clustering.distance_threshold / np.sqrt(1.25), 4)}
# What the default was before video structure: every face on its own, clothing compared across the whole video.
INDEPENDENT = {"tracking.enabled": False, "clustering.cannot_link": False, "fusion.cloth_window_sec": None}
METHODS = {
    "seed 000/002: DBSCAN eps 0.5, min_samples 5": seed000,
    "seed 004: HAC sim 0.63, min_csize 6, merge 0.18/0.12": seed004,
    "dlib Chinese whispers 0.5 (raw descriptors)": dlib_cw,
    "rank-order (Zhu 2011), K 20, t 14": ours({"clustering.algorithm": "rank_order"}),
    "HAC average 0.40 + merge 0.30 (v0.1 default)": ours({"clustering.algorithm": "hac",
                                                          "clustering.distance_threshold": 0.40,
                                                          "postprocess.merge_face_threshold": 0.30}),
    "HAC average, face-only 0.36 (best HAC cut on LFW)": ours({"clustering.algorithm": "hac",
                                                               "fusion.cloth_weight": 0.0,
                                                               "clustering.distance_threshold": 0.36,
                                                               "postprocess.merge_face_threshold": None}),
    "default, face-only (cloth_weight 0, same face cut)": ours(FACE_ONLY),
    "default on independent faces (no tracks, no cannot-links, clothing always compared)": ours(INDEPENDENT),
    "**default** (tracks + cannot-links; Chinese whispers 0.36, face + clothing 0.5 within 10 s)": ours({}),
}


def evaluate(name: str, out: Path, truth: str, config: Config) -> list[list[str]]:
    with FeatureCache.open_existing(out / CACHE_NAME) as cache:
        table, sampled = cache.load_table(), cache.frames()
    match = load_truth(truth).match(table.sources, table.frames, table.bboxes, sampled)
    rows = []
    for method_name, method in METHODS.items():
        started = time.perf_counter()
        labels = method(table, config)
        seconds = time.perf_counter() - started
        s = score(match, labels, table.sources, table.frames)
        rows.append([name, method_name] + [f"{s[k]:.3f}" if isinstance(s[k], float) else str(s[k]) for k in COLUMNS]
                    + [f"{seconds:.1f}"])
        print(" | ".join(rows[-1]), file=sys.stderr)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lfw-out", default=str(ROOT / "evaluation" / "work" / "lfw"))
    ap.add_argument("--norton-out", default=str(ROOT / "evaluation" / "work" / "norton_6f"))
    ap.add_argument("--friends-out", default=str(ROOT / "evaluation" / "work" / "friends_6f"))
    ap.add_argument("--markdown", help="also write the table, with date and commit, to this file")
    args = ap.parse_args()
    config = Config()
    norton_config = config.with_overrides({"sampling.capture_interval_sec": 0.25})
    extract_once([str(LFW)], Path(args.lfw_out), config)
    extract_once([str(NORTON)], Path(args.norton_out), norton_config)
    friends_config = config.with_overrides({"sampling.capture_interval_sec": 0.2002002})
    extract_once([str(FRIENDS)], Path(args.friends_out), friends_config)
    rows = evaluate("LFW", Path(args.lfw_out), "folders", config)
    rows += evaluate("Norton (every 6th frame)", Path(args.norton_out), str(NORTON_TRUTH), norton_config)
    rows += evaluate("friends_kitchen (every 6th frame)", Path(args.friends_out), str(FRIENDS_TRUTH), friends_config)
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], check=False, capture_output=True,
                            text=True).stdout.strip()
    head = ["dataset", "method", *COLUMNS, "seconds"]
    lines = [(f"Measured {date.today().isoformat()} at commit {commit} on {platform.machine()}, "
              f"`python evaluation/benchmark_quality.py` (clustering seconds exclude extraction)."), "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.markdown:
        Path(args.markdown).write_text(text)


if __name__ == "__main__":
    main()
