"""NMI of the clustering on the hand-labelled Norton clip, over a grid of fusion/clustering settings.

Usage (the truth labels every 6th frame, so sample at 0.25 s = 6 frames at 24 fps):
    person-cluster run ../shared/testdata/videos/qengineering_Norton_A.mp4 -o out_norton \
        --set sampling.capture_interval_sec=0.25
    python evaluation/norton_grid.py out_norton [--truth path/to/truth.csv]

Re-clusters from OUT's feature cache only. A detection is matched to the truth box of the same frame with the
highest IoU (>= 0.5); identities 'unknown' and 'not_a_face' are not scored; unassigned faces count as singletons.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from person_cluster.api import cluster_table
from person_cluster.cache import CACHE_NAME, FeatureCache
from person_cluster.config import Config

DEFAULT_TRUTH = Path(__file__).resolve().parents[2] / "shared/testdata/truth/qengineering_Norton_A.truth.csv"


def iou(a: list[int], b: list[int]) -> float:
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--truth", default=str(DEFAULT_TRUTH))
    args = ap.parse_args()
    with FeatureCache.open_existing(Path(args.out) / CACHE_NAME) as cache:
        table = cache.load_table()
    truth: dict[int, list[tuple[list[int], str]]] = {}
    for r in csv.DictReader(open(args.truth, newline="")):
        box = [int(r[k]) for k in ("left", "top", "right", "bottom")]
        truth.setdefault(int(r["frame"]), []).append((box, r["identity"]))
    idx, ids = [], []
    for i in range(len(table)):
        cands = [(iou(table.bboxes[i].tolist(), box), name) for box, name in truth.get(table.frames[i], [])]
        best = max(cands, default=(0.0, ""))
        if best[0] >= 0.5 and best[1] not in ("unknown", "not_a_face"):
            idx.append(i)
            ids.append(best[1])
    print(f"faces {len(table)}, matched to a named truth box {len(idx)}, identities {len(set(ids))}")
    sel = np.array(idx)
    print("| cloth_weight | threshold | merge | NMI | ARI | clusters |\n|---|---|---|---|---|---|")
    for cw in (0.0, 0.3, 0.5, 0.7, 1.0):
        for th in (0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6):
            for merge in (None, 0.3):
                cfg = Config().with_overrides({"fusion.cloth_weight": cw, "clustering.distance_threshold": th,
                                               "postprocess.merge_face_threshold": merge, "postprocess.min_csize": 1})
                labels = cluster_table(table, cfg)[sel]
                single = labels < 0
                labels[single] = 100_000 + np.arange(single.sum())
                print(f"| {cw} | {th} | {merge} | {normalized_mutual_info_score(ids, labels):.3f} | "
                      f"{adjusted_rand_score(ids, labels):.3f} | {len(set(labels))} |")


if __name__ == "__main__":
    main()
