"""Adding a clip to a large library: time and peak memory of a cold `person-cluster add`, side by side.

    python evaluation/benchmark_library.py --lfw OUT [--n 100000] [--repeat 3] [--work DIR]

OUT is a clustered run over lfw150 (15,986 faces; e.g. evaluation/work/quality/lfw from benchmark_quality.py).
Two libraries, each copied afresh for every repetition, get `person-cluster add LIB qengineering_Norton_A.mp4`
(33 s, 69 faces) run as a user runs it, a new process, under /usr/bin/time:

* lfw: a copy of OUT (targets: <= 20 s, <= 3 GB);
* n: a library of N photos' faces (default 100,000) built once into DIR/library_<N>: LFW's descriptors replicated
  with noise (std 0.01 per dimension), each with a real LFW crop, one photo input each, clustered once by
  `person-cluster cluster` (targets for the add: <= 60 s, <= 4 GB).

Medians over the repetitions, with what the add wrote (run.json).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from person_cluster.cache import CACHE_NAME, FeatureCache
from person_cluster.records import Box, FaceRecord, FrameInfo

ROOT = Path(__file__).resolve().parents[1]
NORTON = ROOT.parent / "shared" / "testdata" / "videos" / "qengineering_Norton_A.mp4"
CLI = [sys.executable, "-m", "person_cluster.cli"]


def build_library(lfw: Path, dest: Path, n: int, seed: int = 0) -> Path:
    """A clustered OUT of ``n`` photo faces made from ``lfw``'s cache (see the module docstring)."""
    if (dest / "manifest.json").is_file():
        return dest
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    with FeatureCache.open_existing(lfw / CACHE_NAME) as src, FeatureCache(dest / CACHE_NAME) as lib:
        table = src.load_table()
        crops = list(src.iter_crops())
        for key in ("schema_version", "extraction", "config"):
            lib.set_meta(key, src.get_meta(key))
        pick = np.concatenate([np.arange(len(table))] * (n // len(table)) + [rng.choice(len(table), n % len(table),
                                                                                          replace=False)])
        with lib.transaction():
            for k, i in enumerate(pick.tolist()):
                source = f"library/{k // 1000:03d}/photo_{k:06d}.jpg"
                face = table.face[i] + rng.normal(0, 0.01, 128).astype(np.float32)
                box = Box(*(int(v) for v in table.bboxes[i]))
                lib.set_input(k, source, "image", "done")
                lib.add_frame(FrameInfo(source, None, None, 150, 150),
                              [FaceRecord(source, None, None, box, float(table.scores[i]), face,
                                          table.cloth[i] if table.has_cloth[i] else None, crops[i][0], crops[i][1])])
    r = subprocess.run([*CLI, "cluster", str(dest), "-q"], capture_output=True, text=True, check=False)
    if r.returncode:
        raise SystemExit(f"clustering the library failed: {r.stderr.strip()}")
    return dest


def timed_add(library: Path, work: Path) -> dict[str, float | str]:
    copy = work / f"{library.name}.add"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(library, copy)
    started = time.perf_counter()
    r = subprocess.run(["/usr/bin/time", "-v", *CLI, "add", str(copy), str(NORTON), "-q"], capture_output=True,
                       text=True, check=False)
    seconds = time.perf_counter() - started
    if r.returncode:
        raise SystemExit(f"add failed: {r.stderr.strip()[-500:]}")
    peak = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", r.stderr)[1]) / 1024**2
    run = json.loads((copy / "run.json").read_text())
    faces = json.loads((copy / "manifest.json").read_text())["summary"]["faces"]
    shutil.rmtree(copy)
    return {"seconds": seconds, "peak_gb": peak, "faces": faces, "written": run["people_written"],
            "kept": run["people_kept"], "plot": run["plot"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lfw", required=True, help="a clustered run over lfw150")
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--work", default=str(ROOT / "evaluation" / "work" / "library"))
    args = ap.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    big = build_library(Path(args.lfw), work / f"library_{args.n}", args.n)
    print(f"# library of {args.n} faces ready in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    libraries = {"lfw": Path(args.lfw), str(args.n): big}
    runs: dict[str, list[dict]] = {name: [] for name in libraries}
    for k in range(args.repeat):  # alternating, so that both see the same machine load
        for name, lib in libraries.items():
            runs[name].append(timed_add(lib, work))
            print(f"# {name} run {k + 1}: {runs[name][-1]}", file=sys.stderr)
    print("| library | faces after | add s (median) | runs s | peak GB (median) | people written / kept | plot |")
    print("|---|---|---|---|---|---|---|")
    for name, rs in runs.items():
        each = ", ".join(f"{r['seconds']:.1f}" for r in rs)
        print(f"| {name} | {rs[0]['faces']} | {statistics.median(r['seconds'] for r in rs):.1f} | {each} | "
              f"{statistics.median(r['peak_gb'] for r in rs):.2f} | {rs[0]['written']} / {rs[0]['kept']} | "
              f"{rs[0]['plot']} |")


if __name__ == "__main__":
    main()
