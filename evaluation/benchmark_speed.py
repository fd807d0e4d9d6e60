"""End-to-end speed on every shared video: this project against a faithful reference of seed 000's pipeline on
the same frames with identical detector settings, and against itself with ``workers: 1``, in one run.

    python evaluation/benchmark_speed.py [--videos DIR] [--only NAME] [--repeat N]

Reference (seed 000): a serial per-frame loop over the frames ours samples (every 1 s, read as seed 000 reads them:
OpenCV ``grab()`` on every frame, ``retrieve()`` on sampled ones; ours reads the same frames with PyAV),
each resized to at most 700x500, dlib HOG (``detector(rgb, upsample)``), ``compute_face_descriptor`` per face
(5-point landmarks), then DBSCAN eps 0.5. Its models are loaded before its clock starts.

Ours, measured the same way: the default config with ``detection.max_side`` set so that detection runs on a
frame of exactly the reference's size (identical detector: dlib HOG, same upsampling, threshold and scale); its
models are loaded and its workers started before the clock starts (``Extractor``, reusable across runs); the
clock covers decoding, detection, alignment, face and clothing features, crops and the SQLite cache, then
clustering and post-processing. ``workers=1`` is the same with one process. ``cli`` is a cold
``person-cluster run`` with the plain default config in a fresh process (start-up, torch import and all outputs
counted), with its peak RSS (largest process, from wait4).

Medians over ``--repeat`` runs. The last line is ``ratio=R ours_s=S ref_s=S`` (R = total reference seconds /
total ours seconds, both summed over the videos).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import dlib
import numpy as np
from scipy.spatial.distance import pdist

from person_cluster.api import cluster_table
from person_cluster.cache import FeatureCache
from person_cluster.clustering import DBSCANClustering, DenseDistances
from person_cluster.config import Config
from person_cluster.models import dlib_model_path
from person_cluster.pipeline import Extractor
from person_cluster.records import InputItem
from person_cluster.sampling import plan_frames, probe_video

ROOT = Path(__file__).resolve().parents[1]
VIDEOS = ROOT.parent / "shared" / "testdata" / "videos"


def seed_scale(width: int, height: int) -> float:
    return min(1.0, 700 / width, 500 / height)


class Seed000:
    """Seed 000's per-frame loop, with the project's detector settings (model files loaded once, untimed)."""

    def __init__(self, upsample: int) -> None:
        self.detector = dlib.get_frontal_face_detector()
        self.shape = dlib.shape_predictor(dlib_model_path("landmarks5"))
        self.net = dlib.face_recognition_model_v1(dlib_model_path("descriptor"))
        self.upsample = upsample

    def __call__(self, video: Path, config: Config) -> tuple[float, int, int]:
        started = time.perf_counter()
        item = InputItem(str(video), "video")
        descriptors, frames = [], 0
        for img in opencv_frames(video, plan_frames(item, config.sampling).indices):
            scale = seed_scale(img.shape[1], img.shape[0])
            if scale < 1:
                img = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
            rgb = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
            for rect in self.detector(rgb, self.upsample):
                descriptors.append(np.array(self.net.compute_face_descriptor(rgb, self.shape(rgb, rect))))
            frames += 1
        if len(descriptors) > 1:
            DBSCANClustering(0.5, 5).fit_predict(DenseDistances(pdist(np.array(descriptors)), len(descriptors)))
        return time.perf_counter() - started, frames, len(descriptors)


def opencv_frames(video: Path, indices: list[int]) -> Iterator[np.ndarray]:
    """Seed 000's reader: grab every frame, retrieve (convert) the sampled ones."""
    cap, wanted, pos = cv2.VideoCapture(str(video), cv2.CAP_FFMPEG), set(indices), 0
    try:
        while wanted and cap.grab():
            if pos in wanted:
                wanted.discard(pos)
                yield cap.retrieve()[1]
            pos += 1
    finally:
        cap.release()


