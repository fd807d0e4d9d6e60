"""Clustering at scale through the same code path as ``person-cluster cluster`` (api.cluster_table).

    python evaluation/benchmark_scale.py --n 100000            # synthetic 256-d fused vectors (128 face + 128 cloth)
    python evaluation/benchmark_scale.py --n 100000 --lfw OUT  # LFW descriptors from a run's cache, with small noise
    python evaluation/benchmark_scale.py --lfw OUT --compare-exact   # kNN graph vs all pairs on the real LFW faces

Synthetic: one identity per 20 faces on average (Zipf-like sizes), each face = identity centre + Gaussian noise,
clothing drawn around a per-identity centre the same way. LFW: every detected face of the cache, replicated with
noise (std 0.01 per dimension) until there are N; identities are the LFW folders. The last line is
``n=N seconds=S peak_rss_gb=G bcubed_f=F`` (seconds = clustering + post-processing; peak RSS of this process).
"""

from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path

import numpy as np

from person_cluster.api import cluster_table, prepare_clustering
from person_cluster.cache import CACHE_NAME, FeatureCache
from person_cluster.config import Config
from person_cluster.evaluation import clustering_scores
from person_cluster.records import FaceTable


def synthetic(n: int, seed: int = 0) -> tuple[FaceTable, np.ndarray]:
    rng = np.random.default_rng(seed)
    n_id = max(1, n // 20)
    sizes = rng.zipf(1.8, n_id).astype(np.float64)
    truth = rng.choice(n_id, size=n, p=sizes / sizes.sum())
    face = np.empty((n, 128), np.float32)
    cloth = np.empty((n, 128), np.float32)
    for part, out in ((0, face), (1, cloth)):
        centres = rng.standard_normal((n_id, 128), dtype=np.float32)
        for s in range(0, n, 100_000):  # in blocks: keeps temporaries small at 1M faces
            t = truth[s:s + 100_000]
            out[s:s + len(t)] = centres[t] + 0.15 * rng.standard_normal((len(t), 128), dtype=np.float32)
    return _table(face, cloth, np.ones(n, bool)), truth


def lfw(out: Path, n: int | None, seed: int = 0) -> tuple[FaceTable, np.ndarray]:
    with FeatureCache.open_existing(out / CACHE_NAME) as cache:
        t = cache.load_table()
    truth_names = np.array([Path(s).parent.name for s in t.sources])
    _, truth = np.unique(truth_names, return_inverse=True)
    if n is None:
        return t, truth
    rng = np.random.default_rng(seed)
    pick = np.concatenate([np.arange(len(t))] * (n // len(t)) + [rng.choice(len(t), n % len(t), replace=False)])
    face = t.face[pick] + rng.normal(0, 0.01, (n, t.face.shape[1])).astype(np.float32)
    return _table(face, t.cloth[pick], t.has_cloth[pick]), truth[pick]


def _table(face: np.ndarray, cloth: np.ndarray, has: np.ndarray) -> FaceTable:
    n = len(face)
    # One photo per face: no two faces share a frame, so no cannot-links (as in a folder of portraits).
    return FaceTable(ids=np.arange(n), sources=[f"{k}.jpg" for k in range(n)], frames=[None] * n, times=[None] * n,
                     bboxes=np.zeros((n, 4), np.int64), face=face, cloth=cloth, has_cloth=has)


def measure(table: FaceTable, truth: np.ndarray, config: Config, phases: bool = False) -> tuple[float, float]:
    started = time.perf_counter()
    prepared = prepare_clustering(table, config)  # what cluster_table does first; timed apart
    found = time.perf_counter()
    labels = cluster_table(table, config, prepared)
    seconds = time.perf_counter() - started
    if phases:
        print(f"# distances (all pairs or kNN graph + exact fused distances) {found - started:.1f} s, "
              f"clustering + post-processing {seconds - (found - started):.1f} s, peak RSS so far "
              f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2:.2f} GB", flush=True)
    return seconds, clustering_scores(truth.astype(str), labels)["bcubed_f"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, help="number of faces (default: all LFW faces with --lfw)")
    ap.add_argument("--lfw", metavar="OUT", help="output folder of a run over lfw150 (its feature cache is used)")
    ap.add_argument("--compare-exact", action="store_true",
                    help="also cluster with all pairs (n <= dense_max_faces) and with the kNN graph; print both")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    args = ap.parse_args()
    config = Config().with_overrides(args.set)
    if args.lfw:
        table, truth = lfw(Path(args.lfw), args.n)
    else:
        table, truth = synthetic(args.n or 100_000)
    n = len(table)
    print(f"# {n} faces, {len(np.unique(truth))} identities, algorithm {config.clustering.algorithm}, "
          f"dense up to {config.clustering.dense_max_faces} faces")
    if args.compare_exact:
        for algorithm in ("hac", config.clustering.algorithm):
            cfg = config.with_overrides({"clustering.algorithm": algorithm})
            exact = measure(table, truth, cfg.with_overrides({"clustering.dense_max_faces": max(n, 2)}))
            graph = measure(table, truth, cfg.with_overrides({"clustering.dense_max_faces": 2}))
            print(f"# {algorithm}: all pairs bcubed_f={exact[1]:.4f} ({exact[0]:.1f} s), "
                  f"kNN graph bcubed_f={graph[1]:.4f} ({graph[0]:.1f} s), difference {graph[1] - exact[1]:+.4f}")
    seconds, f = measure(table, truth, config, phases=True)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    print(f"n={n} seconds={seconds:.1f} peak_rss_gb={peak:.2f} bcubed_f={f:.4f}")


if __name__ == "__main__":
    main()
