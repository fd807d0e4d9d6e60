"""Speed of this checkout against an earlier commit, side by side: cold `person-cluster run`s, alternating.

    python evaluation/benchmark_commits.py --old 82f5774 [--repeat 3] [--videos A.mp4 B.mp4 ...]

The earlier commit is checked out into a temporary git worktree and run with the same virtualenv (PYTHONPATH
puts its package first); each video is run by both, old and new in turn, ``--repeat`` times, default config, a
fresh OUT each time. Prints each run and the medians with the ratio new / old (the target of a change that must
not slow the tool: at most 1.15). Default videos: the 10-minute 1280x720 benchmark video (evaluation/long_video.py)
and the Norton clip.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "evaluation"))
import long_video

NORTON = ROOT.parent / "shared" / "testdata" / "videos" / "qengineering_Norton_A.mp4"


def cold_run(tree: Path, video: Path, work: Path) -> float:
    out = work / "out"
    shutil.rmtree(out, ignore_errors=True)
    env = {**os.environ, "PYTHONPATH": str(tree)}
    started = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "person_cluster.cli", "run", str(video), "-o", str(out), "-q"],
                       env=env, cwd=work, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if r.returncode:
        raise SystemExit(f"{tree}: {r.stderr.strip()[-300:]}")
    return seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--old", required=True, help="the commit to compare with")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--videos", nargs="*", type=Path)
    args = ap.parse_args()
    videos = args.videos or [long_video.build(), NORTON]
    with tempfile.TemporaryDirectory() as tmp:
        old = Path(tmp) / "old"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(old), args.old], check=True,
                       capture_output=True)
        try:
            rows = []
            for video in videos:
                times: dict[str, list[float]] = {"old": [], "new": []}
                for k in range(args.repeat):
                    for name, tree in (("old", old), ("new", ROOT)):
                        times[name].append(cold_run(tree, video, Path(tmp)))
                        print(f"# {video.name} run {k + 1} {name}: {times[name][-1]:.2f} s", flush=True)
                o, n = statistics.median(times["old"]), statistics.median(times["new"])
                rows.append(f"| {video.name} | {o:.2f} | {n:.2f} | {n / o:.2f} |")
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(old)], check=False)
    print(f"| video | {args.old} s (median of {args.repeat}) | this checkout s | new / old |")
    print("|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
