"""The local engine against the Ray engine on one set of videos, side by side, and clustering at archive scale.

    python evaluation/benchmark_engines.py [--repeat 3] [--chunk-sec 120] [--faces 1000000] [--no-scale]

The set (issue 18): the 10-minute 1280x720 benchmark video (evaluation/long_video.py), friends_kitchen and
Norton, in one ``person-cluster run``. Each measurement is a cold run as a user makes it, in a fresh process, with
the default config: ``--set runtime.engine=local`` against ``--set runtime.engine=ray --set
runtime.chunk_sec=N`` (a Ray started for the run on this machine, one actor per core, and stopped after it),
alternating, medians of ``--repeat``. Every run's manifest must equal the first local run's (less the runtime
settings it records); the script stops otherwise.

Per-unit times come from the Ray runs' debug log (one line per unit: its frames, faces and seconds in its actor,
which had one CPU slot), and give the estimate printed at the end: what 75 hours of such video cost on N workers.
The archive-scale figure is the clustering of ``--faces`` synthetic faces (evaluation/benchmark_scale.py's
generator and code path, in a process of its own): seconds and peak memory.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import long_video

ROOT = Path(__file__).resolve().parents[1]
VIDEOS = ROOT.parent / "shared" / "testdata" / "videos"
CLIPS = ("friends_kitchen_clip.mp4", "qengineering_Norton_A.mp4")
_SECONDS = re.compile(r"seconds: extraction ([\d.]+) .*clustering and outputs ([\d.]+)")
_UNIT = re.compile(r"unit (.+?)(?: frames (\d+)-(\d+))?: (\d+) frames, (\d+) faces, ([\d.]+) s on (\S+)")
ARCHIVE_HOURS = 75


def run_cli(inputs: list[Path], overrides: list[str]) -> dict:
    """A cold ``person-cluster run``: wall seconds, peak RSS of the driver (GB), its phases, its unit lines, and
    the manifest less the runtime settings."""
    with tempfile.TemporaryDirectory() as tmp:
        sets = [a for o in overrides for a in ("--set", o)]
        cmd = [sys.executable, "-m", "person_cluster", "run", *map(str, inputs), "-o", tmp, "-v", *sets]
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env={**os.environ, "TQDM_DISABLE": "1"})
        out, err = proc.communicate()
        wall = time.perf_counter() - started
        if proc.returncode != 0:
            raise SystemExit(f"person-cluster failed ({' '.join(overrides)}): {err.decode()[-3000:]}")
        manifest = json.loads((Path(tmp) / "manifest.json").read_text())
    err_text = err.decode()
    phases = _SECONDS.search(err_text)
    del manifest["config"]["runtime"]
    return {"wall": wall, "extract": float(phases.group(1)) if phases else 0.0,
            "cluster": float(phases.group(2)) if phases else 0.0, "units": _UNIT.findall(err_text),
            "manifest": manifest, "summary": out.decode().strip().splitlines()[-1]}


def scale(faces: int) -> tuple[float, float, str]:
    """Clustering ``faces`` synthetic faces in a process of its own: (seconds, peak RSS GB, its last line)."""
    proc = subprocess.Popen([sys.executable, str(ROOT / "evaluation" / "benchmark_scale.py"), "--n", str(faces)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    out = proc.stdout.read().decode()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"benchmark_scale.py failed: {proc.stderr.read().decode()[-2000:]}")
    last = out.strip().splitlines()[-1]
    seconds = float(re.search(r"seconds=([\d.]+)", last).group(1))
    return seconds, usage.ru_maxrss / 1024**2, out.strip()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3, help="runs per engine, alternating; medians are reported")
    ap.add_argument("--chunk-sec", type=float, default=120.0, help="runtime.chunk_sec of the Ray runs")
    ap.add_argument("--faces", type=int, default=1_000_000, help="faces for the clustering figure")
    ap.add_argument("--no-scale", action="store_true", help="leave out the clustering figure")
    args = ap.parse_args()
    inputs = [long_video.build(), *(VIDEOS / c for c in CLIPS)]
    engines = {"local": ["runtime.engine=local"],
               "ray": ["runtime.engine=ray", f"runtime.chunk_sec={args.chunk_sec:g}"]}
    cores = len(os.sched_getaffinity(0))
    print(f"# {cores} cores; inputs: {', '.join(p.name for p in inputs)} in one cold `person-cluster run`, default "
          f"config; ray: {' '.join(engines['ray'])}, a Ray started for the run, one actor per core; medians of "
          f"{args.repeat}, alternating", flush=True)
    runs: dict[str, list[dict]] = defaultdict(list)
    reference = None
    for k in range(args.repeat):
        for name, overrides in engines.items():
            row = run_cli(inputs, overrides)
            reference = reference or row["manifest"]
            same = row["manifest"] == reference
            print(f"# run {k + 1} {name}: {row['wall']:.1f} s (extraction {row['extract']:.1f} s, clustering and "
                  f"outputs {row['cluster']:.1f} s); manifest identical: {same}; {row['summary']}", flush=True)
            if not same:
                raise SystemExit(f"the {name} engine's manifest differs from the local engine's")
            runs[name].append(row)
    med = {name: {key: statistics.median(r[key] for r in rows) for key in ("wall", "extract", "cluster")}
           for name, rows in runs.items()}
    print("\n| engine | wall s | extraction s | clustering + outputs s | start-up and exit s |\n|---|---|---|---|---|")
    for name, m in med.items():
        print(f"| {name} | {m['wall']:.1f} | {m['extract']:.1f} | {m['cluster']:.1f} | "
              f"{m['wall'] - m['extract'] - m['cluster']:.1f} |")
    ratio = med["ray"]["wall"] / med["local"]["wall"]
    print(f"\nray / local wall time: {ratio:.2f} (target <= 1.25); manifests identical in all "
          f"{2 * args.repeat} runs: yes\n")

    # Per-unit times (medians over the Ray runs), and what an archive would cost.
    per_unit: dict[tuple, list[float]] = defaultdict(list)
    shape: dict[tuple, tuple[int, int]] = {}
    for row in runs["ray"]:
        for source, first, last, frames, faces, seconds, _ in row["units"]:
            key = (Path(source).name, int(first) if first else 0, int(last) if last else None)
            per_unit[key].append(float(seconds))
            shape[key] = (int(frames), int(faces))
    print("| unit | frames | sampled frames | faces | seconds in its actor |\n|---|---|---|---|---|")
    total_s = total_frames = total_faces = 0.0
    for key in sorted(per_unit, key=lambda k: (k[0], k[1])):
        seconds = statistics.median(per_unit[key])
        frames, faces = shape[key]
        total_s += seconds
        total_frames += frames
        total_faces += faces
        span = f"{key[1]}-{key[2]}" if key[2] is not None else "all"
        print(f"| {key[0]} | {span} | {frames} | {faces} | {seconds:.2f} |")
    # One sampled frame per second of video (the default interval): actor seconds per minute of video.
    per_minute = 60 * total_s / max(1.0, total_frames)
    minutes = ARCHIVE_HOURS * 60
    print(f"\nactor time: {total_s:.1f} s for {total_frames:.0f} sampled frames (one per second of video): "
          f"{per_minute:.2f} s per minute of video per actor (one CPU slot each)")
    for n in (2, 8, 32, 128):
        hours = minutes * per_minute / n / 3600
        print(f"estimate: {ARCHIVE_HOURS} h of video on {n} actors: {hours:.2f} h of extraction "
              f"(+ start-up, and the clustering below)")
    print(f"estimate: {ARCHIVE_HOURS} h of such video hold ~{minutes * 60 * total_faces / max(1.0, total_frames):,.0f} "
          "faces to cluster on the driver")

    if not args.no_scale:
        seconds, rss, out = scale(args.faces)
        print(f"\nclustering {args.faces:,} synthetic faces (evaluation/benchmark_scale.py): {seconds:.0f} s, "
              f"peak RSS {rss:.2f} GB")
        print("\n".join(f"    {line}" for line in out.splitlines()))


if __name__ == "__main__":
    main()