def run_ours(extractor: Extractor, video: Path) -> tuple[float, float, int, int]:
    """(seconds, extraction seconds, frames, faces) with a warm extractor; clustering included in seconds."""
    with tempfile.TemporaryDirectory() as tmp, FeatureCache(Path(tmp) / "features.sqlite") as cache:
        started = time.perf_counter()
        summary = extractor.run([(0, InputItem(str(video), "video"))], cache)
        table = cache.load_table()
        if len(table):
            cluster_table(table, extractor.config)
        return time.perf_counter() - started, summary.seconds, summary.frames, summary.faces


def run_cli(video: Path) -> tuple[float, float]:
    """Wall seconds and peak RSS (GB) of a cold ``person-cluster run`` with the default config."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "person_cluster", "run", str(video), "-o", tmp, "-q"]
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"person-cluster failed on {video}: {proc.stderr.read().decode()}")
        json.loads((Path(tmp) / "manifest.json").read_text())  # a complete run writes its manifest last
    return wall, usage.ru_maxrss / 1024**2


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos", default=str(VIDEOS))
    ap.add_argument("--only", help="one video file name")
    ap.add_argument("--repeat", type=int, default=3, help="runs per measurement; medians are reported")
    args = ap.parse_args()
    base = Config()
    ref = Seed000(base.detection.upsample)
    videos = sorted(Path(args.videos).glob("*.mp4"))
    if args.only:
        videos = [v for v in videos if v.name == args.only]
    n_cores = len(os.sched_getaffinity(0))
    print(f"# {n_cores} cores; ours = default config (workers {base.runtime.resolved_workers()}, face.backend "
          f"{base.face.backend}, hog upsample {base.detection.upsample} via {base.detection.upsample_with}) at the "
          f"reference's detection size; medians of {args.repeat}")
    print("| video | detect px | frames | faces | ours s | frames/s | faces/s | extract s | workers=1 extract s | "
          "workers speed-up | ref faces | ref s | ratio ref/ours | cli s (default) | cli peak RSS GB |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    total_ours = total_ref = 0.0
    ratios, speedups = [], []
    for video in videos:
        info = probe_video(str(video))
        s = seed_scale(info.width, info.height)
        long_side = max(round(info.width * s), round(info.height * s))
        config = base.with_overrides({"detection.max_side": long_side})
        one = config.with_overrides({"runtime.workers": 1, "runtime.torch_threads": 1})
        with Extractor(config, progress=False) as ours_x, Extractor(one, progress=False) as one_x:
            ours_x.start_workers(wait=True)
            one_x.start_workers(wait=True)
            ours, ones, refs, clis = [], [], [], []
            for _ in range(args.repeat):  # interleaved, so that a noisy minute hits every variant alike
                refs.append(ref(video, config))
                ours.append(run_ours(ours_x, video))
                ones.append(run_ours(one_x, video))
                clis.append(run_cli(video))
        wall = statistics.median(o[0] for o in ours)
        extract = statistics.median(o[1] for o in ours)
        extract1 = statistics.median(o[1] for o in ones)
        ref_s = statistics.median(r[0] for r in refs)
        cli_s = statistics.median(c[0] for c in clis)
        frames, faces = ours[0][2], ours[0][3]
        total_ours += wall
        total_ref += ref_s
        ratios.append(ref_s / wall)
        speedups.append(extract1 / extract)
        print(f"| {video.name} | {long_side} | {frames} | {faces} | {wall:.2f} | {frames / wall:.2f} | "
              f"{faces / wall:.2f} | {extract:.2f} | {extract1:.2f} | {extract1 / extract:.2f} | {refs[0][2]} | "
              f"{ref_s:.2f} | {ref_s / wall:.2f} | {cli_s:.2f} | {max(c[1] for c in clis):.2f} |", flush=True)
    peak_self = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    print(f"# this process (reference + warm extractors) peak RSS {peak_self:.2f} GB; "
          f"lowest ratio {min(ratios):.2f}, lowest workers speed-up {min(speedups):.2f}")
    print(f"ratio={total_ref / total_ours:.2f} ours_s={total_ours:.2f} ref_s={total_ref:.2f}")


if __name__ == "__main__":
    main()
