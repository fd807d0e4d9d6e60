"""Cost of the two merges within scenes when one scene holds many clusters (a studio audience, a long take).

    python evaluation/benchmark_merges.py [--clusters 200 1000 2000] [--repeat 3]

Synthetic, one scene: K clusters of 5 faces each, of K/10 people (128-d faces and 24-d clothes around each
person's centre, noise 0.02 per dimension), each cluster sharing a frame with 3 others drawn at random (of other
people): the pieces of each person join, into K/10 clusters. Times ``merge_within_scenes`` (clothing and face) and
``merge_by_rivals`` (face alone, on the scene merge's input, so that every piece is left for it to join), medians
of ``--repeat``. The last line is ``clusters=K scene_merge_s=S rival_merge_s=R`` for the largest K.

Measured once against the plain loop merge_by_rivals was up to f5ea467 (every pair's distance computed again
after each join), this script with that module: 2.98 s for 200 clusters and 28.83 s for 400, against 0.03 s and
0.12 s at its successor (2 cores); results in evaluation/results/merges.md. The rival merge runs with
``postprocess.rival_pieces`` on, as by default.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from person_cluster.constraints import CannotLinks
from person_cluster.postprocess import SceneMerge, merge_by_rivals, merge_within_scenes

PER_CLUSTER = 5


def scene_of(k: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, CannotLinks, np.ndarray]:
    """Labels, faces, clothes, cannot-links and each cluster's person of one synthetic scene of ``k`` clusters."""
    rng = np.random.default_rng(seed)
    people = max(2, k // 10)
    n = k * PER_CLUSTER
    who = rng.integers(0, people, k)
    labels = np.repeat(np.arange(k), PER_CLUSTER)
    faces = rng.normal(size=(people, 128))
    clothes = rng.normal(size=(people, 24))
    face = faces[who][labels] / np.sqrt(128) + rng.normal(scale=0.02, size=(n, 128))
    cloth = clothes[who][labels] / np.sqrt(24) + rng.normal(scale=0.02, size=(n, 24))
    i, j = [], []
    for c in range(k):
        for o in rng.choice(k, 3, replace=False):
            if who[o] != who[c]:
                i.append(c * PER_CLUSTER)
                j.append(o * PER_CLUSTER)
    return (labels, face.astype(np.float32), cloth.astype(np.float32),
            CannotLinks(np.array(i, np.int64), np.array(j, np.int64), n), who)


def timed(repeat: int, fn, *args) -> tuple[float, np.ndarray]:
    """Median seconds of ``fn(*args)`` over ``repeat`` calls, and its result."""
    seconds, out = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        out = fn(*args)
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clusters", type=int, nargs="+", default=[200, 1000, 2000])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    print("| clusters | people | scene merge s | clusters after | rival merge s | clusters after |")
    print("|---|---|---|---|---|---|")
    line = ""
    for k in args.clusters:
        labels, face, cloth, cannot, who = scene_of(k)
        merge = SceneMerge(np.zeros(len(labels), np.int64), 1.0, 0.5, 0.36)
        has = np.ones(len(labels), bool)
        s_scene, by_scene = timed(args.repeat, merge_within_scenes, labels, face, cloth, has, merge, cannot)
        s_rival, by_rivals = timed(args.repeat, merge_by_rivals, labels, face, merge, cannot)
        print(f"| {k} | {len(np.unique(who))} | {s_scene:.2f} | {by_scene.max() + 1} | {s_rival:.2f} | "
              f"{by_rivals.max() + 1} |", flush=True)
        line = f"clusters={k} scene_merge_s={s_scene:.2f} rival_merge_s={s_rival:.2f}"
    print(line)


if __name__ == "__main__":
    main()
