"""End-to-end speed on every shared video: this project (all cores, and workers=1) against a faithful reference of
seed 000's pipeline on the same frames, measured side by side in one run.

    python evaluation/benchmark_speed.py [--videos DIR] [--only NAME]

Ours: ``person-cluster run VIDEO`` with the default config, in a fresh process (so start-up and the torch import
count), timed with its peak RSS (wait4). Reference (seed 000): a serial per-frame loop in this process over the
frames ours samples (every 1 s, read with grab/retrieve), each resized to at most 700x500, dlib HOG with the same
upsampling, ``compute_face_descriptor`` per face (5-point landmarks), then DBSCAN eps 0.5. The last line is
``ratio=R ours_s=S ref_s=S`` over all videos (R = total reference seconds / total ours seconds).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import dlib
import numpy as np
from scipy.spatial.distance import pdist

from person_cluster.clustering import DBSCANClustering, DenseDistances
from person_cluster.config import Config
from person_cluster.models import dlib_model_path
from person_cluster.records import InputItem
from person_cluster.sampling import plan_frames, read_planned_frames

ROOT = Path(__file__).resolve().parents[1]
VIDEOS = ROOT.parent / "shared" / "testdata" / "videos"


def run_ours(video: Path, workers: int | None) -> tuple[float, float, int, int]:
    """Wall seconds, peak RSS (GB), sampled frames, faces."""
    import json

    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "person_cluster", "run", str(video), "-o", tmp, "-q"]
        if workers is not None:
            cmd += ["--set", f"runtime.workers={workers}"]
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"person-cluster failed on {video}: {proc.stderr.read().decode()}")
        m = json.loads((Path(tmp) / "manifest.json").read_text())
    return wall, usage.ru_maxrss / 1024**2, len(m["frames"]), len(m["faces"])


class Seed000:
    """Seed 000's per-frame loop, with the project's detector settings."""

    def __init__(self, upsample: int) -> None:
        self.detector = dlib.get_frontal_face_detector()
        self.shape = dlib.shape_predictor(dlib_model_path("landmarks5"))
        self.net = dlib.face_recognition_model_v1(dlib_model_path("descriptor"))
        self.upsample = upsample

    def __call__(self, video: Path, config: Config) -> tuple[float, int, int]:
        started = time.perf_counter()
        item = InputItem(str(video), "video")
        descriptors, frames = [], 0
        for frame in read_planned_frames(item, plan_frames(item, config.sampling)):
            img = frame.image
            scale = min(1.0, 700 / img.shape[1], 500 / img.shape[0])
            if scale < 1:
                img = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
            rgb = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
            for rect in self.detector(rgb, self.upsample):
                descriptors.append(np.array(self.net.compute_face_descriptor(rgb, self.shape(rgb, rect))))
            frames += 1
        if len(descriptors) > 1:
            DBSCANClustering(0.5, 5).fit_predict(DenseDistances(pdist(np.array(descriptors)), len(descriptors)))
        return time.perf_counter() - started, frames, len(descriptors)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos", default=str(VIDEOS))
    ap.add_argument("--only", help="one video file name")
    ap.add_argument("--repeat", type=int, default=1, help="runs per measurement; medians are reported")
    args = ap.parse_args()
    config = Config()
    ref = Seed000(config.detection.upsample)
    videos = sorted(Path(args.videos).glob("*.mp4"))
    if args.only:
        videos = [v for v in videos if v.name == args.only]
    print(f"# {os.cpu_count()} cores; default config (workers=all cores); reference = seed 000 serial loop; "
          f"median of {args.repeat}")
    print("| video | frames | faces | ours s | ours frames/s | ours faces/s | ours peak RSS GB | ours workers=1 s | "
          "workers speed-up | ref frames | ref faces | ref s | ratio ref/ours |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    total_ours = total_ref = 0.0
    for video in videos:
        ours = [run_ours(video, None) for _ in range(args.repeat)]
        one = [run_ours(video, 1)[0] for _ in range(args.repeat)]
        refs = [ref(video, config) for _ in range(args.repeat)]
        wall = statistics.median(o[0] for o in ours)
        rss = max(o[1] for o in ours)
        frames, faces = ours[0][2], ours[0][3]
        wall1 = statistics.median(one)
        ref_s = statistics.median(r[0] for r in refs)
        total_ours += wall
        total_ref += ref_s
        print(f"| {video.name} | {frames} | {faces} | {wall:.2f} | {frames / wall:.2f} | {faces / wall:.2f} | "
              f"{rss:.2f} | {wall1:.2f} | {wall1 / wall:.2f} | {refs[0][1]} | {refs[0][2]} | {ref_s:.2f} | "
              f"{ref_s / wall:.2f} |", flush=True)
    peak_self = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    print(f"# reference process peak RSS {peak_self:.2f} GB")
    print(f"ratio={total_ref / total_ours:.2f} ours_s={total_ours:.2f} ref_s={total_ref:.2f}")


if __name__ == "__main__":
    main()
