"""How the chip's alignment (``face.align``) changes the descriptors, on the features benchmark_quality.py cached.

    python evaluation/benchmark_alignment.py [--work DIR] [--only NAME ...]

Run evaluation/benchmark_quality.py first: it extracts every truth with each alignment into DIR/<name> (both, the
default), DIR/<name>-dlibalign (dlib's landmarks alone) and DIR/<name>-detalign (the detector's points alone; not
for LFW). For each, two figures that do not hang on one threshold:

* the ROC AUC of the face-descriptor distance between faces of the same person and of two people (faces the truth
  calls unknown left out; on LFW 4,000 faces drawn at random, seed 0): how well the descriptors separate people,
  before any clustering;
* the default clustering at ``clustering.distance_threshold`` 0.32 to 0.40 (the default 0.36 in the middle):
  NMI / BCubed F at each, and their mean. One threshold can fall on a lucky or an unlucky partition of a small
  clip (the living room's 442 faces); the mean over a band says whether the features are better.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from benchmark_quality import DATASETS, ROOT, cached
from sklearn.metrics import roc_auc_score

from person_cluster import api
from person_cluster.cache import CACHE_NAME
from person_cluster.evaluation import score
from person_cluster.fusion import l2_normalize

THRESHOLDS = (0.32, 0.34, 0.36, 0.38, 0.40)
ALIGNMENTS = {"both (default)": "", "dlib alone": "-dlibalign", "detector alone": "-detalign"}


def descriptor_auc(face: np.ndarray, faces: np.ndarray, identities: np.ndarray, most: int = 4000) -> float:
    known = identities != "unknown"
    faces, identities = faces[known], identities[known]
    if len(faces) > most:
        pick = np.random.default_rng(0).choice(len(faces), most, replace=False)
        faces, identities = faces[pick], identities[pick]
    f = l2_normalize(face[faces])
    i, j = np.triu_indices(len(faces), 1)
    distance = np.linalg.norm(f[i] - f[j], axis=1)
    return float(roc_auc_score(identities[i] == identities[j], -distance))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", default=str(ROOT / "evaluation" / "work" / "quality"))
    ap.add_argument("--only", nargs="*", choices=list(DATASETS), help="datasets (default: all)")
    args = ap.parse_args()
    work = Path(args.work)
    head = ["dataset", "alignment", "descriptor ROC AUC", *(f"NMI / BCubed F at {t}" for t in THRESHOLDS), "mean"]
    print("| " + " | ".join(head) + " |\n|" + "---|" * len(head))
    for name in args.only or list(DATASETS):
        truth = DATASETS[name][1]
        for label, suffix in ALIGNMENTS.items():
            out = work / f"{name}{suffix}"
            if not (out / CACHE_NAME).exists():
                print(f"# {out}: not extracted (run evaluation/benchmark_quality.py)", file=sys.stderr)
                continue
            table, match, config = cached(out, str(truth))
            auc = descriptor_auc(table.face, np.asarray(match.faces), np.asarray(match.identities))
            prepared = api.prepare_clustering(table, config)  # the distances do not depend on the threshold
            scores = []
            for t in THRESHOLDS:
                s = score(match, api.cluster_table(table, config.with_overrides(
                    {"clustering.distance_threshold": t}), prepared), table.sources, table.frames)
                scores.append((s["nmi"], s["bcubed_f"]))
            mean = np.mean(scores, axis=0)
            cells = [f"{a:.3f} / {b:.3f}" for a, b in scores]
            print(f"| {name} | {label} | {auc:.3f} | " + " | ".join(cells) + f" | {mean[0]:.3f} / {mean[1]:.3f} |",
                  flush=True)


if __name__ == "__main__":
    main()
